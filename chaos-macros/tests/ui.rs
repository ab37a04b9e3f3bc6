//! Compile-time behaviour of `#[chaos_test]`: the errors users see (`tests/ui/*.rs` with their
//! `.stderr`), and every supported form compiling and running (`tests/ui/pass/*.rs`).
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p chaos-macros --test ui`,
//! then read every changed `.stderr`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
