//! A harness built only with the fluent API: parametrised tests, a timeout, a panic.
//!
//! ```sh
//! cargo run --example fluent_suite -- --list
//! cargo run --example fluent_suite -- pool::
//! ```
use chaos_harness::prelude::*;

fn main() -> std::process::ExitCode {
    let mut harness = Harness::new();
    for pool_size in [1u32, 2, 4] {
        harness = harness
            .test(format!("pool::size_{pool_size}"), move |cx| {
                Box::pin(async move {
                    tracing::info!(pool_size, seed = cx.seed(), "a parametrised scenario");
                    Ok(())
                })
            })
            .tags(["pool"])
            .done();
    }
    harness
        .test("slow::sleeps_past_its_timeout", |_cx| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            })
        })
        .tags(["slow"])
        .timeout(Duration::from_millis(300))
        .test_sync("slow::panics", |_cx| panic!("a panic becomes a failure"))
        .tags(["slow"])
        .run()
}
