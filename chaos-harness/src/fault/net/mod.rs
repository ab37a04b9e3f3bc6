//! Network faults: the embedded Toxiproxy-compatible proxy, its HTTP API, partitions.
//!
//! * [`Proxy`] — an in-process TCP proxy on Tokio with Toxiproxy's toxics ([`Toxic`],
//!   [`ToxicKind`]): latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data.
//!   Toxics apply to live connections; each counts what it touched ([`ToxicStats`]).
//! * [`ProxyRegistry`] and [`ApiServer`] — a named set of proxies served over Toxiproxy's
//!   HTTP API (v2 JSON), so Toxiproxy clients can drive them.
//! * [`ProxyBackend`] — the same operations against the embedded proxies or, with
//!   `TOXIPROXY_URL` set, an external Toxiproxy ([`ExternalToxiproxy`]).
//! * [`Link`] and the network [`Fault`](crate::fault::Fault)s on it — a proxy owned by a test
//!   (`Link::start(cx.sandbox(), name, upstream)`), with `Fault::latency(&link, d)`,
//!   `bandwidth`, `timeout`, `reset_peer`, `slicer`, `limit_data`, `slow_close` and
//!   `link_down`, each confirmed by the proxy's counters or a refused connect
//!   ([`fault`] module docs).
//! * [`Netns`] — a fixture in its own network namespace joined by a veth pair, with
//!   `Fault::partition(&ns)` and `Fault::packet_loss(&ns, percent)` as nft rules inside it,
//!   journaled and restored exactly ([`netns`] module docs).
//! * [`Criterion::tcp_connect`](crate::criteria::Criterion::tcp_connect) — judge
//!   reachability from the outside.
//!
//! ```
//! use chaos_harness::fault::net::{Proxy, ProxyConfig, Stream, Toxic, ToxicKind};
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

pub mod api;
mod backend;
mod counters;
mod error;
pub mod fault;
mod link;
pub mod netns;
mod proxy;
mod reach;
mod registry;
mod splice;
mod toxic;

pub use api::{API_VERSION, ApiServer};
pub use backend::{ExternalToxiproxy, ProxyBackend, TOXIPROXY_URL};
pub use counters::{ProxyCounters, ProxyStats, ToxicCounters, ToxicStats};
pub use error::{NetError, NetResult};
pub use fault::{DEFAULT_CONFIRM_WITHIN, Latency, Link, LinkBackend, LinkBuilder, LinkDown, ToxicFault};
pub use netns::{Netns, NftFault};
pub use proxy::{Proxy, ProxyConfig, ProxyInfo, ProxyUpdate};
pub use reach::TcpConnect;
pub use registry::{PopulateEntry, ProxyRegistry};
pub use toxic::{Stream, TOXIC_TYPES, Toxic, ToxicKind};
