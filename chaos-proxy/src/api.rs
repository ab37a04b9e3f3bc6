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
//! Errors are Toxiproxy's `{"error": "<message>", "status": <code>}`. Like Toxiproxy, requests
//! whose User-Agent starts with `Mozilla/` are refused (403): a web page must not be able to
//! reconfigure the proxies.

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
        let app = router(registry);
        let shutdown = token.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::warn!(error = %e, "Toxiproxy API server stopped");
            }
        });
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
        .with_state(registry)
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
