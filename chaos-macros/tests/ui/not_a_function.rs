use chaos_harness::prelude::*;

#[chaos_test]
struct Suite;

fn main() {}
