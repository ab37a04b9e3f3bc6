//! Where a fixture lives on the network: proxied [`Link`]s (through the `chaos-proxy` crate, or
//! an external Toxiproxy), and network namespaces ([`Netns`]) joined to the host by a veth
//! pair. Network faults ([`crate::fault::net`]) act on these; fixtures ([`crate::fixture`])
//! are started inside or behind them.
//!
//! ```no_run
//! # async fn f(cx: &mut chaos_harness::Chaos) -> chaos_harness::ChaosResult {
//! use chaos_harness::topology::{Link, Netns};
//! let link = cx.link("api", "127.0.0.1:8080").await?;
//! let ns = Netns::create(cx.sandbox(), "srv").await?;
//! println!("{} -> 127.0.0.1:8080; namespace at {}", link.listen_addr(), ns.addr());
//! # Ok(()) }
//! ```

pub mod backend;
pub mod bridge;
pub mod link;
pub mod netns;

pub use backend::{ExternalToxiproxy, ProxyBackend, TOXIPROXY_URL};
pub use bridge::{Bridge, Member};
pub use link::{Link, LinkBackend, LinkBuilder};
pub use netns::Netns;
