use chaos_harness::prelude::*;

#[chaos_test]
#[test]
fn with_test() {}

#[chaos_test(timeout = "10s")]
#[tokio::test]
async fn with_tokio_test() {}

#[chaos_test]
#[ignore]
fn with_libtest_ignore() {}

#[chaos_test]
#[chaos_test]
fn twice() {}

fn main() {}
