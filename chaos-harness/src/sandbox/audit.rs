//! The audit log: one JSON line per fault event (injected, cleared, undone by teardown, the
//! reaper or a cleanup, planned by a dry run), with when, what, target, parameters,
//! confirmation and undo result.
//!
//! # Where
//!
//! `CHAOS_AUDIT_LOG=/path/audit.jsonl` names the file; `CHAOS_AUDIT_LOG=off` disables the log.
//! By default it is `<cargo target dir>/chaos-audit.jsonl`, the target dir being the nearest
//! ancestor of the running executable that holds cargo's `CACHEDIR.TAG` (so `cargo test` runs
//! of one checkout share one log, and `cargo clean` removes it); outside a cargo target dir it
//! is `<system temp dir>/chaos-audit.jsonl`. Not inside the sandbox: that is removed at
//! teardown, and the log must outlive the run (and the reaper writes to it after a crash).
//!
//! Lines are appended with `O_APPEND` in one `write(2)` each, so concurrent tests, the reaper
//! and `chaos cleanup` can share the file, and a crash of any of them loses nothing (the page
//! cache outlives the process). Lines are not `fsync`ed: a machine crash may lose the last ones.
//!
//! ```text
//! {"at":"2026-05-02T12:00:00.123Z","at_ms":1777723200123,"event":"inject","by":"harness","pid":4242,"run_id":"6a1-4242-0","test":"process::freeze","what":"freeze the cgroup of web","target":"web","parameters":null,"confirmation":"freezer.state: FROZEN read back from ... (3 processes frozen)"}
//! {"at":"2026-05-02T12:00:02.456Z","at_ms":1777723202456,"event":"clear","by":"harness","pid":4242,"run_id":"6a1-4242-0","test":"process::freeze","what":"freeze the cgroup of web","target":"web","parameters":null,"confirmation":"thaw the cgroup of web: freezer.state: THAWED read back","undo":"ok"}
//! {"at":"2026-05-02T12:00:03.001Z","at_ms":1777723203001,"event":"undo","by":"reaper","pid":4250,"run_id":"6a1-4242-1","test":"net::partition","what":"network namespace chaos-a","target":"chaos-a","parameters":{"kind":"netns","name":"chaos-a"},"undo":"ok"}
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::sandbox::Effect;

/// Environment variable naming the audit log (`off` disables it).
pub const AUDIT_ENV: &str = "CHAOS_AUDIT_LOG";

/// The default file name (in the cargo target dir, else the system temp dir).
pub const DEFAULT_FILE_NAME: &str = "chaos-audit.jsonl";

/// Who acted.
///
/// ```
/// use chaos_harness::sandbox::audit::By;
/// assert_eq!(serde_json::to_string(&By::Reaper).unwrap(), r#""reaper""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum By {
    /// The test (a scenario or a direct `Fault::inject`).
    Harness,
    /// The runner's teardown of a test's sandbox (journal replay).
    Teardown,
    /// The crash reaper of a harness that died.
    Reaper,
    /// A reaper's sweep of stale runs left by earlier crashes.
    Sweep,
    /// `chaos cleanup` or [`crate::sandbox::journal::replay`].
    Cleanup,
    /// The SIGINT/SIGTERM handler.
    Interrupt,
}

/// What happened.
///
/// ```
/// use chaos_harness::sandbox::audit::Event;
/// assert_eq!(serde_json::to_string(&Event::Inject).unwrap(), r#""inject""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A fault was injected (or failed to be: then `confirmation` holds the error).
    Inject,
    /// A fault was cleared by its scenario; `undo` holds the result.
    Clear,
    /// A journaled effect was undone from the journal; `undo` holds the result.
    Undo,
    /// A dry run planned this effect and did not perform it.
    Planned,
    /// A guard aborted a scenario.
    Guard,
    /// A run was interrupted (SIGINT/SIGTERM).
    Interrupt,
    /// A note of the reaper (what it swept or undid).
    Reaper,
}

/// One audit line.
///
/// ```
/// use chaos_harness::sandbox::audit::{AuditEntry, By, Event};
/// let e = AuditEntry::new(Event::Inject, By::Harness, "kill main of web").target("pid 42");
/// let line = serde_json::to_string(&e).unwrap();
/// let back: AuditEntry = serde_json::from_str(&line).unwrap();
/// assert_eq!(back, e);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When, RFC 3339 in UTC with milliseconds.
    pub at: String,
    /// When, unix milliseconds.
    pub at_ms: u64,
    /// What happened.
    pub event: Event,
    /// Who acted.
    pub by: By,
    /// The process that wrote the line.
    pub pid: u32,
    /// The run id.
    #[serde(default)]
    pub run_id: String,
    /// The test.
    #[serde(default)]
    pub test: String,
    /// The fault or effect, described.
    pub what: String,
    /// Its target (fixture, pid, cgroup, namespace, path).
    #[serde(default)]
    pub target: String,
    /// Its parameters (for journaled effects: the journal's effect record).
    #[serde(default)]
    pub parameters: serde_json::Value,
    /// The proof it took effect (or the reason it did not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<String>,
    /// The undo result: `ok` or `failed: <reason>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<String>,
}

impl AuditEntry {
    /// A new entry stamped now, by this process.
    pub fn new(event: Event, by: By, what: impl Into<String>) -> Self {
        let now = SystemTime::now();
        Self {
            at: humantime::format_rfc3339_millis(now).to_string(),
            at_ms: now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
            event,
            by,
            pid: std::process::id(),
            run_id: String::new(),
            test: String::new(),
            what: what.into(),
            target: String::new(),
            parameters: serde_json::Value::Null,
            confirmation: None,
            undo: None,
        }
    }

    /// Sets the run id and test.
    pub fn run(mut self, run_id: &str, test: &str) -> Self {
        self.run_id = run_id.to_string();
        self.test = test.to_string();
        self
    }

    /// Sets the target.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = target.into();
        self
    }

    /// Sets the parameters.
    pub fn parameters(mut self, p: serde_json::Value) -> Self {
        self.parameters = p;
        self
    }

    /// Sets the confirmation.
    pub fn confirmation(mut self, c: impl Into<String>) -> Self {
        self.confirmation = Some(c.into());
        self
    }

    /// Sets the undo result from a `Result`.
    pub fn undo_result<E: std::fmt::Display>(mut self, r: &Result<(), E>) -> Self {
        self.undo = Some(match r {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("failed: {e}"),
        });
        self
    }
}

/// The audit log's path: `CHAOS_AUDIT_LOG`, else [`default_path`]; `None` when
/// `CHAOS_AUDIT_LOG=off`.
///
/// ```
/// if let Some(p) = chaos_harness::sandbox::audit::path() {
///     assert!(p.is_absolute() || std::env::var_os("CHAOS_AUDIT_LOG").is_some());
/// }
/// ```
pub fn path() -> Option<PathBuf> {
    match std::env::var_os(AUDIT_ENV) {
        Some(v) if matches!(v.to_str().map(str::trim), Some("off" | "0" | "false" | "no")) => None,
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => Some(default_path()),
    }
}

/// `<cargo target dir>/chaos-audit.jsonl`: the nearest ancestor of the executable holding
/// `CACHEDIR.TAG`; for programs cargo runs from elsewhere (doctests run from a temp dir),
/// `$CARGO_TARGET_DIR` or the `target/` dir above `$CARGO_MANIFEST_DIR`; else
/// `<system temp dir>/chaos-audit.jsonl`.
///
/// ```
/// assert!(chaos_harness::sandbox::audit::default_path().ends_with("chaos-audit.jsonl"));
/// ```
pub fn default_path() -> PathBuf {
    let is_target = |d: &Path| d.join("CACHEDIR.TAG").is_file();
    let exe = std::env::current_exe().ok();
    let from_exe = exe.as_deref().and_then(|e| e.ancestors().skip(1).find(|d| is_target(d)).map(Path::to_path_buf));
    let from_cargo = || {
        let explicit = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).filter(|d| is_target(d));
        explicit.or_else(|| {
            let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
            manifest.ancestors().map(|d| d.join("target")).find(|d| is_target(d))
        })
    };
    from_exe
        .or_else(from_cargo)
        .map(|d| d.join(DEFAULT_FILE_NAME))
        .unwrap_or_else(|| std::env::temp_dir().join(DEFAULT_FILE_NAME))
}

/// Appends one entry to `path` (one `write(2)`).
///
/// ```
/// use chaos_harness::sandbox::audit::{append_to, read, AuditEntry, By, Event};
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("audit.jsonl");
/// append_to(&p, &AuditEntry::new(Event::Inject, By::Harness, "x")).unwrap();
/// assert_eq!(read(&p).unwrap().0.len(), 1);
/// ```
pub fn append_to(path: &Path, entry: &AuditEntry) -> Result<(), Error> {
    let io = |source: std::io::Error| Error::Io {
        what: "appending to the audit log".into(),
        path: path.to_path_buf(),
        source,
        fix: format!(
            "make the directory writable, or point {AUDIT_ENV} at a writable file ({AUDIT_ENV}=off disables the log)"
        ),
    };
    let mut line = serde_json::to_string(entry).map_err(|e| io(std::io::Error::other(e)))?;
    line.push('\n');
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
    // One write(2) with O_APPEND: whole lines, in the page cache at once; no fsync (see the
    // journal's durability notes: only a machine crash loses unsynced lines).
    f.write_all(line.as_bytes()).map_err(io)
}

/// Appends to the configured log; failures are logged once (a broken audit log must not fail
/// the undo it records).
///
/// ```
/// use chaos_harness::sandbox::audit::{write, AuditEntry, By, Event};
/// write(AuditEntry::new(Event::Reaper, By::Cleanup, "doc example"));
/// ```
pub fn write(entry: AuditEntry) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let Some(p) = path() else { return };
    if let Err(e) = append_to(&p, &entry)
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!("{e}");
    }
}

/// Parses audit log text: the entries, and the lines that are not entries (with line numbers).
///
/// ```
/// let (ok, bad) = chaos_harness::sandbox::audit::parse("not json\n");
/// assert!(ok.is_empty());
/// assert_eq!(bad.len(), 1);
/// ```
pub fn parse(text: &str) -> (Vec<AuditEntry>, Vec<String>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<AuditEntry>(line) {
            Ok(e) => ok.push(e),
            Err(e) => bad.push(format!("line {}: {e}", i + 1)),
        }
    }
    (ok, bad)
}

/// Reads an audit log file (see [`parse`]).
pub fn read(path: &Path) -> Result<(Vec<AuditEntry>, Vec<String>), Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        what: "reading the audit log".into(),
        path: path.to_path_buf(),
        source,
        fix: format!("check the path ({AUDIT_ENV}, default <target dir>/{DEFAULT_FILE_NAME})"),
    })?;
    Ok(parse(&text))
}

/// Whether an effect is a fault (audited) rather than bookkeeping (temp dir, cgroups,
/// processes of fixtures).
fn is_fault(effect: &Effect) -> bool {
    !matches!(
        effect,
        Effect::TempDir { .. }
            | Effect::CgroupParent { .. }
            | Effect::Cgroup { .. }
            | Effect::Process { .. }
            | Effect::ToxiproxyProxy { .. }
    )
}

/// The target of an effect, for the `target` field.
pub(crate) fn effect_target(effect: &Effect) -> String {
    match effect {
        Effect::TempDir { path } | Effect::File { path } => path.display().to_string(),
        Effect::CgroupParent { mount, .. } => mount.display().to_string(),
        Effect::Cgroup { cgroup } | Effect::Frozen { cgroup } => cgroup.dir().display().to_string(),
        Effect::Process { fixture, .. } => fixture.clone(),
        Effect::Stopped { pid, .. } | Effect::Rlimit { pid, .. } => format!("pid {pid}"),
        Effect::CgroupLimit { dir, file, .. } => dir.join(file).display().to_string(),
        Effect::Mount { target } => target.display().to_string(),
        Effect::Netns { name } => name.clone(),
        Effect::NftTable { family, name, netns } => match netns {
            Some(ns) => format!("{family} {name} in netns {ns}"),
            None => format!("{family} {name}"),
        },
        Effect::ToxiproxyProxy { url, name } => format!("{name} on {url}"),
        Effect::Plugin { plugin, data } => format!("{plugin} {data}"),
    }
}

fn effect_entry(event: Event, by: By, run_id: &str, test: &str, effect: &Effect) -> AuditEntry {
    AuditEntry::new(event, by, effect.to_string())
        .run(run_id, test)
        .target(effect_target(effect))
        .parameters(serde_json::to_value(effect).unwrap_or_default())
}

/// Audits the undo of a journaled fault effect (bookkeeping effects are not audited).
pub(crate) fn record_undo(run_id: &str, test: &str, effect: &Effect, result: &Result<(), String>, by: By) {
    if is_fault(effect) {
        write(effect_entry(Event::Undo, by, run_id, test, effect).undo_result(result));
    }
}

/// Audits an effect a dry run planned.
pub(crate) fn record_planned(run_id: &str, test: &str, effect: &Effect) {
    write(effect_entry(Event::Planned, By::Harness, run_id, test, effect));
}

/// A free-form note of the reaper.
pub(crate) fn reaper_note(text: &str) {
    write(AuditEntry::new(Event::Reaper, By::Reaper, text));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_roundtrip_and_bad_lines_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/audit.jsonl");
        let e = effect_entry(Event::Undo, By::Reaper, "r", "t", &Effect::Netns { name: "chaos-x".into() })
            .undo_result(&Ok::<(), String>(()));
        append_to(&p, &e).unwrap();
        std::fs::OpenOptions::new().append(true).open(&p).unwrap().write_all(b"{torn\n").unwrap();
        let (ok, bad) = read(&p).unwrap();
        assert_eq!(ok, vec![e]);
        assert_eq!(ok[0].target, "chaos-x");
        assert_eq!(ok[0].undo.as_deref(), Some("ok"));
        assert_eq!(ok[0].parameters["kind"], "netns");
        assert_eq!(bad.len(), 1);
        assert!(bad[0].starts_with("line 2"));
    }

    #[test]
    fn bookkeeping_is_not_a_fault() {
        assert!(!is_fault(&Effect::TempDir { path: "/t".into() }));
        assert!(is_fault(&Effect::Mount { target: "/m".into() }));
    }
}
