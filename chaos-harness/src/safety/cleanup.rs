//! Emergency cleanup (`chaos cleanup`): undo everything earlier runs journaled, then sweep what
//! matches the naming rules but no live run owns.
//!
//! 1. **Snapshot strays** first: cgroups under `<mount>/chaos-harness/` in every hierarchy,
//!    network namespaces `chaos-*`, nft tables `chaos_*` (root namespace), temp dirs
//!    `chaos-harness-*` (and mounts inside them), processes carrying `CHAOS_HARNESS_RUN`.
//! 2. **Journals**: every `<temp dir>/chaos-harness-*/journal.jsonl` whose owner is dead (any,
//!    with `force`) is replayed under the journal's lock ([`replay_locked`]): cgroups killed and
//!    removed, faults healed (thaw, SIGCONT, rlimits and cgroup limits restored, unmounts,
//!    netns and nft tables deleted, fill files removed), temp dir removed last. A live owner's
//!    journal is kept and reported.
//! 3. **Strays** from the snapshot are removed only with **proof** that they are the harness's:
//!    a cgroup, namespace or nft table whose name carries, as a whole token, the id of a known
//!    run (in the run registry [`crate::sandbox::runs`] or named by a journal) whose harness is
//!    dead; a temp dir whose owner file names it (or one left empty by a harness that died
//!    creating it). Things of a live run (registered with a live owner, whatever its `TMPDIR`,
//!    or pending in a live journal) are never touched without `force`. Everything else that
//!    merely looks like ours (`chaos-userns`, `chaos_user`, `chaos-harness-userdata/`,
//!    `pids/chaos-harness/userjob`) is reported as kept. A process carrying the run marker is
//!    reported, not killed, unless `force` (the marker can be set by anyone); cgroup members
//!    die with their cgroup, which is thawed before the kill. Each removal has its own
//!    deadline. Taking the snapshot *before* reading the journals makes this race-free:
//!    anything a live run created before the snapshot was journaled before it was created, so
//!    its journal (read later) lists it.
//!
//! Idempotent: a second run finds nothing. `dry_run` reports without touching anything;
//! `matching` limits everything to names (run ids, tests, resources) containing a substring.
//!
//! ```no_run
//! use chaos_harness::safety::cleanup::{cleanup, CleanupOptions};
//! let report = cleanup(&CleanupOptions::default());
//! println!("{report}");
//! assert!(report.is_clean());
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::sandbox::audit::By;
use crate::sandbox::cgroup::{self, CgroupRef};
use crate::sandbox::journal::{self, Effect, Parsed};
use crate::sandbox::owner::PidFd;
use crate::sandbox::reaper::{ReplayOutcome, replay_locked};
use crate::sandbox::{RUN_MARKER_ENV, TEMP_PREFIX, procfs, runs};

/// A temp dir without a journal whose run's pid is alive is left alone this long after its
/// last change (it may be a sandbox being created right now).
const FRESH: Duration = Duration::from_secs(10);

/// How long one stray's removal may take (each has its own deadline).
const ITEM_BUDGET: Duration = Duration::from_secs(5);

/// What [`cleanup`] does.
///
/// ```
/// let o = chaos_harness::safety::cleanup::CleanupOptions::default();
/// assert!(!o.force && !o.dry_run && o.strays && o.matching.is_none());
/// ```
#[derive(Debug, Clone)]
pub struct CleanupOptions {
    /// Also undo runs whose harness is still alive, and kill processes carrying the run marker
    /// without other proof (reported, not killed, by default).
    pub force: bool,
    /// Report only; change nothing.
    pub dry_run: bool,
    /// Only touch things whose name (run id, test, resource) contains this.
    pub matching: Option<String>,
    /// Sweep strays by name (not only journals).
    pub strays: bool,
}

impl Default for CleanupOptions {
    fn default() -> Self {
        Self { force: false, dry_run: false, matching: None, strays: true }
    }
}

/// One thing cleanup did (or would do, or could not do).
///
/// ```
/// let a = chaos_harness::safety::cleanup::Action { what: "network namespace chaos-x".into(), source: "stray".into(), result: "removed".into() };
/// assert_eq!(a.to_string(), "removed network namespace chaos-x (stray)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    /// The thing.
    pub what: String,
    /// Where it was found: `journal <path>` or `stray`.
    pub source: String,
    /// `removed`, `undone`, `would remove`, `kept: <why>` or `failed: <why>`.
    pub result: String,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.result.split_once(": ") {
            Some((verb @ ("kept" | "failed"), why)) => write!(f, "{verb} {}: {why} ({})", self.what, self.source),
            _ => write!(f, "{} {} ({})", self.result, self.what, self.source),
        }
    }
}

/// What [`cleanup`] found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CleanupReport {
    /// Everything, in the order it happened.
    pub actions: Vec<Action>,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

impl CleanupReport {
    /// No failures (kept live runs are not failures).
    pub fn is_clean(&self) -> bool {
        !self.actions.iter().any(|a| a.result.starts_with("failed"))
    }

    /// How many things were removed or undone.
    pub fn removed(&self) -> usize {
        self.actions.iter().filter(|a| a.result == "removed" || a.result == "undone").count()
    }

    fn push(&mut self, what: impl Into<String>, source: impl Into<String>, result: impl Into<String>) {
        self.actions.push(Action { what: what.into(), source: source.into(), result: result.into() });
    }
}

impl std::fmt::Display for CleanupReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.actions.is_empty() {
            return write!(f, "chaos cleanup: nothing to clean");
        }
        let failed = self.actions.iter().filter(|a| a.result.starts_with("failed")).count();
        let kept = self.actions.iter().filter(|a| a.result.starts_with("kept")).count();
        if self.dry_run {
            write!(f, "chaos cleanup (dry run): {} thing(s) would be removed", self.actions.len() - kept)?;
        } else {
            write!(f, "chaos cleanup: {} removed, {failed} failed, {kept} kept", self.removed())?;
        }
        for a in &self.actions {
            write!(f, "\n  {a}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Strays {
    cgroups: Vec<CgroupRef>,
    netns: Vec<String>,
    nft: Vec<(String, String)>,
    temp_dirs: Vec<PathBuf>,
    mounts: Vec<PathBuf>,
    processes: Vec<(i32, String)>,
}

/// Network namespaces named `chaos-*` (from `/run/netns`).
///
/// ```
/// assert!(chaos_harness::safety::cleanup::chaos_netns().iter().all(|n| n.starts_with("chaos-")));
/// ```
pub fn chaos_netns() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("chaos-"))
                .collect()
        })
        .unwrap_or_default()
}

/// nft tables named `chaos_*` in the root network namespace, as `(family, name)`; empty when
/// `nft` is missing.
///
/// ```
/// assert!(chaos_harness::safety::cleanup::chaos_nft_tables().iter().all(|(_, n)| n.starts_with("chaos_")));
/// ```
pub fn chaos_nft_tables() -> Vec<(String, String)> {
    let Ok(out) =
        std::process::Command::new("nft").args(["list", "tables"]).stdin(std::process::Stdio::null()).output()
    else {
        return Vec::new();
    };
    parse_nft_tables(&String::from_utf8_lossy(&out.stdout))
}

/// Parses `nft list tables` output into the `chaos_*` tables.
///
/// ```
/// let t = chaos_harness::safety::cleanup::parse_nft_tables("table inet filter\ntable inet chaos_a1\ntable ip chaos_b\n");
/// assert_eq!(t, vec![("inet".to_string(), "chaos_a1".to_string()), ("ip".to_string(), "chaos_b".to_string())]);
/// ```
pub fn parse_nft_tables(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "table").then_some(())?;
            let family = w.next()?;
            let name = w.next()?;
            name.starts_with("chaos_").then(|| (family.to_string(), name.to_string()))
        })
        .collect()
}

/// Mount points at or under `dir` (from `/proc/self/mounts`; octal escapes decoded).
///
/// ```
/// assert!(chaos_harness::safety::cleanup::mounts_under("/nonexistent-dir".as_ref()).is_empty());
/// ```
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|m| PathBuf::from(unescape_mount(m)))
        .filter(|m| m.starts_with(dir))
        .collect()
}

fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of `CHAOS_HARNESS_RUN` in a process's environment.
fn marker_of(pid: i32) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{RUN_MARKER_ENV}=");
    env.split(|b| *b == 0)
        .find_map(|e| e.strip_prefix(prefix.as_bytes()).map(|v| String::from_utf8_lossy(v).into_owned()))
}

fn snapshot() -> Strays {
    let mut s = Strays::default();
    for h in cgroup::hierarchies() {
        let Ok(dir) = std::fs::read_dir(h.mount.join(cgroup::PARENT)) else { continue };
        for e in dir.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                s.cgroups.push(CgroupRef {
                    controller: h.controller.clone(),
                    mount: h.mount.clone(),
                    rel: format!("/{}/{}", cgroup::PARENT, e.file_name().to_string_lossy()),
                });
            }
        }
    }
    s.netns = chaos_netns();
    s.nft = chaos_nft_tables();
    if let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) {
        for e in dir.flatten() {
            if e.file_name().to_string_lossy().starts_with(TEMP_PREFIX) && e.file_type().is_ok_and(|t| t.is_dir()) {
                s.mounts.extend(mounts_under(&e.path()));
                s.temp_dirs.push(e.path());
            }
        }
    }
    let me = std::process::id() as i32;
    for pid in procfs::all_pids() {
        if pid <= 1 || pid == me {
            continue;
        }
        if let Some(run) = marker_of(pid)
            && procfs::stat(pid).is_some_and(|st| !st.is_dead())
        {
            s.processes.push((pid, run));
        }
    }
    s
}

/// The pid inside a run id `<secs hex>-<pid>-<n>`.
fn run_pid(run_id: &str) -> Option<i32> {
    run_id.split('-').nth(1)?.parse().ok()
}

fn modified_ago(path: &Path) -> Duration {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or(Duration::MAX)
}

/// Runs the cleanup (see the module docs).
pub fn cleanup(opts: &CleanupOptions) -> CleanupReport {
    let mut report = CleanupReport { dry_run: opts.dry_run, ..Default::default() };
    let matches = |s: &str| opts.matching.as_deref().is_none_or(|m| s.contains(m));
    let strays = if opts.strays { snapshot() } else { Strays::default() };

    // Journals (those under this TMPDIR and, through the run registry, every other run's).
    let mut live_runs: BTreeSet<String> = BTreeSet::new();
    let mut live_effects: BTreeSet<String> = BTreeSet::new();
    let mut journal_dirs: BTreeSet<PathBuf> = BTreeSet::new();
    // Runs whose journal this cleanup replays (or would): their things are reported there,
    // not again as strays.
    let mut handled_runs: BTreeSet<String> = BTreeSet::new();
    for path in journal::find_journals() {
        let source = format!("journal {}", path.display());
        if let Some(d) = path.parent() {
            journal_dirs.insert(d.to_path_buf());
        }
        let parsed = match Parsed::read(&path) {
            Ok(p) => p,
            Err(e) => {
                report.push(path.display().to_string(), source, format!("failed: {e}"));
                continue;
            }
        };
        let run_id = parsed.run_id.clone().unwrap_or_default();
        let names_match = matches(&run_id)
            || matches(parsed.test.as_deref().unwrap_or(""))
            || parsed.pending.iter().any(|p| matches(&p.effect.to_string()));
        let alive = parsed.owner_alive();
        if alive && !opts.force || !names_match {
            live_runs.insert(run_id.clone());
            live_effects.extend(parsed.pending.iter().map(|p| p.effect.to_string()));
            if names_match {
                let pid = parsed.owner.map(|o| o.0).unwrap_or_default();
                report.push(
                    format!("run {run_id} ({} pending effects)", parsed.pending.len()),
                    source,
                    format!("kept: its harness (pid {pid}) is running; pass --force to undo it anyway"),
                );
            }
            continue;
        }
        handled_runs.insert(run_id.clone());
        if opts.dry_run {
            for p in parsed.pending.iter().rev() {
                report.push(p.effect.to_string(), source.clone(), "would remove");
            }
            continue;
        }
        match replay_locked(&path, opts.force, By::Cleanup) {
            ReplayOutcome::Replayed(r) => {
                for u in &r.undone {
                    report.push(u.clone(), source.clone(), "undone");
                }
                for f in &r.failed {
                    report.push(f.clone(), source.clone(), "failed: see the journal");
                }
            }
            ReplayOutcome::Busy => {
                live_runs.insert(run_id.clone());
                report.push(
                    format!("run {run_id}"),
                    source,
                    "kept: being undone right now by another process (a reaper)",
                );
            }
            ReplayOutcome::OwnerAlive { pid } => {
                live_runs.insert(run_id.clone());
                report.push(format!("run {run_id}"), source, format!("kept: its harness (pid {pid}) started running"));
            }
            ReplayOutcome::Unreadable(e) => report.push(path.display().to_string(), source, format!("failed: {e}")),
        }
    }

    // Strays: only things with proof. A name alone ("chaos-", "chaos_", "chaos-harness-") proves
    // nothing; the proof is the id of a known run (registered, or named by a journal) whose
    // owner is dead, carried as a whole token in the name, or an owner file inside a temp dir.
    let mut dead_runs: BTreeSet<String> = handled_runs.clone();
    for rec in runs::all() {
        if rec.owner_alive() {
            live_runs.insert(rec.run_id.clone());
            if opts.force {
                dead_runs.insert(rec.run_id.clone());
            }
        } else {
            dead_runs.insert(rec.run_id.clone());
        }
    }
    let live_of = |name: &str, as_effect: &str| -> Option<String> {
        if opts.force {
            return None;
        }
        if live_effects.contains(as_effect) {
            return Some("it is pending in a running harness's journal".into());
        }
        live_runs
            .iter()
            .find(|r| runs::carries_run_id(name, r) || runs::carries_run_id(name, &runs::nft_safe(r)))
            .map(|r| format!("it belongs to run {r}, whose harness is running"))
    };
    let proven = |name: &str| -> bool {
        dead_runs.iter().any(|r| runs::carries_run_id(name, r) || runs::carries_run_id(name, &runs::nft_safe(r)))
    };
    let no_proof =
        "kept: no proof it is the harness's (its name carries the id of no known run); remove it by hand if it is";
    let nft_now = if strays.nft.is_empty() { Vec::new() } else { chaos_nft_tables() };
    let mounts_now = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    // A deadline per item: one stuck removal does not fail the ones after it.
    let act = |report: &mut CleanupReport, what: String, effect: Effect| {
        if opts.dry_run {
            report.push(what, "stray", "would remove");
            return;
        }
        match journal::undo(&effect, &[], Instant::now() + ITEM_BUDGET) {
            Ok(()) => report.push(what, "stray", "removed"),
            Err(e) => report.push(what, "stray", format!("failed: {e}")),
        }
    };
    // Cgroups first (thawed, emptied, removed): their members are proven ours by membership.
    for cg in &strays.cgroups {
        let name = cg.rel.rsplit('/').next().unwrap_or_default().to_string();
        let effect = Effect::Cgroup { cgroup: cg.clone() };
        if !matches(&name) || !cg.dir().exists() || live_of(&name, &effect.to_string()).is_some() {
            continue;
        }
        if proven(&name) {
            act(&mut report, effect.to_string(), effect);
        } else {
            report.push(effect.to_string(), "stray", no_proof);
        }
    }
    // Processes carrying the marker: never proof enough on its own.
    let mut by_run: std::collections::BTreeMap<&str, Vec<i32>> = std::collections::BTreeMap::new();
    for (pid, run) in &strays.processes {
        if matches(run) && live_of(run, "").is_none() && procfs::stat(*pid).is_some_and(|s| !s.is_dead()) {
            by_run.entry(run.as_str()).or_default().push(*pid);
        }
    }
    for (run, pids) in by_run {
        let what = format!("processes carrying {RUN_MARKER_ENV}={run} {pids:?}");
        if !opts.force {
            report.push(
                what,
                "stray",
                "kept: the marker alone is no proof (anyone can set it; not journaled, not in a harness cgroup); pass --force to kill them",
            );
            continue;
        }
        if opts.dry_run {
            report.push(what, "stray", "would remove");
            continue;
        }
        match kill_marked(run, &pids, Instant::now() + ITEM_BUDGET) {
            Ok(()) => report.push(what, "stray", "removed"),
            Err(e) => report.push(what, "stray", format!("failed: {e}")),
        }
    }
    let mut proven_dirs: Vec<PathBuf> = Vec::new();
    let mut dir_verdicts: Vec<(PathBuf, Result<(), String>)> = Vec::new();
    for dir in &strays.temp_dirs {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let run = name.strip_prefix(TEMP_PREFIX).unwrap_or_default().to_string();
        if !dir.exists() || !matches(&name) {
            continue;
        }
        // A journal that is still there was kept (live owner, failed undo) or is new.
        if journal_dirs.contains(dir) && dir.join(journal::FILE_NAME).exists() {
            continue;
        }
        let verdict = match runs::read_owner_file(dir) {
            Some(rec) if rec.run_id == run => {
                if rec.owner_alive() && !opts.force {
                    Err(format!("kept: its harness (pid {}) is running", rec.owner_pid))
                } else {
                    Ok(())
                }
            }
            Some(rec) => Err(format!("kept: its owner file names run {}, not {run}", rec.run_id)),
            None => {
                // A sandbox dir whose harness died before writing its owner file is empty, or
                // holds only the owner file's unfinished temporary.
                let empty = std::fs::read_dir(dir)
                    .is_ok_and(|d| d.flatten().all(|e| e.file_name() == std::ffi::OsStr::new("owner.tmp")));
                let owner_dead = run_pid(&run).is_some_and(|p| procfs::stat(p).is_none_or(|s| s.is_dead()));
                if empty && owner_dead && modified_ago(dir) >= FRESH || proven(&run) {
                    Ok(())
                } else {
                    Err(
                        "kept: no owner file in it (not created by the harness, or still being created); remove it by hand if it is"
                            .to_string(),
                    )
                }
            }
        };
        if verdict.is_ok() {
            proven_dirs.push(dir.clone());
        }
        dir_verdicts.push((dir.clone(), verdict));
    }
    for m in &strays.mounts {
        let effect = Effect::Mount { target: m.clone() };
        let s = m.display().to_string();
        let mounted =
            mounts_now.lines().any(|l| l.split_whitespace().nth(1).map(unescape_mount).as_deref() == Some(s.as_str()));
        if mounted && matches(&s) && proven_dirs.iter().any(|d| m.starts_with(d)) {
            act(&mut report, effect.to_string(), effect);
        }
    }
    for (family, name) in &strays.nft {
        let effect = Effect::NftTable { family: family.clone(), name: name.clone(), netns: None };
        let exists = nft_now.iter().any(|(f, n)| f == family && n == name);
        if !exists || !matches(name) || live_of(name, &effect.to_string()).is_some() {
            continue;
        }
        if proven(name) {
            act(&mut report, effect.to_string(), effect);
        } else {
            report.push(effect.to_string(), "stray", no_proof);
        }
    }
    for name in &strays.netns {
        let effect = Effect::Netns { name: name.clone() };
        let exists = Path::new("/run/netns").join(name).exists();
        if !exists || !matches(name) || live_of(name, &effect.to_string()).is_some() {
            continue;
        }
        if proven(name) {
            act(&mut report, effect.to_string(), effect);
        } else {
            report.push(effect.to_string(), "stray", no_proof);
        }
    }
    for (dir, verdict) in dir_verdicts {
        let what = format!("temp dir {}", dir.display());
        match verdict {
            Ok(()) => {
                for m in mounts_under(&dir) {
                    if !opts.dry_run {
                        let _ = journal::undo(&Effect::Mount { target: m }, &[], Instant::now() + ITEM_BUDGET);
                    }
                }
                act(&mut report, what, Effect::TempDir { path: dir.clone() });
            }
            Err(why) => report.push(what, "stray", why),
        }
    }
    // Registry entries of dead runs whose journal and temp dir are gone.
    if !opts.dry_run && opts.matching.is_none() {
        runs::sweep_dead(None);
    } else if !opts.dry_run {
        for rec in runs::all() {
            if !rec.owner_alive() && !rec.temp_dir.exists() && matches(&rec.run_id) {
                runs::unregister(&rec.run_id);
            }
        }
    }
    report
}

/// Kills processes carrying the marker of `run` (only with `--force`): each through a pidfd
/// opened first, the marker re-read after, its freezer cgroup thawed first when it is one of
/// the harness's.
fn kill_marked(run: &str, pids: &[i32], deadline: Instant) -> Result<(), String> {
    let me = std::process::id() as i32;
    loop {
        let mut left = Vec::new();
        for &pid in pids {
            if pid <= 1 || pid == me || procfs::stat(pid).is_none_or(|s| s.is_dead()) {
                continue;
            }
            let Ok(fd) = PidFd::open(pid) else { continue };
            if !procfs::has_env(pid, RUN_MARKER_ENV, run) {
                continue;
            }
            for h in cgroup::hierarchies().iter().filter(|h| h.controller == "freezer" || h.is_v2()) {
                if let Some(rel) = procfs::cgroup_path(pid, &h.controller)
                    && rel.starts_with(&format!("/{}/", cgroup::PARENT))
                {
                    cgroup::thaw_with_siblings(&CgroupRef {
                        controller: h.controller.clone(),
                        mount: h.mount.clone(),
                        rel,
                    });
                }
            }
            let _ = fd.send(libc::SIGKILL);
            left.push(pid);
        }
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("pids {left:?} survived SIGKILL"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape_mount(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape_mount(r"/tmp/x\\"), r"/tmp/x\\");
        assert_eq!(unescape_mount(r"\0"), r"\0");
    }

    #[test]
    fn run_pid_is_the_middle_field() {
        assert_eq!(run_pid("6a1b-4242-0"), Some(4242));
        assert_eq!(run_pid("garbage"), None);
    }

    #[test]
    fn report_text() {
        let mut r = CleanupReport::default();
        assert_eq!(r.to_string(), "chaos cleanup: nothing to clean");
        r.push("network namespace chaos-x", "stray", "removed");
        r.push("run r", "journal j", "kept: alive");
        assert!(r.is_clean());
        assert_eq!(r.removed(), 1);
        assert!(r.to_string().starts_with("chaos cleanup: 1 removed, 0 failed, 1 kept"), "{r}");
    }
}
