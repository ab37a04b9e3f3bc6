//! SIGINT/SIGTERM: stop faults, load and fixtures, write partial results, exit within 2 s; a
//! second signal exits at once.
//!
//! [`install`] (the runner calls it in [`Harness::run`](crate::Harness::run)) sets handlers that
//! only write the signal number to a pipe (async-signal-safe); a watcher thread does the work:
//!
//! 1. **First signal.** Marks the run interrupted (tests not yet started are skipped), then
//!    tears down the sandbox of every running test in parallel ([`Sandbox::teardown`]: faults
//!    healed in reverse order, fixtures killed through their cgroups, temp dirs removed; load
//!    generators lose their targets and the test bodies get `SandboxClosed`), waits at most
//!    [`UNDO_BUDGET`], runs the hook (the runner writes JUnit for the tests finished so far,
//!    plus the running ones as failed "interrupted"), and exits with 128 + the signal number.
//!    Whatever the teardown did not finish in time is replayed by the crash reaper as soon as
//!    the process is gone.
//! 2. **Second signal** (while the first is being handled). Exits at once: the reaper undoes
//!    what is left within its 2 s. Without a reaper (disabled or failed) the journals of this
//!    process are replayed synchronously first, so the undo always happens.
//!
//! ```no_run
//! chaos_harness::safety::interrupt::install(|info| {
//!     eprintln!("interrupted by {} with {} tests running", info.signal_name, info.running.len());
//! }).unwrap();
//! ```

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::Error;
use crate::sandbox::audit::{self, AuditEntry, By, Event};
use crate::sandbox::{Sandbox, journal, reaper};

/// How long the first signal's undo may take before partial results are written and the
/// process exits (the reaper finishes anything left).
pub const UNDO_BUDGET: Duration = Duration::from_millis(1500);

/// What the hook learns about an interruption.
///
/// ```
/// let i = chaos_harness::safety::interrupt::Interrupted { signal: 2, signal_name: "SIGINT", running: vec![] };
/// assert_eq!(i.exit_code(), 130);
/// ```
#[derive(Debug, Clone)]
pub struct Interrupted {
    /// The signal number.
    pub signal: i32,
    /// Its name (`SIGINT`, `SIGTERM`).
    pub signal_name: &'static str,
    /// The tests that were running, with how long they had run.
    pub running: Vec<RunningTest>,
}

impl Interrupted {
    /// The process exit code: 128 + the signal number.
    pub fn exit_code(&self) -> i32 {
        128 + self.signal
    }
}

/// A test that was running when the signal came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningTest {
    /// Its name.
    pub name: String,
    /// How long it had run.
    pub elapsed: Duration,
}

struct Entry {
    id: u64,
    name: String,
    started: Instant,
    sandbox: Weak<Sandbox>,
}

type Hook = Box<dyn Fn(&Interrupted) + Send + Sync>;

static PIPE_W: AtomicI32 = AtomicI32::new(-1);
static SIGNALLED: AtomicI32 = AtomicI32::new(0);
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
static HOOK: Mutex<Option<Hook>> = Mutex::new(None);
static RUNNING: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "signal",
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE_W.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a local byte.
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }
}

/// Installs the SIGINT/SIGTERM handling (once per process; a later call only replaces the
/// hook). `hook` runs after the undo, before the exit: write partial results there.
pub fn install(hook: impl Fn(&Interrupted) + Send + Sync + 'static) -> Result<(), Error> {
    *HOOK.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(hook));
    INSTALLED.get_or_init(install_once).clone().map_err(|cause| Error::Config {
        what: "installing the SIGINT/SIGTERM handler".into(),
        cause,
        fix: "the run continues; Ctrl-C then kills the harness and the crash reaper undoes its faults".into(),
    })
}

fn install_once() -> Result<(), String> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: valid pointer to two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(format!("pipe2: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: setting O_NONBLOCK on our own fresh descriptor (a full pipe must never block the
    // handler).
    unsafe { libc::fcntl(fds[1], libc::F_SETFL, libc::O_NONBLOCK) };
    PIPE_W.store(fds[1], Ordering::SeqCst);
    let read_fd = fds[0];
    std::thread::Builder::new()
        .name("chaos-interrupt".into())
        .spawn(move || watch(read_fd))
        .map_err(|e| format!("cannot start the watcher thread: {e}"))?;
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with a valid handler and an empty mask.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) < 0 {
                return Err(format!("sigaction({}): {}", signal_name(sig), std::io::Error::last_os_error()));
            }
        }
    }
    Ok(())
}

/// The signal that interrupted the run, if any (tests check it before starting).
///
/// ```
/// assert_eq!(chaos_harness::safety::interrupt::signalled(), None);
/// ```
pub fn signalled() -> Option<&'static str> {
    match SIGNALLED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(signal_name(s)),
    }
}

/// Registers a running test and its sandbox until the returned guard drops.
///
/// ```
/// use std::sync::Arc;
/// let sb = Arc::new(chaos_harness::sandbox::Sandbox::new("doc::track").unwrap());
/// let t = chaos_harness::safety::interrupt::track("doc::track", &sb);
/// assert_eq!(chaos_harness::safety::interrupt::running()[0].name, "doc::track");
/// drop(t);
/// sb.teardown().unwrap();
/// ```
pub fn track(name: &str, sandbox: &Arc<Sandbox>) -> Tracked {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    RUNNING.lock().unwrap_or_else(|e| e.into_inner()).push(Entry {
        id,
        name: name.to_string(),
        started: Instant::now(),
        sandbox: Arc::downgrade(sandbox),
    });
    Tracked { id }
}

/// The tests registered with [`track`] right now.
pub fn running() -> Vec<RunningTest> {
    RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|e| RunningTest { name: e.name.clone(), elapsed: e.started.elapsed() })
        .collect()
}

/// Keeps a test registered for interrupt handling; unregisters on drop.
#[derive(Debug)]
pub struct Tracked {
    id: u64,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        RUNNING.lock().unwrap_or_else(|e| e.into_inner()).retain(|e| e.id != self.id);
    }
}

/// Called by the runner when its tests are done: if a signal is being handled, waits for the
/// handler to exit the process (with 128 + the signal) instead of returning the run's own
/// result; a handler that hangs is cut off after its budget plus 3 s.
pub fn wait_if_interrupted() {
    let sig = SIGNALLED.load(Ordering::SeqCst);
    if sig == 0 {
        return;
    }
    std::thread::sleep(UNDO_BUDGET + Duration::from_secs(3));
    eprintln!("chaos: the {} handler did not finish in time; exiting", signal_name(sig));
    std::process::exit(128 + sig)
}

fn watch(fd: RawFd) {
    let mut first = true;
    loop {
        let mut b = [0u8; 1];
        // SAFETY: valid one-byte buffer.
        let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        let sig = b[0] as i32;
        if first {
            first = false;
            SIGNALLED.store(sig, Ordering::SeqCst);
            if std::thread::Builder::new().name("chaos-interrupt-undo".into()).spawn(move || first_signal(sig)).is_err()
            {
                first_signal(sig);
            }
        } else {
            second_signal(sig);
        }
    }
}

fn first_signal(sig: i32) -> ! {
    let name = signal_name(sig);
    let entries: Vec<(String, Instant, Option<Arc<Sandbox>>)> = RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|e| (e.name.clone(), e.started, e.sandbox.upgrade()))
        .collect();
    eprintln!(
        "\nchaos: {name} received: undoing faults and stopping fixtures of {} running test(s), then writing partial results (send it again to exit at once)",
        entries.len()
    );
    audit::write(
        AuditEntry::new(Event::Interrupt, By::Interrupt, format!("{name}: run interrupted"))
            .target(format!("{} running test(s)", entries.len())),
    );
    let t0 = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel::<(String, Result<(), String>)>();
    let mut pending = 0;
    for (test, _, sandbox) in &entries {
        let Some(sb) = sandbox.clone() else { continue };
        let (tx, test) = (tx.clone(), test.clone());
        pending += 1;
        let spawned = std::thread::Builder::new().name("chaos-interrupt-teardown".into()).spawn(move || {
            let r = sb.teardown().map(|_| ()).map_err(|e| e.to_string());
            let _ = tx.send((test, r));
        });
        if spawned.is_err() {
            pending -= 1;
        }
    }
    drop(tx);
    let deadline = t0 + UNDO_BUDGET;
    while pending > 0 {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((test, Ok(()))) => {
                pending -= 1;
                eprintln!("chaos: {test}: undone");
            }
            Ok((test, Err(e))) => {
                pending -= 1;
                eprintln!("chaos: {test}: {e}");
            }
            Err(_) => break,
        }
    }
    if pending > 0 {
        eprintln!(
            "chaos: {pending} teardown(s) still running after {} ms; the crash reaper finishes them",
            UNDO_BUDGET.as_millis()
        );
    }
    let info = Interrupted {
        signal: sig,
        signal_name: name,
        running: entries
            .iter()
            .map(|(n, started, _)| RunningTest { name: n.clone(), elapsed: started.elapsed() })
            .collect(),
    };
    if let Some(hook) = HOOK.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        hook(&info);
    }
    eprintln!("chaos: exiting with {} after {} ms", info.exit_code(), t0.elapsed().as_millis());
    std::process::exit(info.exit_code())
}

fn second_signal(sig: i32) -> ! {
    let name = signal_name(sig);
    match reaper::current() {
        Some(r) => eprintln!("chaos: second {name}: exiting now; the crash reaper (pid {}) undoes what is left", r.pid),
        None => {
            eprintln!("chaos: second {name}: no crash reaper running; undoing this process's journals, then exiting");
            let me = std::process::id() as i32;
            for path in journal::find_journals() {
                if journal::Parsed::read(&path).is_ok_and(|p| p.owner.map(|o| o.0) == Some(me)) {
                    let _ = reaper::replay_locked(&path, true, By::Interrupt);
                }
            }
        }
    }
    // SAFETY: immediate exit is the point of a second signal.
    unsafe { libc::_exit(128 + sig) }
}
