//! The typed [`Event`]s of a scenario: every happening on one stream, with a monotonic `at`.
//!
//! Nothing downstream (outcome, reports, metrics, progress) parses strings: each reads the
//! [`EventKind`] it cares about. `Display` gives the one-line human form used in logs and in
//! a scenario's printed timeline.
//!
//! ```
//! use std::time::Duration;
//! use chaos_harness::observe::{Event, EventKind, Phase};
//! let e = Event { at: Duration::from_millis(1500), kind: EventKind::PhaseEntered { phase: Phase::Fault } };
//! assert_eq!(e.to_string(), "+1500ms phase fault");
//! let json = serde_json::to_string(&e).unwrap();
//! assert_eq!(json, r#"{"at_us":1500000,"kind":"phase_entered","phase":"fault"}"#);
//! assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);
//! ```

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Phase;
use crate::fault::Confirmation;
use crate::load::LoadStats;

/// Which fault an event is about: its number in the scenario (0, 1, ...), its registry kind
/// (`kill`, `latency`, or `custom`) and its description.
///
/// ```
/// let f = chaos_harness::observe::FaultRef { id: 0, kind: "kill".into(), description: "SIGKILL main of web".into() };
/// assert_eq!(f.to_string(), "#0 SIGKILL main of web");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRef {
    /// The fault's number in its scenario, in injection order.
    pub id: u32,
    /// The registry name of the fault's kind (`custom` for unregistered faults).
    pub kind: String,
    /// The fault's description.
    pub description: String,
}

impl fmt::Display for FaultRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {}", self.id, self.description)
    }
}

/// Load counts over one sampling window (see [`EventKind::LoadSample`]).
///
/// ```
/// let s = chaos_harness::observe::LoadWindow::default();
/// assert_eq!(s.ok + s.failed, 0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadWindow {
    /// Requests that succeeded in the window.
    pub ok: u64,
    /// Requests that failed or were lost in the window.
    pub failed: u64,
    /// Median latency of the successes, microseconds.
    pub p50_us: Option<u64>,
    /// 99th percentile latency of the successes, microseconds.
    pub p99_us: Option<u64>,
    /// Requests that ended in the window by outcome kind (`ok`, `error`, `timeout`, ...; see
    /// [`crate::load::Outcome::kind`]).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub by_outcome: std::collections::BTreeMap<String, u64>,
    /// The latency of every success in the window, microseconds: what live histograms (the
    /// metrics exporter) observe. Kept on the live stream only, not serialized.
    #[serde(skip)]
    pub latencies_us: Vec<u64>,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A scenario began.
    ScenarioStarted {
        /// Its name.
        scenario: String,
        /// The test's seed.
        seed: u64,
    },
    /// A step of the scenario began (`wait 2s`, `inject ...`, `expect ...`).
    StepStarted {
        /// The step's index in the scenario.
        step: usize,
        /// What the step does.
        what: String,
    },
    /// The scenario entered a phase.
    PhaseEntered {
        /// The phase.
        phase: Phase,
    },
    /// A fault is being injected.
    FaultInjecting {
        /// The fault.
        fault: FaultRef,
    },
    /// A fault took effect, with the proof.
    FaultConfirmed {
        /// The fault.
        fault: FaultRef,
        /// The proof.
        confirmation: Confirmation,
        /// Whether it is a one-shot fault (a kill) with nothing to clear.
        one_shot: bool,
    },
    /// A fault could not be put into effect or confirmed: the scenario fails as not injected.
    FaultNotInjected {
        /// The fault.
        fault: FaultRef,
        /// Why.
        reason: String,
    },
    /// A fault was cleared, with the proof.
    FaultCleared {
        /// The fault.
        fault: FaultRef,
        /// The proof.
        confirmation: Confirmation,
    },
    /// Clearing a fault failed; teardown undoes it from the journal.
    FaultClearFailed {
        /// The fault.
        fault: FaultRef,
        /// Why.
        error: String,
    },
    /// A criterion's verdict.
    CriterionVerdict {
        /// The criterion as written.
        criterion: String,
        /// Its registry kind (`no_orphans`, `respawned`, ...; `custom` when unregistered): a
        /// label with few values, for metrics.
        #[serde(default)]
        criterion_kind: String,
        /// Whether it held.
        passed: bool,
        /// What was observed.
        detail: String,
    },
    /// The scenario's load started.
    LoadStarted {
        /// The load, described.
        load: String,
    },
    /// Load counts of the last sampling window (about once a second while load runs).
    LoadSample {
        /// The counts.
        window: LoadWindow,
    },
    /// The scenario's load stopped.
    LoadStopped {
        /// Its statistics.
        stats: LoadStats,
    },
    /// A guard tripped: the scenario stops, clears its faults and fails.
    GuardTripped {
        /// The guard and its reading.
        reading: String,
    },
    /// A fixture was started.
    FixtureStarted {
        /// Its name.
        fixture: String,
        /// Its main pid.
        pid: Option<i32>,
    },
    /// A fixture's main process ended.
    FixtureExited {
        /// The fixture.
        fixture: String,
        /// The pid that ended.
        pid: i32,
    },
    /// A fixture's main process was replaced by a new one (a supervised restart).
    FixtureRestarted {
        /// The fixture.
        fixture: String,
        /// The old main pid.
        old_pid: Option<i32>,
        /// The new main pid.
        new_pid: i32,
    },
    /// A fixture's main process executed a new program under the same pid (a server reload
    /// does that).
    FixtureReexeced {
        /// The fixture.
        fixture: String,
        /// The pid.
        pid: i32,
        /// The program before.
        from: String,
        /// The program now.
        to: String,
    },
    /// The latest resource sample of one monitored role (about once a second while a scenario
    /// runs; the full series is in the outcome).
    MonitorSample {
        /// The fixture.
        fixture: String,
        /// The role (`main`, `all`, `workers`, ...).
        role: String,
        /// The sample.
        sample: super::monitor::ResourceSample,
    },
    /// Anything else worth a line on the timeline.
    Note {
        /// The text.
        text: String,
    },
    /// The scenario ended.
    ScenarioFinished {
        /// Whether it passed.
        passed: bool,
    },
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKind::ScenarioStarted { scenario, seed } => write!(f, "scenario {scenario:?} started (seed {seed})"),
            EventKind::StepStarted { step, what } => write!(f, "step {step}: {what}"),
            EventKind::PhaseEntered { phase } => write!(f, "phase {phase}"),
            EventKind::FaultInjecting { fault } => write!(f, "inject {fault}"),
            EventKind::FaultConfirmed { fault, confirmation, .. } => {
                write!(f, "confirmed #{}: {}", fault.id, confirmation.detail)
            }
            EventKind::FaultNotInjected { fault, reason } => write!(f, "NOT INJECTED {fault}: {reason}"),
            EventKind::FaultCleared { fault, confirmation } => {
                write!(f, "cleared #{}: {}", fault.id, confirmation.detail)
            }
            EventKind::FaultClearFailed { fault, error } => {
                write!(f, "CLEAR FAILED {fault}: {error} (teardown will undo it from the journal)")
            }
            EventKind::CriterionVerdict { criterion, passed, detail, .. } => {
                write!(f, "{} {criterion}: {detail}", if *passed { "PASS" } else { "FAIL" })
            }
            EventKind::LoadStarted { load } => write!(f, "load started: {load}"),
            EventKind::LoadSample { window } => write!(f, "load: {} ok, {} failed", window.ok, window.failed),
            EventKind::LoadStopped { stats } => write!(f, "load stopped: {stats}"),
            EventKind::GuardTripped { reading } => write!(f, "GUARD TRIPPED {reading}"),
            EventKind::FixtureStarted { fixture, pid } => match pid {
                Some(pid) => write!(f, "fixture {fixture} started (pid {pid})"),
                None => write!(f, "fixture {fixture} started"),
            },
            EventKind::FixtureExited { fixture, pid } => write!(f, "fixture {fixture}: main pid {pid} exited"),
            EventKind::FixtureRestarted { fixture, old_pid, new_pid } => match old_pid {
                Some(old) => write!(f, "fixture {fixture} restarted: main pid {old} -> {new_pid}"),
                None => write!(f, "fixture {fixture} restarted: main pid {new_pid}"),
            },
            EventKind::FixtureReexeced { fixture, pid, from, to } => {
                write!(f, "fixture {fixture}: pid {pid} re-executed ({from} -> {to})")
            }
            EventKind::MonitorSample { fixture, role, sample } => write!(
                f,
                "monitor {fixture}.{role}: {} processes, RSS {} KiB, {} fds, {} threads, CPU {:.2} s",
                sample.processes,
                sample.rss_bytes / 1024,
                sample.fds,
                sample.threads,
                sample.cpu_secs()
            ),
            EventKind::Note { text } => f.write_str(text),
            EventKind::ScenarioFinished { passed } => {
                write!(f, "scenario {}", if *passed { "passed" } else { "failed" })
            }
        }
    }
}

/// One happening, `at` a monotonic offset (from the scenario's start in an outcome, from the
/// test's start on the live stream).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When, as an offset.
    #[serde(rename = "at_us", with = "duration_us")]
    pub at: Duration,
    /// What.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}ms {}", self.at.as_millis(), self.kind)
    }
}

/// Serde helper: a [`Duration`] as whole microseconds.
///
/// ```
/// #[derive(serde::Serialize)]
/// struct T { #[serde(with = "chaos_harness::observe::event::duration_us")] d: std::time::Duration }
/// assert_eq!(serde_json::to_string(&T { d: std::time::Duration::from_millis(2) }).unwrap(), r#"{"d":2000}"#);
/// ```
pub mod duration_us {
    use std::time::Duration;

    /// Serializes as microseconds.
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    /// Deserializes from microseconds.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let us = <u64 as serde::Deserialize>::deserialize(d)?;
        Ok(Duration::from_micros(us))
    }
}
