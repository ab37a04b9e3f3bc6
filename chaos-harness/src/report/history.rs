//! Run history: one JSON line per run appended to `history.jsonl`, and trends over it.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::RunReport;
use crate::Error;

/// One run, summarised for history.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct HistoryEntry {
    /// Unix milliseconds.
    pub started_unix_ms: u64,
    /// Suite name.
    pub suite: String,
    /// Passed tests.
    pub passed: usize,
    /// Failed tests.
    pub failed: usize,
    /// Skipped tests.
    pub skipped: usize,
    /// Names of the failed tests.
    pub failures: Vec<String>,
    /// Total duration in ms.
    pub duration_ms: f64,
}

impl HistoryEntry {
    /// Summarises a run.
    pub fn of(run: &RunReport) -> Self {
        Self {
            started_unix_ms: run.started_unix_ms,
            suite: run.suite.clone(),
            passed: run.passed(),
            failed: run.failed(),
            skipped: run.skipped(),
            failures: run
                .tests
                .iter()
                .filter(|t| matches!(t.status, super::TestStatus::Failed { .. }))
                .map(|t| t.name.clone())
                .collect(),
            duration_ms: run.tests.iter().map(|t| t.duration.as_secs_f64() * 1000.0).sum(),
        }
    }
}

/// Appends the run to `path` (JSON lines).
pub fn append(path: &Path, run: &RunReport) -> Result<(), Error> {
    let io = |source| Error::Io {
        what: "appending to the run history".into(),
        path: path.to_path_buf(),
        source,
        fix: "check that the report directory is writable".into(),
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut line = serde_json::to_string(&HistoryEntry::of(run)).map_err(|e| io(std::io::Error::other(e)))?;
    line.push('\n');
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
    f.write_all(line.as_bytes()).map_err(io)
}

/// Reads the history; lines that do not parse are skipped (and counted).
///
/// ```
/// let (entries, bad) = chaos_harness::report::history::read("/nonexistent/history.jsonl".as_ref());
/// assert!(entries.is_empty() && bad == 0);
/// ```
pub fn read(path: &Path) -> (Vec<HistoryEntry>, usize) {
    let Ok(text) = std::fs::read_to_string(path) else { return (Vec::new(), 0) };
    let mut bad = 0;
    let entries = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).map_err(|_| bad += 1).ok())
        .collect();
    (entries, bad)
}

/// Tests that failed in some of the last `window` runs and passed in others: flaky candidates,
/// with their failure counts, most failures first.
pub fn flaky(entries: &[HistoryEntry], window: usize) -> Vec<(String, usize)> {
    let recent = &entries[entries.len().saturating_sub(window)..];
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for e in recent {
        for f in &e.failures {
            *counts.entry(f).or_default() += 1;
        }
    }
    let mut out: Vec<(String, usize)> =
        counts.into_iter().filter(|(_, n)| *n < recent.len()).map(|(k, n)| (k.to_string(), n)).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{TestRecord, TestStatus};

    #[test]
    fn append_read_and_trend() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h/history.jsonl");
        let fail = || TestStatus::Failed { message: "x".into(), detail: "x".into() };
        append(&path, &RunReport::new("s", vec![TestRecord::new("a", fail()), TestRecord::new("b", fail())])).unwrap();
        append(
            &path,
            &RunReport::new("s", vec![TestRecord::new("a", TestStatus::Passed), TestRecord::new("b", fail())]),
        )
        .unwrap();
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{torn\n").unwrap();
        let (entries, bad) = read(&path);
        assert_eq!((entries.len(), bad), (2, 1));
        assert_eq!(entries[1].failures, vec!["b".to_string()]);
        // `b` failed every time (broken, not flaky); `a` failed once in two runs.
        assert_eq!(flaky(&entries, 10), vec![("a".to_string(), 1)]);
    }
}
