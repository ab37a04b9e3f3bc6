//! The per-test sandbox: run id, temp dir, and (issue [sandbox]) cgroups and the journal.
//!
//! The runner owns the sandbox's teardown: whatever happens to the test body (return, panic,
//! timeout), [`Sandbox::teardown`] runs before the next test starts.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::Error;

/// Prefix of every temp dir the harness creates under the system temp dir.
pub const TEMP_PREFIX: &str = "chaos-harness-";

/// The environment marker put on every process the harness spawns.
pub const RUN_MARKER_ENV: &str = "CHAOS_HARNESS_RUN";

/// One test's sandbox.
///
/// ```
/// let sb = chaos_harness::sandbox::Sandbox::new("doc::example").unwrap();
/// assert!(sb.temp_dir().exists());
/// sb.teardown().unwrap();
/// ```
#[derive(Debug)]
pub struct Sandbox {
    run_id: String,
    test_name: String,
    temp_dir: PathBuf,
    torn_down: Mutex<bool>,
}

impl Sandbox {
    /// Creates the sandbox for `test_name` with a fresh run id and temp dir.
    pub fn new(test_name: &str) -> Result<Self, Error> {
        let run_id = new_run_id();
        let temp_dir = std::env::temp_dir().join(format!("{TEMP_PREFIX}{run_id}"));
        std::fs::create_dir_all(&temp_dir).map_err(|source| Error::Io {
            what: "creating the sandbox temp dir".into(),
            path: temp_dir.clone(),
            source,
            fix: "check that the system temp dir (TMPDIR) is writable".into(),
        })?;
        Ok(Self { run_id, test_name: test_name.to_string(), temp_dir, torn_down: Mutex::new(false) })
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

    /// Undoes everything the sandbox did, in reverse order. Idempotent.
    pub fn teardown(&self) -> Result<(), Error> {
        let mut done = self.torn_down.lock().unwrap_or_else(|e| e.into_inner());
        if *done {
            return Ok(());
        }
        *done = true;
        match std::fs::remove_dir_all(&self.temp_dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io {
                what: "removing the sandbox temp dir".into(),
                path: self.temp_dir.clone(),
                source,
                fix: "remove it by hand; check for processes still using it".into(),
            }),
        }
    }
}

/// A new run id: `<unix seconds base36>-<pid>-<counter>`, unique on this machine.
pub fn new_run_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{secs:x}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            tracing::warn!(error = %e, "sandbox teardown on drop failed");
        }
    }
}
