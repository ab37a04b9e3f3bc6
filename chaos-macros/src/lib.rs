//! The `#[chaos_test]` attribute macro of [chaos-harness]. Use it through `chaos_harness`
//! (`chaos_harness::chaos_test`, or `chaos_harness::prelude::*`); see [`macro@chaos_test`].
//!
//! This crate only parses and generates code; the runtime side (`TestDescriptor`, the runner)
//! is in `chaos_harness::runner::registry`.
//!
//! - `args`: the attribute arguments (`tags`, `timeout`, `ignore`, `requires`, `name`);
//! - `signature`: which functions are supported, and attributes that conflict;
//! - `expand`: the generated code;
//! - `diag`: error collection and "did you mean" suggestions.
//!
//! [chaos-harness]: https://example.invalid/snakepit-chaos
#![warn(missing_docs)]

mod args;
mod diag;
mod expand;
#[allow(dead_code)] // OPT_IN_TAGS is the runner's; the file is shared.
mod names;
mod signature;

use proc_macro::TokenStream;

/// Registers a function as a chaos test, run by the chaos runner (`chaos_harness::main!()` in a
/// `harness = false` test target).
///
/// ```no_run
/// use chaos_harness::prelude::*;
///
/// /// Heals after a partition. Doc comments and other attributes are kept.
/// #[chaos_test(tags = ["smoke", "net"], timeout = "1m 30s", requires = ["root", "netns"])]
/// async fn partition_heals(cx: &mut Chaos) -> ChaosResult {
///     let _seed = cx.seed();
///     Ok(())
/// }
///
/// #[chaos_test(ignore = "needs the Elixir reference node", name = "reference boots")]
/// fn reference_boots() -> Result<(), std::io::Error> {
///     Ok(())
/// }
///
/// #[chaos_test]
/// async fn no_context_needed() {}
///
/// chaos_harness::main!();
/// ```
///
/// The function is kept as written, so it can still be called directly.
///
/// # Supported signatures
///
/// - `async fn name(cx: &mut Chaos) -> R`
/// - `async fn name() -> R`
/// - `fn name(cx: &mut Chaos) -> R`
/// - `fn name() -> R`
///
/// where `R` is `()` (or omitted) or any `Result<(), E>` whose `E` converts into
/// `anyhow::Error`, such as `ChaosResult`. The context may be spelled with any path ending in
/// `Chaos` (`&mut chaos_harness::Chaos`), and bound to any pattern (`cx`, `_cx`, `_`). An
/// `async` test's future must be `Send`.
///
/// Generic, `const`, `unsafe`, `extern` and variadic functions, methods (`self`), and functions
/// with other arguments are rejected at compile time, as are `#[test]`, `#[tokio::test]`,
/// `#[ignore]` and `#[should_panic]` on the same function: the chaos runner registers the
/// test, gives it a tokio runtime, and has its own `ignore`.
///
/// # Arguments
///
/// All optional, comma-separated, each at most once:
///
/// | Argument | Meaning |
/// |---|---|
/// | `tags = ["smoke", "net"]` | Tags for selection (`CHAOS_TAGS`, `--tag`): non-empty, made of `a-z`, `0-9`, `_`, `-`, distinct. |
/// | `timeout = "90s"` | Per-test timeout, a [humantime] duration (`"500ms"`, `"1m 30s"`, `"2h"`), at least 1ms. Default: the harness's. |
/// | `ignore` | Skip the test unless ignored tests are requested. |
/// | `ignore = "reason"` | The same, with a reason shown by the runner. |
/// | `requires = ["root"]` | Capabilities checked before the body runs: `root`, `cgroups`, `freezer`, `netns`, `nft`, `elixir`, `python3`, `tmpfs`. |
/// | `name = "custom name"` | Use this name verbatim instead of `module::path::function`. |
///
/// Mistakes (unknown or duplicate keys, values of the wrong type, invalid durations, tags or
/// capabilities) are compile errors pointing at the offending token, all reported at once.
///
/// # Expansion
///
/// ```ignore
/// async fn smoke(cx: &mut Chaos) -> ChaosResult { .. } // unchanged
///
/// const _: () = {
///     fn __chaos_test_smoke(cx: &mut ::chaos_harness::Chaos)
///         -> ::chaos_harness::__private::BoxTestFuture<'_> {
///         ::std::boxed::Box::pin(async move {
///             ::chaos_harness::__private::IntoTestResult::into_test_result(smoke(cx).await)
///         })
///     }
///     ::chaos_harness::__private::inventory::submit! {
///         ::chaos_harness::__private::TestDescriptor {
///             name: "smoke", custom_name: false,
///             module_path: module_path!(), file: file!(), line: line!(), column: column!(),
///             tags: &["smoke"], timeout_ms: Some(90000), ignore: Ignore::No, requires: &[],
///             body: TestBody::Async(__chaos_test_smoke),
///         }
///     }
/// };
/// ```
///
/// A synchronous test gets a `fn(&mut Chaos) -> ChaosResult` adapter and `TestBody::Sync`.
/// `#[cfg(..)]` attributes of the function are repeated on the `const _` block.
///
/// [humantime]: https://docs.rs/humantime
#[proc_macro_attribute]
pub fn chaos_test(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::chaos_test(attr.into(), item.into()).into()
}
