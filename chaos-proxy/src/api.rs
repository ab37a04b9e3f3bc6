//! Toxiproxy's HTTP API (v2 JSON shapes), served by the embedded proxies of a
//! [`ProxyRegistry`], so any Toxiproxy client (the Go client, `toxiproxy-cli`,
//! `toxiproxy_rust`) can drive them.
//!
//! | route | answer |
//! |---|---|
//! | `GET /proxies` | 200, object name → proxy |
//! | `POST /proxies` | 201 proxy; 400 bad body / missing name or upstream; 409 duplicate |
//! | `POST /populate` | 201 `{"proxies": [...]}`; errors also carry `error`/`status` |
//! | `GET /proxies/{p}` | 200 proxy; 404 |
//! | `POST`/`PATCH /proxies/{p}` | 200 proxy (fields `enabled`, `listen`, `upstream`) |
//! | `DELETE /proxies/{p}` | 204 |
//! | `GET /proxies/{p}/toxics` | 200 array of toxics |
//! | `POST /proxies/{p}/toxics` | 200 toxic; 400 bad body/type/stream/params; 409 duplicate |
//! | `GET /proxies/{p}/toxics/{t}` | 200 toxic; 404 |
//! | `POST`/`PATCH /proxies/{p}/toxics/{t}` | 200 toxic (`attributes`, `toxicity`) |
//! | `DELETE /proxies/{p}/toxics/{t}` | 204 |
//! | `POST /reset` | 204: every proxy enabled, every toxic removed |
//! | `GET /version` | 200 `{"version": "..."}` |
//!
//! Every error, including 404 (no such route), 405 (method not allowed), 413 (body over
//! [`ApiLimits::max_body`]) and 403, is Toxiproxy's JSON `{"error": "<message>", "status":
//! <code>}`. Like Toxiproxy, requests whose User-Agent starts with `Mozilla/` are refused (403):
//! a web page must not be able to reconfigure the proxies.
//!
//! # Limits ([`ApiLimits`])
//!
//! The server protects itself so the control API keeps answering whatever clients do:
//! a request's headers must arrive within `header_read_timeout` (a slowloris client is cut);
//! a connection with no request in flight and no bytes received for `idle_timeout` is closed;
//! at most `max_connections` connections are kept open: when a new one arrives at the cap
//! (or `accept` fails for lack of descriptors), the connection idle the longest is closed to
//! make room, so a flood of idle connections never locks out a new client.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::error::{NetError, NetResult};
use super::proxy::{ProxyConfig, ProxyInfo, ProxyUpdate};
use super::registry::{PopulateEntry, ProxyRegistry};
use super::toxic::{Toxic, as_object, opt_bool, opt_str, parse_body};

/// The Toxiproxy version this API claims to be, with our build metadata.
pub const API_VERSION: &str = concat!("2.12.0+chaos-harness.", env!("CARGO_PKG_VERSION"));

/// Limits of the API server (see the module docs).
///
/// ```
/// let l = chaos_proxy::api::ApiLimits::default();
/// assert_eq!(l.max_body, 1 << 20);
/// assert!(l.max_connections >= 64);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiLimits {
    /// Largest request body accepted (413 above).
    pub max_body: usize,
    /// Time allowed to receive a request's headers.
    pub header_read_timeout: Duration,
    /// A connection without a request in flight is closed after this long without a byte.
    pub idle_timeout: Duration,
    /// Connections kept open at most; the longest-idle one is closed to admit a new one.
    pub max_connections: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            max_body: 1 << 20,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 512,
        }
    }
}

/// A running Toxiproxy-compatible HTTP API server. Dropping it stops the server.
///
/// ```
/// use chaos_proxy::{ApiServer, ProxyRegistry};
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = ProxyRegistry::new(42);
/// let api = ApiServer::start("127.0.0.1:0", registry.clone()).await?;
/// println!("TOXIPROXY_URL={}", api.url());
/// api.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ApiServer {
    addr: SocketAddr,
    token: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl ApiServer {
    /// Listen on `listen` (e.g. `127.0.0.1:0`) and serve the API for `registry`.
    ///
    /// ```
    /// # use chaos_proxy::{ApiServer, ProxyRegistry};
    /// # #[tokio::main] async fn main() {
    /// let api = ApiServer::start("127.0.0.1:0", ProxyRegistry::new(0)).await.unwrap();
    /// assert!(api.local_addr().ip().is_loopback());
    /// # }
    /// ```
    pub async fn start(listen: &str, registry: ProxyRegistry) -> NetResult<ApiServer> {
        Self::start_with(listen, registry, ApiLimits::default()).await
    }

    /// [`ApiServer::start`] with explicit [`ApiLimits`].
    ///
    /// ```
    /// # use chaos_proxy::{ApiServer, ProxyRegistry, api::ApiLimits};
    /// # #[tokio::main] async fn main() {
    /// let limits = ApiLimits { max_connections: 64, ..Default::default() };
    /// let api = ApiServer::start_with("127.0.0.1:0", ProxyRegistry::new(0), limits).await.unwrap();
    /// api.shutdown().await;
    /// # }
    /// ```
    pub async fn start_with(listen: &str, registry: ProxyRegistry, limits: ApiLimits) -> NetResult<ApiServer> {
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|source| NetError::Bind {
            what: "Toxiproxy API server".into(),
            addr: listen.to_string(),
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| NetError::Bind {
            what: "Toxiproxy API server".into(),
            addr: listen.to_string(),
            source,
        })?;
        let token = CancellationToken::new();
        let app = router_with(registry, limits.max_body);
        let task = tokio::spawn(serve::accept_loop(listener, app, limits, token.clone()));
        Ok(ApiServer { addr, token, task: Some(task) })
    }

    /// The bound address.
    ///
    /// ```
    /// # use chaos_proxy::{ApiServer, ProxyRegistry};
    /// # #[tokio::main] async fn main() {
    /// let api = ApiServer::start("127.0.0.1:0", ProxyRegistry::new(0)).await.unwrap();
    /// assert_ne!(api.local_addr().port(), 0);
    /// # }
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://host:port`, the value for `TOXIPROXY_URL`.
    ///
    /// ```
    /// # use chaos_proxy::{ApiServer, ProxyRegistry};
    /// # #[tokio::main] async fn main() {
    /// let api = ApiServer::start("127.0.0.1:0", ProxyRegistry::new(0)).await.unwrap();
    /// assert!(api.url().starts_with("http://127.0.0.1:"));
    /// # }
    /// ```
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop serving and wait (at most 2 s for open client connections, then they are cut).
    ///
    /// ```
    /// # use chaos_proxy::{ApiServer, ProxyRegistry};
    /// # #[tokio::main] async fn main() {
    /// let api = ApiServer::start("127.0.0.1:0", ProxyRegistry::new(0)).await.unwrap();
    /// let addr = api.local_addr();
    /// api.shutdown().await;
    /// assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    /// # }
    /// ```
    pub async fn shutdown(mut self) {
        self.token.cancel();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(2), &mut task).await.is_err()
        {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.token.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The API's routes as an axum [`Router`], for embedding in another server.
///
/// ```
/// let app: axum::Router = chaos_proxy::api::router(
///     chaos_proxy::ProxyRegistry::new(0));
/// # let _ = app;
/// ```
pub fn router(registry: ProxyRegistry) -> Router {
    router_with(registry, ApiLimits::default().max_body)
}

fn router_with(registry: ProxyRegistry, max_body: usize) -> Router {
    Router::new()
        .route("/reset", post(reset))
        .route("/proxies", get(proxy_index).post(proxy_create))
        .route("/populate", post(populate))
        .route("/proxies/{proxy}", get(proxy_show).post(proxy_update).patch(proxy_update).delete(proxy_delete))
        .route("/proxies/{proxy}/toxics", get(toxic_index).post(toxic_create))
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(toxic_show).post(toxic_update).patch(toxic_update).delete(toxic_delete),
        )
        .route("/version", get(version))
        .layer(middleware::from_fn(stop_browsers))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(toxiproxy_errors))
        .with_state(registry)
}

/// Turns every error answer that is not already Toxiproxy JSON (axum's 404 and 405 with empty
/// bodies, its plain-text 413, the browser 403) into `{"error": .., "status": ..}`.
async fn toxiproxy_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status.as_u16() < 400 || is_json {
        return resp;
    }
    let (_, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let message = match status {
        StatusCode::NOT_FOUND => {
            "404 page not found: no such route; see the Toxiproxy API (GET /proxies, /version)".into()
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            "405 method not allowed on this route; see the Toxiproxy API for the methods of each route".into()
        }
        StatusCode::PAYLOAD_TOO_LARGE => format!("request body too large ({text}); send a smaller JSON body"),
        _ if text.is_empty() => status.canonical_reason().unwrap_or("error").to_string(),
        _ => text,
    };
    json_response(status, &json!({ "error": message, "status": status.as_u16() }))
}

async fn stop_browsers(req: Request, next: Next) -> Response {
    let ua = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if ua.starts_with("Mozilla/") {
        return (StatusCode::FORBIDDEN, "User agent not allowed\n").into_response();
    }
    next.run(req).await
}

fn json_response(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
        Err(e) => error_response(&NetError::bad_request(e.to_string(), "report this bug")),
    }
}

fn error_body(e: &NetError) -> Value {
    json!({ "error": e.api_message(), "status": e.status() })
}

fn error_response(e: &NetError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &error_body(e))
}

fn respond<T: Serialize>(status: StatusCode, r: NetResult<T>) -> Response {
    match r {
        Ok(v) => json_response(status, &v),
        Err(e) => error_response(&e),
    }
}

fn no_content(r: NetResult<()>) -> Response {
    match r {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(&e),
    }
}

async fn proxy_index(State(reg): State<ProxyRegistry>) -> Response {
    let map: serde_json::Map<String, Value> =
        reg.infos().into_iter().map(|i| (i.name.clone(), serde_json::to_value(&i).unwrap_or(Value::Null))).collect();
    json_response(StatusCode::OK, &map)
}

/// Parse `{name, listen, upstream, enabled}` (Toxiproxy's proxy body).
fn parse_proxy_fields(obj: &serde_json::Map<String, Value>) -> NetResult<(String, String, String, Option<bool>)> {
    let name = opt_str(obj, "name")?.unwrap_or("").to_string();
    let listen = opt_str(obj, "listen")?.unwrap_or("").to_string();
    let upstream = opt_str(obj, "upstream")?.unwrap_or("").to_string();
    let enabled = opt_bool(obj, "enabled")?;
    Ok((name, listen, upstream, enabled))
}

async fn proxy_create(State(reg): State<ProxyRegistry>, body: Bytes) -> Response {
    let r = (|| {
        let v = parse_body(&body)?;
        let obj = as_object(&v, "{\"name\": \"db\", \"upstream\": \"127.0.0.1:5432\"}")?;
        let (name, listen, upstream, enabled) = parse_proxy_fields(obj)?;
        if name.is_empty() {
            return Err(NetError::MissingField { field: "name".into() });
        }
        if upstream.is_empty() {
            return Err(NetError::MissingField { field: "upstream".into() });
        }
        let config = ProxyConfig { name, listen, upstream, seed: 0 };
        reg.create(config, enabled.unwrap_or(true)).map(|p| p.info())
    })();
    respond(StatusCode::CREATED, r)
}

async fn populate(State(reg): State<ProxyRegistry>, body: Bytes) -> Response {
    let parsed = (|| {
        let v = parse_body(&body)?;
        let arr = v.as_array().ok_or_else(|| {
            NetError::bad_request(
                "expected a JSON array of proxies",
                "send [{\"name\": \"db\", \"listen\": \"127.0.0.1:0\", \"upstream\": \"127.0.0.1:5432\"}]",
            )
        })?;
        arr.iter()
            .map(|item| {
                let obj = as_object(item, "{\"name\": \"db\", \"upstream\": \"127.0.0.1:5432\"}")?;
                let (name, listen, upstream, enabled) = parse_proxy_fields(obj)?;
                Ok(PopulateEntry {
                    config: ProxyConfig { name, listen, upstream, seed: 0 },
                    enabled: enabled.unwrap_or(true),
                })
            })
            .collect::<NetResult<Vec<_>>>()
    })();
    let result = match parsed {
        Ok(entries) => reg.populate(entries).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(proxies) => {
            let infos: Vec<ProxyInfo> = proxies.iter().map(|p| p.info()).collect();
            json_response(StatusCode::CREATED, &json!({ "proxies": infos }))
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut body = error_body(&e);
            body["proxies"] = json!([]);
            json_response(status, &body)
        }
    }
}

async fn proxy_show(State(reg): State<ProxyRegistry>, Path(name): Path<String>) -> Response {
    respond(StatusCode::OK, reg.get(&name).map(|p| p.info()))
}

async fn proxy_update(State(reg): State<ProxyRegistry>, Path(name): Path<String>, body: Bytes) -> Response {
    let proxy = match reg.get(&name) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let update = (|| {
        let v = parse_body(&body)?;
        let obj = as_object(&v, "{\"enabled\": false}")?;
        Ok::<_, NetError>(ProxyUpdate {
            enabled: opt_bool(obj, "enabled")?,
            listen: opt_str(obj, "listen")?.map(str::to_string),
            upstream: opt_str(obj, "upstream")?.map(str::to_string),
        })
    })();
    match update {
        Ok(u) => respond(StatusCode::OK, proxy.update(u).await),
        Err(e) => error_response(&e),
    }
}

async fn proxy_delete(State(reg): State<ProxyRegistry>, Path(name): Path<String>) -> Response {
    no_content(reg.remove(&name).await)
}

async fn toxic_index(State(reg): State<ProxyRegistry>, Path(name): Path<String>) -> Response {
    respond(StatusCode::OK, reg.get(&name).map(|p| p.toxics()))
}

async fn toxic_create(State(reg): State<ProxyRegistry>, Path(name): Path<String>, body: Bytes) -> Response {
    let r = reg.get(&name).and_then(|p| Toxic::from_json(&body).and_then(|t| p.add_toxic(t)));
    respond(StatusCode::OK, r)
}

async fn toxic_show(State(reg): State<ProxyRegistry>, Path((name, toxic)): Path<(String, String)>) -> Response {
    respond(StatusCode::OK, reg.get(&name).and_then(|p| p.toxic(&toxic)))
}

async fn toxic_update(
    State(reg): State<ProxyRegistry>,
    Path((name, toxic)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    respond(StatusCode::OK, reg.get(&name).and_then(|p| p.update_toxic_json(&toxic, &body)))
}

async fn toxic_delete(State(reg): State<ProxyRegistry>, Path((name, toxic)): Path<(String, String)>) -> Response {
    no_content(reg.get(&name).and_then(|p| p.remove_toxic(&toxic)))
}

async fn reset(State(reg): State<ProxyRegistry>) -> Response {
    no_content(reg.reset().await)
}

async fn version() -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json;charset=utf-8")
        .body(Body::from(format!("{{\"version\": \"{API_VERSION}\"}}\n")))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

mod serve {
    //! The accept loop with the limits of [`ApiLimits`].

    use std::collections::HashMap;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};
    use std::time::{Duration, Instant};

    use axum::Router;
    use hyper::body::Incoming;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio::net::TcpStream;
    use tokio_util::sync::CancellationToken;

    use super::ApiLimits;

    struct Conn {
        last_ms: Arc<AtomicU64>,
        busy: Arc<AtomicUsize>,
        cancel: CancellationToken,
    }

    type Conns = Arc<Mutex<HashMap<u64, Conn>>>;

    /// Closes the connection idle the longest (none in flight); `false` if every one is busy.
    fn evict_one(conns: &Conns) -> bool {
        let mut m = conns.lock().unwrap_or_else(|e| e.into_inner());
        let victim = m
            .iter()
            .filter(|(_, c)| c.busy.load(Ordering::SeqCst) == 0)
            .min_by_key(|(_, c)| c.last_ms.load(Ordering::Relaxed))
            .map(|(id, _)| *id);
        match victim.and_then(|id| m.remove(&id)) {
            Some(c) => {
                c.cancel.cancel();
                true
            }
            None => false,
        }
    }

    pub(super) async fn accept_loop(
        listener: tokio::net::TcpListener,
        app: Router,
        limits: ApiLimits,
        token: CancellationToken,
    ) {
        let epoch = Instant::now();
        let conns: Conns = Arc::new(Mutex::new(HashMap::new()));
        let mut next_id = 0u64;
        loop {
            let accepted = tokio::select! {
                _ = token.cancelled() => break,
                r = listener.accept() => r,
            };
            let stream = match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of descriptors (EMFILE/ENFILE) or a transient error: make room by
                    // closing the longest-idle connection, and try again shortly.
                    tracing::debug!(error = %e, "Toxiproxy API: accept failed");
                    evict_one(&conns);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let over = conns.lock().unwrap_or_else(|e| e.into_inner()).len() >= limits.max_connections;
            if over && !evict_one(&conns) {
                // Every connection has a request in flight: refuse this one rather than grow.
                drop(stream);
                continue;
            }
            next_id += 1;
            let id = next_id;
            let now_ms = epoch.elapsed().as_millis() as u64;
            let conn = Conn {
                last_ms: Arc::new(AtomicU64::new(now_ms)),
                busy: Arc::new(AtomicUsize::new(0)),
                cancel: token.child_token(),
            };
            let (last_ms, busy, cancel) = (conn.last_ms.clone(), conn.busy.clone(), conn.cancel.clone());
            conns.lock().unwrap_or_else(|e| e.into_inner()).insert(id, conn);
            let conns = conns.clone();
            let app = app.clone();
            tokio::spawn(async move {
                serve_one(stream, app, limits, epoch, last_ms, busy, cancel).await;
                conns.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            });
        }
        let all: Vec<Conn> = conns.lock().unwrap_or_else(|e| e.into_inner()).drain().map(|(_, c)| c).collect();
        for c in all {
            c.cancel.cancel();
        }
    }

    async fn serve_one(
        stream: TcpStream,
        app: Router,
        limits: ApiLimits,
        epoch: Instant,
        last_ms: Arc<AtomicU64>,
        busy: Arc<AtomicUsize>,
        cancel: CancellationToken,
    ) {
        let io = ActivityIo { inner: stream, epoch, last_ms: last_ms.clone() };
        let in_flight = busy.clone();
        let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            in_flight.fetch_add(1, Ordering::SeqCst);
            let mut app = app.clone();
            let in_flight = in_flight.clone();
            async move {
                let r = tower_service::Service::call(&mut app, req).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                r
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(io), svc);
        tokio::pin!(conn);
        let tick = (limits.idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(tick) => {
                    let idle_ms = (epoch.elapsed().as_millis() as u64).saturating_sub(last_ms.load(Ordering::Relaxed));
                    if busy.load(Ordering::SeqCst) == 0 && Duration::from_millis(idle_ms) >= limits.idle_timeout {
                        return;
                    }
                }
            }
        }
    }

    /// A TCP stream that records when it last received bytes.
    struct ActivityIo {
        inner: TcpStream,
        epoch: Instant,
        last_ms: Arc<AtomicU64>,
    }

    impl AsyncRead for ActivityIo {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let before = buf.filled().len();
            let r = Pin::new(&mut self.inner).poll_read(cx, buf);
            if buf.filled().len() > before {
                self.last_ms.store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
            }
            r
        }
    }

    impl AsyncWrite for ActivityIo {
        fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
            Pin::new(&mut self.inner).poll_write(cx, buf)
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }
        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }
}
