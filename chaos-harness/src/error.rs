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
    /// The sandbox was already torn down (the test timed out or ended) when a new side effect
    /// was attempted.
    #[error(
        "sandbox of run {run_id} is closed: refused to {what}; the test body outlived its teardown (timeout?) - end the test body's work before returning"
    )]
    SandboxClosed {
        /// The run id.
        run_id: String,
        /// The refused side effect.
        what: String,
    },
    /// A pid was refused as a target because the sandbox could not prove it owns it.
    #[error("refused to signal pid {pid}: {reason}; {fix}")]
    NotOwned {
        /// The pid.
        pid: i32,
        /// Why ownership was not proven.
        reason: String,
        /// What to do.
        fix: String,
    },
    /// A fixture's program could not be started.
    #[error("fixture {fixture}: could not start {program}: {cause}; {fix}")]
    Spawn {
        /// The fixture.
        fixture: String,
        /// The program.
        program: String,
        /// The cause.
        cause: String,
        /// What to do.
        fix: String,
    },
    /// A fixture did not become ready: its probe timed out or the program died first.
    #[error(
        "fixture {fixture} not ready after {waited:?}: {probe}; {status}; see its logs below (fix the program or its probe, or raise ready_timeout)\n{logs}"
    )]
    NotReady {
        /// The fixture.
        fixture: String,
        /// The probe that did not pass, and why (timed out / the program exited first).
        probe: String,
        /// How long the harness waited.
        waited: std::time::Duration,
        /// The program's exit status, or that it is still running.
        status: String,
        /// The last 20 lines of its stdout and stderr logs.
        logs: String,
    },
    /// A fixture misbehaved against its contract (bad ready file, pool never ready, ...).
    #[error("fixture {fixture}: {cause}; {fix}")]
    Fixture {
        /// The fixture.
        fixture: String,
        /// What went wrong.
        cause: String,
        /// What to do.
        fix: String,
    },
    /// A fixture could not be stopped completely.
    #[error(
        "fixture {fixture}: stop left {problems:?}; teardown will retry; if it persists, kill them by hand and check for processes in uninterruptible sleep (state D)"
    )]
    Stop {
        /// The fixture.
        fixture: String,
        /// What was left.
        problems: Vec<String>,
    },
    /// A fault could not be put into effect, or its effect could not be confirmed.
    #[error("fault not injected: {fault}: {cause}; {fix}")]
    NotInjected {
        /// The fault.
        fault: String,
        /// Why.
        cause: String,
        /// What to do.
        fix: String,
    },
    /// A safety guard refused the run (production guard) before anything was touched.
    #[error("refused to {what}: {cause}; {fix}")]
    Refused {
        /// What was refused.
        what: String,
        /// Why.
        cause: String,
        /// How to proceed if this is really intended.
        fix: String,
    },
    /// Dry run (`CHAOS_DRY_RUN=1`): the side effect was planned and printed, not performed.
    #[error(
        "dry run: not performing {effect} (CHAOS_DRY_RUN=1 prints side effects instead of performing them; the test stops at the first one whose result it needs - unset CHAOS_DRY_RUN to run it for real)"
    )]
    DryRun {
        /// The side effect that was planned.
        effect: String,
    },
    /// Teardown could not undo everything.
    #[error(
        "teardown of run {run_id} incomplete: {problems:?}; the journal {journal} keeps the rest - replay it with chaos_harness::sandbox::journal::replay or remove the listed items by hand"
    )]
    Teardown {
        /// The run id.
        run_id: String,
        /// What could not be undone or was found left behind.
        problems: Vec<String>,
        /// The journal that still lists the pending effects.
        journal: PathBuf,
    },
}

/// The nearest of `valid` to `given` (edit distance), as a hint: ``did you mean `kill`?``, or
/// the list of valid names when none is near.
///
/// ```
/// use chaos_harness::error::did_you_mean;
/// assert_eq!(did_you_mean("kil", &["kill", "pause"]), "did you mean `kill`?");
/// assert_eq!(did_you_mean("zzzzzz", &["kill", "pause"]), "valid names: kill, pause");
/// ```
pub fn did_you_mean(given: &str, valid: &[&str]) -> String {
    nearest(given, valid)
        .map_or_else(|| format!("valid names: {}", valid.join(", ")), |near| format!("did you mean `{near}`?"))
}

/// The nearest of `valid` to `given` within an edit distance of a third of its length (at
/// least 2), if any.
///
/// ```
/// assert_eq!(chaos_harness::error::nearest("latncy", &["latency", "loss"]), Some("latency"));
/// ```
pub fn nearest<'a>(given: &str, valid: &[&'a str]) -> Option<&'a str> {
    let limit = (given.chars().count() / 3).max(2);
    valid
        .iter()
        .map(|v| (edit_distance(given, v), *v))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
