//! The per-test sandbox: run id, temp dir, per-fixture cgroups ([`Scope`]), the on-disk
//! [`journal`] of every side effect with its undo, ownership proofs, and teardown.
//!
//! The runner owns the sandbox's teardown: whatever happens to the test body (return, panic,
//! timeout), [`Sandbox::teardown`] runs before the next test starts, from the runner's thread,
//! possibly while the body's thread is still running. Teardown closes the journal to new side
//! effects (a body still running gets [`Error::SandboxClosed`]), kills every fixture's
//! processes, undoes the journal in reverse order from the file on disk (the same code the
//! crash reaper runs), and verifies nothing is left.
//!
//! Layout on disk and in the cgroup filesystem:
//!
//! ```text
//! $TMPDIR/chaos-harness-<run id>/journal.jsonl        the journal (see [journal])
//! $TMPDIR/chaos-harness-<run id>/logs/<fixture>.stdout.log, .stderr.log
//! /sys/fs/cgroup/<controller>/chaos-harness/<run id>-<fixture>   (cgroup v1, per controller)
//! /sys/fs/cgroup/unified/chaos-harness/<run id>-<fixture>        (cgroup2, hybrid layout)
//! ```
//!
//! Set `CHAOS_SANDBOX_NO_CGROUPS=1` to force the no-cgroup fallback (marker + process tree),
//! which is also what happens automatically when the harness is not root.

pub mod audit;
pub mod cgroup;
pub mod dry_run;
pub mod journal;
pub mod owner;
pub mod proc_events;
pub mod procfs;
pub mod production;
pub mod reaper;
pub mod runs;
mod scope;
pub mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use nix::sys::signal::Signal;

pub use journal::{Effect, TeardownReport};
pub use owner::OwnedPid;
pub use scope::{CGROUP_SAMPLE, FALLBACK_SAMPLE, Guarantee, Scope};

use crate::Error;
use cgroup::CgroupRef;
use journal::Journal;

/// Prefix of every temp dir the harness creates under the system temp dir.
pub const TEMP_PREFIX: &str = "chaos-harness-";

/// The environment marker put on every process the harness spawns.
pub const RUN_MARKER_ENV: &str = "CHAOS_HARNESS_RUN";

/// Environment switch: `1` forces the no-cgroup fallback for every sandbox.
pub const NO_CGROUPS_ENV: &str = "CHAOS_SANDBOX_NO_CGROUPS";

/// How long teardown waits for processes to die and cgroups to empty.
pub const TEARDOWN_BUDGET: Duration = Duration::from_secs(5);

/// Options for [`Sandbox::with_options`].
///
/// ```
/// let o = chaos_harness::sandbox::SandboxOptions { cgroups: false };
/// let sb = chaos_harness::sandbox::Sandbox::with_options("doc::opts", o).unwrap();
/// assert!(!sb.uses_cgroups());
/// sb.teardown().unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Use cgroups when available (default: `true` unless `CHAOS_SANDBOX_NO_CGROUPS=1`).
    pub cgroups: bool,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        let off = std::env::var(NO_CGROUPS_ENV).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
        Self { cgroups: !off }
    }
}

/// One test's sandbox. `Send + Sync`; share it as `Arc<Sandbox>`.
///
/// ```
/// let sb = chaos_harness::sandbox::Sandbox::new("doc::example").unwrap();
/// assert!(sb.temp_dir().exists());
/// assert!(sb.journal_path().exists());
/// let report = sb.teardown().unwrap();
/// assert!(report.is_clean());
/// assert!(!sb.temp_dir().exists());
/// ```
#[derive(Debug)]
pub struct Sandbox {
    run_id: String,
    test_name: String,
    temp_dir: PathBuf,
    journal: Arc<Journal>,
    options: SandboxOptions,
    scopes: Mutex<Vec<Weak<Scope>>>,
    notes: Mutex<Vec<String>>,
    report: Mutex<Option<TeardownReport>>,
}

fn io_err(what: &str, path: &Path, source: std::io::Error, fix: &str) -> Error {
    Error::Io { what: what.into(), path: path.to_path_buf(), source, fix: fix.into() }
}

impl Sandbox {
    /// Creates the sandbox for `test_name` with a fresh run id, temp dir and journal.
    pub fn new(test_name: &str) -> Result<Self, Error> {
        Self::with_options(test_name, SandboxOptions::default())
    }

    /// A sandbox in dry-run mode whatever `CHAOS_DRY_RUN` says: every side effect is printed
    /// and listed in [`Sandbox::plan`], none is performed (see [`crate::sandbox::dry_run`]).
    ///
    /// ```
    /// use chaos_harness::sandbox::{Sandbox, Effect};
    /// let sb = Sandbox::new_dry_run("doc::dry").unwrap();
    /// let err = sb.record(Effect::Netns { name: "chaos-doc".into() }, || -> Result<(), _> {
    ///     unreachable!("a dry run never performs the effect")
    /// }).unwrap_err();
    /// assert!(err.to_string().starts_with("dry run"));
    /// assert_eq!(sb.plan(), vec!["would create network namespace chaos-doc".to_string()]);
    /// sb.teardown().unwrap();
    /// ```
    pub fn new_dry_run(test_name: &str) -> Result<Self, Error> {
        Self::create(test_name, SandboxOptions::default(), true)
    }

    /// Like [`Sandbox::new`] with explicit options.
    ///
    /// Before anything is touched: the production guard ([`crate::sandbox::production`]) may
    /// refuse with [`Error::Refused`]; `CHAOS_DRY_RUN=1` makes it a dry run; otherwise the
    /// process's crash reaper is started ([`reaper::ensure_started`]).
    pub fn with_options(test_name: &str, options: SandboxOptions) -> Result<Self, Error> {
        Self::create(test_name, options, crate::sandbox::dry_run::enabled())
    }

    fn create(test_name: &str, options: SandboxOptions, dry_run: bool) -> Result<Self, Error> {
        let mut early_notes = Vec::new();
        if dry_run {
            // A dry run changes nothing on the host but its own bookkeeping temp dir, so it is
            // allowed where the production guard would refuse a real run.
            early_notes.push("dry run: side effects are printed, not performed".to_string());
        } else {
            if let Some(note) = crate::sandbox::production::check()? {
                early_notes.push(note);
            }
            match reaper::ensure_started() {
                Ok(_) => {}
                Err(_) if reaper::disabled() => {}
                Err(why) => early_notes.push(why),
            }
        }
        let run_id = new_run_id();
        let temp_dir = std::env::temp_dir().join(format!("{TEMP_PREFIX}{run_id}"));
        let fix = "check that the system temp dir (TMPDIR) is writable";
        // The temp dir must exist before the journal inside it can; it carries the prefix,
        // so a sweep finds it even if we die before the first journal line.
        // The run registry first (a fixed path whatever TMPDIR is): from here on `chaos cleanup`
        // run from anywhere knows this run, its owner and its temp dir.
        let record = runs::RunRecord::for_this_process(&run_id, test_name, &temp_dir);
        if let Err(why) = runs::register(&record) {
            early_notes.push(format!(
                "run registry unavailable ({why}): `chaos cleanup` with another TMPDIR will not see this run"
            ));
        }
        if let Err(e) = std::fs::create_dir(&temp_dir) {
            runs::unregister(&run_id);
            return Err(io_err("creating the sandbox temp dir", &temp_dir, e, fix));
        }
        // The owner file proves the dir is ours by its content, not its name.
        let journal_path = temp_dir.join(journal::FILE_NAME);
        let created = runs::write_owner_file(&record)
            .map_err(|e| io_err("writing the owner file", &temp_dir.join(runs::OWNER_FILE), e, fix))
            .and_then(|()| {
                Journal::create(&journal_path, &run_id, test_name, &temp_dir)
                    .map_err(|e| io_err("creating the journal", &journal_path, e, fix))
            });
        let journal = match created {
            Ok(j) => Arc::new(j),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&temp_dir);
                runs::unregister(&run_id);
                return Err(e);
            }
        };
        journal.record(Effect::TempDir { path: temp_dir.clone() }, || Ok(()))?;
        // The temp dir is the sandbox's own bookkeeping (journal, logs): it exists in dry runs
        // too, and is removed at teardown.
        journal.set_dry_run(dry_run);
        let logs = temp_dir.join("logs");
        std::fs::create_dir(&logs).map_err(|e| io_err("creating the log dir", &logs, e, fix))?;
        Ok(Self {
            run_id,
            test_name: test_name.to_string(),
            temp_dir,
            journal,
            options,
            scopes: Mutex::new(Vec::new()),
            notes: Mutex::new(early_notes),
            report: Mutex::new(None),
        })
    }

    /// Whether this is a dry run: side effects are printed and planned, never performed.
    ///
    /// ```
    /// let sb = chaos_harness::sandbox::Sandbox::new_dry_run("doc::is_dry").unwrap();
    /// assert!(sb.is_dry_run());
    /// sb.teardown().unwrap();
    /// ```
    pub fn is_dry_run(&self) -> bool {
        self.journal.is_dry_run()
    }

    /// The side effects a dry run planned, as `would ...` lines (empty outside dry runs).
    pub fn plan(&self) -> Vec<String> {
        self.journal.plan()
    }

    /// The run id (also the value of `CHAOS_HARNESS_RUN` on spawned processes).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The test this sandbox belongs to.
    pub fn test_name(&self) -> &str {
        &self.test_name
    }

    /// The sandbox's private temp dir (removed at teardown).
    pub fn temp_dir(&self) -> &Path {
        &self.temp_dir
    }

    /// Where fixture logs go: `<temp dir>/logs/<fixture>.stdout.log` and `.stderr.log`.
    pub fn logs_dir(&self) -> PathBuf {
        self.temp_dir.join("logs")
    }

    /// The journal file.
    pub fn journal_path(&self) -> &Path {
        self.journal.path()
    }

    /// The journal, for modules that add their own side effects (faults, resources).
    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    /// Whether fixtures get cgroups (the options allow it and the machine has them).
    pub fn uses_cgroups(&self) -> bool {
        self.options.cgroups && !cgroup::hierarchies().is_empty()
    }

    /// Notes for the test's output, e.g. the reduced guarantee without cgroups.
    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn note(&self, note: String) {
        let mut n = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        if !n.contains(&note) {
            tracing::warn!(run_id = %self.run_id, "{note}");
            n.push(note);
        }
    }

    /// Journals `effect`, then performs `act` (refused once teardown began). See
    /// [`Journal::record`].
    ///
    /// ```
    /// use chaos_harness::sandbox::{Sandbox, Effect};
    /// let sb = Sandbox::new("doc::record").unwrap();
    /// let path = sb.temp_dir().join("fill");
    /// let (_, _seq) = sb.record(Effect::File { path: path.clone() }, || {
    ///     std::fs::write(&path, b"x").map_err(|e| chaos_harness::Error::Io {
    ///         what: "writing".into(), path: path.clone(), source: e, fix: "".into() })
    /// }).unwrap();
    /// sb.teardown().unwrap();
    /// assert!(!path.exists());
    /// ```
    pub fn record<T>(&self, effect: Effect, act: impl FnOnce() -> Result<T, Error>) -> Result<(T, u64), Error> {
        self.journal.record(effect, act)
    }

    /// Creates the process scope of a new fixture: one cgroup per hierarchy (journaled before
    /// each `mkdir`), or the marker + process-tree fallback. The name is made unique within
    /// the sandbox and restricted to `[A-Za-z0-9_.-]`.
    ///
    /// ```
    /// let sb = chaos_harness::sandbox::Sandbox::new("doc::scope").unwrap();
    /// let scope = sb.scope("web").unwrap();
    /// assert_eq!(scope.name(), "web");
    /// assert!(scope.members().is_empty());
    /// sb.teardown().unwrap();
    /// ```
    pub fn scope(&self, fixture: &str) -> Result<Arc<Scope>, Error> {
        let name = self.unique_name(fixture);
        let mut cgroups = Vec::new();
        let mut failures = Vec::new();
        if self.options.cgroups {
            for h in cgroup::hierarchies() {
                let parent_missing = !h.mount.join(cgroup::PARENT).exists();
                if parent_missing {
                    match self.record(
                        Effect::CgroupParent { controller: h.controller.clone(), mount: h.mount.clone() },
                        || Ok(()),
                    ) {
                        Ok(_) | Err(Error::DryRun { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                let cg = CgroupRef {
                    controller: h.controller.clone(),
                    mount: h.mount.clone(),
                    rel: format!("/{}/{}-{}", cgroup::PARENT, self.run_id, name),
                };
                let dir = cg.dir();
                let res = self.record(Effect::Cgroup { cgroup: cg.clone() }, || {
                    // Another run may remove an empty parent between our check and mkdir: retry.
                    let mut last = None;
                    for _ in 0..5 {
                        if let Err(e) = cgroup::ensure_parent(h) {
                            last = Some(e);
                            break;
                        }
                        match std::fs::create_dir(&dir) {
                            Ok(()) => return Ok(()),
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => last = Some(e),
                            Err(e) => {
                                last = Some(e);
                                break;
                            }
                        }
                    }
                    Err(io_err(
                        "creating a fixture cgroup",
                        &dir,
                        last.unwrap_or_else(|| std::io::Error::other("unknown")),
                        "run as root with cgroups mounted, or set CHAOS_SANDBOX_NO_CGROUPS=1 to accept the reduced guarantee",
                    ))
                });
                match res {
                    Ok(((), seq)) => cgroups.push((cg, seq)),
                    Err(e @ Error::SandboxClosed { .. }) => return Err(e),
                    // Dry run: planned, not created; keep planning the other hierarchies.
                    Err(Error::DryRun { .. }) => {}
                    Err(Error::Io { source, path, .. }) => failures.push(format!("{}: {source}", path.display())),
                    Err(e) => failures.push(e.to_string()),
                }
            }
        }
        let guarantee = if !cgroups.is_empty() {
            if !failures.is_empty() {
                self.note(format!("fixture {name}: some cgroup hierarchies unavailable ({})", failures.join("; ")));
            }
            // cgroup2 first: it has cgroup.kill and lists members most cheaply.
            cgroups.sort_by_key(|c| !c.0.is_v2());
            Guarantee::Cgroups
        } else {
            let reason = if self.is_dry_run() {
                "dry run: cgroups planned, not created".to_string()
            } else if !self.options.cgroups {
                format!("disabled ({NO_CGROUPS_ENV}=1 or SandboxOptions)")
            } else if cgroup::hierarchies().is_empty() {
                "no cgroup hierarchy is mounted".to_string()
            } else if !nix::unistd::geteuid().is_root() {
                format!("not root (euid {})", nix::unistd::geteuid())
            } else {
                failures.join("; ")
            };
            let g = Guarantee::Reduced { reason };
            self.note(format!("sandbox guarantee for fixture {name}: {g}"));
            g
        };
        let scope = Scope::new(name.clone(), self.run_id.clone(), cgroups, guarantee, self.journal.clone());
        if scope.guarantee().is_full()
            && let Err(why) = scope.kernel_tracking()
        {
            self.note(format!(
                "fixture {name}: no kernel process tracking ({why}); a process moved out of its cgroups by another program would escape"
            ));
        }
        self.scopes.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::downgrade(&scope));
        Ok(scope)
    }

    fn unique_name(&self, fixture: &str) -> String {
        let mut base: String = fixture
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '_' })
            .take(48)
            .collect();
        if base.is_empty() || base.starts_with('.') {
            base.insert(0, 'f');
        }
        let taken: Vec<String> = self.live_scopes().iter().map(|s| s.name().to_string()).collect();
        let mut name = base.clone();
        let mut i = 2;
        while taken.contains(&name) {
            name = format!("{base}-{i}");
            i += 1;
        }
        name
    }

    /// The process scopes of the fixtures still alive in this sandbox (in creation order).
    ///
    /// ```
    /// let sb = chaos_harness::sandbox::Sandbox::new("doc::scopes").unwrap();
    /// let web = sb.scope("web").unwrap();
    /// assert_eq!(sb.scopes().iter().map(|s| s.name().to_string()).collect::<Vec<_>>(), ["web"]);
    /// drop(web);
    /// sb.teardown().unwrap();
    /// ```
    pub fn scopes(&self) -> Vec<Arc<Scope>> {
        self.live_scopes()
    }

    fn live_scopes(&self) -> Vec<Arc<Scope>> {
        self.scopes.lock().unwrap_or_else(|e| e.into_inner()).iter().filter_map(Weak::upgrade).collect()
    }

    /// Proves `pid` belongs to one of this sandbox's fixtures (cgroup membership, or the
    /// fallback's tracked tree/marker) and pins it with its start time. Pid 1, the harness's
    /// own pid and anything else are refused with [`Error::NotOwned`].
    ///
    /// ```
    /// let sb = chaos_harness::sandbox::Sandbox::new("doc::owns").unwrap();
    /// assert!(sb.owns(1).is_err());
    /// assert!(sb.owns(std::process::id() as i32).is_err());
    /// sb.teardown().unwrap();
    /// ```
    pub fn owns(&self, pid: i32) -> Result<OwnedPid, Error> {
        if let Some(why) = owner::forbidden(pid) {
            return Err(Error::NotOwned { pid, reason: why.into(), fix: "never target init or the harness".into() });
        }
        let mut reasons = Vec::new();
        for s in self.live_scopes() {
            match s.owns(pid) {
                Ok(o) => return Ok(o),
                Err(Error::NotOwned { reason, .. }) => reasons.push(reason),
                Err(e) => return Err(e),
            }
        }
        Err(Error::NotOwned {
            pid,
            reason: if reasons.is_empty() { "the sandbox has no fixtures".into() } else { reasons.join("; ") },
            fix: "the harness only signals processes of its own fixtures; select targets through a fixture handle"
                .into(),
        })
    }

    /// Sends `sig` to an owned pid, re-proving ownership (cgroup + start time, through a pidfd)
    /// at the moment of sending. `Ok(false)` when that process is already gone.
    ///
    /// ```
    /// use chaos_harness::sandbox::{Sandbox, OwnedPid};
    /// use nix::sys::signal::Signal;
    /// let sb = Sandbox::new("doc::signal").unwrap();
    /// let fake = OwnedPid { pid: 1, start_time: 1, fixture: "x".into() };
    /// assert!(sb.signal(&fake, Signal::SIGKILL).is_err());
    /// sb.teardown().unwrap();
    /// ```
    pub fn signal(&self, target: &OwnedPid, sig: Signal) -> Result<bool, Error> {
        if let Some(why) = owner::forbidden(target.pid) {
            return Err(Error::NotOwned {
                pid: target.pid,
                reason: why.into(),
                fix: "never target init or the harness".into(),
            });
        }
        match self.live_scopes().into_iter().find(|s| s.name() == target.fixture) {
            Some(s) => s.signal(target, sig),
            None => Err(Error::NotOwned {
                pid: target.pid,
                reason: format!("the sandbox has no live fixture named {}", target.fixture),
                fix: "select the target from a running fixture".into(),
            }),
        }
    }

    /// Undoes everything the sandbox did, in reverse order, and verifies: kills every
    /// fixture's processes, undoes the journal from disk (cgroups emptied and removed, faults
    /// healed, temp dir removed), then checks that no process carries the run marker and no
    /// cgroup is left. Safe to call while the test body still runs (new side effects are
    /// refused from the first moment); idempotent (later calls return the first report).
    ///
    /// Returns the report, or [`Error::Teardown`] listing what could not be undone.
    pub fn teardown(&self) -> Result<TeardownReport, Error> {
        let mut slot = self.report.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = slot.as_ref() {
            return finish(r.clone(), self.journal_path());
        }
        // Fast path through live scopes (also covers fallback-tracked processes that wiped
        // their marker). The journal undo below repeats it from disk.
        let scopes = self.live_scopes();
        for s in &scopes {
            s.stop_sampler();
        }
        // Closing the journal refuses new side effects from here on; the undo kills every
        // fixture cgroup (reverse order: faults healed first), then removes the temp dir.
        let mut report = self.journal.close_and_undo(TEARDOWN_BUDGET);
        for s in &scopes {
            // Fallback scopes: processes that wiped their marker are only known in memory.
            if let Err(left) = s.kill_all(Duration::from_secs(2)) {
                report.failed.push(format!("fixture {}: pids {left:?} survived SIGKILL", s.name()));
            }
        }
        report.run_id = self.run_id.clone();
        let replay_notes = std::mem::take(&mut report.notes);
        report.notes = self.notes();
        report.notes.extend(replay_notes);
        // Verify. A process carrying the marker but in none of our cgroups or tracked trees is
        // not proof of anything (the marker can be spoofed): it is reported, not killed.
        let marked = procfs::marked_pids(&self.run_id);
        if !marked.is_empty() {
            report.notes.push(format!(
                "processes carrying {RUN_MARKER_ENV}={} outside the sandbox (not ours, left alone): {marked:?}",
                self.run_id
            ));
        }
        for s in &scopes {
            for cg in s.cgroups() {
                if cg.dir().exists() {
                    report.leftovers.push(format!("cgroup {}", cg.dir().display()));
                }
            }
            let alive: Vec<i32> = s.members().iter().map(|o| o.pid).collect();
            if !alive.is_empty() {
                report.leftovers.push(format!("processes of fixture {}: {alive:?}", s.name()));
            }
        }
        if report.is_clean() && self.temp_dir.exists() {
            report.leftovers.push(format!("temp dir {}", self.temp_dir.display()));
        }
        *slot = Some(report.clone());
        finish(report, self.journal_path())
    }
}

fn finish(report: TeardownReport, journal: &Path) -> Result<TeardownReport, Error> {
    if report.is_clean() {
        Ok(report)
    } else {
        let mut problems = report.failed.clone();
        problems.extend(report.leftovers.iter().map(|l| format!("left behind: {l}")));
        Err(Error::Teardown { run_id: report.run_id.clone(), problems, journal: journal.to_path_buf() })
    }
}

/// A new run id: `<unix seconds hex>-<pid>-<counter>`, unique on this machine.
///
/// ```
/// let a = chaos_harness::sandbox::new_run_id();
/// assert_ne!(a, chaos_harness::sandbox::new_run_id());
/// ```
pub fn new_run_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("{secs:x}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Sends `sig` to `pid` only if the sandbox owns it: the one-call form of [`Sandbox::owns`] +
/// [`Sandbox::signal`].
///
/// ```
/// let sb = chaos_harness::sandbox::Sandbox::new("doc::signal_pid").unwrap();
/// let err = chaos_harness::sandbox::signal_pid(&sb, 1, nix::sys::signal::Signal::SIGTERM).unwrap_err();
/// assert!(err.to_string().contains("pid 1"));
/// sb.teardown().unwrap();
/// ```
pub fn signal_pid(sandbox: &Sandbox, pid: i32, sig: Signal) -> Result<bool, Error> {
    let owned = sandbox.owns(pid)?;
    sandbox.signal(&owned, sig)
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            tracing::warn!(error = %e, "sandbox teardown on drop failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_and_handles_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Sandbox>();
        check::<Arc<Scope>>();
        check::<crate::fixture::Process>();
        check::<crate::fixture::Target>();
    }

    #[test]
    fn fixture_names_are_sanitised_and_unique() {
        let sb = Sandbox::with_options("unit::names", SandboxOptions { cgroups: false }).unwrap();
        let a = sb.scope("my web/server").unwrap();
        let b = sb.scope("my web/server").unwrap();
        let c = sb.scope("").unwrap();
        assert_eq!(a.name(), "my_web_server");
        assert_eq!(b.name(), "my_web_server-2");
        assert_eq!(c.name(), "f");
        drop((a, b, c));
        assert!(sb.teardown().unwrap().is_clean());
    }
}
