//! Process snapshots: what a fixture's processes were, read from `/proc`.
//!
//! Process observation: every fixture's [`Scope`](crate::sandbox::Scope) samples its processes
//! in the background (every 20 ms with cgroups, 50 ms in the fallback) into a history of every
//! process it ever owned ([`ProcRecord`]); [`ProcSnapshot::take`] reads one process now.
//! Zombies count as dead everywhere.

use std::time::{Duration, Instant};

use crate::sandbox::{OwnedPid, procfs};

/// One process at one moment: identity, tree position, state, command line, memory.
///
/// ```
/// use chaos_harness::sandbox::snapshot::ProcSnapshot;
/// let me = std::process::id() as i32;
/// let s = ProcSnapshot::of_pid(me).unwrap();
/// assert_eq!(s.pid, me);
/// assert!(s.rss_bytes > 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcSnapshot {
    /// Process id.
    pub pid: i32,
    /// Parent pid.
    pub ppid: i32,
    /// Process group.
    pub pgid: i32,
    /// Session.
    pub sid: i32,
    /// State letter (`R`, `S`, `T`, `Z`, ...).
    pub state: char,
    /// Start time in clock ticks since boot.
    pub start_time: u64,
    /// `comm` (as possibly rewritten through `/proc/self/comm`).
    pub comm: String,
    /// Command line, arguments joined by spaces (as possibly rewritten by the program).
    pub cmdline: String,
    /// Resident memory in bytes.
    pub rss_bytes: u64,
}

impl ProcSnapshot {
    /// Reads `pid` now (any process; no ownership implied).
    pub fn of_pid(pid: i32) -> Option<Self> {
        let s = procfs::stat(pid)?;
        let cmdline = procfs::cmdline(pid).unwrap_or_default();
        Some(Self {
            pid,
            ppid: s.ppid,
            pgid: s.pgid,
            sid: s.sid,
            state: s.state,
            start_time: s.start_time,
            comm: s.comm,
            cmdline,
            rss_bytes: s.rss_bytes,
        })
    }

    /// Reads an owned process now; `None` if that exact process (pid + start time) is gone.
    ///
    /// ```
    /// use chaos_harness::sandbox::{OwnedPid, snapshot::ProcSnapshot};
    /// assert!(ProcSnapshot::take(&OwnedPid { pid: i32::MAX, start_time: 0, fixture: "x".into() }).is_none());
    /// ```
    pub fn take(p: &OwnedPid) -> Option<Self> {
        Self::of_pid(p.pid).filter(|s| s.start_time == p.start_time)
    }

    /// Zombie or dead.
    ///
    /// ```
    /// let s = chaos_harness::sandbox::snapshot::ProcSnapshot::of_pid(std::process::id() as i32).unwrap();
    /// assert!(!s.is_dead());
    /// ```
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }

    /// How long the process has been running.
    ///
    /// ```
    /// let s = chaos_harness::sandbox::snapshot::ProcSnapshot::of_pid(std::process::id() as i32).unwrap();
    /// assert!(s.age() < std::time::Duration::from_secs(86400 * 365));
    /// ```
    pub fn age(&self) -> Duration {
        procfs::age(self.start_time)
    }

    /// The text selectors match on: the command line, or `comm` when the command line is
    /// empty.
    ///
    /// ```
    /// let s = chaos_harness::sandbox::snapshot::ProcSnapshot::of_pid(std::process::id() as i32).unwrap();
    /// assert!(!s.label().is_empty());
    /// ```
    pub fn label(&self) -> &str {
        if self.cmdline.is_empty() { &self.comm } else { &self.cmdline }
    }
}

impl std::fmt::Display for ProcSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} [{}] ppid {} sid {} state {} age {:.1}s rss {} KiB",
            self.pid,
            self.label(),
            self.ppid,
            self.sid,
            self.state,
            self.age().as_secs_f64(),
            self.rss_bytes / 1024
        )
    }
}

/// The observed life of one process a fixture owned.
///
/// ```
/// use chaos_harness::sandbox::snapshot::{ProcRecord, ProcSnapshot};
/// let s = ProcSnapshot::of_pid(std::process::id() as i32).unwrap();
/// let now = std::time::Instant::now();
/// let r = ProcRecord { first: s.clone(), last: s, first_seen: now, last_seen: now, gone_at: None };
/// assert!(r.gone_at.is_none());
/// ```
#[derive(Debug, Clone)]
pub struct ProcRecord {
    /// The first snapshot.
    pub first: ProcSnapshot,
    /// The latest snapshot while alive.
    pub last: ProcSnapshot,
    /// When it was first seen.
    pub first_seen: Instant,
    /// When it was last seen alive.
    pub last_seen: Instant,
    /// When it was first found gone (or a zombie).
    pub gone_at: Option<Instant>,
}
