//! Success criteria: the [`Judge`] trait and the built-ins behind [`Criterion`].
//!
//! Process criteria (issue [sandbox]):
//! - [`Criterion::no_orphans`]: after the fixture's main process died, every process it owned
//!   is gone within `d`; a failure lists each survivor (pid, command line, parent, age).
//! - [`Criterion::process_count`]: the selection's live process count reaches `n` within `d`.
//! - [`Criterion::exits_within`]: the main process exits within `d`.
//! - [`Criterion::respawned`]: processes of the selection that died were replaced by new pids
//!   within `d`.
//!
//! `within(d)` counts from the moment the criterion is evaluated (the scenario evaluates an
//! `expect` right after the steps before it), except `no_orphans`, which counts from the main
//! process's death. Zombies count as dead.
//!
//! As with [`Fault`](crate::fault::Fault), the constructors live on the [`Criterion`] wrapper
//! and implementations implement the [`Judge`] trait.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::fault::Confirmation;
use crate::fixture::{BoxFuture, FixtureHandle, Selection, Target};
use crate::observe::ProcSnapshot;
use crate::sandbox::{OwnedPid, Sandbox};

/// What a criterion may look at.
pub struct JudgeContext {
    /// The test's sandbox.
    pub sandbox: Arc<Sandbox>,
    /// When the scenario started.
    pub scenario_start: Instant,
    /// Confirmations of the faults injected so far.
    pub confirmations: Vec<Confirmation>,
    /// The scenario's load so far (final once the load stopped), if it runs one.
    pub load: Option<crate::load::LoadReport>,
}

/// A criterion's judgement.
///
/// ```
/// let v = chaos_harness::criteria::Verdict { criterion: "no orphans".into(), passed: true, detail: "none".into() };
/// assert_eq!(v.to_string(), "PASS no orphans: none");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    /// The criterion's description.
    pub criterion: String,
    /// Whether it held.
    pub passed: bool,
    /// The evidence.
    pub detail: String,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", if self.passed { "PASS" } else { "FAIL" }, self.criterion, self.detail)
    }
}

/// A criterion implementation.
pub trait Judge: Send + Sync {
    /// One-line description.
    fn describe(&self) -> String;

    /// Called once before the scenario's first step (to record a baseline).
    fn prepare(&self, _cx: &JudgeContext) {}

    /// Evaluates the criterion (may wait up to its `within`).
    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict>;
}

/// A criterion, ready for [`Scenario::expect`](crate::scenario::Scenario::expect).
///
/// ```no_run
/// # use chaos_harness::prelude::*;
/// # use chaos_harness::criteria::Criterion;
/// # use chaos_harness::fixture::{FixtureHandle, Process};
/// # fn f(p: &Process) {
/// let cs: Vec<Criterion> = vec![
///     Criterion::no_orphans().of(p).within(Duration::from_secs(2)).into(),
///     Criterion::process_count(p.children()).reaches(4).within(Duration::from_secs(5)).into(),
///     Criterion::exits_within(Duration::from_secs(3)).of(p).into(),
///     Criterion::respawned(p.children()).within(Duration::from_secs(5)).into(),
/// ];
/// # }
/// ```
pub struct Criterion(Box<dyn Judge>);

impl Criterion {
    /// Wraps a [`Judge`].
    pub fn new(j: impl Judge + 'static) -> Self {
        Self(Box::new(j))
    }

    /// Description.
    pub fn describe(&self) -> String {
        self.0.describe()
    }

    /// See [`Judge::prepare`].
    pub fn prepare(&self, cx: &JudgeContext) {
        self.0.prepare(cx)
    }

    /// See [`Judge::judge`].
    pub fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        self.0.judge(cx)
    }

    /// No process of the fixture survives its main process by more than `within` (default 5 s).
    pub fn no_orphans() -> NoOrphans {
        NoOrphans { target: None, within: Duration::from_secs(5) }
    }

    /// The selection's live process count reaches `n` within `d`.
    pub fn process_count(sel: Selection) -> ProcessCount {
        ProcessCount { sel, n: 0, at_least: false, within: Duration::from_secs(5) }
    }

    /// The fixture's main process exits within `d`.
    pub fn exits_within(d: Duration) -> ExitsWithin {
        ExitsWithin { target: None, within: d }
    }

    /// Processes of the selection that died are replaced by new pids within `d` (default 5 s).
    pub fn respawned(sel: Selection) -> Respawned {
        Respawned { sel, within: Duration::from_secs(5), baseline: Mutex::new(Vec::new()) }
    }
}

impl Criterion {
    /// Every process the selection holds when the scenario starts (before its first step) is
    /// gone within `d` of this criterion's evaluation (default 5 s). Unlike
    /// [`Criterion::no_orphans`], processes started later (a restarted service's new workers)
    /// do not count.
    pub fn gone(sel: Selection) -> ProcessesGone {
        ProcessesGone { sel, within: Duration::from_secs(5), snapshot: Mutex::new(None) }
    }
}

/// See [`Criterion::gone`].
pub struct ProcessesGone {
    sel: Selection,
    within: Duration,
    snapshot: Mutex<Option<Vec<OwnedPid>>>,
}

impl ProcessesGone {
    /// The allowed time.
    pub fn within(mut self, d: Duration) -> Self {
        self.within = d;
        self
    }
}

impl Judge for ProcessesGone {
    fn describe(&self) -> String {
        format!("the processes of {} present at the start are gone within {:?}", self.sel, self.within)
    }

    fn prepare(&self, _cx: &JudgeContext) {
        let pids = self.sel.resolve(&mut ChaCha8Rng::seed_from_u64(0));
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = Some(pids);
    }

    fn judge<'a>(&'a self, _cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let snapshot = self.snapshot.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let Some(pids) = snapshot else {
                return Verdict { criterion: name, passed: false, detail: "no snapshot: the criterion was not prepared".into() };
            };
            if pids.is_empty() {
                return Verdict {
                    criterion: name,
                    passed: false,
                    detail: format!("{} selected no process at the start, so there was nothing to watch", self.sel),
                };
            }
            let t0 = Instant::now();
            loop {
                let left: Vec<OwnedPid> = pids.iter().filter(|p| !p.is_gone()).cloned().collect();
                if left.is_empty() {
                    return Verdict {
                        criterion: name,
                        passed: true,
                        detail: format!("all {} gone {} after evaluation began", pids.len(), ms(t0.elapsed())),
                    };
                }
                if t0.elapsed() > self.within {
                    return Verdict {
                        criterion: name,
                        passed: false,
                        detail: format!("{} of {} still alive after {:?}: {}", left.len(), pids.len(), self.within, describe_procs(&left)),
                    };
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    }
}

impl Criterion {
    /// Every request of the scenario's load got a reply (success or a structured error): none
    /// was dropped, reset or left hanging past the load's timeout.
    pub fn no_lost_requests() -> NoLostRequests {
        NoLostRequests
    }

    /// The scenario's error rate (structured errors plus lost requests, over all requests) is
    /// at most the given fraction.
    pub fn error_rate() -> ErrorRate {
        ErrorRate { max: 0.0 }
    }
}

/// See [`Criterion::no_lost_requests`].
pub struct NoLostRequests;

impl Judge for NoLostRequests {
    fn describe(&self) -> String {
        "no lost requests".into()
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let Some(report) = &cx.load else {
                return Verdict { criterion: name, passed: false, detail: "the scenario runs no load (add .load(..))".into() };
            };
            let s = report.stats();
            let lost: Vec<String> = report
                .records()
                .iter()
                .filter(|r| r.outcome.is_lost())
                .take(5)
                .map(|r| format!("#{} at +{}ms: {:?}", r.seq, r.started.as_millis(), r.outcome))
                .collect();
            let summary = format!("{} requests: {} ok, {} errors, {} lost", s.total, s.ok, s.errors, s.lost);
            if s.total == 0 {
                return Verdict { criterion: name, passed: false, detail: format!("{summary}: the load issued nothing") };
            }
            Verdict {
                criterion: name,
                passed: s.lost == 0,
                detail: if lost.is_empty() { summary } else { format!("{summary}; first lost: {}", lost.join("; ")) },
            }
        })
    }
}

/// See [`Criterion::error_rate`].
pub struct ErrorRate {
    max: f64,
}

impl ErrorRate {
    /// The largest allowed fraction (0.0 to 1.0).
    pub fn at_most(mut self, max: f64) -> Self {
        self.max = max;
        self
    }
}

impl Judge for ErrorRate {
    fn describe(&self) -> String {
        format!("error rate at most {:.1}%", self.max * 100.0)
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let Some(report) = &cx.load else {
                return Verdict { criterion: name, passed: false, detail: "the scenario runs no load (add .load(..))".into() };
            };
            let s = report.stats();
            Verdict {
                criterion: name,
                passed: s.total > 0 && s.error_rate <= self.max,
                detail: format!(
                    "{:.2}% of {} requests failed ({} errors, {} lost)",
                    s.error_rate * 100.0,
                    s.total,
                    s.errors,
                    s.lost
                ),
            }
        })
    }
}

impl<T: Judge + 'static> From<T> for Criterion {
    fn from(j: T) -> Self {
        Criterion::new(j)
    }
}

fn no_target(name: String) -> Verdict {
    Verdict { criterion: name, passed: false, detail: "no fixture given: add .of(&fixture)".into() }
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// Describes survivors for a failure message: pid, command line, parent, age.
fn describe_procs(ps: &[OwnedPid]) -> String {
    ps.iter()
        .map(|o| match ProcSnapshot::take(o) {
            Some(s) => format!("pid {} [{}] parent {} sid {} age {:.1}s", s.pid, s.label(), s.ppid, s.sid, s.age().as_secs_f64()),
            None => format!("pid {} (gone)", o.pid),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// See [`Criterion::no_orphans`].
pub struct NoOrphans {
    target: Option<Target>,
    within: Duration,
}

impl NoOrphans {
    /// The fixture to judge.
    pub fn of(mut self, f: &impl FixtureHandle) -> Self {
        self.target = Some(f.target());
        self
    }
    /// The allowed time between the main process's death and the last process's.
    pub fn within(mut self, d: Duration) -> Self {
        self.within = d;
        self
    }
}

impl Judge for NoOrphans {
    fn describe(&self) -> String {
        let of = self.target.as_ref().map(|t| t.name().to_string()).unwrap_or_else(|| "?".into());
        format!("no orphans of {of} within {:?} of its main process's death", self.within)
    }

    fn judge<'a>(&'a self, _cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let Some(t) = &self.target else { return no_target(name) };
            let scope = t.scope();
            let Some(main) = t.main() else {
                return Verdict { criterion: name, passed: false, detail: "the fixture has no main process".into() };
            };
            // The main process must die first (usually the fault just killed it).
            let wait_main = Instant::now() + self.within;
            let died_at = loop {
                if let Some(e) = t.main_exit() {
                    break e.at;
                }
                if main.is_gone() {
                    break Instant::now();
                }
                if Instant::now() > wait_main {
                    return Verdict {
                        criterion: name,
                        passed: false,
                        detail: format!(
                            "main pid {} is still alive after {:?}: no_orphans judges what remains after the main process dies; inject a kill of the main process first",
                            main.pid, self.within
                        ),
                    };
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            let deadline = died_at + self.within;
            loop {
                let left = scope.members();
                if left.is_empty() {
                    let el = died_at.elapsed();
                    return Verdict {
                        criterion: name,
                        passed: true,
                        detail: format!(
                            "main pid {} died; every process it owned was gone within {} (guarantee: {})",
                            main.pid,
                            ms(el),
                            if scope.guarantee().is_full() { "cgroup" } else { "reduced" }
                        ),
                    };
                }
                if Instant::now() > deadline {
                    return Verdict {
                        criterion: name,
                        passed: false,
                        detail: format!(
                            "{} orphan(s) still alive {:?} after main pid {} died: {}",
                            left.len(),
                            self.within,
                            main.pid,
                            describe_procs(&left)
                        ),
                    };
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    }
}

/// See [`Criterion::process_count`].
pub struct ProcessCount {
    sel: Selection,
    n: usize,
    at_least: bool,
    within: Duration,
}

impl ProcessCount {
    /// Exactly `n` processes.
    pub fn reaches(mut self, n: usize) -> Self {
        self.n = n;
        self.at_least = false;
        self
    }
    /// At least `n` processes.
    pub fn at_least(mut self, n: usize) -> Self {
        self.n = n;
        self.at_least = true;
        self
    }
    /// Deadline from evaluation (default 5 s).
    pub fn within(mut self, d: Duration) -> Self {
        self.within = d;
        self
    }
}

impl Judge for ProcessCount {
    fn describe(&self) -> String {
        format!("count of {} {} {} within {:?}", self.sel, if self.at_least { ">=" } else { "==" }, self.n, self.within)
    }

    fn judge<'a>(&'a self, _cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let t0 = Instant::now();
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            loop {
                let now = self.sel.resolve(&mut rng);
                let ok = if self.at_least { now.len() >= self.n } else { now.len() == self.n };
                if ok {
                    return Verdict { criterion: name, passed: true, detail: format!("{} processes after {}", now.len(), ms(t0.elapsed())) };
                }
                if t0.elapsed() > self.within {
                    return Verdict {
                        criterion: name,
                        passed: false,
                        detail: format!("count was {} (want {}{}) after {:?}: {}", now.len(), if self.at_least { ">= " } else { "" }, self.n, self.within, describe_procs(&now)),
                    };
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    }
}

/// See [`Criterion::exits_within`].
pub struct ExitsWithin {
    target: Option<Target>,
    within: Duration,
}

impl ExitsWithin {
    /// The fixture to judge.
    pub fn of(mut self, f: &impl FixtureHandle) -> Self {
        self.target = Some(f.target());
        self
    }
}

impl Judge for ExitsWithin {
    fn describe(&self) -> String {
        let of = self.target.as_ref().map(|t| t.name().to_string()).unwrap_or_else(|| "?".into());
        format!("main process of {of} exits within {:?}", self.within)
    }

    fn judge<'a>(&'a self, _cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let Some(t) = &self.target else { return no_target(name) };
            let t0 = Instant::now();
            loop {
                if let Some(e) = t.main_exit() {
                    return Verdict { criterion: name, passed: true, detail: format!("main process {e}") };
                }
                if t.main().is_none_or(|m| m.is_gone()) {
                    return Verdict { criterion: name, passed: true, detail: "main process gone".into() };
                }
                if t0.elapsed() > self.within {
                    return Verdict {
                        criterion: name,
                        passed: false,
                        detail: format!("main pid {:?} still running after {:?}", t.main().map(|m| m.pid), self.within),
                    };
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    }
}

/// See [`Criterion::respawned`].
pub struct Respawned {
    sel: Selection,
    within: Duration,
    baseline: Mutex<Vec<OwnedPid>>,
}

impl Respawned {
    /// Deadline from evaluation (default 5 s).
    pub fn within(mut self, d: Duration) -> Self {
        self.within = d;
        self
    }
}

impl Judge for Respawned {
    fn describe(&self) -> String {
        format!("{} respawned within {:?}", self.sel, self.within)
    }

    fn prepare(&self, _cx: &JudgeContext) {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        *self.baseline.lock().unwrap_or_else(|e| e.into_inner()) = self.sel.resolve(&mut rng);
    }

    fn judge<'a>(&'a self, _cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let base = self.baseline.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let t0 = Instant::now();
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            loop {
                let dead: Vec<&OwnedPid> = base.iter().filter(|o| o.is_gone()).collect();
                let now = self.sel.resolve(&mut rng);
                let fresh: Vec<&OwnedPid> = now.iter().filter(|o| !base.contains(o)).collect();
                if !dead.is_empty() && fresh.len() >= dead.len() {
                    return Verdict {
                        criterion: name,
                        passed: true,
                        detail: format!(
                            "killed pids {:?} replaced by new pids {:?} ({} ms after evaluation began)",
                            dead.iter().map(|o| o.pid).collect::<Vec<_>>(),
                            fresh.iter().map(|o| o.pid).collect::<Vec<_>>(),
                            t0.elapsed().as_millis()
                        ),
                    };
                }
                if t0.elapsed() > self.within {
                    let detail = if dead.is_empty() {
                        format!("none of the baseline pids {:?} died: nothing to respawn (did the fault hit?)", base.iter().map(|o| o.pid).collect::<Vec<_>>())
                    } else {
                        format!(
                            "{} of the baseline processes died ({:?}) but only {} new ones appeared within {:?}: {}",
                            dead.len(),
                            dead.iter().map(|o| o.pid).collect::<Vec<_>>(),
                            fresh.len(),
                            self.within,
                            describe_procs(&now)
                        )
                    };
                    return Verdict { criterion: name, passed: false, detail };
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    }
}
