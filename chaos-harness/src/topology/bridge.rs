//! A private LAN for several network namespaces: a Linux bridge living in a hub namespace of its
//! own, and one veth pair per attached namespace (cluster wiring for multi-node fixtures).
//!
//! # Layout
//!
//! [`Bridge::create`] makes a hub namespace `chaos-<name>-<id>` (a [`Netns`], journaled like
//! every namespace, with its own veth to the host) and a bridge `br0` *inside it*.
//! [`Bridge::attach`] adds a veth pair created in the hub with its peer moved into the member
//! namespace: `m<k>` (enslaved to `br0`) in the hub, [`BRIDGE_IF`] (`chaos1`) in the member,
//! with the address `10.214.0.<k>/24` ([`Member::addr`]). Nothing lives on the host: the
//! bridge and every hub-side veth end die with the hub namespace, every member-side end with
//! its member namespace, so deleting the namespaces (on drop, at teardown, or by the crash
//! reaper from the journal) leaves no bridge and no veth behind. The `10.214.0.0/24` subnet
//! exists only inside these namespaces, so parallel clusters do not collide.
//!
//! Members keep their own veth to the host (their [`Netns::addr`]), so the harness reaches every
//! member directly; faults between members ([`crate::fault::net::between`]) act on `chaos1`
//! only, as in Jepsen, where clients reach every node and the nodes are cut from each other.
//!
//! ```no_run
//! # async fn f(cx: &mut chaos_harness::Chaos) -> chaos_harness::ChaosResult {
//! use chaos_harness::topology::{Bridge, Netns};
//! let lan = Bridge::create(cx.sandbox(), "lan").await?;
//! let a = lan.attach(&Netns::create(cx.sandbox(), "a").await?).await?;
//! let b = lan.attach(&Netns::create(cx.sandbox(), "b").await?).await?;
//! assert_ne!(a.addr(), b.addr());
//! # Ok(()) }
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crate::Error;
use crate::sandbox::Sandbox;
use crate::topology::Netns;
use crate::topology::netns::{ProbeResult, run, setup_err};

/// The member-side interface of every bridge veth.
pub const BRIDGE_IF: &str = "chaos1";

/// The bridge device inside the hub namespace.
pub const BRIDGE_DEV: &str = "br0";

/// The members' subnet (`10.214.0.0/24`, private to the hub and its members).
pub const BRIDGE_SUBNET: Ipv4Addr = Ipv4Addr::new(10, 214, 0, 0);

/// A bridge in a hub namespace (see the [module docs](self)). Cheap to clone.
///
/// ```no_run
/// # async fn f(cx: &mut chaos_harness::Chaos) -> chaos_harness::ChaosResult {
/// let lan = chaos_harness::topology::Bridge::create(cx.sandbox(), "lan").await?;
/// assert!(lan.hub().name().starts_with("chaos-lan-"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Bridge {
    hub: Netns,
    next: Arc<AtomicU8>,
}

/// A namespace attached to a [`Bridge`]: its address on the bridge's subnet.
///
/// ```no_run
/// # fn f(m: &chaos_harness::topology::Member) {
/// println!("{} is {} on the LAN", m.netns().name(), m.addr());
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Member {
    ns: Netns,
    addr: Ipv4Addr,
    index: u8,
}

impl Member {
    /// The member's namespace.
    ///
    /// ```no_run
    /// # fn f(m: &chaos_harness::topology::Member) { println!("{}", m.netns().addr()); }
    /// ```
    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    /// Its address on the bridge (`10.214.0.<k>`), for traffic between members.
    ///
    /// ```no_run
    /// # fn f(m: &chaos_harness::topology::Member) { println!("{}", m.addr()); }
    /// ```
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// Its number on the bridge (1-based, the last byte of [`Member::addr`]).
    ///
    /// ```no_run
    /// # fn f(m: &chaos_harness::topology::Member) { assert!(m.index() >= 1); }
    /// ```
    pub fn index(&self) -> u8 {
        self.index
    }

    /// A TCP connect from inside this member's namespace to `target` (e.g. another member's
    /// address and [`crate::topology::netns::PROBE_PORT`]): `true` when answered (accepted or
    /// refused) within `timeout`, `false` when silent or unreachable.
    ///
    /// ```no_run
    /// # async fn f(a: &chaos_harness::topology::Member, b: &chaos_harness::topology::Member) {
    /// let reach = a.reaches((b.addr(), 9).into(), std::time::Duration::from_millis(300)).await;
    /// # let _ = reach; }
    /// ```
    pub async fn reaches(&self, target: SocketAddr, timeout: Duration) -> bool {
        matches!(probe_from(&self.ns, target, timeout).await, ProbeResult::Answered(..))
    }
}

impl Bridge {
    /// Creates the hub namespace and the bridge in it (journaled through the namespace).
    ///
    /// ```no_run
    /// # async fn f(cx: &mut chaos_harness::Chaos) -> chaos_harness::ChaosResult {
    /// let lan = chaos_harness::topology::Bridge::create(cx.sandbox(), "lan").await?;
    /// # let _ = lan; Ok(()) }
    /// ```
    pub async fn create(sandbox: &Arc<Sandbox>, name: &str) -> Result<Bridge, Error> {
        let hub = Netns::create(sandbox, name).await?;
        let h = hub.clone();
        tokio::task::spawn_blocking(move || {
            let ip = &h.inner.ip;
            let ns = h.name();
            for args in [
                &["-n", ns, "link", "add", BRIDGE_DEV, "type", "bridge"][..],
                &["-n", ns, "link", "set", BRIDGE_DEV, "up"][..],
            ] {
                run(ip, args, None).map_err(|e| {
                    setup_err(ns, format!("creating bridge {BRIDGE_DEV}: {e}"), "check that the bridge module loads")
                })?;
            }
            Ok::<_, Error>(())
        })
        .await
        .map_err(|e| setup_err("bridge", format!("the setup task failed: {e}"), "rerun"))??;
        Ok(Bridge { hub, next: Arc::new(AtomicU8::new(1)) })
    }

    /// The hub namespace holding the bridge.
    ///
    /// ```no_run
    /// # fn f(b: &chaos_harness::topology::Bridge) { println!("{}", b.hub().name()); }
    /// ```
    pub fn hub(&self) -> &Netns {
        &self.hub
    }

    /// Attaches `ns` to the bridge: a veth pair from the hub into `ns` ([`BRIDGE_IF`]), the
    /// next free address of `10.214.0.0/24`; waits until the link is up. At most 250 members.
    ///
    /// ```no_run
    /// # async fn f(cx: &mut chaos_harness::Chaos, lan: &chaos_harness::topology::Bridge) -> chaos_harness::ChaosResult {
    /// let m = lan.attach(&chaos_harness::topology::Netns::create(cx.sandbox(), "n1").await?).await?;
    /// # let _ = m; Ok(()) }
    /// ```
    pub async fn attach(&self, ns: &Netns) -> Result<Member, Error> {
        let k = self.next.fetch_add(1, Ordering::SeqCst);
        if !(1..=250).contains(&k) {
            return Err(setup_err(self.hub.name(), "more than 250 members on one bridge", "use fewer nodes"));
        }
        let (hub, member) = (self.hub.clone(), ns.clone());
        tokio::task::spawn_blocking(move || attach_blocking(&hub, &member, k))
            .await
            .map_err(|e| setup_err("bridge", format!("the attach task failed: {e}"), "rerun"))?
    }
}

fn attach_blocking(hub: &Netns, ns: &Netns, k: u8) -> Result<Member, Error> {
    let ip = &hub.inner.ip;
    let hub_if = format!("m{k}");
    let addr = Ipv4Addr::from(u32::from(BRIDGE_SUBNET) + u32::from(k));
    let cidr = format!("{addr}/24");
    let steps: [&[&str]; 6] = [
        &["-n", hub.name(), "link", "add", &hub_if, "type", "veth", "peer", "name", BRIDGE_IF, "netns", ns.name()],
        &["-n", hub.name(), "link", "set", &hub_if, "master", BRIDGE_DEV],
        &["-n", hub.name(), "link", "set", &hub_if, "up"],
        &["-n", ns.name(), "addr", "add", &cidr, "dev", BRIDGE_IF],
        &["-n", ns.name(), "link", "set", BRIDGE_IF, "up"],
        &["-n", ns.name(), "link", "set", "lo", "up"],
    ];
    for args in steps {
        run(ip, args, None).map_err(|e| {
            setup_err(
                ns.name(),
                format!("attaching to bridge {BRIDGE_DEV} in {}: {e}", hub.name()),
                "check `ip -n <hub> link`; both namespaces are deleted at teardown",
            )
        })?;
    }
    let t0 = Instant::now();
    loop {
        let state = run(ip, &["-n", ns.name(), "-o", "link", "show", BRIDGE_IF], None).unwrap_or_default();
        if state.contains("state UP") || state.contains(",UP,LOWER_UP") {
            break;
        }
        if t0.elapsed() > Duration::from_secs(3) {
            return Err(setup_err(ns.name(), format!("{BRIDGE_IF} did not come up within 3 s: {state}"), "rerun"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(Member { ns: ns.clone(), addr, index: k })
}

/// A TCP connect from inside `ns` (a thread that joins the namespace with `setns`, so the
/// socket lives there) to `target`.
pub(crate) async fn probe_from(ns: &Netns, target: SocketAddr, timeout: Duration) -> ProbeResult {
    let path = std::path::Path::new("/run/netns").join(ns.name());
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let r = (|| {
            let f = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns: {e}"))?;
            let t0 = Instant::now();
            Ok::<_, String>(match std::net::TcpStream::connect_timeout(&target, timeout) {
                Ok(_) => ProbeResult::Answered("accepted", t0.elapsed()),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    ProbeResult::Answered("refused", t0.elapsed())
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut || e.kind() == std::io::ErrorKind::WouldBlock => {
                    ProbeResult::Silent
                }
                Err(e) => ProbeResult::Failed(e.to_string()),
            })
        })();
        let _ = tx.send(r.unwrap_or_else(ProbeResult::Failed));
    });
    rx.await.unwrap_or_else(|_| ProbeResult::Failed("probe thread died".into()))
}

/// Sends `n` UDP datagrams from inside `ns` to `target` (to make drop counters move).
pub(crate) async fn datagrams_from(ns: &Netns, target: SocketAddr, n: usize) -> Result<usize, String> {
    let path = std::path::Path::new("/run/netns").join(ns.name());
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let r = (|| {
            let f = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns: {e}"))?;
            let sock = std::net::UdpSocket::bind(("0.0.0.0", 0)).map_err(|e| format!("udp socket: {e}"))?;
            Ok((0..n).filter(|_| sock.send_to(b"chaos-harness probe", target).is_ok()).count())
        })();
        let _ = tx.send(r);
    });
    rx.await.unwrap_or_else(|_| Err("probe thread died".into()))
}

/// A member that was never attached (unit tests of rule generation).
#[cfg(test)]
pub(crate) fn fake_member(ns: &Netns, k: u8) -> Member {
    Member { ns: ns.clone(), addr: Ipv4Addr::from(u32::from(BRIDGE_SUBNET) + u32::from(k)), index: k }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_addresses_are_in_the_private_subnet() {
        assert_eq!(Ipv4Addr::from(u32::from(BRIDGE_SUBNET) + 3), Ipv4Addr::new(10, 214, 0, 3));
    }
}
