//! Every attribute argument, alone and together.
#![deny(warnings)]

use chaos_harness::prelude::*;

#[chaos_test()]
fn empty_parentheses() {}

#[chaos_test(tags = ["smoke", "net-partition", "a_1"])]
fn tags() {}

#[chaos_test(tags = [])]
fn no_tags() {}

#[chaos_test(timeout = "90s")]
fn timeout_seconds() {}

#[chaos_test(timeout = "1m 30s")]
fn timeout_compound() {}

#[chaos_test(timeout = "500ms")]
fn timeout_milliseconds() {}

#[chaos_test(timeout = "2h")]
fn timeout_hours() {}

#[chaos_test(ignore)]
fn ignored() {}

#[chaos_test(ignore = "flaky on CI")]
fn ignored_with_reason() {}

#[chaos_test(requires = ["root", "cgroups", "freezer", "netns", "nft", "elixir", "python3", "tmpfs"])]
fn every_capability() {}

/// The custom capability `open_ended_capabilities` requires, always present here.
fn big_disk() -> Result<(), String> {
    Ok(())
}
chaos_harness::capability!("big-disk", big_disk);

#[chaos_test(requires = ["bin:haproxy", "custom:big-disk", "root"])]
fn open_ended_capabilities() {}

#[chaos_test(serial, retries = 2)]
fn serial_with_retries() {}

#[chaos_test(name = "a custom name")]
fn custom_name() {}

#[chaos_test(
    tags = ["smoke"],
    timeout = "30s",
    ignore = "needs a reference node",
    requires = ["elixir"],
    name = "everything at once",
)]
async fn everything(_cx: &mut Chaos) -> ChaosResult {
    Ok(())
}

macro_rules! with_timeout {
    ($timeout:expr) => {
        #[chaos_test(timeout = $timeout)]
        fn from_macro_rules() {}
    };
}
with_timeout!("45s");

chaos_harness::main!();
