//! The engine: runs a scenario's steps on the timeline, emits every happening as a typed
//! [`Event`], tracks the phases, and builds the [`ScenarioOutcome`]
//! from what it emitted. One engine for the fluent builder and bound specs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::builder::Scenario;
use super::step::{Planned, Step};
use super::{ScenarioError, ScenarioOutcome};
use crate::criteria::{Criterion, JudgeContext, Verdict};
use crate::fault::process::derived_rng;
use crate::fault::{ActiveFault, Confirmation, Fault, FaultContext};
use crate::load::{LoadReport, LoadRun};
use crate::observe::{
    Event, EventKind, EventStream, FaultRef, FixtureWatch, LoadWindow, Monitor, MonitorHandle, MonitorSeries, Phase,
    PhaseSpan,
};
use crate::safety::guard::{self, GuardWatch, Tripped};
use crate::sandbox::Sandbox;
use crate::sandbox::audit::{self, AuditEntry, By};

/// How often a long wait samples the load ([`EventKind::LoadSample`]).
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// The state of one run.
struct Run {
    stream: EventStream,
    /// Index of the scenario's first event on the test's stream.
    first_event: usize,
    /// The stream time of the scenario's start.
    base: Duration,
    t0: Instant,
    sandbox: Arc<Sandbox>,
    seed: u64,
    active: Vec<(FaultRef, Box<dyn ActiveFault>)>,
    next_fault: u32,
    phase: Phase,
    /// A one-shot fault (a kill) whose target has not been observed recovered yet.
    awaiting_recovery: bool,
    /// When the window of the criteria that follow opened: the confirmation of the fault (or
    /// clear) they follow, or the end of the wait, load stop or phase step before them.
    window_start: Instant,
    confirmations: Vec<Confirmation>,
    verdicts: Vec<Verdict>,
    load: Option<LoadRun>,
    final_load: Option<LoadReport>,
    /// Fixture log sizes at the start (to mark the lines written during the scenario).
    log_sizes: Vec<(std::path::PathBuf, u64)>,
    /// The requests (by sequence number) already counted in a `LoadSample`.
    sampled: std::collections::HashSet<u64>,
    /// The resource series being sampled.
    monitor: MonitorHandle,
}

impl Run {
    fn emit(&self, kind: EventKind) {
        self.stream.emit(kind);
    }

    fn enter(&mut self, phase: Phase) {
        if self.phase != phase {
            // Close the load window at the boundary, so each sample falls in one phase.
            self.sample_load();
            self.phase = phase.clone();
            self.emit(EventKind::PhaseEntered { phase });
        }
    }

    /// The scenario's events so far, with offsets from its start.
    fn events(&self) -> Vec<Event> {
        self.stream
            .events_from(self.first_event)
            .into_iter()
            .map(|mut e| {
                e.at = e.at.saturating_sub(self.base);
                e
            })
            .collect()
    }

    fn judge_context(&self) -> JudgeContext {
        JudgeContext {
            sandbox: Arc::clone(&self.sandbox),
            scenario_start: self.t0,
            window_start: self.window_start,
            confirmations: self.confirmations.clone(),
            load: self.load.as_ref().map(LoadRun::snapshot).or_else(|| self.final_load.clone()),
            seed: self.seed,
            events: self.events(),
            monitor: self.monitor.clone(),
        }
    }

    /// A `LoadSample` for the requests that ended since the last one.
    fn sample_load(&mut self) {
        let Some(run) = &self.load else { return };
        let report = run.snapshot();
        self.sample_from(&report);
    }

    /// A `LoadSample` for the requests of `report` not sampled yet.
    fn sample_from(&mut self, report: &LoadReport) {
        let records = report.records();
        // Records are in issue order, not completion order: pick the ones not counted yet.
        let fresh: Vec<&crate::load::RequestRecord> =
            records.iter().filter(|r| !self.sampled.contains(&r.seq)).collect();
        if fresh.is_empty() {
            return;
        }
        self.sampled.extend(fresh.iter().map(|r| r.seq));
        let ok: Vec<Duration> = fresh.iter().filter(|r| r.outcome.is_ok()).map(|r| r.latency()).collect();
        let pct = |q: f64| -> Option<u64> {
            let mut v = ok.clone();
            v.sort_unstable();
            v.get(((v.len() as f64 - 1.0) * q).round() as usize).map(|d| d.as_micros() as u64)
        };
        let mut by_outcome = std::collections::BTreeMap::new();
        for r in &fresh {
            *by_outcome.entry(r.outcome.kind().to_string()).or_insert(0u64) += 1;
        }
        let window = LoadWindow {
            ok: ok.len() as u64,
            failed: fresh.iter().filter(|r| !r.outcome.is_ok() && r.outcome != crate::load::Outcome::Skipped).count()
                as u64,
            p50_us: pct(0.5),
            p99_us: pct(0.99),
            by_outcome,
            latencies_us: ok.iter().map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)).collect(),
        };
        self.emit(EventKind::LoadSample { window });
    }

    async fn stop_load(&mut self) {
        if let Some(run) = self.load.take() {
            self.sample_load();
            let report = run.stop().await;
            // The requests that were in flight at the stop ended since the last sample.
            self.sample_from(&report);
            self.emit(EventKind::LoadStopped { stats: report.stats() });
            self.final_load = Some(report);
        }
    }

    /// Injects the faults (concurrently when several); `Err` with the first that failed.
    async fn inject(&mut self, faults: &[&Fault], rng: &mut (dyn rand::RngCore + Send)) -> Result<(), String> {
        let refs: Vec<FaultRef> = faults
            .iter()
            .map(|f| {
                let id = self.next_fault;
                self.next_fault += 1;
                FaultRef { id, kind: f.kind(), description: f.describe() }
            })
            .collect();
        for r in &refs {
            self.emit(EventKind::FaultInjecting { fault: r.clone() });
        }
        let mut rngs: Vec<_> = faults.iter().map(|_| derived_rng(rng)).collect();
        let sandbox = Arc::clone(&self.sandbox);
        let results = join_all(
            faults.iter().zip(rngs.iter_mut()).map(|(f, rng)| f.inject(FaultContext { sandbox: &sandbox, rng })),
        )
        .await;
        let mut failed = None;
        for (r, result) in refs.into_iter().zip(results) {
            match result {
                Ok(active) => {
                    let confirmation = active.confirmation().clone();
                    let one_shot = active.one_shot();
                    self.window_start = Instant::now();
                    self.emit(EventKind::FaultConfirmed {
                        fault: r.clone(),
                        confirmation: confirmation.clone(),
                        one_shot,
                    });
                    self.confirmations.push(confirmation);
                    self.awaiting_recovery |= one_shot;
                    self.enter(Phase::Fault);
                    self.active.push((r, active));
                }
                Err(e) => {
                    self.emit(EventKind::FaultNotInjected { fault: r.clone(), reason: e.to_string() });
                    failed.get_or_insert(format!("{}: {e}", r.description));
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Clears every active fault, newest first; enters recovery when no fault is left.
    async fn clear_all(&mut self) {
        while let Some((r, active)) = self.active.pop() {
            match active.clear().await {
                Ok(c) => {
                    self.confirmations.push(c.clone());
                    self.emit(EventKind::FaultCleared { fault: r, confirmation: c });
                }
                Err(e) => self.emit(EventKind::FaultClearFailed { fault: r, error: e.to_string() }),
            }
        }
        if self.phase == Phase::Fault {
            self.awaiting_recovery = false;
            self.enter(Phase::Recovery);
        }
        self.window_start = Instant::now();
    }

    /// Judges criteria concurrently, all in the window opened by the last confirmation.
    async fn expect(&mut self, criteria: &[&Criterion]) -> Vec<Verdict> {
        let cx = self.judge_context();
        let verdicts = join_all(criteria.iter().map(|c| c.judge(&cx))).await;
        for (v, c) in verdicts.iter().zip(criteria) {
            self.emit(EventKind::CriterionVerdict {
                criterion: v.criterion.clone(),
                criterion_kind: c.described().map_or_else(|| "custom".to_string(), |d| d.kind),
                passed: v.passed,
                detail: v.detail.clone(),
            });
        }
        // A one-shot fault's target counts as recovered once the expectations after it hold.
        let persistent = self.active.iter().any(|(_, a)| !a.one_shot());
        if self.awaiting_recovery && !persistent && verdicts.iter().all(|v| v.passed) {
            self.awaiting_recovery = false;
            self.enter(Phase::Recovery);
        }
        self.verdicts.extend(verdicts.iter().cloned());
        verdicts
    }

    /// The phase spans from the `PhaseEntered` events, the last one ending at `end`.
    fn phase_spans(events: &[Event], end: Duration) -> Vec<PhaseSpan> {
        let entered: Vec<(Duration, Phase)> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::PhaseEntered { phase } => Some((e.at, phase.clone())),
                _ => None,
            })
            .collect();
        entered
            .iter()
            .enumerate()
            .map(|(i, (from, phase))| {
                let to = entered.get(i + 1).map_or(end, |(t, _)| *t);
                PhaseSpan { phase: phase.clone(), from: *from, to: to.max(*from) }
            })
            .collect()
    }
}

/// What stopped the steps early.
enum Stop {
    NotInjected(String),
    Guard(Tripped),
}

/// Runs a built scenario.
pub(crate) async fn run(scenario: Scenario<'_>) -> Result<ScenarioOutcome, ScenarioError> {
    let plan = scenario.plan();
    let Scenario { cx, name, steps, load, guards, timeout, .. } = scenario;
    let sandbox = Arc::clone(cx.sandbox());
    let stream = cx.events().clone();
    let seed = cx.seed();
    let first_event = stream.len();
    let t0 = Instant::now();
    let mut run = Run {
        base: crate::observe::stream::whole_micros(t0.saturating_duration_since(stream.t0())),
        stream: stream.clone(),
        first_event,
        t0,
        sandbox: Arc::clone(&sandbox),
        seed,
        active: Vec::new(),
        next_fault: 0,
        phase: Phase::Baseline,
        awaiting_recovery: false,
        window_start: t0,
        confirmations: Vec::new(),
        verdicts: Vec::new(),
        load: None,
        final_load: None,
        log_sizes: super::evidence::log_sizes(&sandbox),
        sampled: Default::default(),
        monitor: MonitorHandle::default(),
    };
    run.emit(EventKind::ScenarioStarted { scenario: name.clone(), seed });
    run.emit(EventKind::PhaseEntered { phase: Phase::Baseline });
    if sandbox.is_dry_run() {
        for line in crate::sandbox::dry_run::print_scenario(sandbox.test_name(), &name, &plan) {
            run.emit(EventKind::Note { text: line });
        }
        let outcome = finish(run, name, None, None, Vec::new()).await;
        cx.record_outcome(outcome.clone());
        return Ok(outcome);
    }
    let watch = GuardWatch::start(guards, guard::DEFAULT_INTERVAL);
    let fixtures = FixtureWatch::start(cx.fixture_targets(), stream.clone());
    let mut monitored = cx.monitor_selections();
    monitored.extend(steps.iter().flat_map(|p| p.step.criteria()).flat_map(|c| c.monitors()));
    let monitor = Monitor::start(monitored, stream.clone(), t0);
    run.monitor = monitor.handle();
    {
        let cx0 = run.judge_context();
        for p in &steps {
            for c in p.step.criteria() {
                c.prepare(&cx0);
            }
        }
    }
    if let Some((spec, call)) = load {
        run.emit(EventKind::LoadStarted { load: spec.described().to_string() });
        // The records' times then count from the scenario's start, like its events and phases.
        run.load = Some(spec.start_on_clock(call, run.t0));
    }
    let stop = match timeout {
        Some(limit) => {
            tokio::time::timeout(limit, run_steps(&mut run, &steps, &watch, cx.rng())).await.unwrap_or_else(|_| {
                Some(Stop::Guard(Tripped {
                    guard: "scenario timeout".into(),
                    reading: format!(
                        "the scenario ran longer than its timeout of {}",
                        crate::params::format_duration(limit)
                    ),
                }))
            })
        }
        None => run_steps(&mut run, &steps, &watch, cx.rng()).await,
    };
    fixtures.stop().await;
    let series = monitor.stop();
    let (not_injected, guard) = match stop {
        Some(Stop::NotInjected(n)) => (Some(n), None),
        Some(Stop::Guard(t)) => {
            run.emit(EventKind::GuardTripped { reading: t.to_string() });
            audit::write(
                AuditEntry::new(audit::Event::Guard, By::Harness, t.to_string())
                    .run(sandbox.run_id(), sandbox.test_name())
                    .target(name.clone()),
            );
            (None, Some(t.to_string()))
        }
        None => (None, None),
    };
    if guard.is_some() {
        run.stop_load().await;
    }
    run.clear_all().await;
    run.stop_load().await;
    let outcome = finish(run, name, not_injected, guard, series).await;
    cx.record_outcome(outcome.clone());
    if outcome.not_injected.is_some() {
        Err(ScenarioError::NotInjected(Box::new(outcome)))
    } else if outcome.aborted_by_guard.is_some() {
        Err(ScenarioError::AbortedByGuard(Box::new(outcome)))
    } else if outcome.passed() {
        Ok(outcome)
    } else {
        Err(ScenarioError::CriteriaFailed(Box::new(outcome)))
    }
}

/// Runs the steps until the end, a fault that could not be injected, or a tripped guard.
async fn run_steps(
    run: &mut Run,
    steps: &[Planned],
    watch: &GuardWatch,
    rng: &mut (dyn rand::RngCore + Send),
) -> Option<Stop> {
    let mut i = 0;
    while i < steps.len() {
        if let Some(t) = watch.tripped() {
            return Some(Stop::Guard(t));
        }
        let planned = &steps[i];
        if let Some(at) = planned.at {
            let until = tokio::time::Instant::from_std(run.t0 + at);
            if let Err(t) = watch.race(tokio::time::sleep_until(until)).await {
                return Some(Stop::Guard(t));
            }
        }
        run.sample_load();
        run.emit(EventKind::StepStarted { step: i, what: planned.step.describe() });
        match &planned.step {
            Step::Inject(f) => {
                if let Err(n) = run.inject(&[f], rng).await {
                    return Some(Stop::NotInjected(n));
                }
            }
            Step::Wait(d) => {
                // Sample the load about once a second while waiting, for live metrics.
                let until = Instant::now() + *d;
                loop {
                    let left = until.saturating_duration_since(Instant::now());
                    if let Err(t) = watch.race(tokio::time::sleep(left.min(SAMPLE_EVERY))).await {
                        return Some(Stop::Guard(t));
                    }
                    if left <= SAMPLE_EVERY {
                        break;
                    }
                    run.sample_load();
                }
                run.window_start = Instant::now();
            }
            Step::Clear => run.clear_all().await,
            Step::StopLoad => {
                run.stop_load().await;
                run.window_start = Instant::now();
            }
            Step::Phase(p) => {
                run.enter(p.clone());
                run.window_start = Instant::now();
            }
            Step::Expect(_) => {
                // Consecutive expectations form one group, judged concurrently.
                let mut group = Vec::new();
                while let Some(Planned { at: None, step: Step::Expect(c) }) = steps.get(i) {
                    group.push(c);
                    i += 1;
                }
                if group.is_empty()
                    && let Step::Expect(c) = &planned.step
                {
                    group.push(c);
                    i += 1;
                }
                if let Err(t) = watch.race(run.expect(&group)).await {
                    return Some(Stop::Guard(t));
                }
                continue;
            }
            Step::Parallel(group) => {
                let faults: Vec<&Fault> =
                    group.iter().filter_map(|s| if let Step::Inject(f) = s { Some(f) } else { None }).collect();
                if !faults.is_empty()
                    && let Err(n) = run.inject(&faults, rng).await
                {
                    return Some(Stop::NotInjected(n));
                }
                let wait = group.iter().filter_map(|s| if let Step::Wait(d) = s { Some(*d) } else { None }).max();
                if let Some(d) = wait
                    && let Err(t) = watch.race(tokio::time::sleep(d)).await
                {
                    return Some(Stop::Guard(t));
                }
                let criteria: Vec<&Criterion> = group.iter().flat_map(Step::criteria).collect();
                if !criteria.is_empty()
                    && let Err(t) = watch.race(run.expect(&criteria)).await
                {
                    return Some(Stop::Guard(t));
                }
            }
        }
        i += 1;
    }
    None
}

/// The outcome from what the run emitted.
async fn finish(
    run: Run,
    name: String,
    not_injected: Option<String>,
    guard: Option<String>,
    monitor: Vec<MonitorSeries>,
) -> ScenarioOutcome {
    let mut outcome = ScenarioOutcome {
        name,
        seed: run.seed,
        confirmations: run.confirmations.clone(),
        not_injected,
        verdicts: run.verdicts.clone(),
        notes: run.sandbox.notes(),
        load: run.final_load.as_ref().map(LoadReport::stats),
        aborted_by_guard: guard,
        monitor,
        ..Default::default()
    };
    let passed = outcome.passed();
    if !passed && !run.sandbox.is_dry_run() {
        // The root cause's evidence, while the fixtures still run.
        outcome.processes = super::evidence::process_changes(&run.sandbox, run.t0);
        outcome.logs = super::evidence::log_tails(&run.sandbox, &run.log_sizes);
    }
    run.emit(EventKind::ScenarioFinished { passed });
    outcome.events = run.events();
    let end = outcome.events.last().map_or(Duration::ZERO, |e| e.at);
    outcome.phases = Run::phase_spans(&outcome.events, end);
    outcome.load_report = run.final_load;
    outcome
}
