//! Evidence for a failed scenario's root cause, taken when the scenario ends (fixtures still
//! running): the process-tree difference of every fixture (which processes survived from before
//! the scenario, which it started, which exited, with parents, sessions and command lines, from
//! the scopes' process history) and the log lines each fixture wrote up to the failure (a
//! bounded tail of every log in the sandbox's log dir, the lines written during the scenario
//! marked).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::sandbox::Sandbox;
use crate::sandbox::snapshot::ProcSnapshot;

/// At most this many log lines per log file.
pub const LOG_LINES: usize = 30;

/// What happened to one process of a fixture during the scenario.
///
/// ```
/// use chaos_harness::scenario::ProcessChange;
/// let p = ProcessChange { fixture: "prefork".into(), pid: 42, ppid: 1, pgid: 42, sid: 42,
///     command: "[prefork: worker 0]".into(), change: "survived".into(), at_ms: None };
/// assert_eq!(p.to_string(), "survived: pid 42 ppid 1 pgid 42 sid 42 [prefork] [prefork: worker 0]");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessChange {
    /// The fixture (process scope) it belonged to.
    pub fixture: String,
    /// Its pid.
    pub pid: i32,
    /// Its parent when last seen alive.
    pub ppid: i32,
    /// Its process group.
    pub pgid: i32,
    /// Its session.
    pub sid: i32,
    /// Its command line (or `comm` when the command line is empty), as last seen.
    pub command: String,
    /// `survived` (alive before the scenario and still alive at its end), `started` (started
    /// during the scenario, alive at its end), `exited` (exited during the scenario).
    pub change: String,
    /// When it started (`started`) or exited (`exited`), ms since the scenario started.
    pub at_ms: Option<u64>,
}

impl std::fmt::Display for ProcessChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: pid {} ppid {} pgid {} sid {} [{}] {}",
            self.change, self.pid, self.ppid, self.pgid, self.sid, self.fixture, self.command
        )?;
        if let Some(at) = self.at_ms {
            write!(f, " (at {:.3} s)", at as f64 / 1000.0)?;
        }
        Ok(())
    }
}

/// The last lines of one fixture log when the scenario ended.
///
/// ```
/// use chaos_harness::scenario::FixtureLog;
/// let l = FixtureLog { file: "web.stderr.log".into(), first_line: 8, lines: vec!["a".into(), "b".into()], scenario_from: 1 };
/// assert_eq!(l.during_scenario(), ["b".to_string()]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixtureLog {
    /// The log file's name (`<fixture>.stdout.log`, `<fixture>.stderr.log`).
    pub file: String,
    /// The line number (1-based) of `lines[0]` in the file.
    pub first_line: usize,
    /// The lines, at most [`LOG_LINES`].
    pub lines: Vec<String>,
    /// Index in `lines` of the first line written during the scenario (`lines.len()` if none).
    pub scenario_from: usize,
}

impl FixtureLog {
    /// The lines written during the scenario.
    pub fn during_scenario(&self) -> &[String] {
        &self.lines[self.scenario_from.min(self.lines.len())..]
    }
}

/// The size of every fixture log at the scenario's start.
pub(crate) fn log_sizes(sandbox: &Sandbox) -> Vec<(PathBuf, u64)> {
    let Ok(dir) = std::fs::read_dir(sandbox.logs_dir()) else { return Vec::new() };
    dir.flatten().filter_map(|e| Some((e.path(), e.metadata().ok()?.len()))).collect()
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Every fixture's processes that survived, started or exited since `t0`, by fixture then pid.
pub(crate) fn process_changes(sandbox: &Sandbox, t0: Instant) -> Vec<ProcessChange> {
    let mut out = Vec::new();
    for scope in sandbox.scopes() {
        scope.sample();
        for r in scope.history() {
            // Read again: the sampled state may be a sample old.
            let now = ProcSnapshot::of_pid(r.last.pid).filter(|s| s.start_time == r.last.start_time && !s.is_dead());
            let (change, at, seen) = match (&now, r.gone_at) {
                (Some(s), _) if r.first_seen <= t0 => ("survived", None, s.clone()),
                (Some(s), _) => ("started", Some(r.first_seen), s.clone()),
                (None, Some(gone)) if gone >= t0 => ("exited", Some(gone), r.last.clone()),
                (None, None) => ("exited", None, r.last.clone()),
                (None, Some(_)) => continue,
            };
            out.push(ProcessChange {
                fixture: scope.name().to_string(),
                pid: seen.pid,
                ppid: seen.ppid,
                pgid: seen.pgid,
                sid: seen.sid,
                command: seen.label().to_string(),
                change: change.into(),
                at_ms: at.map(|a| ms(a.saturating_duration_since(t0))),
            });
        }
    }
    out
}

/// At most this many bytes are read from the end of each log.
const LOG_WINDOW: u64 = 64 * 1024;

/// The last [`LOG_LINES`] lines of every fixture log (read from its last 64 KiB), the lines
/// after `sizes` (the sizes at the scenario's start) marked as written during the scenario.
pub(crate) fn log_tails(sandbox: &Sandbox, sizes: &[(PathBuf, u64)]) -> Vec<FixtureLog> {
    let Ok(dir) = std::fs::read_dir(sandbox.logs_dir()) else { return Vec::new() };
    let mut paths: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let before = sizes.iter().find(|(p, _)| *p == path).map_or(0, |(_, n)| *n);
        if let Some(log) = tail(&path, before) {
            out.push(log);
        }
    }
    out
}

/// The last lines of one log; `before`: its size when the scenario started.
fn tail(path: &std::path::Path, before: u64) -> Option<FixtureLog> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let from = len.saturating_sub(LOG_WINDOW);
    // Line numbers: the newlines before the window, counted in chunks.
    let mut newlines = 0usize;
    const CHUNK: usize = 64 * 1024;
    let mut buf = vec![0u8; CHUNK];
    let mut left = from;
    while left > 0 {
        let n = f.read(&mut buf[..left.min(CHUNK as u64) as usize]).ok()?;
        if n == 0 {
            break;
        }
        newlines += buf[..n].iter().filter(|b| **b == b'\n').count();
        left -= n as u64;
    }
    f.seek(SeekFrom::Start(from)).ok()?;
    let mut window = Vec::new();
    f.take(len - from).read_to_end(&mut window).ok()?;
    // A window that starts mid-line drops that partial line.
    let skip = if from > 0 { window.iter().position(|b| *b == b'\n').map_or(window.len(), |i| i + 1) } else { 0 };
    let first_line_no = newlines + usize::from(from > 0) + 1;
    let text = String::from_utf8_lossy(&window[skip..]);
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return None;
    }
    // Lines that end at or before `before` were there when the scenario started.
    let old_end = before.saturating_sub(from + skip as u64).min(window.len().saturating_sub(skip) as u64) as usize;
    let old_in_window = window[skip..skip + old_end].iter().filter(|b| **b == b'\n').count();
    let start = lines.len().saturating_sub(LOG_LINES);
    Some(FixtureLog {
        file: path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
        first_line: first_line_no + start,
        lines: lines[start..].iter().map(|l| l.to_string()).collect(),
        scenario_from: old_in_window.saturating_sub(start).min(lines.len() - start),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_tail_is_bounded_numbered_and_marks_the_scenario_s_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.stdout.log");
        // 5000 lines of ~20 bytes (beyond the 64 KiB window), the scenario starting at line 4990.
        let text: String = (1..=5000).map(|i| format!("line {i:06} .........\n")).collect();
        let before = text.lines().take(4989).map(|l| l.len() as u64 + 1).sum::<u64>();
        std::fs::write(&path, &text).unwrap();
        let log = tail(&path, before).unwrap();
        assert_eq!(log.lines.len(), LOG_LINES);
        assert_eq!(log.first_line, 5000 - LOG_LINES + 1);
        assert_eq!(log.lines[0], format!("line {:06} .........", log.first_line));
        assert_eq!(log.lines.last().unwrap(), "line 005000 .........");
        assert_eq!(log.during_scenario().len(), 11, "lines 4990-5000");
        assert_eq!(log.during_scenario()[0], "line 004990 .........");
        // Nothing written during the scenario; an empty log has no tail.
        assert!(tail(&path, text.len() as u64).unwrap().during_scenario().is_empty());
        std::fs::write(&path, "").unwrap();
        assert!(tail(&path, 0).is_none());
    }
}
