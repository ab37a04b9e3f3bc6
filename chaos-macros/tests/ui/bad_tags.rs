use chaos_harness::prelude::*;

#[chaos_test(tags = ["", "!slow", "Net Partition", "café", "smoke", "smoke"])]
fn bad_tags() {}

fn main() {}
