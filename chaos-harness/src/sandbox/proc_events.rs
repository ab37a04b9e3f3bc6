//! Kernel process tracking through the proc connector (netlink): the kernel reports every
//! fork and exit on the machine, and the harness follows the descendants of each fixture by
//! (pid, start time) from the moment they are forked.
//!
//! Cgroups hold a fixture's processes, but a privileged program (a service manager, a
//! container runtime) can move a process out of them. A process followed from its fork stays
//! the fixture's wherever it is moved: [`Scope`](super::Scope) counts it among the members,
//! `no_orphans` judges it, teardown kills it, and it is journaled for the reaper. Exit times
//! come from the kernel's event timestamps, not from sampling.
//!
//! One listener thread per harness process serves every scope. Without the capability (not
//! root, or a kernel without `CONFIG_PROC_EVENTS`), [`tracker`] says why and scopes keep the
//! cgroup-only guarantee.
//!
//! ```
//! use chaos_harness::sandbox::proc_events;
//! match proc_events::tracker() {
//!     Ok(_) => println!("following forks through the kernel"),
//!     Err(why) => println!("no kernel process tracking: {why}"),
//! }
//! ```

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::procfs;

const NETLINK_CONNECTOR: libc::c_int = 11;
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_EVENT_FORK: u32 = 0x0000_0001;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;
const NLMSG_HDR: usize = 16;
const CN_MSG: usize = 20;

/// What the tracker knows of one followed process.
#[derive(Debug, Clone, Copy)]
struct Followed {
    start_time: u64,
    scope: u64,
}

/// The descendants of every registered scope, kept current by the kernel's fork and exit
/// events. Get it with [`tracker`].
#[derive(Default)]
pub struct Tracker {
    state: Mutex<State>,
    /// Per scope: called (outside the state lock) with each descendant it starts following,
    /// so the scope journals it at once for the reaper (see [`Tracker::on_follow`]).
    sinks: Mutex<HashMap<u64, FollowSink>>,
}

/// Called with (pid, start time) of each process newly followed for a scope.
pub type FollowSink = std::sync::Arc<dyn Fn(i32, u64) + Send + Sync>;

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker").field("state", &self.state).finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct State {
    followed: HashMap<i32, Followed>,
    /// (pid, start time) -> when the kernel reported the exit, per scope.
    exits: HashMap<u64, HashMap<(i32, u64), Instant>>,
    /// Events were dropped (receive buffer overrun): resynchronise from /proc.
    overruns: u64,
}

static TRACKER: OnceLock<Result<Tracker, String>> = OnceLock::new();

/// The process-wide tracker, started on first use; `Err` says why the kernel's process events
/// are unavailable (the scopes then rely on cgroups alone).
pub fn tracker() -> Result<&'static Tracker, &'static str> {
    TRACKER
        .get_or_init(|| {
            let socket = subscribe()?;
            std::thread::Builder::new()
                .name("chaos-proc-events".into())
                .spawn(move || listen(socket))
                .map_err(|e| format!("starting the listener thread: {e}"))?;
            Ok(Tracker::default())
        })
        .as_ref()
        .map_err(String::as_str)
}

impl Tracker {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Follows `pid` (if it still has `start_time`) and, from now on, everything it forks, as
    /// scope `scope`'s. Already followed processes keep their scope.
    pub fn adopt(&self, scope: u64, pid: i32, start_time: u64) {
        let mut st = self.state();
        st.followed.entry(pid).or_insert(Followed { start_time, scope });
    }

    /// The live processes followed for `scope`, as (pid, start time).
    pub fn followed(&self, scope: u64) -> Vec<(i32, u64)> {
        let mut v: Vec<(i32, u64)> =
            self.state().followed.iter().filter(|(_, f)| f.scope == scope).map(|(p, f)| (*p, f.start_time)).collect();
        v.retain(|&(pid, st)| !procfs::is_gone(pid, st));
        v.sort_by_key(|&(pid, st)| (st, pid));
        v
    }

    /// Whether `pid` with `start_time` is followed for `scope`.
    pub fn follows(&self, scope: u64, pid: i32, start_time: u64) -> bool {
        self.state().followed.get(&pid).is_some_and(|f| f.scope == scope && f.start_time == start_time)
    }

    /// When the kernel reported the exit of `pid` (with `start_time`) of `scope`.
    pub fn exited_at(&self, scope: u64, pid: i32, start_time: u64) -> Option<Instant> {
        self.state().exits.get(&scope).and_then(|m| m.get(&(pid, start_time)).copied())
    }

    /// How many times events were dropped by the kernel (each followed by a resync from /proc).
    pub fn overruns(&self) -> u64 {
        self.state().overruns
    }

    /// Stops following `scope`'s processes (its fixture is gone).
    pub fn forget(&self, scope: u64) {
        let mut st = self.state();
        st.followed.retain(|_, f| f.scope != scope);
        st.exits.remove(&scope);
        drop(st);
        self.sinks.lock().unwrap_or_else(|e| e.into_inner()).remove(&scope);
    }

    /// Registers `sink` for `scope` (replacing an earlier one): it is called with every
    /// descendant followed from its fork on, so the scope can journal it before anything can
    /// move it out of the cgroups.
    pub fn on_follow(&self, scope: u64, sink: FollowSink) {
        self.sinks.lock().unwrap_or_else(|e| e.into_inner()).insert(scope, sink);
    }

    fn notify(&self, news: Vec<(u64, i32, u64)>) {
        if news.is_empty() {
            return;
        }
        let sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        let calls: Vec<(FollowSink, i32, u64)> =
            news.into_iter().filter_map(|(scope, pid, st)| sinks.get(&scope).map(|s| (s.clone(), pid, st))).collect();
        drop(sinks);
        for (sink, pid, st) in calls {
            sink(pid, st);
        }
    }

    fn on_fork(&self, parent: i32, child: i32) {
        let mut st = self.state();
        let Some(p) = st.followed.get(&parent).copied() else { return };
        // The child's start time pins it; a child gone already needs no following.
        if let Some(start_time) = procfs::start_time(child) {
            st.followed.insert(child, Followed { start_time, scope: p.scope });
            drop(st);
            self.notify(vec![(p.scope, child, start_time)]);
        }
    }

    fn on_exit(&self, pid: i32, at: Instant) {
        let mut st = self.state();
        if let Some(f) = st.followed.remove(&pid) {
            st.exits.entry(f.scope).or_default().insert((pid, f.start_time), at);
        }
    }

    /// After dropped events: follow the live children of followed processes found by parent
    /// pid, until nothing new turns up.
    fn resync(&self) {
        let mut news = Vec::new();
        self.resync_into(&mut news);
        self.notify(news);
    }

    fn resync_into(&self, news: &mut Vec<(u64, i32, u64)>) {
        let mut st = self.state();
        st.overruns += 1;
        st.followed.retain(|&pid, f| !procfs::is_gone(pid, f.start_time));
        let all: Vec<procfs::Stat> = procfs::all_pids().into_iter().filter_map(procfs::stat).collect();
        loop {
            let mut grew = false;
            for s in &all {
                if s.is_dead() || st.followed.contains_key(&s.pid) {
                    continue;
                }
                if let Some(p) = st.followed.get(&s.ppid).copied().filter(|p| p.start_time <= s.start_time) {
                    st.followed.insert(s.pid, Followed { start_time: s.start_time, scope: p.scope });
                    news.push((p.scope, s.pid, s.start_time));
                    grew = true;
                }
            }
            if !grew {
                return;
            }
        }
    }
}

/// Opens the connector socket, joins the proc events group and asks the kernel to send them.
fn subscribe() -> Result<OwnedFd, String> {
    // SAFETY: plain socket(2); the result is checked and owned at once.
    let raw = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, NETLINK_CONNECTOR) };
    if raw < 0 {
        return Err(format!("netlink connector socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a fresh, valid descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // A large receive buffer: a fork storm must not drop events (SO_RCVBUFFORCE needs root).
    let size: libc::c_int = 8 << 20;
    // SAFETY: setsockopt with a pointer to a live c_int and its size.
    unsafe {
        let p = (&size as *const libc::c_int).cast();
        let n = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        if libc::setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, p, n) != 0 {
            libc::setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, p, n);
        }
    }
    // SAFETY: an all-zero sockaddr_nl is valid; the fields set below are plain integers.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr.nl_groups = CN_IDX_PROC;
    let len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
    // SAFETY: bind(2) with a pointer to a live sockaddr_nl and its size.
    if unsafe { libc::bind(fd.as_raw_fd(), (&addr as *const libc::sockaddr_nl).cast(), len) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("joining the proc events group: {e} (needs root / CAP_NET_ADMIN)"));
    }
    let msg = listen_request();
    // SAFETY: send(2) of a live byte buffer.
    let sent = unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if sent < 0 {
        return Err(format!("subscribing to proc events: {}", std::io::Error::last_os_error()));
    }
    Ok(fd)
}

/// nlmsghdr + cn_msg + PROC_CN_MCAST_LISTEN.
fn listen_request() -> Vec<u8> {
    let total = NLMSG_HDR + CN_MSG + 4;
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&(total as u32).to_ne_bytes());
    m.extend_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&std::process::id().to_ne_bytes());
    m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // ack
    m.extend_from_slice(&4u16.to_ne_bytes()); // len
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
    m
}

/// One proc event, decoded.
#[derive(Debug, PartialEq, Eq)]
enum ProcEvent {
    /// A new process (not a thread): `child` forked by `parent` (thread group ids).
    Fork {
        parent: i32,
        child: i32,
    },
    /// A process (thread group leader) exited; `timestamp_ns` is CLOCK_MONOTONIC.
    Exit {
        pid: i32,
        timestamp_ns: u64,
    },
    Other,
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    b.get(at..at + 4).and_then(|s| s.try_into().ok()).map(i32::from_ne_bytes)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).and_then(|s| s.try_into().ok()).map(u32::from_ne_bytes)
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8).and_then(|s| s.try_into().ok()).map(u64::from_ne_bytes)
}

/// Decodes one datagram (one netlink message carrying one `proc_event`).
fn parse(b: &[u8]) -> Option<ProcEvent> {
    let ev = NLMSG_HDR + CN_MSG;
    let what = u32_at(b, ev)?;
    let ts = u64_at(b, ev + 8)?;
    let data = ev + 16;
    Some(match what {
        PROC_EVENT_FORK => {
            let (parent_tgid, child_pid, child_tgid) =
                (i32_at(b, data + 4)?, i32_at(b, data + 8)?, i32_at(b, data + 12)?);
            if child_pid != child_tgid {
                return Some(ProcEvent::Other); // a new thread
            }
            ProcEvent::Fork { parent: parent_tgid, child: child_pid }
        }
        PROC_EVENT_EXIT => {
            let (pid, tgid) = (i32_at(b, data)?, i32_at(b, data + 4)?);
            if pid != tgid {
                return Some(ProcEvent::Other); // a thread
            }
            ProcEvent::Exit { pid, timestamp_ns: ts }
        }
        _ => ProcEvent::Other,
    })
}

/// The `Instant` of a CLOCK_MONOTONIC timestamp (Rust's `Instant` uses the same clock).
fn instant_of(timestamp_ns: u64) -> Instant {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into a live timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let now_ns = (now.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(now.tv_nsec as u64);
    Instant::now().checked_sub(Duration::from_nanos(now_ns.saturating_sub(timestamp_ns))).unwrap_or_else(Instant::now)
}

/// The listener loop: runs for the life of the process.
fn listen(socket: OwnedFd) {
    // `tracker()` stores the tracker right after spawning this thread: wait for it.
    let tracker = loop {
        match TRACKER.get() {
            Some(Ok(t)) => break t,
            Some(Err(_)) => return,
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    };
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: recv(2) into a live buffer of the given length.
        let n = unsafe { libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::ENOBUFS) => tracker.resync(),
                Some(libc::EINTR) => {}
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
            continue;
        }
        match parse(&buf[..n as usize]) {
            Some(ProcEvent::Fork { parent, child }) => tracker.on_fork(parent, child),
            Some(ProcEvent::Exit { pid, timestamp_ns }) => tracker.on_exit(pid, instant_of(timestamp_ns)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(what: u32, data: &[i32]) -> Vec<u8> {
        let mut b = vec![0u8; NLMSG_HDR + CN_MSG];
        b.extend_from_slice(&what.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&123_456u64.to_ne_bytes());
        for d in data {
            b.extend_from_slice(&d.to_ne_bytes());
        }
        b
    }

    #[test]
    fn parses_forks_and_exits_and_ignores_threads() {
        assert_eq!(
            parse(&datagram(PROC_EVENT_FORK, &[10, 10, 11, 11])),
            Some(ProcEvent::Fork { parent: 10, child: 11 })
        );
        assert_eq!(parse(&datagram(PROC_EVENT_FORK, &[10, 10, 12, 10])), Some(ProcEvent::Other));
        assert_eq!(
            parse(&datagram(PROC_EVENT_EXIT, &[11, 11, 0, 17])),
            Some(ProcEvent::Exit { pid: 11, timestamp_ns: 123_456 })
        );
        assert_eq!(parse(&datagram(PROC_EVENT_EXIT, &[12, 10, 0, 0])), Some(ProcEvent::Other));
        assert_eq!(parse(&[0u8; 10]), None, "a short datagram is not an event");
    }

    #[test]
    fn the_listen_request_is_a_whole_netlink_message() {
        let m = listen_request();
        assert_eq!(u32_at(&m, 0), Some(m.len() as u32));
        assert_eq!(u32_at(&m, NLMSG_HDR), Some(CN_IDX_PROC));
        assert_eq!(u32_at(&m, NLMSG_HDR + CN_MSG), Some(PROC_CN_MCAST_LISTEN));
    }

    /// Real kernel events: a grandchild forked by a followed child is followed, and its exit
    /// time comes from the kernel. Needs root.
    #[test]
    fn follows_a_real_grandchild_from_its_fork() {
        let tracker = match tracker() {
            Ok(t) => t,
            Err(why) if std::env::var_os("CHAOS_REQUIRE_ALL").is_none() => {
                eprintln!("skipped: {why}");
                return;
            }
            Err(why) => panic!("CHAOS_REQUIRE_ALL is set but kernel process events are unavailable: {why}"),
        };
        // The child waits for its stdin before forking, so it is followed before it forks.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read _; sleep 30 & echo $!; wait"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        let pid = child.id() as i32;
        let scope = 9_000_001;
        tracker.adopt(scope, pid, procfs::start_time(pid).expect("child start time"));
        use std::io::{BufRead, Write};
        child.stdin.take().expect("stdin").write_all(b"go\n").expect("write");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read");
        let grandchild: i32 = line.trim().parse().expect("grandchild pid");
        let st = procfs::start_time(grandchild).expect("grandchild alive");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !tracker.follows(scope, grandchild, st) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(tracker.follows(scope, grandchild, st), "the grandchild forked by a followed process is followed");
        let killed = Instant::now();
        // SAFETY: kill(2) of our own grandchild, just proven alive with its start time.
        unsafe { libc::kill(grandchild, libc::SIGKILL) };
        let _ = child.wait();
        let deadline = Instant::now() + Duration::from_secs(5);
        while tracker.exited_at(scope, grandchild, st).is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let exited = tracker.exited_at(scope, grandchild, st).expect("the kernel reported the exit");
        assert!(exited >= killed, "the exit is after the kill");
        assert!(!tracker.follows(scope, grandchild, st));
        tracker.forget(scope);
        assert!(tracker.followed(scope).is_empty());
    }
}
