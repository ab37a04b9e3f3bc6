//! Every example in `examples/` runs here as a whole program (they are compiled by
//! `cargo test`, which builds examples before running tests): it must exit 0 with its test
//! passed, not ignored, so an example that stopped working fails the suite.

use chaos_harness::prelude::*;

/// Runs `target/<profile>/examples/<name> ARGS` and checks that its `tests` tests passed.
async fn run_example(name: &str, args: &[&str], tests: usize) -> ChaosResult {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().and_then(|deps| deps.parent()).context("the test binary is in target/<profile>/deps")?;
    let bin = dir.join("examples").join(name);
    ensure!(
        bin.exists(),
        "example {name} is not built at {}: run `cargo test` (it builds examples) or `cargo build --examples` first",
        bin.display()
    );
    let out = tokio::process::Command::new(&bin)
        .args(args)
        .env_remove("CHAOS_JUNIT")
        .env_remove("CHAOS_TAGS")
        .env_remove("CHAOS_REPORT_DIR")
        .kill_on_drop(true)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success() && stdout.contains(&format!("{tests} passed; 0 failed; 0 ignored")),
        "example {name} did not pass ({}):\n{stdout}\n{stderr}",
        out.status
    );
    Ok(())
}

#[chaos_test(tags = ["examples", "process"], timeout = "90s", requires = ["cgroups", "python3"])]
async fn example_process_kill_runs(_cx: &mut Chaos) -> ChaosResult {
    run_example("process_kill", &[], 1).await
}

#[chaos_test(tags = ["examples", "network"], timeout = "90s")]
async fn example_network_latency_runs(_cx: &mut Chaos) -> ChaosResult {
    run_example("network_latency", &[], 1).await
}

#[chaos_test(tags = ["examples", "resources"], timeout = "90s", requires = ["cgroups", "python3"])]
async fn example_resources_memory_runs(_cx: &mut Chaos) -> ChaosResult {
    run_example("resources_memory", &[], 1).await
}

#[chaos_test(tags = ["examples", "load"], timeout = "90s", requires = ["cgroups", "freezer", "python3"])]
async fn example_load_latency_runs(_cx: &mut Chaos) -> ChaosResult {
    run_example("load_latency", &[], 1).await
}

#[chaos_test(tags = ["examples", "files"], timeout = "90s", requires = ["cgroups", "python3"])]
async fn example_scenario_file_runs(_cx: &mut Chaos) -> ChaosResult {
    run_example("scenario_file", &[], 1).await
}

#[chaos_test(tags = ["examples", "plugin"], timeout = "90s", requires = ["cgroups", "python3"])]
async fn example_plugin_runs(_cx: &mut Chaos) -> ChaosResult {
    run_example("plugin", &[], 1).await
}

#[chaos_test(tags = ["examples"], timeout = "90s")]
async fn example_fluent_suite_runs(_cx: &mut Chaos) -> ChaosResult {
    run_example("fluent_suite", &["pool::"], 3).await
}
