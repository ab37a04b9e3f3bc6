//! Resource exhaustion faults: memory, CPU, disk, file descriptors, pids (issue 7, `resources`).
//!
//! | constructor | what it does | confirmed by | cleared by |
//! |---|---|---|---|
//! | [`Fault::memory_limit`] | v1 `memory.limit_in_bytes` (+ `memory.memsw.limit_in_bytes`), v2 `memory.max` (+ `memory.swap.max`) on the fixture's cgroup | reading the limit back | writing the previous values back, read back |
//! | [`Fault::memory_pressure`] | a balloon process, moved into the fixture's memory cgroup before it allocates, holding N bytes | the balloon's cgroup and RSS read back | killing the balloon, confirmed gone |
//! | [`Fault::cpu_quota`] | v1 `cpu.cfs_quota_us` (+ `cpu.cfs_period_us`), v2 `cpu.max` | reading the quota back | previous values written back, read back |
//! | [`Fault::cpu_burn`] | N busy-looping processes (or one per CPU) in their own sandbox fixture | their CPU time advancing | SIGKILL at once, confirmed gone |
//! | [`Fault::disk_tmpfs`] | a size-limited tmpfs mounted over a directory | `/proc/self/mounts` and `statvfs` | lazy unmount, `/proc/self/mounts` read back |
//! | [`Fault::disk_fill`] | a fill file leaving N bytes free on a filesystem | `statvfs` | removing the file, confirmed gone |
//! | [`Fault::fd_limit`] | `prlimit(RLIMIT_NOFILE)` on the selected processes | `/proc/PID/limits` | previous soft+hard restored per pid, `/proc/PID/limits` read back |
//! | [`Fault::pids_limit`] | `pids.max` on the fixture's cgroup | reading the limit back | previous value written back, read back |
//!
//! Every change is journaled *before* it happens with the data to undo it (the journal's
//! `cgroup_limit`, `rlimit`, `mount`, `file`, `cgroup` and `process` effects), so teardown and
//! the crash reaper heal it even if `clear` never runs; `clear` runs the same undo code
//! ([`crate::sandbox::journal`]) and then reads the state back once more for its
//! confirmation. A fault the machine cannot support (no such cgroup controller, not root) fails
//! with [`Error::NotInjected`] naming the reason and the fix; tests guard against that with
//! `requires = ["cgroups"]`, `["root"]` or `["tmpfs"]`.
//!
//! OOM kills are observed from v1 `memory.oom_control` (`oom_kill N`) or v2 `memory.events`:
//! while a memory fault is active every new kill is logged as a tracing event (target
//! [`OOM_TRACING_TARGET`]) and counted in the clear confirmation; tests read the counter with
//! [`MemoryCgroup::oom_kills`] or judge it with [`Criterion::oom_kills`](crate::criteria::Criterion::oom_kills).
//!
//! ```no_run
//! # use chaos_harness::prelude::*;
//! # use chaos_harness::fault::resource::MIB;
//! # async fn f(cx: &mut Chaos) -> ChaosResult {
//! let p = cx.start(Command::new(chaos_harness::fixture::python3()).args(["-c", "import time; time.sleep(60)"])).await?;
//! cx.scenario("squeeze")
//!     .inject(Fault::memory_limit(&p, 64 * MIB))
//!     .inject(Fault::cpu_quota(&p, 0.1))
//!     .inject(Fault::pids_limit(&p, 8))
//!     .inject(Fault::fd_limit(&p, 64, 0).keep_hard())
//!     .wait(Duration::from_millis(100))
//!     .clear_faults()
//!     .run()
//!     .await?;
//! # Ok(()) }
//! ```

mod cgroups;
mod cpu;
mod disk;
mod fds;
mod memory;
mod pids;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use cgroups::{CpuCgroup, MemoryCgroup, PidsCgroup};
pub use cpu::{CpuBurn, CpuQuota, Cpus};
pub use disk::{DiskFill, DiskTmpfs, MountEntry, mounts_at};
pub use fds::{FdLimit, NoFileLimit, has_cap_sys_resource, read_nofile};
pub use memory::{MemoryLimit, MemoryPressure};
pub use pids::PidsLimit;

use super::Fault;
use crate::Error;
use crate::fixture::{FixtureHandle, Selection};
use crate::sandbox::journal::{self, Effect};
use crate::sandbox::{Sandbox, cgroup};

/// One kibibyte.
///
/// ```
/// assert_eq!(chaos_harness::fault::resource::KIB, 1024);
/// ```
pub const KIB: u64 = 1024;
/// One mebibyte.
///
/// ```
/// assert_eq!(chaos_harness::fault::resource::MIB, 1024 * 1024);
/// ```
pub const MIB: u64 = 1024 * KIB;
/// One gibibyte.
///
/// ```
/// assert_eq!(chaos_harness::fault::resource::GIB, 1024 * 1024 * 1024);
/// ```
pub const GIB: u64 = 1024 * MIB;

/// The tracing target of the OOM-kill events emitted while a memory fault is active (filter
/// with `RUST_LOG=chaos_harness::oom=warn`).
///
/// ```
/// assert_eq!(chaos_harness::fault::resource::OOM_TRACING_TARGET, "chaos_harness::oom");
/// ```
pub const OOM_TRACING_TARGET: &str = "chaos_harness::oom";

/// Which processes a per-process fault ([`Fault::fd_limit`]) acts on: a [`Selection`]
/// (`p.main()`, `p.children()`, ...) or a whole fixture (`&p`, meaning every process of it).
///
/// ```no_run
/// # use chaos_harness::fault::Fault;
/// # use chaos_harness::fixture::{FixtureHandle, Process};
/// # fn f(p: &Process) {
/// let only_main = Fault::fd_limit(p.main(), 64, 64);
/// let whole_fixture = Fault::fd_limit(p, 64, 64);
/// # }
/// ```
pub trait IntoSelection {
    /// The selection.
    fn into_selection(self) -> Selection;
}

impl IntoSelection for Selection {
    fn into_selection(self) -> Selection {
        self
    }
}

impl<T: FixtureHandle + ?Sized> IntoSelection for &T {
    fn into_selection(self) -> Selection {
        self.all()
    }
}

impl Fault {
    /// Limits the memory of the fixture's cgroup to `bytes` (rounded down to the page size):
    /// v1 `memory.limit_in_bytes` and, when present, `memory.memsw.limit_in_bytes` (so swap is
    /// no way out); v2 `memory.max` and `memory.swap.max = 0`. Allocations beyond it are
    /// OOM-killed by the kernel inside the cgroup. Confirmed by reading the limit back;
    /// cleared by writing the previous values back and reading them back. Needs the memory
    /// controller (v1, or enabled on cgroup2).
    ///
    /// ```no_run
    /// # use chaos_harness::fault::{Fault, resource::MIB};
    /// # fn f(p: &chaos_harness::fixture::Process) {
    /// let f = Fault::memory_limit(p, 64 * MIB).swap(false);
    /// # }
    /// ```
    pub fn memory_limit(fixture: &(impl FixtureHandle + ?Sized), bytes: u64) -> MemoryLimit {
        MemoryLimit::new(fixture.target(), bytes)
    }

    /// Puts the fixture's memory cgroup under pressure: a balloon process (its own sandbox
    /// fixture, so it can never leak) is moved into the fixture's memory cgroup (v1) or a
    /// child cgroup of it (v2) *before* it allocates, then allocates and touches `bytes` and
    /// holds them until cleared. It tries `oom_score_adj` -999, so that under a limit the
    /// kernel kills the fixture's allocations first (that needs `CAP_SYS_RESOURCE`; the
    /// confirmation says when it could not). Confirmed by the balloon's cgroup, RSS and
    /// `oom_score_adj` read back; cleared by killing it (confirmed gone).
    ///
    /// ```no_run
    /// # use chaos_harness::fault::{Fault, resource::MIB};
    /// # fn f(p: &chaos_harness::fixture::Process) {
    /// let f = Fault::memory_pressure(p, 200 * MIB).oom_score_adj(0);
    /// # }
    /// ```
    pub fn memory_pressure(fixture: &(impl FixtureHandle + ?Sized), bytes: u64) -> MemoryPressure {
        MemoryPressure::new(fixture.target(), bytes)
    }

    /// Limits the fixture's cgroup to `fraction` of one CPU (`0.1` = 10 % of one core, `1.5`
    /// = one and a half cores): v1 `cpu.cfs_quota_us` = fraction x `cpu.cfs_period_us`, v2
    /// `cpu.max`. Confirmed by reading the quota back; cleared by writing the previous values
    /// back (read back); the clear confirmation says how often the cgroup was throttled.
    ///
    /// ```no_run
    /// # use chaos_harness::fault::Fault;
    /// # fn f(p: &chaos_harness::fixture::Process) {
    /// let f = Fault::cpu_quota(p, 0.1).period(std::time::Duration::from_millis(50));
    /// # }
    /// ```
    pub fn cpu_quota(fixture: &(impl FixtureHandle + ?Sized), fraction: f64) -> CpuQuota {
        CpuQuota::new(fixture.target(), fraction)
    }

    /// Saturates CPUs with busy-looping processes: `n` of them, or one per CPU with
    /// [`Cpus::All`]. They run as their own sandbox fixture (`cpu-burn`), so teardown kills
    /// them whatever happens; clearing SIGKILLs them at once and confirms they are gone.
    /// Confirmed by their CPU time advancing.
    ///
    /// ```no_run
    /// # use chaos_harness::fault::{Fault, resource::Cpus};
    /// let two = Fault::cpu_burn(2);
    /// let all = Fault::cpu_burn(Cpus::All);
    /// ```
    pub fn cpu_burn(cpus: impl Into<Cpus>) -> CpuBurn {
        CpuBurn::new(cpus.into())
    }

    /// Mounts a tmpfs of `size` bytes over `dir` (which must exist and must not already be a
    /// mount point), so writes beyond `size` fail with `ENOSPC`. The directory's existing
    /// contents are hidden while it is mounted (copy them in with
    /// [`DiskTmpfs::copy_contents`]); whatever is written to the tmpfs is discarded by the
    /// undo. `dir` must be inside the sandbox temp dir unless [`DiskTmpfs::outside_sandbox`]
    /// is set. Confirmed by `/proc/self/mounts` and `statvfs`; cleared by a lazy unmount,
    /// verified by `/proc/self/mounts`. Needs root.
    ///
    /// ```no_run
    /// # use chaos_harness::fault::{Fault, resource::MIB};
    /// # fn f(data: &std::path::Path) {
    /// let f = Fault::disk_tmpfs(data, 16 * MIB).copy_contents(true);
    /// # }
    /// ```
    pub fn disk_tmpfs(dir: impl Into<PathBuf>, size: u64) -> DiskTmpfs {
        DiskTmpfs::new(dir.into(), size)
    }

    /// Fills the filesystem holding `dir` with a fill file (`<dir>/chaos-fill-<run id>-<n>`)
    /// until only `leave_free` bytes are free (as root sees it, `f_bfree`). At most 1 GiB is
    /// written unless [`DiskFill::max_fill`] allows more: put a [`Fault::disk_tmpfs`] under it
    /// first rather than filling a real disk. Confirmed by `statvfs`; cleared by removing the
    /// file (confirmed gone).
    ///
    /// ```no_run
    /// # use chaos_harness::fault::{Fault, resource::KIB};
    /// # fn f(data: &std::path::Path) {
    /// let f = Fault::disk_fill(data, 64 * KIB);
    /// # }
    /// ```
    pub fn disk_fill(dir: impl Into<PathBuf>, leave_free: u64) -> DiskFill {
        DiskFill::new(dir.into(), leave_free)
    }

    /// Lowers `RLIMIT_NOFILE` of the selected processes (a [`Selection`], or `&fixture` for all
    /// of its processes) to `soft`/`hard` with `prlimit`; processes they spawn meanwhile
    /// inherit it. The previous soft and hard values of every pid are journaled first;
    /// clearing restores them exactly (and lifts the limit from descendants that inherited it),
    /// verified through `/proc/PID/limits`. Changing a hard limit is refused unless the harness
    /// has `CAP_SYS_RESOURCE` (raising it back needs it): use [`FdLimit::keep_hard`] to lower
    /// only the soft limit.
    ///
    /// ```no_run
    /// # use chaos_harness::fault::Fault;
    /// # use chaos_harness::fixture::{FixtureHandle, Process};
    /// # fn f(p: &Process) {
    /// let f = Fault::fd_limit(p.main(), 32, 32);
    /// # }
    /// ```
    pub fn fd_limit(targets: impl IntoSelection, soft: u64, hard: u64) -> FdLimit {
        FdLimit::new(targets.into_selection(), soft, hard)
    }

    /// Limits the number of processes (and threads) of the fixture's cgroup to `n` through
    /// `pids.max`: further forks and thread creations fail with `EAGAIN`. Confirmed by reading
    /// the limit back; cleared by writing the previous value back (read back); the clear
    /// confirmation counts the refused forks (`pids.events`).
    ///
    /// ```no_run
    /// # use chaos_harness::fault::Fault;
    /// # fn f(p: &chaos_harness::fixture::Process) {
    /// let f = Fault::pids_limit(p, 16);
    /// # }
    /// ```
    pub fn pids_limit(fixture: &(impl FixtureHandle + ?Sized), n: u64) -> PidsLimit {
        PidsLimit::new(fixture.target(), n)
    }
}

pub(crate) fn not_injected(fault: &str, cause: impl Into<String>, fix: impl Into<String>) -> Error {
    Error::NotInjected { fault: fault.to_string(), cause: cause.into(), fix: fix.into() }
}

/// Turns a reader's configuration error (no such controller) into "not injected".
pub(crate) fn unsupported(fault: &str, e: Error) -> Error {
    match e {
        Error::Config { what, cause, fix } => not_injected(fault, format!("{what}: {cause}"), fix),
        other => not_injected(fault, other.to_string(), "see the cause"),
    }
}

pub(crate) fn bad_config(what: impl Into<String>, cause: impl Into<String>, fix: impl Into<String>) -> Error {
    Error::Config { what: what.into(), cause: cause.into(), fix: fix.into() }
}

/// How long an undo may take (killing a balloon, emptying a cgroup).
pub(crate) const UNDO_BUDGET: Duration = Duration::from_secs(5);

/// A journaled change that `clear` undoes with the journal's own undo code.
#[derive(Debug, Clone)]
pub(crate) struct Journaled {
    pub(crate) effect: Effect,
    pub(crate) seq: u64,
}

impl Journaled {
    /// Undoes the effect (the journal's undo, which verifies by reading back) and records it
    /// as undone. Idempotent: undoing an effect teardown already undid is a no-op.
    pub(crate) fn undo(&self, sandbox: &Sandbox) -> Result<(), String> {
        journal::undo(&self.effect, &[], Instant::now() + UNDO_BUDGET)?;
        // Refused once teardown has begun: teardown then owns (and repeats) the undo.
        let _ = sandbox.journal().undone(self.seq);
        Ok(())
    }
}

/// Undoes `changes` in reverse order; returns the failures.
pub(crate) fn undo_all(sandbox: &Sandbox, changes: &[Journaled]) -> Vec<String> {
    changes.iter().rev().filter_map(|c| c.undo(sandbox).err().map(|e| format!("{}: {e}", c.effect))).collect()
}

/// Reads a cgroup control file, trimmed.
pub(crate) fn read_ctl(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).map_err(|source| Error::Io {
        what: "reading a cgroup control file".into(),
        path: path.to_path_buf(),
        source,
        fix: "the fixture's cgroup may be gone (fixture stopped?); check the controller is mounted".into(),
    })
}

/// Journals a change of `dir/file` to `value` (with the value read before it), then writes it
/// and reads it back: the value read back must equal `expect` (what the kernel is known to
/// store for `value`). On any failure after journaling, the change is undone at once.
pub(crate) fn set_ctl(
    sandbox: &Sandbox,
    fault: &str,
    dir: &Path,
    file: &str,
    value: &str,
    expect: &str,
) -> Result<Journaled, Error> {
    let path = dir.join(file);
    let previous = read_ctl(&path)?;
    let effect = Effect::CgroupLimit { dir: dir.to_path_buf(), file: file.to_string(), previous: previous.clone() };
    // A failed write changes nothing (cgroup writes are atomic); the journal entry then stays
    // pending and teardown writes the previous value back, which is harmless.
    let ((), seq) = sandbox.record(effect.clone(), || {
        cgroup::write_ctl(&path, value).map_err(|e| {
            let hint = match e.raw_os_error() {
                Some(libc::EBUSY) => "the kernel could not shrink the cgroup's usage below the new limit: pick a larger value or free memory first",
                Some(libc::EINVAL) => "the kernel refused the value: check it against the parent's limits and the other limits of this controller",
                Some(libc::EACCES) | Some(libc::EPERM) => "run as root",
                _ => "check that the controller is mounted and the cgroup still exists",
            };
            not_injected(fault, format!("writing {value} to {}: {e}", path.display()), hint)
        })
    })?;
    let change = Journaled { effect, seq };
    let now = read_ctl(&path)?;
    if now != expect {
        let _ = change.undo(sandbox);
        return Err(not_injected(
            fault,
            format!("{} reads {now:?} after writing {value:?} (expected {expect:?})", path.display()),
            "the kernel adjusted the value; check the parent cgroup's limits",
        ));
    }
    Ok(change)
}

/// `statvfs` of a path: (total bytes, free bytes for root, available bytes for users).
pub(crate) fn statvfs(path: &Path) -> Result<(u64, u64, u64), Error> {
    let s = nix::sys::statvfs::statvfs(path).map_err(|e| Error::Io {
        what: "statvfs".into(),
        path: path.to_path_buf(),
        source: std::io::Error::from(e),
        fix: "check that the directory exists".into(),
    })?;
    let frsize = s.fragment_size() as u64;
    Ok((
        (s.blocks() as u64).saturating_mul(frsize),
        (s.blocks_free() as u64).saturating_mul(frsize),
        (s.blocks_available() as u64).saturating_mul(frsize),
    ))
}

/// Free bytes on the filesystem holding `path`, as root sees them (`statvfs` `f_bfree`; what
/// [`Fault::disk_fill`] leaves).
///
/// ```
/// assert!(chaos_harness::fault::resource::disk_free(&std::env::temp_dir()).is_ok());
/// ```
pub fn disk_free(path: &Path) -> Result<u64, Error> {
    statvfs(path).map(|(_, free, _)| free)
}

/// Human-readable bytes: `64 MiB`, `1.5 GiB`, `1000 B`.
///
/// ```
/// use chaos_harness::fault::resource::{bytes, MIB};
/// assert_eq!(bytes(64 * MIB), "64 MiB");
/// assert_eq!(bytes(1536 * MIB), "1.5 GiB");
/// assert_eq!(bytes(1000), "1000 B");
/// ```
pub fn bytes(n: u64) -> String {
    let units = [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")];
    for (u, name) in units {
        if n >= u {
            let v = n as f64 / u as f64;
            return if (v - v.round()).abs() < 0.005 {
                format!("{} {name}", v.round() as u64)
            } else {
                format!("{v:.1} {name}")
            };
        }
    }
    format!("{n} B")
}

/// Keeps an `Arc<Sandbox>` for `clear` (which is `'static`).
pub(crate) fn sandbox_of(cx: &super::FaultContext<'_>) -> Arc<Sandbox> {
    cx.sandbox.clone()
}
