//! Helpers shared by the chaos suite's modules.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `fixtures/programs/`: the small servers and daemons the suite starts.
pub fn programs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/programs")
}

/// Waits (up to 10 s) until a line of `log` contains `needle`.
pub async fn wait_for_log(log: &Path, needle: &str) -> anyhow::Result<()> {
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.lines().any(|l| l.contains(needle)) {
            return Ok(());
        }
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(10),
            "no line with {needle:?} in {}:\n{text}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
