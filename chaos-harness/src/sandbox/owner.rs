//! Ownership: the proof that a pid belongs to the sandbox before the harness signals it.
//!
//! A pid is owned when it is in one of the sandbox's fixture cgroups (or, in the no-cgroup
//! fallback, in a fixture's tracked process tree or carrying the run marker) *and* its start
//! time matches the one recorded when ownership was established. Signals go through a pidfd
//! opened before the final check, so a pid reused between the check and the signal is never
//! hit. Pid 1 and the harness's own pid are refused outright.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::sys::signal::Signal;

use super::procfs;

/// A pid proven to belong to a fixture of the sandbox, pinned by its start time.
///
/// Obtain one from [`Sandbox::owns`](crate::sandbox::Sandbox::owns) or a selector; signal it
/// with [`Sandbox::signal`](crate::sandbox::Sandbox::signal).
///
/// ```
/// use chaos_harness::sandbox::OwnedPid;
/// let p = OwnedPid { pid: 1234, start_time: 99, fixture: "web".into() };
/// assert_eq!(p.to_string(), "pid 1234 of fixture web");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct OwnedPid {
    /// The pid.
    pub pid: i32,
    /// Its start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start_time: u64,
    /// The fixture that owns it.
    pub fixture: String,
}

impl std::fmt::Display for OwnedPid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} of fixture {}", self.pid, self.fixture)
    }
}

impl OwnedPid {
    /// Whether this exact process (pid and start time) is gone or a zombie.
    ///
    /// ```
    /// use chaos_harness::sandbox::OwnedPid;
    /// assert!(OwnedPid { pid: i32::MAX, start_time: 1, fixture: "x".into() }.is_gone());
    /// ```
    pub fn is_gone(&self) -> bool {
        procfs::is_gone(self.pid, self.start_time)
    }

    /// The process's current `/proc` status, if this exact process still exists.
    ///
    /// ```
    /// use chaos_harness::sandbox::OwnedPid;
    /// assert!(OwnedPid { pid: i32::MAX, start_time: 1, fixture: "x".into() }.stat().is_none());
    /// ```
    pub fn stat(&self) -> Option<procfs::Stat> {
        procfs::stat(self.pid).filter(|s| s.start_time == self.start_time)
    }
}

/// Refuses pids the harness must never signal, whatever else is true: pid <= 1 and the
/// harness's own pid. Returns the reason when refused.
///
/// ```
/// use chaos_harness::sandbox::owner::forbidden;
/// assert!(forbidden(1).is_some());
/// assert!(forbidden(0).is_some());
/// assert!(forbidden(std::process::id() as i32).is_some());
/// assert!(forbidden(123456789).is_none());
/// ```
pub fn forbidden(pid: i32) -> Option<&'static str> {
    if pid <= 0 {
        Some("pid <= 0 addresses process groups; the harness signals single processes only")
    } else if pid == 1 {
        Some("pid 1 (init) is never signalled")
    } else if pid == std::process::id() as i32 {
        Some("that is the harness's own process")
    } else {
        None
    }
}

/// A pidfd: a handle on one process that stays valid (and never refers to another process)
/// after the pid is reused.
#[derive(Debug)]
pub(crate) struct PidFd(OwnedFd);

impl PidFd {
    /// `pidfd_open(pid, 0)`.
    pub(crate) fn open(pid: i32) -> std::io::Result<Self> {
        // SAFETY: plain syscall with integer arguments; the returned fd is owned by us.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
    }

    /// The raw descriptor (for `poll(2)`: readable once the process has exited).
    pub(crate) fn as_raw(&self) -> i32 {
        self.0.as_raw_fd()
    }

    /// `pidfd_send_signal(fd, sig, NULL, 0)`.
    pub(crate) fn send(&self, sig: i32) -> std::io::Result<()> {
        // SAFETY: valid pidfd, null siginfo is allowed.
        let r = unsafe {
            libc::syscall(libc::SYS_pidfd_send_signal, self.0.as_raw_fd(), sig, std::ptr::null::<libc::siginfo_t>(), 0)
        };
        if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
    }
}

/// Sends `sig` to `owned` if, after opening a pidfd on it, it still has the recorded start time
/// and `still_owned(pid)` holds. Returns `Ok(false)` when the process is already gone (or its
/// pid was reused by someone else, which is also "gone" for us).
pub(crate) fn signal_checked(owned: &OwnedPid, sig: Signal, still_owned: impl Fn(i32) -> bool) -> Result<bool, String> {
    if let Some(why) = forbidden(owned.pid) {
        return Err(why.to_string());
    }
    let fd = match PidFd::open(owned.pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(false),
        Err(e) => return Err(format!("pidfd_open: {e}")),
    };
    match procfs::stat(owned.pid) {
        None => return Ok(false),
        Some(s) if s.start_time != owned.start_time => return Ok(false),
        Some(s) if s.is_dead() => return Ok(false),
        Some(_) => {}
    }
    if !still_owned(owned.pid) {
        return Err("it is no longer in its fixture's cgroup or process tree".to_string());
    }
    match fd.send(sig as i32) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
        Err(e) => Err(format!("pidfd_send_signal: {e}")),
    }
}

impl PidFd {
    /// Whether the process behind this pidfd has exited (the pidfd polls readable then). A
    /// process that has not exited still holds its pid, so nothing else can have reused it.
    pub(crate) fn exited(&self) -> bool {
        let mut p = libc::pollfd { fd: self.as_raw(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, zero timeout.
        let r = unsafe { libc::poll(&mut p, 1, 0) };
        r > 0 && p.revents != 0
    }
}

/// Limits of one resource (`u64::MAX` = unlimited).
///
/// ```
/// let l = chaos_harness::sandbox::owner::Limit { soft: 1024, hard: 4096 };
/// assert!(l.soft <= l.hard);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// `prlimit` on exactly the process `(pid, start_time)`, through a pidfd-checked sequence:
/// open a pidfd, check the start time, call `prlimit`, then check through the pidfd that the
/// process did not exit meanwhile (while it has not exited its pid cannot be reused, so the
/// call reached it). Returns the limits before the call, or `Ok(None)` when that process is
/// gone (nothing was changed on anyone else); an error if it exited during the call.
///
/// ```
/// use chaos_harness::sandbox::owner::prlimit_checked;
/// let me = std::process::id() as i32;
/// let st = chaos_harness::sandbox::procfs::start_time(me).unwrap();
/// let now = prlimit_checked(me, st, libc::RLIMIT_NOFILE as i32, None).unwrap().unwrap();
/// assert!(now.soft <= now.hard);
/// assert_eq!(prlimit_checked(me, st + 1, libc::RLIMIT_NOFILE as i32, None).unwrap(), None);
/// ```
pub fn prlimit_checked(pid: i32, start_time: u64, resource: i32, new: Option<Limit>) -> std::io::Result<Option<Limit>> {
    if pid <= 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "pid <= 0 is never a target"));
    }
    let fd = match PidFd::open(pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
        Err(e) => return Err(e),
    };
    match procfs::stat(pid) {
        Some(s) if s.start_time == start_time && !s.is_dead() => {}
        _ => return Ok(None),
    }
    let lim = new.map(|l| libc::rlimit { rlim_cur: l.soft, rlim_max: l.hard });
    let new_ptr = lim.as_ref().map_or(std::ptr::null(), |l| l as *const libc::rlimit);
    let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: new_ptr is null or points to a live stack rlimit; old is a valid out pointer.
    let r = unsafe { libc::prlimit(pid, resource as _, new_ptr, &mut old) };
    let err = (r != 0).then(std::io::Error::last_os_error);
    if fd.exited() {
        if err.is_none() && new.is_some() {
            return Err(std::io::Error::other(format!(
                "pid {pid} exited during prlimit; the call may have reached a process that reused the pid"
            )));
        }
        return Ok(None);
    }
    match err {
        Some(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(None),
        Some(e) => Err(e),
        None => Ok(Some(Limit { soft: old.rlim_cur, hard: old.rlim_max })),
    }
}
