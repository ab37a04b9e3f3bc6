//! Helpers shared by the chaos suite's modules (one copy, as ripgrep's tests share `util`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::ensure;
use chaos_harness::fixture::{Process, python3};
use chaos_harness::prelude::*;
use chaos_harness::sandbox::{OwnedPid, cgroup};
use chaos_harness::scenario::ScenarioError;
use snakepit_chaos::scenarios::Verdicts;

/// `fixtures/programs/`: the small real programs the suite runs (prefork server, daemon, hog).
pub fn programs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/programs")
}

/// A pre-fork server whose `workers` setsid, rewrite argv/comm and wipe their environment;
/// `mode` = "exit" | "stay" when the master dies.
pub fn prefork(workers: usize, mode: &str) -> anyhow::Result<Command> {
    Ok(Command::new(python3())
        .name("prefork")
        .arg(programs().join("prefork.py"))
        .args(["--workers", &workers.to_string(), "--on-parent-death", mode, "--wipe-env"])
        .ready(Probe::log_line(&format!("^ready: {workers} workers")))
        .stop_grace(Duration::from_millis(500)))
}

/// Waits until the fixture holds `n` processes (10 s at most).
pub async fn members(p: &Process, n: usize) -> anyhow::Result<Vec<OwnedPid>> {
    let t0 = Instant::now();
    loop {
        let m = p.scope().members();
        if m.len() == n {
            return Ok(m);
        }
        ensure!(t0.elapsed() < Duration::from_secs(10), "{} has {} processes, want {n}: {m:?}", p.name(), m.len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every cgroup directory of the run, in any hierarchy.
pub fn run_cgroups(run_id: &str) -> Vec<PathBuf> {
    cgroup::hierarchies()
        .iter()
        .filter_map(|h| std::fs::read_dir(h.mount.join(cgroup::PARENT)).ok())
        .flat_map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(run_id)).map(|e| e.path()))
        .collect()
}

/// Waits (up to 10 s) until a line of `log` contains `needle`.
pub async fn wait_for_log(log: &Path, needle: &str) -> anyhow::Result<()> {
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.lines().any(|l| l.contains(needle)) {
            return Ok(());
        }
        ensure!(t0.elapsed() < Duration::from_secs(10), "no line with {needle:?} in {}:\n{text}", log.display());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What the runs of the harness process `pid` left behind (run ids carry the pid): cgroups
/// under the harness's parent, temp dirs, and live processes carrying one of its run markers.
pub fn leftovers_of(pid: u32) -> Vec<String> {
    let dash = format!("-{pid}-");
    let mut left = Vec::new();
    for h in cgroup::hierarchies() {
        for e in std::fs::read_dir(h.mount.join(cgroup::PARENT)).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().contains(&dash) {
                left.push(format!("cgroup {}", e.path().display()));
            }
        }
    }
    for e in std::fs::read_dir(std::env::temp_dir()).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with(chaos_harness::sandbox::TEMP_PREFIX) && n.contains(&dash) {
            left.push(format!("temp dir {n}"));
        }
    }
    for p in chaos_harness::sandbox::procfs::all_pids() {
        let Ok(env) = std::fs::read(format!("/proc/{p}/environ")) else { continue };
        let marker = format!("{}=", chaos_harness::sandbox::RUN_MARKER_ENV);
        let marked = env
            .split(|b| *b == 0)
            .any(|e| e.starts_with(marker.as_bytes()) && String::from_utf8_lossy(e).contains(&dash));
        if marked && chaos_harness::sandbox::procfs::stat(p).is_some_and(|s| !s.is_dead()) {
            left.push(format!("process {p} carrying a run marker of {pid}"));
        }
    }
    left
}

/// Expects the scenario to pass.
pub fn passed(v: Verdicts) -> ChaosResult {
    match v? {
        Ok(outcome) => {
            tracing::info!("{outcome}");
            Ok(())
        }
        Err(e) => Err(anyhow::Error::new(e)),
    }
}

/// The criteria a caught defect failed: the scenario must have failed on a criterion whose
/// description contains `criterion` (a defect must be caught by the right check, not by
/// accident, by a guard, or by a fault that was not injected). Returns every failed criterion.
pub fn caught_by(v: Verdicts, criterion: &str) -> anyhow::Result<Vec<String>> {
    match v? {
        Ok(outcome) => anyhow::bail!("the defect was NOT caught: the scenario passed\n{outcome}"),
        Err(ScenarioError::NotInjected(o)) => anyhow::bail!("the fault was not injected, so nothing was proven\n{o}"),
        Err(ScenarioError::AbortedByGuard(o)) => {
            anyhow::bail!("a guard aborted the scenario, so nothing was proven\n{o}")
        }
        Err(ScenarioError::CriteriaFailed(outcome)) => {
            let failed: Vec<String> =
                outcome.verdicts.iter().filter(|v| !v.passed).map(|v| v.criterion.clone()).collect();
            ensure!(
                failed.iter().any(|c| c.contains(criterion)),
                "caught, but by {failed:?} instead of a criterion containing {criterion:?}\n{outcome}"
            );
            tracing::info!("caught as expected by {failed:?}\n{outcome}");
            Ok(failed)
        }
    }
}
