//! Small, allocation-light readers for `/proc`: process status, start time, command line,
//! environment marker, cgroup membership.
//!
//! Everything here treats a vanished process as an ordinary outcome (`None` / `false`), never
//! as an error: processes die while we look at them.

use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

/// The fields of `/proc/PID/stat` the harness uses.
///
/// ```
/// let me = chaos_harness::sandbox::procfs::stat(std::process::id() as i32).unwrap();
/// assert_eq!(me.pid, std::process::id() as i32);
/// assert!(me.start_time > 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Process id.
    pub pid: i32,
    /// `comm` (the kernel's 15-byte task name; programs may rewrite it).
    pub comm: String,
    /// State letter: `R`, `S`, `D`, `T` (stopped), `t`, `Z` (zombie), `X`, `I`.
    pub state: char,
    /// Parent pid.
    pub ppid: i32,
    /// Process group id.
    pub pgid: i32,
    /// Session id.
    pub sid: i32,
    /// Start time in clock ticks since boot (field 22); with the pid, identifies a process
    /// across pid reuse.
    pub start_time: u64,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
}

impl Stat {
    /// Whether the process is a zombie or dead (the harness treats zombies as dead).
    ///
    /// ```
    /// let me = chaos_harness::sandbox::procfs::stat(std::process::id() as i32).unwrap();
    /// assert!(!me.is_dead());
    /// ```
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }

    /// Whether the process is stopped by a signal (`T`) or traced (`t`).
    ///
    /// ```
    /// let me = chaos_harness::sandbox::procfs::stat(std::process::id() as i32).unwrap();
    /// assert!(!me.is_stopped());
    /// ```
    pub fn is_stopped(&self) -> bool {
        matches!(self.state, 'T' | 't')
    }
}

fn read_small(path: &Path, buf: &mut Vec<u8>) -> Option<()> {
    buf.clear();
    let mut f = std::fs::File::open(path).ok()?;
    f.read_to_end(buf).ok()?;
    Some(())
}

/// Parses the contents of a `/proc/PID/stat` file.
///
/// ```
/// let s = chaos_harness::sandbox::procfs::parse_stat(
///     "42 (my (odd) name) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 777 1000 3 0").unwrap();
/// assert_eq!((s.pid, s.comm.as_str(), s.state, s.ppid, s.start_time), (42, "my (odd) name", 'S', 1, 777));
/// ```
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let comm = text.get(open + 1..close)?.to_string();
    let mut rest = text.get(close + 1..)?.split_ascii_whitespace();
    // Fields after the comm: index 0 is field 3 (state).
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgid = rest.next()?.parse().ok()?;
    let sid = rest.next()?.parse().ok()?;
    // Skip fields 7..=21 (15 fields) to reach field 22, starttime.
    let mut rest = rest.skip(15);
    let start_time = rest.next()?.parse().ok()?;
    let _vsize = rest.next()?;
    let rss_pages: i64 = rest.next()?.parse().ok()?;
    Some(Stat {
        pid,
        comm,
        state,
        ppid,
        pgid,
        sid,
        start_time,
        rss_bytes: (rss_pages.max(0) as u64).saturating_mul(page_size()),
    })
}

/// Reads `/proc/PID/stat`; `None` when the process does not exist (any more).
///
/// ```
/// assert!(chaos_harness::sandbox::procfs::stat(std::process::id() as i32).is_some());
/// ```
pub fn stat(pid: i32) -> Option<Stat> {
    if pid <= 0 {
        return None;
    }
    let mut buf = Vec::with_capacity(512);
    read_small(Path::new(&format!("/proc/{pid}/stat")), &mut buf)?;
    parse_stat(std::str::from_utf8(&buf).ok()?)
}

/// The start time (clock ticks since boot) of `pid`, or `None` if it is gone.
///
/// ```
/// assert!(chaos_harness::sandbox::procfs::start_time(std::process::id() as i32).is_some());
/// ```
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|s| s.start_time)
}

/// Whether the process `(pid, start_time)` is gone: no such pid, a zombie, or the pid now
/// belongs to a different process (different start time).
///
/// ```
/// let me = std::process::id() as i32;
/// let st = chaos_harness::sandbox::procfs::start_time(me).unwrap();
/// assert!(!chaos_harness::sandbox::procfs::is_gone(me, st));
/// assert!(chaos_harness::sandbox::procfs::is_gone(me, st + 1));
/// ```
pub fn is_gone(pid: i32, start_time: u64) -> bool {
    match stat(pid) {
        None => true,
        Some(s) => s.start_time != start_time || s.is_dead(),
    }
}

/// The command line of `pid`, NUL-separated arguments joined by spaces (programs that rewrite
/// their title show the rewritten text). Empty for kernel threads and zombies.
///
/// ```
/// let c = chaos_harness::sandbox::procfs::cmdline(std::process::id() as i32).unwrap();
/// assert!(!c.is_empty());
/// ```
pub fn cmdline(pid: i32) -> Option<String> {
    let mut buf = Vec::with_capacity(256);
    read_small(Path::new(&format!("/proc/{pid}/cmdline")), &mut buf)?;
    while buf.last() == Some(&0) {
        buf.pop();
    }
    let s: Vec<u8> = buf.into_iter().map(|b| if b == 0 { b' ' } else { b }).collect();
    Some(String::from_utf8_lossy(&s).into_owned())
}

/// Whether `/proc/PID/environ` contains `NAME=VALUE` exactly.
///
/// ```
/// assert!(!chaos_harness::sandbox::procfs::has_env(std::process::id() as i32, "NO_SUCH_VAR_X", "1"));
/// ```
pub fn has_env(pid: i32, name: &str, value: &str) -> bool {
    let mut buf = Vec::with_capacity(4096);
    if read_small(Path::new(&format!("/proc/{pid}/environ")), &mut buf).is_none() {
        return false;
    }
    let needle_len = name.len() + 1 + value.len();
    buf.split(|b| *b == 0).any(|entry| {
        entry.len() == needle_len
            && entry.starts_with(name.as_bytes())
            && entry[name.len()] == b'='
            && entry.ends_with(value.as_bytes())
    })
}

/// Every pid currently listed in `/proc` (processes, not threads).
///
/// ```
/// assert!(chaos_harness::sandbox::procfs::all_pids().contains(&(std::process::id() as i32)));
/// ```
pub fn all_pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// Every live (non-zombie) process whose environment carries `CHAOS_HARNESS_RUN=<run_id>`.
/// Costs about 10 us per process on the machine: keep it off hot paths.
///
/// ```
/// assert!(chaos_harness::sandbox::procfs::marked_pids("no-such-run").is_empty());
/// ```
pub fn marked_pids(run_id: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    all_pids()
        .into_iter()
        .filter(|&p| p != me && p > 1 && has_env(p, super::RUN_MARKER_ENV, run_id))
        .filter(|&p| stat(p).is_some_and(|s| !s.is_dead()))
        .collect()
}

/// The cgroup path of `pid` in one hierarchy, from `/proc/PID/cgroup`: `controller` is a v1
/// controller name (`"pids"`) or `""` for the cgroup2 (unified) hierarchy.
///
/// ```
/// let p = chaos_harness::sandbox::procfs::cgroup_path(std::process::id() as i32, "");
/// assert!(p.is_some_and(|p| p.starts_with('/')));
/// ```
pub fn cgroup_path(pid: i32, controller: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_id, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = if controller.is_empty() { ctrls.is_empty() } else { ctrls.split(',').any(|c| c == controller) };
        if hit {
            return Some(path.to_string());
        }
    }
    None
}

/// The system page size in bytes.
///
/// ```
/// assert!(chaos_harness::sandbox::procfs::page_size() >= 4096);
/// ```
pub fn page_size() -> u64 {
    static PS: OnceLock<u64> = OnceLock::new();
    *PS.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if v > 0 { v as u64 } else { 4096 }
    })
}

/// Clock ticks per second (`_SC_CLK_TCK`), the unit of [`Stat::start_time`].
///
/// ```
/// assert!(chaos_harness::sandbox::procfs::clock_ticks() > 0);
/// ```
pub fn clock_ticks() -> u64 {
    static HZ: OnceLock<u64> = OnceLock::new();
    *HZ.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if v > 0 { v as u64 } else { 100 }
    })
}

/// Seconds since boot, from `/proc/uptime`.
///
/// ```
/// assert!(chaos_harness::sandbox::procfs::uptime_secs() > 0.0);
/// ```
pub fn uptime_secs() -> f64 {
    std::fs::read_to_string("/proc/uptime").ok().and_then(|s| s.split_whitespace().next()?.parse().ok()).unwrap_or(0.0)
}

/// How long ago a process with `start_time` (ticks since boot) started.
///
/// ```
/// let st = chaos_harness::sandbox::procfs::start_time(std::process::id() as i32).unwrap();
/// assert!(chaos_harness::sandbox::procfs::age(st) < std::time::Duration::from_secs(86400 * 365));
/// ```
pub fn age(start_time: u64) -> std::time::Duration {
    let started = start_time as f64 / clock_ticks() as f64;
    std::time::Duration::from_secs_f64((uptime_secs() - started).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_comm_with_parens_and_spaces() {
        let s = parse_stat("7 (a) b) c) Z 3 4 5 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 2 0").unwrap();
        assert_eq!(s.comm, "a) b) c");
        assert_eq!(s.state, 'Z');
        assert!(s.is_dead());
        assert_eq!((s.ppid, s.pgid, s.sid, s.start_time), (3, 4, 5, 99));
        assert_eq!(s.rss_bytes, 2 * page_size());
    }

    #[test]
    fn truncated_stat_is_none() {
        assert!(parse_stat("7 (x) S 1 2").is_none());
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn own_process_is_not_gone_and_has_cgroup() {
        let me = std::process::id() as i32;
        let st = start_time(me).unwrap();
        assert!(!is_gone(me, st));
        assert!(is_gone(i32::MAX, 1));
        assert!(cgroup_path(me, "").is_some());
    }
}
