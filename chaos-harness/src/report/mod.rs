//! Reporting: the result model every reporter reads, and the reporters (JUnit now; JSON, CSV,
//! HTML and history build on the same [`TestRecord`]).

pub mod compare;
pub mod csv;
pub mod history;
pub mod html;
pub mod junit;
#[cfg(feature = "metrics")]
pub mod metrics;
mod model;
pub mod scenario;
pub mod stats;
#[cfg(feature = "otel")]
pub mod trace;
pub mod trends;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use model::{CriterionVerdict, PhaseReport, RunReport, ScenarioReport, SeriesPoint, TimelineEvent};

/// How one test ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TestStatus {
    /// The test passed.
    Passed,
    /// The test failed; `message` is one line naming what failed, `detail` the full story.
    Failed {
        /// One line: what failed.
        message: String,
        /// Error chain, seed, captured logs.
        detail: String,
    },
    /// The test did not run; the reason says why (author's ignore, missing capability).
    Skipped {
        /// Why it was skipped, if known.
        reason: Option<String>,
    },
}

/// The outcome of one test, as reporters see it.
///
/// ```
/// use chaos_harness::report::{TestRecord, TestStatus};
/// let r = TestRecord::new("process::smoke", TestStatus::Passed);
/// assert_eq!(r.name, "process::smoke");
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TestRecord {
    /// Full test name.
    pub name: String,
    /// Source file of the test, when known.
    pub file: Option<String>,
    /// Source line of the test, when known.
    pub line: Option<u32>,
    /// The test's tags.
    pub tags: Vec<String>,
    /// The seed the test ran with.
    pub seed: Option<u64>,
    /// How it ended.
    pub status: TestStatus,
    /// Wall-clock duration.
    #[serde(with = "duration_ms")]
    pub duration: Duration,
    /// Captured output (tracing events, panics, fixture log tails).
    pub output: String,
    /// The scenario's details (criteria, timeline, load), when the test ran one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<ScenarioReport>,
    /// The test was still running when the run was interrupted (its status is `Failed`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// The failed attempts before the final one, for a test run with retries: with a final
    /// pass the test is flaky (JUnit `flakyFailure`), with a final failure they are its
    /// `rerunFailure`s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_attempts: Vec<FailedAttempt>,
    /// How long its first fixture took from the test's start to ready (ms), when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_ms: Option<u64>,
}

/// One failed attempt of a test that was retried.
///
/// ```
/// use chaos_harness::report::{FailedAttempt, TestRecord, TestStatus};
/// let mut r = TestRecord::new("a", TestStatus::Passed);
/// assert!(!r.is_flaky());
/// r.failed_attempts.push(FailedAttempt { message: "boom".into(), ..Default::default() });
/// assert!(r.is_flaky());
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FailedAttempt {
    /// One line: what failed.
    pub message: String,
    /// Error chain, seed, captured logs.
    pub detail: String,
    /// Wall-clock duration of the attempt.
    #[serde(with = "duration_ms")]
    pub duration: Duration,
    /// The seed the attempt ran with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl FailedAttempt {
    /// The failed attempt a record describes; `None` if the record is not a failure.
    pub fn of(record: &TestRecord) -> Option<Self> {
        match &record.status {
            TestStatus::Failed { message, detail } => Some(Self {
                message: message.clone(),
                detail: detail.clone(),
                duration: record.duration,
                seed: record.seed,
            }),
            _ => None,
        }
    }
}

/// Serializes a [`Duration`] as fractional milliseconds.
pub(crate) mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        Ok(Duration::from_secs_f64((ms.max(0.0)) / 1000.0))
    }
}

impl TestRecord {
    /// A record with only a name and a status.
    pub fn new(name: impl Into<String>, status: TestStatus) -> Self {
        Self {
            name: name.into(),
            file: None,
            line: None,
            tags: Vec::new(),
            seed: None,
            status,
            duration: Duration::ZERO,
            output: String::new(),
            scenario: None,
            interrupted: false,
            failed_attempts: Vec::new(),
            ready_ms: None,
        }
    }

    /// Passed after failing at least once (with retries): reported as flaky, never silently
    /// green.
    pub fn is_flaky(&self) -> bool {
        self.status == TestStatus::Passed && !self.failed_attempts.is_empty()
    }
}
