//! [`ScenarioOutcome`]: what a scenario did and found, built from its typed events; and
//! [`ScenarioError`], which carries it when the scenario fails.

use serde::{Deserialize, Serialize};

use crate::criteria::Verdict;
use crate::fault::Confirmation;
use crate::load::{LoadReport, LoadStats};
use crate::observe::{Event, EventKind, PhaseSpan};

/// What a scenario did and found. Its `Display` is the timeline (the events, one per line)
/// followed by the sandbox notes.
///
/// ```
/// let o = chaos_harness::scenario::ScenarioOutcome::default();
/// assert!(o.passed());
/// assert!(o.events.is_empty());
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScenarioOutcome {
    /// The scenario's name.
    pub name: String,
    /// The test's seed.
    pub seed: u64,
    /// Everything that happened, in order, with offsets from the scenario's start.
    pub events: Vec<Event>,
    /// The phases the timeline went through (baseline, fault, recovery, named ones).
    pub phases: Vec<PhaseSpan>,
    /// Confirmations of injected (and cleared) faults.
    pub confirmations: Vec<Confirmation>,
    /// The fault that could not be injected, with the reason.
    pub not_injected: Option<String>,
    /// Criterion verdicts.
    pub verdicts: Vec<Verdict>,
    /// Sandbox notes (e.g. the reduced guarantee without cgroups).
    pub notes: Vec<String>,
    /// Statistics of the scenario's load, if it ran one.
    pub load: Option<LoadStats>,
    /// Every request of the load, for reports (not serialized).
    #[serde(skip)]
    pub load_report: Option<LoadReport>,
    /// The guard that stopped the scenario, with its reading.
    #[serde(default)]
    pub aborted_by_guard: Option<String>,
    /// When it failed: each fixture's processes that survived, started or exited.
    #[serde(default)]
    pub processes: Vec<super::ProcessChange>,
    /// When it failed: the last lines of each fixture log at the failure.
    #[serde(default)]
    pub logs: Vec<super::FixtureLog>,
    /// Resource series (CPU, RSS, fds, threads, processes) per fixture and role, sampled every
    /// 100 ms while the scenario ran (see [`crate::observe::Monitor`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monitor: Vec<crate::observe::MonitorSeries>,
}

impl ScenarioOutcome {
    /// Whether every fault was injected, every criterion held and no guard tripped.
    pub fn passed(&self) -> bool {
        self.not_injected.is_none() && self.aborted_by_guard.is_none() && self.verdicts.iter().all(|v| v.passed)
    }

    /// The first event matching `pred`, if any.
    ///
    /// ```
    /// # use chaos_harness::observe::EventKind;
    /// let o = chaos_harness::scenario::ScenarioOutcome::default();
    /// assert!(o.first(|k| matches!(k, EventKind::FaultConfirmed { .. })).is_none());
    /// ```
    pub fn first(&self, pred: impl Fn(&EventKind) -> bool) -> Option<&Event> {
        self.events.iter().find(|e| pred(&e.kind))
    }

    /// The resource series of a selector expression (`web.main`, `pit.workers`), if monitored.
    ///
    /// ```
    /// let o = chaos_harness::scenario::ScenarioOutcome::default();
    /// assert!(o.monitor_of("web.main").is_none());
    /// ```
    pub fn monitor_of(&self, expr: &str) -> Option<&crate::observe::MonitorSeries> {
        self.monitor.iter().find(|s| s.expr() == expr)
    }

    /// Performance impact: per phase, throughput, latency and resources, with the difference
    /// to the baseline (see [`super::impact`]).
    ///
    /// ```
    /// let o = chaos_harness::scenario::ScenarioOutcome::default();
    /// assert!(o.impact().phases.is_empty());
    /// ```
    pub fn impact(&self) -> super::impact::Impact {
        super::impact::impact(self)
    }

    /// The one-line summary of what failed: the not-injected fault, the guard, or the first
    /// failed criterion with what it observed.
    pub fn failure_summary(&self) -> Option<String> {
        if let Some(n) = &self.not_injected {
            return Some(format!("not injected: {n}"));
        }
        if let Some(g) = &self.aborted_by_guard {
            return Some(format!("aborted by guard: {g}"));
        }
        self.verdicts.iter().find(|v| !v.passed).map(|v| format!("{}: {}", v.criterion, v.detail))
    }

    /// The one line CI shows (JUnit `<failure message>`, the CLI's summary): the scenario and
    /// [`failure_summary`](Self::failure_summary); `None` when it passed.
    ///
    /// ```
    /// use chaos_harness::criteria::Verdict;
    /// let o = chaos_harness::scenario::ScenarioOutcome {
    ///     name: "beam-sigkill".into(),
    ///     verdicts: vec![Verdict { criterion: "no_orphans within 5s".into(), passed: false, detail: "pid 42 survived".into() }],
    ///     ..Default::default()
    /// };
    /// assert_eq!(o.failure_message().unwrap(), "scenario \"beam-sigkill\": no_orphans within 5s: pid 42 survived");
    /// ```
    pub fn failure_message(&self) -> Option<String> {
        self.failure_summary().map(|summary| format!("scenario {:?}: {summary}", self.name))
    }
}

impl std::fmt::Display for ScenarioOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.passed() { "PASSED" } else { "FAILED" };
        writeln!(f, "scenario {:?} (seed {}): {verdict}", self.name, self.seed)?;
        if let Some(n) = &self.not_injected {
            writeln!(f, "  NOT INJECTED: {n}")?;
        }
        if let Some(g) = &self.aborted_by_guard {
            writeln!(f, "  ABORTED BY GUARD: {g}")?;
        }
        for e in &self.events {
            writeln!(f, "  {e}")?;
        }
        for n in &self.notes {
            writeln!(f, "  note: {n}")?;
        }
        for p in &self.processes {
            writeln!(f, "  process {p}")?;
        }
        for l in &self.logs {
            for (i, line) in l.during_scenario().iter().enumerate() {
                let n = l.first_line + l.scenario_from + i;
                writeln!(f, "  log {}:{n}: {line}", l.file)?;
            }
        }
        Ok(())
    }
}

/// Why a scenario failed; carries the full outcome.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A fault could not be put into effect or confirmed.
    #[error("{0}")]
    NotInjected(Box<ScenarioOutcome>),
    /// A criterion did not hold.
    #[error("{0}")]
    CriteriaFailed(Box<ScenarioOutcome>),
    /// A guard tripped: the scenario stopped, its load and faults were stopped and cleared.
    #[error("{0}")]
    AbortedByGuard(Box<ScenarioOutcome>),
}

impl ScenarioError {
    /// The outcome.
    pub fn outcome(&self) -> &ScenarioOutcome {
        match self {
            ScenarioError::NotInjected(o) | ScenarioError::CriteriaFailed(o) | ScenarioError::AbortedByGuard(o) => o,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome() -> ScenarioOutcome {
        let v = |criterion: &str, passed, detail: &str| Verdict {
            criterion: criterion.into(),
            passed,
            detail: detail.into(),
        };
        ScenarioOutcome {
            name: "beam-sigkill".into(),
            seed: 7,
            verdicts: vec![
                v("error_rate during baseline at most 0", true, "0 of 400 requests failed"),
                v(
                    "no_orphans within 5s",
                    false,
                    "2 process(es) survived: pid 4242 (python3 grpc_server.py --port 50051), pid 4243 (python3 grpc_server.py --port 50052)",
                ),
                v("recovers within 30s", false, "not healthy after 30 s"),
            ],
            ..Default::default()
        }
    }

    /// The JUnit failure message of each way a scenario fails, as reviewed snapshots.
    #[test]
    fn failure_messages() {
        let violated = outcome();
        let mut not_injected = outcome();
        not_injected.not_injected = Some("sigkill pit.beam: pid 4200 still alive 2 s after SIGKILL".into());
        let mut guarded = outcome();
        guarded.aborted_by_guard = Some("memory above 90% of the host (93.1%)".into());
        let mut passed = outcome();
        passed.verdicts.retain(|v| v.passed);
        let text = [violated, not_injected, guarded, passed]
            .iter()
            .map(|o| o.failure_message().unwrap_or_else(|| "(passed: no message)".into()))
            .collect::<Vec<_>>()
            .join("\n");
        insta::assert_snapshot!(text);
    }
}
