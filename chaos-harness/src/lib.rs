//! # chaos-harness
//!
//! Chaos experiments as ordinary Rust tests. A `#[chaos_test]` function (or a test added
//! through [`Harness`]) receives a [`Chaos`] context; the runner (built on libtest-mimic) gives
//! it libtest behaviour under `cargo test` and `cargo nextest run`, selection by tag, a
//! per-test timeout with teardown, capability checks and JUnit XML.
//!
//! ```no_run
//! use chaos_harness::prelude::*;
//!
//! #[chaos_test(tags = ["smoke"], timeout = "30s")]
//! async fn hello(cx: &mut Chaos) -> ChaosResult {
//!     tracing::info!(seed = cx.seed(), "hello from a chaos test");
//!     Ok(())
//! }
//!
//! chaos_harness::main!();
//! ```
#![warn(missing_docs)]

// The rooms, lowest first: a room imports only rooms above it in this list (checked by
// `tests/layering.rs`; see DESIGN.md).
pub mod chaos;
pub mod criteria;
pub mod fault;
pub mod fixture;
pub mod host;
pub mod load;
pub mod observe;
pub mod registry;
pub mod report;
pub mod runner;
pub mod safety;
pub mod sandbox;
pub mod scenario;
#[cfg(feature = "net")]
pub mod topology;

pub mod error;
pub mod params;

pub use chaos::Chaos;
pub use chaos_macros::chaos_test;
pub use error::Error;
/// Re-exported for plugins: register faults, criteria, fixtures and plugin effects with
/// `chaos_harness::inventory::submit!`.
pub use inventory;
pub use runner::{Harness, TestBuilder};

/// A boxed, sendable future: what the object-safe traits of the crate ([`fixture::Fixture`],
/// [`fault::Inject`], [`criteria::Judge`]) return.
///
/// ```
/// fn ready() -> chaos_harness::BoxFuture<'static, u8> { Box::pin(async { 1 }) }
/// ```
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// What a chaos test returns: `Ok(())` or any error (shown with its chain on failure).
pub type ChaosResult<T = ()> = Result<T, anyhow::Error>;

/// The usual imports for writing chaos tests.
pub mod prelude {
    pub use crate::criteria::Criterion;
    pub use crate::fault::{Fault, Signal};
    pub use crate::fixture::{Command, FixtureHandle, Probe};
    pub use crate::{Chaos, ChaosResult, Harness, chaos_test};
    pub use std::time::Duration;
    pub use tracing;
}

/// Items the `#[chaos_test]` macro expands to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::runner::registry::{BoxTestFuture, Ignore, IntoTestResult, TestBody, TestDescriptor};
    pub use inventory;
}

/// Defines `fn main()` for a `harness = false` test target: runs every `#[chaos_test]` in the
/// binary and returns libtest's exit code.
///
/// ```no_run
/// chaos_harness::main!();
/// ```
#[macro_export]
macro_rules! main {
    () => {
        fn main() -> ::std::process::ExitCode {
            $crate::Harness::new().run()
        }
    };
}
