use chaos_harness::prelude::*;

#[chaos_test(timeout = "90")]
fn no_unit() {}

#[chaos_test(timeout = "90 parsecs")]
fn unknown_unit() {}

#[chaos_test(timeout = "ninety seconds")]
fn words() {}

#[chaos_test(timeout = "0s")]
fn zero() {}

#[chaos_test(timeout = "500us")]
fn below_a_millisecond() {}

#[chaos_test(timeout = 90)]
fn not_a_string() {}

#[chaos_test(timeout = 500ms)]
fn unquoted() {}

fn main() {}
