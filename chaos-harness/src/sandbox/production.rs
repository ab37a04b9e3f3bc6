//! The production guard: chaos is refused on a machine that says it is production.
//!
//! A machine is production when `CHAOS_ENV` looks like production, or when the marker file
//! exists. Production-like `CHAOS_ENV` values (trimmed, case-insensitive; see
//! [`is_production_like`]):
//!
//! | pattern | examples |
//! |---|---|
//! | `prod*` | `prod`, `production`, `Production-EU`, `prod-us-east`, `PRODUCTION_2` |
//! | `prd*` | `prd`, `prd-eu` |
//! | `live`, `live-*`, `live_*` | `live`, `live-eu` |
//!
//! Anything else (`staging`, `dev`, `test`, `preprod`) is not. The marker file is `/etc/chaos-harness/production` by default, another path with
//! `CHAOS_PRODUCTION_MARKER=/path` (empty: no marker check). Then every sandbox creation (the
//! first side effect of any test) and the runner refuse with [`Error::Refused`], unless
//! `CHAOS_ALLOW_PRODUCTION=1` says it is intended; an allowed run carries a note saying so.
//! Dry runs are allowed (they change nothing).
//!
//! ```
//! use chaos_harness::sandbox::production::check_with;
//! let env = |k: &str| (k == "CHAOS_ENV").then(|| "production".to_string());
//! let err = check_with(env, |_| false).unwrap_err();
//! assert!(err.to_string().contains("CHAOS_ALLOW_PRODUCTION=1"));
//! assert_eq!(check_with(|_| None, |_| false).unwrap(), None);
//! ```

use std::path::{Path, PathBuf};

use crate::Error;

/// The environment variable naming the environment (production-like values refuse).
pub const ENV_VAR: &str = "CHAOS_ENV";
/// The explicit permission to run in production.
pub const ALLOW_ENV: &str = "CHAOS_ALLOW_PRODUCTION";
/// Overrides the marker file's path (empty: no marker check).
pub const MARKER_ENV: &str = "CHAOS_PRODUCTION_MARKER";
/// The default marker file.
pub const DEFAULT_MARKER: &str = "/etc/chaos-harness/production";

/// Checks the real environment and file system. `Ok(None)`: not production. `Ok(Some(note))`:
/// production, explicitly allowed (the note says so). `Err`: refused.
pub fn check() -> Result<Option<String>, Error> {
    check_with(|k| std::env::var(k).ok(), |p| p.exists())
}

/// Whether a `CHAOS_ENV` value names a production environment (see the module docs).
///
/// ```
/// use chaos_harness::sandbox::production::is_production_like;
/// for v in ["prod", "PRODUCTION", "production-eu", " Prod ", "prd", "prd-eu", "live", "live-eu"] {
///     assert!(is_production_like(v), "{v}");
/// }
/// for v in ["staging", "dev", "preprod", "", "delivery", "lively"] {
///     assert!(!is_production_like(v), "{v}");
/// }
/// ```
pub fn is_production_like(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    v.starts_with("prod")
        || v.starts_with("prd")
        || v == "live"
        || v.strip_prefix("live").is_some_and(|rest| rest.starts_with(['-', '_']))
}

/// [`check`] with the environment lookup and the file test passed in (for tests).
pub fn check_with(
    env: impl Fn(&str) -> Option<String>,
    exists: impl Fn(&Path) -> bool,
) -> Result<Option<String>, Error> {
    let marker = match env(MARKER_ENV) {
        Some(p) if p.trim().is_empty() => None,
        Some(p) => Some(PathBuf::from(p)),
        None => Some(PathBuf::from(DEFAULT_MARKER)),
    };
    let by_env = env(ENV_VAR).filter(|v| is_production_like(v));
    let reason = match (by_env, marker.filter(|m| exists(m))) {
        (Some(v), _) => format!("{ENV_VAR}={v}"),
        (None, Some(m)) => format!("the production marker file {} exists", m.display()),
        (None, None) => return Ok(None),
    };
    let allowed = env(ALLOW_ENV).is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes"));
    if allowed {
        return Ok(Some(format!("production guard: {reason}, allowed by {ALLOW_ENV}=1")));
    }
    Err(Error::Refused {
        what: "run chaos experiments".into(),
        cause: format!("this machine is marked as production ({reason})"),
        fix: format!(
            "run against a test machine; if chaos in production is really intended, set {ALLOW_ENV}=1 (a dry run, CHAOS_DRY_RUN=1, is always allowed)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(kk, _)| *kk == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn marker_file_default_and_override() {
        let default = |p: &Path| p == Path::new(DEFAULT_MARKER);
        assert!(check_with(env(&[]), default).is_err());
        assert_eq!(check_with(env(&[(MARKER_ENV, "")]), default).unwrap(), None);
        let e = check_with(env(&[(MARKER_ENV, "/x/prod")]), |p| p == Path::new("/x/prod")).unwrap_err();
        assert!(e.to_string().contains("/x/prod"), "{e}");
    }

    #[test]
    fn allow_turns_refusal_into_a_note() {
        let note = check_with(env(&[(ENV_VAR, "Prod"), (ALLOW_ENV, "1")]), |_| false).unwrap().unwrap();
        assert!(note.contains("allowed by CHAOS_ALLOW_PRODUCTION=1"), "{note}");
        assert!(check_with(env(&[(ENV_VAR, "staging")]), |_| false).unwrap().is_none());
        assert!(check_with(env(&[(ENV_VAR, "production"), (ALLOW_ENV, "0")]), |_| false).is_err());
    }
}
