use chaos_harness::prelude::*;

#[chaos_test(tags = "smoke")]
fn tags_not_a_list() {}

#[chaos_test(tags = [smoke, 1])]
fn tags_not_strings() {}

#[chaos_test(requires = "root")]
fn requires_not_a_list() {}

#[chaos_test(ignore = true)]
fn ignore_not_a_reason() {}

#[chaos_test(name = smoke)]
fn name_not_a_string() {}

#[chaos_test(tags)]
fn missing_value() {}

fn main() {}
