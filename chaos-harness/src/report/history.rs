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
    /// Per scenario: verdict and key measurements.
    #[serde(default)]
    pub scenarios: Vec<ScenarioHistory>,
    /// Harness version of the run (with `defects`: what "the same code" means for flakiness).
    #[serde(default)]
    pub harness_version: String,
    /// Defects of the target that were enabled.
    #[serde(default)]
    pub defects: Vec<String>,
    /// Names of the tests that failed and then passed on a retry (counted as passed, never
    /// silently: they are listed here and in `flaky`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flaky: Vec<String>,
}

/// One scenario run, as history keeps it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ScenarioHistory {
    /// Test name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// Key measurements: `duration_ms`, `<phase>.p99_us`, `<phase>.lost`, `<phase>.errors`.
    pub measurements: std::collections::BTreeMap<String, f64>,
}

impl ScenarioHistory {
    /// The history view of one test record.
    pub fn of(t: &super::TestRecord) -> Self {
        let mut m = std::collections::BTreeMap::new();
        m.insert("duration_ms".to_string(), t.duration.as_secs_f64() * 1000.0);
        for p in t.scenario.iter().flat_map(|s| &s.phases) {
            if let Some(v) = p.p99_us {
                m.insert(format!("{}.p99_us", p.phase), v as f64);
            }
            m.insert(format!("{}.lost", p.phase), p.lost as f64);
            m.insert(format!("{}.errors", p.phase), p.errors as f64);
        }
        Self { name: t.name.clone(), passed: t.status == super::TestStatus::Passed, measurements: m }
    }
}

/// A measurement worse than the history's median by more than its spread (median absolute
/// deviation, at least 10 % of the median): `(scenario, measurement, median, now)`.
///
/// ```
/// use chaos_harness::report::history::{HistoryEntry, ScenarioHistory, regressions};
/// let entry = |v: f64| HistoryEntry {
///     started_unix_ms: 0, suite: "s".into(), passed: 1, failed: 0, skipped: 0, failures: vec![], duration_ms: 0.0,
///     scenarios: vec![ScenarioHistory { name: "a".into(), passed: true,
///         measurements: [("fault.p99_us".to_string(), v)].into() }],
///     harness_version: "0.1.0".into(), defects: vec![], flaky: vec![],
/// };
/// let past: Vec<_> = [1000.0, 1100.0, 950.0, 1050.0].map(entry).to_vec();
/// assert_eq!(regressions(&past, &entry(5000.0)).len(), 1);
/// assert!(regressions(&past, &entry(1080.0)).is_empty());
/// ```
pub fn regressions(past: &[HistoryEntry], now: &HistoryEntry) -> Vec<(String, String, f64, f64)> {
    let mut out = Vec::new();
    for s in &now.scenarios {
        for (k, &v) in &s.measurements {
            let mut hist: Vec<f64> = past
                .iter()
                .flat_map(|e| &e.scenarios)
                .filter(|p| p.name == s.name)
                .filter_map(|p| p.measurements.get(k).copied())
                .collect();
            if let Some((med, spread)) = median_spread(&mut hist)
                && worse(v, med, spread)
            {
                out.push((s.name.clone(), k.clone(), med, v));
            }
        }
    }
    out
}

/// The median of `values` and their spread (median absolute deviation, at least 10 % of the
/// median); `None` with fewer than three values (too little history to judge).
///
/// ```
/// use chaos_harness::report::history::median_spread;
/// assert_eq!(median_spread(&mut [1000.0, 1100.0, 950.0, 1050.0]), Some((1025.0, 102.5)));
/// assert_eq!(median_spread(&mut [1.0, 2.0]), None);
/// ```
pub fn median_spread(values: &mut [f64]) -> Option<(f64, f64)> {
    fn median(v: &mut [f64]) -> f64 {
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
    }
    if values.len() < 3 {
        return None;
    }
    let med = median(values);
    let mut dev: Vec<f64> = values.iter().map(|x| (x - med).abs()).collect();
    Some((med, median(&mut dev).max(0.1 * med.abs())))
}

/// Whether `value` is worse (higher) than `median` by more than `spread`.
pub(crate) fn worse(value: f64, median: f64, spread: f64) -> bool {
    value > median + spread.max(f64::EPSILON)
}

/// Scenarios whose verdict changed over the last `window` runs of the same code (the same
/// harness version and defects are the caller's filter): flaky, with their failure counts.
pub fn flaky_scenarios(entries: &[HistoryEntry], window: usize) -> Vec<(String, usize)> {
    let recent = &entries[entries.len().saturating_sub(window)..];
    let mut seen: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for s in recent.iter().flat_map(|e| &e.scenarios) {
        let c = seen.entry(&s.name).or_default();
        if s.passed { c.0 += 1 } else { c.1 += 1 }
    }
    seen.into_iter().filter(|(_, (p, f))| *p > 0 && *f > 0).map(|(n, (_, f))| (n.to_string(), f)).collect()
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
            // A skipped run has no verdict: neither a pass nor a failure in the history.
            scenarios: run
                .tests
                .iter()
                .filter(|t| !matches!(t.status, super::TestStatus::Skipped { .. }))
                .map(ScenarioHistory::of)
                .collect(),
            harness_version: run.harness_version.clone(),
            defects: run.defects.clone(),
            flaky: run.tests.iter().filter(|t| t.is_flaky()).map(|t| t.name.clone()).collect(),
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

/// Tests that failed in some of the last `window` runs and passed in others, or passed on a
/// retry after failing (an entry's `flaky`): flaky candidates, with their failure counts (a
/// retried pass counts one), most failures first.
pub fn flaky(entries: &[HistoryEntry], window: usize) -> Vec<(String, usize)> {
    let recent = &entries[entries.len().saturating_sub(window)..];
    let mut counts: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for e in recent {
        for f in &e.failures {
            counts.entry(f).or_default().0 += 1;
        }
        for f in &e.flaky {
            counts.entry(f).or_default().1 += 1;
        }
    }
    let mut out: Vec<(String, usize)> = counts
        .into_iter()
        .filter(|(_, (failed, retried))| *retried > 0 || *failed < recent.len())
        .map(|(k, (failed, retried))| (k.to_string(), failed + retried))
        .collect();
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
        assert_eq!(flaky_scenarios(&entries, 10), vec![("a".to_string(), 1)]);
        assert!(entries[1].scenarios[0].measurements.contains_key("duration_ms"));
    }

    #[test]
    fn a_pass_after_a_retry_is_flaky_in_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let mut retried = TestRecord::new("c", TestStatus::Passed);
        retried.failed_attempts.push(crate::report::FailedAttempt { message: "x".into(), ..Default::default() });
        append(&path, &RunReport::new("s", vec![retried, TestRecord::new("d", TestStatus::Passed)])).unwrap();
        let (entries, _) = read(&path);
        assert_eq!(entries[0].flaky, vec!["c".to_string()]);
        assert_eq!((entries[0].passed, entries[0].failed), (2, 0));
        // One run is enough: the retry shows it.
        assert_eq!(flaky(&entries, 10), vec![("c".to_string(), 1)]);
    }
}
