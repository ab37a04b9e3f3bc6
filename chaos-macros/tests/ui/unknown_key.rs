use chaos_harness::prelude::*;

#[chaos_test(tag = ["smoke"])]
async fn typo(_cx: &mut Chaos) {}

#[chaos_test(timeout = "1s", nmae = "x", flaky)]
fn two_unknown_keys() {}

fn main() {}
