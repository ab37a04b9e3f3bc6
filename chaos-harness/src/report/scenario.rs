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
        // Sampled load and resources and the scenario's own start and end are not timeline rows.
        EventKind::LoadSample { .. }
        | EventKind::MonitorSample { .. }
        | EventKind::ScenarioStarted { .. }
        | EventKind::ScenarioFinished { .. } => {
            return None;
        }
    })
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn us(d: Option<Duration>) -> Option<u64> {
    d.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Load statistics of one phase span (scenario time; `shift`: the load's start after the
/// scenario's). Requests are counted in the phase where they ended; `overlapping` counts those
/// whose lifetime touches it.
fn phase_report(report: &LoadReport, span: &PhaseSpan, shift: Duration) -> Option<PhaseReport> {
    let l = |d: Duration| d.saturating_sub(shift);
    let window = crate::load::PhaseSpan::new(span.phase.to_string(), l(span.from), l(span.to));
    let p = report.phase_stats(std::slice::from_ref(&window)).pop()?;
    let s = &p.stats;
    let secs = (span.to - span.from).as_secs_f64();
    (s.total > 0 || p.overlapping > 0).then(|| PhaseReport {
        phase: span.phase.to_string(),
        from_ms: ms(span.from),
        to_ms: ms(span.to),
        total: s.total,
        ok: s.ok,
        errors: s.errors,
        error_kinds: s.error_kinds.clone(),
        refused: s.refused,
        timeouts: s.timeouts,
        lost: s.lost,
        skipped: s.skipped,
        overlapping: p.overlapping,
        issued_per_s: if secs > 0.0 { s.issued() as f64 / secs } else { 0.0 },
        throughput: p.throughput,
        p50_us: us(s.p50),
        p90_us: us(s.p90),
        p99_us: us(s.p99),
        p999_us: us(s.p999),
        max_us: us(s.max),
    })
}

/// When the load started, after the scenario's start (records are timed from the load).
pub fn load_offset(events: &[crate::observe::Event]) -> Duration {
    events.iter().find(|e| matches!(e.kind, EventKind::LoadStarted { .. })).map(|e| e.at).unwrap_or_default()
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
        let shift = load_offset(&o.events);
        phases = o.phases.iter().filter_map(|span| phase_report(report, span, shift)).collect();
        let end = report.end() + shift;
        // By end time: a bucket shows what finished in it, so an outage where nothing succeeded
        // has no latency point (the chart leaves a gap instead of drawing a line across it).
        let bucket = Duration::from_millis(250);
        let mut t = Duration::ZERO;
        while t <= end {
            let s = report.stats_ended_between(t.saturating_sub(shift), (t + bucket).saturating_sub(shift));
            series.push(SeriesPoint {
                at_ms: ms(t),
                ok: s.ok,
                failed: s.issued() - s.ok,
                refused: s.refused,
                lost: s.unanswered(),
                p50_us: us(s.p50),
                p99_us: us(s.p99),
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
        impact: (!o.phases.is_empty()).then(|| o.impact()),
        processes: o.processes.clone(),
        logs: o.logs.clone(),
    }
}
