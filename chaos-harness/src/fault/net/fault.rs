//! Network faults on a proxied [`Link`]: the toxics as [`Fault`]s (`Fault::latency(&link, d)`,
//! `Fault::bandwidth`, `Fault::timeout`, `Fault::reset_peer`, `Fault::slicer`,
//! `Fault::limit_data`, `Fault::slow_close`) and `Fault::link_down`.
//!
//! # Links
//!
//! A [`Link`] is one TCP proxy owned by a test: clients dial [`Link::listen_addr`] instead of
//! the server, and faults act on the proxy. By default the proxy is embedded (in this process,
//! on the test's Tokio runtime); with `TOXIPROXY_URL` set (or [`LinkBuilder::external`]) it is
//! created on an external Toxiproxy server instead, driven through the same API.
//!
//! # How each fault is confirmed
//!
//! * **Toxics** are confirmed *at injection*, by the proxy's own counters: after adding the
//!   toxic, injection waits (up to [`ToxicFault::confirm_within`], default 5 s) until the toxic
//!   has been applied to at least one connection ([`ToxicStats::took_effect`]). Live
//!   connections pick a new toxic up at once, so a link that carries traffic confirms within
//!   milliseconds; a link nobody uses fails with [`Error::NotInjected`] ("no connection went
//!   through ...") and the toxic is removed again. Clearing removes the toxic, reads the toxic
//!   list back to prove it is gone and reports the final counters (connections, bytes,
//!   closes/resets the toxic caused).
//! * **Link down** disables the proxy (open connections are closed, the listener is closed)
//!   and is confirmed by a connect to the listen address being *refused*. Clearing enables it
//!   and is confirmed by a connect being accepted.
//! * **External Toxiproxy** keeps no per-toxic counters: there, a toxic is confirmed by the
//!   server listing it (the confirmation says so), and link down by the refused connect as above.
//!
//! # What is journaled
//!
//! Nothing, for embedded links: the proxy, its toxics and its enabled state live in the
//! harness's memory, on the test's runtime. They end with the [`Link`] (its last clone
//! dropped), with the test's runtime, or with the harness process: a crashed harness takes its
//! proxies with it (the kernel closes their sockets), so there is nothing to undo from the
//! journal. A proxy on an *external* Toxiproxy is deleted when the [`Link`] is dropped or
//! [closed](Link::close), which covers returning, panicking and timing-out tests; a harness
//! killed outright leaves its proxies (named `chaos-<run id>-<link>`) on that server - delete
//! them through its API. (A journal effect for external proxies is a planned follow-up.)
//!
//! ```no_run
//! use chaos_harness::prelude::*;
//! use chaos_harness::fault::net::{Link, Stream};
//!
//! #[chaos_test(tags = ["network"])]
//! async fn slow_db(cx: &mut Chaos) -> ChaosResult {
//!     let db = Link::start(cx.sandbox(), "db", "127.0.0.1:5432").await?;
//!     // ... point the client at db.listen_addr() and start load ...
//!     cx.scenario("200 ms on the database link")
//!         .inject(Fault::latency(&db, Duration::from_millis(200)).jitter(Duration::from_millis(20)))
//!         .wait(Duration::from_secs(2))
//!         .inject(Fault::reset_peer(&db).stream(Stream::Upstream))
//!         .run()
//!         .await?;
//!     Ok(())
//! }
//! # chaos_harness::main!();
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream as StdTcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::backend::{ExternalToxiproxy, ProxyBackend, TOXIPROXY_URL};
use super::counters::{ProxyStats, ToxicStats};
use super::error::NetError;
use super::proxy::{Proxy, ProxyInfo};
use super::registry::ProxyRegistry;
use super::toxic::{Stream, Toxic, ToxicKind};
use crate::Chaos;
use crate::Error;
use crate::fault::{ActiveFault, Confirmation, Fault, FaultContext, Inject};
use crate::fixture::BoxFuture;
use crate::sandbox::Sandbox;

/// Default time a toxic may take to touch its first connection before it counts as not
/// injected.
pub const DEFAULT_CONFIRM_WITHIN: Duration = Duration::from_secs(5);

/// Which proxy implementation a [`Link`] uses.
///
/// ```
/// use chaos_harness::fault::net::LinkBackend;
/// assert_eq!(LinkBackend::default(), LinkBackend::FromEnv);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LinkBackend {
    /// External Toxiproxy when `TOXIPROXY_URL` is set and not empty, else embedded.
    #[default]
    FromEnv,
    /// Always the embedded proxy.
    Embedded,
    /// The Toxiproxy server at this URL (`http://host:port`).
    External(String),
}

/// How to start a [`Link`]; see [`Link::builder`].
///
/// ```no_run
/// # async fn f(cx: &chaos_harness::Chaos) -> Result<(), chaos_harness::Error> {
/// use chaos_harness::fault::net::Link;
/// let link = Link::builder("api", "127.0.0.1:8080")
///     .seed(cx.seed())
///     .embedded()
///     .start(cx.sandbox())
///     .await?;
/// # let _ = link; Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a LinkBuilder does nothing until .start(sandbox).await"]
pub struct LinkBuilder {
    name: String,
    upstream: String,
    listen: String,
    seed: u64,
    backend: LinkBackend,
}

impl LinkBuilder {
    /// The address the proxy listens on (default `127.0.0.1:0`, a free port).
    ///
    /// ```
    /// let b = chaos_harness::fault::net::Link::builder("db", "127.0.0.1:5432").listen("127.0.0.1:0");
    /// # let _ = b;
    /// ```
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = addr.into();
        self
    }

    /// Seed of the proxy's random source (toxicity draws, jitter, slice sizes), usually
    /// [`Chaos::seed`]. Default 0. Embedded proxies only (Toxiproxy seeds itself).
    ///
    /// ```
    /// let b = chaos_harness::fault::net::Link::builder("db", "127.0.0.1:5432").seed(42);
    /// # let _ = b;
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Use the embedded proxy even when `TOXIPROXY_URL` is set.
    ///
    /// ```
    /// let b = chaos_harness::fault::net::Link::builder("db", "127.0.0.1:5432").embedded();
    /// # let _ = b;
    /// ```
    pub fn embedded(mut self) -> Self {
        self.backend = LinkBackend::Embedded;
        self
    }

    /// Create the proxy on the Toxiproxy server at `url` (`http://127.0.0.1:8474`).
    ///
    /// ```
    /// let b = chaos_harness::fault::net::Link::builder("db", "127.0.0.1:5432").external("http://127.0.0.1:8474");
    /// # let _ = b;
    /// ```
    pub fn external(mut self, url: impl Into<String>) -> Self {
        self.backend = LinkBackend::External(url.into());
        self
    }

    /// Choose the backend explicitly.
    ///
    /// ```
    /// use chaos_harness::fault::net::{Link, LinkBackend};
    /// let b = Link::builder("db", "127.0.0.1:5432").backend(LinkBackend::FromEnv);
    /// # let _ = b;
    /// ```
    pub fn backend(mut self, backend: LinkBackend) -> Self {
        self.backend = backend;
        self
    }

    /// Starts the proxy for the test owning `sandbox`. Refused once the sandbox is torn down.
    /// Must run inside a Tokio runtime (the embedded proxy's tasks run on it).
    ///
    /// ```no_run
    /// # async fn f(cx: &chaos_harness::Chaos) -> Result<(), chaos_harness::Error> {
    /// let link = chaos_harness::fault::net::Link::builder("db", "127.0.0.1:5432").start(cx.sandbox()).await?;
    /// println!("clients dial {}", link.listen_addr());
    /// # Ok(()) }
    /// ```
    pub async fn start(self, sandbox: &Arc<Sandbox>) -> Result<Link, Error> {
        let LinkBuilder {
            name,
            upstream,
            listen,
            seed,
            backend,
        } = self;
        let err = |cause: String, fix: &str| Error::Fixture {
            fixture: format!("link {name}"),
            cause,
            fix: fix.into(),
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return Err(err(
                format!("invalid link name {name:?}"),
                "use letters, digits, `_`, `.` and `-` only",
            ));
        }
        if sandbox.journal().is_closed() {
            return Err(Error::SandboxClosed {
                run_id: sandbox.run_id().to_string(),
                what: format!("start link {name}"),
            });
        }
        let url = match backend {
            LinkBackend::Embedded => None,
            LinkBackend::External(url) => Some(url),
            LinkBackend::FromEnv => std::env::var(TOXIPROXY_URL)
                .ok()
                .filter(|u| !u.trim().is_empty()),
        };
        let (backend, proxy_name) = match &url {
            None => (
                ProxyBackend::Embedded(ProxyRegistry::new(seed)),
                name.clone(),
            ),
            Some(url) => {
                let x = ExternalToxiproxy::connect(url).await.map_err(|e| {
                    err(
                        e.to_string(),
                        "start Toxiproxy, fix TOXIPROXY_URL, or unset it to use the embedded proxy",
                    )
                })?;
                (
                    ProxyBackend::External(x),
                    format!("chaos-{}-{name}", sandbox.run_id()),
                )
            }
        };
        let info = backend
            .create_proxy(&proxy_name, &listen, &upstream)
            .await
            .map_err(|e| err(e.to_string(), "check the upstream and listen addresses"))?;
        let listen_addr = resolve(&info.listen).map_err(|cause| {
            err(
                format!(
                    "the proxy reports listen address {:?}: {cause}",
                    info.listen
                ),
                "report this: the backend answered an unusable address",
            )
        })?;
        tracing::debug!(link = %name, listen = %listen_addr, upstream = %upstream, external = backend.is_external(), "link started");
        Ok(Link {
            inner: Arc::new(LinkInner {
                name,
                proxy_name,
                backend,
                listen: listen_addr,
                upstream,
                seq: AtomicU64::new(0),
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }
}

fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| "resolves to nothing".to_string())
}

struct LinkInner {
    name: String,
    proxy_name: String,
    backend: ProxyBackend,
    listen: SocketAddr,
    upstream: String,
    seq: AtomicU64,
    closed: std::sync::atomic::AtomicBool,
}

impl Drop for LinkInner {
    fn drop(&mut self) {
        // Embedded: the registry (and with it the proxy) goes with us. External: delete the
        // proxy on the server (blocking, bounded by short timeouts).
        if let ProxyBackend::External(x) = &self.backend
            && !self.closed.load(Ordering::SeqCst)
        {
            let delete = || delete_external_blocking(x.url(), &self.proxy_name);
            // On a multi-thread runtime, let its other tasks move on while this blocks (the
            // server may even be served by this very runtime, as in tests).
            let multi = tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
            let result = if multi {
                tokio::task::block_in_place(delete)
            } else {
                delete()
            };
            if let Err(e) = result {
                tracing::warn!(link = %self.name, error = %e, "could not delete the link's proxy on the external Toxiproxy");
            }
        }
    }
}

/// `DELETE /proxies/{name}` with a plain blocking socket (safe in `Drop`, inside or outside a
/// runtime); a 404 counts as deleted.
fn delete_external_blocking(url: &str, name: &str) -> Result<(), String> {
    let hostport = url
        .strip_prefix("http://")
        .unwrap_or(url)
        .trim_end_matches('/');
    let addr = resolve(hostport)?;
    let t = Duration::from_secs(2);
    let mut s =
        StdTcpStream::connect_timeout(&addr, t).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(t)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(t)).map_err(|e| e.to_string())?;
    let req = format!(
        "DELETE /proxies/{name} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)
        .map_err(|e| format!("reading the reply: {e}"))?;
    let status = String::from_utf8_lossy(&head[9..12]).to_string();
    match status.as_str() {
        "204" | "200" | "404" => Ok(()),
        other => Err(format!("DELETE /proxies/{name} answered {other}")),
    }
}

/// A TCP link through a proxy owned by the test: clients dial [`Link::listen_addr`], the proxy
/// forwards to the upstream, and network faults act on the proxy. Cheap to clone; the proxy
/// stops when the last clone is dropped (see the [module docs](self) for what happens on a
/// crash).
///
/// ```no_run
/// # async fn f(cx: &mut chaos_harness::Chaos) -> chaos_harness::ChaosResult {
/// use chaos_harness::fault::{Fault, net::Link};
/// use std::time::Duration;
/// let link = Link::start(cx.sandbox(), "db", "127.0.0.1:5432").await?;
/// cx.scenario("db link down for 2 s")
///     .inject(Fault::link_down(&link))
///     .wait(Duration::from_secs(2))
///     .run()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Link {
    inner: Arc<LinkInner>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("name", &self.inner.name)
            .field("listen", &self.inner.listen)
            .field("upstream", &self.inner.upstream)
            .field("external", &self.is_external())
            .finish()
    }
}

impl Link {
    /// A builder for a link named `name` in front of `upstream` (`host:port`).
    ///
    /// ```
    /// let b = chaos_harness::fault::net::Link::builder("db", "127.0.0.1:5432");
    /// # let _ = b;
    /// ```
    pub fn builder(name: impl Into<String>, upstream: impl Into<String>) -> LinkBuilder {
        LinkBuilder {
            name: name.into(),
            upstream: upstream.into(),
            listen: "127.0.0.1:0".into(),
            seed: 0,
            backend: LinkBackend::FromEnv,
        }
    }

    /// Starts a link with the defaults: free loopback port, seed 0, external Toxiproxy if
    /// `TOXIPROXY_URL` is set. See [`Link::builder`] for the options.
    ///
    /// ```no_run
    /// # async fn f(cx: &chaos_harness::Chaos) -> Result<(), chaos_harness::Error> {
    /// let link = chaos_harness::fault::net::Link::start(cx.sandbox(), "db", "127.0.0.1:5432").await?;
    /// # let _ = link; Ok(()) }
    /// ```
    pub async fn start(
        sandbox: &Arc<Sandbox>,
        name: &str,
        upstream: impl Into<String>,
    ) -> Result<Link, Error> {
        Link::builder(name, upstream).start(sandbox).await
    }

    /// The link's name.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) { assert_eq!(link.name(), "db"); }
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The proxy's name on its backend (`<name>` embedded, `chaos-<run id>-<name>` external).
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) { println!("{}", link.proxy_name()); }
    /// ```
    pub fn proxy_name(&self) -> &str {
        &self.inner.proxy_name
    }

    /// Where clients connect.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) { let _ = std::net::TcpStream::connect(link.listen_addr()); }
    /// ```
    pub fn listen_addr(&self) -> SocketAddr {
        self.inner.listen
    }

    /// The server the proxy forwards to.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) { println!("{}", link.upstream()); }
    /// ```
    pub fn upstream(&self) -> &str {
        &self.inner.upstream
    }

    /// Whether the proxy runs on an external Toxiproxy.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) { println!("{}", link.is_external()); }
    /// ```
    pub fn is_external(&self) -> bool {
        self.inner.backend.is_external()
    }

    /// The backend (for operations the fault API does not cover).
    ///
    /// ```no_run
    /// # async fn f(link: &chaos_harness::fault::net::Link) {
    /// let toxics = link.backend().toxics(link.proxy_name()).await.unwrap();
    /// # let _ = toxics; }
    /// ```
    pub fn backend(&self) -> &ProxyBackend {
        &self.inner.backend
    }

    /// The embedded proxy (`None` for an external Toxiproxy).
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) {
    /// if let Some(p) = link.proxy() { println!("{} active connections", p.stats().active); }
    /// # }
    /// ```
    pub fn proxy(&self) -> Option<Proxy> {
        match &self.inner.backend {
            ProxyBackend::Embedded(reg) => reg.get(&self.inner.proxy_name).ok(),
            ProxyBackend::External(_) => None,
        }
    }

    /// The embedded proxy's counters (`None` for an external Toxiproxy).
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) { println!("{:?}", link.stats()); }
    /// ```
    pub fn stats(&self) -> Option<ProxyStats> {
        self.proxy().map(|p| p.stats())
    }

    /// The proxy as its backend shows it (listen, upstream, enabled, toxics).
    ///
    /// ```no_run
    /// # async fn f(link: &chaos_harness::fault::net::Link) -> Result<(), chaos_harness::Error> {
    /// assert!(link.info().await?.enabled);
    /// # Ok(()) }
    /// ```
    pub async fn info(&self) -> Result<ProxyInfo, Error> {
        self.inner
            .backend
            .proxy(&self.inner.proxy_name)
            .await
            .map_err(|e| self.error(e, "check that the link was not closed"))
    }

    /// Stops the proxy now (deletes it on an external Toxiproxy) instead of when the last
    /// clone is dropped. Other clones see a stopped link.
    ///
    /// ```no_run
    /// # async fn f(link: chaos_harness::fault::net::Link) -> Result<(), chaos_harness::Error> {
    /// link.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn close(self) -> Result<(), Error> {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        match self
            .inner
            .backend
            .delete_proxy(&self.inner.proxy_name)
            .await
        {
            Ok(()) | Err(NetError::ProxyNotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(e, "delete the proxy through the Toxiproxy API by hand")),
        }
    }

    fn error(&self, e: NetError, fix: &str) -> Error {
        Error::Fixture {
            fixture: format!("link {}", self.inner.name),
            cause: e.to_string(),
            fix: fix.into(),
        }
    }

    fn next_toxic_name(&self, kind: &ToxicKind, stream: Stream) -> String {
        let n = self.inner.seq.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{}_{}_{n}", kind.type_name(), stream)
    }

    fn describe(&self) -> String {
        format!(
            "link {} ({} -> {})",
            self.inner.name, self.inner.listen, self.inner.upstream
        )
    }
}

impl Chaos {
    /// Starts a [`Link`] owned by this test, seeded with the test's seed (so toxicity draws
    /// replay with `CHAOS_SEED`). Same as `Link::builder(name, upstream).seed(cx.seed()).start(cx.sandbox())`.
    ///
    /// ```no_run
    /// # async fn f(cx: &mut chaos_harness::Chaos) -> chaos_harness::ChaosResult {
    /// let db = cx.link("db", "127.0.0.1:5432").await?;
    /// # let _ = db; Ok(()) }
    /// ```
    pub async fn link(&mut self, name: &str, upstream: impl Into<String>) -> Result<Link, Error> {
        Link::builder(name, upstream)
            .seed(self.seed())
            .start(self.sandbox())
            .await
    }
}

fn not_injected(fault: &str, cause: impl Into<String>, fix: impl Into<String>) -> Error {
    Error::NotInjected {
        fault: fault.to_string(),
        cause: cause.into(),
        fix: fix.into(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A toxic on a link as a fault (`Fault::bandwidth`, `Fault::timeout`, `Fault::reset_peer`,
/// `Fault::slicer`, `Fault::limit_data`, `Fault::slow_close`; `Fault::latency` wraps one in
/// [`Latency`]). Confirmed when the toxic has touched a connection; cleared by removing it.
///
/// ```no_run
/// # fn f(link: &chaos_harness::fault::net::Link) {
/// use chaos_harness::fault::{Fault, net::Stream};
/// use std::time::Duration;
/// let f = Fault::bandwidth(link, 64)
///     .stream(Stream::Upstream)
///     .toxicity(0.5)
///     .confirm_within(Duration::from_secs(2));
/// # let _ = f; }
/// ```
#[derive(Debug, Clone)]
pub struct ToxicFault {
    link: Link,
    kind: ToxicKind,
    stream: Stream,
    toxicity: f32,
    confirm_within: Duration,
}

impl ToxicFault {
    fn new(link: &Link, kind: ToxicKind) -> Self {
        ToxicFault {
            link: link.clone(),
            kind,
            stream: Stream::Downstream,
            toxicity: 1.0,
            confirm_within: DEFAULT_CONFIRM_WITHIN,
        }
    }

    /// The direction it acts on (default [`Stream::Downstream`], server to client, as in
    /// Toxiproxy).
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) {
    /// let f = chaos_harness::fault::Fault::limit_data(link, 1024).stream(chaos_harness::fault::net::Stream::Upstream);
    /// # let _ = f; }
    /// ```
    pub fn stream(mut self, stream: Stream) -> Self {
        self.stream = stream;
        self
    }

    /// Probability (0..=1, default 1) that the toxic applies to a connection, drawn per
    /// connection from the proxy's seeded random source.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) {
    /// let f = chaos_harness::fault::Fault::reset_peer(link).toxicity(0.1);
    /// # let _ = f; }
    /// ```
    pub fn toxicity(mut self, p: f32) -> Self {
        self.toxicity = p;
        self
    }

    /// How long injection waits for the toxic to touch a connection (default 5 s).
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) {
    /// let f = chaos_harness::fault::Fault::reset_peer(link).confirm_within(std::time::Duration::from_secs(1));
    /// # let _ = f; }
    /// ```
    pub fn confirm_within(mut self, d: Duration) -> Self {
        self.confirm_within = d;
        self
    }

    /// The toxic's type and parameters.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) {
    /// use chaos_harness::fault::{Fault, net::ToxicKind};
    /// assert_eq!(Fault::limit_data(link, 10).kind(), &ToxicKind::LimitData { bytes: 10 });
    /// # }
    /// ```
    pub fn kind(&self) -> &ToxicKind {
        &self.kind
    }

    fn describe_kind(&self) -> String {
        let what = match &self.kind {
            ToxicKind::Latency { latency, jitter } if *jitter > 0 => {
                format!("latency {latency} ms ± {jitter} ms")
            }
            ToxicKind::Latency { latency, .. } => format!("latency {latency} ms"),
            ToxicKind::Bandwidth { rate } => format!("bandwidth {rate} KB/s"),
            ToxicKind::SlowClose { delay } => format!("slow_close {delay} ms"),
            ToxicKind::Timeout { timeout: 0 } => "timeout (stall forever)".to_string(),
            ToxicKind::Timeout { timeout } => format!("timeout {timeout} ms"),
            ToxicKind::ResetPeer { timeout: 0 } => "reset_peer".to_string(),
            ToxicKind::ResetPeer { timeout } => format!("reset_peer after {timeout} ms"),
            ToxicKind::Slicer {
                average_size,
                size_variation,
                delay,
            } => {
                format!("slicer {average_size}±{size_variation} B every {delay} µs")
            }
            ToxicKind::LimitData { bytes } => format!("limit_data {bytes} B"),
        };
        let tox = if self.toxicity < 1.0 {
            format!(", toxicity {}", self.toxicity)
        } else {
            String::new()
        };
        format!("{what} {}{tox} on {}", self.stream, self.link.describe())
    }

    async fn inject_toxic(&self, name: String) -> Result<Box<dyn ActiveFault>, Error> {
        let toxic_name = self.link.next_toxic_name(&self.kind, self.stream);
        let toxic = Toxic::new(self.kind.clone(), self.stream)
            .named(toxic_name.clone())
            .toxicity(self.toxicity);
        if let Err(e) = toxic.validate() {
            return Err(not_injected(
                &name,
                e.to_string(),
                "fix the fault's parameters",
            ));
        }
        let backend = self.link.backend();
        let proxy = self.link.proxy_name();
        backend.add_toxic(proxy, toxic).await.map_err(|e| {
            not_injected(
                &name,
                format!("adding toxic {toxic_name}: {e}"),
                "check that the link is still open",
            )
        })?;
        let t0 = Instant::now();
        let detail = loop {
            let stats = match backend.toxic_stats(proxy, &toxic_name).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = backend.remove_toxic(proxy, &toxic_name).await;
                    return Err(not_injected(
                        &name,
                        format!("reading toxic {toxic_name} back: {e}"),
                        "check that the link is still open",
                    ));
                }
            };
            match stats {
                // External Toxiproxy: no counters; the toxic being listed is all we can show.
                None => {
                    break format!(
                        "toxic {toxic_name} listed by the external Toxiproxy ({}); it keeps no counters, so its effect on traffic is not measured",
                        match backend {
                            ProxyBackend::External(x) => x.url().to_string(),
                            ProxyBackend::Embedded(_) => String::new(),
                        }
                    );
                }
                Some(s) if s.took_effect() => {
                    break format!(
                        "toxic {toxic_name} applied to {} connection(s) {} after it was added ({} bytes through it so far)",
                        s.connections,
                        ms(t0.elapsed()),
                        s.bytes
                    );
                }
                Some(_) => {}
            }
            if t0.elapsed() >= self.confirm_within {
                let _ = backend.remove_toxic(proxy, &toxic_name).await;
                let conns = self
                    .link
                    .stats()
                    .map(|s| {
                        format!(
                            " ({} connections accepted in total, {} open)",
                            s.accepted, s.active
                        )
                    })
                    .unwrap_or_default();
                return Err(not_injected(
                    &name,
                    format!(
                        "no connection went through link {} within {:?} of adding toxic {toxic_name}{conns}; the toxic was removed again",
                        self.link.name(),
                        self.confirm_within
                    ),
                    "inject while traffic flows through the link (start the load first, point the client at link.listen_addr()), lower the toxicity, or raise confirm_within",
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        Ok(Box::new(ToxicActive {
            confirmation: Confirmation::new(&name, detail, vec![]),
            link: self.link.clone(),
            toxic: toxic_name,
            name,
        }))
    }
}

impl Inject for ToxicFault {
    fn describe(&self) -> String {
        self.describe_kind()
    }

    fn inject<'a>(
        &'a self,
        _cx: FaultContext<'a>,
    ) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(self.inject_toxic(self.describe()))
    }
}

struct ToxicActive {
    confirmation: Confirmation,
    link: Link,
    toxic: String,
    name: String,
}

impl ActiveFault for ToxicActive {
    fn confirmation(&self) -> &Confirmation {
        &self.confirmation
    }

    fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, Error>> {
        Box::pin(async move {
            let name = format!("remove {}", self.name);
            let backend = self.link.backend();
            let proxy = self.link.proxy_name();
            let stats: Option<ToxicStats> =
                backend.toxic_stats(proxy, &self.toxic).await.ok().flatten();
            match backend.remove_toxic(proxy, &self.toxic).await {
                Ok(()) | Err(NetError::ToxicNotFound { .. }) => {}
                Err(e) => {
                    return Err(not_injected(
                        &name,
                        e.to_string(),
                        "the toxic goes away with the link; drop or close it",
                    ));
                }
            }
            let left = backend.toxics(proxy).await.map_err(|e| {
                not_injected(&name, format!("listing toxics: {e}"), "check the link")
            })?;
            if left.iter().any(|t| t.name == self.toxic) {
                return Err(not_injected(
                    &name,
                    format!("toxic {} is still listed after removal", self.toxic),
                    "close the link",
                ));
            }
            let counted = match stats {
                Some(s) => format!(
                    "; over its life it touched {} connection(s) and {} bytes and caused {} close(s)/reset(s)",
                    s.connections, s.bytes, s.triggered
                ),
                None => String::new(),
            };
            Ok(Confirmation::new(
                name,
                format!("toxic {} removed and no longer listed{counted}", self.toxic),
                vec![],
            ))
        })
    }
}

/// `Fault::latency(&link, d)`: every chunk on the stream waits `d` (± jitter). A
/// [`ToxicFault`] with [`Latency::jitter`].
///
/// ```no_run
/// # fn f(link: &chaos_harness::fault::net::Link) {
/// use chaos_harness::fault::{Fault, net::Stream};
/// use std::time::Duration;
/// let f = Fault::latency(link, Duration::from_millis(500))
///     .jitter(Duration::from_millis(50))
///     .stream(Stream::Upstream)
///     .toxicity(1.0);
/// # let _ = f; }
/// ```
#[derive(Debug, Clone)]
pub struct Latency(ToxicFault);

impl Latency {
    /// Uniform variation either side of the latency, drawn per chunk (default 0).
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) {
    /// let f = chaos_harness::fault::Fault::latency(link, std::time::Duration::from_millis(100)).jitter(std::time::Duration::from_millis(10));
    /// # let _ = f; }
    /// ```
    pub fn jitter(mut self, d: Duration) -> Self {
        if let ToxicKind::Latency { jitter, .. } = &mut self.0.kind {
            *jitter = millis(d);
        }
        self
    }

    /// See [`ToxicFault::stream`].
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) {
    /// let f = chaos_harness::fault::Fault::latency(link, std::time::Duration::from_millis(100)).stream(chaos_harness::fault::net::Stream::Upstream);
    /// # let _ = f; }
    /// ```
    pub fn stream(self, stream: Stream) -> Self {
        Latency(self.0.stream(stream))
    }

    /// See [`ToxicFault::toxicity`].
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) {
    /// let f = chaos_harness::fault::Fault::latency(link, std::time::Duration::from_millis(100)).toxicity(0.5);
    /// # let _ = f; }
    /// ```
    pub fn toxicity(self, p: f32) -> Self {
        Latency(self.0.toxicity(p))
    }

    /// See [`ToxicFault::confirm_within`].
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) {
    /// let f = chaos_harness::fault::Fault::latency(link, std::time::Duration::from_millis(100)).confirm_within(std::time::Duration::from_secs(1));
    /// # let _ = f; }
    /// ```
    pub fn confirm_within(self, d: Duration) -> Self {
        Latency(self.0.confirm_within(d))
    }

    /// The underlying toxic fault.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) {
    /// let t = chaos_harness::fault::Fault::latency(link, std::time::Duration::from_millis(100)).into_toxic();
    /// # let _ = t; }
    /// ```
    pub fn into_toxic(self) -> ToxicFault {
        self.0
    }
}

impl Inject for Latency {
    fn describe(&self) -> String {
        self.0.describe()
    }

    fn inject<'a>(
        &'a self,
        cx: FaultContext<'a>,
    ) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        self.0.inject(cx)
    }
}

/// `Fault::link_down(&link)`: disable the proxy - open connections are closed, new ones
/// refused. Confirmed by a refused connect; cleared by enabling it again (confirmed by an
/// accepted connect).
///
/// ```no_run
/// # fn f(link: &chaos_harness::fault::net::Link) {
/// let f = chaos_harness::fault::Fault::link_down(link);
/// # let _ = f; }
/// ```
#[derive(Debug, Clone)]
pub struct LinkDown {
    link: Link,
}

/// What a connect attempt found.
enum Connect {
    Accepted,
    Refused,
    Other(String),
}

async fn try_connect(addr: SocketAddr, timeout: Duration) -> Connect {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Connect::Accepted,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Connect::Refused,
        Ok(Err(e)) => Connect::Other(e.to_string()),
        Err(_) => Connect::Other(format!("no answer within {timeout:?}")),
    }
}

impl Inject for LinkDown {
    fn describe(&self) -> String {
        format!("link down: {}", self.link.describe())
    }

    fn inject<'a>(
        &'a self,
        _cx: FaultContext<'a>,
    ) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            let link = &self.link;
            let before = link.stats();
            let t0 = Instant::now();
            link.backend()
                .set_enabled(link.proxy_name(), false)
                .await
                .map_err(|e| {
                    not_injected(
                        &name,
                        format!("disabling the proxy: {e}"),
                        "check that the link is still open",
                    )
                })?;
            let disabled_in = t0.elapsed();
            let addr = link.listen_addr();
            let seen = match try_connect(addr, Duration::from_secs(1)).await {
                Connect::Refused => None,
                Connect::Accepted => Some("was accepted".to_string()),
                Connect::Other(e) => Some(format!("failed otherwise ({e})")),
            };
            match seen {
                None => {}
                Some(seen) => {
                    let _ = link.backend().set_enabled(link.proxy_name(), true).await;
                    return Err(not_injected(
                        &name,
                        format!(
                            "after disabling the proxy a connect to {addr} {seen} instead of being refused; the link was enabled again"
                        ),
                        "another process may listen on that address: close it, or start the link on another port",
                    ));
                }
            }
            let closed = match (before, link.stats()) {
                (Some(b), Some(a)) => format!(
                    "; {} open connection(s) closed ({} left)",
                    b.active, a.active
                ),
                _ => String::new(),
            };
            let detail = format!(
                "proxy disabled in {}; a connect to {addr} was refused{closed}",
                ms(disabled_in)
            );
            Ok(Box::new(LinkDownActive {
                confirmation: Confirmation::new(&name, detail, vec![]),
                link: link.clone(),
            }) as Box<dyn ActiveFault>)
        })
    }
}

struct LinkDownActive {
    confirmation: Confirmation,
    link: Link,
}

impl ActiveFault for LinkDownActive {
    fn confirmation(&self) -> &Confirmation {
        &self.confirmation
    }

    fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, Error>> {
        Box::pin(async move {
            let link = &self.link;
            let name = format!("link up: {}", link.describe());
            link.backend()
                .set_enabled(link.proxy_name(), true)
                .await
                .map_err(|e| {
                    not_injected(
                        &name,
                        format!("enabling the proxy: {e}"),
                        "the port may have been taken meanwhile; restart the link",
                    )
                })?;
            let addr = link.listen_addr();
            match try_connect(addr, Duration::from_secs(2)).await {
                Connect::Accepted => Ok(Confirmation::new(
                    name,
                    format!("proxy enabled; a connect to {addr} was accepted"),
                    vec![],
                )),
                Connect::Refused => Err(not_injected(
                    &name,
                    format!("the proxy says enabled but {addr} refuses connections"),
                    "restart the link",
                )),
                Connect::Other(e) => Err(not_injected(
                    &name,
                    format!("a connect to {addr} failed: {e}"),
                    "restart the link",
                )),
            }
        })
    }
}

impl Fault {
    /// Add `d` of latency to every chunk on `link` (downstream by default; see
    /// [`Latency`] for jitter, stream, toxicity).
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) {
    /// let f = chaos_harness::fault::Fault::latency(link, std::time::Duration::from_millis(500));
    /// # let _ = f; }
    /// ```
    pub fn latency(link: &Link, d: Duration) -> Latency {
        Latency(ToxicFault::new(
            link,
            ToxicKind::Latency {
                latency: millis(d),
                jitter: 0,
            },
        ))
    }

    /// Limit `link` to `kbps` KB/s (1 KB = 1000 bytes; Toxiproxy's `bandwidth` toxic).
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) {
    /// let f = chaos_harness::fault::Fault::bandwidth(link, 100);
    /// # let _ = f; }
    /// ```
    pub fn bandwidth(link: &Link, kbps: u64) -> ToxicFault {
        ToxicFault::new(link, ToxicKind::Bandwidth { rate: kbps })
    }

    /// Stop all data on `link` and close each connection after `d` (`Duration::ZERO`: stall
    /// forever, never close; Toxiproxy's `timeout` toxic).
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) {
    /// let f = chaos_harness::fault::Fault::timeout(link, std::time::Duration::from_secs(1));
    /// # let _ = f; }
    /// ```
    pub fn timeout(link: &Link, d: Duration) -> ToxicFault {
        ToxicFault::new(link, ToxicKind::Timeout { timeout: millis(d) })
    }

    /// Reset (TCP RST) every connection on `link` at its next data.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) {
    /// let f = chaos_harness::fault::Fault::reset_peer(link);
    /// # let _ = f; }
    /// ```
    pub fn reset_peer(link: &Link) -> ToxicFault {
        ToxicFault::new(link, ToxicKind::ResetPeer { timeout: 0 })
    }

    /// Like [`Fault::reset_peer`], resetting `d` after the data arrives.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) {
    /// let f = chaos_harness::fault::Fault::reset_peer_after(link, std::time::Duration::from_millis(100));
    /// # let _ = f; }
    /// ```
    pub fn reset_peer_after(link: &Link, d: Duration) -> ToxicFault {
        ToxicFault::new(link, ToxicKind::ResetPeer { timeout: millis(d) })
    }

    /// Cut every chunk on `link` into writes of `average_size ± size_variation` bytes,
    /// `delay` apart (Toxiproxy's `slicer`; the delay has microsecond resolution).
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) {
    /// let f = chaos_harness::fault::Fault::slicer(link, 16, 4, std::time::Duration::from_micros(100));
    /// # let _ = f; }
    /// ```
    pub fn slicer(
        link: &Link,
        average_size: u64,
        size_variation: u64,
        delay: Duration,
    ) -> ToxicFault {
        let delay = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        ToxicFault::new(
            link,
            ToxicKind::Slicer {
                average_size,
                size_variation,
                delay,
            },
        )
    }

    /// Close each connection on `link` once `bytes` have passed on the stream.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) {
    /// let f = chaos_harness::fault::Fault::limit_data(link, 4096);
    /// # let _ = f; }
    /// ```
    pub fn limit_data(link: &Link, bytes: u64) -> ToxicFault {
        ToxicFault::new(link, ToxicKind::LimitData { bytes })
    }

    /// Delay each close (FIN) on `link` by `d`.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) {
    /// let f = chaos_harness::fault::Fault::slow_close(link, std::time::Duration::from_secs(1));
    /// # let _ = f; }
    /// ```
    pub fn slow_close(link: &Link, d: Duration) -> ToxicFault {
        ToxicFault::new(link, ToxicKind::SlowClose { delay: millis(d) })
    }

    /// Take `link` down: close its open connections and refuse new ones until cleared.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::fault::net::Link) {
    /// let f = chaos_harness::fault::Fault::link_down(link);
    /// # let _ = f; }
    /// ```
    pub fn link_down(link: &Link) -> LinkDown {
        LinkDown { link: link.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_delete_maps_statuses() {
        use std::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            for reply in [
                "HTTP/1.1 204 No Content\r\n\r\n",
                "HTTP/1.1 404 Not Found\r\n\r\n",
                "HTTP/1.1 500 Oops\r\n\r\n",
            ] {
                let (mut s, _) = l.accept().unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 1024];
                while !got.ends_with(b"\r\n\r\n") {
                    let n = s.read(&mut buf).unwrap();
                    assert!(
                        n > 0,
                        "request cut short: {:?}",
                        String::from_utf8_lossy(&got)
                    );
                    got.extend_from_slice(&buf[..n]);
                }
                assert!(
                    got.starts_with(b"DELETE /proxies/p HTTP/1.1\r\n"),
                    "{:?}",
                    String::from_utf8_lossy(&got)
                );
                s.write_all(reply.as_bytes()).unwrap();
            }
        });
        assert!(delete_external_blocking(&url, "p").is_ok());
        assert!(delete_external_blocking(&url, "p").is_ok());
        assert!(
            delete_external_blocking(&url, "p")
                .unwrap_err()
                .contains("500")
        );
        server.join().unwrap();
    }

    #[test]
    fn descriptions_name_parameters_and_link() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let sb = Arc::new(
                Sandbox::with_options(
                    "unit::net_fault",
                    crate::sandbox::SandboxOptions { cgroups: false },
                )
                .unwrap(),
            );
            let link = Link::builder("db", "127.0.0.1:9")
                .embedded()
                .start(&sb)
                .await
                .unwrap();
            let d = Fault::latency(&link, Duration::from_millis(100))
                .jitter(Duration::from_millis(5))
                .describe();
            assert!(
                d.starts_with("latency 100 ms ± 5 ms downstream on link db (127.0.0.1:"),
                "{d}"
            );
            let d = Fault::reset_peer(&link)
                .stream(Stream::Upstream)
                .toxicity(0.5)
                .describe();
            assert!(
                d.starts_with("reset_peer upstream, toxicity 0.5 on link db"),
                "{d}"
            );
            assert!(
                Link::builder("bad name", "127.0.0.1:9")
                    .start(&sb)
                    .await
                    .is_err()
            );
            drop(link);
            sb.teardown().unwrap();
        });
    }
}
