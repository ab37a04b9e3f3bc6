use chaos_harness::prelude::*;

#[chaos_test]
async fn two_arguments(_cx: &mut Chaos, _attempts: u32) {}

#[chaos_test]
fn shared_borrow(_cx: &Chaos) {}

#[chaos_test]
fn by_value(_cx: Chaos) {}

#[chaos_test]
fn not_the_context(_n: u32) {}

#[chaos_test]
fn explicit_lifetime(_cx: &'static mut Chaos) {}

struct Suite;

impl Suite {
    #[chaos_test]
    fn method(&self) {}
}

fn main() {}
