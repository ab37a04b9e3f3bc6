//! Reporting: the result model every reporter reads, and the reporters (JUnit now; JSON, CSV,
//! HTML and history build on the same [`TestRecord`]).

pub mod junit;

use std::time::Duration;

/// How one test ended.
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug)]
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
    pub duration: Duration,
    /// Captured output (tracing events, panics, fixture log tails).
    pub output: String,
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
        }
    }
}
