//! # chaos-proxy
//!
//! A Toxiproxy-compatible TCP proxy on Tokio, with Toxiproxy's toxics and its v2 HTTP API, so
//! Toxiproxy clients can drive it. `chaos-harness` embeds it for its network faults; it uses
//! nothing of the harness and works alone.
//!
//! * [`Proxy`]: an in-process TCP proxy with toxics ([`Toxic`], [`ToxicKind`]): latency,
//!   bandwidth, slow_close, timeout, reset_peer, slicer, limit_data. Toxics apply to live
//!   connections; each counts what it touched ([`ToxicStats`]).
//! * [`ProxyRegistry`] and [`ApiServer`]: a named set of proxies served over Toxiproxy's HTTP
//!   API (v2 JSON).
//!
//! ```
//! use chaos_proxy::{Proxy, ProxyConfig, Stream, Toxic, ToxicKind};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // An echo server to put behind the proxy.
//! let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let upstream = server.local_addr()?.to_string();
//! tokio::spawn(async move {
//!     let (mut s, _) = server.accept().await.unwrap();
//!     let mut buf = [0u8; 64];
//!     while let Ok(n) = s.read(&mut buf).await {
//!         if n == 0 || s.write_all(&buf[..n]).await.is_err() { break }
//!     }
//! });
//! let proxy = Proxy::start(ProxyConfig::new("echo", upstream).seed(42)).await?;
//! proxy.add_toxic(Toxic::new(ToxicKind::Latency { latency: 50, jitter: 0 }, Stream::Downstream))?;
//! let mut c = tokio::net::TcpStream::connect(proxy.listen_addr()).await?;
//! let t0 = std::time::Instant::now();
//! c.write_all(b"ping").await?;
//! let mut buf = [0u8; 4];
//! c.read_exact(&mut buf).await?;
//! assert!(t0.elapsed() >= std::time::Duration::from_millis(50));
//! assert_eq!(proxy.toxic_stats("latency_downstream")?.bytes, 4);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod api;
mod counters;
mod error;
mod proxy;
mod pump;
mod registry;
mod splice;
mod toxic;

pub use api::{API_VERSION, ApiServer};
pub use counters::{ProxyCounters, ProxyStats, ToxicCounters, ToxicStats};
pub use error::{NetError, NetResult};
pub use proxy::{Proxy, ProxyConfig, ProxyInfo, ProxyUpdate};
pub use registry::{PopulateEntry, ProxyRegistry};
pub use toxic::{Stream, TOXIC_TYPES, Toxic, ToxicKind};
