//! [`Scope`]: the set of processes one fixture owns, and how the harness finds, signals,
//! freezes and kills them.
//!
//! With cgroups (the normal case) the scope is one cgroup per hierarchy, created before the
//! program starts; the program is spawned into them, so `setsid`, double forks and rewritten
//! command lines or environments do not matter. Without cgroups (not root, or
//! `CHAOS_SANDBOX_NO_CGROUPS=1`) the scope falls back to the `CHAOS_HARNESS_RUN` marker plus
//! the process tree sampled in the background, and says so ([`Scope::guarantee`]).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::cgroup::{self, CgroupRef};
use super::journal::Journal;
use super::owner::{self, OwnedPid};
use super::proc_events::{self, Tracker};
use super::procfs;
use crate::Error;
use crate::sandbox::snapshot::{ProcRecord, ProcSnapshot};

/// How strongly a scope can hold on to its processes.
///
/// ```
/// use chaos_harness::sandbox::Guarantee;
/// assert!(Guarantee::Cgroups.is_full());
/// assert!(!Guarantee::Reduced { reason: "not root".into() }.is_full());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guarantee {
    /// Every process is in the fixture's cgroups: nothing escapes.
    Cgroups,
    /// Marker + sampled process tree only; the reason says why cgroups are unavailable.
    Reduced {
        /// Why there are no cgroups.
        reason: String,
    },
}

impl Guarantee {
    /// `true` for [`Guarantee::Cgroups`].
    pub fn is_full(&self) -> bool {
        matches!(self, Guarantee::Cgroups)
    }
}

impl std::fmt::Display for Guarantee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Guarantee::Cgroups => f.write_str("full: every fixture process is held in its own cgroups"),
            Guarantee::Reduced { reason } => write!(
                f,
                "REDUCED (no cgroups: {reason}): fixture processes are tracked by the {} marker and \
                 their parent chain sampled every {} ms; a process that double-forks faster than that \
                 and also wipes its environment can escape. Run as root with cgroups for the full guarantee",
                super::RUN_MARKER_ENV,
                FALLBACK_SAMPLE.as_millis()
            ),
        }
    }
}

/// Sampling period of the background observer with cgroups.
pub const CGROUP_SAMPLE: Duration = Duration::from_millis(20);
/// Sampling period of the background observer in the fallback (it scans all of `/proc`).
pub const FALLBACK_SAMPLE: Duration = Duration::from_millis(50);
/// How long the fallback remembers pids it found foreign before reading them again.
const FOREIGN_TTL: Duration = Duration::from_secs(1);
/// Ids of scopes for the kernel process tracker.
static NEXT_SCOPE_ID: AtomicU64 = AtomicU64::new(1);

/// The processes of one fixture. Created by [`Sandbox::scope`](crate::sandbox::Sandbox::scope);
/// shared by the fixture handle, faults, selectors and criteria.
#[derive(Debug)]
pub struct Scope {
    id: u64,
    name: String,
    run_id: String,
    cgroups: Vec<CgroupRef>,
    cgroup_seqs: Vec<u64>,
    guarantee: Guarantee,
    journal: Arc<Journal>,
    /// `seq` of the current `process` journal entry (for `pid` records in the fallback).
    process_seq: Mutex<Option<u64>>,
    main: Mutex<Option<OwnedPid>>,
    history: Mutex<BTreeMap<(i32, u64), ProcRecord>>,
    tracked: Mutex<BTreeSet<(i32, u64)>>,
    /// Fallback: pids found foreign at the last scans, and when the cache was started.
    foreign: Mutex<(Instant, HashSet<i32>)>,
    sampler_started: AtomicBool,
    stopped: AtomicBool,
    created: Instant,
    /// Kernel process events (with cgroups, when available): descendants followed from fork.
    events: Option<&'static Tracker>,
    /// Followed processes found outside the cgroups, already journaled for the reaper.
    escapes: Mutex<HashSet<(i32, u64)>>,
}

impl Scope {
    pub(crate) fn new(
        name: String,
        run_id: String,
        cgroups: Vec<(CgroupRef, u64)>,
        guarantee: Guarantee,
        journal: Arc<Journal>,
    ) -> Arc<Self> {
        let (cgroups, cgroup_seqs): (Vec<CgroupRef>, Vec<u64>) = cgroups.into_iter().unzip();
        let events = if cgroups.is_empty() { None } else { proc_events::tracker().ok() };
        Arc::new(Self {
            id: NEXT_SCOPE_ID.fetch_add(1, Ordering::Relaxed),
            name,
            run_id,
            cgroups,
            cgroup_seqs,
            guarantee,
            journal,
            process_seq: Mutex::new(None),
            main: Mutex::new(None),
            history: Mutex::new(BTreeMap::new()),
            tracked: Mutex::new(BTreeSet::new()),
            foreign: Mutex::new((Instant::now(), HashSet::new())),
            sampler_started: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            created: Instant::now(),
            events,
            escapes: Mutex::new(HashSet::new()),
        })
    }

    /// How the scope follows processes beyond its cgroups: `Ok` when the kernel reports every
    /// fork (a process moved out of the cgroups stays the fixture's), `Err` with the reason.
    ///
    /// ```no_run
    /// # fn f(scope: &chaos_harness::sandbox::Scope) {
    /// if let Err(why) = scope.kernel_tracking() { eprintln!("processes moved out of the cgroups escape: {why}"); }
    /// # }
    /// ```
    pub fn kernel_tracking(&self) -> Result<(), String> {
        match (self.events, self.cgroups.is_empty()) {
            (Some(_), _) => Ok(()),
            (None, true) => Err("no cgroups (see the guarantee)".into()),
            (None, false) => Err(proc_events::tracker().err().unwrap_or("unavailable").to_string()),
        }
    }

    /// The fixture name (unique within the sandbox).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The run id of the owning sandbox.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The fixture's cgroups, one per hierarchy (empty in the fallback).
    pub fn cgroups(&self) -> &[CgroupRef] {
        &self.cgroups
    }

    /// Whether the scope holds its processes in cgroups, or the reduced fallback.
    pub fn guarantee(&self) -> &Guarantee {
        &self.guarantee
    }

    /// The cgroup used to list members: cgroup2 if present (it has `cgroup.kill`), else the
    /// first v1 hierarchy.
    pub fn primary(&self) -> Option<&CgroupRef> {
        self.cgroups.first()
    }

    /// The cgroup used for freezing: the v1 freezer hierarchy, else cgroup2.
    pub fn freezer(&self) -> Option<&CgroupRef> {
        self.cgroups.iter().find(|c| c.controller == "freezer").or_else(|| self.cgroups.iter().find(|c| c.is_v2()))
    }

    /// The cgroup of a given v1 controller (`"memory"`, `"cpu"`, `"pids"`) or `""` for cgroup2.
    pub fn cgroup(&self, controller: &str) -> Option<&CgroupRef> {
        self.cgroups.iter().find(|c| c.controller == controller)
    }

    /// The fixture's main process (the one the harness spawned), if started.
    pub fn main(&self) -> Option<OwnedPid> {
        self.main.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_main(&self, pid: i32, start_time: u64, process_seq: u64) {
        *self.main.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(OwnedPid { pid, start_time, fixture: self.name.clone() });
        *self.process_seq.lock().unwrap_or_else(|e| e.into_inner()) = Some(process_seq);
        self.tracked.lock().unwrap_or_else(|e| e.into_inner()).insert((pid, start_time));
        if let Some(t) = self.events {
            // Every descendant is journaled from its fork on: if something moves it out of the
            // cgroups and the harness dies before the next sample, the reaper still kills it.
            let journal = Arc::clone(&self.journal);
            t.on_follow(
                self.id,
                Arc::new(move |pid, start_time| {
                    let _ = journal.pid(process_seq, pid, start_time);
                }),
            );
            t.adopt(self.id, pid, start_time);
        }
        self.stopped.store(false, Ordering::SeqCst);
    }

    /// Opens each cgroup's `cgroup.procs` for writing (close-on-exec), for a spawn's
    /// `pre_exec` to write `0` into before `exec`.
    pub(crate) fn procs_fds(&self) -> Result<Vec<OwnedFd>, Error> {
        self.cgroups
            .iter()
            .map(|cg| {
                let path = cg.dir().join("cgroup.procs");
                std::fs::OpenOptions::new().write(true).open(&path).map(OwnedFd::from).map_err(|source| Error::Io {
                    what: format!("opening the cgroup of fixture {}", self.name),
                    path,
                    source,
                    fix: "the sandbox may have been torn down already (test timed out?); otherwise check cgroup permissions".into(),
                })
            })
            .collect()
    }

    fn own(&self, pid: i32) -> Option<OwnedPid> {
        let s = procfs::stat(pid)?;
        (!s.is_dead()).then(|| OwnedPid { pid, start_time: s.start_time, fixture: self.name.clone() })
    }

    /// The live (non-zombie) processes the fixture owns right now, oldest first.
    pub fn members(&self) -> Vec<OwnedPid> {
        let mut v: Vec<OwnedPid> = match self.primary() {
            Some(cg) => {
                let mut v: Vec<OwnedPid> = cg.procs().into_iter().filter_map(|p| self.own(p)).collect();
                v.extend(self.escaped(&v));
                v
            }
            None => self.fallback_refresh(),
        };
        v.sort_by_key(|o| (o.start_time, o.pid));
        v
    }

    /// The fixture's processes that the kernel saw forked from its own but that are no longer
    /// in its cgroups (moved out by a privileged program). Each cgroup member is followed from
    /// now on; each escape is journaled once, so the reaper kills it too.
    fn escaped(&self, in_cgroups: &[OwnedPid]) -> Vec<OwnedPid> {
        let Some(t) = self.events else { return Vec::new() };
        for m in in_cgroups {
            t.adopt(self.id, m.pid, m.start_time);
        }
        let out: Vec<OwnedPid> = t
            .followed(self.id)
            .into_iter()
            .filter(|(pid, st)| !in_cgroups.iter().any(|m| m.pid == *pid && m.start_time == *st))
            .filter(|(pid, _)| owner::forbidden(*pid).is_none() && !self.primary().is_some_and(|c| c.contains(*pid)))
            .map(|(pid, start_time)| OwnedPid { pid, start_time, fixture: self.name.clone() })
            .collect();
        let mut journaled = self.escapes.lock().unwrap_or_else(|e| e.into_inner());
        let seq = *self.process_seq.lock().unwrap_or_else(|e| e.into_inner());
        for o in &out {
            if journaled.insert((o.pid, o.start_time))
                && let Some(seq) = seq
            {
                let _ = self.journal.pid(seq, o.pid, o.start_time);
            }
        }
        out
    }

    /// Kills the processes followed out of the cgroups, waiting until `deadline`; returns the
    /// survivors.
    fn kill_escaped(&self, deadline: Instant) -> Vec<i32> {
        let escaped = self.escaped(&[]);
        for o in &escaped {
            let _ = owner::signal_checked(o, Signal::SIGKILL, |_| true);
        }
        while escaped.iter().any(|o| !o.is_gone()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        escaped.iter().filter(|o| !o.is_gone()).map(|o| o.pid).collect()
    }

    fn follows(&self, pid: i32, start_time: u64) -> bool {
        self.events.is_some_and(|t| t.follows(self.id, pid, start_time))
    }

    /// Fallback membership: tracked tree (children of tracked processes, found by ppid) plus
    /// marker-carrying processes. Newly found pids are journaled for the reaper.
    fn fallback_refresh(&self) -> Vec<OwnedPid> {
        let mut tracked = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        let mut foreign = self.foreign.lock().unwrap_or_else(|e| e.into_inner());
        if foreign.0.elapsed() > FOREIGN_TTL {
            *foreign = (Instant::now(), HashSet::new());
        }
        // Processes already found foreign (neither in the tree nor marked) are not read again
        // until the cache expires: a new process has a new pid, and a foreign process never
        // becomes our child (orphans go to init). Pid reuse is caught at the next expiry.
        let all: Vec<procfs::Stat> =
            procfs::all_pids().into_iter().filter(|p| !foreign.1.contains(p)).filter_map(procfs::stat).collect();
        let mut live: BTreeMap<i32, u64> = BTreeMap::new();
        for s in &all {
            if !s.is_dead() && tracked.contains(&(s.pid, s.start_time)) {
                live.insert(s.pid, s.start_time);
            }
        }
        let mut candidates: Vec<&procfs::Stat> = all
            .iter()
            .filter(|s| !s.is_dead() && !live.contains_key(&s.pid) && owner::forbidden(s.pid).is_none())
            .collect();
        let mut new = Vec::new();
        let grow = |live: &mut BTreeMap<i32, u64>, candidates: &mut Vec<&procfs::Stat>, new: &mut Vec<(i32, u64)>| loop {
            let before = new.len();
            candidates.retain(|s| {
                let child_of_ours = live.get(&s.ppid).is_some_and(|pst| s.start_time >= *pst);
                if child_of_ours {
                    live.insert(s.pid, s.start_time);
                    new.push((s.pid, s.start_time));
                }
                !child_of_ours
            });
            if new.len() == before {
                break;
            }
        };
        grow(&mut live, &mut candidates, &mut new);
        // The marker, read once per remaining candidate, catches fast double forks.
        candidates.retain(|s| {
            let marked = procfs::has_env(s.pid, super::RUN_MARKER_ENV, &self.run_id);
            if marked {
                live.insert(s.pid, s.start_time);
                new.push((s.pid, s.start_time));
            }
            !marked
        });
        grow(&mut live, &mut candidates, &mut new);
        for s in candidates {
            foreign.1.insert(s.pid);
        }
        drop(foreign);
        for n in &new {
            tracked.insert(*n);
        }
        drop(tracked);
        if let Some(seq) = *self.process_seq.lock().unwrap_or_else(|e| e.into_inner()) {
            for (pid, st) in new {
                let _ = self.journal.pid(seq, pid, st);
            }
        }
        live.into_iter().map(|(pid, start_time)| OwnedPid { pid, start_time, fixture: self.name.clone() }).collect()
    }

    /// Proves that `pid` belongs to this fixture: in its cgroup (or, in the fallback, its
    /// tracked tree or carrying the run marker), not pid 1, not the harness. Returns the pid
    /// pinned with its start time.
    pub fn owns(&self, pid: i32) -> Result<OwnedPid, Error> {
        let refuse = |reason: String| {
            Error::NotOwned {
            pid,
            reason,
            fix: "select targets through the fixture (e.g. handle.main(), handle.children()); the harness only signals its own processes".into(),
        }
        };
        if let Some(why) = owner::forbidden(pid) {
            return Err(refuse(why.to_string()));
        }
        let s = procfs::stat(pid).ok_or_else(|| refuse("no such process".into()))?;
        if s.is_dead() {
            return Err(refuse("it is already dead (zombie)".into()));
        }
        let ok = match self.primary() {
            Some(cg) => cg.contains(pid) || self.follows(pid, s.start_time),
            None => {
                self.fallback_refresh();
                self.tracked.lock().unwrap_or_else(|e| e.into_inner()).contains(&(pid, s.start_time))
            }
        };
        if ok {
            Ok(OwnedPid { pid, start_time: s.start_time, fixture: self.name.clone() })
        } else {
            Err(refuse(format!("it is not in fixture {}'s {}", self.name, self.where_())))
        }
    }

    fn where_(&self) -> String {
        match self.primary() {
            Some(cg) => format!("cgroup {}", cg.dir().display()),
            None => "tracked process tree".into(),
        }
    }

    fn still_owned(&self, pid: i32) -> bool {
        match self.primary() {
            Some(cg) => cg.contains(pid) || procfs::start_time(pid).is_some_and(|st| self.follows(pid, st)),
            None => procfs::stat(pid)
                .is_some_and(|s| self.tracked.lock().unwrap_or_else(|e| e.into_inner()).contains(&(pid, s.start_time))),
        }
    }

    /// Sends `sig` to an owned process after re-proving ownership through a pidfd. `Ok(false)`
    /// when it is already gone; an error when it is not (or no longer) this fixture's.
    pub fn signal(&self, target: &OwnedPid, sig: Signal) -> Result<bool, Error> {
        if target.fixture != self.name {
            return Err(Error::NotOwned {
                pid: target.pid,
                reason: format!("it was selected from fixture {}, not {}", target.fixture, self.name),
                fix: "signal it through its own fixture".into(),
            });
        }
        owner::signal_checked(target, sig, |p| self.still_owned(p)).map_err(|reason| Error::NotOwned {
            pid: target.pid,
            reason,
            fix: "re-select the target; the process changed owner or the pid was reused".into(),
        })
    }

    /// Kills every process of the fixture and waits until none is left (zombies count as
    /// dead). Returns the survivors' pids on timeout.
    pub fn kill_all(&self, timeout: Duration) -> Result<(), Vec<i32>> {
        let deadline = Instant::now() + timeout;
        if !self.cgroups.is_empty() {
            let mut left = self.kill_escaped(deadline);
            left.extend(cgroup::kill_all(&self.cgroups, deadline).err().unwrap_or_default());
            return if left.is_empty() { Ok(()) } else { Err(left) };
        }
        loop {
            let m = self.fallback_refresh();
            if m.is_empty() {
                return Ok(());
            }
            for o in &m {
                let _ = owner::signal_checked(o, Signal::SIGKILL, |_| true);
            }
            if Instant::now() > deadline {
                let left: Vec<i32> = m.iter().filter(|o| !o.is_gone()).map(|o| o.pid).collect();
                return if left.is_empty() { Ok(()) } else { Err(left) };
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Kills what is left and removes the fixture's cgroups (journaling each removal as
    /// undone). Returns what could not be removed.
    pub(crate) fn release(&self) -> Result<(), Vec<String>> {
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut problems = Vec::new();
        // With cgroups, processes followed out of them are killed here; what is in the
        // cgroups goes with the cgroups below.
        let survivors = if self.cgroups.is_empty() {
            self.kill_all(Duration::from_secs(3)).err().unwrap_or_default()
        } else {
            self.kill_escaped(deadline)
        };
        if !survivors.is_empty() {
            problems.push(format!("pids {survivors:?} survived SIGKILL"));
        }
        for (cg, seq) in self.cgroups.iter().zip(&self.cgroup_seqs) {
            match cgroup::remove(cg, deadline) {
                Ok(()) => {
                    let _ = self.journal.undone(*seq);
                }
                Err(e) => problems.push(e),
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    /// Snapshots of the live processes now, and records them in the history.
    pub fn sample(&self) -> Vec<ProcSnapshot> {
        let members = self.members();
        let now = Instant::now();
        let snaps: Vec<ProcSnapshot> = members.iter().filter_map(ProcSnapshot::take).collect();
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        for s in &snaps {
            h.entry((s.pid, s.start_time))
                .and_modify(|r| {
                    r.last = s.clone();
                    r.last_seen = now;
                })
                .or_insert_with(|| ProcRecord {
                    first: s.clone(),
                    last: s.clone(),
                    first_seen: now,
                    last_seen: now,
                    gone_at: None,
                });
        }
        for ((pid, st), r) in h.iter_mut() {
            if r.gone_at.is_none() && r.last_seen != now && procfs::is_gone(*pid, *st) {
                // The kernel's exit time when it reported one; else when the sample saw it gone.
                r.gone_at = Some(self.events.and_then(|t| t.exited_at(self.id, *pid, *st)).unwrap_or(now));
            }
        }
        snaps
    }

    /// Every process the fixture was ever seen to own (sampled; see [`CGROUP_SAMPLE`]), oldest
    /// first, with when it was first and last seen and when it was found gone.
    pub fn history(&self) -> Vec<ProcRecord> {
        let mut v: Vec<ProcRecord> = self.history.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        v.sort_by_key(|r| (r.first.start_time, r.first.pid));
        v
    }

    /// When the scope was created.
    pub fn created(&self) -> Instant {
        self.created
    }

    /// Starts the background sampler (idempotent); it ends when the scope is stopped or dropped.
    pub(crate) fn start_sampler(self: &Arc<Self>) {
        if self.sampler_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak: Weak<Scope> = Arc::downgrade(self);
        let period = if self.cgroups.is_empty() { FALLBACK_SAMPLE } else { CGROUP_SAMPLE };
        let _ = std::thread::Builder::new().name(format!("chaos-observe-{}", self.name)).spawn(move || {
            loop {
                let Some(scope) = weak.upgrade() else { return };
                if scope.stopped.load(Ordering::SeqCst) || scope.journal.is_closed() {
                    scope.sampler_started.store(false, Ordering::SeqCst);
                    return;
                }
                scope.sample();
                drop(scope);
                std::thread::sleep(period);
            }
        });
    }

    /// Stops the background sampler.
    pub(crate) fn stop_sampler(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if let Some(t) = self.events {
            t.forget(self.id);
        }
    }
}
