//! The journal: every side effect of a run, written to disk *before* it happens, with the data
//! needed to undo it without any in-memory state.
//!
//! # Format (version 1)
//!
//! `<temp dir>/journal.jsonl`, append-only JSON lines, each line written (one `write(2)`)
//! before the harness acts. Every line has `seq` (line number from 0), `at_ms` (unix milliseconds) and `op`:
//!
//! | `op` | fields | meaning |
//! |---|---|---|
//! | `header` | `v`, `run_id`, `test`, `owner_pid`, `owner_start_time`, `temp_dir` | first line; the owner identifies the harness process (pid + start time) |
//! | `do` | `effect` | a side effect is about to happen; `effect.kind` says what (see [`Effect`]) |
//! | `pid` | `of`, `pid`, `start_time` | a process belonging to the `process` effect `of` (its main pid, or a descendant found by the fallback tracker) |
//! | `undone` | `of` | the effect `of` was undone and the undo verified |
//! | `undo_failed` | `of`, `error` | undoing `of` failed; it stays pending |
//! | `closed` | | teardown finished with nothing pending |
//!
//! A `do` is pending until an `undone` with its `seq` follows. Undo walks pending effects in
//! reverse order. A torn last line (crash in mid-write) is ignored. Unknown `op`s and effect
//! `kind`s are reported, never silently dropped.
//!
//! # Durability
//!
//! Each line is one `write(2)` made before the effect it announces, and is not `fsync`ed.
//! - **The harness dies** (SIGKILL, panic, OOM kill, a timeout's abort): every line it wrote is
//!   in the page cache, which belongs to the kernel, not to the process; the reaper, `chaos
//!   cleanup` and the next run's sweep read it and undo everything. The safety meta-tests
//!   SIGKILL the harness at random moments to prove it.
//! - **The machine crashes** (power loss, kernel panic): the last lines may be lost, but so is
//!   what they guarded: processes, cgroups, network namespaces, nft tables, mounts, frozen and
//!   stopped processes and rlimits live in the kernel and do not survive a reboot. What can
//!   survive is on disk: the temp dir (under `$TMPDIR`, named `chaos-harness-<run id>`, found
//!   by name by `chaos cleanup`) and fill files inside it; and proxies on an *external*
//!   Toxiproxy, named `chaos-<run id>-*`, which `chaos cleanup` does not reach: delete them
//!   with the server's `POST /reset`. An fsync per line would cost about 4 ms each (about
//!   130 ms per test here) to cover that last case only.
//!
//! ```text
//! {"seq":0,"at_ms":1764000000000,"op":"header","v":1,"run_id":"6923e0c0-4242-0","test":"process::smoke","owner_pid":4242,"owner_start_time":123456,"temp_dir":"/tmp/chaos-harness-6923e0c0-4242-0"}
//! {"seq":1,"at_ms":1764000000001,"op":"do","effect":{"kind":"temp_dir","path":"/tmp/chaos-harness-6923e0c0-4242-0"}}
//! {"seq":2,"at_ms":1764000000002,"op":"do","effect":{"kind":"cgroup_parent","controller":"pids","mount":"/sys/fs/cgroup/pids"}}
//! {"seq":3,"at_ms":1764000000002,"op":"do","effect":{"kind":"cgroup","cgroup":{"controller":"pids","mount":"/sys/fs/cgroup/pids","rel":"/chaos-harness/6923e0c0-4242-0-web"}}}
//! {"seq":4,"at_ms":1764000000003,"op":"do","effect":{"kind":"process","fixture":"web","run_id":"6923e0c0-4242-0","program":"/usr/bin/python3"}}
//! {"seq":5,"at_ms":1764000000004,"op":"pid","of":4,"pid":4300,"start_time":123999}
//! {"seq":6,"at_ms":1764000000100,"op":"do","effect":{"kind":"frozen","cgroup":{"controller":"freezer","mount":"/sys/fs/cgroup/freezer","rel":"/chaos-harness/6923e0c0-4242-0-web"}}}
//! {"seq":7,"at_ms":1764000000200,"op":"undone","of":6}
//! ```

use std::fs::File;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use super::cgroup::{self, CgroupRef};
use super::owner::{self, OwnedPid};
use super::procfs;
use crate::Error;

/// The journal file's name inside the sandbox temp dir.
pub const FILE_NAME: &str = "journal.jsonl";

/// The journal format version written in the header.
pub const FORMAT_VERSION: u32 = 1;

/// A side effect and everything needed to undo it. Serialized with `"kind"` as the tag.
///
/// ```
/// use chaos_harness::sandbox::journal::Effect;
/// let e = Effect::File { path: "/tmp/chaos-harness-x/fill".into() };
/// let j = serde_json::to_string(&e).unwrap();
/// assert_eq!(j, r#"{"kind":"file","path":"/tmp/chaos-harness-x/fill"}"#);
/// assert_eq!(serde_json::from_str::<Effect>(&j).unwrap(), e);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Effect {
    /// The sandbox temp dir (holds the journal and the logs). Undo: remove it recursively;
    /// kept when anything else failed to undo, so the journal survives for a later cleanup.
    TempDir {
        /// The directory.
        path: PathBuf,
    },
    /// `<mount>/chaos-harness` may be created. Undo: remove it if no run uses it any more.
    CgroupParent {
        /// v1 controller or `""` for cgroup2.
        controller: String,
        /// The hierarchy's mount point.
        mount: PathBuf,
    },
    /// A fixture cgroup. Undo: kill every process in it (thawing it first), wait until it is
    /// empty, remove it, verify it is gone.
    Cgroup {
        /// The cgroup.
        cgroup: CgroupRef,
    },
    /// A fixture process is about to be spawned with `CHAOS_HARNESS_RUN=<run_id>`; its pids
    /// follow as `pid` records. Undo: SIGKILL every recorded pid whose start time still
    /// matches and every live process carrying the marker; verify none is left.
    Process {
        /// The fixture name.
        fixture: String,
        /// The run id (the marker value).
        run_id: String,
        /// The program.
        program: String,
    },
    /// A cgroup is about to be frozen. Undo: thaw it and read the state back.
    Frozen {
        /// The cgroup (v1 freezer hierarchy or cgroup2).
        cgroup: CgroupRef,
    },
    /// A process is about to get SIGSTOP. Undo: SIGCONT if it is still that process.
    Stopped {
        /// The pid.
        pid: i32,
        /// Its start time (against pid reuse).
        start_time: u64,
    },
    /// A cgroup control file is about to be changed (resource faults). Undo: write
    /// `previous` back and read it back.
    CgroupLimit {
        /// The cgroup directory.
        dir: PathBuf,
        /// The control file, e.g. `memory.limit_in_bytes`.
        file: String,
        /// The value before the change, as read from the file.
        previous: String,
    },
    /// A process rlimit is about to be changed. Undo: `prlimit` back to the previous values if
    /// the process (pid + start time) still exists.
    Rlimit {
        /// The pid.
        pid: i32,
        /// Its start time.
        start_time: u64,
        /// The resource number (`libc::RLIMIT_NOFILE` is 7).
        resource: i32,
        /// Previous soft limit (`u64::MAX` = unlimited).
        soft: u64,
        /// Previous hard limit.
        hard: u64,
    },
    /// A filesystem is about to be mounted on `target`. Undo: lazy unmount.
    Mount {
        /// Mount point.
        target: PathBuf,
    },
    /// A file is about to be created (e.g. a disk fill file). Undo: remove it.
    File {
        /// The file.
        path: PathBuf,
    },
    /// A network namespace is about to be created. Undo: `ip netns delete <name>`.
    Netns {
        /// Its name (`chaos-*`).
        name: String,
    },
    /// An nftables table is about to be created. Undo: `nft delete table <family> <name>`.
    NftTable {
        /// Address family (`inet`, `ip`, ...).
        family: String,
        /// Table name (`chaos_*`).
        name: String,
        /// The network namespace it lives in, if any.
        netns: Option<String>,
    },
    /// A proxy is about to be created on an external Toxiproxy server. Undo: `DELETE
    /// /proxies/<name>` on that server (a 404 counts as gone), verified with `GET`.
    ToxiproxyProxy {
        /// The server's URL (`http://host:port`, as in `TOXIPROXY_URL`).
        url: String,
        /// The proxy's name (`chaos-<run id>-<link>`).
        name: String,
    },
    /// A plugin's side effect: its kind (a [`PluginEffect`] registered under that name knows
    /// the undo) and the data the undo needs, serialized. The crash reaper (the same binary,
    /// so the same registrations) undoes it like any other effect.
    Plugin {
        /// The plugin effect kind (`PluginEffect::kind`).
        plugin: String,
        /// What its undo needs.
        data: serde_json::Value,
    },
}

/// How a plugin's side effects are undone: register one per effect kind with
/// `inventory::submit!`, then journal the effect as [`Effect::Plugin`] before acting.
///
/// ```
/// use chaos_harness::sandbox::journal::{Effect, PluginEffect};
/// fn remove(data: &serde_json::Value) -> Result<(), String> {
///     let path = data["path"].as_str().ok_or("no path")?;
///     match std::fs::remove_file(path) {
///         Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
///         _ => Ok(()),
///     }
/// }
/// chaos_harness::inventory::submit! { PluginEffect { kind: "doc_marker", undo: remove } }
/// let e = Effect::Plugin { plugin: "doc_marker".into(), data: serde_json::json!({"path": "/nonexistent/m"}) };
/// assert_eq!(e.to_string(), r#"plugin effect doc_marker {"path":"/nonexistent/m"}"#);
/// ```
#[derive(Debug)]
pub struct PluginEffect {
    /// The effect kind, unique across plugins (prefix it with the plugin's name).
    pub kind: &'static str,
    /// Undoes one effect from its journaled data; `Ok` when it is (already) undone.
    pub undo: fn(&serde_json::Value) -> Result<(), String>,
}

inventory::collect!(PluginEffect);

/// Undoes a plugin effect through its registered [`PluginEffect`].
fn undo_plugin(kind: &str, data: &serde_json::Value) -> Result<(), String> {
    match inventory::iter::<PluginEffect>.into_iter().find(|p| p.kind == kind) {
        Some(p) => (p.undo)(data),
        None => Err(format!(
            "no undo is registered for plugin effect `{kind}` in this binary; run `chaos cleanup` (or the test binary) built with the plugin that registers it"
        )),
    }
}

impl std::fmt::Display for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Effect::TempDir { path } => write!(f, "temp dir {}", path.display()),
            Effect::CgroupParent { mount, .. } => write!(f, "cgroup parent {}/{}", mount.display(), cgroup::PARENT),
            Effect::Cgroup { cgroup } => write!(f, "cgroup {}", cgroup.dir().display()),
            Effect::Process { fixture, program, .. } => write!(f, "processes of fixture {fixture} ({program})"),
            Effect::Frozen { cgroup } => write!(f, "frozen cgroup {}", cgroup.dir().display()),
            Effect::Stopped { pid, .. } => write!(f, "SIGSTOP of pid {pid}"),
            Effect::CgroupLimit { dir, file, previous } => {
                write!(f, "cgroup limit {}/{file} (previous {previous})", dir.display())
            }
            Effect::Rlimit { pid, resource, soft, hard, .. } => {
                write!(f, "rlimit {resource} of pid {pid} (previous {soft}/{hard})")
            }
            Effect::Mount { target } => write!(f, "mount on {}", target.display()),
            Effect::File { path } => write!(f, "file {}", path.display()),
            Effect::Netns { name } => write!(f, "network namespace {name}"),
            Effect::NftTable { family, name, .. } => write!(f, "nft table {family} {name}"),
            Effect::ToxiproxyProxy { url, name } => write!(f, "Toxiproxy proxy {name} on {url}"),
            Effect::Plugin { plugin, data } => write!(f, "plugin effect {plugin} {data}"),
        }
    }
}

/// One journal line's payload.
///
/// ```
/// use chaos_harness::sandbox::journal::Record;
/// let r: Record = serde_json::from_str(r#"{"op":"undone","of":3}"#).unwrap();
/// assert_eq!(r, Record::Undone { of: 3 });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Record {
    /// First line of every journal.
    Header {
        /// Format version ([`FORMAT_VERSION`]).
        v: u32,
        /// The run id.
        run_id: String,
        /// The test name.
        test: String,
        /// The harness process that owns this run.
        owner_pid: i32,
        /// Its start time (so a reused pid is not mistaken for a live owner).
        owner_start_time: u64,
        /// The sandbox temp dir.
        temp_dir: PathBuf,
        /// The crash reaper watching the owner (see [`super::reaper`]), if one was running
        /// when the journal was created. Absent in journals written without a reaper.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reaper: Option<super::reaper::ReaperInfo>,
    },
    /// A side effect about to happen.
    Do {
        /// What and how to undo it.
        effect: Effect,
    },
    /// A process belonging to the `process` effect `of`.
    Pid {
        /// `seq` of the `process` effect.
        of: u64,
        /// The pid.
        pid: i32,
        /// Its start time.
        start_time: u64,
    },
    /// The effect `of` has been undone and verified.
    Undone {
        /// `seq` of the effect.
        of: u64,
    },
    /// Undoing `of` failed (it stays pending).
    UndoFailed {
        /// `seq` of the effect.
        of: u64,
        /// What went wrong.
        error: String,
    },
    /// Teardown finished with nothing pending.
    Closed,
}

/// A journal line: sequence number, time and payload.
///
/// ```
/// use chaos_harness::sandbox::journal::{Line, Record};
/// let l: Line = serde_json::from_str(r#"{"seq":7,"at_ms":1,"op":"closed"}"#).unwrap();
/// assert_eq!((l.seq, l.record), (7, Record::Closed));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Line number from 0; `do` records are referred to by it.
    pub seq: u64,
    /// Unix time in milliseconds.
    pub at_ms: u64,
    /// The payload.
    #[serde(flatten)]
    pub record: Record,
}

/// A pending (not yet undone) effect, reconstructed from the journal.
///
/// ```
/// use chaos_harness::sandbox::journal::{Effect, Pending};
/// let p = Pending { seq: 1, effect: Effect::File { path: "/tmp/x".into() }, pids: vec![] };
/// assert_eq!(p.seq, 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The `do` record's `seq`.
    pub seq: u64,
    /// The effect.
    pub effect: Effect,
    /// For `process` effects: the pids recorded for it, with start times.
    pub pids: Vec<(i32, u64)>,
}

/// A journal read back from disk.
///
/// ```
/// use chaos_harness::sandbox::journal::Parsed;
/// let p = Parsed::parse(concat!(
///     r#"{"seq":0,"at_ms":0,"op":"header","v":1,"run_id":"r","test":"t","owner_pid":5,"owner_start_time":9,"temp_dir":"/tmp/chaos-harness-r"}"#, "\n",
///     r#"{"seq":1,"at_ms":0,"op":"do","effect":{"kind":"file","path":"/tmp/f"}}"#, "\n",
///     r#"{"seq":2,"at_ms":0,"op":"do","effect":{"kind":"file","path":"/tmp/g"}}"#, "\n",
///     r#"{"seq":3,"at_ms":0,"op":"undone","of":1}"#, "\n",
///     r#"{"seq":4,"at_ms":0,"op":"do","effe"#));
/// assert_eq!(p.run_id.as_deref(), Some("r"));
/// assert_eq!(p.pending.len(), 1);
/// assert_eq!(p.pending[0].seq, 2);
/// assert_eq!(p.torn_tail, true);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// Run id from the header.
    pub run_id: Option<String>,
    /// Test name from the header.
    pub test: Option<String>,
    /// The reaper (pid and start time) recorded in the header, if any.
    pub reaper: Option<(i32, u64)>,
    /// Owner pid and start time from the header.
    pub owner: Option<(i32, u64)>,
    /// Temp dir from the header.
    pub temp_dir: Option<PathBuf>,
    /// Pending effects in journal order.
    pub pending: Vec<Pending>,
    /// `true` when the journal ends with `closed`.
    pub closed: bool,
    /// `true` when the last line was cut short (the harness died mid-write).
    pub torn_tail: bool,
    /// Lines that could not be understood (other than a torn last line).
    pub unreadable: Vec<String>,
    /// The next free `seq`.
    pub next_seq: u64,
}

impl Parsed {
    /// Parses journal text.
    pub fn parse(text: &str) -> Self {
        let mut p = Parsed::default();
        let lines: Vec<&str> = text.split('\n').collect();
        let last_nonempty = lines.iter().rposition(|l| !l.trim().is_empty());
        for (i, raw) in lines.iter().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let line: Line = match serde_json::from_str(raw) {
                Ok(l) => l,
                Err(e) => {
                    if Some(i) == last_nonempty && !text.ends_with('\n') {
                        p.torn_tail = true;
                    } else {
                        p.unreadable.push(format!("line {}: {e}: {raw}", i + 1));
                    }
                    continue;
                }
            };
            p.next_seq = p.next_seq.max(line.seq + 1);
            match line.record {
                Record::Header { run_id, test, owner_pid, owner_start_time, temp_dir, reaper, .. } => {
                    p.run_id = Some(run_id);
                    p.test = Some(test);
                    p.reaper = reaper.map(|r| (r.pid, r.start_time));
                    p.owner = Some((owner_pid, owner_start_time));
                    p.temp_dir = Some(temp_dir);
                }
                Record::Do { effect } => {
                    p.closed = false;
                    p.pending.push(Pending { seq: line.seq, effect, pids: Vec::new() })
                }
                Record::Pid { of, pid, start_time } => {
                    if let Some(e) = p.pending.iter_mut().find(|e| e.seq == of) {
                        e.pids.push((pid, start_time));
                    }
                }
                Record::Undone { of } => p.pending.retain(|e| e.seq != of),
                Record::UndoFailed { .. } => {}
                Record::Closed => p.closed = true,
            }
        }
        p
    }

    /// Reads and parses a journal file.
    ///
    /// ```
    /// assert!(chaos_harness::sandbox::journal::Parsed::read("/nonexistent/journal.jsonl".as_ref()).is_err());
    /// ```
    pub fn read(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            what: "reading the journal".into(),
            path: path.to_path_buf(),
            source,
            fix: "check the path; journals live in <temp dir>/chaos-harness-<run id>/journal.jsonl".into(),
        })?;
        Ok(Self::parse(&text))
    }

    /// Whether the harness process that wrote this journal is still alive.
    ///
    /// ```
    /// let p = chaos_harness::sandbox::journal::Parsed::default();
    /// assert!(!p.owner_alive());
    /// ```
    pub fn owner_alive(&self) -> bool {
        self.owner.is_some_and(|(pid, st)| !procfs::is_gone(pid, st))
    }

    /// Whether the reaper recorded in the header is still alive (it will undo this journal
    /// when the owner dies, so nobody else needs to).
    ///
    /// ```
    /// assert!(!chaos_harness::sandbox::journal::Parsed::default().reaper_alive());
    /// ```
    pub fn reaper_alive(&self) -> bool {
        self.reaper.is_some_and(|(pid, st)| !procfs::is_gone(pid, st))
    }
}

/// Result of undoing a journal: what was undone, what failed, what was left.
///
/// ```
/// let r = chaos_harness::sandbox::TeardownReport::default();
/// assert!(r.is_clean());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeardownReport {
    /// The run id.
    pub run_id: String,
    /// Effects undone and verified, in the order they were undone.
    pub undone: Vec<String>,
    /// Effects that could not be undone, each with the reason.
    pub failed: Vec<String>,
    /// Things found still present after the undo (processes with the marker, cgroups).
    pub leftovers: Vec<String>,
    /// Notes for the test output (e.g. the reduced guarantee without cgroups).
    pub notes: Vec<String>,
}

impl TeardownReport {
    /// `true` when everything was undone and nothing was left.
    pub fn is_clean(&self) -> bool {
        self.failed.is_empty() && self.leftovers.is_empty()
    }
}

impl std::fmt::Display for TeardownReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "teardown of run {}: {} undone", self.run_id, self.undone.len())?;
        for x in &self.failed {
            write!(f, "\n  could not undo: {x}")?;
        }
        for x in &self.leftovers {
            write!(f, "\n  left behind: {x}")?;
        }
        for x in &self.notes {
            write!(f, "\n  note: {x}")?;
        }
        Ok(())
    }
}

/// The writer side of a journal. Thread-safe; [`Journal::record`] holds the lock while the
/// side effect happens, so closing and undoing never races a half-done effect.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    run_id: String,
    test: String,
    state: Mutex<State>,
    /// Dry run: effects are planned (listed in `plan`), never performed.
    dry_run: std::sync::atomic::AtomicBool,
    plan: Mutex<Vec<String>>,
}

#[derive(Debug)]
struct State {
    file: Option<File>,
    next_seq: u64,
    closed: bool,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn write_line(file: &mut File, seq: u64, record: Record) -> std::io::Result<()> {
    let mut s = serde_json::to_string(&Line { seq, at_ms: now_ms(), record }).map_err(std::io::Error::other)?;
    s.push('\n');
    // No fsync: the line is in the page cache once `write` returns, which is what the reaper,
    // `chaos cleanup` and a later run read after the harness dies, however it dies. Only a
    // machine crash loses unsynced lines, and a crash also ends everything the journal guards
    // (processes, cgroups, namespaces, nft tables, mounts); see "Durability" above.
    file.write_all(s.as_bytes())
}

impl Journal {
    /// Creates the journal file (which must not exist) and writes the header.
    pub(crate) fn create(path: &Path, run_id: &str, test: &str, temp_dir: &Path) -> std::io::Result<Self> {
        let mut file = std::fs::OpenOptions::new().create_new(true).append(true).open(path)?;
        let me = std::process::id() as i32;
        let header = Record::Header {
            v: FORMAT_VERSION,
            run_id: run_id.to_string(),
            test: test.to_string(),
            owner_pid: me,
            owner_start_time: procfs::start_time(me).unwrap_or(0),
            temp_dir: temp_dir.to_path_buf(),
            reaper: super::reaper::current(),
        };
        write_line(&mut file, 0, header)?;
        Ok(Self {
            path: path.to_path_buf(),
            run_id: run_id.to_string(),
            test: test.to_string(),
            state: Mutex::new(State { file: Some(file), next_seq: 1, closed: false }),
            dry_run: std::sync::atomic::AtomicBool::new(false),
            plan: Mutex::new(Vec::new()),
        })
    }

    /// Turns dry-run mode on: from now on [`Journal::record`] prints and lists each effect
    /// (see [`Journal::plan`]) and refuses it with [`Error::DryRun`] instead of performing it.
    pub(crate) fn set_dry_run(&self, on: bool) {
        self.dry_run.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether this journal is in dry-run mode.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The side effects a dry run planned (and did not perform), in order, as `would ...`
    /// lines. Empty outside dry runs.
    pub fn plan(&self) -> Vec<String> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Lists `effect` in the dry-run plan, prints it and audits it.
    fn plan_effect(&self, effect: &Effect) -> Error {
        let line = crate::sandbox::dry_run::describe(effect);
        eprintln!("dry run [{}]: {line}", self.test);
        crate::sandbox::audit::record_planned(&self.run_id, &self.test, effect);
        self.plan.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        Error::DryRun { effect: effect.to_string() }
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn closed_error(&self, effect: &str) -> Error {
        Error::SandboxClosed { run_id: self.run_id.clone(), what: effect.to_string() }
    }

    fn append(&self, st: &mut State, record: Record) -> Result<u64, Error> {
        let seq = st.next_seq;
        let file = st.file.as_mut().ok_or_else(|| self.closed_error("write the journal"))?;
        write_line(file, seq, record).map_err(|source| Error::Io {
            what: "appending to the journal".into(),
            path: self.path.clone(),
            source,
            fix: "check free space and permissions of the system temp dir".into(),
        })?;
        st.next_seq += 1;
        Ok(seq)
    }

    /// Journals `effect` (written before `act` runs), then performs `act` while holding the
    /// journal lock.
    /// Refused with [`Error::SandboxClosed`] once teardown has begun. Returns `act`'s value and
    /// the effect's `seq` (pass it to [`Journal::undone`] when the effect is undone normally).
    pub fn record<T>(&self, effect: Effect, act: impl FnOnce() -> Result<T, Error>) -> Result<(T, u64), Error> {
        let mut st = self.lock();
        if st.closed {
            return Err(self.closed_error(&effect.to_string()));
        }
        if self.is_dry_run() {
            return Err(self.plan_effect(&effect));
        }
        let seq = self.append(&mut st, Record::Do { effect })?;
        let v = act()?;
        Ok((v, seq))
    }

    /// Records a pid belonging to the `process` effect `of`.
    pub fn pid(&self, of: u64, pid: i32, start_time: u64) -> Result<(), Error> {
        let mut st = self.lock();
        if st.closed {
            return Err(self.closed_error("record a pid"));
        }
        self.append(&mut st, Record::Pid { of, pid, start_time }).map(|_| ())
    }

    /// Records that the effect `of` was undone (and verified) by its owner.
    pub fn undone(&self, of: u64) -> Result<(), Error> {
        if self.is_dry_run() {
            return Ok(());
        }
        let mut st = self.lock();
        if st.closed {
            return Err(self.closed_error("record an undo"));
        }
        self.append(&mut st, Record::Undone { of }).map(|_| ())
    }

    /// Whether teardown has begun.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Closes the journal to new effects and undoes every pending effect in reverse order,
    /// reading the file back (the same code path the reaper uses). Idempotent: a second call
    /// returns an empty report.
    pub(crate) fn close_and_undo(&self, deadline: Duration) -> TeardownReport {
        let mut st = self.lock();
        if st.closed {
            return TeardownReport { run_id: self.run_id.clone(), ..Default::default() };
        }
        st.closed = true;
        let file = st.file.take();
        drop(file);
        let mut report = replay_file_as(&self.path, deadline, crate::sandbox::audit::By::Teardown);
        report.run_id = self.run_id.clone();
        report
    }
}

/// Undoes every pending effect of the journal at `path`, appending `undone`/`undo_failed`
/// records, in reverse order; the temp dir (and with it the journal) is removed last, and only
/// when everything else was undone. This is what the reaper runs for a dead harness; it does
/// not check the owner: see [`replay`]. Every fault-kind effect's undo is written to the audit
/// log with `by` as the undoer.
pub(crate) fn replay_file_as(path: &Path, budget: Duration, by: crate::sandbox::audit::By) -> TeardownReport {
    let mut report = TeardownReport::default();
    let parsed = match Parsed::read(path) {
        Ok(p) => p,
        Err(e) => {
            report.failed.push(e.to_string());
            return report;
        }
    };
    report.run_id = parsed.run_id.clone().unwrap_or_default();
    for u in &parsed.unreadable {
        report.failed.push(format!("unreadable journal entry ({u}); undo it by hand"));
    }
    let mut file = std::fs::OpenOptions::new().append(true).open(path).ok();
    let mut seq = parsed.next_seq;
    if parsed.torn_tail
        && let Some(f) = file.as_mut()
    {
        // Terminate the torn line so the next record is readable.
        let _ = f.write_all(b"\n");
    }
    let mut temp_dirs = Vec::new();
    for p in parsed.pending.iter().rev() {
        if let Effect::TempDir { .. } = p.effect {
            temp_dirs.push(p.clone());
            continue;
        }
        // A deadline per effect: one stuck undo does not fail all the others.
        let result = undo(&p.effect, &p.pids, Instant::now() + budget);
        crate::sandbox::audit::record_undo(
            &report.run_id,
            parsed.test.as_deref().unwrap_or(""),
            &p.effect,
            &result,
            by,
        );
        let rec = match &result {
            Ok(()) => Record::Undone { of: p.seq },
            Err(e) => Record::UndoFailed { of: p.seq, error: e.clone() },
        };
        if let Some(f) = file.as_mut() {
            let _ = write_line(f, seq, rec);
            seq += 1;
        }
        match result {
            Ok(()) => report.undone.push(p.effect.to_string()),
            Err(e) => report.failed.push(format!("{}: {e}", p.effect)),
        }
        if let Effect::Process { run_id, .. } = &p.effect {
            let spoofed = marker_only(run_id, &p.pids);
            if !spoofed.is_empty() {
                report.notes.push(format!(
                    "pids {spoofed:?} carry {}={run_id} but are not proven ours (not journaled, not descendants of a journaled process): left alone; `chaos cleanup --force` kills them",
                    super::RUN_MARKER_ENV
                ));
            }
        }
    }
    let clean = report.failed.is_empty();
    if clean && let Some(f) = file.as_mut() {
        let _ = write_line(f, seq, Record::Closed);
    }
    drop(file);
    if temp_dirs.is_empty()
        && clean
        && let Some(dir) = header_temp_dir(&parsed, path)
    {
        // The harness died after writing the header but before recording its temp dir (or
        // after `closed` but before removing it): the dir named in the header is ours and
        // holds nothing else that is pending.
        temp_dirs.push(Pending { seq: 0, effect: Effect::TempDir { path: dir }, pids: Vec::new() });
    }
    for p in temp_dirs {
        if !clean {
            report.failed.push(format!(
                "{} kept because other effects could not be undone; its journal {} lists them",
                p.effect,
                path.display()
            ));
            continue;
        }
        match undo(&p.effect, &[], Instant::now() + budget) {
            Ok(()) => report.undone.push(p.effect.to_string()),
            Err(e) => report.failed.push(format!("{}: {e}", p.effect)),
        }
    }
    if report.failed.is_empty() && header_temp_dir(&parsed, path).is_none() {
        // Everything undone and the temp dir gone: the run leaves the registry.
        if let Some(run) = &parsed.run_id {
            super::runs::unregister(run);
        }
    }
    report
}

/// The temp dir named in the journal's header, when it is the directory holding the journal,
/// carries the sandbox prefix and still exists.
fn header_temp_dir(parsed: &Parsed, journal: &Path) -> Option<PathBuf> {
    let dir = parsed.temp_dir.as_ref()?;
    let ours = journal.parent() == Some(dir.as_path())
        && dir.file_name().is_some_and(|n| n.to_string_lossy().starts_with(super::TEMP_PREFIX));
    (ours && dir.is_dir()).then(|| dir.clone())
}

/// Replays the journal of a run whose harness is gone (the reaper's and `chaos cleanup`'s
/// entry point). Refuses while the owner process is alive unless `force` is set.
///
/// ```no_run
/// let report = chaos_harness::sandbox::journal::replay(
///     "/tmp/chaos-harness-6923e0c0-4242-0/journal.jsonl".as_ref(), false).unwrap();
/// println!("{report}");
/// ```
pub fn replay(path: &Path, force: bool) -> Result<TeardownReport, Error> {
    let parsed = Parsed::read(path)?;
    if !force && parsed.owner_alive() {
        let (pid, _) = parsed.owner.unwrap_or_default();
        return Err(Error::Config {
            what: format!("replaying journal {}", path.display()),
            cause: format!("its harness process (pid {pid}) is still running"),
            fix: "let that run finish (its teardown undoes the journal), or pass force to undo it now".into(),
        });
    }
    Ok(replay_file_as(path, Duration::from_secs(5), crate::sandbox::audit::By::Cleanup))
}

/// Journals of runs on this machine: `<temp dir>/chaos-harness-*/journal.jsonl`, plus the
/// journals of registered runs (see [`super::runs`]) whatever their `TMPDIR`.
///
/// ```
/// for j in chaos_harness::sandbox::journal::find_journals() {
///     assert!(j.ends_with("journal.jsonl"));
/// }
/// ```
pub fn find_journals() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(std::env::temp_dir())
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(super::TEMP_PREFIX))
                .map(|e| e.path().join(FILE_NAME))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default();
    // Runs under another TMPDIR, found through the registry (a fixed path).
    for rec in super::runs::all() {
        let j = rec.journal();
        let named = rec.temp_dir.file_name().is_some_and(|n| n.to_string_lossy().starts_with(super::TEMP_PREFIX));
        if named && j.exists() && !found.contains(&j) {
            found.push(j);
        }
    }
    found
}

fn io_ok_if_missing(r: std::io::Result<()>) -> Result<(), String> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// `known` plus every live descendant of a live process in it (by parent pid; a child starts
/// no earlier than its parent), each pinned by its start time.
pub(crate) fn with_descendants(known: &[(i32, u64)]) -> Vec<(i32, u64)> {
    let mut out: Vec<(i32, u64)> = known.to_vec();
    let live: Vec<procfs::Stat> = procfs::all_pids().into_iter().filter_map(procfs::stat).collect();
    loop {
        let before = out.len();
        for s in &live {
            if s.is_dead() || out.iter().any(|&(p, st)| p == s.pid && st == s.start_time) {
                continue;
            }
            let parent_ours = out.iter().any(|&(p, st)| {
                p == s.ppid && st <= s.start_time && live.iter().any(|l| l.pid == p && l.start_time == st)
            });
            if parent_ours && owner::forbidden(s.pid).is_none() {
                out.push((s.pid, s.start_time));
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// Live processes carrying the run marker of `run_id` that are not among `proven`: reported,
/// never killed without proof.
pub(crate) fn marker_only(run_id: &str, proven: &[(i32, u64)]) -> Vec<i32> {
    procfs::marked_pids(run_id)
        .into_iter()
        .filter(|&p| procfs::start_time(p).is_some_and(|st| !proven.contains(&(p, st))))
        .collect()
}

fn kill_exact(pid: i32, start_time: u64) {
    let owned = OwnedPid { pid, start_time, fixture: String::new() };
    let _ = owner::signal_checked(&owned, Signal::SIGKILL, |_| true);
}

/// Undoes one effect from journal data alone, and verifies the undo.
pub(crate) fn undo(effect: &Effect, pids: &[(i32, u64)], deadline: Instant) -> Result<(), String> {
    match effect {
        Effect::Plugin { plugin, data } => undo_plugin(plugin, data),
        Effect::TempDir { path } => io_ok_if_missing(std::fs::remove_dir_all(path)),
        Effect::CgroupParent { mount, .. } => {
            cgroup::remove_parent_if_unused(mount);
            Ok(())
        }
        Effect::Cgroup { cgroup: cg } => {
            cgroup::remove(cg, deadline)?;
            if cg.dir().exists() { Err(format!("{} still exists", cg.dir().display())) } else { Ok(()) }
        }
        Effect::Process { .. } => {
            // Only what is proven ours is killed: the recorded pids (pid + start time) and their
            // descendants (found by parent pid while the ancestor lives, then pinned by start
            // time). A process that merely carries the run marker is not proof: anybody can set
            // an environment variable. `replay_file_as` reports such processes.
            let mut known: Vec<(i32, u64)> = pids.to_vec();
            loop {
                known = with_descendants(&known);
                for &(pid, st) in &known {
                    kill_exact(pid, st);
                }
                let left: Vec<i32> = known.iter().filter(|(p, s)| !procfs::is_gone(*p, *s)).map(|p| p.0).collect();
                if left.is_empty() {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    return Err(format!("pids {left:?} survived SIGKILL"));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        Effect::Frozen { cgroup: cg } => {
            if !cg.dir().exists() {
                return Ok(());
            }
            cgroup::set_frozen(
                cg,
                false,
                deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(200)),
            )
            .map_err(|e| e.to_string())
        }
        Effect::Stopped { pid, start_time } => {
            let owned = OwnedPid { pid: *pid, start_time: *start_time, fixture: String::new() };
            owner::signal_checked(&owned, Signal::SIGCONT, |_| true).map(|_| ())
        }
        Effect::CgroupLimit { dir, file, previous } => {
            if !dir.exists() {
                return Ok(());
            }
            let p = dir.join(file);
            cgroup::write_ctl(&p, previous).map_err(|e| format!("write {}: {e}", p.display()))?;
            let now = std::fs::read_to_string(&p).map_err(|e| e.to_string())?;
            if now.trim() == previous.trim() {
                Ok(())
            } else {
                Err(format!("{} reads {} after restoring {}", p.display(), now.trim(), previous.trim()))
            }
        }
        Effect::Rlimit { pid, start_time, resource, soft, hard } => {
            // Every call through a pidfd-checked sequence: never a reused pid.
            let want = owner::Limit { soft: *soft, hard: *hard };
            let prl =
                |new| owner::prlimit_checked(*pid, *start_time, *resource, new).map_err(|e| format!("prlimit: {e}"));
            if prl(Some(want))?.is_none() {
                return Ok(());
            }
            match prl(None)? {
                Some(now) if now != want => {
                    Err(format!("rlimit reads {}/{} after restoring {soft}/{hard}", now.soft, now.hard))
                }
                _ => Ok(()),
            }
        }
        Effect::Mount { target } => {
            match nix::mount::umount2(target.as_path(), nix::mount::MntFlags::MNT_DETACH) {
                Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
                Err(e) => return Err(format!("umount {}: {e}", target.display())),
            }
            let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
            let t = target.to_string_lossy();
            if mounts.lines().any(|l| l.split_whitespace().nth(1) == Some(&*t)) {
                Err(format!("{} is still mounted", target.display()))
            } else {
                Ok(())
            }
        }
        Effect::File { path } => io_ok_if_missing(std::fs::remove_file(path)),
        Effect::Netns { name } => {
            if !Path::new("/run/netns").join(name).exists() {
                return Ok(());
            }
            run_tool("ip", &["netns", "delete", name])
        }
        Effect::ToxiproxyProxy { url, name } => {
            let path = format!("/proxies/{name}");
            match toxiproxy_request(url, "DELETE", &path)? {
                200..=299 | 404 => {}
                other => return Err(format!("DELETE {path} on {url} answered {other}")),
            }
            match toxiproxy_request(url, "GET", &path)? {
                404 => Ok(()),
                other => Err(format!("GET {path} on {url} answered {other} after the delete")),
            }
        }
        Effect::NftTable { family, name, netns } => {
            let mut args: Vec<&str> = Vec::new();
            if let Some(ns) = netns {
                if !Path::new("/run/netns").join(ns).exists() {
                    return Ok(());
                }
                args.extend(["ip", "netns", "exec", ns.as_str()]);
            }
            args.extend(["nft", "delete", "table", family.as_str(), name.as_str()]);
            match run_tool(args[0], &args[1..]) {
                Err(e) if e.contains("No such file") => Ok(()),
                r => r,
            }
        }
    }
}

/// One blocking HTTP/1.1 request without a body to a Toxiproxy server (`http://host:port`);
/// returns the status code. Safe anywhere (the reaper has no async runtime); 2 s timeouts.
///
/// ```
/// // Nothing listens on port 1 of loopback: an error naming the address.
/// let e = chaos_harness::sandbox::journal::toxiproxy_request("http://127.0.0.1:1", "GET", "/version").unwrap_err();
/// assert!(e.contains("127.0.0.1:1"), "{e}");
/// ```
pub fn toxiproxy_request(url: &str, method: &str, path: &str) -> Result<u16, String> {
    use std::io::Read;
    use std::net::ToSocketAddrs;
    let hostport = url.strip_prefix("http://").unwrap_or(url).trim_end_matches('/');
    let addr = hostport
        .to_socket_addrs()
        .map_err(|e| format!("Toxiproxy URL {url}: {e}"))?
        .next()
        .ok_or_else(|| format!("Toxiproxy URL {url} resolves to nothing"))?;
    let t = Duration::from_secs(2);
    let mut s = std::net::TcpStream::connect_timeout(&addr, t).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(t)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(t)).map_err(|e| e.to_string())?;
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    s.write_all(req.as_bytes()).map_err(|e| format!("{method} {path} on {addr}: {e}"))?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).map_err(|e| format!("reading the reply of {addr}: {e}"))?;
    String::from_utf8_lossy(&head[9..12]).parse().map_err(|_| format!("{addr} answered no HTTP status"))
}

fn run_tool(program: &str, args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Reads the journal lines of a file (for tests and the reaper's audit).
///
/// ```
/// assert!(chaos_harness::sandbox::journal::read_lines("/nonexistent".as_ref()).is_err());
/// ```
pub fn read_lines(path: &Path) -> std::io::Result<Vec<Line>> {
    let f = File::open(path)?;
    Ok(std::io::BufReader::new(f).lines().map_while(Result::ok).filter_map(|l| serde_json::from_str(&l).ok()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sandbox-named dir in the system temp dir, as `Sandbox::new` makes it.
    fn sandbox_named_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("{}unit-{tag}-{}", super::super::TEMP_PREFIX, std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn header_only_journal_replay_removes_its_temp_dir() {
        // The harness died between writing the header and recording its temp dir (a SIGINT in
        // the first milliseconds): the replay must still remove the dir named in the header.
        let dir = sandbox_named_dir("header-only");
        let path = dir.join(FILE_NAME);
        drop(Journal::create(&path, "r-header-only", "t", &dir).unwrap());
        let report = replay_file_as(&path, Duration::from_secs(1), crate::sandbox::audit::By::Sweep);
        assert!(report.is_clean(), "{report}");
        assert!(!dir.exists(), "{} was left behind", dir.display());
    }

    #[test]
    fn closed_journal_whose_dir_survived_is_removed_once() {
        // The harness died after `closed` but before removing the dir: one more sweep removes it
        // instead of appending another `closed` line forever.
        let dir = sandbox_named_dir("closed");
        let path = dir.join(FILE_NAME);
        drop(Journal::create(&path, "r-closed", "t", &dir).unwrap());
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        write_line(&mut f, 1, Record::Closed).unwrap();
        drop(f);
        assert!(Parsed::read(&path).unwrap().closed);
        let report = replay_file_as(&path, Duration::from_secs(1), crate::sandbox::audit::By::Sweep);
        assert!(report.is_clean(), "{report}");
        assert!(!dir.exists(), "{} was left behind", dir.display());
    }

    #[test]
    fn replay_never_removes_a_dir_that_is_not_the_journals_own() {
        let other = tempfile::tempdir().unwrap();
        let dir = sandbox_named_dir("foreign");
        let path = dir.join(FILE_NAME);
        // A header naming some other directory: not removed.
        drop(Journal::create(&path, "r-foreign", "t", other.path()).unwrap());
        let report = replay_file_as(&path, Duration::from_secs(1), crate::sandbox::audit::By::Sweep);
        assert!(report.is_clean(), "{report}");
        assert!(other.path().exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn record_undo_roundtrip_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let j = Journal::create(&path, "r1", "t", dir.path()).unwrap();
        let f1 = dir.path().join("a");
        let f2 = dir.path().join("b");
        let (_, s1) = j
            .record(Effect::File { path: f1.clone() }, || {
                std::fs::write(&f1, "x").unwrap();
                Ok(())
            })
            .unwrap();
        j.record(Effect::File { path: f2.clone() }, || {
            std::fs::write(&f2, "y").unwrap();
            Ok(())
        })
        .unwrap();
        j.undone(s1).unwrap();
        std::fs::remove_file(&f1).unwrap();
        let parsed = Parsed::read(&path).unwrap();
        assert_eq!(parsed.pending.len(), 1);
        assert!(parsed.owner_alive());
        let report = j.close_and_undo(Duration::from_secs(1));
        assert!(report.is_clean(), "{report}");
        assert!(!f2.exists());
        assert!(j.record(Effect::File { path: f1.clone() }, || Ok(())).is_err());
        let lines = read_lines(&path).unwrap();
        assert!(matches!(lines.last().unwrap().record, Record::Closed));
        // Idempotent.
        assert!(j.close_and_undo(Duration::from_secs(1)).undone.is_empty());
    }

    #[test]
    fn every_effect_kind_roundtrips() {
        let cg = CgroupRef { controller: "pids".into(), mount: "/m".into(), rel: "/chaos-harness/x".into() };
        let effects = vec![
            Effect::TempDir { path: "/t".into() },
            Effect::CgroupParent { controller: "".into(), mount: "/m".into() },
            Effect::Cgroup { cgroup: cg.clone() },
            Effect::Process { fixture: "f".into(), run_id: "r".into(), program: "p".into() },
            Effect::Frozen { cgroup: cg },
            Effect::Stopped { pid: 5, start_time: 6 },
            Effect::CgroupLimit { dir: "/d".into(), file: "memory.limit_in_bytes".into(), previous: "max".into() },
            Effect::Rlimit { pid: 5, start_time: 6, resource: 7, soft: 1024, hard: u64::MAX },
            Effect::Mount { target: "/mnt".into() },
            Effect::File { path: "/f".into() },
            Effect::Netns { name: "chaos-a".into() },
            Effect::NftTable { family: "inet".into(), name: "chaos_a".into(), netns: Some("chaos-a".into()) },
            Effect::ToxiproxyProxy { url: "http://127.0.0.1:8474".into(), name: "chaos-r-db".into() },
        ];
        for e in effects {
            let line = Line { seq: 3, at_ms: 9, record: Record::Do { effect: e.clone() } };
            let s = serde_json::to_string(&line).unwrap();
            assert!(!s.contains('\n'));
            assert_eq!(serde_json::from_str::<Line>(&s).unwrap(), line, "{s}");
        }
    }

    #[test]
    fn rlimit_undo_restores_the_exact_previous_values() {
        let me = std::process::id() as i32;
        let st = procfs::start_time(me).unwrap();
        let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: reading our own limit into a valid pointer.
        assert_eq!(unsafe { libc::prlimit(me, libc::RLIMIT_NOFILE, std::ptr::null(), &mut old) }, 0);
        let lower = libc::rlimit { rlim_cur: old.rlim_cur - 1, rlim_max: old.rlim_max };
        // SAFETY: lowering our own soft limit by one.
        assert_eq!(unsafe { libc::prlimit(me, libc::RLIMIT_NOFILE, &lower, std::ptr::null_mut()) }, 0);
        let e = Effect::Rlimit {
            pid: me,
            start_time: st,
            resource: libc::RLIMIT_NOFILE as i32,
            soft: old.rlim_cur,
            hard: old.rlim_max,
        };
        undo(&e, &[], Instant::now() + Duration::from_secs(1)).unwrap();
        let mut now = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::prlimit(me, libc::RLIMIT_NOFILE, std::ptr::null(), &mut now) }, 0);
        assert_eq!((now.rlim_cur, now.rlim_max), (old.rlim_cur, old.rlim_max));
    }

    #[test]
    fn cgroup_limit_undo_writes_back_and_reads_back() {
        let sb = crate::sandbox::Sandbox::new("unit::cgroup_limit").unwrap();
        let scope = sb.scope("lim").unwrap();
        let Some(cg) = scope.cgroup("pids").cloned() else {
            eprintln!("skipped: no pids cgroup (not root?)");
            drop(scope);
            sb.teardown().unwrap();
            return;
        };
        let file = cg.dir().join("pids.max");
        let previous = std::fs::read_to_string(&file).unwrap().trim().to_string();
        let effect = Effect::CgroupLimit { dir: cg.dir(), file: "pids.max".into(), previous: previous.clone() };
        sb.record(effect.clone(), || {
            cgroup::write_ctl(&file, "50").unwrap();
            Ok(())
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), "50");
        undo(&effect, &[], Instant::now() + Duration::from_secs(1)).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), previous);
        drop(scope);
        assert!(sb.teardown().unwrap().is_clean());
    }

    #[test]
    fn unreadable_middle_line_is_reported_not_dropped() {
        let p = Parsed::parse("{\"seq\":0,\"at_ms\":0,\"op\":\"bogus\"}\n{\"seq\":1,\"at_ms\":0,\"op\":\"closed\"}\n");
        assert_eq!(p.unreadable.len(), 1);
        assert!(p.closed);
        assert!(!p.torn_tail);
    }
}
