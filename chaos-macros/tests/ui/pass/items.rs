//! Tests among other items: in modules, with other attributes, next to names the expansion uses.
#![deny(warnings)]

mod process {
    use chaos_harness::{Chaos, ChaosResult, chaos_test};

    /// Doc comments are kept.
    #[chaos_test(tags = ["process"])]
    #[allow(clippy::unused_async)]
    pub(crate) async fn restarts(_cx: &mut Chaos) -> ChaosResult {
        Ok(())
    }

    mod nested {
        #[chaos_harness::chaos_test]
        fn deep() {}
    }
}

#[chaos_harness::chaos_test]
#[cfg(any())]
fn configured_out() {
    compile_error!("removed by cfg");
}

#[chaos_harness::chaos_test]
#[deprecated = "still registered and callable"]
fn deprecated() {}

// Names the expansion might have used; none clashes.
#[chaos_harness::chaos_test]
fn adapter() {}

#[chaos_harness::chaos_test]
fn __chaos_test_adapter() {}

#[chaos_harness::chaos_test]
fn cx(cx: &mut chaos_harness::Chaos) {
    let _ = cx;
}

#[allow(dead_code)]
fn calls_tests_directly(cx: &mut chaos_harness::Chaos) {
    adapter();
    __chaos_test_adapter();
    self::cx(cx);
    let _ = process::restarts(cx);
}

struct Chaos;

// A local type named `Chaos` does not confuse the generated adapter.
#[chaos_harness::chaos_test]
fn shadowed_context_type(_cx: &mut chaos_harness::Chaos) {
    let _ = Chaos;
}

chaos_harness::main!();
