//! Scenarios: a minimal builder (inject, wait, clear, expect) on which the full engine
//! (phases, load, compound faults, TOML) will grow.
//!
//! Steps run in order. `expect` is evaluated where it stands; criteria are prepared (baselines
//! recorded) before the first step. Faults still active at the end are cleared in reverse
//! order. A fault that cannot be confirmed ends the scenario as *not injected*; any failed
//! criterion makes it fail. Either way the [`ScenarioOutcome`] (timeline, confirmations,
//! verdicts, sandbox notes) is in the error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Chaos;
use crate::criteria::{Criterion, JudgeContext, Verdict};
use crate::fault::{ActiveFault, Confirmation, Fault, FaultContext};
use crate::load::{Call, Load, LoadReport, LoadRun, LoadStats};
use crate::safety::guard::{self, Guard, GuardWatch};

enum Step {
    StopLoad,
    Inject(Fault),
    Wait(Duration),
    Clear,
    Expect(Criterion),
}

/// A scenario being built; run it with [`Scenario::run`].
///
/// ```no_run
/// # use chaos_harness::prelude::*;
/// # use chaos_harness::{fault::Fault, criteria::Criterion, fixture::{Command, FixtureHandle}};
/// # async fn f(cx: &mut Chaos) -> ChaosResult {
/// let p = cx.start(Command::new("sleep").arg("60")).await?;
/// let outcome = cx.scenario("kill sleep")
///     .inject(Fault::kill(p.main()))
///     .expect(Criterion::no_orphans().of(&p).within(Duration::from_secs(1)))
///     .run()
///     .await?;
/// println!("{outcome}");
/// # Ok(()) }
/// ```
#[must_use = "a scenario does nothing until .run().await"]
pub struct Scenario<'cx> {
    cx: &'cx mut Chaos,
    name: String,
    steps: Vec<Step>,
    load: Option<(Load, Call)>,
    guards: Vec<Guard>,
}

/// One entry of a scenario's timeline.
///
/// ```
/// let e = chaos_harness::scenario::TimelineEvent { at: std::time::Duration::from_millis(5), what: "x".into() };
/// assert_eq!(e.to_string(), "+5ms x");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TimelineEvent {
    /// Time since the scenario started.
    pub at: Duration,
    /// What happened.
    pub what: String,
}

impl std::fmt::Display for TimelineEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "+{}ms {}", self.at.as_millis(), self.what)
    }
}

/// What a scenario did and found. Its `Display` is the timeline (injections with their
/// confirmations, waits, verdicts, clears) followed by the sandbox notes.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ScenarioOutcome {
    /// The scenario's name.
    pub name: String,
    /// The test's seed.
    pub seed: u64,
    /// Everything that happened, in order.
    pub timeline: Vec<TimelineEvent>,
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
    /// When the load started, after the scenario's start (records are timed from the load).
    #[serde(skip)]
    pub load_offset: Duration,
    /// The guard that stopped the scenario, with its reading (see [`Scenario::guard`]).
    #[serde(default)]
    pub aborted_by_guard: Option<String>,
}

impl ScenarioOutcome {
    /// Whether every fault was injected, every criterion held and no guard tripped.
    pub fn passed(&self) -> bool {
        self.not_injected.is_none() && self.aborted_by_guard.is_none() && self.verdicts.iter().all(|v| v.passed)
    }
}

impl ScenarioOutcome {
    /// The phase windows of the load (relative to the load's start) up to `end` (scenario
    /// time): baseline before the first injection, fault until the first clear, recovery after.
    pub fn phase_spans(&self, end: Duration) -> Vec<crate::load::PhaseSpan> {
        let first = |prefix: &str| self.timeline.iter().find(|e| e.what.starts_with(prefix)).map(|e| e.at);
        phase_spans(first("inject "), first("cleared "), end, self.load_offset)
    }

    /// The outcome in the reporters' model: verdicts, the timeline (faults, clears, steps),
    /// load per phase (baseline before the first fault, fault until the first clear, recovery
    /// after it) and load over time in 250 ms buckets.
    pub fn to_report(&self) -> crate::report::ScenarioReport {
        use crate::report::{CriterionVerdict, PhaseReport, ScenarioReport, SeriesPoint, TimelineEvent as Ev};
        let ms = |d: Duration| d.as_millis() as u64;
        let events: Vec<Ev> = self
            .timeline
            .iter()
            .map(|e| {
                let kind = match e.what.split_whitespace().next().unwrap_or_default() {
                    "inject" | "confirmed" | "NOT" => "fault",
                    "cleared" | "CLEAR" => "clear",
                    "PASS" | "FAIL" => "verdict",
                    "load" => "load",
                    _ => "step",
                };
                Ev { at_ms: ms(e.at), kind: kind.into(), detail: e.what.clone() }
            })
            .collect();
        let mut phases = Vec::new();
        let mut series = Vec::new();
        if let Some(report) = &self.load_report {
            let us = |d: Option<Duration>| d.map(|d| d.as_micros() as u64);
            // Records are timed from the load's start; the report is timed from the scenario's.
            let shift = self.load_offset;
            let end = report.end() + shift;
            for p in report.phase_stats(&self.phase_spans(end + Duration::from_millis(1))) {
                let s = &p.stats;
                if s.total > 0 || p.overlapping > 0 {
                    let secs = p.span.len().as_secs_f64();
                    phases.push(PhaseReport {
                        phase: p.span.phase.clone(),
                        from_ms: ms(p.span.from + shift),
                        to_ms: ms(p.span.to + shift),
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
                    });
                }
            }
            // By end time: a bucket shows what finished in it, so an outage with no success has
            // no latency point (the chart leaves a gap instead of a line across it).
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
            name: self.name.clone(),
            verdicts: self
                .verdicts
                .iter()
                .map(|v| CriterionVerdict {
                    criterion: v.criterion.clone(),
                    passed: v.passed,
                    detail: v.detail.clone(),
                })
                .collect(),
            events,
            phases,
            series,
        }
    }
}

impl std::fmt::Display for ScenarioOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "scenario {:?} (seed {}): {}",
            self.name,
            self.seed,
            if self.passed() { "PASSED" } else { "FAILED" }
        )?;
        if let Some(n) = &self.not_injected {
            writeln!(f, "  NOT INJECTED: {n}")?;
        }
        if let Some(g) = &self.aborted_by_guard {
            writeln!(f, "  ABORTED BY GUARD: {g}")?;
        }
        for e in &self.timeline {
            writeln!(f, "  {e}")?;
        }
        for n in &self.notes {
            writeln!(f, "  note: {n}")?;
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

impl<'cx> Scenario<'cx> {
    pub(crate) fn new(cx: &'cx mut Chaos, name: &str) -> Self {
        Self { cx, name: name.to_string(), steps: Vec::new(), load: None, guards: Vec::new() }
    }

    /// Adds a stop condition, polled while the scenario runs (see [`crate::safety::guard`]).
    /// When it trips, the scenario stops, stops its load, clears its active faults and fails
    /// with [`ScenarioError::AbortedByGuard`].
    pub fn guard(mut self, g: Guard) -> Self {
        self.guards.push(g);
        self
    }

    /// The steps as text (`inject ...`, `wait ...`), as a dry run prints them.
    pub fn plan(&self) -> Vec<String> {
        let mut plan: Vec<String> = self.load.iter().map(|(l, _)| format!("start load {l:?}")).collect();
        plan.extend(self.steps.iter().map(|s| match s {
            Step::StopLoad => "stop the load".to_string(),
            Step::Inject(f) => format!("inject {}", f.describe()),
            Step::Wait(d) => format!("wait {d:?}"),
            Step::Clear => "clear every active fault".to_string(),
            Step::Expect(c) => format!("expect {}", c.describe()),
        }));
        plan
    }

    /// Injects a fault (kept active until [`Scenario::clear_faults`] or the end).
    pub fn inject(mut self, fault: impl Into<Fault>) -> Self {
        self.steps.push(Step::Inject(fault.into()));
        self
    }

    /// Runs `load` (issuing `call`) from the scenario's start until [`Scenario::stop_load`] or
    /// the end; criteria such as [`Criterion::no_lost_requests`] read it.
    pub fn load(mut self, load: Load, call: Call) -> Self {
        self.load = Some((load, call));
        self
    }

    /// Stops the load (waiting for requests in flight); later criteria see the final report.
    pub fn stop_load(mut self) -> Self {
        self.steps.push(Step::StopLoad);
        self
    }

    /// Waits.
    pub fn wait(mut self, d: Duration) -> Self {
        self.steps.push(Step::Wait(d));
        self
    }

    /// Clears every active fault (reverse order).
    pub fn clear_faults(mut self) -> Self {
        self.steps.push(Step::Clear);
        self
    }

    /// Evaluates a criterion at this point.
    pub fn expect(mut self, c: impl Into<Criterion>) -> Self {
        self.steps.push(Step::Expect(c.into()));
        self
    }

    /// Runs the steps and returns the outcome, or a [`ScenarioError`] carrying it.
    pub async fn run(self) -> Result<ScenarioOutcome, ScenarioError> {
        let plan = self.plan();
        let Scenario { cx, name, steps, load, guards } = self;
        let t0 = Instant::now();
        let sandbox = cx.sandbox().clone();
        let mut out = ScenarioOutcome { name: name.clone(), seed: cx.seed(), ..Default::default() };
        if sandbox.is_dry_run() {
            let lines = crate::sandbox::dry_run::print_scenario(sandbox.test_name(), &name, &plan);
            out.timeline = lines.into_iter().map(|what| TimelineEvent { at: Duration::ZERO, what }).collect();
            out.notes = sandbox.notes();
            return Ok(out);
        }
        let watch = GuardWatch::start(guards, guard::DEFAULT_INTERVAL);
        let mut jcx = JudgeContext {
            sandbox: Arc::clone(&sandbox),
            scenario_start: t0,
            confirmations: Vec::new(),
            load: None,
            phases: Vec::new(),
        };
        for s in &steps {
            if let Step::Expect(c) = s {
                c.prepare(&jcx);
            }
        }
        let mut load_run: Option<LoadRun> = load.map(|(spec, call)| {
            tracing::info!(scenario = %name, ?spec, "load started");
            spec.start(call)
        });
        out.load_offset = load_run.as_ref().map(|r| r.started_at().saturating_duration_since(t0)).unwrap_or_default();
        let mut final_load: Option<LoadReport> = None;
        let mut active: Vec<Box<dyn ActiveFault>> = Vec::new();
        let ev = |out: &mut ScenarioOutcome, what: String| {
            tracing::info!(scenario = %out.name, "{what}");
            out.timeline.push(TimelineEvent { at: t0.elapsed(), what });
        };
        for step in &steps {
            let mut tripped = watch.tripped();
            match step {
                _ if tripped.is_some() => {}
                Step::Inject(f) => {
                    ev(&mut out, format!("inject {}", f.describe()));
                    let r = f.inject(FaultContext { sandbox: &sandbox, rng: cx.rng() }).await;
                    match r {
                        Ok(a) => {
                            let c = a.confirmation().clone();
                            ev(&mut out, format!("confirmed {c}"));
                            out.confirmations.push(c.clone());
                            jcx.confirmations.push(c);
                            active.push(a);
                        }
                        Err(e) => {
                            ev(&mut out, format!("NOT INJECTED {e}"));
                            out.not_injected = Some(e.to_string());
                            clear_all(&mut active, &mut out, t0).await;
                            out.notes = sandbox.notes();
                            return Err(ScenarioError::NotInjected(Box::new(out)));
                        }
                    }
                }
                Step::Wait(d) => {
                    ev(&mut out, format!("wait {d:?}"));
                    tripped = watch.race(tokio::time::sleep(*d)).await.err();
                }
                Step::Clear => clear_all(&mut active, &mut out, t0).await,
                Step::StopLoad => {
                    if let Some(run) = load_run.take() {
                        let report = run.stop().await;
                        ev(&mut out, format!("load stopped: {:?}", report.stats()));
                        final_load = Some(report);
                    }
                }
                Step::Expect(c) => {
                    jcx.load = load_run.as_ref().map(|r| r.snapshot()).or_else(|| final_load.clone());
                    jcx.phases = out.phase_spans(t0.elapsed());
                    ev(&mut out, format!("expect {}", c.describe()));
                    match watch.race(c.judge(&jcx)).await {
                        Ok(v) => {
                            ev(&mut out, v.to_string());
                            out.verdicts.push(v);
                        }
                        Err(t) => tripped = Some(t),
                    }
                }
            }
            if let Some(t) = tripped {
                ev(&mut out, t.to_string());
                crate::sandbox::audit::write(
                    crate::sandbox::audit::AuditEntry::new(
                        crate::sandbox::audit::Event::Guard,
                        crate::sandbox::audit::By::Harness,
                        t.to_string(),
                    )
                    .run(sandbox.run_id(), sandbox.test_name())
                    .target(name.clone()),
                );
                out.aborted_by_guard = Some(t.to_string());
                if let Some(run) = load_run.take() {
                    final_load = Some(run.stop().await);
                }
                clear_all(&mut active, &mut out, t0).await;
                out.load = final_load.as_ref().map(|r| r.stats());
                out.load_report = final_load;
                out.notes = sandbox.notes();
                return Err(ScenarioError::AbortedByGuard(Box::new(out)));
            }
        }
        clear_all(&mut active, &mut out, t0).await;
        if let Some(run) = load_run.take() {
            final_load = Some(run.stop().await);
        }
        out.load = final_load.as_ref().map(|r| r.stats());
        out.load_report = final_load;
        out.notes = sandbox.notes();
        if out.passed() { Ok(out) } else { Err(ScenarioError::CriteriaFailed(Box::new(out))) }
    }
}

/// Baseline `[0, fault)`, fault `[fault, clear)`, recovery `[clear, end)`, shifted to the
/// load's clock (`shift`: the load's start after the scenario's).
pub(crate) fn phase_spans(
    fault: Option<Duration>,
    clear: Option<Duration>,
    end: Duration,
    shift: Duration,
) -> Vec<crate::load::PhaseSpan> {
    use crate::load::PhaseSpan;
    let fault_at = fault.unwrap_or(end).min(end);
    let clear_at = clear.unwrap_or(end).clamp(fault_at, end);
    let l = |d: Duration| d.saturating_sub(shift);
    vec![
        PhaseSpan::new("baseline", Duration::ZERO, l(fault_at)),
        PhaseSpan::new("fault", l(fault_at), l(clear_at)),
        PhaseSpan::new("recovery", l(clear_at), l(end)),
    ]
}

async fn clear_all(active: &mut Vec<Box<dyn ActiveFault>>, out: &mut ScenarioOutcome, t0: Instant) {
    while let Some(a) = active.pop() {
        let what = match a.clear().await {
            Ok(c) => {
                out.confirmations.push(c.clone());
                format!("cleared {c}")
            }
            Err(e) => format!("CLEAR FAILED {e} (teardown will undo it from the journal)"),
        };
        tracing::info!(scenario = %out.name, "{what}");
        out.timeline.push(TimelineEvent { at: t0.elapsed(), what });
    }
}
