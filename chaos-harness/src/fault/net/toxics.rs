//! Network faults on a proxied [`Link`]: the toxics as [`Fault`]s (`Fault::latency(&link, d)`,
//! `Fault::bandwidth`, `Fault::timeout`, `Fault::reset_peer`, `Fault::slicer`,
//! `Fault::limit_data`, `Fault::slow_close`) and `Fault::link_down`.
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
//! ```no_run
//! use chaos_harness::prelude::*;
//! use chaos_harness::fault::net::Stream;
//!
//! #[chaos_test(tags = ["network"])]
//! async fn slow_db(cx: &mut Chaos) -> ChaosResult {
//!     let db = cx.link("db", "127.0.0.1:5432").await?;
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

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chaos_proxy::{NetError, Stream, Toxic, ToxicKind, ToxicStats};

use crate::BoxFuture;
use crate::Error;
use crate::fault::{ActiveFault, Confirmation, Fault, FaultContext, Inject};
use crate::topology::Link;
use crate::topology::backend::ProxyBackend;

/// Default time a toxic may take to touch its first connection before it counts as not
/// injected.
pub const DEFAULT_CONFIRM_WITHIN: Duration = Duration::from_secs(5);
fn not_injected(fault: &str, cause: impl Into<String>, fix: impl Into<String>) -> Error {
    Error::NotInjected { fault: fault.to_string(), cause: cause.into(), fix: fix.into() }
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
/// # fn f(link: &chaos_harness::topology::Link) {
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
    /// How a scenario spec names the link (`db`, `pit.bridge`), when built from one.
    spec_ref: Option<String>,
    kind: ToxicKind,
    stream: Stream,
    toxicity: f32,
    confirm_within: Duration,
}

impl ToxicFault {
    fn new(link: &Link, kind: ToxicKind) -> Self {
        ToxicFault {
            link: link.clone(),
            spec_ref: None,
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
    /// # fn f(link: &chaos_harness::topology::Link) {
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
    /// # fn f(link: &chaos_harness::topology::Link) {
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
    /// # fn f(link: &chaos_harness::topology::Link) {
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
    /// # fn f(link: &chaos_harness::topology::Link) {
    /// use chaos_harness::fault::{Fault, net::ToxicKind};
    /// assert_eq!(Fault::limit_data(link, 10).kind(), &ToxicKind::LimitData { bytes: 10 });
    /// # }
    /// ```
    pub fn kind(&self) -> &ToxicKind {
        &self.kind
    }

    /// How a scenario spec names the link (`target = "pit.bridge"`); set by the registry so
    /// that [`Inject::described`] writes the same reference back.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::topology::Link) {
    /// let f = chaos_harness::fault::Fault::reset_peer(link).spec_ref("db");
    /// # let _ = f; }
    /// ```
    pub fn spec_ref(mut self, reference: impl Into<String>) -> Self {
        self.spec_ref = Some(reference.into());
        self
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
            ToxicKind::Slicer { average_size, size_variation, delay } => {
                format!("slicer {average_size}±{size_variation} B every {delay} µs")
            }
            ToxicKind::LimitData { bytes } => format!("limit_data {bytes} B"),
        };
        let tox = if self.toxicity < 1.0 { format!(", toxicity {}", self.toxicity) } else { String::new() };
        format!("{what} {}{tox} on {}", self.stream, self.link.describe())
    }

    async fn inject_toxic(&self, name: String) -> Result<Box<dyn ActiveFault>, Error> {
        let toxic_name = self.link.next_toxic_name(&self.kind, self.stream);
        let toxic = Toxic::new(self.kind.clone(), self.stream).named(toxic_name.clone()).toxicity(self.toxicity);
        if let Err(e) = toxic.validate() {
            return Err(not_injected(&name, e.to_string(), "fix the fault's parameters"));
        }
        let backend = self.link.backend();
        let proxy = self.link.proxy_name();
        backend.add_toxic(proxy, toxic).await.map_err(|e| {
            not_injected(&name, format!("adding toxic {toxic_name}: {e}"), "check that the link is still open")
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
                    .map(|s| format!(" ({} connections accepted in total, {} open)", s.accepted, s.active))
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

/// How a spec refers to `link`: the reference it was built from, else `pit.bridge` /
/// `pit.api` for a Snakepit's links (named `<pit>-bridge`, `<pit>-api`), else its name.
pub(crate) fn link_ref(link: &Link, spec_ref: Option<&String>) -> String {
    if let Some(r) = spec_ref {
        return r.clone();
    }
    let name = link.name();
    for role in ["bridge", "api"] {
        if let Some(pit) = name.strip_suffix(&format!("-{role}")) {
            return format!("{pit}.{role}");
        }
    }
    name.to_string()
}

fn dur(d: u64) -> String {
    crate::params::format_duration(Duration::from_millis(d))
}

impl Inject for ToxicFault {
    fn describe(&self) -> String {
        self.describe_kind()
    }

    fn described(&self) -> Option<crate::params::Described> {
        use crate::params::Params;
        let p = Params::new().with("target", link_ref(&self.link, self.spec_ref.as_ref()));
        let (kind, p) = match &self.kind {
            ToxicKind::Latency { latency, jitter } => {
                let p = p.with("latency", dur(*latency));
                ("latency", if *jitter > 0 { p.with("jitter", dur(*jitter)) } else { p })
            }
            ToxicKind::Bandwidth { rate } => ("bandwidth", p.with("rate_kbps", rate)),
            ToxicKind::SlowClose { delay } => ("slow_close", p.with("delay", dur(*delay))),
            ToxicKind::Timeout { timeout } => ("timeout", p.with("timeout", dur(*timeout))),
            ToxicKind::ResetPeer { timeout: 0 } => ("reset_peer", p),
            ToxicKind::ResetPeer { timeout } => ("reset_peer", p.with("after", dur(*timeout))),
            ToxicKind::Slicer { average_size, size_variation, delay } => (
                "slicer",
                p.with("average_size", average_size)
                    .with("size_variation", size_variation)
                    .with_duration("delay", Duration::from_micros(*delay)),
            ),
            ToxicKind::LimitData { bytes } => ("limit_data", p.with("bytes", bytes)),
        };
        let mut p = p;
        if self.stream != Stream::Downstream {
            p = p.with("stream", self.stream.as_str());
        }
        if self.toxicity < 1.0 {
            p = p.with("toxicity", f64::from(self.toxicity));
        }
        if self.confirm_within != DEFAULT_CONFIRM_WITHIN {
            p = p.with_duration("confirm_within", self.confirm_within);
        }
        Some(crate::params::Described::new(kind, p))
    }

    fn inject<'a>(&'a self, _cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
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
            let stats: Option<ToxicStats> = backend.toxic_stats(proxy, &self.toxic).await.ok().flatten();
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
            let left = backend
                .toxics(proxy)
                .await
                .map_err(|e| not_injected(&name, format!("listing toxics: {e}"), "check the link"))?;
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
            Ok(Confirmation::new(name, format!("toxic {} removed and no longer listed{counted}", self.toxic), vec![]))
        })
    }
}

/// `Fault::latency(&link, d)`: every chunk on the stream waits `d` (± jitter). A
/// [`ToxicFault`] with [`Latency::jitter`].
///
/// ```no_run
/// # fn f(link: &chaos_harness::topology::Link) {
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
    /// # fn f(link: &chaos_harness::topology::Link) {
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
    /// # fn f(link: &chaos_harness::topology::Link) {
    /// let f = chaos_harness::fault::Fault::latency(link, std::time::Duration::from_millis(100)).stream(chaos_harness::fault::net::Stream::Upstream);
    /// # let _ = f; }
    /// ```
    pub fn stream(self, stream: Stream) -> Self {
        Latency(self.0.stream(stream))
    }

    /// See [`ToxicFault::toxicity`].
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::topology::Link) {
    /// let f = chaos_harness::fault::Fault::latency(link, std::time::Duration::from_millis(100)).toxicity(0.5);
    /// # let _ = f; }
    /// ```
    pub fn toxicity(self, p: f32) -> Self {
        Latency(self.0.toxicity(p))
    }

    /// See [`ToxicFault::spec_ref`].
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::topology::Link) {
    /// let f = chaos_harness::fault::Fault::latency(link, std::time::Duration::from_millis(100)).spec_ref("db");
    /// # let _ = f; }
    /// ```
    pub fn spec_ref(self, reference: impl Into<String>) -> Self {
        Latency(self.0.spec_ref(reference))
    }

    /// See [`ToxicFault::confirm_within`].
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::topology::Link) {
    /// let f = chaos_harness::fault::Fault::latency(link, std::time::Duration::from_millis(100)).confirm_within(std::time::Duration::from_secs(1));
    /// # let _ = f; }
    /// ```
    pub fn confirm_within(self, d: Duration) -> Self {
        Latency(self.0.confirm_within(d))
    }

    /// The underlying toxic fault.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::topology::Link) {
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

    fn described(&self) -> Option<crate::params::Described> {
        self.0.described()
    }

    fn inject<'a>(&'a self, cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        self.0.inject(cx)
    }
}

/// `Fault::link_down(&link)`: disable the proxy - open connections are closed, new ones
/// refused. Confirmed by a refused connect; cleared by enabling it again (confirmed by an
/// accepted connect).
///
/// ```no_run
/// # fn f(link: &chaos_harness::topology::Link) {
/// let f = chaos_harness::fault::Fault::link_down(link);
/// # let _ = f; }
/// ```
#[derive(Debug, Clone)]
pub struct LinkDown {
    link: Link,
    spec_ref: Option<String>,
}

impl LinkDown {
    /// See [`ToxicFault::spec_ref`].
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::topology::Link) {
    /// let f = chaos_harness::fault::Fault::link_down(link).spec_ref("db");
    /// # let _ = f; }
    /// ```
    pub fn spec_ref(mut self, reference: impl Into<String>) -> Self {
        self.spec_ref = Some(reference.into());
        self
    }
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

    fn described(&self) -> Option<crate::params::Described> {
        let p = crate::params::Params::new().with("target", link_ref(&self.link, self.spec_ref.as_ref()));
        Some(crate::params::Described::new("link_down", p))
    }

    fn inject<'a>(&'a self, _cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            let link = &self.link;
            let before = link.stats();
            let t0 = Instant::now();
            link.backend().set_enabled(link.proxy_name(), false).await.map_err(|e| {
                not_injected(&name, format!("disabling the proxy: {e}"), "check that the link is still open")
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
                (Some(b), Some(a)) => format!("; {} open connection(s) closed ({} left)", b.active, a.active),
                _ => String::new(),
            };
            let detail = format!("proxy disabled in {}; a connect to {addr} was refused{closed}", ms(disabled_in));
            Ok(Box::new(LinkDownActive { confirmation: Confirmation::new(&name, detail, vec![]), link: link.clone() })
                as Box<dyn ActiveFault>)
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
            link.backend().set_enabled(link.proxy_name(), true).await.map_err(|e| {
                not_injected(
                    &name,
                    format!("enabling the proxy: {e}"),
                    "the port may have been taken meanwhile; restart the link",
                )
            })?;
            let addr = link.listen_addr();
            match try_connect(addr, Duration::from_secs(2)).await {
                Connect::Accepted => {
                    Ok(Confirmation::new(name, format!("proxy enabled; a connect to {addr} was accepted"), vec![]))
                }
                Connect::Refused => Err(not_injected(
                    &name,
                    format!("the proxy says enabled but {addr} refuses connections"),
                    "restart the link",
                )),
                Connect::Other(e) => {
                    Err(not_injected(&name, format!("a connect to {addr} failed: {e}"), "restart the link"))
                }
            }
        })
    }
}

impl Fault {
    /// Add `d` of latency to every chunk on `link` (downstream by default; see
    /// [`Latency`] for jitter, stream, toxicity).
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::topology::Link) {
    /// let f = chaos_harness::fault::Fault::latency(link, std::time::Duration::from_millis(500));
    /// # let _ = f; }
    /// ```
    pub fn latency(link: &Link, d: Duration) -> Latency {
        Latency(ToxicFault::new(link, ToxicKind::Latency { latency: millis(d), jitter: 0 }))
    }

    /// Limit `link` to `kbps` KB/s (1 KB = 1000 bytes; Toxiproxy's `bandwidth` toxic).
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::topology::Link) {
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
    /// # fn f(link: &chaos_harness::topology::Link) {
    /// let f = chaos_harness::fault::Fault::timeout(link, std::time::Duration::from_secs(1));
    /// # let _ = f; }
    /// ```
    pub fn timeout(link: &Link, d: Duration) -> ToxicFault {
        ToxicFault::new(link, ToxicKind::Timeout { timeout: millis(d) })
    }

    /// Reset (TCP RST) every connection on `link` at its next data.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::topology::Link) {
    /// let f = chaos_harness::fault::Fault::reset_peer(link);
    /// # let _ = f; }
    /// ```
    pub fn reset_peer(link: &Link) -> ToxicFault {
        ToxicFault::new(link, ToxicKind::ResetPeer { timeout: 0 })
    }

    /// Like [`Fault::reset_peer`], resetting `d` after the data arrives.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::topology::Link) {
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
    /// # fn f(link: &chaos_harness::topology::Link) {
    /// let f = chaos_harness::fault::Fault::slicer(link, 16, 4, std::time::Duration::from_micros(100));
    /// # let _ = f; }
    /// ```
    pub fn slicer(link: &Link, average_size: u64, size_variation: u64, delay: Duration) -> ToxicFault {
        let delay = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        ToxicFault::new(link, ToxicKind::Slicer { average_size, size_variation, delay })
    }

    /// Close each connection on `link` once `bytes` have passed on the stream.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::topology::Link) {
    /// let f = chaos_harness::fault::Fault::limit_data(link, 4096);
    /// # let _ = f; }
    /// ```
    pub fn limit_data(link: &Link, bytes: u64) -> ToxicFault {
        ToxicFault::new(link, ToxicKind::LimitData { bytes })
    }

    /// Delay each close (FIN) on `link` by `d`.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::topology::Link) {
    /// let f = chaos_harness::fault::Fault::slow_close(link, std::time::Duration::from_secs(1));
    /// # let _ = f; }
    /// ```
    pub fn slow_close(link: &Link, d: Duration) -> ToxicFault {
        ToxicFault::new(link, ToxicKind::SlowClose { delay: millis(d) })
    }

    /// Take `link` down: close its open connections and refuse new ones until cleared.
    ///
    /// ```no_run
    /// # fn f(link: &chaos_harness::topology::Link) {
    /// let f = chaos_harness::fault::Fault::link_down(link);
    /// # let _ = f; }
    /// ```
    pub fn link_down(link: &Link) -> LinkDown {
        LinkDown { link: link.clone(), spec_ref: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::Sandbox;
    use std::sync::Arc;

    #[test]
    fn descriptions_name_parameters_and_link() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let sb = Arc::new(
                Sandbox::with_options("unit::net_fault", crate::sandbox::SandboxOptions { cgroups: false }).unwrap(),
            );
            let link = Link::builder("db", "127.0.0.1:9").embedded().start(&sb).await.unwrap();
            let d = Fault::latency(&link, Duration::from_millis(100)).jitter(Duration::from_millis(5)).describe();
            assert!(d.starts_with("latency 100 ms ± 5 ms downstream on link db (127.0.0.1:"), "{d}");
            let d = Fault::reset_peer(&link).stream(Stream::Upstream).toxicity(0.5).describe();
            assert!(d.starts_with("reset_peer upstream, toxicity 0.5 on link db"), "{d}");
            assert!(Link::builder("bad name", "127.0.0.1:9").start(&sb).await.is_err());
            drop(link);
            sb.teardown().unwrap();
        });
    }
}
