//! Every supported signature, return type and spelling of the context parameter.
#![deny(warnings)]

use chaos_harness::prelude::*;

#[chaos_test]
async fn async_with_context(cx: &mut Chaos) -> ChaosResult {
    let _ = cx.seed();
    Ok(())
}

#[chaos_test]
async fn async_without_context() {}

#[chaos_test]
fn sync_with_context(cx: &mut Chaos) -> ChaosResult {
    let _ = cx.rng();
    Ok(())
}

#[chaos_test]
fn sync_without_context() {}

#[chaos_test]
async fn returns_unit_explicitly(_cx: &mut Chaos) -> () {}

#[chaos_test]
fn returns_io_result() -> std::io::Result<()> {
    Ok(())
}

#[chaos_test]
async fn returns_any_error_type() -> Result<(), std::fmt::Error> {
    Ok(())
}

#[chaos_test]
fn underscore_pattern(_: &mut Chaos) {}

#[chaos_test]
fn mutable_binding(mut cx: &mut Chaos) {
    cx = &mut *cx;
    let _ = cx.test_name();
}

#[chaos_test]
async fn full_path(cx: &mut chaos_harness::Chaos) {
    let _ = cx.seed();
}

#[chaos_test]
fn absolute_path(_cx: &mut ::chaos_harness::Chaos) {}

#[chaos_test]
fn anonymous_lifetime(_cx: &'_ mut Chaos) {}

#[chaos_test]
pub async fn public_with_awaits(_cx: &mut Chaos) -> ChaosResult {
    async {}.await;
    Ok(())
}

#[chaos_test]
fn r#async() {}

chaos_harness::main!();
