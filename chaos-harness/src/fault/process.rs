//! Process faults: any signal, kill, kill the whole tree, pause/resume (SIGSTOP/SIGCONT and
//! the cgroup freezer), crash loop, restart. Each confirms it took effect.
//!
//! Targets come from selectors, which only yield pids the sandbox owns; every signal goes
//! through [`Scope::signal`](crate::sandbox::Scope::signal), which re-proves ownership (cgroup
//! membership + start time, through a pidfd) at the moment of sending.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{ActiveFault, Confirmation, Fault, FaultContext, Inject, OneShot};
use crate::Error;
use crate::fixture::{BoxFuture, FixtureHandle, Selection, Target};
use crate::params::{Described, Params};
use crate::sandbox::{Effect, OwnedPid, cgroup};

fn not_injected(fault: &str, cause: impl Into<String>, fix: impl Into<String>) -> Error {
    Error::NotInjected { fault: fault.to_string(), cause: cause.into(), fix: fix.into() }
}

fn pids(v: &[OwnedPid]) -> Vec<i32> {
    v.iter().map(|o| o.pid).collect()
}

/// Blocks until every target is gone or a zombie, or `timeout`; returns the time it took or
/// the survivors. Polls `/proc` every 20 us for the first 2 ms, then every millisecond.
///
/// ```
/// use chaos_harness::{fault::process::wait_gone_blocking, sandbox::OwnedPid};
/// let gone = OwnedPid { pid: i32::MAX, start_time: 1, fixture: "x".into() };
/// assert!(wait_gone_blocking(&[gone], std::time::Duration::from_millis(10)).is_ok());
/// ```
pub fn wait_gone_blocking(targets: &[OwnedPid], timeout: Duration) -> Result<Duration, Vec<OwnedPid>> {
    let t0 = Instant::now();
    loop {
        let left: Vec<OwnedPid> = targets.iter().filter(|o| !o.is_gone()).cloned().collect();
        if left.is_empty() {
            return Ok(t0.elapsed());
        }
        let el = t0.elapsed();
        if el > timeout {
            return Err(left);
        }
        std::thread::sleep(if el < Duration::from_millis(2) {
            Duration::from_micros(20)
        } else {
            Duration::from_millis(1)
        });
    }
}

/// Async form of [`wait_gone_blocking`]: spins (blocking) for at most 2 ms for sub-millisecond
/// confirmation, then polls every millisecond on the timer.
pub async fn wait_gone(targets: &[OwnedPid], timeout: Duration) -> Result<Duration, Vec<OwnedPid>> {
    let t0 = Instant::now();
    if let Ok(d) = wait_gone_blocking(targets, Duration::from_millis(2).min(timeout)) {
        return Ok(d);
    }
    loop {
        let left: Vec<OwnedPid> = targets.iter().filter(|o| !o.is_gone()).cloned().collect();
        if left.is_empty() {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > timeout {
            return Err(left);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn wait_state(targets: &[OwnedPid], stopped: bool, timeout: Duration) -> Result<Duration, Vec<OwnedPid>> {
    let t0 = Instant::now();
    loop {
        let left: Vec<OwnedPid> = targets
            .iter()
            .filter(|o| match o.stat() {
                None => false,
                Some(s) if s.is_dead() => false,
                Some(s) => s.is_stopped() != stopped,
            })
            .cloned()
            .collect();
        if left.is_empty() {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > timeout {
            return Err(left);
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Sends signals to the selected processes, checking ownership per pid. Returns the pids
/// actually signalled (already-gone ones are skipped).
fn send_all(sel: &Selection, targets: &[OwnedPid], sig: Signal, fault: &str) -> Result<Vec<OwnedPid>, Error> {
    let scope = sel.target().scope();
    let mut sent = Vec::new();
    for t in targets {
        match scope.signal(t, sig) {
            Ok(true) => sent.push(t.clone()),
            Ok(false) => {}
            Err(e) => return Err(not_injected(fault, e.to_string(), "select targets through the fixture's selectors")),
        }
    }
    Ok(sent)
}

/// Send a signal to the selected processes (`Fault::kill`, `Fault::signal`). With SIGKILL (or
/// [`Kill::confirm_exit`]) it is confirmed by every target being gone or a zombie; with
/// SIGSTOP by state `T`; otherwise by delivery.
///
/// ```no_run
/// # use chaos_harness::{fault::Fault, fixture::{FixtureHandle, Process}};
/// # fn f(p: &Process) {
/// use nix::sys::signal::Signal;
/// let f = Fault::kill(p.main()).signal(Signal::SIGTERM).confirm_exit(true);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Kill {
    sel: Selection,
    signal: Signal,
    confirm_exit: Option<bool>,
    timeout: Duration,
}

impl Kill {
    /// The signal to send (default SIGKILL).
    pub fn signal(mut self, sig: Signal) -> Self {
        self.signal = sig;
        self
    }

    /// Whether the fault is confirmed only once every target has exited (default: only for
    /// SIGKILL).
    pub fn confirm_exit(mut self, yes: bool) -> Self {
        self.confirm_exit = Some(yes);
        self
    }

    /// How long to wait for the confirmation (default 5 s).
    pub fn confirm_timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }
}

impl Inject for Kill {
    fn describe(&self) -> String {
        format!("{} to {}", self.signal.as_str(), self.sel)
    }

    fn described(&self) -> Option<Described> {
        let mut p = Params::new().with("target", self.sel.expr()).with("signal", self.signal.as_str());
        if let Some(c) = self.confirm_exit {
            p = p.with("confirm_exit", c);
        }
        Some(Described::new("kill", p.with_duration("confirm_timeout", self.timeout)))
    }

    fn inject<'a>(&'a self, cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            let targets = self.sel.resolve(cx.rng);
            if targets.is_empty() {
                return Err(not_injected(
                    &name,
                    "the selector matched no live process",
                    "check the fixture is running and the selector",
                ));
            }
            if self.signal == Signal::SIGSTOP {
                // Journal the stop so teardown (or the reaper) resumes it.
                let scope = self.sel.target().scope();
                for t in &targets {
                    cx.sandbox.record(Effect::Stopped { pid: t.pid, start_time: t.start_time }, || Ok(()))?;
                    scope
                        .signal(t, Signal::SIGSTOP)
                        .map_err(|e| not_injected(&name, e.to_string(), "select owned processes"))?;
                }
            }
            let t0 = Instant::now();
            let sent = if self.signal == Signal::SIGSTOP {
                targets.clone()
            } else {
                send_all(&self.sel, &targets, self.signal, &name)?
            };
            if sent.is_empty() {
                return Err(not_injected(
                    &name,
                    "every selected process was already gone",
                    "inject while the target runs",
                ));
            }
            let detail = if self.confirm_exit.unwrap_or(self.signal == Signal::SIGKILL) {
                match wait_gone(&sent, self.timeout).await {
                    Ok(_) => {
                        format!("pids {:?} gone (reaped or zombie) {} after the signal", pids(&sent), ms(t0.elapsed()))
                    }
                    Err(left) => {
                        return Err(not_injected(
                            &name,
                            format!(
                                "pids {:?} still alive {:?} after {}",
                                pids(&left),
                                self.timeout,
                                self.signal.as_str()
                            ),
                            "the process may handle or ignore the signal; use SIGKILL or confirm_exit(false)",
                        ));
                    }
                }
            } else if self.signal == Signal::SIGSTOP {
                match wait_state(&sent, true, self.timeout).await {
                    Ok(_) => format!("pids {:?} in state T (stopped)", pids(&sent)),
                    Err(left) => {
                        return Err(not_injected(
                            &name,
                            format!("pids {:?} not stopped", pids(&left)),
                            "check for ptrace",
                        ));
                    }
                }
            } else {
                format!("{} delivered to pids {:?}", self.signal.as_str(), pids(&sent))
            };
            Ok(Box::new(OneShot(Confirmation::new(name, detail, pids(&sent)))) as Box<dyn ActiveFault>)
        })
    }
}

/// SIGKILL every process of a fixture at once (cgroup.kill or sweeps through the cgroup);
/// confirmed when its cgroup is empty.
#[derive(Debug, Clone)]
pub struct KillTree {
    target: Target,
    timeout: Duration,
}

impl Inject for KillTree {
    fn described(&self) -> Option<Described> {
        Some(Described::new(
            "kill_tree",
            Params::new().with("target", self.target.name()).with_duration("confirm_timeout", self.timeout),
        ))
    }

    fn describe(&self) -> String {
        format!("kill the whole tree of {}", self.target.name())
    }

    fn inject<'a>(&'a self, _cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            let scope = self.target.scope();
            let before = scope.members();
            if before.is_empty() {
                return Err(not_injected(&name, "the fixture has no live process", "inject while it runs"));
            }
            let t0 = Instant::now();
            let timeout = self.timeout;
            let s2 = scope.clone();
            let r = tokio::task::spawn_blocking(move || s2.kill_all(timeout))
                .await
                .map_err(|e| not_injected(&name, e.to_string(), "internal error"))?;
            match r {
                Ok(()) => Ok(Box::new(OneShot(Confirmation::new(
                    name,
                    format!("all {} processes gone {} after the kill", before.len(), ms(t0.elapsed())),
                    pids(&before),
                ))) as Box<dyn ActiveFault>),
                Err(left) => {
                    Err(not_injected(&name, format!("pids {left:?} survived"), "check for processes in state D"))
                }
            }
        })
    }
}

/// SIGSTOP the selected processes (confirmed by state `T`); clearing sends SIGCONT
/// (confirmed by leaving `T`). Journaled, so teardown resumes them if the test does not.
#[derive(Debug, Clone)]
pub struct Pause {
    sel: Selection,
}

struct PauseActive {
    confirmation: Confirmation,
    sel: Selection,
    stopped: Vec<(OwnedPid, u64)>,
    sandbox: Arc<crate::sandbox::Sandbox>,
}

impl Inject for Pause {
    fn described(&self) -> Option<Described> {
        Some(Described::new("pause", Params::new().with("target", self.sel.expr())))
    }

    fn describe(&self) -> String {
        format!("pause (SIGSTOP) {}", self.sel)
    }

    fn inject<'a>(&'a self, cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            let targets = self.sel.resolve(cx.rng);
            if targets.is_empty() {
                return Err(not_injected(&name, "the selector matched no live process", "check the selector"));
            }
            let scope = self.sel.target().scope();
            let mut stopped = Vec::new();
            for t in &targets {
                let (sent, seq) =
                    cx.sandbox.record(Effect::Stopped { pid: t.pid, start_time: t.start_time }, || {
                        scope
                            .signal(t, Signal::SIGSTOP)
                            .map_err(|e| not_injected(&name, e.to_string(), "select owned processes"))
                    })?;
                if sent {
                    stopped.push((t.clone(), seq));
                }
            }
            let only: Vec<OwnedPid> = stopped.iter().map(|s| s.0.clone()).collect();
            if only.is_empty() {
                return Err(not_injected(&name, "every selected process was already gone", "inject while it runs"));
            }
            if let Err(left) = wait_state(&only, true, Duration::from_secs(2)).await {
                return Err(not_injected(
                    &name,
                    format!("pids {:?} never reached state T", pids(&left)),
                    "is it traced?",
                ));
            }
            let confirmation =
                Confirmation::new(&name, format!("pids {:?} in state T (stopped)", pids(&only)), pids(&only));
            Ok(Box::new(PauseActive { confirmation, sel: self.sel.clone(), stopped, sandbox: cx.sandbox.clone() })
                as Box<dyn ActiveFault>)
        })
    }
}

impl ActiveFault for PauseActive {
    fn confirmation(&self) -> &Confirmation {
        &self.confirmation
    }

    fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, Error>> {
        Box::pin(async move {
            let scope = self.sel.target().scope();
            let name = format!("resume (SIGCONT) {}", self.sel);
            let mut resumed = Vec::new();
            for (t, seq) in &self.stopped {
                match scope.signal(t, Signal::SIGCONT) {
                    Ok(true) => resumed.push(t.clone()),
                    Ok(false) => {}
                    Err(e) => return Err(not_injected(&name, e.to_string(), "teardown will resume it")),
                }
                let _ = self.sandbox.journal().undone(*seq);
            }
            match wait_state(&resumed, false, Duration::from_secs(2)).await {
                Ok(_) => Ok(Confirmation::new(
                    name,
                    format!("pids {:?} left state T (running)", pids(&resumed)),
                    pids(&resumed),
                )),
                Err(left) => {
                    Err(not_injected(&name, format!("pids {:?} still stopped", pids(&left)), "check for a second stop"))
                }
            }
        })
    }
}

/// Freeze a fixture's cgroup (v1 `freezer.state` / v2 `cgroup.freeze`), confirmed by reading
/// the state back; clearing thaws and reads back again. Needs cgroups.
#[derive(Debug, Clone)]
pub struct Freeze {
    target: Target,
}

struct FreezeActive {
    confirmation: Confirmation,
    cg: cgroup::CgroupRef,
    seq: u64,
    sandbox: Arc<crate::sandbox::Sandbox>,
    name: String,
}

impl Inject for Freeze {
    fn described(&self) -> Option<Described> {
        Some(Described::new("freeze", Params::new().with("target", self.target.name())))
    }

    fn describe(&self) -> String {
        format!("freeze the cgroup of {}", self.target.name())
    }

    fn inject<'a>(&'a self, cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            let scope = self.target.scope();
            let Some(cg) = scope.freezer().cloned() else {
                return Err(not_injected(
                    &name,
                    format!("no cgroup freezer ({})", scope.guarantee()),
                    "run as root with the freezer (v1) or cgroup2 mounted, or use Fault::pause (SIGSTOP)",
                ));
            };
            let members = scope.members();
            let ((), seq) = cx.sandbox.record(Effect::Frozen { cgroup: cg.clone() }, || {
                cgroup::set_frozen(&cg, true, Duration::from_secs(2))
                    .map_err(|e| not_injected(&name, e.to_string(), "check for processes in state D"))
            })?;
            let state = cgroup::read_frozen(&cg).unwrap_or(false);
            if !state {
                return Err(not_injected(
                    &name,
                    "freezer state did not read back as frozen",
                    "check the freezer hierarchy",
                ));
            }
            let file = if cg.is_v2() { "cgroup.events: frozen 1" } else { "freezer.state: FROZEN" };
            let confirmation = Confirmation::new(
                &name,
                format!("{file} read back from {} ({} processes frozen)", cg.dir().display(), members.len()),
                pids(&members),
            );
            Ok(Box::new(FreezeActive {
                confirmation,
                cg,
                seq,
                sandbox: cx.sandbox.clone(),
                name: self.target.name().to_string(),
            }) as Box<dyn ActiveFault>)
        })
    }
}

impl ActiveFault for FreezeActive {
    fn confirmation(&self) -> &Confirmation {
        &self.confirmation
    }

    fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, Error>> {
        Box::pin(async move {
            let name = format!("thaw the cgroup of {}", self.name);
            if !self.cg.dir().exists() {
                let _ = self.sandbox.journal().undone(self.seq);
                return Ok(Confirmation::new(name, "cgroup already removed", vec![]));
            }
            cgroup::set_frozen(&self.cg, false, Duration::from_secs(2))
                .map_err(|e| not_injected(&name, e.to_string(), "teardown will retry"))?;
            let _ = self.sandbox.journal().undone(self.seq);
            let file = if self.cg.is_v2() { "cgroup.events: frozen 0" } else { "freezer.state: THAWED" };
            Ok(Confirmation::new(name, format!("{file} read back"), vec![]))
        })
    }
}

/// Kill the selection every `every` for `lasting` (SIGKILL, each kill confirmed). Runs in the
/// background after the first confirmed kill; clearing stops it and reports the totals.
#[derive(Debug, Clone)]
pub struct CrashLoop {
    sel: Selection,
    every: Duration,
    lasting: Duration,
}

impl CrashLoop {
    /// Period between kills (default 500 ms).
    pub fn every(mut self, d: Duration) -> Self {
        self.every = d;
        self
    }

    /// How long the loop runs (default 5 s).
    pub fn lasting(mut self, d: Duration) -> Self {
        self.lasting = d;
        self
    }
}

#[derive(Debug, Default, Clone)]
struct LoopStats {
    ticks: u32,
    empty_ticks: u32,
    confirmed: Vec<i32>,
    unconfirmed: Vec<i32>,
    refused: Vec<String>,
}

struct CrashLoopActive {
    confirmation: Confirmation,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    stats: Arc<Mutex<LoopStats>>,
    name: String,
}

impl Inject for CrashLoop {
    fn described(&self) -> Option<Described> {
        let p = Params::new().with("target", self.sel.expr());
        Some(Described::new("crash_loop", p.with_duration("every", self.every).with_duration("lasting", self.lasting)))
    }

    fn describe(&self) -> String {
        format!("crash loop on {} every {:?} for {:?}", self.sel, self.every, self.lasting)
    }

    fn inject<'a>(&'a self, cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            let stop = Arc::new(AtomicBool::new(false));
            let stats = Arc::new(Mutex::new(LoopStats::default()));
            let first = Arc::new(tokio::sync::Notify::new());
            let mut rng = ChaCha8Rng::seed_from_u64(cx.rng.next_u64());
            let (sel, every, lasting) = (self.sel.clone(), self.every, self.lasting);
            let (stop2, stats2, first2) = (stop.clone(), stats.clone(), first.clone());
            let task = tokio::spawn(async move {
                let t0 = Instant::now();
                let scope = sel.target().scope();
                while t0.elapsed() < lasting && !stop2.load(Ordering::SeqCst) {
                    let targets = sel.resolve(&mut rng);
                    let mut sent = Vec::new();
                    for t in &targets {
                        match scope.signal(t, Signal::SIGKILL) {
                            Ok(true) => sent.push(t.clone()),
                            Ok(false) => {}
                            Err(e) => stats2.lock().unwrap_or_else(|e| e.into_inner()).refused.push(e.to_string()),
                        }
                    }
                    let res = wait_gone(&sent, Duration::from_secs(2)).await;
                    {
                        let mut s = stats2.lock().unwrap_or_else(|e| e.into_inner());
                        s.ticks += 1;
                        if sent.is_empty() {
                            s.empty_ticks += 1;
                        }
                        match res {
                            Ok(_) => s.confirmed.extend(pids(&sent)),
                            Err(left) => {
                                s.unconfirmed.extend(pids(&left));
                                s.confirmed.extend(sent.iter().filter(|o| !left.contains(o)).map(|o| o.pid));
                            }
                        }
                        if !s.confirmed.is_empty() {
                            first2.notify_one();
                        }
                    }
                    tokio::time::sleep(every).await;
                }
                first2.notify_one();
            });
            first.notified().await;
            let s = stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if s.confirmed.is_empty() {
                stop.store(true, Ordering::SeqCst);
                let _ = task.await;
                let why = if s.refused.is_empty() {
                    format!("no kill could be confirmed in {} ticks ({} found nothing to kill)", s.ticks, s.empty_ticks)
                } else {
                    format!("kills refused: {}", s.refused.join("; "))
                };
                return Err(not_injected(&name, why, "check the selector matches live processes"));
            }
            let confirmation =
                Confirmation::new(&name, format!("first kill confirmed: pids {:?}", s.confirmed), s.confirmed.clone());
            Ok(Box::new(CrashLoopActive { confirmation, stop, task, stats, name }) as Box<dyn ActiveFault>)
        })
    }
}

impl ActiveFault for CrashLoopActive {
    fn confirmation(&self) -> &Confirmation {
        &self.confirmation
    }

    fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, Error>> {
        Box::pin(async move {
            self.stop.store(true, Ordering::SeqCst);
            let _ = self.task.await;
            let s = self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let mut detail = format!(
                "{} kills confirmed over {} ticks ({} ticks found nothing to kill); killed pids {:?}",
                s.confirmed.len(),
                s.ticks,
                s.empty_ticks,
                s.confirmed
            );
            if !s.unconfirmed.is_empty() {
                detail.push_str(&format!("; UNCONFIRMED {:?}", s.unconfirmed));
            }
            if !s.refused.is_empty() {
                detail.push_str(&format!("; refused: {}", s.refused.join("; ")));
            }
            Ok(Confirmation::new(format!("stop {}", self.name), detail, s.confirmed))
        })
    }
}

/// Stop the fixture and start it again on the same data; confirmed by a new main pid that
/// passes the readiness probes.
#[derive(Debug, Clone)]
pub struct Restart {
    target: Target,
}

impl Inject for Restart {
    fn described(&self) -> Option<Described> {
        Some(Described::new("restart", Params::new().with("target", self.target.name())))
    }

    fn describe(&self) -> String {
        format!("restart {}", self.target.name())
    }

    fn inject<'a>(&'a self, _cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            let before = self.target.main();
            self.target.restart().await.map_err(|e| not_injected(&name, e.to_string(), "see the fixture logs"))?;
            let after = self.target.main();
            match (before, after) {
                (Some(b), Some(a)) if (a.pid, a.start_time) != (b.pid, b.start_time) && !a.is_gone() => {
                    Ok(Box::new(OneShot(Confirmation::new(
                        name,
                        format!("main pid {} -> {} (ready)", b.pid, a.pid),
                        vec![b.pid, a.pid],
                    ))) as Box<dyn ActiveFault>)
                }
                (b, a) => Err(not_injected(
                    &name,
                    format!("main process did not change ({b:?} -> {a:?})"),
                    "see the fixture logs",
                )),
            }
        })
    }
}

impl Fault {
    /// SIGKILL the selection (change the signal with [`Kill::signal`]).
    pub fn kill(sel: Selection) -> Kill {
        Kill { sel, signal: Signal::SIGKILL, confirm_exit: None, timeout: Duration::from_secs(5) }
    }

    /// Send `sig` to the selection.
    pub fn signal(sel: Selection, sig: Signal) -> Kill {
        Self::kill(sel).signal(sig)
    }

    /// SIGKILL every process of the fixture.
    pub fn kill_tree(fixture: &(impl FixtureHandle + ?Sized)) -> KillTree {
        KillTree { target: fixture.target(), timeout: Duration::from_secs(5) }
    }

    /// SIGSTOP the selection until cleared.
    pub fn pause(sel: Selection) -> Pause {
        Pause { sel }
    }

    /// Freeze the fixture's cgroup until cleared.
    pub fn freeze(fixture: &(impl FixtureHandle + ?Sized)) -> Freeze {
        Freeze { target: fixture.target() }
    }

    /// Kill the selection periodically.
    pub fn crash_loop(sel: Selection) -> CrashLoop {
        CrashLoop { sel, every: Duration::from_millis(500), lasting: Duration::from_secs(5) }
    }

    /// Restart the fixture.
    pub fn restart(fixture: &(impl FixtureHandle + ?Sized)) -> Restart {
        Restart { target: fixture.target() }
    }
}

/// Used by the crash loop's rng plumbing; kept public for custom faults that need a derived,
/// seeded random source.
///
/// ```
/// use rand::SeedableRng;
/// let mut a = chaos_harness::fault::process::derived_rng(&mut rand_chacha::ChaCha8Rng::from_seed([1; 32]));
/// let _ = rand::RngCore::next_u32(&mut a);
/// ```
pub fn derived_rng(rng: &mut dyn RngCore) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(rng.next_u64())
}
