//! The test registry: what `#[chaos_test]` and [`Harness::test`](crate::Harness::test) record.
//!
//! The macro expands to an [`inventory::submit!`] of a [`TestDescriptor`]; the runner collects
//! them all at start, together with the tests registered through the fluent [`Harness`] API.
//!
//! [`Harness`]: crate::Harness

use std::future::Future;
use std::pin::Pin;

use crate::{Chaos, ChaosResult};

/// A boxed test future borrowing the per-test context.
pub type BoxTestFuture<'a> = Pin<Box<dyn Future<Output = ChaosResult> + Send + 'a>>;

/// How a registered test body is called.
///
/// ```
/// use chaos_harness::__private::{BoxTestFuture, TestBody};
/// use chaos_harness::Chaos;
/// fn body(_cx: &mut Chaos) -> BoxTestFuture<'_> { Box::pin(async { Ok(()) }) }
/// let _ = TestBody::Async(body);
/// ```
#[derive(Clone, Copy)]
pub enum TestBody {
    /// An `async fn`, run on the test's own tokio runtime.
    Async(for<'a> fn(&'a mut Chaos) -> BoxTestFuture<'a>),
    /// A plain `fn`, run on the test's thread inside the runtime context (so it may call
    /// `Handle::current().block_on(..)` through `Chaos::block_on`).
    Sync(fn(&mut Chaos) -> ChaosResult),
}

/// Whether and why a test is ignored by its author (`#[chaos_test(ignore)]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ignore {
    /// Not ignored.
    No,
    /// Ignored without a reason.
    Yes,
    /// Ignored with the given reason.
    Reason(&'static str),
}

/// One test registered by `#[chaos_test]`. Built by the macro; not meant to be written by hand.
///
/// ```
/// use chaos_harness::__private::{Ignore, TestBody, TestDescriptor};
/// fn body(_cx: &mut chaos_harness::Chaos) -> chaos_harness::ChaosResult { Ok(()) }
/// let d = TestDescriptor {
///     name: "smoke", custom_name: false, module_path: "suite::process",
///     file: file!(), line: line!(), column: column!(),
///     tags: &["process"], timeout_ms: Some(90_000), ignore: Ignore::No,
///     requires: &[], serial: false, retries: 0, body: TestBody::Sync(body),
/// };
/// assert_eq!(d.full_name(), "process::smoke");
/// ```
pub struct TestDescriptor {
    /// The function name, or the `name = ".."` given to the macro.
    pub name: &'static str,
    /// `true` when `name` came from `name = ".."` and is used verbatim.
    pub custom_name: bool,
    /// `module_path!()` at the test function.
    pub module_path: &'static str,
    /// `file!()` at the test function.
    pub file: &'static str,
    /// `line!()` at the test function.
    pub line: u32,
    /// `column!()` at the test function.
    pub column: u32,
    /// Tags for selection (`CHAOS_TAGS`, `--tag`).
    pub tags: &'static [&'static str],
    /// Per-test timeout in milliseconds; `None` uses the harness default.
    pub timeout_ms: Option<u64>,
    /// Author's ignore flag.
    pub ignore: Ignore,
    /// Capabilities the test needs (`"root"`, `"cgroups"`, ...), checked before the body runs.
    pub requires: &'static [&'static str],
    /// `serial`: runs while no other test of the binary runs.
    pub serial: bool,
    /// `retries = N`: reruns after a failure; a later pass is reported flaky.
    pub retries: u32,
    /// The body.
    pub body: TestBody,
}

impl TestDescriptor {
    /// The name the runner shows and filters on: the module path without the crate name,
    /// then the function name (libtest's convention), or the custom name verbatim.
    pub fn full_name(&self) -> String {
        if self.custom_name {
            return self.name.to_string();
        }
        match self.module_path.split_once("::") {
            Some((_crate, rest)) => format!("{rest}::{}", self.name),
            None => self.name.to_string(),
        }
    }
}

inventory::collect!(TestDescriptor);

/// Converts what a test function returns into a [`ChaosResult`]: `()` or any
/// `Result<(), E>` whose error converts into [`anyhow::Error`].
pub trait IntoTestResult {
    /// Performs the conversion.
    fn into_test_result(self) -> ChaosResult;
}

impl IntoTestResult for () {
    fn into_test_result(self) -> ChaosResult {
        Ok(())
    }
}

impl<E: Into<anyhow::Error>> IntoTestResult for Result<(), E> {
    fn into_test_result(self) -> ChaosResult {
        self.map_err(Into::into)
    }
}
