use chaos_harness::prelude::*;

#[chaos_test(requires = ["rooot", "gpu", "netns", "netns"])]
async fn needs_things(_cx: &mut Chaos) {}

fn main() {}
