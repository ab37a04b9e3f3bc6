use chaos_harness::prelude::*;

#[chaos_test("smoke")]
fn no_key() {}

#[chaos_test(tags = )]
fn no_value() {}

#[chaos_test(tags("smoke"))]
fn call_syntax() {}

#[chaos_test(name = "a" tags = [])]
fn missing_comma() {}

fn main() {}
