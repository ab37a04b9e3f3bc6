//! The library's error type.
//!
//! Every variant names the thing, the cause and the fix, so a failing test tells the user
//! what to do next.

use std::path::PathBuf;

/// Errors raised by the harness itself (as opposed to failures of the system under test).
///
/// ```
/// let e = chaos_harness::Error::Io { what: "create temp dir".into(), path: "/tmp/x".into(),
///     source: std::io::Error::other("boom"), fix: "check permissions".into() };
/// assert!(e.to_string().contains("/tmp/x"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on a path failed.
    #[error("{what} failed at {path}: {source}; {fix}")]
    Io {
        /// What the harness tried to do.
        what: String,
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
        /// What the user can do about it.
        fix: String,
    },
    /// The harness was configured wrongly (bad argument, bad environment variable).
    #[error("invalid configuration: {what}: {cause}; {fix}")]
    Config {
        /// The setting.
        what: String,
        /// Why it is wrong.
        cause: String,
        /// How to fix it.
        fix: String,
    },
}
