//! The crash reaper: a tiny separate process that undoes a harness's journals when the harness
//! dies by any means (panic, `exit`, SIGKILL, the OOM killer).
//!
//! # Process model, and why
//!
//! The first [`Sandbox`](super::Sandbox) of a process starts the reaper ([`ensure_started`]):
//! the harness creates a pipe (both ends `O_CLOEXEC`, so fixtures never inherit them),
//! re-executes **its own binary** (`/proc/self/exe`) with `CHAOS_HARNESS_REAPER=v1:<fd>:<pid>:<start
//! time>` in the environment and the pipe's read end (only that fd) passed down, and keeps the
//! write end for the rest of its life. The reaper then:
//!
//! 1. detaches (`setsid`: no terminal signals, not in the harness's process group, so Ctrl-C,
//!    `kill -- -PGID` of the test run and nextest's group kill do not reach it), ignores
//!    SIGINT/SIGTERM/SIGHUP/SIGPIPE, sets its `oom_score_adj` to -1000 (best effort) and closes
//!    every inherited descriptor but the pipe;
//! 2. sweeps stale runs in a background thread: journals whose owner is dead, whose own reaper
//!    is dead and which were untouched for [`STALE_GRACE`] (see [`sweep_stale`]);
//! 3. waits in `poll(2)` on the pipe *and* on a pidfd of the harness. The kernel closes the
//!    write end when the harness exits, however it exits, so EOF arrives at once even after
//!    SIGKILL; the pidfd covers a write end leaked into a child that forked without exec;
//! 4. replays every journal owned by that harness (pid + start time) under an exclusive
//!    `flock`, then twice more after short settle delays (150 ms and 600 ms) re-runs the
//!    (idempotent, verified) undo of every effect it found pending: a helper the harness had
//!    started just before it died (an `ip netns add` still running, a fixture between `fork`
//!    and `exec`) can re-create something after the first pass;
//! 5. exits. After a clean run the journals are already gone, so the reaper finds nothing and
//!    exits at once: it never outlives its harness by more than the replay (a 30 s `alarm`
//!    bounds even a hung undo).
//!
//! Why re-exec the same binary rather than the alternatives:
//!
//! * a separate `[[bin]]` would have to be found at run time; cargo builds a dependency's
//!   binaries for nobody, so a test binary of another crate cannot rely on one existing;
//! * `fork` without `exec` in a multi-threaded harness inherits locks held by other threads at
//!   that instant (the environment lock that `Command::spawn` takes, tracing, stdio, our own
//!   mutexes) and can deadlock in the one moment it matters;
//! * a re-exec is a fresh image. Every binary linking this library recognises the reaper role
//!   *before `main`*, through an `.init_array` entry ([`REAPER_ENV`] checked first thing), so
//!   test binaries, examples, plain `#[test]` binaries and the `chaos` CLI all work the same,
//!   without cooperating. `/proc/self/exe` works even when cargo replaced the file meanwhile.
//!
//! `CHAOS_NO_REAPER=1` disables it (for tests of the journal replay itself).
//!
//! ```
//! use chaos_harness::sandbox::reaper::ReaperSpec;
//! let spec = ReaperSpec { fd: 5, owner_pid: 4242, owner_start_time: 99 };
//! assert_eq!(ReaperSpec::parse(&spec.to_env()).unwrap(), spec);
//! ```

use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::journal::{self, Effect, Parsed, TeardownReport};
use super::owner::PidFd;
use super::procfs;
use crate::sandbox::audit::{self, By};

/// Environment variable that makes a binary linking this library act as a reaper. Set only by
/// the harness, on the reaper process.
pub const REAPER_ENV: &str = "CHAOS_HARNESS_REAPER";

/// Environment switch: `1` disables the reaper (journals are then undone only by teardown,
/// by the next run's stale sweep, or by `chaos cleanup`).
pub const NO_REAPER_ENV: &str = "CHAOS_NO_REAPER";

/// A dead owner's journal is swept by *other* runs only after it was untouched this long, so a
/// run that just died is left to its own reaper (and to tests that replay journals by hand).
/// `CHAOS_REAPER_STALE_GRACE` (a duration such as `1s`) overrides it.
pub const STALE_GRACE: Duration = Duration::from_secs(10);

/// Environment override of [`STALE_GRACE`].
pub const STALE_GRACE_ENV: &str = "CHAOS_REAPER_STALE_GRACE";

/// The stale grace in force ([`STALE_GRACE`] unless `CHAOS_REAPER_STALE_GRACE` parses).
///
/// ```
/// assert!(chaos_harness::sandbox::reaper::stale_grace() <= std::time::Duration::from_secs(3600 * 24));
/// ```
pub fn stale_grace() -> Duration {
    std::env::var(STALE_GRACE_ENV).ok().and_then(|v| humantime::parse_duration(v.trim()).ok()).unwrap_or(STALE_GRACE)
}

/// The reaper's settle passes after the first replay (see the module docs).
const SETTLE: [Duration; 2] = [Duration::from_millis(150), Duration::from_millis(450)];

/// Budget of one journal replay.
const REPLAY_BUDGET: Duration = Duration::from_secs(5);

/// Hard limit on the reaper's life after its harness is gone.
const WATCHDOG_SECS: u32 = 30;

/// A reaper process: pid and start time (written into every journal header).
///
/// ```
/// let r = chaos_harness::sandbox::reaper::ReaperInfo { pid: 7, start_time: 1 };
/// assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"pid":7,"start_time":1}"#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReaperInfo {
    /// Its pid.
    pub pid: i32,
    /// Its start time (clock ticks since boot).
    pub start_time: u64,
}

/// The value of [`REAPER_ENV`]: `v1:<pipe fd>:<owner pid>:<owner start time>`.
///
/// ```
/// use chaos_harness::sandbox::reaper::ReaperSpec;
/// let s = ReaperSpec::parse("v1:3:100:200").unwrap();
/// assert_eq!((s.fd, s.owner_pid, s.owner_start_time), (3, 100, 200));
/// assert!(ReaperSpec::parse("v1:3:1:200").is_err()); // pid 1 is never an owner
/// assert!(ReaperSpec::parse("v2:3:100:200").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaperSpec {
    /// The read end of the harness's pipe, inherited by the reaper.
    pub fd: i32,
    /// The harness's pid.
    pub owner_pid: i32,
    /// The harness's start time.
    pub owner_start_time: u64,
}

/// An unusable [`REAPER_ENV`] value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid {REAPER_ENV} value `{value}`: {cause}; the harness sets this variable only on its reaper process - unset it to run this program normally"
)]
pub struct SpecError {
    /// The value (cut to 80 characters).
    pub value: String,
    /// What is wrong with it.
    pub cause: String,
}

impl ReaperSpec {
    /// Parses a [`REAPER_ENV`] value.
    pub fn parse(value: &str) -> Result<Self, SpecError> {
        let err = |cause: &str| SpecError { value: value.chars().take(80).collect(), cause: cause.into() };
        let mut parts = value.split(':');
        if parts.next() != Some("v1") {
            return Err(err("it must start with `v1:`"));
        }
        let fd: i32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(|| err("bad pipe fd"))?;
        let owner_pid: i32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(|| err("bad owner pid"))?;
        let owner_start_time: u64 =
            parts.next().and_then(|p| p.parse().ok()).ok_or_else(|| err("bad owner start time"))?;
        if parts.next().is_some() {
            return Err(err("too many fields"));
        }
        if fd < 3 {
            return Err(err("the pipe fd must be >= 3 (0-2 are stdio)"));
        }
        if owner_pid <= 1 {
            return Err(err("the owner pid must be > 1"));
        }
        Ok(Self { fd, owner_pid, owner_start_time })
    }

    /// The environment value for this spec.
    pub fn to_env(&self) -> String {
        format!("v1:{}:{}:{}", self.fd, self.owner_pid, self.owner_start_time)
    }
}

/// The reaper as seen from the harness.
///
/// ```
/// use chaos_harness::sandbox::reaper::{ReaperStatus, status};
/// match status() {
///     ReaperStatus::Running(info) => assert!(info.pid > 1),
///     ReaperStatus::NotStarted | ReaperStatus::Disabled => {}
///     ReaperStatus::Failed(why) => eprintln!("no reaper: {why}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaperStatus {
    /// No sandbox was created yet in this process.
    NotStarted,
    /// `CHAOS_NO_REAPER=1`.
    Disabled,
    /// Running.
    Running(ReaperInfo),
    /// It could not be started (the reason names the fix).
    Failed(String),
}

struct Running {
    info: ReaperInfo,
    /// The write end: the harness holds it until it exits.
    _write: OwnedFd,
}

#[derive(Default)]
struct State {
    running: Option<Running>,
    failures: u32,
    last_error: Option<String>,
}

static STATE: Mutex<State> = Mutex::new(State { running: None, failures: 0, last_error: None });

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `CHAOS_NO_REAPER=1` is set.
///
/// ```
/// let _ = chaos_harness::sandbox::reaper::disabled();
/// ```
pub fn disabled() -> bool {
    std::env::var(NO_REAPER_ENV).is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
}

/// The running reaper of this process, if any.
///
/// ```
/// let _ = chaos_harness::sandbox::reaper::current();
/// ```
pub fn current() -> Option<ReaperInfo> {
    state().running.as_ref().map(|r| r.info)
}

/// The reaper's status in this process.
pub fn status() -> ReaperStatus {
    if disabled() {
        return ReaperStatus::Disabled;
    }
    let st = state();
    match (&st.running, &st.last_error) {
        (Some(r), _) => ReaperStatus::Running(r.info),
        (None, Some(e)) => ReaperStatus::Failed(e.clone()),
        (None, None) => ReaperStatus::NotStarted,
    }
}

/// Starts this process's reaper unless one is running (idempotent, cheap when running).
/// Called by [`Sandbox::new`](super::Sandbox::new) before its first side effect. Returns the
/// reaper, or the reason there is none (disabled, or it could not be started: the harness then
/// runs without crash protection and says so in the sandbox notes).
///
/// ```
/// match chaos_harness::sandbox::reaper::ensure_started() {
///     Ok(r) => assert!(r.pid > 1),
///     Err(why) => eprintln!("{why}"),
/// }
/// ```
pub fn ensure_started() -> Result<ReaperInfo, String> {
    // Keep the pre-main entry point linked into every binary that can start a reaper.
    std::hint::black_box(&REAPER_ENTRY);
    if disabled() {
        return Err(format!("the crash reaper is disabled ({NO_REAPER_ENV}=1)"));
    }
    let mut st = state();
    if let Some(r) = &st.running {
        return Ok(r.info);
    }
    if st.failures >= 3 {
        return Err(st.last_error.clone().unwrap_or_else(|| "the crash reaper failed to start".into()));
    }
    match spawn() {
        Ok(r) => {
            let info = r.info;
            st.running = Some(r);
            st.last_error = None;
            Ok(info)
        }
        Err(e) => {
            st.failures += 1;
            st.last_error = Some(e.clone());
            tracing::warn!("{e}");
            Err(e)
        }
    }
}

fn cvt(r: libc::c_int, what: &str) -> Result<libc::c_int, String> {
    if r < 0 { Err(format!("{what}: {}", std::io::Error::last_os_error())) } else { Ok(r) }
}

fn spawn() -> Result<Running, String> {
    let fail = |e: String| {
        format!(
            "could not start the crash reaper: {e}; the run continues without crash protection - `chaos cleanup` undoes what a crash leaves"
        )
    };
    let me = std::process::id() as i32;
    let my_start = procfs::start_time(me).ok_or_else(|| fail("cannot read our own start time from /proc".into()))?;
    let mut fds = [0 as RawFd; 2];
    // SAFETY: valid pointer to two ints.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, "pipe2").map_err(fail)?;
    // SAFETY: both descriptors are fresh and owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let spec = ReaperSpec { fd: read.as_raw_fd(), owner_pid: me, owner_start_time: my_start };
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg0("chaos-reaper")
        .env(REAPER_ENV, spec.to_env())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let rfd = read.as_raw_fd();
    // SAFETY: only fcntl(2), which is async-signal-safe, on a descriptor opened before fork.
    unsafe {
        cmd.pre_exec(move || {
            // Let the read end (and only it) survive exec.
            if libc::fcntl(rfd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| fail(format!("re-executing /proc/self/exe: {e}")))?;
    drop(read);
    let pid = child.id() as i32;
    let start_time = procfs::start_time(pid).unwrap_or(0);
    let info = ReaperInfo { pid, start_time };
    // Reap it if it ever exits before us, and forget it so the next sandbox starts a new one.
    let spawned = std::thread::Builder::new().name("chaos-reaper-wait".into()).spawn(move || {
        let status = child.wait();
        let mut st = state();
        if st.running.as_ref().is_some_and(|r| r.info.pid == pid) {
            st.running = None;
            st.failures += 1;
            let why = format!("the crash reaper (pid {pid}) exited early: {status:?}");
            tracing::warn!("{why}");
            st.last_error = Some(why);
        }
    });
    if let Err(e) = spawned {
        tracing::warn!("no thread to wait for the reaper ({e}); it becomes a zombie if it exits first");
    }
    tracing::debug!(pid, "crash reaper started");
    Ok(Running { info, _write: write })
}

/// What [`replay_locked`] did with one journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// Replayed; the report says what was undone.
    Replayed(TeardownReport),
    /// Another process (a reaper, a cleanup) holds the journal's lock: it is being undone.
    Busy,
    /// The owner is alive and `force` was not given.
    OwnerAlive {
        /// The owner's pid.
        pid: i32,
    },
    /// The journal could not be opened or read.
    Unreadable(String),
}

/// An exclusive `flock` on a journal file (released on drop).
struct JournalLock {
    _file: std::fs::File,
}

fn lock_journal(path: &Path) -> Result<Option<JournalLock>, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    // SAFETY: valid descriptor owned by `f`.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(Some(JournalLock { _file: f }));
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) { Ok(None) } else { Err(format!("flock {}: {e}", path.display())) }
}

/// Replays one journal under an exclusive lock, so two reapers (or a reaper and `chaos
/// cleanup`) never undo the same run at once. Refuses while the owner lives unless `force`.
///
/// ```
/// use chaos_harness::sandbox::reaper::{replay_locked, ReplayOutcome};
/// use chaos_harness::sandbox::audit::By;
/// let r = replay_locked("/nonexistent/journal.jsonl".as_ref(), false, By::Cleanup);
/// assert!(matches!(r, ReplayOutcome::Unreadable(_)));
/// ```
pub fn replay_locked(path: &Path, force: bool, by: By) -> ReplayOutcome {
    let lock = match lock_journal(path) {
        Ok(Some(l)) => l,
        Ok(None) => return ReplayOutcome::Busy,
        Err(e) => return ReplayOutcome::Unreadable(e),
    };
    let parsed = match Parsed::read(path) {
        Ok(p) => p,
        Err(e) => return ReplayOutcome::Unreadable(e.to_string()),
    };
    if !force && parsed.owner_alive() {
        return ReplayOutcome::OwnerAlive { pid: parsed.owner.map(|o| o.0).unwrap_or_default() };
    }
    let report = journal::replay_file_as(path, REPLAY_BUDGET, by);
    drop(lock);
    ReplayOutcome::Replayed(report)
}

fn modified_ago(path: &Path) -> Duration {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or(Duration::MAX)
}

/// Journals of stale runs: the owner is dead, the reaper recorded in the header (if any) is
/// dead too, and the file was untouched for `grace`.
///
/// ```
/// let stale = chaos_harness::sandbox::reaper::stale_journals(std::time::Duration::from_secs(3600));
/// assert!(stale.iter().all(|p| p.ends_with("journal.jsonl")));
/// ```
pub fn stale_journals(grace: Duration) -> Vec<PathBuf> {
    journal::find_journals()
        .into_iter()
        .filter(|p| {
            let Ok(parsed) = Parsed::read(p) else { return false };
            !parsed.owner_alive() && !parsed.reaper_alive() && modified_ago(p) >= grace
        })
        .collect()
}

/// Replays every stale journal (see [`stale_journals`]); what a reaper does when it starts.
///
/// ```no_run
/// for (path, outcome) in chaos_harness::sandbox::reaper::sweep_stale(std::time::Duration::from_secs(10)) {
///     println!("{}: {outcome:?}", path.display());
/// }
/// ```
pub fn sweep_stale(grace: Duration) -> Vec<(PathBuf, ReplayOutcome)> {
    // Registry entries of dead runs whose temp dir is gone (nothing else left to undo).
    super::runs::sweep_dead(None);
    stale_journals(grace)
        .into_iter()
        .map(|p| {
            let o = replay_locked(&p, false, By::Sweep);
            (p, o)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The reaper process.

/// Runs before `main` in every binary that links this library (an `.init_array` entry, as the
/// `ctor` crate does). Returns at once unless [`REAPER_ENV`] is set; otherwise it *is* the
/// reaper and never returns.
extern "C" fn reaper_entry() {
    let Some(value) = std::env::var_os(REAPER_ENV) else { return };
    let code = std::panic::catch_unwind(|| reaper_main(value)).unwrap_or(70);
    // SAFETY: terminating the process without running the program's main or atexit handlers
    // is exactly the intent.
    unsafe { libc::_exit(code) }
}

#[used]
#[unsafe(link_section = ".init_array")]
static REAPER_ENTRY: extern "C" fn() = reaper_entry;

fn reaper_main(value: OsString) -> i32 {
    let spec = match ReaperSpec::parse(&value.to_string_lossy()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("chaos-reaper: {e}");
            return 2;
        }
    };
    // SAFETY: before main, single-threaded: nothing else reads the environment now.
    unsafe { std::env::remove_var(REAPER_ENV) };
    detach(spec.fd);
    // The pidfd is opened first and the start time checked after, so it pins the right process.
    let pidfd = PidFd::open(spec.owner_pid).ok();
    let owner_alive = !procfs::is_gone(spec.owner_pid, spec.owner_start_time);
    // Stale runs of earlier crashes, in the background: the owner's death must be noticed now.
    let sweeper = std::thread::Builder::new().name("chaos-reaper-sweep".into()).spawn(|| {
        for (path, outcome) in sweep_stale(stale_grace()) {
            audit::reaper_note(&format!("stale run swept: {}: {}", path.display(), outcome_text(&outcome)));
        }
    });
    if owner_alive {
        // Without a pidfd (old kernel) the pipe alone tells: it reaches EOF when the owner exits.
        wait_for_owner(spec.fd, pidfd.as_ref());
    }
    let t0 = Instant::now();
    // SAFETY: plain syscall; SIGALRM's default action terminates a hung reaper.
    unsafe { libc::alarm(WATCHDOG_SECS) };
    let replayed = replay_owner(spec.owner_pid, spec.owner_start_time);
    if !replayed.is_empty() {
        settle(&replayed);
        audit::reaper_note(&format!(
            "harness pid {} is gone: undid {} journal(s) in {} ms",
            spec.owner_pid,
            replayed.len(),
            t0.elapsed().as_millis()
        ));
    }
    if let Ok(h) = sweeper {
        let _ = h.join();
    }
    0
}

fn outcome_text(o: &ReplayOutcome) -> String {
    match o {
        ReplayOutcome::Replayed(r) => r.to_string(),
        ReplayOutcome::Busy => "being undone by another process".into(),
        ReplayOutcome::OwnerAlive { pid } => format!("owner pid {pid} alive"),
        ReplayOutcome::Unreadable(e) => e.clone(),
    }
}

/// Own session, ignored termination signals, OOM immunity, no inherited descriptors but `keep`.
fn detach(keep: RawFd) {
    // SAFETY: plain syscalls on our own process; `keep` stays open.
    unsafe {
        libc::setsid();
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE, libc::SIGQUIT, libc::SIGTSTP] {
            libc::signal(sig, libc::SIG_IGN);
        }
        libc::prctl(libc::PR_SET_NAME, c"chaos-reaper".as_ptr() as libc::c_ulong, 0, 0, 0);
        if keep > 3 {
            libc::syscall(libc::SYS_close_range, 3u32, (keep - 1) as u32, 0u32);
        }
        libc::syscall(libc::SYS_close_range, (keep + 1) as u32, u32::MAX, 0u32);
    }
    let _ = std::fs::write("/proc/self/oom_score_adj", "-1000");
}

/// Blocks until the pipe reaches EOF or the owner's pidfd (if any) reports its exit.
fn wait_for_owner(fd: RawFd, owner: Option<&PidFd>) {
    let mut fds = [
        libc::pollfd { fd, events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: owner.map(PidFd::as_raw).unwrap_or(-1), events: libc::POLLIN, revents: 0 },
    ];
    let n = if owner.is_some() { 2 } else { 1 };
    loop {
        // SAFETY: valid array of at least `n` pollfds.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), n, -1) };
        if r < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        if fds[1].revents != 0 {
            return;
        }
        if fds[0].revents != 0 {
            let mut buf = [0u8; 64];
            // SAFETY: valid buffer.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n == 0 || (n < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR)) {
                return;
            }
        }
    }
}

/// Replays every journal of the owner; returns what was pending in each (for the settle
/// passes).
fn replay_owner(pid: i32, start_time: u64) -> Vec<(PathBuf, Parsed)> {
    let mut out = Vec::new();
    for path in journal::find_journals() {
        let Ok(parsed) = Parsed::read(&path) else { continue };
        if parsed.owner != Some((pid, start_time)) {
            continue;
        }
        let outcome = replay_locked(&path, true, By::Reaper);
        if let ReplayOutcome::Replayed(r) = &outcome
            && !r.is_clean()
        {
            audit::reaper_note(&format!("journal {}: {r}", path.display()));
        }
        out.push((path, parsed));
    }
    remove_headless_dirs(pid, start_time);
    // Registry entries of this owner whose temp dir is gone (killed before creating it, or
    // while writing the entry).
    super::runs::sweep_dead(Some((pid, start_time)));
    out
}

/// Temp dirs of the owner (run id `<secs>-<pid>-<n>`) that have no readable journal header:
/// the harness died between creating the dir and writing the header, so nothing else was done
/// in them. Skipped if the pid now belongs to a live process (pid reuse).
fn remove_headless_dirs(pid: i32, start_time: u64) {
    // The pipe reaches EOF while the owner is still exiting: wait (briefly) until it is gone
    // (a zombie counts as gone). Pid + start time, so a reused pid is never mistaken for it.
    let t0 = Instant::now();
    while !procfs::is_gone(pid, start_time) {
        if t0.elapsed() > Duration::from_secs(2) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(run) = name.strip_prefix(super::TEMP_PREFIX) else { continue };
        if run.split('-').nth(1).and_then(|p| p.parse::<i32>().ok()) != Some(pid) {
            continue;
        }
        let journal = e.path().join(journal::FILE_NAME);
        if Parsed::read(&journal).is_ok_and(|p| p.owner.is_some()) {
            continue;
        }
        if std::fs::remove_dir_all(e.path()).is_ok() {
            audit::reaper_note(&format!(
                "removed {} (no journal header: the harness died creating it)",
                e.path().display()
            ));
        }
    }
}

/// Re-runs the undo of everything that was pending, after short delays (see the module docs).
fn settle(replayed: &[(PathBuf, Parsed)]) {
    let t0 = Instant::now();
    for delay in SETTLE {
        std::thread::sleep(delay.saturating_sub(t0.elapsed()));
        let deadline = Instant::now() + Duration::from_secs(2);
        for (path, parsed) in replayed {
            for p in parsed.pending.iter().rev() {
                if matches!(p.effect, Effect::TempDir { .. }) {
                    continue;
                }
                if let Err(e) = journal::undo(&p.effect, &p.pids, deadline) {
                    audit::reaper_note(&format!("settle pass: {}: {e}", p.effect));
                }
            }
            if path.exists() {
                let _ = replay_locked(path, true, By::Reaper);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_rejects_garbage() {
        for bad in ["", "v1", "v1:3", "v1:3:100", "v1:x:100:1", "v1:2:100:1", "v1:3:0:1", "v1:3:100:1:9", "v1:3:100:-1"]
        {
            assert!(ReaperSpec::parse(bad).is_err(), "{bad}");
        }
        let e = ReaperSpec::parse("nope").unwrap_err().to_string();
        assert!(e.contains(REAPER_ENV) && e.contains("unset it"), "{e}");
    }

    #[test]
    fn lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("journal.jsonl");
        std::fs::write(&p, "").unwrap();
        let a = lock_journal(&p).unwrap();
        assert!(a.is_some());
        assert!(lock_journal(&p).unwrap().is_none(), "second lock must fail while the first is held");
        drop(a);
        assert!(lock_journal(&p).unwrap().is_some());
    }
}
