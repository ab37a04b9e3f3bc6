//! Helpers shared by the chaos suite's modules (one copy, as ripgrep's tests share `util`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::ensure;
use chaos_harness::fixture::{Process, python3};
use chaos_harness::prelude::*;
use chaos_harness::sandbox::{OwnedPid, cgroup};

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
        .ready(Probe::log_line(&format!("^ready: {workers} workers"))?)
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
