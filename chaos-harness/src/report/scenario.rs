//! A [`ScenarioReport`] from a scenario's outcome: verdicts, the timeline by event kind, load
//! per phase (over the typed phase spans the engine recorded) and load over time. Nothing here
//! parses event text: kinds come from the [`EventKind`] variants.

use std::time::Duration;

use super::{CriterionVerdict, PhaseReport, ScenarioReport, SeriesPoint, TimelineEvent};
use crate::load::LoadReport;
use crate::observe::{EventKind, PhaseSpan};
use crate::scenario::ScenarioOutcome;

/// The timeline kind of an event (what the report groups and colours by).
///
/// ```
/// use chaos_harness::observe::{EventKind, Phase};
/// use chaos_harness::report::scenario::timeline_kind;
/// assert_eq!(timeline_kind(&EventKind::PhaseEntered { phase: Phase::Fault }), Some("phase"));
/// assert_eq!(timeline_kind(&EventKind::LoadSample { window: Default::default() }), None);
/// ```
pub fn timeline_kind(kind: &EventKind) -> Option<&'static str> {
    Some(match kind {
        EventKind::FaultInjecting { .. } | EventKind::FaultConfirmed { .. } | EventKind::FaultNotInjected { .. } => {
            "fault"
        }
        EventKind::FaultCleared { .. } | EventKind::FaultClearFailed { .. } => "clear",
        EventKind::CriterionVerdict { .. } => "verdict",
        EventKind::LoadStarted { .. } | EventKind::LoadStopped { .. } => "load",
        EventKind::PhaseEntered { .. } => "phase",
        EventKind::GuardTripped { .. } => "guard",
        EventKind::FixtureStarted { .. }
        | EventKind::FixtureExited { .. }
        | EventKind::FixtureRestarted { .. }
        | EventKind::FixtureReexeced { .. } => "fixture",
        EventKind::StepStarted { .. } => "step",
        EventKind::Note { .. } => "note",
        // Sampled load and the scenario's own start and end are not timeline rows.
        EventKind::LoadSample { .. } | EventKind::ScenarioStarted { .. } | EventKind::ScenarioFinished { .. } => {
            return None;
        }
    })
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Load statistics of one phase span.
fn phase_report(report: &LoadReport, span: &PhaseSpan) -> Option<PhaseReport> {
    let s = report.stats_between(span.from, span.to);
    (s.total > 0).then(|| PhaseReport {
        phase: span.phase.to_string(),
        from_ms: ms(span.from),
        to_ms: ms(span.to),
        total: s.total,
        ok: s.ok,
        errors: s.errors,
        lost: s.lost,
        p50_us: s.p50.map(|d| d.as_micros() as u64),
        p99_us: s.p99.map(|d| d.as_micros() as u64),
    })
}

/// The reporters' view of a scenario outcome.
///
/// ```
/// let o = chaos_harness::scenario::ScenarioOutcome { name: "x".into(), ..Default::default() };
/// assert_eq!(chaos_harness::report::scenario::scenario_report(&o).name, "x");
/// ```
pub fn scenario_report(o: &ScenarioOutcome) -> ScenarioReport {
    let events = o
        .events
        .iter()
        .filter_map(|e| {
            timeline_kind(&e.kind).map(|k| TimelineEvent {
                at_ms: ms(e.at),
                kind: k.into(),
                detail: e.kind.to_string(),
            })
        })
        .collect();
    let mut phases = Vec::new();
    let mut series = Vec::new();
    if let Some(report) = &o.load_report {
        phases = o.phases.iter().filter_map(|span| phase_report(report, span)).collect();
        let end = report.records().iter().map(|r| r.started + r.latency).max().unwrap_or_default();
        let bucket = Duration::from_millis(250);
        let mut t = Duration::ZERO;
        while t <= end {
            let s = report.stats_between(t, t + bucket);
            series.push(SeriesPoint {
                at_ms: ms(t),
                ok: s.ok,
                failed: s.errors + s.lost,
                p50_us: s.p50.map(|d| d.as_micros() as u64),
                p99_us: s.p99.map(|d| d.as_micros() as u64),
            });
            t += bucket;
        }
    }
    ScenarioReport {
        name: o.name.clone(),
        verdicts: o
            .verdicts
            .iter()
            .map(|v| CriterionVerdict { criterion: v.criterion.clone(), passed: v.passed, detail: v.detail.clone() })
            .collect(),
        events,
        phases,
        series,
    }
}
