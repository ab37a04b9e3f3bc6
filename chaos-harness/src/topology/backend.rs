//! One API over two backends: the embedded proxies ([`ProxyRegistry`]) or an external
//! Toxiproxy server (with `TOXIPROXY_URL` set), driven through the `toxiproxy_rust` crate.
//!
//! `toxiproxy_rust` 0.1 covers proxies (populate, list, enable/disable, delete), listing toxics,
//! reset and version; it cannot name a toxic, update one, remove a single one, and ignores HTTP
//! error statuses when adding toxics. Those calls go through `reqwest` (the same blocking
//! client `toxiproxy_rust` uses), with Toxiproxy's error bodies mapped back to [`NetError`].
//! Both are blocking clients, so every call runs on Tokio's blocking pool.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use serde_json::Value;

use chaos_proxy::{
    NetError, NetResult, ProxyConfig, ProxyInfo, ProxyRegistry, ProxyUpdate, Stream, Toxic, ToxicKind, ToxicStats,
};

/// The environment variable naming an external Toxiproxy server (`http://127.0.0.1:8474`).
pub const TOXIPROXY_URL: &str = "TOXIPROXY_URL";

/// Where network faults are injected: the embedded proxies or an external Toxiproxy.
///
/// ```
/// use chaos_harness::topology::ProxyBackend;
/// use chaos_proxy::{ProxyRegistry, Stream, Toxic, ToxicKind};
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let backend = ProxyBackend::Embedded(ProxyRegistry::new(1));
/// let info = backend.create_proxy("db", "127.0.0.1:0", "127.0.0.1:5432").await?;
/// backend.add_toxic("db", Toxic::new(ToxicKind::Latency { latency: 50, jitter: 0 }, Stream::Downstream)).await?;
/// assert_eq!(backend.toxics("db").await?.len(), 1);
/// # let _ = info; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub enum ProxyBackend {
    /// Proxies in this process.
    Embedded(ProxyRegistry),
    /// A Toxiproxy server reached over HTTP.
    External(ExternalToxiproxy),
}

impl ProxyBackend {
    /// `External` when `TOXIPROXY_URL` is set (and non-empty), else `Embedded` with a new
    /// registry seeded with `seed`.
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() {
    /// let b = chaos_harness::topology::ProxyBackend::from_env(1).await.unwrap();
    /// println!("external Toxiproxy: {}", b.is_external());
    /// # }
    /// ```
    pub async fn from_env(seed: u64) -> NetResult<ProxyBackend> {
        ProxyBackend::from_url(std::env::var(TOXIPROXY_URL).ok().as_deref(), seed).await
    }

    /// `External` for a (non-empty) Toxiproxy URL, else `Embedded` with a new registry seeded
    /// with `seed`. [`from_env`](Self::from_env) passes `TOXIPROXY_URL` here.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// use chaos_harness::topology::ProxyBackend;
    /// assert!(!ProxyBackend::from_url(Some(""), 1).await.unwrap().is_external());
    /// assert!(ProxyBackend::from_url(Some("ftp://x"), 1).await.is_err());
    /// # }
    /// ```
    pub async fn from_url(url: Option<&str>, seed: u64) -> NetResult<ProxyBackend> {
        match url.map(str::trim) {
            Some(url) if !url.is_empty() => Ok(ProxyBackend::External(ExternalToxiproxy::connect(url).await?)),
            _ => Ok(ProxyBackend::Embedded(ProxyRegistry::new(seed))),
        }
    }

    /// True for an external Toxiproxy.
    ///
    /// ```
    /// let b = chaos_harness::topology::ProxyBackend::Embedded(
    ///     chaos_proxy::ProxyRegistry::new(0));
    /// assert!(!b.is_external());
    /// ```
    pub fn is_external(&self) -> bool {
        matches!(self, ProxyBackend::External(_))
    }

    /// Create an enabled proxy (409 if the name exists). Returns it with its bound listen address.
    ///
    /// ```
    /// # use chaos_harness::topology::ProxyBackend;
    /// # use chaos_proxy::ProxyRegistry;
    /// # #[tokio::main] async fn main() {
    /// let b = ProxyBackend::Embedded(ProxyRegistry::new(0));
    /// let p = b.create_proxy("db", "127.0.0.1:0", "127.0.0.1:9").await.unwrap();
    /// assert!(p.enabled);
    /// # }
    /// ```
    pub async fn create_proxy(&self, name: &str, listen: &str, upstream: &str) -> NetResult<ProxyInfo> {
        match self {
            ProxyBackend::Embedded(reg) => reg
                .create(
                    ProxyConfig { name: name.into(), listen: listen.into(), upstream: upstream.into(), seed: 0 },
                    true,
                )
                .map(|p| p.info()),
            ProxyBackend::External(x) => x.create_proxy(name, listen, upstream).await,
        }
    }

    /// One proxy (404 if missing).
    ///
    /// ```
    /// # use chaos_harness::topology::ProxyBackend;
    /// # use chaos_proxy::ProxyRegistry;
    /// # #[tokio::main] async fn main() {
    /// let b = ProxyBackend::Embedded(ProxyRegistry::new(0));
    /// assert_eq!(b.proxy("x").await.unwrap_err().status(), 404);
    /// # }
    /// ```
    pub async fn proxy(&self, name: &str) -> NetResult<ProxyInfo> {
        match self {
            ProxyBackend::Embedded(reg) => reg.get(name).map(|p| p.info()),
            ProxyBackend::External(x) => x.proxy(name).await,
        }
    }

    /// All proxies, sorted by name.
    ///
    /// ```
    /// # use chaos_harness::topology::ProxyBackend;
    /// # use chaos_proxy::ProxyRegistry;
    /// # #[tokio::main] async fn main() {
    /// let b = ProxyBackend::Embedded(ProxyRegistry::new(0));
    /// assert!(b.proxies().await.unwrap().is_empty());
    /// # }
    /// ```
    pub async fn proxies(&self) -> NetResult<Vec<ProxyInfo>> {
        match self {
            ProxyBackend::Embedded(reg) => Ok(reg.infos()),
            ProxyBackend::External(x) => x.proxies().await,
        }
    }

    /// Delete a proxy (closes its connections).
    ///
    /// ```
    /// # use chaos_harness::topology::ProxyBackend;
    /// # use chaos_proxy::ProxyRegistry;
    /// # #[tokio::main] async fn main() {
    /// let b = ProxyBackend::Embedded(ProxyRegistry::new(0));
    /// assert_eq!(b.delete_proxy("x").await.unwrap_err().status(), 404);
    /// # }
    /// ```
    pub async fn delete_proxy(&self, name: &str) -> NetResult<()> {
        match self {
            ProxyBackend::Embedded(reg) => reg.remove(name).await,
            ProxyBackend::External(x) => x.delete_proxy(name).await,
        }
    }

    /// Enable (accept connections) or disable (refuse new ones, close open ones).
    ///
    /// ```
    /// # use chaos_harness::topology::ProxyBackend;
    /// # use chaos_proxy::ProxyRegistry;
    /// # #[tokio::main] async fn main() {
    /// let b = ProxyBackend::Embedded(ProxyRegistry::new(0));
    /// b.create_proxy("db", "127.0.0.1:0", "127.0.0.1:9").await.unwrap();
    /// b.set_enabled("db", false).await.unwrap();
    /// assert!(!b.proxy("db").await.unwrap().enabled);
    /// # }
    /// ```
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> NetResult<()> {
        match self {
            ProxyBackend::Embedded(reg) => reg.get(name)?.set_enabled(enabled).await,
            ProxyBackend::External(x) => x.set_enabled(name, enabled).await,
        }
    }

    /// Partial update of a proxy (Toxiproxy's `POST /proxies/{name}`).
    ///
    /// ```
    /// # use chaos_harness::topology::ProxyBackend;
    /// # use chaos_proxy::{ProxyRegistry, ProxyUpdate};
    /// # #[tokio::main] async fn main() {
    /// let b = ProxyBackend::Embedded(ProxyRegistry::new(0));
    /// b.create_proxy("db", "127.0.0.1:0", "127.0.0.1:9").await.unwrap();
    /// let u = ProxyUpdate { upstream: Some("127.0.0.1:10".into()), ..Default::default() };
    /// assert_eq!(b.update_proxy("db", u).await.unwrap().upstream, "127.0.0.1:10");
    /// # }
    /// ```
    pub async fn update_proxy(&self, name: &str, update: ProxyUpdate) -> NetResult<ProxyInfo> {
        match self {
            ProxyBackend::Embedded(reg) => reg.get(name)?.update(update).await,
            ProxyBackend::External(x) => x.update_proxy(name, update).await,
        }
    }

    /// Add a toxic to a proxy.
    ///
    /// ```
    /// # use chaos_harness::topology::ProxyBackend;
    /// # use chaos_proxy::{ProxyRegistry, Stream, Toxic, ToxicKind};
    /// # #[tokio::main] async fn main() {
    /// let b = ProxyBackend::Embedded(ProxyRegistry::new(0));
    /// let t = Toxic::new(ToxicKind::Timeout { timeout: 0 }, Stream::Upstream);
    /// assert_eq!(b.add_toxic("nope", t).await.unwrap_err().status(), 404);
    /// # }
    /// ```
    pub async fn add_toxic(&self, proxy: &str, toxic: Toxic) -> NetResult<Toxic> {
        match self {
            ProxyBackend::Embedded(reg) => reg.get(proxy)?.add_toxic(toxic),
            ProxyBackend::External(x) => x.add_toxic(proxy, toxic).await,
        }
    }

    /// Replace the attributes and toxicity of the toxic named `toxic.name`.
    ///
    /// ```
    /// # use chaos_harness::topology::ProxyBackend;
    /// # use chaos_proxy::{ProxyRegistry, Stream, Toxic, ToxicKind};
    /// # #[tokio::main] async fn main() {
    /// let b = ProxyBackend::Embedded(ProxyRegistry::new(0));
    /// b.create_proxy("db", "127.0.0.1:0", "127.0.0.1:9").await.unwrap();
    /// let t = b.add_toxic("db", Toxic::new(ToxicKind::Bandwidth { rate: 1 }, Stream::Upstream)).await.unwrap();
    /// let t = b.update_toxic("db", Toxic { kind: ToxicKind::Bandwidth { rate: 2 }, ..t }).await.unwrap();
    /// assert_eq!(t.kind, ToxicKind::Bandwidth { rate: 2 });
    /// # }
    /// ```
    pub async fn update_toxic(&self, proxy: &str, toxic: Toxic) -> NetResult<Toxic> {
        match self {
            ProxyBackend::Embedded(reg) => reg.get(proxy)?.update_toxic(toxic),
            ProxyBackend::External(x) => x.update_toxic(proxy, toxic).await,
        }
    }

    /// Remove one toxic.
    ///
    /// ```
    /// # use chaos_harness::topology::ProxyBackend;
    /// # use chaos_proxy::ProxyRegistry;
    /// # #[tokio::main] async fn main() {
    /// let b = ProxyBackend::Embedded(ProxyRegistry::new(0));
    /// b.create_proxy("db", "127.0.0.1:0", "127.0.0.1:9").await.unwrap();
    /// assert_eq!(b.remove_toxic("db", "x").await.unwrap_err().status(), 404);
    /// # }
    /// ```
    pub async fn remove_toxic(&self, proxy: &str, toxic: &str) -> NetResult<()> {
        match self {
            ProxyBackend::Embedded(reg) => reg.get(proxy)?.remove_toxic(toxic),
            ProxyBackend::External(x) => x.remove_toxic(proxy, toxic).await,
        }
    }

    /// The toxics of a proxy.
    ///
    /// ```
    /// # use chaos_harness::topology::ProxyBackend;
    /// # use chaos_proxy::ProxyRegistry;
    /// # #[tokio::main] async fn main() {
    /// let b = ProxyBackend::Embedded(ProxyRegistry::new(0));
    /// assert_eq!(b.toxics("x").await.unwrap_err().status(), 404);
    /// # }
    /// ```
    pub async fn toxics(&self, proxy: &str) -> NetResult<Vec<Toxic>> {
        match self {
            ProxyBackend::Embedded(reg) => Ok(reg.get(proxy)?.toxics()),
            ProxyBackend::External(x) => x.toxics(proxy).await,
        }
    }

    /// Counters of a toxic; `None` for an external Toxiproxy, which does not count.
    ///
    /// ```
    /// # use chaos_harness::topology::ProxyBackend;
    /// # use chaos_proxy::{ProxyRegistry, Stream, Toxic, ToxicKind};
    /// # #[tokio::main] async fn main() {
    /// let b = ProxyBackend::Embedded(ProxyRegistry::new(0));
    /// b.create_proxy("db", "127.0.0.1:0", "127.0.0.1:9").await.unwrap();
    /// b.add_toxic("db", Toxic::new(ToxicKind::Bandwidth { rate: 1 }, Stream::Upstream)).await.unwrap();
    /// assert_eq!(b.toxic_stats("db", "bandwidth_upstream").await.unwrap().unwrap().connections, 0);
    /// # }
    /// ```
    pub async fn toxic_stats(&self, proxy: &str, toxic: &str) -> NetResult<Option<ToxicStats>> {
        match self {
            ProxyBackend::Embedded(reg) => reg.get(proxy)?.toxic_stats(toxic).map(Some),
            ProxyBackend::External(x) => x
                .toxics(proxy)
                .await?
                .iter()
                .find(|t| t.name == toxic)
                .map(|_| None)
                .ok_or_else(|| NetError::ToxicNotFound { proxy: proxy.into(), toxic: toxic.into() }),
        }
    }

    /// Toxiproxy's reset: enable every proxy, remove every toxic.
    ///
    /// ```
    /// # use chaos_harness::topology::ProxyBackend;
    /// # use chaos_proxy::ProxyRegistry;
    /// # #[tokio::main] async fn main() {
    /// ProxyBackend::Embedded(ProxyRegistry::new(0)).reset().await.unwrap();
    /// # }
    /// ```
    pub async fn reset(&self) -> NetResult<()> {
        match self {
            ProxyBackend::Embedded(reg) => reg.reset().await,
            ProxyBackend::External(x) => x.reset().await,
        }
    }

    /// The server's version string.
    ///
    /// ```
    /// # use chaos_harness::topology::ProxyBackend;
    /// # use chaos_proxy::ProxyRegistry;
    /// # #[tokio::main] async fn main() {
    /// let v = ProxyBackend::Embedded(ProxyRegistry::new(0)).version().await.unwrap();
    /// assert!(v.starts_with("2."));
    /// # }
    /// ```
    pub async fn version(&self) -> NetResult<String> {
        match self {
            ProxyBackend::Embedded(_) => Ok(chaos_proxy::API_VERSION.to_string()),
            ProxyBackend::External(x) => x.version().await,
        }
    }
}

struct ExternalInner {
    url: String,
    client: toxiproxy_rust::client::Client,
    http: reqwest::blocking::Client,
}

/// A client of an external Toxiproxy server.
///
/// ```no_run
/// use chaos_harness::topology::ExternalToxiproxy;
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let x = ExternalToxiproxy::connect("http://127.0.0.1:8474").await?;
/// println!("{}", x.version().await?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ExternalToxiproxy {
    inner: Arc<ExternalInner>,
}

impl std::fmt::Debug for ExternalToxiproxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalToxiproxy").field("url", &self.inner.url).finish()
    }
}

/// `http://host:port[/]` or `host:port` to a socket address.
fn parse_url(url: &str) -> NetResult<SocketAddr> {
    let bad = |cause: String| NetError::Config {
        what: format!("{TOXIPROXY_URL}={url}"),
        cause,
        fix: "set it to the Toxiproxy API address, e.g. http://127.0.0.1:8474".into(),
    };
    let rest = url.strip_prefix("http://").unwrap_or(url);
    if rest.contains("://") {
        return Err(bad("only http:// is supported".into()));
    }
    let hostport = rest.trim_end_matches('/');
    if hostport.contains('/') {
        return Err(bad("a path after host:port is not supported".into()));
    }
    let hostport = if hostport.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        hostport.to_string()
    } else {
        format!("{hostport}:8474")
    };
    hostport
        .to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("the host resolves to no address".into()))
}

fn toxic_from_pack(p: &toxiproxy_rust::toxic::ToxicPack) -> NetResult<Toxic> {
    let mut kind = ToxicKind::from_type(&p.r#type)?;
    let attrs: serde_json::Map<String, Value> =
        p.attributes.iter().map(|(k, v)| (k.clone(), Value::from(*v))).collect();
    kind.merge_attributes(&Value::Object(attrs))?;
    Ok(Toxic { name: p.name.clone(), kind, stream: p.stream.parse::<Stream>()?, toxicity: p.toxicity })
}

fn info_from_pack(p: &toxiproxy_rust::proxy::ProxyPack) -> NetResult<ProxyInfo> {
    Ok(ProxyInfo {
        name: p.name.clone(),
        listen: p.listen.clone(),
        upstream: p.upstream.clone(),
        enabled: p.enabled,
        toxics: p.toxics.iter().map(toxic_from_pack).collect::<NetResult<_>>()?,
    })
}

impl ExternalToxiproxy {
    /// Connect to a Toxiproxy server (`http://host:port`; the port defaults to 8474) and check
    /// that it answers `GET /version`.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// let e = chaos_harness::topology::ExternalToxiproxy::connect("ftp://x").await.unwrap_err();
    /// assert!(e.to_string().contains("TOXIPROXY_URL"));
    /// # }
    /// ```
    pub async fn connect(url: &str) -> NetResult<ExternalToxiproxy> {
        let addr = parse_url(url)?;
        let url = format!("http://{addr}");
        let u = url.clone();
        let inner = tokio::task::spawn_blocking(move || {
            let http = reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .map_err(|e| NetError::External {
                    url: u.clone(),
                    op: "create HTTP client".into(),
                    cause: e.to_string(),
                })?;
            Ok::<_, NetError>(ExternalInner { url: u, client: toxiproxy_rust::client::Client::new(addr), http })
        })
        .await
        .map_err(|e| NetError::External {
            url: url.clone(),
            op: "create client".into(),
            cause: e.to_string(),
        })??;
        let x = ExternalToxiproxy { inner: Arc::new(inner) };
        x.version().await?;
        Ok(x)
    }

    /// The server's base URL.
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() {
    /// let x = chaos_harness::topology::ExternalToxiproxy::connect("127.0.0.1:8474").await.unwrap();
    /// assert_eq!(x.url(), "http://127.0.0.1:8474");
    /// # }
    /// ```
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Run a blocking client call on the blocking pool; a panic inside the client becomes an error.
    async fn call<T: Send + 'static>(
        &self,
        op: String,
        f: impl FnOnce(&ExternalInner, &str) -> NetResult<T> + Send + 'static,
    ) -> NetResult<T> {
        let inner = self.inner.clone();
        let o = op.clone();
        tokio::task::spawn_blocking(move || f(&inner, &o)).await.map_err(|e| NetError::External {
            url: self.inner.url.clone(),
            op,
            cause: format!("the client failed: {e}"),
        })?
    }

    fn ext(inner: &ExternalInner, op: &str, cause: impl std::fmt::Display) -> NetError {
        NetError::External { url: inner.url.clone(), op: op.to_string(), cause: cause.to_string() }
    }

    fn all(inner: &ExternalInner, op: &str) -> NetResult<Vec<ProxyInfo>> {
        let all = inner.client.all().map_err(|e| Self::ext(inner, op, e))?;
        let mut infos = all.values().map(|p| info_from_pack(&p.proxy_pack)).collect::<NetResult<Vec<_>>>()?;
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(infos)
    }

    fn find(inner: &ExternalInner, op: &str, name: &str) -> NetResult<toxiproxy_rust::proxy::Proxy> {
        let mut all = inner.client.all().map_err(|e| Self::ext(inner, op, e))?;
        all.remove(name).ok_or_else(|| NetError::ProxyNotFound { name: name.into() })
    }

    /// A raw API call for what `toxiproxy_rust` cannot express; maps Toxiproxy's error body.
    fn raw(
        inner: &ExternalInner,
        op: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
        names: (&str, &str),
    ) -> NetResult<Option<Value>> {
        let mut req = inner.http.request(method, format!("{}{path}", inner.url));
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b);
        }
        let resp = req.send().map_err(|e| Self::ext(inner, op, e))?;
        let status = resp.status().as_u16();
        let text = resp.text().map_err(|e| Self::ext(inner, op, e))?;
        let json: Option<Value> = serde_json::from_str(&text).ok();
        if (200..300).contains(&status) {
            return Ok(json);
        }
        let message =
            json.as_ref().and_then(|j| j.get("error")).and_then(Value::as_str).unwrap_or(text.trim()).to_string();
        let (proxy, toxic) = (names.0.to_string(), names.1.to_string());
        Err(match (status, message.as_str()) {
            (404, "proxy not found") => NetError::ProxyNotFound { name: proxy },
            (404, "toxic not found") => NetError::ToxicNotFound { proxy, toxic },
            (409, "proxy already exists") => NetError::ProxyExists { name: proxy },
            (409, "toxic already exists") => NetError::ToxicExists { proxy, toxic },
            _ => NetError::ExternalApi { url: inner.url.clone(), op: op.to_string(), status, message },
        })
    }

    async fn create_proxy(&self, name: &str, listen: &str, upstream: &str) -> NetResult<ProxyInfo> {
        let (n, l, u) = (name.to_string(), listen.to_string(), upstream.to_string());
        self.call(format!("create proxy {name}"), move |inner, op| {
            // populate replaces a proxy with other addresses; Toxiproxy's create answers 409.
            if Self::all(inner, op)?.iter().any(|p| p.name == n) {
                return Err(NetError::ProxyExists { name: n });
            }
            let pack = toxiproxy_rust::proxy::ProxyPack::new(n.clone(), l, u);
            let made = inner.client.populate(vec![pack]).map_err(|e| Self::ext(inner, op, e))?;
            let p = made
                .into_iter()
                .find(|p| p.proxy_pack.name == n)
                .ok_or_else(|| Self::ext(inner, op, "the server did not return the proxy it created"))?;
            info_from_pack(&p.proxy_pack)
        })
        .await
    }

    async fn proxy(&self, name: &str) -> NetResult<ProxyInfo> {
        let n = name.to_string();
        self.call(format!("get proxy {name}"), move |inner, op| info_from_pack(&Self::find(inner, op, &n)?.proxy_pack))
            .await
    }

    async fn proxies(&self) -> NetResult<Vec<ProxyInfo>> {
        self.call("list proxies".into(), Self::all).await
    }

    async fn delete_proxy(&self, name: &str) -> NetResult<()> {
        let n = name.to_string();
        self.call(format!("delete proxy {name}"), move |inner, op| {
            Self::find(inner, op, &n)?.delete().map_err(|e| Self::ext(inner, op, e))
        })
        .await
    }

    async fn set_enabled(&self, name: &str, enabled: bool) -> NetResult<()> {
        let n = name.to_string();
        let what = if enabled { "enable" } else { "disable" };
        self.call(format!("{what} proxy {name}"), move |inner, op| {
            let p = Self::find(inner, op, &n)?;
            let r = if enabled { p.enable() } else { p.disable() };
            r.map_err(|e| Self::ext(inner, op, e))?;
            // toxiproxy_rust ignores the HTTP status: read the state back.
            let now = info_from_pack(&Self::find(inner, op, &n)?.proxy_pack)?;
            if now.enabled != enabled {
                return Err(Self::ext(inner, op, format!("the proxy is still enabled={}", now.enabled)));
            }
            Ok(())
        })
        .await
    }

    async fn update_proxy(&self, name: &str, update: ProxyUpdate) -> NetResult<ProxyInfo> {
        let n = name.to_string();
        self.call(format!("update proxy {name}"), move |inner, op| {
            let mut body = serde_json::Map::new();
            if let Some(e) = update.enabled {
                body.insert("enabled".into(), Value::from(e));
            }
            if let Some(l) = update.listen {
                body.insert("listen".into(), Value::from(l));
            }
            if let Some(u) = update.upstream {
                body.insert("upstream".into(), Value::from(u));
            }
            let path = format!("/proxies/{n}");
            let v =
                Self::raw(inner, op, reqwest::Method::POST, &path, Some(Value::Object(body).to_string()), (&n, ""))?;
            let v = v.ok_or_else(|| Self::ext(inner, op, "the answer was not JSON"))?;
            let pack: toxiproxy_rust::proxy::ProxyPack =
                serde_json::from_value(v).map_err(|e| Self::ext(inner, op, e))?;
            info_from_pack(&pack)
        })
        .await
    }

    async fn add_toxic(&self, proxy: &str, toxic: Toxic) -> NetResult<Toxic> {
        toxic.validate()?;
        let p = proxy.to_string();
        self.call(format!("add toxic {} to {proxy}", toxic.name), move |inner, op| {
            let body = serde_json::to_string(&toxic).map_err(|e| Self::ext(inner, op, e))?;
            let path = format!("/proxies/{p}/toxics");
            let v = Self::raw(inner, op, reqwest::Method::POST, &path, Some(body), (&p, &toxic.name))?;
            let v = v.ok_or_else(|| Self::ext(inner, op, "the answer was not JSON"))?;
            let pack: toxiproxy_rust::toxic::ToxicPack =
                serde_json::from_value(v).map_err(|e| Self::ext(inner, op, e))?;
            toxic_from_pack(&pack)
        })
        .await
    }

    async fn update_toxic(&self, proxy: &str, toxic: Toxic) -> NetResult<Toxic> {
        toxic.validate()?;
        let p = proxy.to_string();
        self.call(format!("update toxic {} of {proxy}", toxic.name), move |inner, op| {
            let attrs: serde_json::Map<String, Value> =
                toxic.kind.attributes().into_iter().map(|(k, v)| (k.to_string(), Value::from(v))).collect();
            let body = serde_json::json!({ "attributes": attrs, "toxicity": toxic.toxicity }).to_string();
            let path = format!("/proxies/{p}/toxics/{}", toxic.name);
            let v = Self::raw(inner, op, reqwest::Method::POST, &path, Some(body), (&p, &toxic.name))?;
            let v = v.ok_or_else(|| Self::ext(inner, op, "the answer was not JSON"))?;
            let pack: toxiproxy_rust::toxic::ToxicPack =
                serde_json::from_value(v).map_err(|e| Self::ext(inner, op, e))?;
            toxic_from_pack(&pack)
        })
        .await
    }

    async fn remove_toxic(&self, proxy: &str, toxic: &str) -> NetResult<()> {
        let (p, t) = (proxy.to_string(), toxic.to_string());
        self.call(format!("remove toxic {toxic} of {proxy}"), move |inner, op| {
            let path = format!("/proxies/{p}/toxics/{t}");
            Self::raw(inner, op, reqwest::Method::DELETE, &path, None, (&p, &t)).map(|_| ())
        })
        .await
    }

    async fn toxics(&self, proxy: &str) -> NetResult<Vec<Toxic>> {
        let p = proxy.to_string();
        self.call(format!("list toxics of {proxy}"), move |inner, op| {
            let packs = Self::find(inner, op, &p)?.toxics().map_err(|e| Self::ext(inner, op, e))?;
            packs.iter().map(toxic_from_pack).collect()
        })
        .await
    }

    async fn reset(&self) -> NetResult<()> {
        self.call("reset".into(), |inner, op| inner.client.reset().map_err(|e| Self::ext(inner, op, e))).await
    }

    /// The server's version (`GET /version`), e.g. `2.12.0`.
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() {
    /// let x = chaos_harness::topology::ExternalToxiproxy::connect("127.0.0.1:8474").await.unwrap();
    /// println!("{}", x.version().await.unwrap());
    /// # }
    /// ```
    pub async fn version(&self) -> NetResult<String> {
        self.call("get version".into(), |inner, op| {
            let body = inner.client.version().map_err(|e| Self::ext(inner, op, e))?;
            // v2 answers {"version": "..."}; v1 answered the bare string.
            let v = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|j| j.get("version").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| body.trim().to_string());
            if v.is_empty() {
                return Err(Self::ext(inner, op, "empty answer"));
            }
            Ok(v)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        assert_eq!(parse_url("http://127.0.0.1:8474").unwrap().port(), 8474);
        assert_eq!(parse_url("127.0.0.1:9").unwrap().port(), 9);
        assert_eq!(parse_url("http://127.0.0.1/").unwrap().port(), 8474);
        assert!(parse_url("https://127.0.0.1:1").is_err());
        assert!(parse_url("http://127.0.0.1:1/api").is_err());
    }
}
