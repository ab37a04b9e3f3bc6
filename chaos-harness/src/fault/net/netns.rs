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
//! use chaos_harness::fault::net::Netns;
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

use std::ffi::OsStr;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::Error;
use crate::fault::{ActiveFault, Confirmation, Fault, FaultContext, Inject};
use crate::fixture::{BoxFuture, Command};
use crate::runner::capability;
use crate::sandbox::{Effect, Sandbox};

/// The interface name inside every namespace.
pub const NS_IF: &str = "chaos0";

/// The address block the /30s come from (10.213.0.0/16).
pub const SUBNET_BASE: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 0);

/// A port nothing is expected to listen on, used to probe reachability: a reachable
/// namespace answers a connect to it at once (refused, or accepted if something listens).
pub const PROBE_PORT: u16 = 9;

const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

fn setup_err(what: &str, cause: impl Into<String>, fix: impl Into<String>) -> Error {
    Error::Fixture {
        fixture: format!("network namespace {what}"),
        cause: cause.into(),
        fix: fix.into(),
    }
}

fn tool(name: &str, package: &str) -> Result<PathBuf, String> {
    capability::which(name)
        .ok_or_else(|| format!("`{name}` not found on PATH: apt-get install {package}"))
}

/// Runs a tool, returning stdout, or `program args: stderr`.
fn run(program: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .map_err(|e| format!("{}: writing stdin: {e}", program.display()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} {}: {}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A unique 32-bit id for this process and call.
fn unique_id(run_id: &str) -> u32 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in run_id
        .bytes()
        .chain(n.to_le_bytes())
        .chain(std::process::id().to_le_bytes())
        .chain(nanos.to_le_bytes())
    {
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
            return Err(format!(
                "flock /run/netns: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(NetnsLock { _dir: f })
    }
}

struct NetnsInner {
    name: String,
    host_if: String,
    host_addr: Ipv4Addr,
    addr: Ipv4Addr,
    id: u32,
    ip: PathBuf,
    seq: u64,
    sandbox: Arc<Sandbox>,
    tables: AtomicU64,
    deleted: AtomicBool,
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
                return Err(format!(
                    "{} or veth {} still present 2 s after deletion",
                    self.name, self.host_if
                ));
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
/// use chaos_harness::fault::net::Netns;
/// let ns = Netns::create(cx.sandbox(), "db").await?;
/// println!("{} reaches the host at {}, the host reaches it at {}", ns.name(), ns.host_addr(), ns.addr());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Netns {
    inner: Arc<NetnsInner>,
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
    /// let ns = chaos_harness::fault::net::Netns::create(cx.sandbox(), "echo").await?;
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
    /// let ns = chaos_harness::fault::net::Netns::create_blocking(sb, "echo")?;
    /// # let _ = ns; Ok(()) }
    /// ```
    pub fn create_blocking(sandbox: Arc<Sandbox>, name: &str) -> Result<Netns, Error> {
        let short: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(24)
            .collect();
        let short = if short.is_empty() {
            "ns".to_string()
        } else {
            short
        };
        let id = unique_id(sandbox.run_id());
        let ns = format!("chaos-{short}-{id:08x}");
        if !nix::unistd::geteuid().is_root() {
            return Err(setup_err(
                &ns,
                format!(
                    "creating network namespaces needs root (running as uid {})",
                    nix::unistd::geteuid()
                ),
                "run as root, and mark the test requires = [\"netns\"] so it is ignored elsewhere",
            ));
        }
        let ip = tool("ip", "iproute2").map_err(|why| setup_err(&ns, why, "install iproute2"))?;
        let host_if = format!("chaos-{id:08x}");
        let (_, seq) = sandbox.record(Effect::Netns { name: ns.clone() }, || {
            run(&ip, &["netns", "add", &ns], None).map_err(|e| {
                setup_err(
                    &ns,
                    e,
                    "check that you are root and that /run/netns is writable",
                )
            })
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
        let fail = |e: String| {
            setup_err(
                &ns,
                e,
                "check `ip link` and `ip -o -4 addr`; the namespace was deleted again",
            )
        };
        {
            let _lock = NetnsLock::take().map_err(fail)?;
            let used = used_subnets(&ip).map_err(fail)?;
            let mut i = id % 16384;
            let mut tries = 0;
            while used.contains(&i) {
                i = (i + 1) % 16384;
                tries += 1;
                if tries >= 16384 {
                    return Err(fail(
                        "every /30 of 10.213.0.0/16 is in use on this host".into(),
                    ));
                }
            }
            let (host_addr, addr) = subnet(i);
            inner.host_addr = host_addr;
            inner.addr = addr;
            let host_cidr = format!("{host_addr}/30");
            let ns_cidr = format!("{addr}/30");
            let steps: [&[&str]; 6] = [
                &[
                    "link", "add", &host_if, "type", "veth", "peer", "name", NS_IF, "netns", &ns,
                ],
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
        while std::fs::read_to_string(&oper)
            .map(|s| s.trim() != "up")
            .unwrap_or(true)
        {
            if t0.elapsed() > Duration::from_secs(2) {
                return Err(fail(format!("veth {host_if} did not come up within 2 s")));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        tracing::debug!(netns = %ns, veth = %host_if, addr = %inner.addr, "network namespace created");
        Ok(Netns {
            inner: Arc::new(inner),
        })
    }

    /// The namespace's name (`chaos-<name>-<id>`, as `ip netns list` shows it).
    ///
    /// ```no_run
    /// # fn f(ns: &chaos_harness::fault::net::Netns) { println!("{}", ns.name()); }
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The namespace's address (its end of the veth): what the host dials to reach servers
    /// inside.
    ///
    /// ```no_run
    /// # fn f(ns: &chaos_harness::fault::net::Netns) { println!("{}:8000", ns.addr()); }
    /// ```
    pub fn addr(&self) -> Ipv4Addr {
        self.inner.addr
    }

    /// The host's address on the veth: what programs inside dial to reach host servers
    /// (which must listen on it or on `0.0.0.0`).
    ///
    /// ```no_run
    /// # fn f(ns: &chaos_harness::fault::net::Netns) { println!("{}", ns.host_addr()); }
    /// ```
    pub fn host_addr(&self) -> Ipv4Addr {
        self.inner.host_addr
    }

    /// The host end of the veth pair (`chaos-<id>`).
    ///
    /// ```no_run
    /// # fn f(ns: &chaos_harness::fault::net::Netns) { assert!(ns.host_interface().starts_with("chaos-")); }
    /// ```
    pub fn host_interface(&self) -> &str {
        &self.inner.host_if
    }

    /// A [`Command`] fixture running `program` inside the namespace
    /// (`ip netns exec <ns> <program>`); add arguments, probes and a name as usual. Its name
    /// defaults to the program's file name.
    ///
    /// ```no_run
    /// # async fn f(cx: &mut chaos_harness::Chaos, ns: &chaos_harness::fault::net::Netns) -> chaos_harness::ChaosResult {
    /// use chaos_harness::fixture::Probe;
    /// let srv = cx.start(ns.command("python3").args(["-m", "http.server", "8000"])
    ///     .ready(Probe::tcp(&format!("{}:8000", ns.addr())))).await?;
    /// # let _ = srv; Ok(()) }
    /// ```
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let program = program.as_ref();
        let name = Path::new(program)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| "command".into());
        Command::new(&self.inner.ip)
            .args([
                OsStr::new("netns"),
                OsStr::new("exec"),
                OsStr::new(&self.inner.name),
                program,
            ])
            .name(name)
    }

    /// Runs `program args` inside the namespace to completion (blocking) and returns its
    /// stdout; for inspection (`nft list ruleset`, `ip addr`), not for fixtures.
    ///
    /// ```no_run
    /// # fn f(ns: &chaos_harness::fault::net::Netns) -> Result<(), chaos_harness::Error> {
    /// let links = ns.exec("ip", &["-o", "link"])?;
    /// assert!(links.contains("chaos0"));
    /// # Ok(()) }
    /// ```
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String, Error> {
        let mut all = vec!["netns", "exec", self.inner.name.as_str(), program];
        all.extend_from_slice(args);
        run(&self.inner.ip, &all, None).map_err(|e| {
            setup_err(
                &self.inner.name,
                e,
                "check the program exists and the namespace is alive",
            )
        })
    }

    /// Deletes the veth and the namespace now and verifies both are gone (dropping the last
    /// clone does the same; teardown does it from the journal otherwise). Kill fixtures
    /// running inside first: a namespace lives until its last process exits.
    ///
    /// ```no_run
    /// # async fn f(ns: chaos_harness::fault::net::Netns) -> Result<(), chaos_harness::Error> {
    /// ns.delete().await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete(self) -> Result<(), Error> {
        let inner = self.inner.clone();
        let name = inner.name.clone();
        tokio::task::spawn_blocking(move || inner.delete())
            .await
            .map_err(|e| {
                setup_err(
                    &name,
                    format!("the delete task failed: {e}"),
                    "teardown will retry",
                )
            })?
            .map_err(|e| setup_err(&name, e, "teardown will retry from the journal"))
    }

    fn nft(&self) -> Result<PathBuf, String> {
        tool("nft", "nftables")
    }

    /// `nft <args>` inside the namespace.
    fn nft_run(&self, nft: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let mut all: Vec<&str> = vec!["netns", "exec", self.inner.name.as_str()];
        let nft = nft.to_string_lossy();
        all.push(&nft);
        all.extend_from_slice(args);
        run(&self.inner.ip, &all, stdin)
    }

    fn probe_addr(&self) -> SocketAddr {
        SocketAddr::from((self.inner.addr, PROBE_PORT))
    }
}

/// What a connect probe found.
#[derive(Debug, PartialEq, Eq)]
enum ProbeResult {
    /// Accepted or refused: packets flow both ways.
    Answered(&'static str, Duration),
    /// No answer within the timeout.
    Silent,
    /// Some other error.
    Failed(String),
}

async fn probe(addr: SocketAddr, timeout: Duration) -> ProbeResult {
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
async fn probe_until_answered(
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

/// Sum of the packet counters in an `nft list table` listing.
fn counted_packets(listing: &str) -> u64 {
    listing
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace().skip_while(|w| *w != "packets");
            w.next()?;
            w.next()?.parse::<u64>().ok()
        })
        .sum()
}

/// The nft family of the fault tables (hooks on the veth itself).
const FAMILY: &str = "netdev";

/// Which nft rules a [`NftFault`] installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rules {
    /// Drop everything on the veth.
    Partition,
    /// Drop this percentage of packets each way.
    Loss(u8),
}

/// An nftables table inside a [`Netns`] as a fault: `Fault::partition(&ns)` (drop everything)
/// or `Fault::packet_loss(&ns, percent)`. See the [module docs](self) for how each is
/// confirmed and restored.
///
/// ```no_run
/// # fn f(ns: &chaos_harness::fault::net::Netns) {
/// use chaos_harness::fault::Fault;
/// let cut = Fault::partition(ns);
/// let lossy = Fault::packet_loss(ns, 30);
/// # let _ = (cut, lossy); }
/// ```
#[derive(Debug, Clone)]
pub struct NftFault {
    ns: Netns,
    rules: Rules,
}

impl NftFault {
    fn table_prefix(&self) -> &'static str {
        match self.rules {
            Rules::Partition => "chaos_part",
            Rules::Loss(_) => "chaos_loss",
        }
    }

    fn ruleset(&self, table: &str) -> String {
        let matcher = match self.rules {
            Rules::Partition => String::new(),
            Rules::Loss(p) => format!("numgen random mod 100 < {p} "),
        };
        format!(
            "table {FAMILY} {table} {{\n\
             \tchain ingress {{ type filter hook ingress device \"{NS_IF}\" priority -500; policy accept; {matcher}counter drop; }}\n\
             \tchain egress {{ type filter hook egress device \"{NS_IF}\" priority -500; policy accept; {matcher}counter drop; }}\n\
             }}\n"
        )
    }

    async fn inject_inner(
        &self,
        name: &str,
        sandbox: &Arc<Sandbox>,
    ) -> Result<Box<dyn ActiveFault>, Error> {
        let ns = &self.ns;
        let ni = |cause: String, fix: &str| Error::NotInjected {
            fault: name.to_string(),
            cause,
            fix: fix.into(),
        };
        if let Rules::Loss(p) = self.rules
            && !(1..=100).contains(&p)
        {
            return Err(ni(
                format!("packet loss of {p}% is out of range"),
                "give a percentage from 1 to 100",
            ));
        }
        let nft = ns.nft().map_err(|why| {
            ni(
                why,
                "install nftables and mark the test requires = [\"nft\"]",
            )
        })?;
        let target = ns.probe_addr();
        let before_probe = match probe_until_answered(target, Duration::from_secs(2)).await {
            Ok((how, d)) => format!("{how} in {:.1} ms", d.as_secs_f64() * 1000.0),
            Err(e) => {
                return Err(ni(
                    format!(
                        "the namespace did not answer a probe connect to {target} before the fault ({e}), so a failing probe would prove nothing"
                    ),
                    "check the veth link (`ip link`, `ip -n <ns> addr`) and that no other fault is active on it",
                ));
            }
        };
        let ruleset_before = ns
            .nft_run(&nft, &["list", "ruleset"], None)
            .map_err(|e| ni(e, "check nftables inside the namespace"))?;
        let n = ns.inner.tables.fetch_add(1, Ordering::Relaxed) + 1;
        let table = format!("{}_{:08x}_{n}", self.table_prefix(), ns.inner.id);
        let rules = self.ruleset(&table);
        let effect = Effect::NftTable {
            family: FAMILY.into(),
            name: table.clone(),
            netns: Some(ns.name().to_string()),
        };
        let (_, seq) = sandbox.record(effect, || {
            ns.nft_run(&nft, &["-f", "-"], Some(&rules)).map_err(|e| {
                ni(
                    format!("creating nft table {table}: {e}"),
                    "check that nftables works inside a namespace (root, kernel modules)",
                )
            })
        })?;
        let active = NftActive {
            confirmation: Confirmation::new(name, "", vec![]),
            ns: ns.clone(),
            nft: nft.clone(),
            table: table.clone(),
            seq,
            sandbox: sandbox.clone(),
            ruleset_before,
            name: name.to_string(),
        };
        let listing = |a: &NftActive| {
            a.ns.nft_run(&a.nft, &["list", "table", FAMILY, &a.table], None)
        };
        let detail = match self.rules {
            Rules::Partition => {
                let during = probe(target, PROBE_TIMEOUT).await;
                let counted = listing(&active).map(|l| counted_packets(&l)).unwrap_or(0);
                let answered = matches!(during, ProbeResult::Answered(..));
                if answered || counted == 0 {
                    let cause = format!(
                        "with table {table} in place a probe connect to {target} gave {during:?} (expected no answer) and its rules counted {counted} dropped packets"
                    );
                    let _ = Box::new(active).clear().await;
                    return Err(ni(
                        cause,
                        "check for another route to the namespace, and that the table's hooks are active",
                    ));
                }
                let how = match during {
                    ProbeResult::Failed(e) => format!("failed ({e})"),
                    _ => format!("got no answer within {PROBE_TIMEOUT:?}"),
                };
                format!(
                    "nft table {FAMILY} {table} in {} drops all traffic on {NS_IF}: a probe connect to {target} ({before_probe} before) {how}; the rules dropped {counted} packet(s)",
                    ns.name()
                )
            }
            Rules::Loss(p) => {
                let sock = std::net::UdpSocket::bind((ns.inner.host_addr, 0))
                    .map_err(|e| ni(format!("probe socket: {e}"), "check the veth address"))?;
                let mut sent = 0u64;
                let mut counted = 0;
                for _round in 0..10 {
                    for _ in 0..500 {
                        if sock.send_to(b"chaos-harness loss probe", target).is_ok() {
                            sent += 1;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    counted = listing(&active).map(|l| counted_packets(&l)).unwrap_or(0);
                    if counted > 0 {
                        break;
                    }
                }
                if counted == 0 {
                    let _ = Box::new(active).clear().await;
                    return Err(ni(
                        format!(
                            "table {table} counted no dropped packet after {sent} probe datagrams at {p}%"
                        ),
                        "check that nftables' numgen works in this kernel",
                    ));
                }
                format!(
                    "nft table {FAMILY} {table} in {} drops {p}% of packets each way on {NS_IF}: after {sent} probe datagrams to {target} its rules had dropped {counted} packet(s)",
                    ns.name()
                )
            }
        };
        Ok(Box::new(NftActive {
            confirmation: Confirmation::new(name, detail, vec![]),
            ..active
        }))
    }
}

impl Inject for NftFault {
    fn describe(&self) -> String {
        match self.rules {
            Rules::Partition => format!(
                "partition network namespace {} ({})",
                self.ns.name(),
                self.ns.addr()
            ),
            Rules::Loss(p) => format!(
                "{p}% packet loss on network namespace {} ({})",
                self.ns.name(),
                self.ns.addr()
            ),
        }
    }

    fn inject<'a>(
        &'a self,
        cx: FaultContext<'a>,
    ) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            self.inject_inner(&name, cx.sandbox).await
        })
    }
}

struct NftActive {
    confirmation: Confirmation,
    ns: Netns,
    nft: PathBuf,
    table: String,
    seq: u64,
    sandbox: Arc<Sandbox>,
    ruleset_before: String,
    name: String,
}

impl ActiveFault for NftActive {
    fn confirmation(&self) -> &Confirmation {
        &self.confirmation
    }

    fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, Error>> {
        Box::pin(async move {
            let name = format!("heal: {}", self.name);
            let ni = |cause: String| {
                Error::NotInjected {
                fault: name.clone(),
                cause,
                fix: "teardown deletes the table from the journal; check `ip netns exec <ns> nft list ruleset`".into(),
            }
            };
            let counted = self
                .ns
                .nft_run(&self.nft, &["list", "table", FAMILY, &self.table], None)
                .map(|l| counted_packets(&l))
                .ok();
            self.ns
                .nft_run(&self.nft, &["delete", "table", FAMILY, &self.table], None)
                .map_err(|e| ni(format!("deleting table {}: {e}", self.table)))?;
            let after = self
                .ns
                .nft_run(&self.nft, &["list", "ruleset"], None)
                .map_err(|e| ni(format!("listing the ruleset: {e}")))?;
            if after != self.ruleset_before {
                return Err(ni(format!(
                    "the ruleset differs from before the fault:\nbefore:\n{}\nafter:\n{after}",
                    self.ruleset_before
                )));
            }
            let _ = self.sandbox.journal().undone(self.seq);
            let target = self.ns.probe_addr();
            let (how, d) = probe_until_answered(target, Duration::from_secs(3))
                .await
                .map_err(|e| {
                    ni(format!(
                        "the table is gone but a probe connect to {target} still fails: {e}"
                    ))
                })?;
            let dropped = counted
                .map(|c| format!("; it had dropped {c} packet(s)"))
                .unwrap_or_default();
            Ok(Confirmation::new(
                name.clone(),
                format!(
                    "table {FAMILY} {} deleted; the namespace's ruleset is identical to before the fault ({} lines); a probe connect to {target} was {how} after {:.1} ms{dropped}",
                    self.table,
                    self.ruleset_before.lines().count(),
                    d.as_secs_f64() * 1000.0
                ),
                vec![],
            ))
        })
    }
}

impl Fault {
    /// Cut the network namespace off: an nft table inside drops every packet in and out of
    /// its veth until cleared. Needs `nft`.
    ///
    /// ```no_run
    /// # fn f(ns: &chaos_harness::fault::net::Netns) {
    /// let f = chaos_harness::fault::Fault::partition(ns);
    /// # let _ = f; }
    /// ```
    pub fn partition(ns: &Netns) -> NftFault {
        NftFault {
            ns: ns.clone(),
            rules: Rules::Partition,
        }
    }

    /// Drop `percent` % (1..=100) of the packets in and out of the namespace's veth, at
    /// random (`numgen random`). Needs `nft`.
    ///
    /// ```no_run
    /// # fn f(ns: &chaos_harness::fault::net::Netns) {
    /// let f = chaos_harness::fault::Fault::packet_loss(ns, 20);
    /// # let _ = f; }
    /// ```
    pub fn packet_loss(ns: &Netns, percent: u8) -> NftFault {
        NftFault {
            ns: ns.clone(),
            rules: Rules::Loss(percent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_private_slash_30s() {
        assert_eq!(
            subnet(0),
            (Ipv4Addr::new(10, 213, 0, 1), Ipv4Addr::new(10, 213, 0, 2))
        );
        assert_eq!(
            subnet(65),
            (Ipv4Addr::new(10, 213, 1, 5), Ipv4Addr::new(10, 213, 1, 6))
        );
        assert_eq!(
            subnet(16383),
            (
                Ipv4Addr::new(10, 213, 255, 253),
                Ipv4Addr::new(10, 213, 255, 254)
            )
        );
        assert_eq!(subnet(16384), subnet(0));
    }

    #[test]
    fn packet_counters_are_summed() {
        let l = "table inet t {\n chain input {\n  iifname \"chaos0\" counter packets 2 bytes 120 drop\n }\n chain output {\n  oifname \"chaos0\" counter packets 3 bytes 1 drop\n }\n}\n";
        assert_eq!(counted_packets(l), 5);
        assert_eq!(counted_packets(""), 0);
    }

    #[test]
    fn rulesets_drop_on_the_veth() {
        let sb = Arc::new(
            Sandbox::with_options(
                "unit::nft_rules",
                crate::sandbox::SandboxOptions { cgroups: false },
            )
            .unwrap(),
        );
        let ns = Netns {
            inner: Arc::new(NetnsInner {
                name: "chaos-x".into(),
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
        };
        let r = Fault::packet_loss(&ns, 30).ruleset("chaos_loss_1");
        assert!(r.starts_with("table netdev chaos_loss_1"), "{r}");
        assert!(r.contains("hook ingress device \"chaos0\" priority -500; policy accept; numgen random mod 100 < 30 counter drop"), "{r}");
        let r = Fault::partition(&ns).ruleset("chaos_part_1");
        assert!(
            r.contains("hook egress device \"chaos0\" priority -500; policy accept; counter drop"),
            "{r}"
        );
        drop(ns);
        sb.teardown().unwrap();
    }
}
