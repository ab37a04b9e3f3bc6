//! The report model: a run of tests, each optionally with a scenario's details.

use serde::{Deserialize, Serialize};

use super::{TestRecord, TestStatus};

/// One run of a suite: what every reporter (JSON, CSV, HTML, history) reads.
///
/// ```
/// use chaos_harness::report::{RunReport, TestRecord, TestStatus};
/// let run = RunReport::new("smoke", vec![TestRecord::new("a", TestStatus::Passed)]);
/// assert_eq!((run.passed(), run.failed(), run.skipped()), (1, 0, 0));
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    /// Suite or binary name.
    pub suite: String,
    /// When the run started (unix milliseconds).
    pub started_unix_ms: u64,
    /// Harness version that produced the report.
    pub harness_version: String,
    /// The tests.
    pub tests: Vec<TestRecord>,
    /// The command line that produced the run (`chaos run --cycles 3`).
    #[serde(default)]
    pub command_line: String,
    /// The host it ran on.
    #[serde(default)]
    pub host: String,
    /// The profile (`fast`, `slow`, ...), when one was chosen.
    #[serde(default)]
    pub profile: Option<String>,
    /// Defects of the target that were enabled.
    #[serde(default)]
    pub defects: Vec<String>,
    /// The seed every scenario ran with, when one was given.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Repetitions of the set (`--cycles`).
    #[serde(default = "one")]
    pub cycles: u32,
    /// Set when the run was cut short: by what, after how long (`SIGINT after 12.3 s`).
    #[serde(default)]
    pub interrupted: Option<String>,
    /// Per scenario over its runs: pass counts, Wilson interval, worst time to hold of each
    /// criterion ([`stats::by_scenario`](super::stats::by_scenario); filled when written).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statistics: Vec<super::stats::ScenarioStats>,
}

fn one() -> u32 {
    1
}

impl RunReport {
    /// A report stamped with the current time.
    pub fn new(suite: impl Into<String>, tests: Vec<TestRecord>) -> Self {
        let started_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self {
            suite: suite.into(),
            started_unix_ms,
            harness_version: env!("CARGO_PKG_VERSION").into(),
            tests,
            command_line: String::new(),
            host: nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
            profile: None,
            defects: Vec::new(),
            seed: None,
            cycles: 1,
            interrupted: None,
            statistics: Vec::new(),
        }
    }

    /// Tests that passed.
    pub fn passed(&self) -> usize {
        self.tests.iter().filter(|t| t.status == TestStatus::Passed).count()
    }

    /// Tests that failed.
    pub fn failed(&self) -> usize {
        self.tests.iter().filter(|t| matches!(t.status, TestStatus::Failed { .. })).count()
    }

    /// Tests that were skipped.
    pub fn skipped(&self) -> usize {
        self.tests.iter().filter(|t| matches!(t.status, TestStatus::Skipped { .. })).count()
    }
}

/// What a scenario did and found.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ScenarioReport {
    /// The scenario's name.
    pub name: String,
    /// One verdict per criterion.
    pub verdicts: Vec<CriterionVerdict>,
    /// Faults, phases and observations on the timeline.
    pub events: Vec<TimelineEvent>,
    /// Load statistics per phase.
    pub phases: Vec<PhaseReport>,
    /// Load over time (one point per bucket), for charts.
    pub series: Vec<SeriesPoint>,
    /// Performance impact: per phase, throughput, latency and resources, with deltas to the
    /// baseline (absent when the scenario had no phases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<crate::scenario::impact::Impact>,
    /// When it failed: each fixture's processes that survived, started or exited (root cause).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<crate::scenario::ProcessChange>,
    /// When it failed: the last lines of each fixture log at the failure (root cause).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<crate::scenario::FixtureLog>,
}

/// One criterion's verdict.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CriterionVerdict {
    /// The criterion, as written (`no_orphans within 5s`).
    pub criterion: String,
    /// Whether it held.
    pub passed: bool,
    /// What was observed.
    pub detail: String,
}

/// Something that happened during a scenario.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TimelineEvent {
    /// Milliseconds since the scenario started.
    pub at_ms: u64,
    /// `fault`, `clear`, `phase`, `observation`, `telemetry`, ...
    pub kind: String,
    /// Human-readable description.
    pub detail: String,
}

/// Load statistics of one phase.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PhaseReport {
    /// Phase name (`baseline`, `fault`, `recovery`).
    pub phase: String,
    /// Phase start, ms since the scenario started.
    pub from_ms: u64,
    /// Phase end.
    pub to_ms: u64,
    /// Requests that ended in the phase (skipped ticks by their intended time).
    pub total: u64,
    /// Successful ones.
    pub ok: u64,
    /// Error replies from the target.
    pub errors: u64,
    /// Error replies by kind (`category/reason`).
    #[serde(default)]
    pub error_kinds: std::collections::BTreeMap<String, u64>,
    /// Refused: nothing reached the server.
    #[serde(default)]
    pub refused: u64,
    /// Sent, no answer within the per-request timeout.
    #[serde(default)]
    pub timeouts: u64,
    /// Sent, then cut without an answer (indeterminate).
    pub lost: u64,
    /// Open-loop ticks not issued.
    #[serde(default)]
    pub skipped: u64,
    /// Requests whose lifetime overlaps the phase.
    #[serde(default)]
    pub overlapping: u64,
    /// Issued requests per second of the phase (everything but skipped ticks).
    #[serde(default)]
    pub issued_per_s: f64,
    /// Successful requests per second of the phase.
    #[serde(default)]
    pub throughput: f64,
    /// Median latency of successes, microseconds (from the intended send time).
    pub p50_us: Option<u64>,
    /// 90th percentile, microseconds.
    #[serde(default)]
    pub p90_us: Option<u64>,
    /// 99th percentile latency of successes, microseconds.
    pub p99_us: Option<u64>,
    /// 99.9th percentile, microseconds.
    #[serde(default)]
    pub p999_us: Option<u64>,
    /// Maximum, microseconds.
    #[serde(default)]
    pub max_us: Option<u64>,
}

/// Load in one time bucket.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SeriesPoint {
    /// Bucket start, ms since the scenario started.
    pub at_ms: u64,
    /// Successful requests in the bucket.
    pub ok: u64,
    /// Requests ended in the bucket that did not succeed (errors, refused, timeouts, lost).
    pub failed: u64,
    /// Requests ended in the bucket that were refused.
    #[serde(default)]
    pub refused: u64,
    /// Requests ended in the bucket that were lost or timed out.
    #[serde(default)]
    pub lost: u64,
    /// Median latency of successes in the bucket, microseconds.
    pub p50_us: Option<u64>,
    /// 99th percentile latency of successes in the bucket, microseconds.
    pub p99_us: Option<u64>,
}
