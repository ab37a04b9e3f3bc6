//! Process criteria: `no_orphans`, `gone`, `process_count`, `exits_within`, `respawned`.
//!
//! `within(d)` counts from the moment the criterion is evaluated, except `no_orphans`, which
//! counts from the main process's death. Zombies count as dead.
//!
//! ```no_run
//! # fn f(p: &chaos_harness::fixture::command::Process) {
//! use chaos_harness::prelude::*;
//! let c = Criterion::no_orphans().of(p).within(Duration::from_secs(5));
//! # let _ = c; }
//! ```

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Criterion, Judge, JudgeContext, Verdict, ms, no_target};
use crate::BoxFuture;
use crate::fixture::{FixtureHandle, Selection, Target};
use crate::sandbox::OwnedPid;
use crate::sandbox::snapshot::ProcSnapshot;

impl Criterion {
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
    fn described(&self) -> Option<crate::params::Described> {
        Some(crate::params::Described::new(
            "gone",
            crate::params::Params::new().with("target", self.sel.expr()).with_duration("within", self.within),
        ))
    }

    fn describe(&self) -> String {
        format!("the processes of {} present at the start are gone within {:?}", self.sel, self.within)
    }

    fn prepare(&self, cx: &JudgeContext) {
        let pids = self.sel.resolve(&mut cx.rng());
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = Some(pids);
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let snapshot = self.snapshot.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let Some(pids) = snapshot else {
                return Verdict {
                    criterion: name,
                    passed: false,
                    detail: "no snapshot: the criterion was not prepared".into(),
                };
            };
            if pids.is_empty() {
                return Verdict {
                    criterion: name,
                    passed: false,
                    detail: format!("{} selected no process at the start, so there was nothing to watch", self.sel),
                };
            }
            let t0 = cx.window_start;
            loop {
                let left: Vec<OwnedPid> = pids.iter().filter(|p| !p.is_gone()).cloned().collect();
                if left.is_empty() {
                    return Verdict {
                        criterion: name,
                        passed: true,
                        detail: format!("all {} gone {} after the window opened", pids.len(), ms(t0.elapsed())),
                    };
                }
                if t0.elapsed() > self.within {
                    return Verdict {
                        criterion: name,
                        passed: false,
                        detail: format!(
                            "{} of {} still alive after {:?}: {}",
                            left.len(),
                            pids.len(),
                            self.within,
                            describe_procs(&left)
                        ),
                    };
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    }
}

/// Describes survivors for a failure message: pid, command line, parent, age.
fn describe_procs(ps: &[OwnedPid]) -> String {
    ps.iter()
        .map(|o| match ProcSnapshot::take(o) {
            Some(s) => format!(
                "pid {} [{}] parent {} sid {} age {:.1}s",
                s.pid,
                s.label(),
                s.ppid,
                s.sid,
                s.age().as_secs_f64()
            ),
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
    pub fn of(mut self, f: &(impl FixtureHandle + ?Sized)) -> Self {
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
    fn described(&self) -> Option<crate::params::Described> {
        let t = self.target.as_ref()?;
        Some(crate::params::Described::new(
            "no_orphans",
            crate::params::Params::new().with("target", t.name()).with_duration("within", self.within),
        ))
    }

    fn describe(&self) -> String {
        let of = self.target.as_ref().map(|t| t.name().to_string()).unwrap_or_else(|| "?".into());
        format!("no orphans of {of} within {:?} of its main process's death", self.within)
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let Some(t) = &self.target else { return no_target(name) };
            let scope = t.scope();
            let Some(main) = t.main() else {
                return Verdict { criterion: name, passed: false, detail: "the fixture has no main process".into() };
            };
            // The main process must die first (usually the fault just killed it).
            let wait_main = cx.deadline(self.within);
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
    fn described(&self) -> Option<crate::params::Described> {
        Some(crate::params::Described::new(
            "process_count",
            crate::params::Params::new()
                .with("target", self.sel.expr())
                .with(if self.at_least { "at_least" } else { "reaches" }, self.n)
                .with_duration("within", self.within),
        ))
    }

    fn describe(&self) -> String {
        format!("count of {} {} {} within {:?}", self.sel, if self.at_least { ">=" } else { "==" }, self.n, self.within)
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let t0 = cx.window_start;
            let mut rng = cx.rng();
            loop {
                let now = self.sel.resolve(&mut rng);
                let ok = if self.at_least { now.len() >= self.n } else { now.len() == self.n };
                if ok {
                    return Verdict {
                        criterion: name,
                        passed: true,
                        detail: format!("{} processes after {}", now.len(), ms(t0.elapsed())),
                    };
                }
                if t0.elapsed() > self.within {
                    return Verdict {
                        criterion: name,
                        passed: false,
                        detail: format!(
                            "count was {} (want {}{}) after {:?}: {}",
                            now.len(),
                            if self.at_least { ">= " } else { "" },
                            self.n,
                            self.within,
                            describe_procs(&now)
                        ),
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
    pub fn of(mut self, f: &(impl FixtureHandle + ?Sized)) -> Self {
        self.target = Some(f.target());
        self
    }

    /// The allowed time, for the order the other criteria use: `exits_within(d).of(&p)` and
    /// `exits_within(d).of(&p).within(d2)` both work (the last duration given wins).
    pub fn within(mut self, d: Duration) -> Self {
        self.within = d;
        self
    }
}

impl Judge for ExitsWithin {
    fn described(&self) -> Option<crate::params::Described> {
        let t = self.target.as_ref()?;
        Some(crate::params::Described::new(
            "exits_within",
            crate::params::Params::new().with("target", t.name()).with_duration("within", self.within),
        ))
    }

    fn describe(&self) -> String {
        let of = self.target.as_ref().map(|t| t.name().to_string()).unwrap_or_else(|| "?".into());
        format!("main process of {of} exits within {:?}", self.within)
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let Some(t) = &self.target else { return no_target(name) };
            let t0 = cx.window_start;
            let mut gone_since: Option<Instant> = None;
            loop {
                if let Some(e) = t.main_exit() {
                    return Verdict { criterion: name, passed: true, detail: format!("main process {e}") };
                }
                // Gone from /proc, but the fixture's waiter may not have recorded the exit yet:
                // wait for the record (so `exit_status()` agrees with this verdict), unless the
                // main process is not the harness's child and no record will ever come.
                if t.main().is_none_or(|m| m.is_gone()) {
                    let since = *gone_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= EXIT_RECORD_GRACE {
                        return Verdict {
                            criterion: name,
                            passed: true,
                            detail: "main process gone (no exit status recorded: not a child of the harness)".into(),
                        };
                    }
                }
                if gone_since.is_none() && t0.elapsed() > self.within {
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

/// How long [`ExitsWithin`] waits, once the main process is gone, for the fixture's waiter to
/// record its exit status.
const EXIT_RECORD_GRACE: Duration = Duration::from_secs(1);

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
    fn described(&self) -> Option<crate::params::Described> {
        Some(crate::params::Described::new(
            "respawned",
            crate::params::Params::new().with("target", self.sel.expr()).with_duration("within", self.within),
        ))
    }

    fn describe(&self) -> String {
        format!("{} respawned within {:?}", self.sel, self.within)
    }

    fn prepare(&self, cx: &JudgeContext) {
        let mut rng = cx.rng();
        *self.baseline.lock().unwrap_or_else(|e| e.into_inner()) = self.sel.resolve(&mut rng);
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let base = self.baseline.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let t0 = cx.window_start;
            let mut rng = cx.rng();
            loop {
                let dead: Vec<&OwnedPid> = base.iter().filter(|o| o.is_gone()).collect();
                let now = self.sel.resolve(&mut rng);
                let fresh: Vec<&OwnedPid> = now.iter().filter(|o| !base.contains(o)).collect();
                if !dead.is_empty() && fresh.len() >= dead.len() {
                    return Verdict {
                        criterion: name,
                        passed: true,
                        detail: format!(
                            "killed pids {:?} replaced by new pids {:?} ({} ms after the window opened)",
                            dead.iter().map(|o| o.pid).collect::<Vec<_>>(),
                            fresh.iter().map(|o| o.pid).collect::<Vec<_>>(),
                            t0.elapsed().as_millis()
                        ),
                    };
                }
                if t0.elapsed() > self.within {
                    let detail = if dead.is_empty() {
                        format!(
                            "none of the baseline pids {:?} died: nothing to respawn (did the fault hit?)",
                            base.iter().map(|o| o.pid).collect::<Vec<_>>()
                        )
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
