//! Partitions for processes that talk directly: a fixture in its own network namespace,
//! joined to the host by a veth pair, and faults that cut or thin that link with nftables
//! rules inside the namespace.
//!
//! # Layout
//!
//! [`Netns::create`] makes, in this order and each step journaled first:
//!
//! * a network namespace `chaos-<name>-<id>` (journal effect `netns`; undo
//!   `ip netns delete`);
//! * a veth pair: `chaos-<id>` on the host, `chaos0` inside the namespace (created with its
//!   peer already inside, so it lives and dies with the namespace: deleting the namespace
//!   deletes both ends);
//! * a private /30 out of `10.213.0.0/16`, which exists only on this machine: the host end
//!   gets `10.213.a.b+1` ([`Netns::host_addr`]), the namespace end `10.213.a.b+2`
//!   ([`Netns::addr`]); `lo` is brought up inside. The /30 is picked under a lock on
//!   `/run/netns`, skipping those already configured on the host.
//!
//! Run a fixture inside with [`Netns::command`] (`ip netns exec <ns> <program>`: the program
//! replaces `ip`, so the fixture's main pid is the program itself). Servers inside listen on
//! [`Netns::addr`] (or `0.0.0.0`) and are reached from the host at `Netns::addr()`; programs
//! inside reach host servers at [`Netns::host_addr`].
//!
//! # Faults
//!
//! * [`Fault::partition`](crate::fault::Fault::partition): an nft table
//!   `netdev chaos_part_*` inside the namespace drops every frame in and out of `chaos0`.
//!   Confirmed by a TCP connect from the host to the namespace that was answered before
//!   (accepted or refused) and now gets no answer, and by the rules' own packet counters.
//!   Healed by deleting the table.
//! * [`Fault::packet_loss`](crate::fault::Fault::packet_loss): an nft table
//!   `netdev chaos_loss_*` dropping N% of frames each way (`numgen random mod 100 < N`).
//!   Confirmed by sending probe datagrams from the host until the rules' counters show drops.
//!
//! The rules sit on the `ingress` and `egress` hooks of the namespace's veth (netdev family),
//! not on `input`/`output`: a packet dropped there is lost silently, as on a real network,
//! while an `output` drop makes the sender's `sendto` fail with `EPERM` (a UDP server that
//! does not expect that dies of it). ARP is dropped too, so after a few seconds of partition
//! connects may fail with "no route to host" instead of timing out, as across a cut cable.
//!
//! Both journal the table (`nft_table` with the namespace) before creating it, so teardown or
//! the crash reaper deletes it; clearing deletes it, checks that the namespace's ruleset is
//! byte for byte what it was before the fault, and confirms the link carries traffic again.
//! Dropping a [`Netns`] deletes the veth and the namespace and checks both are gone; teardown
//! does the same from the journal if the handle is leaked or the test dies.
//!
//! Needs root, `ip` (iproute2) and, for the faults, `nft` (nftables): mark tests
//! `requires = ["netns", "nft"]` so they are ignored with the reason elsewhere.
//!
//! ```no_run
//! use chaos_harness::prelude::*;
//! use chaos_harness::topology::Netns;
//!
//! #[chaos_test(tags = ["network"], requires = ["netns", "nft", "python3"])]
//! async fn server_partitioned(cx: &mut Chaos) -> ChaosResult {
//!     let ns = Netns::create(cx.sandbox(), "srv").await?;
//!     let addr = format!("{}:8000", ns.addr());
//!     let _srv = cx
//!         .start(ns.command(chaos_harness::fixture::python3())
//!             .args(["-m", "http.server", "--bind", "0.0.0.0", "8000"])
//!             .ready(Probe::tcp(&addr)))
//!         .await?;
//!     cx.scenario("partition the server for 2 s")
//!         .inject(Fault::partition(&ns))
//!         .wait(Duration::from_secs(2))
//!         .run()
//!         .await?;
//!     Ok(())
//! }
//! # chaos_harness::main!();
//! ```

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::Error;
use crate::host::capability;
use crate::sandbox::{Effect, Sandbox};

/// The interface name inside every namespace.
pub const NS_IF: &str = "chaos0";

/// The address block the /30s come from (10.213.0.0/16).
pub const SUBNET_BASE: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 0);

/// A port nothing is expected to listen on, used to probe reachability: a reachable
/// namespace answers a connect to it at once (refused, or accepted if something listens).
pub const PROBE_PORT: u16 = 9;

pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

pub(crate) fn setup_err(what: &str, cause: impl Into<String>, fix: impl Into<String>) -> Error {
    Error::Fixture { fixture: format!("network namespace {what}"), cause: cause.into(), fix: fix.into() }
}

pub(crate) fn tool(name: &str, package: &str) -> Result<PathBuf, String> {
    capability::which(name).ok_or_else(|| format!("`{name}` not found on PATH: apt-get install {package}"))
}

/// Runs a tool, returning stdout, or `program args: stderr`.
pub(crate) fn run(program: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", program.display()))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).map_err(|e| format!("{}: writing stdin: {e}", program.display()))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("{}: {e}", program.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{} {}: {}", program.display(), args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// A unique 32-bit id for this process and call.
fn unique_id(run_id: &str) -> u32 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in run_id.bytes().chain(n.to_le_bytes()).chain(std::process::id().to_le_bytes()).chain(nanos.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h ^ (h >> 32)) as u32
}

/// The /30 number `i` (0..16384) of 10.213.0.0/16: (host address, namespace address).
fn subnet(i: u32) -> (Ipv4Addr, Ipv4Addr) {
    let base = u32::from(SUBNET_BASE) + (i % 16384) * 4;
    (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2))
}

/// /30 numbers already configured on the host (from `ip -o -4 addr show`).
fn used_subnets(ip: &Path) -> Result<Vec<u32>, String> {
    let out = run(ip, &["-o", "-4", "addr", "show"], None)?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1))
        .filter_map(|cidr| cidr.split('/').next()?.parse::<Ipv4Addr>().ok())
        .filter_map(|a| {
            let off = u32::from(a).checked_sub(u32::from(SUBNET_BASE))?;
            (off < 65536).then_some(off / 4)
        })
        .collect())
}

/// An exclusive `flock` on `/run/netns`, released when the descriptor closes on drop.
struct NetnsLock {
    _dir: std::fs::File,
}

impl NetnsLock {
    fn take() -> Result<Self, String> {
        let f = std::fs::File::open("/run/netns").map_err(|e| format!("/run/netns: {e}"))?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(format!("flock /run/netns: {}", std::io::Error::last_os_error()));
        }
        Ok(NetnsLock { _dir: f })
    }
}

pub(crate) struct NetnsInner {
    pub(crate) name: String,
    pub(crate) host_if: String,
    pub(crate) host_addr: Ipv4Addr,
    pub(crate) addr: Ipv4Addr,
    pub(crate) id: u32,
    pub(crate) ip: PathBuf,
    pub(crate) seq: u64,
    pub(crate) sandbox: Arc<Sandbox>,
    pub(crate) tables: AtomicU64,
    pub(crate) deleted: AtomicBool,
}

impl NetnsInner {
    /// Deletes the veth and the namespace and verifies both are gone.
    fn delete(&self) -> Result<(), String> {
        if self.deleted.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let host_if_path = Path::new("/sys/class/net").join(&self.host_if);
        if host_if_path.exists() {
            // Deleting one end deletes both, synchronously.
            if let Err(e) = run(&self.ip, &["link", "del", &self.host_if], None)
                && host_if_path.exists()
            {
                return Err(e);
            }
        }
        if Path::new("/run/netns").join(&self.name).exists() {
            run(&self.ip, &["netns", "delete", &self.name], None)?;
        }
        let t0 = Instant::now();
        while host_if_path.exists() || Path::new("/run/netns").join(&self.name).exists() {
            if t0.elapsed() > Duration::from_secs(2) {
                return Err(format!("{} or veth {} still present 2 s after deletion", self.name, self.host_if));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.sandbox.journal().undone(self.seq);
        Ok(())
    }
}

impl Drop for NetnsInner {
    fn drop(&mut self) {
        if let Err(e) = self.delete() {
            tracing::warn!(netns = %self.name, error = %e, "could not delete the network namespace; teardown will retry from the journal");
        }
    }
}

/// A network namespace owned by the test, joined to the host by a veth pair with private
/// addresses (see the [module docs](self)). Cheap to clone; the namespace is deleted when the
/// last clone is dropped, or at teardown.
///
/// ```no_run
/// # async fn f(cx: &mut chaos_harness::Chaos) -> chaos_harness::ChaosResult {
/// use chaos_harness::topology::Netns;
/// let ns = Netns::create(cx.sandbox(), "db").await?;
/// println!("{} reaches the host at {}, the host reaches it at {}", ns.name(), ns.host_addr(), ns.addr());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Netns {
    pub(crate) inner: Arc<NetnsInner>,
}

impl std::fmt::Debug for Netns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netns")
            .field("name", &self.inner.name)
            .field("host_if", &self.inner.host_if)
            .field("addr", &self.inner.addr)
            .field("host_addr", &self.inner.host_addr)
            .finish()
    }
}

impl Netns {
    /// Creates the namespace, the veth pair and the addresses (each journaled first).
    /// `name` is sanitised to `[a-z0-9-]` and cut to 24 characters. Needs root and `ip`.
    ///
    /// ```no_run
    /// # async fn f(cx: &mut chaos_harness::Chaos) -> chaos_harness::ChaosResult {
    /// let ns = chaos_harness::topology::Netns::create(cx.sandbox(), "echo").await?;
    /// assert!(ns.name().starts_with("chaos-echo-"));
    /// # Ok(()) }
    /// ```
    pub async fn create(sandbox: &Arc<Sandbox>, name: &str) -> Result<Netns, Error> {
        let sandbox = sandbox.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || Netns::create_blocking(sandbox, &name))
            .await
            .map_err(|e| setup_err("creation", format!("the setup task failed: {e}"), "rerun"))?
    }

    /// Blocking form of [`Netns::create`] (~30 ms of `ip` calls).
    ///
    /// ```no_run
    /// # fn f(sb: std::sync::Arc<chaos_harness::sandbox::Sandbox>) -> Result<(), chaos_harness::Error> {
    /// let ns = chaos_harness::topology::Netns::create_blocking(sb, "echo")?;
    /// # let _ = ns; Ok(()) }
    /// ```
    pub fn create_blocking(sandbox: Arc<Sandbox>, name: &str) -> Result<Netns, Error> {
        let short: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .take(16)
            .collect();
        let short = if short.is_empty() { "ns".to_string() } else { short };
        let id = unique_id(sandbox.run_id());
        // The run id in the name is the proof `chaos cleanup` needs to remove a leftover.
        let ns = format!("chaos-{}-{short}-{id:08x}", sandbox.run_id());
        if !nix::unistd::geteuid().is_root() {
            return Err(setup_err(
                &ns,
                format!("creating network namespaces needs root (running as uid {})", nix::unistd::geteuid()),
                "run as root, and mark the test requires = [\"netns\"] so it is ignored elsewhere",
            ));
        }
        let ip = tool("ip", "iproute2").map_err(|why| setup_err(&ns, why, "install iproute2"))?;
        let host_if = format!("chaos-{id:08x}");
        let (_, seq) = sandbox.record(Effect::Netns { name: ns.clone() }, || {
            run(&ip, &["netns", "add", &ns], None)
                .map_err(|e| setup_err(&ns, e, "check that you are root and that /run/netns is writable"))
        })?;
        // From here on the handle owns the namespace: any failure below deletes it on drop.
        let mut inner = NetnsInner {
            name: ns.clone(),
            host_if: host_if.clone(),
            host_addr: Ipv4Addr::UNSPECIFIED,
            addr: Ipv4Addr::UNSPECIFIED,
            id,
            ip: ip.clone(),
            seq,
            sandbox: sandbox.clone(),
            tables: AtomicU64::new(0),
            deleted: AtomicBool::new(false),
        };
        let fail =
            |e: String| setup_err(&ns, e, "check `ip link` and `ip -o -4 addr`; the namespace was deleted again");
        {
            let _lock = NetnsLock::take().map_err(fail)?;
            let used = used_subnets(&ip).map_err(fail)?;
            let mut i = id % 16384;
            let mut tries = 0;
            while used.contains(&i) {
                i = (i + 1) % 16384;
                tries += 1;
                if tries >= 16384 {
                    return Err(fail("every /30 of 10.213.0.0/16 is in use on this host".into()));
                }
            }
            let (host_addr, addr) = subnet(i);
            inner.host_addr = host_addr;
            inner.addr = addr;
            let host_cidr = format!("{host_addr}/30");
            let ns_cidr = format!("{addr}/30");
            let steps: [&[&str]; 6] = [
                &["link", "add", &host_if, "type", "veth", "peer", "name", NS_IF, "netns", &ns],
                &["addr", "add", &host_cidr, "dev", &host_if],
                &["link", "set", &host_if, "up"],
                &["-n", &ns, "addr", "add", &ns_cidr, "dev", NS_IF],
                &["-n", &ns, "link", "set", NS_IF, "up"],
                &["-n", &ns, "link", "set", "lo", "up"],
            ];
            for args in steps {
                run(&ip, args, None).map_err(fail)?;
            }
        }
        let oper = Path::new("/sys/class/net").join(&host_if).join("operstate");
        let t0 = Instant::now();
        while std::fs::read_to_string(&oper).map(|s| s.trim() != "up").unwrap_or(true) {
            if t0.elapsed() > Duration::from_secs(2) {
                return Err(fail(format!("veth {host_if} did not come up within 2 s")));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        tracing::debug!(netns = %ns, veth = %host_if, addr = %inner.addr, "network namespace created");
        Ok(Netns { inner: Arc::new(inner) })
    }

    /// The namespace's name (`chaos-<name>-<id>`, as `ip netns list` shows it).
    ///
    /// ```no_run
    /// # fn f(ns: &chaos_harness::topology::Netns) { println!("{}", ns.name()); }
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The namespace's address (its end of the veth): what the host dials to reach servers
    /// inside.
    ///
    /// ```no_run
    /// # fn f(ns: &chaos_harness::topology::Netns) { println!("{}:8000", ns.addr()); }
    /// ```
    pub fn addr(&self) -> Ipv4Addr {
        self.inner.addr
    }

    /// The host's address on the veth: what programs inside dial to reach host servers
    /// (which must listen on it or on `0.0.0.0`).
    ///
    /// ```no_run
    /// # fn f(ns: &chaos_harness::topology::Netns) { println!("{}", ns.host_addr()); }
    /// ```
    pub fn host_addr(&self) -> Ipv4Addr {
        self.inner.host_addr
    }

    /// The host end of the veth pair (`chaos-<id>`).
    ///
    /// ```no_run
    /// # fn f(ns: &chaos_harness::topology::Netns) { assert!(ns.host_interface().starts_with("chaos-")); }
    /// ```
    pub fn host_interface(&self) -> &str {
        &self.inner.host_if
    }

    /// The `ip` binary and the arguments that run a program inside the namespace
    /// (`ip netns exec <ns>`); `Netns::command` (in [`crate::fixture::command`]) builds
    /// fixtures from it.
    ///
    /// ```no_run
    /// # fn f(ns: &chaos_harness::topology::Netns) {
    /// let (ip, args) = ns.exec_prefix();
    /// assert_eq!(args[0], "netns");
    /// # let _ = ip; }
    /// ```
    pub fn exec_prefix(&self) -> (PathBuf, [String; 3]) {
        (self.inner.ip.clone(), ["netns".into(), "exec".into(), self.inner.name.clone()])
    }

    /// Runs `program args` inside the namespace to completion (blocking) and returns its
    /// stdout; for inspection (`nft list ruleset`, `ip addr`), not for fixtures.
    ///
    /// ```no_run
    /// # fn f(ns: &chaos_harness::topology::Netns) -> Result<(), chaos_harness::Error> {
    /// let links = ns.exec("ip", &["-o", "link"])?;
    /// assert!(links.contains("chaos0"));
    /// # Ok(()) }
    /// ```
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String, Error> {
        let mut all = vec!["netns", "exec", self.inner.name.as_str(), program];
        all.extend_from_slice(args);
        run(&self.inner.ip, &all, None)
            .map_err(|e| setup_err(&self.inner.name, e, "check the program exists and the namespace is alive"))
    }

    /// Deletes the veth and the namespace now and verifies both are gone (dropping the last
    /// clone does the same; teardown does it from the journal otherwise). Kill fixtures
    /// running inside first: a namespace lives until its last process exits.
    ///
    /// ```no_run
    /// # async fn f(ns: chaos_harness::topology::Netns) -> Result<(), chaos_harness::Error> {
    /// ns.delete().await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete(self) -> Result<(), Error> {
        let inner = self.inner.clone();
        let name = inner.name.clone();
        tokio::task::spawn_blocking(move || inner.delete())
            .await
            .map_err(|e| setup_err(&name, format!("the delete task failed: {e}"), "teardown will retry"))?
            .map_err(|e| setup_err(&name, e, "teardown will retry from the journal"))
    }

    pub(crate) fn nft(&self) -> Result<PathBuf, String> {
        tool("nft", "nftables")
    }

    /// `nft <args>` inside the namespace.
    pub(crate) fn nft_run(&self, nft: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let mut all: Vec<&str> = vec!["netns", "exec", self.inner.name.as_str()];
        let nft = nft.to_string_lossy();
        all.push(&nft);
        all.extend_from_slice(args);
        run(&self.inner.ip, &all, stdin)
    }

    pub(crate) fn probe_addr(&self) -> SocketAddr {
        SocketAddr::from((self.inner.addr, PROBE_PORT))
    }
}

/// What a connect probe found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ProbeResult {
    /// Accepted or refused: packets flow both ways.
    Answered(&'static str, Duration),
    /// No answer within the timeout.
    Silent,
    /// Some other error.
    Failed(String),
}

pub(crate) async fn probe(addr: SocketAddr, timeout: Duration) -> ProbeResult {
    let t0 = Instant::now();
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => ProbeResult::Answered("accepted", t0.elapsed()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            ProbeResult::Answered("refused", t0.elapsed())
        }
        Ok(Err(e)) => ProbeResult::Failed(e.to_string()),
        Err(_) => ProbeResult::Silent,
    }
}

/// Probes until answered or `within` passes.
pub(crate) async fn probe_until_answered(
    addr: SocketAddr,
    within: Duration,
) -> Result<(&'static str, Duration), String> {
    let t0 = Instant::now();
    loop {
        let last = match probe(addr, PROBE_TIMEOUT).await {
            ProbeResult::Answered(how, _) => return Ok((how, t0.elapsed())),
            ProbeResult::Silent => format!("no answer within {PROBE_TIMEOUT:?}"),
            ProbeResult::Failed(e) => e,
        };
        if t0.elapsed() >= within {
            return Err(last);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A namespace handle that owns nothing (unit tests of rule generation).
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    pub(crate) fn fake(sb: &Arc<Sandbox>) -> Netns {
        Netns {
            inner: Arc::new(NetnsInner {
                name: "chaos-fake".into(),
                host_if: "chaos-none-xxxx".into(),
                host_addr: Ipv4Addr::UNSPECIFIED,
                addr: Ipv4Addr::UNSPECIFIED,
                id: 1,
                ip: "ip".into(),
                seq: 0,
                sandbox: sb.clone(),
                tables: AtomicU64::new(0),
                deleted: AtomicBool::new(true),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_private_slash_30s() {
        assert_eq!(subnet(0), (Ipv4Addr::new(10, 213, 0, 1), Ipv4Addr::new(10, 213, 0, 2)));
        assert_eq!(subnet(65), (Ipv4Addr::new(10, 213, 1, 5), Ipv4Addr::new(10, 213, 1, 6)));
        assert_eq!(subnet(16383), (Ipv4Addr::new(10, 213, 255, 253), Ipv4Addr::new(10, 213, 255, 254)));
        assert_eq!(subnet(16384), subnet(0));
    }
}
