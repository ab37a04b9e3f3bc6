//! Errors of the network-fault core.
//!
//! Every variant names the thing, the cause and the fix. Variants that correspond to a
//! Toxiproxy API error also know the HTTP status and the exact message Toxiproxy uses
//! ([`NetError::status`], [`NetError::api_message`]), so the embedded API server answers
//! with Toxiproxy's shapes and the external backend maps Toxiproxy's answers back.

use std::io;

/// An error of the proxy, its toxics, its HTTP API or the external Toxiproxy backend.
///
/// ```
/// use chaos_proxy::NetError;
/// let e = NetError::ProxyNotFound { name: "db".into() };
/// assert_eq!(e.status(), 404);
/// assert_eq!(e.api_message(), "proxy not found");
/// assert!(e.to_string().contains("`db`"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// No proxy has this name.
    #[error("proxy `{name}` not found; create it first (POST /proxies) or check the name")]
    ProxyNotFound {
        /// The proxy name asked for.
        name: String,
    },
    /// A proxy with this name already exists.
    #[error("proxy `{name}` already exists; pick another name or delete the old proxy first")]
    ProxyExists {
        /// The duplicate name.
        name: String,
    },
    /// The proxy has no toxic with this name.
    #[error("toxic `{toxic}` not found on proxy `{proxy}`; list the proxy's toxics to see their names")]
    ToxicNotFound {
        /// The proxy.
        proxy: String,
        /// The toxic name asked for.
        toxic: String,
    },
    /// The proxy already has a toxic with this name.
    #[error("toxic `{toxic}` already exists on proxy `{proxy}`; give the new toxic another name or remove the old one")]
    ToxicExists {
        /// The proxy.
        proxy: String,
        /// The duplicate toxic name.
        toxic: String,
    },
    /// A toxic `type` this proxy does not know.
    #[error(
        "invalid toxic type `{kind}`; use one of latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data"
    )]
    InvalidToxicType {
        /// The type given.
        kind: String,
    },
    /// A toxic `stream` other than `upstream`/`downstream`.
    #[error(
        "invalid toxic stream `{stream}`; use \"upstream\" (client to server) or \"downstream\" (server to client)"
    )]
    InvalidStream {
        /// The stream given.
        stream: String,
    },
    /// A required field is missing from a request.
    #[error("missing required field `{field}`; add it to the request")]
    MissingField {
        /// The field.
        field: String,
    },
    /// A request body or toxic parameters are malformed or out of range.
    #[error("bad request body: {cause}; {fix}")]
    BadRequest {
        /// What is wrong.
        cause: String,
        /// What to send instead.
        fix: String,
    },
    /// A listen or upstream address cannot be parsed or resolved.
    #[error("invalid {what} address `{addr}`: {cause}; use host:port, e.g. 127.0.0.1:0")]
    InvalidAddress {
        /// `listen` or `upstream`.
        what: &'static str,
        /// The address given.
        addr: String,
        /// Why it is invalid.
        cause: String,
    },
    /// The proxy (or API server) could not bind its listening socket.
    #[error("{what} could not listen on {addr}: {source}; pick a free port (or port 0) on 127.0.0.1")]
    Bind {
        /// What tried to listen (`proxy \`db\``, `Toxiproxy API server`).
        what: String,
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An operation needs a Tokio runtime and none is running.
    #[error("{what} needs a running Tokio runtime: {cause}; call it from inside #[tokio::test] or a Runtime::block_on")]
    NoRuntime {
        /// What was called.
        what: String,
        /// The underlying cause.
        cause: String,
    },
    /// The proxy was shut down (its handle dropped or `shutdown` called).
    #[error("proxy `{name}` is shut down; start a new proxy")]
    ShutDown {
        /// The proxy.
        name: String,
    },
    /// The external Toxiproxy server could not be reached or answered something unexpected.
    #[error(
        "external Toxiproxy at {url}: {op} failed: {cause}; check that the server runs and TOXIPROXY_URL points at it"
    )]
    External {
        /// The server's URL.
        url: String,
        /// The operation (`create proxy db`).
        op: String,
        /// What went wrong.
        cause: String,
    },
    /// The external Toxiproxy answered with an API error that has no more specific variant.
    #[error(
        "external Toxiproxy at {url}: {op} answered {status}: {message}; fix the request (see Toxiproxy's README for the API)"
    )]
    ExternalApi {
        /// The server's URL.
        url: String,
        /// The operation.
        op: String,
        /// The HTTP status.
        status: u16,
        /// Toxiproxy's error message.
        message: String,
    },
    /// A configuration value (environment variable, option) is invalid.
    #[error("invalid configuration {what}: {cause}; {fix}")]
    Config {
        /// The setting.
        what: String,
        /// Why it is wrong.
        cause: String,
        /// How to fix it.
        fix: String,
    },
}

impl NetError {
    /// The HTTP status Toxiproxy answers with for this error (500 where it has no mapping).
    ///
    /// ```
    /// use chaos_proxy::NetError;
    /// assert_eq!(NetError::ToxicExists { proxy: "p".into(), toxic: "t".into() }.status(), 409);
    /// ```
    pub fn status(&self) -> u16 {
        match self {
            NetError::ProxyNotFound { .. } | NetError::ToxicNotFound { .. } => 404,
            NetError::ProxyExists { .. } | NetError::ToxicExists { .. } => 409,
            NetError::InvalidToxicType { .. }
            | NetError::InvalidStream { .. }
            | NetError::MissingField { .. }
            | NetError::BadRequest { .. }
            | NetError::InvalidAddress { .. } => 400,
            NetError::ExternalApi { status, .. } => *status,
            _ => 500,
        }
    }

    /// The message Toxiproxy puts in the `error` field of its JSON error body.
    ///
    /// ```
    /// use chaos_proxy::NetError;
    /// let e = NetError::MissingField { field: "upstream".into() };
    /// assert_eq!(e.api_message(), "missing required field: upstream");
    /// ```
    pub fn api_message(&self) -> String {
        match self {
            NetError::ProxyNotFound { .. } => "proxy not found".into(),
            NetError::ProxyExists { .. } => "proxy already exists".into(),
            NetError::ToxicNotFound { .. } => "toxic not found".into(),
            NetError::ToxicExists { .. } => "toxic already exists".into(),
            NetError::InvalidToxicType { .. } => "invalid toxic type".into(),
            NetError::InvalidStream { .. } => "stream was invalid, can be either upstream or downstream".into(),
            NetError::MissingField { field } => format!("missing required field: {field}"),
            NetError::BadRequest { cause, .. } => format!("bad request body: {cause}"),
            NetError::InvalidAddress { what, addr, cause } => {
                format!("bad request body: invalid {what} address {addr:?}: {cause}")
            }
            NetError::ExternalApi { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    pub(crate) fn bad_request(cause: impl Into<String>, fix: impl Into<String>) -> Self {
        NetError::BadRequest { cause: cause.into(), fix: fix.into() }
    }
}

/// Result alias of the network-fault core.
///
/// ```
/// fn f() -> chaos_proxy::NetResult<u8> { Ok(1) }
/// assert_eq!(f().ok(), Some(1));
/// ```
pub type NetResult<T> = Result<T, NetError>;
