use chaos_harness::prelude::*;

#[chaos_test(ignore = "")]
fn empty_reason() {}

#[chaos_test(name = "  ")]
fn empty_name() {}

fn main() {}
