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

/// The `anyhow` crate [`ChaosResult`] is built on, re-exported so a test crate needs no
/// dependency of its own for `anyhow::Context`, `bail!` or `ensure!`.
pub use anyhow;

/// The usual imports for writing chaos tests.
pub mod prelude {
    pub use crate::criteria::Criterion;
    pub use crate::fault::{Fault, Signal};
    pub use crate::fixture::{Command, FixtureHandle, Probe};
    pub use crate::fixture::{Selection, Stdin};
    pub use crate::{Chaos, ChaosResult, Harness, OrFail, chaos_test};
    pub use anyhow::{Context as _, bail, ensure};
    pub use std::time::Duration;
    pub use tracing;
}

/// Items the `#[chaos_test]` macro expands to. Not a public API.
/// `?` for results whose error is a plain `String` (or `&str`), which `anyhow` cannot convert
/// by itself (E0277): `.or_fail()?` turns the message into an error.
///
/// ```
/// use chaos_harness::prelude::*;
/// fn parse(s: &str) -> Result<u16, String> { s.parse().map_err(|e| format!("bad port {s:?}: {e}")) }
/// fn body() -> ChaosResult {
///     let port = parse("80").or_fail()?;
///     ensure!(port == 80);
///     assert!(parse("x").or_fail().unwrap_err().to_string().starts_with("bad port"));
///     Ok(())
/// }
/// body().unwrap();
/// ```
pub trait OrFail<T> {
    /// Converts the string error into an [`anyhow::Error`].
    fn or_fail(self) -> ChaosResult<T>;
}

impl<T> OrFail<T> for Result<T, String> {
    fn or_fail(self) -> ChaosResult<T> {
        self.map_err(anyhow::Error::msg)
    }
}

impl<T> OrFail<T> for Result<T, &str> {
    fn or_fail(self) -> ChaosResult<T> {
        self.map_err(|e| anyhow::Error::msg(e.to_string()))
    }
}

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

/// A `Vec<OsString>` from arguments of mixed types (`&str`, `String`, `PathBuf`, `&Path`), for
/// [`Command::args`](crate::fixture::Command::args).
///
/// ```
/// let dir = std::path::PathBuf::from("/tmp");
/// let v = chaos_harness::args!["--dir", dir, format!("--n={}", 3)];
/// assert_eq!(v, ["--dir", "/tmp", "--n=3"].map(std::ffi::OsString::from));
/// ```
#[macro_export]
macro_rules! args {
    ($($a:expr),* $(,)?) => {
        ::std::vec![$(::std::ffi::OsString::from(::std::convert::AsRef::<::std::ffi::OsStr>::as_ref(&$a))),*]
    };
}

/// The guide (`docs/guide.md`): every Rust block in it is compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../docs/guide.md")]
pub struct Guide;
