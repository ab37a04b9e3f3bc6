//! Command-line and environment configuration of a chaos test binary.
//!
//! The binary accepts libtest's arguments (parsed by libtest-mimic) plus its own:
//! `--tag T`, `--skip-tag T`, `--junit PATH`. Environment: `CHAOS_TAGS`, `CHAOS_JUNIT`,
//! `CHAOS_SEED`, `CHAOS_TIMEOUT`, `CHAOS_REQUIRE_ALL`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::tags::TagFilter;
use crate::Error;

/// The default per-test timeout when neither the test nor `CHAOS_TIMEOUT` sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The harness's own settings, next to libtest's.
#[derive(Debug)]
pub struct HarnessArgs {
    /// libtest's arguments.
    pub libtest: libtest_mimic::Arguments,
    /// Tag selection from `CHAOS_TAGS`, `--tag` and `--skip-tag`.
    pub tags: TagFilter,
    /// Where to write JUnit XML (`--junit` or `CHAOS_JUNIT`).
    pub junit: Option<PathBuf>,
    /// A fixed seed for every test (`CHAOS_SEED`).
    pub seed: Option<u64>,
    /// Default timeout (`CHAOS_TIMEOUT`, else [`DEFAULT_TIMEOUT`]).
    pub default_timeout: Duration,
    /// `CHAOS_REQUIRE_ALL=1`: a missing capability fails the test instead of ignoring it.
    pub require_all: bool,
    /// Running under cargo-nextest (`NEXTEST=1`): one process per test.
    pub under_nextest: bool,
    /// Default retries for every test (`CHAOS_RETRIES`); a test's own `retries = N` wins.
    pub retries: u32,
}

/// Where the harness looks for its settings: the process arguments and an environment lookup.
/// Separated so tests can parse without touching the real environment.
///
/// ```
/// use chaos_harness::runner::args::parse;
/// let env = |k: &str| (k == "CHAOS_TAGS").then(|| "net,!soak".to_string());
/// let args = parse(["bin", "--tag", "process", "--exact", "a::b"].map(Into::into), env).unwrap();
/// assert!(args.libtest.exact);
/// assert!(args.tags.selects(&["process"]));
/// ```
pub fn parse(
    argv: impl IntoIterator<Item = OsString>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<HarnessArgs, Error> {
    match try_parse(argv, env)? {
        Parsed::Args(a) => Ok(*a),
        Parsed::Help(e) => e.exit(),
    }
}

/// What [`try_parse`] found: the arguments, or a request for help/version text (which
/// [`parse`] prints and exits on, as libtest does).
#[derive(Debug)]
pub enum Parsed {
    /// The settings.
    Args(Box<HarnessArgs>),
    /// `--help`, `-h` (also inside combined short flags such as `-qhh`), or a version request:
    /// clap's text, to print with `.exit()` or `.to_string()`.
    Help(clap::Error),
}

/// [`parse`] without ever exiting the process: help and version requests are returned as
/// [`Parsed::Help`] (for the fuzz target and embedders).
///
/// ```
/// use chaos_harness::runner::args::{try_parse, Parsed};
/// let argv = ["bin", "-qhh"].map(std::ffi::OsString::from);
/// assert!(matches!(try_parse(argv, |_| None).unwrap(), Parsed::Help(_)));
/// ```
pub fn try_parse(
    argv: impl IntoIterator<Item = OsString>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Parsed, Error> {
    let mut rest: Vec<OsString> = Vec::new();
    let mut tags = TagFilter::default();
    let mut junit = None;
    let mut it = argv.into_iter();
    if let Some(program) = it.next() {
        rest.push(program);
    }
    while let Some(arg) = it.next() {
        let text = arg.to_string_lossy().into_owned();
        let (flag, inline) = match text.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (text.clone(), None),
        };
        match flag.as_str() {
            "--tag" | "--skip-tag" | "--junit" => {
                let value = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .map(|v| v.to_string_lossy().into_owned())
                        .ok_or_else(|| config(&flag, "it needs a value", &format!("write `{flag} VALUE`")))?,
                };
                let bad_tag = |e: super::tags::TagError| config(&flag, &e.to_string(), "fix the tag");
                match flag.as_str() {
                    "--tag" => tags.include(&value).map_err(bad_tag)?,
                    "--skip-tag" => tags.exclude(&value).map_err(bad_tag)?,
                    _ => junit = Some(PathBuf::from(value)),
                }
            }
            _ => rest.push(arg),
        }
    }
    if let Some(expr) = env("CHAOS_TAGS") {
        tags.extend(&expr).map_err(|e| config("CHAOS_TAGS", &e.to_string(), "fix the variable"))?;
    }
    if junit.is_none() {
        junit = env("CHAOS_JUNIT").filter(|s| !s.is_empty()).map(PathBuf::from);
    }
    let seed = match env("CHAOS_SEED").filter(|s| !s.trim().is_empty()) {
        Some(s) => Some(parse_seed(&s).ok_or_else(|| {
            config(
                "CHAOS_SEED",
                &format!("`{s}` is not a number"),
                "use the seed a failure printed, e.g. CHAOS_SEED=12345",
            )
        })?),
        None => None,
    };
    let default_timeout = match env("CHAOS_TIMEOUT").filter(|s| !s.trim().is_empty()) {
        Some(s) => humantime::parse_duration(s.trim())
            .map_err(|e| config("CHAOS_TIMEOUT", &format!("`{s}`: {e}"), "write a duration like 90s, 5m or 1m 30s"))?,
        None => DEFAULT_TIMEOUT,
    };
    let retries = match env("CHAOS_RETRIES").filter(|s| !s.trim().is_empty()) {
        Some(s) => s.trim().parse::<u32>().ok().filter(|n| *n <= 10).ok_or_else(|| {
            config("CHAOS_RETRIES", &format!("`{s}` is not a number from 0 to 10"), "write e.g. CHAOS_RETRIES=2")
        })?,
        None => 0,
    };
    let truthy = |k: &str| env(k).is_some_and(|v| !matches!(v.trim(), "" | "0" | "false" | "no"));
    let libtest = match libtest_mimic::Arguments::try_parse_from_iter(rest)? {
        Ok(a) => a,
        Err(help) => return Ok(Parsed::Help(help)),
    };
    Ok(Parsed::Args(Box::new(HarnessArgs {
        libtest,
        tags,
        junit,
        seed,
        default_timeout,
        require_all: truthy("CHAOS_REQUIRE_ALL"),
        under_nextest: truthy("NEXTEST"),
        retries,
    })))
}

/// Parses a seed written in decimal or `0x` hex.
pub fn parse_seed(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn config(what: &str, cause: &str, fix: &str) -> Error {
    Error::Config { what: what.into(), cause: cause.into(), fix: fix.into() }
}

/// libtest-mimic's argument parser, fallible: never exits the process; a help or version
/// request comes back as `Ok(Err(clap_error))`.
trait TryParse: Sized {
    fn try_parse_from_iter(args: Vec<OsString>) -> Result<Result<Self, clap::Error>, Error>;
}

impl TryParse for libtest_mimic::Arguments {
    fn try_parse_from_iter(args: Vec<OsString>) -> Result<Result<Self, clap::Error>, Error> {
        use clap::Parser;
        match <libtest_mimic::Arguments as Parser>::try_parse_from(args) {
            Ok(a) => Ok(Ok(a)),
            Err(e)
                if matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion) =>
            {
                Ok(Err(e))
            }
            Err(e) => Err(config(
                "command line",
                e.to_string().trim(),
                "see --help; the harness also takes --tag T, --skip-tag T and --junit PATH",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<OsString> {
        std::iter::once("bin").chain(a.iter().copied()).map(Into::into).collect()
    }

    #[test]
    fn own_flags_are_removed_before_libtest() {
        let a = parse(argv(&["--tag=net", "--skip-tag", "slow", "--junit", "out.xml", "--list", "filter"]), |_| None)
            .unwrap();
        assert!(a.libtest.list);
        assert_eq!(a.libtest.filter.as_deref(), Some("filter"));
        assert_eq!(a.junit, Some(PathBuf::from("out.xml")));
        assert!(a.tags.selects(&["net"]) && !a.tags.selects(&["net", "slow"]));
    }

    #[test]
    fn env_settings() {
        let env = |k: &str| match k {
            "CHAOS_SEED" => Some("0x10".to_string()),
            "CHAOS_TIMEOUT" => Some("1m 30s".to_string()),
            "CHAOS_REQUIRE_ALL" => Some("1".to_string()),
            "CHAOS_JUNIT" => Some("j.xml".to_string()),
            _ => None,
        };
        let a = parse(argv(&[]), env).unwrap();
        assert_eq!(a.seed, Some(16));
        assert_eq!(a.default_timeout, Duration::from_secs(90));
        assert!(a.require_all);
        assert_eq!(a.junit, Some(PathBuf::from("j.xml")));
        assert_eq!(parse(argv(&[]), |k| (k == "CHAOS_RETRIES").then(|| "2".into())).unwrap().retries, 2);
        assert!(parse(argv(&[]), |k| (k == "CHAOS_RETRIES").then(|| "many".into())).is_err());
    }

    /// Combined short flags that contain `h` (clap's help) must come back as `Help`, never end
    /// the process: the check runs in a child so an exit cannot pass for success.
    #[test]
    fn help_requests_are_returned_not_exited() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "runner::args::tests::help_inner", "--ignored", "--nocapture", "--test-threads", "1"])
            .env("CHAOS_HELP_INNER", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("all help requests returned"), "the parser exited the process:\n{text}");
    }

    #[test]
    #[ignore = "run by help_requests_are_returned_not_exited"]
    fn help_inner() {
        if std::env::var_os("CHAOS_HELP_INNER").is_none() {
            return;
        }
        for a in [&["-qhh"][..], &["--help"], &["-h"], &["--tag", "x", "-qh"]] {
            assert!(matches!(try_parse(argv(a), |_| None).unwrap(), Parsed::Help(_)), "{a:?}");
        }
        assert!(matches!(try_parse(argv(&["-q"]), |_| None).unwrap(), Parsed::Args(_)));
        println!("all help requests returned");
    }

    #[test]
    fn bad_values_say_the_fix() {
        let e = parse(argv(&["--tag"]), |_| None).unwrap_err().to_string();
        assert!(e.contains("--tag") && e.contains("needs a value"), "{e}");
        let e = parse(argv(&[]), |k| (k == "CHAOS_SEED").then(|| "abc".into())).unwrap_err().to_string();
        assert!(e.contains("CHAOS_SEED") && e.contains("abc"), "{e}");
        let e = parse(argv(&[]), |k| (k == "CHAOS_TIMEOUT").then(|| "soon".into())).unwrap_err().to_string();
        assert!(e.contains("90s"), "{e}");
        let e = parse(argv(&["--no-such-flag"]), |_| None).unwrap_err().to_string();
        assert!(e.contains("--no-such-flag"), "{e}");
    }
}
