//! Telemetry ingestion: JSON-lines events (`event`, `measurements`, `metadata`, `ts_us`) that a
//! system under test writes to a file the harness names, read while the test runs and queried
//! by event name and time.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One telemetry event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TelemetryEvent {
    /// Event name, e.g. `snakepit.pool.worker.spawned`.
    pub event: String,
    /// Numbers.
    #[serde(default)]
    pub measurements: Value,
    /// Labels.
    #[serde(default)]
    pub metadata: Value,
    /// Wall-clock time, unix microseconds.
    pub ts_us: u64,
}

impl TelemetryEvent {
    /// The event's time.
    pub fn at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.ts_us)
    }

    /// A metadata field as a string.
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }
}

/// A telemetry file read incrementally: each [`Telemetry::events`] call reads what was appended
/// since the last one. Lines that do not parse are counted, not fatal.
///
/// ```
/// use chaos_harness::observe::telemetry::Telemetry;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("t.jsonl");
/// std::fs::write(&path, "{\"event\":\"a.b\",\"measurements\":{},\"metadata\":{\"worker_id\":\"w1\"},\"ts_us\":1}\nnot json\n").unwrap();
/// let t = Telemetry::new(&path);
/// assert_eq!(t.named("a.b").len(), 1);
/// assert_eq!(t.malformed_lines(), 1);
/// ```
#[derive(Debug)]
pub struct Telemetry {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    offset: u64,
    partial: String,
    events: Vec<TelemetryEvent>,
    malformed: usize,
}

impl Telemetry {
    /// Reads telemetry from `path` (it may not exist yet).
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self { path: path.as_ref().to_path_buf(), state: Mutex::default() }
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn refresh(&self) -> std::sync::MutexGuard<'_, State> {
        use std::io::{Read, Seek, SeekFrom};
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(mut f) = std::fs::File::open(&self.path)
            && f.seek(SeekFrom::Start(st.offset)).is_ok() {
                let mut buf = String::new();
                if let Ok(n) = f.read_to_string(&mut buf) {
                    st.offset += n as u64;
                    let mut text = std::mem::take(&mut st.partial);
                    text.push_str(&buf);
                    let complete = text.ends_with('\n');
                    let mut lines: Vec<&str> = text.split('\n').collect();
                    let tail = if complete { String::new() } else { lines.pop().unwrap_or_default().to_string() };
                    for line in lines.into_iter().filter(|l| !l.trim().is_empty()) {
                        match serde_json::from_str::<TelemetryEvent>(line) {
                            Ok(ev) => st.events.push(ev),
                            Err(_) => st.malformed += 1,
                        }
                    }
                    st.partial = tail;
                }
            }
        st
    }

    /// Every event so far, in file order.
    pub fn events(&self) -> Vec<TelemetryEvent> {
        self.refresh().events.clone()
    }

    /// Events with this exact name.
    pub fn named(&self, name: &str) -> Vec<TelemetryEvent> {
        self.refresh().events.iter().filter(|e| e.event == name).cloned().collect()
    }

    /// Events with this name at or after `since`.
    pub fn named_since(&self, name: &str, since: SystemTime) -> Vec<TelemetryEvent> {
        let since_us = since.duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0);
        self.refresh().events.iter().filter(|e| e.event == name && e.ts_us >= since_us).cloned().collect()
    }

    /// Distinct event names seen.
    pub fn names(&self) -> std::collections::BTreeSet<String> {
        self.refresh().events.iter().map(|e| e.event.clone()).collect()
    }

    /// Lines that were not valid events.
    pub fn malformed_lines(&self) -> usize {
        self.refresh().malformed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_incrementally_across_partial_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let t = Telemetry::new(&path);
        assert!(t.events().is_empty());
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(b"{\"event\":\"x\",\"ts_us\":5}\n{\"event\":\"y\",\"ts").unwrap();
        f.flush().unwrap();
        assert_eq!(t.events().len(), 1);
        f.write_all(b"_us\":6}\n").unwrap();
        f.flush().unwrap();
        assert_eq!(t.named("y").len(), 1);
        assert_eq!(t.named_since("x", UNIX_EPOCH + Duration::from_micros(6)).len(), 0);
        assert_eq!(t.names().len(), 2);
        assert_eq!(t.malformed_lines(), 0);
    }
}
