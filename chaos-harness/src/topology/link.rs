//! A [`Link`]: one TCP proxy owned by a test, which a fixture's traffic goes through so that
//! network faults ([`crate::fault::net`]) can act on it.
//!
//! Clients dial [`Link::listen_addr`] instead of the server. By default the proxy is embedded
//! (the `chaos-proxy` crate, in this process, on the test's Tokio runtime); with
//! `TOXIPROXY_URL` set (or [`LinkBuilder::external`]) it is created on an external Toxiproxy
//! server instead, driven through the same API.
//!
//! # What is journaled
//!
//! Nothing, for embedded links: the proxy, its toxics and its enabled state live in the
//! harness's memory, on the test's runtime. They end with the [`Link`] (its last clone
//! dropped), with the test's runtime, or with the harness process: a crashed harness takes its
//! proxies with it (the kernel closes their sockets), so there is nothing to undo from the
//! journal. A proxy on an *external* Toxiproxy (named `chaos-<run id>-<link>`) is journaled
//! as a `toxiproxy_proxy` effect before it is created, and deleted when the [`Link`] is dropped
//! or [closed](Link::close); a harness killed outright leaves it to the reaper (or `chaos
//! cleanup`), which deletes it through the server's API.
//!
//! ```no_run
//! # async fn f(cx: &mut chaos_harness::Chaos) -> chaos_harness::ChaosResult {
//! use chaos_harness::topology::Link;
//! let db = Link::start(cx.sandbox(), "db", "127.0.0.1:5432").await?;
//! println!("point the client at {}", db.listen_addr());
//! # Ok(()) }
//! ```

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chaos_proxy::{NetError, Proxy, ProxyInfo, ProxyRegistry, ProxyStats, Stream, ToxicKind};

use super::backend::{ExternalToxiproxy, ProxyBackend, TOXIPROXY_URL};
use crate::Error;
use crate::sandbox::{Effect, Sandbox};

/// Which proxy implementation a [`Link`] uses.
///
/// ```
/// use chaos_harness::topology::LinkBackend;
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
/// use chaos_harness::topology::Link;
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
    /// let b = chaos_harness::topology::Link::builder("db", "127.0.0.1:5432").listen("127.0.0.1:0");
    /// # let _ = b;
    /// ```
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = addr.into();
        self
    }

    /// Seed of the proxy's random source (toxicity draws, jitter, slice sizes), usually
    /// `Chaos::seed`. Default 0. Embedded proxies only (Toxiproxy seeds itself).
    ///
    /// ```
    /// let b = chaos_harness::topology::Link::builder("db", "127.0.0.1:5432").seed(42);
    /// # let _ = b;
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Use the embedded proxy even when `TOXIPROXY_URL` is set.
    ///
    /// ```
    /// let b = chaos_harness::topology::Link::builder("db", "127.0.0.1:5432").embedded();
    /// # let _ = b;
    /// ```
    pub fn embedded(mut self) -> Self {
        self.backend = LinkBackend::Embedded;
        self
    }

    /// Create the proxy on the Toxiproxy server at `url` (`http://127.0.0.1:8474`).
    ///
    /// ```
    /// let b = chaos_harness::topology::Link::builder("db", "127.0.0.1:5432").external("http://127.0.0.1:8474");
    /// # let _ = b;
    /// ```
    pub fn external(mut self, url: impl Into<String>) -> Self {
        self.backend = LinkBackend::External(url.into());
        self
    }

    /// Choose the backend explicitly.
    ///
    /// ```
    /// use chaos_harness::topology::{Link, LinkBackend};
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
    /// let link = chaos_harness::topology::Link::builder("db", "127.0.0.1:5432").start(cx.sandbox()).await?;
    /// println!("clients dial {}", link.listen_addr());
    /// # Ok(()) }
    /// ```
    pub async fn start(self, sandbox: &Arc<Sandbox>) -> Result<Link, Error> {
        let LinkBuilder { name, upstream, listen, seed, backend } = self;
        let err = |cause: String, fix: &str| Error::Fixture { fixture: format!("link {name}"), cause, fix: fix.into() };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
            return Err(err(format!("invalid link name {name:?}"), "use letters, digits, `_`, `.` and `-` only"));
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
            LinkBackend::FromEnv => std::env::var(TOXIPROXY_URL).ok().filter(|u| !u.trim().is_empty()),
        };
        let (backend, proxy_name) = match &url {
            None => (ProxyBackend::Embedded(ProxyRegistry::new(seed)), name.clone()),
            Some(url) => {
                let x = ExternalToxiproxy::connect(url).await.map_err(|e| {
                    err(e.to_string(), "start Toxiproxy, fix TOXIPROXY_URL, or unset it to use the embedded proxy")
                })?;
                (ProxyBackend::External(x), format!("chaos-{}-{name}", sandbox.run_id()))
            }
        };
        // A proxy on an external server outlives a crashed harness: journal it first, so
        // teardown, the reaper and `chaos cleanup` delete it.
        let journaled = match &backend {
            ProxyBackend::External(x) => {
                let effect = Effect::ToxiproxyProxy { url: x.url().to_string(), name: proxy_name.clone() };
                let ((), seq) = sandbox.record(effect, || Ok(()))?;
                Some((sandbox.journal().clone(), seq))
            }
            ProxyBackend::Embedded(_) => None,
        };
        let info = backend
            .create_proxy(&proxy_name, &listen, &upstream)
            .await
            .map_err(|e| err(e.to_string(), "check the upstream and listen addresses"))?;
        let listen_addr = resolve(&info.listen).map_err(|cause| {
            err(
                format!("the proxy reports listen address {:?}: {cause}", info.listen),
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
                journaled,
            }),
        })
    }
}

fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs().map_err(|e| e.to_string())?.next().ok_or_else(|| "resolves to nothing".to_string())
}

struct LinkInner {
    name: String,
    proxy_name: String,
    backend: ProxyBackend,
    listen: SocketAddr,
    upstream: String,
    seq: AtomicU64,
    closed: std::sync::atomic::AtomicBool,
    /// External proxies: the journal and the `toxiproxy_proxy` effect's seq.
    journaled: Option<(Arc<crate::sandbox::journal::Journal>, u64)>,
}

impl LinkInner {
    /// Records the external proxy's deletion as undone (ignored once teardown has begun: the
    /// journal's own undo then deletes it, a 404 being fine).
    fn mark_deleted(&self) {
        if let Some((journal, seq)) = &self.journaled {
            let _ = journal.undone(*seq);
        }
    }
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
            let result = if multi { tokio::task::block_in_place(delete) } else { delete() };
            if result.is_ok() {
                self.mark_deleted();
            }
            if let Err(e) = result {
                tracing::warn!(link = %self.name, error = %e, "could not delete the link's proxy on the external Toxiproxy");
            }
        }
    }
}

/// `DELETE /proxies/{name}` with a plain blocking socket (safe in `Drop`, inside or outside a
/// runtime); a 404 counts as deleted.
fn delete_external_blocking(url: &str, name: &str) -> Result<(), String> {
    match crate::sandbox::journal::toxiproxy_request(url, "DELETE", &format!("/proxies/{name}"))? {
        200..=299 | 404 => Ok(()),
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
/// use chaos_harness::{fault::Fault, topology::Link};
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
    /// let b = chaos_harness::topology::Link::builder("db", "127.0.0.1:5432");
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
    /// let link = chaos_harness::topology::Link::start(cx.sandbox(), "db", "127.0.0.1:5432").await?;
    /// # let _ = link; Ok(()) }
    /// ```
    pub async fn start(sandbox: &Arc<Sandbox>, name: &str, upstream: impl Into<String>) -> Result<Link, Error> {
        Link::builder(name, upstream).start(sandbox).await
    }

    /// The link's name.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::topology::Link) { assert_eq!(link.name(), "db"); }
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The proxy's name on its backend (`<name>` embedded, `chaos-<run id>-<name>` external).
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::topology::Link) { println!("{}", link.proxy_name()); }
    /// ```
    pub fn proxy_name(&self) -> &str {
        &self.inner.proxy_name
    }

    /// Where clients connect.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::topology::Link) { let _ = std::net::TcpStream::connect(link.listen_addr()); }
    /// ```
    pub fn listen_addr(&self) -> SocketAddr {
        self.inner.listen
    }

    /// The server the proxy forwards to.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::topology::Link) { println!("{}", link.upstream()); }
    /// ```
    pub fn upstream(&self) -> &str {
        &self.inner.upstream
    }

    /// Whether the proxy runs on an external Toxiproxy.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::topology::Link) { println!("{}", link.is_external()); }
    /// ```
    pub fn is_external(&self) -> bool {
        self.inner.backend.is_external()
    }

    /// The backend (for operations the fault API does not cover).
    ///
    /// ```no_run
    /// # async fn f(link: &chaos_harness::topology::Link) {
    /// let toxics = link.backend().toxics(link.proxy_name()).await.unwrap();
    /// # let _ = toxics; }
    /// ```
    pub fn backend(&self) -> &ProxyBackend {
        &self.inner.backend
    }

    /// The embedded proxy (`None` for an external Toxiproxy).
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::topology::Link) {
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
    /// # fn f(link: &chaos_harness::topology::Link) { println!("{:?}", link.stats()); }
    /// ```
    pub fn stats(&self) -> Option<ProxyStats> {
        self.proxy().map(|p| p.stats())
    }

    /// The proxy as its backend shows it (listen, upstream, enabled, toxics).
    ///
    /// ```no_run
    /// # async fn f(link: &chaos_harness::topology::Link) -> Result<(), chaos_harness::Error> {
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
    /// # async fn f(link: chaos_harness::topology::Link) -> Result<(), chaos_harness::Error> {
    /// link.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn close(self) -> Result<(), Error> {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        match self.inner.backend.delete_proxy(&self.inner.proxy_name).await {
            Ok(()) | Err(NetError::ProxyNotFound { .. }) => {
                self.inner.mark_deleted();
                Ok(())
            }
            Err(e) => Err(self.error(e, "delete the proxy through the Toxiproxy API by hand")),
        }
    }

    pub(crate) fn error(&self, e: NetError, fix: &str) -> Error {
        Error::Fixture { fixture: format!("link {}", self.inner.name), cause: e.to_string(), fix: fix.into() }
    }

    pub(crate) fn next_toxic_name(&self, kind: &ToxicKind, stream: Stream) -> String {
        let n = self.inner.seq.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{}_{}_{n}", kind.type_name(), stream)
    }

    pub(crate) fn describe(&self) -> String {
        format!("link {} ({} -> {})", self.inner.name, self.inner.listen, self.inner.upstream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn external_delete_maps_statuses() {
        use std::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            for reply in
                ["HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 404 Not Found\r\n\r\n", "HTTP/1.1 500 Oops\r\n\r\n"]
            {
                let (mut s, _) = l.accept().unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 1024];
                while !got.ends_with(b"\r\n\r\n") {
                    let n = s.read(&mut buf).unwrap();
                    assert!(n > 0, "request cut short: {:?}", String::from_utf8_lossy(&got));
                    got.extend_from_slice(&buf[..n]);
                }
                assert!(got.starts_with(b"DELETE /proxies/p HTTP/1.1\r\n"), "{:?}", String::from_utf8_lossy(&got));
                s.write_all(reply.as_bytes()).unwrap();
            }
        });
        assert!(delete_external_blocking(&url, "p").is_ok());
        assert!(delete_external_blocking(&url, "p").is_ok());
        assert!(delete_external_blocking(&url, "p").unwrap_err().contains("500"));
        server.join().unwrap();
    }
}
