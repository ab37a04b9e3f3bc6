use chaos_harness::prelude::*;

#[chaos_test(timeout = "1s", timeout = "2s")]
fn timeout_twice() {}

#[chaos_test(tags = ["a"], ignore, tags = ["b"])]
fn tags_twice() {}

fn main() {}
