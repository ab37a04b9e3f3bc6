//! Network faults: toxics and link-down on a proxied [`Link`](crate::topology::Link)
//! ([`toxics`]), partitions and packet loss inside a [`Netns`](crate::topology::Netns)
//! ([`nft`]), partitions and loss between the members of a bridge ([`between`]) and latency
//! between them ([`delay`], a userspace delay line through TUN devices). The proxy itself is the `chaos-proxy` crate; where a fixture sits on the network
//! is [`crate::topology`].
//!
//! ```no_run
//! # async fn f(cx: &mut chaos_harness::Chaos) -> chaos_harness::ChaosResult {
//! use chaos_harness::prelude::*;
//! let db = cx.link("db", "127.0.0.1:5432").await?;
//! cx.scenario("slow db").inject(Fault::latency(&db, Duration::from_millis(100))).run().await?;
//! # Ok(()) }
//! ```

pub mod between;
pub mod delay;
pub mod nft;
pub mod toxics;

pub use between::BetweenMembers;
pub use chaos_proxy::{Stream, ToxicKind, ToxicStats};
pub use delay::LatencyBetween;
pub use nft::NftFault;
pub use toxics::{DEFAULT_CONFIRM_WITHIN, Latency, LinkDown, ToxicFault};
