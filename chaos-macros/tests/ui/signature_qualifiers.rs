use chaos_harness::prelude::*;

#[chaos_test]
fn generic<T: Default>() {}

#[chaos_test]
async fn with_lifetime<'a>(_cx: &'a mut Chaos) {}

#[chaos_test]
const fn constant() {}

#[chaos_test]
unsafe fn not_safe() {}

#[chaos_test]
extern "C" fn foreign() {}

fn main() {}
