//! Latency between members of a [`Bridge`](crate::topology::Bridge) (the nodes of a cluster):
//! [`Fault::latency_between`] delays every IPv4 packet between group `a` and group `b` by a
//! fixed time in each direction, on connections already open as well as new ones.
//!
//! This kernel has neither `netem` nor the `fq` qdisc, and nftables cannot hold a packet, so the
//! delay is a userspace delay line: each member gets a TUN device ([`DELAY_IF`]) in its
//! namespace and a `/32` route to each member of the other group through it (more specific than
//! the bridge subnet on `chaos1`, with the member's bridge address as source, so open sockets
//! keep their addresses). The harness reads each packet from the sender's TUN, holds it for the
//! delay and writes it into the receiver's TUN, where the receiver's kernel takes it as
//! arriving. Order is kept (one FIFO, one constant delay).
//!
//! Nothing needs a journal entry: a TUN device lives as long as the harness holds its file
//! descriptor, and its routes die with it, so a crashed or killed harness leaves the members
//! talking over `chaos1` again. Clearing deletes the routes, writes out the packets still held,
//! then closes the devices. The fault is confirmed by TCP connects between the groups taking at
//! least twice the delay (the SYN and the SYN-ACK are both held), and the clear by a connect
//! answered faster than that again.
//!
//! ```no_run
//! # fn f(n: &[chaos_harness::topology::Member]) {
//! use chaos_harness::fault::Fault;
//! let slow = Fault::latency_between(&n[..1], &n[1..], std::time::Duration::from_millis(50));
//! # let _ = slow; }
//! ```

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::BoxFuture;
use crate::Error;
use crate::fault::{ActiveFault, Confirmation, Fault, FaultContext, Inject};
use crate::topology::Member;
use crate::topology::bridge::probe_from;
use crate::topology::netns::{PROBE_PORT, ProbeResult, run};

/// The TUN device of the delay line in each member's namespace.
pub const DELAY_IF: &str = "chaos-dl";

const PROBE: Duration = Duration::from_secs(2);

/// Latency between groups of bridge members (see the [module docs](self)).
///
/// ```no_run
/// # fn f(n: &[chaos_harness::topology::Member]) {
/// let f = chaos_harness::fault::Fault::latency_between(&n[..1], &n[1..], std::time::Duration::from_millis(50));
/// # let _ = f; }
/// ```
#[derive(Debug, Clone)]
pub struct LatencyBetween {
    a: Vec<Member>,
    b: Vec<Member>,
    delay: Duration,
}

impl Fault {
    /// Delay every packet between members `a` and members `b` by `delay` each way (a round
    /// trip gains twice the delay). Needs root and `/dev/net/tun`.
    ///
    /// ```no_run
    /// # fn f(n: &[chaos_harness::topology::Member]) {
    /// let f = chaos_harness::fault::Fault::latency_between(&n[..1], &n[1..], std::time::Duration::from_millis(50));
    /// # let _ = f; }
    /// ```
    pub fn latency_between(a: &[Member], b: &[Member], delay: Duration) -> LatencyBetween {
        LatencyBetween { a: a.to_vec(), b: b.to_vec(), delay }
    }
}

/// A TUN device opened inside a member's namespace.
fn open_tun(ns_name: &str) -> Result<File, String> {
    let path = std::path::Path::new("/run/netns").join(ns_name);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = (|| {
            let f = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns: {e}"))?;
            let tun = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/net/tun")
                .map_err(|e| format!("/dev/net/tun: {e}"))?;
            #[repr(C)]
            struct IfReq {
                name: [u8; libc::IFNAMSIZ],
                flags: libc::c_short,
                _pad: [u8; 22],
            }
            let mut req = IfReq {
                name: [0; libc::IFNAMSIZ],
                flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
                _pad: [0; 22],
            };
            req.name[..DELAY_IF.len()].copy_from_slice(DELAY_IF.as_bytes());
            const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
            // SAFETY: TUNSETIFF reads a `struct ifreq` (name, then the flags union) that outlives
            // the call; `IfReq` has its layout (16 + 24 bytes).
            let rc = unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETIFF as _, &mut req as *mut IfReq) };
            if rc < 0 {
                return Err(format!("TUNSETIFF {DELAY_IF}: {}", std::io::Error::last_os_error()));
            }
            Ok(tun)
        })();
        let _ = tx.send(r);
    });
    rx.recv().map_err(|_| "the TUN thread died".to_string())?
}

/// The IPv4 destination of a packet.
fn destination(packet: &[u8]) -> Option<Ipv4Addr> {
    (packet.len() >= 20 && packet[0] >> 4 == 4).then(|| Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]))
}

struct Line {
    /// Packets held: when to release, to which member (index into `tuns`), the bytes.
    queue: Mutex<VecDeque<(Instant, usize, Vec<u8>)>>,
    ready: Condvar,
    stop: AtomicBool,
    flush: AtomicBool,
    held: AtomicU64,
}

struct Active {
    confirmation: Confirmation,
    members: Vec<(Member, Vec<Ipv4Addr>)>,
    line: Arc<Line>,
    threads: Vec<std::thread::JoinHandle<()>>,
    pairs: Vec<(Member, SocketAddr)>,
    delay: Duration,
    name: String,
}

fn ip_in(m: &Member, args: &[&str]) -> Result<String, String> {
    let mut all = vec!["-n", m.netns().name()];
    all.extend_from_slice(args);
    run(&m.netns().inner.ip, &all, None)
}

fn unroute(members: &[(Member, Vec<Ipv4Addr>)]) -> Vec<String> {
    let mut errs = Vec::new();
    for (m, peers) in members {
        for p in peers {
            if let Err(e) = ip_in(m, &["route", "del", &format!("{p}/32"), "dev", DELAY_IF]) {
                errs.push(format!("{} route to {p}: {e}", m.netns().name()));
            }
        }
    }
    errs
}

impl LatencyBetween {
    async fn inject_inner(&self, name: &str) -> Result<Box<dyn ActiveFault>, Error> {
        let ni = |cause: String, fix: &str| Error::NotInjected { fault: name.to_string(), cause, fix: fix.into() };
        if self.a.is_empty() || self.b.is_empty() {
            return Err(ni("one side of the fault has no member".into(), "name at least one member on each side"));
        }
        if let Some(m) = self.a.iter().find(|m| self.b.iter().any(|n| n.addr() == m.addr())) {
            return Err(ni(format!("member {} is on both sides", m.addr()), "give two disjoint groups"));
        }
        if self.delay.is_zero() {
            return Err(ni("a delay of 0".into(), "give a positive delay"));
        }
        let pairs: Vec<(Member, SocketAddr)> = match (self.a.first(), self.b.first()) {
            (Some(a0), Some(b0)) => vec![
                (a0.clone(), SocketAddr::from((b0.addr(), PROBE_PORT))),
                (b0.clone(), SocketAddr::from((a0.addr(), PROBE_PORT))),
            ],
            _ => vec![],
        };
        for (m, t) in &pairs {
            let r = probe_from(m.netns(), *t, Duration::from_secs(1)).await;
            if !matches!(r, ProbeResult::Answered(..)) {
                return Err(ni(
                    format!("{} did not reach {t} before the fault ({r:?})", m.addr()),
                    "check the bridge and that no partition is active between these members",
                ));
            }
        }
        let members: Vec<(Member, Vec<Ipv4Addr>)> = self
            .a
            .iter()
            .map(|m| (m.clone(), self.b.iter().map(Member::addr).collect()))
            .chain(self.b.iter().map(|m| (m.clone(), self.a.iter().map(Member::addr).collect())))
            .collect();
        let (me, delay) = (members.clone(), self.delay);
        let opened = tokio::task::spawn_blocking(move || -> Result<Vec<File>, String> {
            let mut tuns = Vec::new();
            for (m, peers) in &me {
                let tun = open_tun(m.netns().name())?;
                ip_in(m, &["link", "set", DELAY_IF, "up"])?;
                for p in peers {
                    let src = m.addr().to_string();
                    ip_in(m, &["route", "add", &format!("{p}/32"), "dev", DELAY_IF, "src", &src])?;
                }
                tuns.push(tun);
            }
            Ok(tuns)
        })
        .await
        .map_err(|e| ni(format!("the setup thread failed: {e}"), "see the harness log"))?;
        let tuns = match opened {
            Ok(t) => t,
            Err(e) => {
                // the devices opened so far close when dropped, their routes with them
                return Err(ni(format!("creating the delay line: {e}"), "run as root with /dev/net/tun present"));
            }
        };
        let line = Arc::new(Line {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            stop: AtomicBool::new(false),
            flush: AtomicBool::new(false),
            held: AtomicU64::new(0),
        });
        let addrs: Vec<Ipv4Addr> = members.iter().map(|(m, _)| m.addr()).collect();
        let mut writers = Vec::new();
        let mut threads = Vec::new();
        for tun in &tuns {
            writers.push(tun.try_clone().map_err(|e| ni(format!("dup TUN: {e}"), "check the fd limit"))?);
        }
        for mut tun in tuns {
            let (line, addrs) = (line.clone(), addrs.clone());
            threads.push(std::thread::spawn(move || {
                let fd = tun.as_raw_fd();
                let mut buf = vec![0u8; 65536];
                while !line.stop.load(Ordering::SeqCst) {
                    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
                    // SAFETY: one valid pollfd for the duration of the call.
                    if unsafe { libc::poll(&mut pfd, 1, 50) } <= 0 {
                        continue;
                    }
                    let Ok(n) = tun.read(&mut buf) else { break };
                    let Some(to) = destination(&buf[..n]).and_then(|d| addrs.iter().position(|a| *a == d)) else {
                        continue;
                    };
                    line.held.fetch_add(1, Ordering::Relaxed);
                    let mut q = line.queue.lock().unwrap_or_else(|e| e.into_inner());
                    q.push_back((Instant::now() + delay, to, buf[..n].to_vec()));
                    line.ready.notify_one();
                }
            }));
        }
        {
            let line = line.clone();
            threads.push(std::thread::spawn(move || {
                let mut writers = writers;
                let mut q = line.queue.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    let flush = line.flush.load(Ordering::SeqCst);
                    match q.front() {
                        Some((due, _, _)) if flush || *due <= Instant::now() => {
                            if let Some((_, to, p)) = q.pop_front() {
                                let _ = writers[to].write(&p);
                            }
                        }
                        Some((due, _, _)) => {
                            let wait = due.saturating_duration_since(Instant::now());
                            q = line.ready.wait_timeout(q, wait).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
                        }
                        None if line.stop.load(Ordering::SeqCst) => break,
                        None => {
                            q = line
                                .ready
                                .wait_timeout(q, Duration::from_millis(50))
                                .map(|(g, _)| g)
                                .unwrap_or_else(|e| e.into_inner().0);
                        }
                    }
                }
            }));
        }
        let mut active = Active {
            confirmation: Confirmation::new(name, "", vec![]),
            members,
            line,
            threads,
            pairs: pairs.clone(),
            delay: self.delay,
            name: name.to_string(),
        };
        let mut seen = Vec::new();
        for (m, t) in &pairs {
            match probe_from(m.netns(), *t, PROBE + 2 * self.delay).await {
                ProbeResult::Answered(_, rtt) if rtt >= 2 * self.delay => {
                    seen.push(format!("{} -> {t} connect {:.1} ms", m.addr(), rtt.as_secs_f64() * 1000.0));
                }
                r => {
                    let cause = format!("a connect {} -> {t} was not delayed by 2 x {:?}: {r:?}", m.addr(), self.delay);
                    let _ = Box::new(active).clear().await;
                    return Err(ni(cause, "check for another route between the members (`ip -n <ns> route`)"));
                }
            }
        }
        active.confirmation = Confirmation::new(
            name,
            format!(
                "{} TUN delay line(s) ({DELAY_IF}) with routes to the other group; {}; {} packet(s) held so far",
                active.members.len(),
                seen.join(", "),
                active.line.held.load(Ordering::Relaxed)
            ),
            vec![],
        );
        Ok(Box::new(active))
    }
}

impl Drop for Active {
    /// Dropped without a clear (an error path, a panic): the threads stop within 50 ms and
    /// close the TUN devices, which takes their routes with them.
    fn drop(&mut self) {
        self.line.flush.store(true, Ordering::SeqCst);
        self.line.stop.store(true, Ordering::SeqCst);
        self.line.ready.notify_all();
    }
}

impl ActiveFault for Active {
    fn confirmation(&self) -> &Confirmation {
        &self.confirmation
    }

    fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, Error>> {
        Box::pin(async move {
            let name = format!("heal: {}", self.name);
            let ni = |cause: String| Error::NotInjected {
                fault: name.clone(),
                cause,
                fix: "the TUN devices close with the harness, their routes with them; check `ip -n <ns> route`".into(),
            };
            let mut this = self;
            let threads = std::mem::take(&mut this.threads);
            let (members, line, pairs, delay) =
                (this.members.clone(), this.line.clone(), this.pairs.clone(), this.delay);
            let errs = tokio::task::spawn_blocking({
                let members = members.clone();
                move || unroute(&members)
            })
            .await
            .unwrap_or_else(|e| vec![e.to_string()]);
            line.flush.store(true, Ordering::SeqCst);
            line.stop.store(true, Ordering::SeqCst);
            line.ready.notify_all();
            let held = line.held.load(Ordering::Relaxed);
            tokio::task::spawn_blocking(move || threads.into_iter().for_each(|t| drop(t.join())))
                .await
                .map_err(|e| ni(format!("joining the delay line: {e}")))?;
            if !errs.is_empty() {
                return Err(ni(format!("deleting routes: {}", errs.join("; "))));
            }
            let mut seen = Vec::new();
            for (m, t) in &pairs {
                match probe_from(m.netns(), *t, PROBE).await {
                    ProbeResult::Answered(_, rtt) if rtt < 2 * delay => {
                        seen.push(format!("{} -> {t} connect {:.1} ms", m.addr(), rtt.as_secs_f64() * 1000.0))
                    }
                    r => return Err(ni(format!("after the heal a connect {} -> {t} still took {r:?}", m.addr()))),
                }
            }
            Ok(Confirmation::new(
                name.clone(),
                format!("routes deleted and TUN devices closed ({held} packet(s) were held); {}", seen.join(", ")),
                vec![],
            ))
        })
    }
}

fn addrs(ms: &[Member]) -> String {
    let v: Vec<String> = ms.iter().map(|m| m.addr().to_string()).collect();
    format!("[{}]", v.join(", "))
}

impl Inject for LatencyBetween {
    fn describe(&self) -> String {
        format!("{:?} latency between {} and {}", self.delay, addrs(&self.a), addrs(&self.b))
    }

    fn inject<'a>(&'a self, _cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            self.inject_inner(&name).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_of_ipv4_packets_only() {
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        p[16..20].copy_from_slice(&[10, 214, 0, 3]);
        assert_eq!(destination(&p), Some(Ipv4Addr::new(10, 214, 0, 3)));
        p[0] = 0x60;
        assert_eq!(destination(&p), None);
        assert_eq!(destination(&[0x45; 10]), None);
    }
}
