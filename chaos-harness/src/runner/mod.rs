//! The test runner: registry, arguments, tag selection, capability checks, execution with a
//! timeout and runner-owned teardown, and reporting through libtest-mimic and JUnit.
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | every selected test passed (or was ignored) |
//! | 101 | at least one test failed (libtest's code) |
//! | 2 | invalid arguments or environment (`--tag`, `CHAOS_TAGS`, `CHAOS_SEED`, ...) |
//! | 3 | harness setup error (duplicate test names, JUnit not writable) |
//! | 4 | under cargo-nextest, `--exact NAME` matched no test of this binary |
//! | 5 | refused by the production guard (see [`crate::sandbox::production`]) |
//! | 130, 143 | interrupted by SIGINT / SIGTERM (faults undone, partial JUnit written; see [`crate::safety::interrupt`]) |

pub mod args;

pub mod capture;
pub(crate) mod execute;
pub mod registry;
pub mod tags;

use std::collections::HashMap;
use std::panic::Location;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libtest_mimic::Trial;

use crate::host::capability;
use crate::report::{TestRecord, TestStatus, junit};
use crate::{Chaos, ChaosResult};
use execute::{Body, RunSettings, TestSpec};
use registry::{BoxTestFuture, Ignore, TestDescriptor};

/// Exit code for invalid arguments or environment.
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a harness setup error.
pub const EXIT_SETUP: u8 = 3;
/// Exit code when nextest asked for a test this binary does not have.
pub const EXIT_NO_SUCH_TEST: u8 = 4;
/// Exit code when the production guard refused the run.
pub const EXIT_REFUSED: u8 = 5;

/// The harness: every `#[chaos_test]` in the binary plus tests added at run time.
///
/// ```no_run
/// use chaos_harness::prelude::*;
///
/// fn main() -> std::process::ExitCode {
///     let mut harness = Harness::new();
///     for pool_size in [1, 2, 4] {
///         harness = harness
///             .test(format!("pool::size_{pool_size}"), move |cx| Box::pin(async move {
///                 tracing::info!(pool_size, seed = cx.seed(), "parametrised scenario");
///                 Ok(())
///             }))
///             .tags(["pool"])
///             .timeout(Duration::from_secs(60))
///             .done();
///     }
///     harness.run()
/// }
/// ```
#[derive(Default)]
pub struct Harness {
    added: Vec<TestSpec>,
}

/// A test just added to a [`Harness`]; set its options, then add another test, `done()`, or
/// `run()`.
pub struct TestBuilder {
    harness: Harness,
}

impl Harness {
    /// A harness holding every `#[chaos_test]` of this binary.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an async test built at run time (for parametrised scenarios). The closure gets
    /// the test's [`Chaos`] context and returns a boxed future.
    #[track_caller]
    pub fn test<F>(self, name: impl Into<String>, body: F) -> TestBuilder
    where
        F: for<'a> FnOnce(&'a mut Chaos) -> BoxTestFuture<'a> + Send + 'static,
    {
        self.push(name.into(), Body::Boxed(Box::new(body)), Location::caller())
    }

    /// Adds a synchronous test built at run time.
    #[track_caller]
    pub fn test_sync<F>(self, name: impl Into<String>, body: F) -> TestBuilder
    where
        F: FnOnce(&mut Chaos) -> ChaosResult + Send + 'static,
    {
        self.push(name.into(), Body::BoxedSync(Box::new(body)), Location::caller())
    }

    fn push(mut self, name: String, body: Body, at: &Location<'_>) -> TestBuilder {
        self.added.push(TestSpec {
            name,
            file: Some(at.file().to_string()),
            line: Some(at.line()),
            tags: Vec::new(),
            timeout: None,
            requires: Vec::new(),
            ignore: None,
            serial: false,
            retries: None,
            body,
        });
        TestBuilder { harness: self }
    }

    /// Parses the command line and environment, runs the selected tests, writes JUnit if asked,
    /// and returns the exit code (see the module docs). Never calls `exit()`, so destructors run.
    pub fn run(self) -> ExitCode {
        let mut args = match args::parse(std::env::args_os(), |k| std::env::var(k).ok()) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
        let mut specs: Vec<TestSpec> =
            inventory::iter::<TestDescriptor>.into_iter().map(spec_from_descriptor).collect();
        specs.extend(self.added);
        if let Err(message) = reject_duplicates(&specs) {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_SETUP);
        }
        if let Err(message) = unknown_tags(&specs, &args.tags) {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
        // Tests left out by tag selection are reported as "filtered out", as a name filter's
        // are: they become skip patterns libtest-mimic counts.
        let (selected, tag_filtered): (Vec<TestSpec>, Vec<TestSpec>) =
            specs.into_iter().partition(|s| args.tags.selects(&s.tags));
        let mut specs = selected;
        let mut tag_filtered: Vec<String> = tag_filtered.into_iter().map(|s| s.name).collect();
        tag_filtered.sort();
        if !tag_filtered.is_empty() {
            if args.libtest.exact {
                args.libtest.skip.extend(tag_filtered.iter().cloned());
            } else {
                args.libtest.skip.push(format!("[{TAG_FILTERED_KIND}] "));
            }
        }
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        let mut missing_capability: HashMap<String, String> = HashMap::new();
        for spec in &mut specs {
            // A missing capability is known before the run: mark the test ignored so that
            // listing (and nextest's list phase) agrees with the run.
            if spec.ignore.is_none()
                && !args.require_all
                && let Err(reason) = capability::check_all(&spec.requires)
            {
                missing_capability.insert(spec.name.clone(), reason.clone());
                spec.ignore = Some(Some(reason));
            }
        }

        if args.libtest.list {
            print_list(&specs, &args.libtest);
            return ExitCode::SUCCESS;
        }

        // Safety hooks (crate::safety): the production guard refuses before anything runs (a dry
        // run is allowed); SIGINT/SIGTERM undo, write partial JUnit and exit (installed below,
        // once the records exist). The crash reaper starts with the first sandbox.
        let dry_run = crate::sandbox::dry_run::enabled();
        if !dry_run {
            match crate::sandbox::production::check() {
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_REFUSED);
                }
                Ok(Some(note)) => eprintln!("warning: {note}"),
                Ok(None) => {}
            }
        } else {
            eprintln!(
                "DRY RUN ({}=1): side effects are printed as `would ...`, none is performed; each test stops at the first one whose result it needs",
                crate::sandbox::dry_run::DRY_RUN_ENV
            );
        }

        let binary = binary_name();
        let settings = RunSettings {
            seed: args.seed,
            default_timeout: args.default_timeout,
            require_all: args.require_all,
            retries: args.retries,
            nocapture: args.libtest.nocapture,
            binary: binary.clone(),
        };
        let records: Arc<Mutex<Vec<TestRecord>>> = Arc::default();
        {
            let (records, junit, binary, nextest) =
                (Arc::clone(&records), args.junit.clone(), binary.clone(), args.under_nextest);
            let installed = crate::safety::interrupt::install(move |info| {
                let Some(path) = &junit else { return };
                let mut partial = records.lock().unwrap_or_else(|e| e.into_inner()).clone();
                for t in &info.running {
                    // A running test may have ended (with SandboxClosed) during the undo: it
                    // was interrupted all the same; keep what it reported as the detail.
                    let earlier = partial.iter().position(|r| r.name == t.name).map(|i| partial.remove(i));
                    let message = format!("interrupted by {} after {:.1}s", info.signal_name, t.elapsed.as_secs_f64());
                    let detail = match &earlier {
                        Some(TestRecord { status: TestStatus::Failed { detail, .. }, .. }) => {
                            format!("{message}\n\n{detail}")
                        }
                        _ => message.clone(),
                    };
                    let mut r = earlier.unwrap_or_else(|| TestRecord::new(t.name.clone(), TestStatus::Passed));
                    r.status = TestStatus::Failed { message, detail };
                    r.duration = t.elapsed;
                    r.interrupted = true;
                    partial.push(r);
                }
                partial.sort_by(|a, b| a.name.cmp(&b.name));
                match write_junit(path, &binary, nextest, &partial) {
                    Ok(()) => eprintln!("chaos: partial JUnit ({} tests) written to {}", partial.len(), path.display()),
                    Err(e) => eprintln!("chaos: could not write the partial JUnit: {e}"),
                }
            });
            if let Err(e) = installed {
                eprintln!("warning: {e}");
            }
        }
        let mut trials = Vec::with_capacity(specs.len());
        // Tests ignored for a missing capability that this run selected: their reasons (with the
        // install hint) are printed after the summary, which shows only `ignored`.
        let mut hints: Vec<String> = Vec::new();
        for spec in specs {
            let mut skipped = TestRecord::new(spec.name.clone(), TestStatus::Skipped { reason: None });
            skipped.file = spec.file.clone();
            skipped.line = spec.line;
            skipped.tags = spec.tags.clone();
            if let Some(reason) = &spec.ignore {
                skipped.status = TestStatus::Skipped { reason: reason.clone() };
            }
            let is_ignored = spec.ignore.is_some();
            let (settings, records_for_trial) = (settings.clone(), Arc::clone(&records));
            let trial = Trial::ignorable_test(spec.name.clone(), move || {
                let (verdict, record) = execute::run(spec, &settings);
                records_for_trial.lock().unwrap_or_else(|e| e.into_inner()).push(record);
                verdict
            })
            .with_ignored_flag(is_ignored);
            if !args.libtest.is_filtered_out(&trial) && args.libtest.is_ignored(&trial) {
                if let Some(reason) = missing_capability.get(trial.name()) {
                    hints.push(format!("    {}: {reason}", trial.name()));
                }
                records.lock().unwrap_or_else(|e| e.into_inner()).push(skipped);
            }
            trials.push(trial);
        }

        for name in tag_filtered {
            trials.push(Trial::test(name, || Ok(())).with_kind(TAG_FILTERED_KIND));
        }

        if args.under_nextest
            && args.libtest.exact
            && let Some(filter) = &args.libtest.filter
            && trials.iter().all(|t| args.libtest.is_filtered_out(t))
        {
            eprintln!(
                "error: nextest asked for test `{filter}`, which this binary does not have after \
                         tag selection; CHAOS_TAGS must be the same when nextest lists and runs tests"
            );
            return ExitCode::from(EXIT_NO_SUCH_TEST);
        }

        let conclusion = libtest_mimic::run(&args.libtest, trials);
        // Interrupted: the signal handler writes the partial results and exits with 128 + signal.
        crate::safety::interrupt::wait_if_interrupted();
        if !hints.is_empty() {
            println!(
                "ignored for a missing capability (CHAOS_REQUIRE_ALL=1 makes these failures):\n{}\n",
                hints.join("\n")
            );
        }
        // Flaky tests count as passed, never silently: listed after libtest's summary.
        let mut flaky: Vec<String> = records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|r| r.is_flaky())
            .map(|r| format!("    {} (failed {} time(s) first)", r.name, r.failed_attempts.len()))
            .collect();
        if !flaky.is_empty() {
            flaky.sort();
            println!("FLAKY: {} test(s) passed only after a retry:\n{}\n", flaky.len(), flaky.join("\n"));
        }

        if let Some(path) = &args.junit {
            let mut records = std::mem::take(&mut *records.lock().unwrap_or_else(|e| e.into_inner()));
            records.sort_by(|a, b| a.name.cmp(&b.name));
            if let Err(e) = write_junit(path, &binary, args.under_nextest, &records) {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_SETUP);
            }
        }
        conclusion.exit_code()
    }
}

impl TestBuilder {
    /// Sets the test's tags.
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.last().tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the test's timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.last().timeout = Some(timeout);
        self
    }

    /// Marks the test ignored with a reason.
    pub fn ignore(mut self, reason: impl Into<String>) -> Self {
        self.last().ignore = Some(Some(reason.into()));
        self
    }

    /// Sets the capabilities the test requires (see [`capability::CAPABILITY_NAMES`]).
    pub fn requires<I, S>(mut self, caps: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.last().requires = caps.into_iter().map(Into::into).collect();
        self
    }

    /// Runs the test alone: no other test of the binary runs at the same time (for faults
    /// that touch the whole machine: CPU burn, memory balloon, disk fill).
    pub fn serial(mut self) -> Self {
        self.last().serial = true;
        self
    }

    /// Reruns a failed test up to `n` times; one that fails and then passes is reported
    /// flaky. Only tests added with [`Harness::test`] / [`Harness::test_sync`] whose bodies can
    /// run again take retries: these closures run once, so this applies to `#[chaos_test]`s
    /// (`retries = N`) and is recorded here for listing.
    pub fn retries(mut self, n: u32) -> Self {
        self.last().retries = Some(n);
        self
    }

    /// Adds another async test.
    #[track_caller]
    pub fn test<F>(self, name: impl Into<String>, body: F) -> TestBuilder
    where
        F: for<'a> FnOnce(&'a mut Chaos) -> BoxTestFuture<'a> + Send + 'static,
    {
        self.harness.test(name, body)
    }

    /// Adds another synchronous test.
    #[track_caller]
    pub fn test_sync<F>(self, name: impl Into<String>, body: F) -> TestBuilder
    where
        F: FnOnce(&mut Chaos) -> ChaosResult + Send + 'static,
    {
        self.harness.test_sync(name, body)
    }

    /// Returns to the harness.
    pub fn done(self) -> Harness {
        self.harness
    }

    /// Runs the harness (see [`Harness::run`]).
    pub fn run(self) -> ExitCode {
        self.harness.run()
    }

    fn last(&mut self) -> &mut TestSpec {
        self.harness.added.last_mut().expect("a TestBuilder always follows a pushed test")
    }
}

/// Writes JUnit: one file, or one per test under nextest.
fn write_junit(
    path: &std::path::Path,
    binary: &str,
    under_nextest: bool,
    records: &[TestRecord],
) -> Result<(), crate::Error> {
    if under_nextest {
        records
            .iter()
            .try_for_each(|r| junit::write(&junit::per_test_path(path, &r.name), binary, std::slice::from_ref(r)))
    } else {
        junit::write(path, binary, records)
    }
}

fn spec_from_descriptor(d: &'static TestDescriptor) -> TestSpec {
    TestSpec {
        name: d.full_name(),
        file: Some(d.file.to_string()),
        line: Some(d.line),
        tags: d.tags.iter().map(|t| t.to_string()).collect(),
        timeout: d.timeout_ms.map(Duration::from_millis),
        requires: d.requires.iter().map(|r| r.to_string()).collect(),
        serial: d.serial,
        retries: (d.retries > 0).then_some(d.retries),
        ignore: match d.ignore {
            Ignore::No => None,
            Ignore::Yes => Some(None),
            Ignore::Reason(r) => Some(Some(r.to_string())),
        },
        body: Body::Registered(d.body),
    }
}

/// The libtest-mimic "kind" of the placeholder trials that stand for tag-filtered tests.
const TAG_FILTERED_KIND: &str = "tag-filtered";

/// An included tag that no test of this binary carries, when the selection runs nothing:
/// a typo in `CHAOS_TAGS` must not pass as "0 tests, ok" (nextest fails on no tests too).
/// `CHAOS_ALLOW_NO_TESTS=1` accepts it (a workspace run where some binaries lack the tag).
fn unknown_tags(specs: &[TestSpec], filter: &tags::TagFilter) -> Result<(), String> {
    if filter.included().is_empty() || specs.iter().any(|s| filter.selects(&s.tags)) {
        return Ok(());
    }
    if std::env::var("CHAOS_ALLOW_NO_TESTS").is_ok_and(|v| v == "1") {
        return Ok(());
    }
    let mut known: Vec<&str> = specs.iter().flat_map(|s| s.tags.iter().map(String::as_str)).collect();
    known.sort_unstable();
    known.dedup();
    let unknown: Vec<&str> = filter.included().iter().map(String::as_str).filter(|t| !known.contains(t)).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the tag selection (CHAOS_TAGS / --tag) names {} that no test of this binary has, so it would run 0 tests; \
         known tags: {}; fix the tag, or set CHAOS_ALLOW_NO_TESTS=1 to accept running none",
        unknown.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", "),
        if known.is_empty() { "(none)".to_string() } else { known.join(", ") }
    ))
}

fn reject_duplicates(specs: &[TestSpec]) -> Result<(), String> {
    let mut seen: HashMap<&str, &TestSpec> = HashMap::new();
    let mut problems = Vec::new();
    let at = |s: &TestSpec| format!("{}:{}", s.file.as_deref().unwrap_or("?"), s.line.unwrap_or(0));
    for spec in specs {
        if let Some(first) = seen.insert(&spec.name, spec) {
            problems.push(format!(
                "duplicate test name `{}`: defined at {} and at {}; give one of them another name (`name = \"..\"`)",
                spec.name,
                at(first),
                at(spec)
            ));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
}

/// `--list`: libtest's terse lines (`name: test`), which cargo-nextest parses. Without
/// `--format terse` each line also shows the test's tags after `#`.
fn print_list(specs: &[TestSpec], args: &libtest_mimic::Arguments) {
    let terse = matches!(args.format, Some(libtest_mimic::FormatSetting::Terse));
    let mut count = 0;
    for spec in specs {
        let probe = Trial::test(spec.name.clone(), || Ok(())).with_ignored_flag(spec.ignore.is_some());
        if args.is_filtered_out(&probe) || (args.ignored && spec.ignore.is_none()) {
            continue;
        }
        count += 1;
        if terse || spec.tags.is_empty() {
            println!("{}: test", spec.name);
        } else {
            println!("{}: test  # tags: {}", spec.name, spec.tags.join(", "));
        }
    }
    if !terse {
        println!();
        println!("{count} tests, 0 benchmarks");
    }
}

fn binary_name() -> String {
    let exe = std::env::args().next().unwrap_or_default();
    let stem = std::path::Path::new(&exe).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    // Cargo names test binaries `<target>-<16 hex digits>`.
    match stem.rsplit_once('-') {
        Some((target, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => target.to_string(),
        _ => stem,
    }
}

/// One test run outside a test binary, on the runner's own execution path (capability
/// check, sandbox, the body on its own thread and runtime, the timeout, teardown, the record
/// with the last scenario's report): what `chaos run` uses for each scenario.
///
/// ```no_run
/// use std::time::Duration;
/// let record = chaos_harness::runner::run_one(
///     chaos_harness::runner::OneTest::new("cli::example").timeout(Duration::from_secs(30)),
///     |cx| Box::pin(async move { cx.scenario("nothing").run().await?; Ok(()) }),
/// );
/// println!("{:?}", record.status);
/// ```
pub fn run_one<F>(test: OneTest, body: F) -> crate::report::TestRecord
where
    F: for<'a> FnOnce(&'a mut Chaos) -> BoxTestFuture<'a> + Send + 'static,
{
    let spec = TestSpec {
        name: test.name,
        file: None,
        line: None,
        tags: test.tags,
        timeout: Some(test.timeout),
        requires: test.requires,
        ignore: None,
        serial: false,
        retries: None,
        body: Body::Boxed(Box::new(body)),
    };
    let settings = RunSettings {
        seed: test.seed,
        default_timeout: test.timeout,
        require_all: std::env::var("CHAOS_REQUIRE_ALL").is_ok_and(|v| v == "1"),
        retries: 0,
        nocapture: false,
        binary: "chaos".into(),
    };
    execute::run(spec, &settings).1
}

/// What [`run_one`] runs: a name, tags, a timeout, a seed, required capabilities.
#[derive(Debug, Clone)]
pub struct OneTest {
    name: String,
    tags: Vec<String>,
    timeout: Duration,
    seed: Option<u64>,
    requires: Vec<String>,
}

impl OneTest {
    /// A test named `name` (timeout 180 s, random seed).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            tags: Vec::new(),
            timeout: Duration::from_secs(180),
            seed: None,
            requires: Vec::new(),
        }
    }

    /// Its tags.
    pub fn tags<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tags: I) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Its timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Its seed (random when `None`).
    pub fn seed(mut self, seed: Option<u64>) -> Self {
        self.seed = seed;
        self
    }

    /// Capabilities it requires (see [`crate::host::capability`]).
    pub fn requires<I: IntoIterator<Item = S>, S: Into<String>>(mut self, caps: I) -> Self {
        self.requires = caps.into_iter().map(Into::into).collect();
        self
    }
}
