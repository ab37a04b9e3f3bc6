//! Scenario files as tests: every `*.chaos.toml` under fixtures/scenarios (and every template
//! combination) becomes a libtest test named `scenario_files::<dir>::<test name>` with the
//! file's tags, so `cargo test --test scenario_files -- FILTER` and `--tag` select them like
//! `#[chaos_test]`s. Files tagged `manual` are listed and ignored (with the reason).

use std::path::Path;
use std::time::Duration;

use chaos_harness::scenario::file::{self, Options};
use chaos_harness::{Harness, TestBuilder};

use chaos_harness::Chaos;
use chaos_harness::runner::registry::BoxTestFuture;
use chaos_harness::scenario::ScenarioSpec;

/// Binds and runs the spec `repeat` times; a failed criterion fails the test.
fn body(spec: ScenarioSpec, repeat: u32) -> impl for<'a> FnOnce(&'a mut Chaos) -> BoxTestFuture<'a> + Send + 'static {
    move |cx: &mut Chaos| -> BoxTestFuture<'_> {
        Box::pin(async move {
            for _ in 0..repeat {
                if let Err(e) = cx.run_spec(&spec).await? {
                    return Err(anyhow::anyhow!("{e}"));
                }
            }
            Ok(())
        })
    }
}

fn main() -> std::process::ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios");
    let mut builder: Option<TestBuilder> = None;
    for path in file::find_files(&root) {
        let dir =
            path.parent().and_then(|d| d.file_name()).map(|d| d.to_string_lossy().to_string()).unwrap_or_default();
        let loaded = match file::load(&path, &Options::default()) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("{e}");
                return std::process::ExitCode::from(1);
            }
        };
        for l in loaded {
            let name = format!("scenario_files::{dir}::{}", l.test_name);
            let body = body(l.spec.clone(), l.repeat);
            let mut t = match builder.take() {
                None => Harness::new().test(name, body),
                Some(b) => b.test(name, body),
            };
            t = t.tags(l.spec.tags.clone()).timeout(l.spec.timeout.unwrap_or(Duration::from_secs(120)));
            if l.spec.tags.iter().any(|t| t == "manual") {
                t = t.ignore("tagged `manual` (see the file's header comment)");
            }
            builder = Some(t);
        }
    }
    match builder {
        Some(b) => b.run(),
        None => Harness::new().run(),
    }
}
