//! Scenario files as tests: every `*.chaos.toml` under fixtures/scenarios (and every template
//! combination) becomes a libtest test named `scenario_files::<dir>::<test name>` with the
//! file's tags, so `cargo test --test scenario_files -- FILTER` and `--tag` select them like
//! `#[chaos_test]`s. Files tagged `manual` are listed and ignored (with the reason); those tagged
//! `serial` run alone.

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
            if l.spec.tags.iter().any(|t| t == "serial") {
                // A machine-wide fault (CPU burn): nothing else of the binary runs beside it.
                t = t.serial();
            }
            if l.spec.tags.iter().any(|t| t == "manual") {
                t = t.ignore("tagged `manual` (see the file's header comment)");
            }
            builder = Some(t);
        }
    }
    let t = match builder {
        Some(b) => b.test("scenario_files::cli::validate_shipped_files_exits_0", validate_shipped),
        None => Harness::new().test("scenario_files::cli::validate_shipped_files_exits_0", validate_shipped),
    };
    let t = t
        .tags(["cli"])
        .test("scenario_files::twin::beam-sigkill", |cx| twin(cx, "beam-sigkill"))
        .tags(["snakepit", "twin"])
        .timeout(Duration::from_secs(240))
        .test("scenario_files::twin::worker-sigkill", |cx| twin(cx, "worker-sigkill"))
        .tags(["snakepit", "twin"])
        .timeout(Duration::from_secs(240))
        .test("scenario_files::twin::pool-crash", |cx| twin(cx, "pool-crash"))
        .tags(["snakepit", "twin"])
        .timeout(Duration::from_secs(240))
        .test("scenario_files::twin::abandoned-requests", |cx| twin(cx, "abandoned-requests"))
        .tags(["snakepit", "twin"])
        .timeout(Duration::from_secs(240))
        .test("scenario_files::twin::worker-crash-sessions", |cx| twin(cx, "worker-crash-sessions"))
        .tags(["snakepit", "twin"])
        .timeout(Duration::from_secs(240))
        .test("scenario_files::defects::pool-crash_catches_leak_generation", |cx| {
            catches(cx, "pool-crash", "leak_generation", "generation not leaked")
        })
        .tags(["snakepit", "meta"])
        .timeout(Duration::from_secs(120))
        .test("scenario_files::defects::abandoned-requests_catches_stuck_busy", |cx| {
            catches(cx, "abandoned-requests", "stuck_busy", "pool recovers capacity")
        })
        .tags(["snakepit", "meta"])
        .timeout(Duration::from_secs(120));
    t.test("scenario_files::cli::validate_broken_copy_exits_1_listing_every_error", validate_broken)
        .tags(["cli"])
        .test("scenario_files::cli::run_a_file_with_a_chaos_toml_profile", run_with_profile)
        .tags(["cli", "generic"])
        .timeout(Duration::from_secs(120))
        .run()
}

/// Runs a Rust suite scenario and its file twin in one test and compares their verdicts
/// (how many criteria, and which held).
fn twin<'a>(cx: &'a mut Chaos, file: &'static str) -> BoxTestFuture<'a> {
    Box::pin(async move {
        let verdicts = |o: &chaos_harness::scenario::ScenarioOutcome| -> Vec<bool> {
            o.verdicts.iter().map(|v| v.passed).collect()
        };
        use snakepit_chaos::scenarios as s;
        let rust = match file {
            "beam-sigkill" => s::beam_sigkill(cx, &[]).await?,
            "pool-crash" => s::pool_crash(cx, &[]).await?,
            "abandoned-requests" => s::abandoned_requests_free_their_workers(cx, &[]).await?,
            "worker-crash-sessions" => s::worker_crash_keeps_sessions(cx, &[]).await?,
            _ => s::worker_sigkill_under_load(cx, &[]).await?,
        };
        let rust = match &rust {
            Ok(o) => verdicts(o),
            Err(e) => verdicts(e.outcome()),
        };
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/scenarios/snakepit/{file}.chaos.toml"));
        let spec = file::load(&path, &Options::default()).map_err(|e| anyhow::anyhow!("{e}"))?.remove(0).spec;
        let from_file = match cx.run_spec(&spec).await? {
            Ok(o) => verdicts(&o),
            Err(e) => verdicts(e.outcome()),
        };
        anyhow::ensure!(!rust.is_empty(), "the Rust form judged no criterion");
        anyhow::ensure!(rust == from_file, "verdicts differ: Rust {rust:?}, file {from_file:?}");
        Ok(())
    })
}

/// Runs a shipped Snakepit scenario file with `defect` switched on in its `pit` target: the
/// file form must fail, on a criterion whose description contains `criterion`.
fn catches<'a>(
    cx: &'a mut Chaos,
    file: &'static str,
    defect: &'static str,
    criterion: &'static str,
) -> BoxTestFuture<'a> {
    Box::pin(async move {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/scenarios/snakepit/{file}.chaos.toml"));
        let mut spec = file::load(&path, &Options::default()).map_err(|e| anyhow::anyhow!("{e}"))?.remove(0).spec;
        let pit = spec.targets.get_mut("pit").ok_or_else(|| anyhow::anyhow!("{file} has no target `pit`"))?;
        pit.params = pit.params.clone().with("defects", vec![defect]);
        let outcome = match cx.run_spec(&spec).await? {
            Ok(o) => anyhow::bail!("{file} with {defect} passed: the defect was not caught\n{o}"),
            Err(e) => e.outcome().clone(),
        };
        let failed: Vec<&str> = outcome.verdicts.iter().filter(|v| !v.passed).map(|v| v.criterion.as_str()).collect();
        anyhow::ensure!(
            failed.iter().any(|c| c.contains(criterion)),
            "{file} with {defect} failed on {failed:?}, not on a criterion containing {criterion:?}\n{outcome}"
        );
        Ok(())
    })
}

fn chaos(args: &[&str]) -> std::process::Output {
    chaos_env(args, &[])
}

fn chaos_env(args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run the chaos binary")
}

fn validate_shipped(_: &mut Chaos) -> BoxTestFuture<'_> {
    Box::pin(async {
        let out = chaos(&["validate", "fixtures/scenarios"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        anyhow::ensure!(out.status.code() == Some(0), "chaos validate fixtures/scenarios: {:?}\n{text}", out.status);
        anyhow::ensure!(text.contains(" 0 error(s)"), "{text}");
        let plan = chaos(&["plan", "fixtures/scenarios/generic/http-kill.chaos.toml"]);
        anyhow::ensure!(plan.status.code() == Some(0), "chaos plan: {:?}", plan.status);
        anyhow::ensure!(String::from_utf8_lossy(&plan.stdout).contains("inject kill {"), "{plan:?}");
        Ok(())
    })
}

fn validate_broken(_: &mut Chaos) -> BoxTestFuture<'_> {
    Box::pin(async {
        let dir = tempfile::tempdir()?;
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios/generic");
        for f in ["http-kill.chaos.toml", "http-memory.chaos.toml"] {
            std::fs::copy(src.join(f), dir.path().join(f))?;
        }
        let kill = dir.path().join("http-kill.chaos.toml");
        let text = std::fs::read_to_string(&kill)?.replace("inject = \"kill\"", "inject = \"kil\"");
        std::fs::write(
            &kill,
            text.replace("[[expect]]\ncriterion = \"no_orphans\"", "[[expect]]\ncriterion = \"no_orphan\""),
        )?;
        let mem = dir.path().join("http-memory.chaos.toml");
        std::fs::write(&mem, std::fs::read_to_string(&mem)?.replace("\"64MiB\"", "\"64MeB\""))?;
        let out = chaos(&["validate", "--format", "json", &dir.path().display().to_string()]);
        anyhow::ensure!(out.status.code() == Some(1), "expected exit 1, got {:?}", out.status);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let errors: Vec<String> = v["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        format!(
                            "{}:{}:{} {}",
                            e["file"].as_str().unwrap_or("").rsplit('/').next().unwrap_or(""),
                            e["line"],
                            e["column"],
                            e["message"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        anyhow::ensure!(
            errors
                == [
                    "http-kill.chaos.toml:15:10 unknown fault `kil`, did you mean `kill`?",
                    "http-kill.chaos.toml:25:13 unknown criterion `no_orphan`, did you mean `no_orphans`?",
                    "http-memory.chaos.toml:14:9 `bytes`: expected a size like \"64MiB\", \"512KiB\" or a number of bytes, found \"64MeB\"",
                ],
            "{errors:#?}"
        );
        Ok(())
    })
}

/// `chaos run FILE --config chaos.toml --profile ci`: the profile's format (json) and the
/// project's report_dir (relative to chaos.toml) apply; an unknown profile exits 2 naming the
/// file, the profiles and the nearest; `chaos validate` checks the project file too.
fn run_with_profile(_: &mut Chaos) -> BoxTestFuture<'_> {
    Box::pin(async {
        let dir = tempfile::tempdir()?;
        let project = dir.path().join("chaos.toml");
        std::fs::write(&project, "report_dir = \"rep\"\nformat = \"text\"\n[profile.ci]\nformat = \"json\"\n")?;
        let config = project.display().to_string();
        let file = "fixtures/scenarios/generic/http-kill.chaos.toml";
        // Its own port: the file's test runs at the same time on the default one.
        let port = [("HTTP_KILL_PORT", chaos_harness::fixture::free_port()?.to_string())];
        let out = chaos_env(&["run", "--config", &config, "--profile", "ci", file], &port);
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        anyhow::ensure!(out.status.code() == Some(0), "chaos run: {:?}\n{text}", out.status);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| anyhow::anyhow!("{e}: {text}"))?;
        anyhow::ensure!(v["passed"] == 1 && v["scenarios"][0]["name"] == "http-kill", "{v}");
        anyhow::ensure!(dir.path().join("rep/report.json").is_file(), "no report in the project's report_dir: {text}");
        let out = chaos(&["run", "--config", &config, "--profile", "cj", file]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        anyhow::ensure!(out.status.code() == Some(2), "unknown profile: {:?} {err}", out.status);
        anyhow::ensure!(err.contains(&config) && err.contains("did you mean `ci`?"), "{err}");
        std::fs::write(&project, "report_dri = \"rep\"\n")?;
        let out = chaos(&["validate", "--config", &config, file]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        anyhow::ensure!(out.status.code() == Some(1), "bad chaos.toml: {:?} {err}", out.status);
        anyhow::ensure!(
            err.contains(&format!("{config}:1:1: unknown key `report_dri`"))
                && err.contains("did you mean `report_dir`?"),
            "{err}"
        );
        Ok(())
    })
}
