//! Proof of ownership on disk: the registry of runs and the owner file in each temp dir.
//!
//! Names prove nothing (a user may call a directory `chaos-harness-userdata` or a namespace
//! `chaos-userns`), and the temp dir depends on `TMPDIR`, so `chaos cleanup` run with another
//! `TMPDIR` than a live harness would not see its journal. Two records fix both:
//!
//! * **The run registry**: one file per run at a fixed path independent of `TMPDIR`,
//!   [`RUNS_DIR`]`/<run id>` (overridable with [`RUNS_DIR_ENV`]), holding the run id, the owner
//!   pid + start time and the temp dir. Written before the temp dir is created, removed when the
//!   run's journal is fully undone. A run is *live* while its owner (pid + start time) is alive.
//! * **The owner file** [`OWNER_FILE`] inside each temp dir: the same record, so a temp dir is
//!   proven ours by what it contains, not by its name.
//!
//! Cleanup acts only on journaled things and on things that carry the id of a registered run
//! whose owner is dead; it never acts on a live owner's things.
//!
//! ```
//! use chaos_harness::sandbox::runs::RunRecord;
//! let r = RunRecord::for_this_process("6923e0c0-4242-0", "t", "/tmp/chaos-harness-6923e0c0-4242-0".as_ref());
//! assert!(r.owner_alive());
//! let back: RunRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
//! assert_eq!(back, r);
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::procfs;

/// Default directory of the run registry (a tmpfs: emptied at boot, like cgroups and netns).
pub const RUNS_DIR: &str = "/run/chaos-harness/runs";

/// Environment override of [`RUNS_DIR`] (for tests and unprivileged users).
pub const RUNS_DIR_ENV: &str = "CHAOS_RUNS_DIR";

/// The owner file's name inside a sandbox temp dir.
pub const OWNER_FILE: &str = "owner.json";

/// One run's record (registry entry and owner file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run id.
    pub run_id: String,
    /// The test name.
    pub test: String,
    /// The harness process.
    pub owner_pid: i32,
    /// Its start time (clock ticks since boot).
    pub owner_start_time: u64,
    /// The run's temp dir (holds the journal).
    pub temp_dir: PathBuf,
}

impl RunRecord {
    /// A record owned by the calling process.
    pub fn for_this_process(run_id: &str, test: &str, temp_dir: &Path) -> Self {
        let me = std::process::id() as i32;
        Self {
            run_id: run_id.into(),
            test: test.into(),
            owner_pid: me,
            owner_start_time: procfs::start_time(me).unwrap_or(0),
            temp_dir: temp_dir.into(),
        }
    }

    /// Whether the owner (pid + start time) is still running.
    pub fn owner_alive(&self) -> bool {
        !procfs::is_gone(self.owner_pid, self.owner_start_time)
    }

    /// The journal path inside the temp dir.
    pub fn journal(&self) -> PathBuf {
        self.temp_dir.join(super::journal::FILE_NAME)
    }
}

/// The registry directory in force.
///
/// ```
/// assert!(chaos_harness::sandbox::runs::dir().is_absolute());
/// ```
pub fn dir() -> PathBuf {
    std::env::var_os(RUNS_DIR_ENV).map(PathBuf::from).filter(|p| p.is_absolute()).unwrap_or_else(|| RUNS_DIR.into())
}

fn valid_id(run_id: &str) -> bool {
    !run_id.is_empty()
        && run_id.len() <= 128
        && run_id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !run_id.starts_with('.')
}

fn write_atomic(path: &Path, rec: &RunRecord) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_string(rec).map_err(std::io::Error::other)?;
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        // No fsync (see the journal's durability notes): the rename makes the record whole
        // for every reader; only a machine crash could lose it, and with it the run.
        f.write_all(text.as_bytes())?;
    }
    std::fs::rename(&tmp, path)
}

/// Registers a run (before its first side effect). Errors name the path.
pub fn register(rec: &RunRecord) -> Result<(), String> {
    if !valid_id(&rec.run_id) {
        return Err(format!("run id {:?} is not a plain name", rec.run_id));
    }
    let d = dir();
    std::fs::create_dir_all(&d).map_err(|e| format!("creating the run registry {}: {e}", d.display()))?;
    let p = d.join(&rec.run_id);
    write_atomic(&p, rec).map_err(|e| format!("writing {}: {e}", p.display()))
}

/// Removes a run's registry entry (idempotent).
pub fn unregister(run_id: &str) {
    if valid_id(run_id) {
        let _ = std::fs::remove_file(dir().join(run_id));
    }
}

/// Every registered run (unreadable entries are skipped).
///
/// ```
/// for r in chaos_harness::sandbox::runs::all() { assert!(!r.run_id.is_empty()); }
/// ```
pub fn all() -> Vec<RunRecord> {
    let Ok(d) = std::fs::read_dir(dir()) else { return Vec::new() };
    d.flatten()
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
        .filter_map(|e| serde_json::from_slice::<RunRecord>(&std::fs::read(e.path()).ok()?).ok())
        .filter(|r| valid_id(&r.run_id))
        .collect()
}

/// The owner pid inside a run id `<secs hex>-<pid>-<n>`.
fn id_pid(run_id: &str) -> Option<i32> {
    run_id.split('-').nth(1)?.parse().ok()
}

/// Removes the registry entries of dead runs whose temp dir is gone, including entries torn
/// by a harness killed while writing them (`<run id>.tmp`). `owner`: only that harness's
/// (pid, start time), as the reaper does for its owner; `None`: every dead owner's (`chaos
/// cleanup`). Returns the run ids removed.
///
/// ```
/// let removed = chaos_harness::sandbox::runs::sweep_dead(Some((i32::MAX, 1)));
/// assert!(removed.is_empty());
/// ```
pub fn sweep_dead(owner: Option<(i32, u64)>) -> Vec<String> {
    sweep_dead_in(&dir(), owner)
}

fn sweep_dead_in(registry: &Path, owner: Option<(i32, u64)>) -> Vec<String> {
    let Ok(d) = std::fs::read_dir(registry) else { return Vec::new() };
    let mut removed = Vec::new();
    for e in d.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let id = name.strip_suffix(".tmp").unwrap_or(&name).to_string();
        if !valid_id(&id) {
            continue;
        }
        let rec = std::fs::read(e.path()).ok().and_then(|b| serde_json::from_slice::<RunRecord>(&b).ok());
        let dead = match (&rec, owner) {
            (Some(r), Some(o)) => (r.owner_pid, r.owner_start_time) == o && !r.owner_alive(),
            (Some(r), None) => !r.owner_alive(),
            // Torn while being written: only the run id tells the owner.
            (None, Some((pid, _))) => id_pid(&id) == Some(pid) && procfs::stat(pid).is_none_or(|s| s.is_dead()),
            (None, None) => id_pid(&id).is_some_and(|p| procfs::stat(p).is_none_or(|s| s.is_dead())),
        };
        let dir_gone = rec.as_ref().is_none_or(|r| !r.temp_dir.exists());
        if dead && dir_gone && std::fs::remove_file(e.path()).is_ok() {
            removed.push(id);
        }
    }
    removed
}

/// Writes the owner file into a freshly created temp dir.
pub fn write_owner_file(rec: &RunRecord) -> std::io::Result<()> {
    write_atomic(&rec.temp_dir.join(OWNER_FILE), rec)
}

/// Reads a temp dir's owner file; `None` when missing, unreadable, or naming another dir (a
/// copied file proves nothing).
///
/// ```
/// assert!(chaos_harness::sandbox::runs::read_owner_file("/nonexistent".as_ref()).is_none());
/// ```
pub fn read_owner_file(dir: &Path) -> Option<RunRecord> {
    let rec: RunRecord = serde_json::from_slice(&std::fs::read(dir.join(OWNER_FILE)).ok()?).ok()?;
    (rec.temp_dir == dir).then_some(rec)
}

/// Whether `name` (a cgroup, netns or table name) carries `run_id` as a whole token, e.g.
/// `<run id>-web` or `chaos-<run id>-ns-1a2b3c4d`; the id must be bounded by a separator or an end.
///
/// ```
/// use chaos_harness::sandbox::runs::carries_run_id;
/// assert!(carries_run_id("6923e0c0-4242-0-web", "6923e0c0-4242-0"));
/// assert!(!carries_run_id("6923e0c0-4242-01-web", "6923e0c0-4242-0"));
/// assert!(!carries_run_id("userjob", "6923e0c0-4242-0"));
/// ```
pub fn carries_run_id(name: &str, run_id: &str) -> bool {
    if run_id.is_empty() {
        return false;
    }
    let sep = |c: Option<char>| c.is_none_or(|c| !c.is_ascii_alphanumeric());
    name.match_indices(run_id).any(|(i, _)| {
        sep(name[..i].chars().next_back()) && {
            let after = &name[i + run_id.len()..];
            // A run id `a-b-0` must not match inside `a-b-01`, but `a-b-0-web` is fine.
            sep(after.chars().next())
        }
    })
}

/// The same run id in nft table names, where `-` is not allowed: `-` becomes `_`.
///
/// ```
/// assert_eq!(chaos_harness::sandbox::runs::nft_safe("6923e0c0-4242-0"), "6923e0c0_4242_0");
/// ```
pub fn nft_safe(run_id: &str) -> String {
    run_id.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_file_must_name_its_own_dir() {
        let d = tempfile::tempdir().unwrap();
        let rec = RunRecord::for_this_process("r-1-0", "t", d.path());
        write_owner_file(&rec).unwrap();
        assert_eq!(read_owner_file(d.path()), Some(rec.clone()));
        let other = tempfile::tempdir().unwrap();
        std::fs::copy(d.path().join(OWNER_FILE), other.path().join(OWNER_FILE)).unwrap();
        assert!(read_owner_file(other.path()).is_none(), "a copied owner file proves nothing");
    }

    #[test]
    fn run_ids_are_whole_tokens() {
        assert!(carries_run_id("chaos-6923e0c0-4242-0-ns-1234abcd", "6923e0c0-4242-0"));
        assert!(!carries_run_id("x6923e0c0-4242-0", "6923e0c0-4242-0"));
        assert!(!carries_run_id("anything", ""));
    }

    #[test]
    fn dead_entries_and_torn_ones_are_swept_live_ones_kept() {
        let reg = tempfile::tempdir().unwrap();
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = c.id() as i32;
        let dead_st = procfs::start_time(dead_pid).unwrap_or(1);
        c.wait().unwrap();
        let gone = reg.path().join("no-such-temp-dir");
        let dead = RunRecord {
            run_id: format!("1-{dead_pid}-0"),
            test: "t".into(),
            owner_pid: dead_pid,
            owner_start_time: dead_st,
            temp_dir: gone.clone(),
        };
        std::fs::write(reg.path().join(&dead.run_id), serde_json::to_string(&dead).unwrap()).unwrap();
        std::fs::write(reg.path().join(format!("1-{dead_pid}-1.tmp")), "{\"run_id\":").unwrap();
        let live = RunRecord::for_this_process(&format!("1-{}-0", std::process::id()), "t", &gone);
        std::fs::write(reg.path().join(&live.run_id), serde_json::to_string(&live).unwrap()).unwrap();
        let mut removed = sweep_dead_in(reg.path(), None);
        removed.sort();
        assert_eq!(removed, vec![format!("1-{dead_pid}-0"), format!("1-{dead_pid}-1")]);
        assert!(reg.path().join(&live.run_id).exists(), "a live owner's entry is kept");
    }

    #[test]
    fn bad_ids_are_refused() {
        assert!(!valid_id("../etc"));
        assert!(!valid_id("a/b"));
        assert!(valid_id("6923e0c0-4242-0"));
    }
}
