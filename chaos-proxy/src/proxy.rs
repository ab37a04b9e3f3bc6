//! The proxy: a listener that accepts clients, connects each to the upstream and runs one
//! [link pump](super::pump) per direction; enable/disable; the toxic set.
//!
//! A [`Proxy`] is a cheap, cloneable handle. When the last handle is dropped (or
//! [`Proxy::shutdown`] is called) the listener and every connection task end.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::counters::{ProxyCounters, ProxyStats, ToxicCounters, ToxicStats};
use super::error::{NetError, NetResult};
use super::pump::{Pump, ToxicEntry, ToxicSet};
use super::toxic::{Stream, Toxic};

/// What to proxy: a name, where to listen and where to connect.
///
/// ```
/// use chaos_proxy::ProxyConfig;
/// let c = ProxyConfig { name: "db".into(), listen: "127.0.0.1:0".into(),
///     upstream: "127.0.0.1:5432".into(), ..Default::default() };
/// assert_eq!(c.seed, 0);
/// let c = ProxyConfig::new("db", "127.0.0.1:5432").seed(42);
/// assert_eq!((c.listen.as_str(), c.seed), ("127.0.0.1:0", 42));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Unique name (Toxiproxy's proxy name).
    pub name: String,
    /// host:port to listen on; port 0 picks a free port. Empty means `127.0.0.1:0`.
    pub listen: String,
    /// host:port of the server the proxy connects each client to.
    pub upstream: String,
    /// Seed of the RNG that draws toxicity, jitter and slice sizes (per connection).
    pub seed: u64,
}

impl ProxyConfig {
    /// A config listening on a free loopback port.
    ///
    /// ```
    /// let c = chaos_proxy::ProxyConfig::new("api", "127.0.0.1:8080");
    /// assert_eq!(c.name, "api");
    /// ```
    pub fn new(name: impl Into<String>, upstream: impl Into<String>) -> Self {
        ProxyConfig { name: name.into(), listen: "127.0.0.1:0".into(), upstream: upstream.into(), seed: 0 }
    }

    /// Set the listen address.
    ///
    /// ```
    /// let c = chaos_proxy::ProxyConfig::new("a", "127.0.0.1:1").listen("127.0.0.1:0");
    /// assert_eq!(c.listen, "127.0.0.1:0");
    /// ```
    pub fn listen(mut self, listen: impl Into<String>) -> Self {
        self.listen = listen.into();
        self
    }

    /// Set the RNG seed.
    ///
    /// ```
    /// let c = chaos_proxy::ProxyConfig::new("a", "127.0.0.1:1").seed(7);
    /// assert_eq!(c.seed, 7);
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// A proxy as Toxiproxy's API shows it (`GET /proxies/{name}`).
///
/// ```
/// use chaos_proxy::ProxyInfo;
/// let p = ProxyInfo { name: "db".into(), listen: "127.0.0.1:1000".into(),
///     upstream: "127.0.0.1:5432".into(), enabled: true, toxics: vec![] };
/// let json = serde_json::to_string(&p).unwrap();
/// assert!(json.starts_with(r#"{"name":"db","listen":"127.0.0.1:1000""#));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProxyInfo {
    /// Name.
    pub name: String,
    /// Listen address (the bound address once it has listened).
    pub listen: String,
    /// Upstream address.
    pub upstream: String,
    /// Whether it accepts connections.
    pub enabled: bool,
    /// Its toxics, upstream ones first, each direction in insertion order.
    pub toxics: Vec<Toxic>,
}

/// A partial proxy update (Toxiproxy's `POST /proxies/{name}`): absent fields keep their value.
///
/// ```
/// use chaos_proxy::ProxyUpdate;
/// let u = ProxyUpdate { enabled: Some(false), ..Default::default() };
/// assert!(u.listen.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyUpdate {
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// New listen address (restarts the listener, closing connections).
    pub listen: Option<String>,
    /// New upstream (restarts the proxy, closing connections).
    pub upstream: Option<String>,
}

struct Epoch {
    token: CancellationToken,
    tracker: TaskTracker,
}

struct Life {
    enabled: bool,
    listen: String,
    upstream: String,
    bound: Option<SocketAddr>,
    epoch: Option<Epoch>,
}

struct Shared {
    name: String,
    seed: u64,
    rt: tokio::runtime::Handle,
    root: CancellationToken,
    all: TaskTracker,
    toxics: watch::Sender<ToxicSet>,
    life: Mutex<Life>,
    op: tokio::sync::Mutex<()>,
    conn_seq: AtomicU64,
    stats: Arc<ProxyCounters>,
}

/// Cancels everything when the last [`Proxy`] clone goes away.
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.root.cancel();
        self.0.all.close();
    }
}

/// An embedded, Toxiproxy-compatible TCP proxy.
///
/// ```
/// use chaos_proxy::{Proxy, ProxyConfig, Stream, Toxic, ToxicKind};
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let proxy = Proxy::start(ProxyConfig {
///     name: "db".into(),
///     listen: "127.0.0.1:0".into(),
///     upstream: server.local_addr()?.to_string(),
///     ..Default::default()
/// }).await?;
/// proxy.add_toxic(Toxic::new(ToxicKind::Latency { latency: 100, jitter: 0 }, Stream::Downstream))?;
/// let _client = tokio::net::TcpStream::connect(proxy.listen_addr()).await?;
/// proxy.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Proxy {
    owner: Arc<Owner>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let life = self.life();
        f.debug_struct("Proxy")
            .field("name", &self.shared().name)
            .field("listen", &life.listen)
            .field("upstream", &life.upstream)
            .field("enabled", &life.enabled)
            .finish()
    }
}

impl Proxy {
    /// Start an enabled proxy: bind `listen`, accept clients, connect each to `upstream`.
    /// Must be called inside a Tokio runtime; the proxy's tasks run on it. Code that blocks
    /// that runtime's threads (a blocking client in a current-thread `#[tokio::test]`)
    /// stalls the proxy too: run blocking clients in `spawn_blocking` or a thread.
    ///
    /// ```
    /// use chaos_proxy::{Proxy, ProxyConfig};
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let proxy = Proxy::start(ProxyConfig::new("web", "127.0.0.1:9")).await?;
    /// assert!(proxy.listen_addr().ip().is_loopback());
    /// # Ok(()) }
    /// ```
    pub async fn start(config: ProxyConfig) -> NetResult<Proxy> {
        Proxy::create(config, true)
    }

    /// Create a proxy, enabled (listening) or not. Synchronous: binding is immediate.
    ///
    /// ```
    /// use chaos_proxy::{Proxy, ProxyConfig};
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let proxy = Proxy::create(ProxyConfig::new("web", "127.0.0.1:9"), false)?;
    /// assert!(!proxy.enabled());
    /// # Ok(()) }
    /// ```
    pub fn create(config: ProxyConfig, enabled: bool) -> NetResult<Proxy> {
        if config.name.is_empty() {
            return Err(NetError::MissingField { field: "name".into() });
        }
        if config.upstream.is_empty() {
            return Err(NetError::MissingField { field: "upstream".into() });
        }
        check_host_port("upstream", &config.upstream)?;
        let listen = if config.listen.is_empty() { "127.0.0.1:0".to_string() } else { config.listen };
        check_host_port("listen", &listen)?;
        let rt = tokio::runtime::Handle::try_current().map_err(|e| NetError::NoRuntime {
            what: format!("starting proxy `{}`", config.name),
            cause: e.to_string(),
        })?;
        let (toxics, _) = watch::channel(ToxicSet::default());
        let shared = Arc::new(Shared {
            name: config.name,
            seed: config.seed,
            rt,
            root: CancellationToken::new(),
            all: TaskTracker::new(),
            toxics,
            life: Mutex::new(Life { enabled: false, listen, upstream: config.upstream, bound: None, epoch: None }),
            op: tokio::sync::Mutex::new(()),
            conn_seq: AtomicU64::new(0),
            stats: Arc::new(ProxyCounters::default()),
        });
        let proxy = Proxy { owner: Arc::new(Owner(shared)) };
        if enabled {
            let mut life = proxy.life();
            proxy.start_epoch(&mut life)?;
        }
        Ok(proxy)
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.owner.0
    }

    fn life(&self) -> MutexGuard<'_, Life> {
        // A panic while holding this lock cannot leave Life inconsistent; keep going.
        self.shared().life.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The proxy's name.
    ///
    /// ```
    /// # use chaos_proxy::{Proxy, ProxyConfig};
    /// # #[tokio::main] async fn main() {
    /// let p = Proxy::create(ProxyConfig::new("db", "127.0.0.1:9"), false).unwrap();
    /// assert_eq!(p.name(), "db");
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.shared().name
    }

    /// The address clients connect to: the bound listening address (the last one bound while
    /// disabled; the configured one if it never listened).
    ///
    /// ```
    /// # use chaos_proxy::{Proxy, ProxyConfig};
    /// # #[tokio::main] async fn main() {
    /// let p = Proxy::start(ProxyConfig::new("db", "127.0.0.1:9")).await.unwrap();
    /// assert_ne!(p.listen_addr().port(), 0);
    /// # }
    /// ```
    pub fn listen_addr(&self) -> SocketAddr {
        let life = self.life();
        life.bound.or_else(|| life.listen.parse().ok()).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The upstream address.
    ///
    /// ```
    /// # use chaos_proxy::{Proxy, ProxyConfig};
    /// # #[tokio::main] async fn main() {
    /// let p = Proxy::create(ProxyConfig::new("db", "127.0.0.1:9"), false).unwrap();
    /// assert_eq!(p.upstream(), "127.0.0.1:9");
    /// # }
    /// ```
    pub fn upstream(&self) -> String {
        self.life().upstream.clone()
    }

    /// Whether the proxy accepts connections.
    ///
    /// ```
    /// # use chaos_proxy::{Proxy, ProxyConfig};
    /// # #[tokio::main] async fn main() {
    /// let p = Proxy::start(ProxyConfig::new("db", "127.0.0.1:9")).await.unwrap();
    /// assert!(p.enabled());
    /// # }
    /// ```
    pub fn enabled(&self) -> bool {
        self.life().enabled
    }

    /// The proxy as Toxiproxy's API shows it.
    ///
    /// ```
    /// # use chaos_proxy::{Proxy, ProxyConfig};
    /// # #[tokio::main] async fn main() {
    /// let p = Proxy::start(ProxyConfig::new("db", "127.0.0.1:9")).await.unwrap();
    /// assert_eq!(p.info().listen, p.listen_addr().to_string());
    /// # }
    /// ```
    pub fn info(&self) -> ProxyInfo {
        let (listen, upstream, enabled) = {
            let life = self.life();
            (life.listen.clone(), life.upstream.clone(), life.enabled)
        };
        ProxyInfo { name: self.name().to_string(), listen, upstream, enabled, toxics: self.toxics() }
    }

    /// Connection and byte counters of the proxy.
    ///
    /// ```
    /// # use chaos_proxy::{Proxy, ProxyConfig};
    /// # #[tokio::main] async fn main() {
    /// let p = Proxy::start(ProxyConfig::new("db", "127.0.0.1:9")).await.unwrap();
    /// assert_eq!(p.stats().accepted, 0);
    /// # }
    /// ```
    pub fn stats(&self) -> ProxyStats {
        self.shared().stats.snapshot()
    }

    fn check_alive(&self) -> NetResult<()> {
        if self.shared().root.is_cancelled() {
            return Err(NetError::ShutDown { name: self.name().to_string() });
        }
        Ok(())
    }

    /// Enable: listen again (on the same address) and accept clients.
    ///
    /// ```
    /// # use chaos_proxy::{Proxy, ProxyConfig};
    /// # #[tokio::main] async fn main() {
    /// let p = Proxy::create(ProxyConfig::new("db", "127.0.0.1:9"), false).unwrap();
    /// p.enable().await.unwrap();
    /// assert!(p.enabled());
    /// # }
    /// ```
    pub async fn enable(&self) -> NetResult<()> {
        self.set_enabled(true).await
    }

    /// Disable: stop listening (new connections are refused) and close every open
    /// connection. Returns once they are closed.
    ///
    /// ```
    /// # use chaos_proxy::{Proxy, ProxyConfig};
    /// # #[tokio::main] async fn main() {
    /// let p = Proxy::start(ProxyConfig::new("db", "127.0.0.1:9")).await.unwrap();
    /// p.disable().await.unwrap();
    /// assert!(tokio::net::TcpStream::connect(p.listen_addr()).await.is_err());
    /// # }
    /// ```
    pub async fn disable(&self) -> NetResult<()> {
        self.set_enabled(false).await
    }

    /// Enable or disable.
    ///
    /// ```
    /// # use chaos_proxy::{Proxy, ProxyConfig};
    /// # #[tokio::main] async fn main() {
    /// let p = Proxy::start(ProxyConfig::new("db", "127.0.0.1:9")).await.unwrap();
    /// p.set_enabled(false).await.unwrap();
    /// assert!(!p.enabled());
    /// # }
    /// ```
    pub async fn set_enabled(&self, enabled: bool) -> NetResult<()> {
        self.update(ProxyUpdate { enabled: Some(enabled), ..Default::default() }).await.map(|_| ())
    }

    /// Apply a partial update with Toxiproxy's semantics: a changed listen or upstream address
    /// stops the proxy (closing connections) and starts it again if it is to be enabled.
    ///
    /// ```
    /// # use chaos_proxy::{Proxy, ProxyConfig, ProxyUpdate};
    /// # #[tokio::main] async fn main() {
    /// let p = Proxy::start(ProxyConfig::new("db", "127.0.0.1:9")).await.unwrap();
    /// let info = p.update(ProxyUpdate { upstream: Some("127.0.0.1:10".into()), ..Default::default() }).await.unwrap();
    /// assert_eq!(info.upstream, "127.0.0.1:10");
    /// assert!(info.enabled);
    /// # }
    /// ```
    pub async fn update(&self, update: ProxyUpdate) -> NetResult<ProxyInfo> {
        self.check_alive()?;
        if let Some(l) = &update.listen {
            check_host_port("listen", l)?;
        }
        if let Some(u) = &update.upstream {
            check_host_port("upstream", u)?;
        }
        let _op = self.shared().op.lock().await;
        // Stop first and wait until the old listener is closed, then start: the new listener
        // may bind the very same address.
        let mut to_wait = Vec::new();
        let want = {
            let mut life = self.life();
            let listen = update.listen.clone().unwrap_or_else(|| life.listen.clone());
            let upstream = update.upstream.clone().unwrap_or_else(|| life.upstream.clone());
            let want = update.enabled.unwrap_or(life.enabled);
            if listen != life.listen || upstream != life.upstream {
                to_wait.extend(stop_epoch(&mut life));
                life.listen = listen;
                life.upstream = upstream;
                life.bound = None;
            }
            if !want && life.enabled {
                to_wait.extend(stop_epoch(&mut life));
            }
            want
        };
        for t in to_wait {
            t.wait().await;
        }
        if want {
            let mut life = self.life();
            if !life.enabled {
                self.start_epoch(&mut life)?;
            }
        }
        Ok(self.info())
    }

    /// Bind and spawn the accept loop. Called with the lifecycle lock held.
    fn start_epoch(&self, life: &mut Life) -> NetResult<()> {
        self.check_alive()?;
        let shared = self.shared();
        let what = format!("proxy `{}`", shared.name);
        let addr = life.bound.map(|b| b.to_string()).unwrap_or_else(|| life.listen.clone());
        let std_listener = std::net::TcpListener::bind(addr.as_str())
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
            .map_err(|source| NetError::Bind { what: what.clone(), addr: addr.clone(), source })?;
        let listener = {
            let _guard = shared.rt.enter();
            TcpListener::from_std(std_listener).map_err(|source| NetError::Bind { what, addr: addr.clone(), source })?
        };
        let bound = listener.local_addr().ok();
        if let Some(b) = bound {
            life.listen = b.to_string();
        }
        life.bound = bound;
        let epoch = Epoch { token: shared.root.child_token(), tracker: TaskTracker::new() };
        let task = accept_loop(
            shared.clone(),
            listener,
            epoch.token.clone(),
            epoch.tracker.clone(),
            Arc::from(life.upstream.as_str()),
        );
        shared.rt.spawn(epoch.tracker.track_future(shared.all.track_future(task)));
        life.epoch = Some(epoch);
        life.enabled = true;
        tracing::debug!(proxy = %shared.name, listen = %life.listen, upstream = %life.upstream, "proxy listening");
        Ok(())
    }

    /// Add a toxic; it applies to live connections (from their next chunk) and new ones.
    ///
    /// ```
    /// # use chaos_proxy::{Proxy, ProxyConfig, Stream, Toxic, ToxicKind};
    /// # #[tokio::main] async fn main() {
    /// let p = Proxy::start(ProxyConfig::new("db", "127.0.0.1:9")).await.unwrap();
    /// p.add_toxic(Toxic::new(ToxicKind::Timeout { timeout: 0 }, Stream::Upstream)).unwrap();
    /// let dup = p.add_toxic(Toxic::new(ToxicKind::Timeout { timeout: 5 }, Stream::Upstream));
    /// assert_eq!(dup.unwrap_err().status(), 409);
    /// # }
    /// ```
    pub fn add_toxic(&self, toxic: Toxic) -> NetResult<Toxic> {
        self.check_alive()?;
        toxic.validate()?;
        let mut result = Ok(toxic.clone());
        self.shared().toxics.send_if_modified(|set| {
            if set.iter().any(|e| e.toxic.name == toxic.name) {
                result = Err(NetError::ToxicExists { proxy: self.name().to_string(), toxic: toxic.name.clone() });
                return false;
            }
            let mut next = set.as_ref().clone();
            next.push(Arc::new(ToxicEntry { toxic: toxic.clone(), counters: Arc::new(ToxicCounters::default()) }));
            *set = Arc::new(next);
            true
        });
        result
    }

    /// Replace the parameters and toxicity of the toxic with `toxic.name` (its stream and
    /// type cannot change). Counters are kept; live connections redraw toxicity.
    ///
    /// ```
    /// # use chaos_proxy::{Proxy, ProxyConfig, Stream, Toxic, ToxicKind};
    /// # #[tokio::main] async fn main() {
    /// let p = Proxy::start(ProxyConfig::new("db", "127.0.0.1:9")).await.unwrap();
    /// let t = p.add_toxic(Toxic::new(ToxicKind::Latency { latency: 10, jitter: 0 }, Stream::Upstream)).unwrap();
    /// let t = p.update_toxic(Toxic { kind: ToxicKind::Latency { latency: 20, jitter: 0 }, ..t }).unwrap();
    /// assert_eq!(p.toxic("latency_upstream").unwrap().kind, t.kind);
    /// # }
    /// ```
    pub fn update_toxic(&self, toxic: Toxic) -> NetResult<Toxic> {
        self.modify_toxic(&toxic.name.clone(), |old| {
            if old.kind.type_name() != toxic.kind.type_name() || old.stream != toxic.stream {
                return Err(NetError::bad_request(
                    format!(
                        "toxic `{}` is a {} {} toxic; its type and stream cannot change",
                        old.name,
                        old.stream,
                        old.kind.type_name()
                    ),
                    "remove the toxic and add a new one",
                ));
            }
            Ok(toxic)
        })
    }

    /// Update a toxic from a Toxiproxy update body (`{"attributes": {...}, "toxicity": x}`).
    ///
    /// ```
    /// # use chaos_proxy::{Proxy, ProxyConfig, Stream, Toxic, ToxicKind};
    /// # #[tokio::main] async fn main() {
    /// let p = Proxy::start(ProxyConfig::new("db", "127.0.0.1:9")).await.unwrap();
    /// p.add_toxic(Toxic::new(ToxicKind::Bandwidth { rate: 10 }, Stream::Downstream)).unwrap();
    /// let t = p.update_toxic_json("bandwidth_downstream", br#"{"attributes":{"rate":5}}"#).unwrap();
    /// assert_eq!(t.kind, ToxicKind::Bandwidth { rate: 5 });
    /// # }
    /// ```
    pub fn update_toxic_json(&self, name: &str, body: &[u8]) -> NetResult<Toxic> {
        self.modify_toxic(name, |old| old.updated_from_json(body))
    }

    fn modify_toxic(&self, name: &str, f: impl FnOnce(&Toxic) -> NetResult<Toxic>) -> NetResult<Toxic> {
        self.check_alive()?;
        let mut f = Some(f);
        let mut result = Err(NetError::ToxicNotFound { proxy: self.name().to_string(), toxic: name.to_string() });
        self.shared().toxics.send_if_modified(|set| {
            let Some(i) = set.iter().position(|e| e.toxic.name == name) else {
                return false;
            };
            let Some(f) = f.take() else { return false };
            let new = match f(&set[i].toxic).and_then(|t| t.validate().map(|_| t)) {
                Ok(t) => t,
                Err(e) => {
                    result = Err(e);
                    return false;
                }
            };
            let mut next = set.as_ref().clone();
            next[i] = Arc::new(ToxicEntry { toxic: new.clone(), counters: set[i].counters.clone() });
            *set = Arc::new(next);
            result = Ok(new);
            true
        });
        result
    }

    /// Remove a toxic; live connections stop applying it (a removed `timeout` closes the
    /// connections it stalled, as in Toxiproxy).
    ///
    /// ```
    /// # use chaos_proxy::{Proxy, ProxyConfig, Stream, Toxic, ToxicKind};
    /// # #[tokio::main] async fn main() {
    /// let p = Proxy::start(ProxyConfig::new("db", "127.0.0.1:9")).await.unwrap();
    /// assert_eq!(p.remove_toxic("nope").unwrap_err().status(), 404);
    /// # }
    /// ```
    pub fn remove_toxic(&self, name: &str) -> NetResult<()> {
        self.check_alive()?;
        let mut found = false;
        self.shared().toxics.send_if_modified(|set| {
            let Some(i) = set.iter().position(|e| e.toxic.name == name) else {
                return false;
            };
            let mut next = set.as_ref().clone();
            next.remove(i);
            *set = Arc::new(next);
            found = true;
            true
        });
        if found {
            Ok(())
        } else {
            Err(NetError::ToxicNotFound { proxy: self.name().to_string(), toxic: name.to_string() })
        }
    }

    /// Remove every toxic.
    ///
    /// ```
    /// # use chaos_proxy::{Proxy, ProxyConfig, Stream, Toxic, ToxicKind};
    /// # #[tokio::main] async fn main() {
    /// let p = Proxy::start(ProxyConfig::new("db", "127.0.0.1:9")).await.unwrap();
    /// p.add_toxic(Toxic::new(ToxicKind::Bandwidth { rate: 10 }, Stream::Downstream)).unwrap();
    /// p.remove_all_toxics();
    /// assert!(p.toxics().is_empty());
    /// # }
    /// ```
    pub fn remove_all_toxics(&self) {
        self.shared().toxics.send_if_modified(|set| {
            if set.is_empty() {
                return false;
            }
            *set = ToxicSet::default();
            true
        });
    }

    /// The toxics, upstream first, each direction in insertion order (Toxiproxy's listing order).
    ///
    /// ```
    /// # use chaos_proxy::{Proxy, ProxyConfig};
    /// # #[tokio::main] async fn main() {
    /// let p = Proxy::start(ProxyConfig::new("db", "127.0.0.1:9")).await.unwrap();
    /// assert!(p.toxics().is_empty());
    /// # }
    /// ```
    pub fn toxics(&self) -> Vec<Toxic> {
        let set = self.shared().toxics.borrow().clone();
        let mut out: Vec<Toxic> =
            set.iter().filter(|e| e.toxic.stream == Stream::Upstream).map(|e| e.toxic.clone()).collect();
        out.extend(set.iter().filter(|e| e.toxic.stream == Stream::Downstream).map(|e| e.toxic.clone()));
        out
    }

    /// One toxic by name.
    ///
    /// ```
    /// # use chaos_proxy::{Proxy, ProxyConfig};
    /// # #[tokio::main] async fn main() {
    /// let p = Proxy::start(ProxyConfig::new("db", "127.0.0.1:9")).await.unwrap();
    /// assert_eq!(p.toxic("x").unwrap_err().status(), 404);
    /// # }
    /// ```
    pub fn toxic(&self, name: &str) -> NetResult<Toxic> {
        self.entry(name).map(|e| e.toxic.clone())
    }

    fn entry(&self, name: &str) -> NetResult<Arc<ToxicEntry>> {
        self.shared()
            .toxics
            .borrow()
            .iter()
            .find(|e| e.toxic.name == name)
            .cloned()
            .ok_or_else(|| NetError::ToxicNotFound { proxy: self.name().to_string(), toxic: name.to_string() })
    }

    /// Counters of one toxic: connections it was applied to, bytes it touched, closes/resets
    /// it caused. The proof that a network fault took effect.
    ///
    /// ```
    /// # use chaos_proxy::{Proxy, ProxyConfig, Stream, Toxic, ToxicKind};
    /// # #[tokio::main] async fn main() {
    /// let p = Proxy::start(ProxyConfig::new("db", "127.0.0.1:9")).await.unwrap();
    /// p.add_toxic(Toxic::new(ToxicKind::Timeout { timeout: 0 }, Stream::Upstream)).unwrap();
    /// assert!(!p.toxic_stats("timeout_upstream").unwrap().took_effect());
    /// # }
    /// ```
    pub fn toxic_stats(&self, name: &str) -> NetResult<ToxicStats> {
        self.entry(name).map(|e| e.counters.snapshot())
    }

    /// Stop everything and wait until every task of the proxy has ended. Dropping the last
    /// handle stops everything too, without waiting.
    ///
    /// ```
    /// # use chaos_proxy::{Proxy, ProxyConfig};
    /// # #[tokio::main] async fn main() {
    /// let p = Proxy::start(ProxyConfig::new("db", "127.0.0.1:9")).await.unwrap();
    /// let addr = p.listen_addr();
    /// p.shutdown().await;
    /// assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    /// # }
    /// ```
    pub async fn shutdown(&self) {
        let shared = self.shared().clone();
        shared.root.cancel();
        shared.all.close();
        {
            let mut life = self.life();
            let _ = stop_epoch(&mut life);
        }
        shared.all.wait().await;
    }

    /// Number of proxy tasks (accept loop and connection pumps) still running.
    ///
    /// ```
    /// # use chaos_proxy::{Proxy, ProxyConfig};
    /// # #[tokio::main] async fn main() {
    /// let p = Proxy::start(ProxyConfig::new("db", "127.0.0.1:9")).await.unwrap();
    /// assert_eq!(p.tasks(), 1); // the accept loop
    /// p.shutdown().await;
    /// assert_eq!(p.tasks(), 0);
    /// # }
    /// ```
    pub fn tasks(&self) -> usize {
        self.shared().all.len()
    }
}

/// Cancel the current epoch (listener and connections); returns its tracker to wait on.
fn stop_epoch(life: &mut Life) -> Option<TaskTracker> {
    life.enabled = false;
    let epoch = life.epoch.take()?;
    epoch.token.cancel();
    epoch.tracker.close();
    Some(epoch.tracker)
}

/// Light validation: `host:port` with a numeric port (names are resolved when used).
fn check_host_port(what: &'static str, addr: &str) -> NetResult<()> {
    let bad = |cause: &str| NetError::InvalidAddress { what, addr: addr.to_string(), cause: cause.to_string() };
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("no `:port`"))?;
    port.parse::<u16>().map_err(|_| bad("the port is not a number from 0 to 65535"))?;
    if host.is_empty() && what == "upstream" {
        return Err(bad("no host"));
    }
    Ok(())
}

/// Counts a connection as active until both of its pumps are done.
struct ActiveGuard(Arc<ProxyCounters>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    token: CancellationToken,
    tracker: TaskTracker,
    upstream: Arc<str>,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = token.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((client, _peer)) => {
                shared.stats.accepted.fetch_add(1, Relaxed);
                let index = shared.conn_seq.fetch_add(1, Relaxed);
                let task =
                    connection(shared.clone(), client, upstream.clone(), token.child_token(), tracker.clone(), index);
                tracker.spawn(shared.all.track_future(task));
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(proxy = %shared.name, error = %e, "accept failed");
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
                }
            }
        }
    }
}

async fn connection(
    shared: Arc<Shared>,
    client: TcpStream,
    upstream: Arc<str>,
    token: CancellationToken,
    tracker: TaskTracker,
    index: u64,
) {
    let connected = tokio::select! {
        biased;
        _ = token.cancelled() => return,
        r = TcpStream::connect(&*upstream) => r,
    };
    let server = match connected {
        Ok(s) => s,
        Err(e) => {
            shared.stats.upstream_failures.fetch_add(1, Relaxed);
            tracing::debug!(proxy = %shared.name, upstream = %upstream, error = %e, "upstream unreachable; closing client");
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    shared.stats.active.fetch_add(1, Relaxed);
    let guard = Arc::new(ActiveGuard(shared.stats.clone()));
    let (client_r, client_w) = client.into_split();
    let (server_r, server_w) = server.into_split();
    let up = Pump::new(
        Stream::Upstream,
        client_r,
        server_w,
        shared.toxics.subscribe(),
        token.clone(),
        shared.seed,
        index,
        shared.stats.clone(),
    );
    let down = Pump::new(
        Stream::Downstream,
        server_r,
        client_w,
        shared.toxics.subscribe(),
        token,
        shared.seed,
        index,
        shared.stats.clone(),
    );
    let g = guard.clone();
    tracker.spawn(shared.all.track_future(async move {
        up.run().await;
        drop(g);
    }));
    down.run().await;
    drop(guard);
}
