//! Runs one test: capability check, sandbox, the body on its own thread and runtime, the
//! timeout, and the teardown that belongs to the runner (it runs whatever the body did).

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use libtest_mimic::{Completion, Failed};

use super::capture::Capture;
use super::registry::{BoxTestFuture, TestBody};
use crate::host::capability;
use crate::report::{TestRecord, TestStatus};
use crate::sandbox::Sandbox;
use crate::{Chaos, ChaosResult};

/// How long a cancelled async body gets to drop its fixtures before the runner tears down the
/// sandbox under it.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// A test body, from the macro or from the fluent API.
pub(crate) enum Body {
    /// Registered by `#[chaos_test]`.
    Registered(TestBody),
    /// Added with [`Harness::test`](crate::Harness::test).
    Boxed(Box<dyn for<'a> FnOnce(&'a mut Chaos) -> BoxTestFuture<'a> + Send>),
    /// Added with [`Harness::test_sync`](crate::Harness::test_sync).
    BoxedSync(Box<dyn FnOnce(&mut Chaos) -> ChaosResult + Send>),
}

/// Everything needed to run one test.
pub(crate) struct TestSpec {
    pub name: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub tags: Vec<String>,
    pub timeout: Option<Duration>,
    pub requires: Vec<String>,
    pub ignore: Option<Option<String>>,
    pub serial: bool,
    pub retries: Option<u32>,
    pub body: Body,
}

/// Settings shared by every test of the run.
#[derive(Clone, Debug)]
pub(crate) struct RunSettings {
    pub seed: Option<u64>,
    pub default_timeout: Duration,
    pub require_all: bool,
    pub retries: u32,
    pub nocapture: bool,
    pub binary: String,
}

/// How the body's thread ended, with the outcomes of the scenarios it ran.
struct Ended {
    end: BodyEnd,
    outcomes: Vec<crate::scenario::ScenarioOutcome>,
    /// On a timeout: the test's event stream so far (the scenario cut short has no outcome).
    events: Option<crate::observe::EventStream>,
}

/// How the body ended.
enum BodyEnd {
    Returned(ChaosResult),
    Panicked,
    Cancelled,
}

/// Serial tests take this lock for writing, every other test for reading: a serial test runs
/// alone in the binary.
static SERIAL: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Runs the test (again after a failure, up to its retries, when its body can run again) and
/// returns libtest-mimic's verdict plus the record for reporters. A test that fails and then
/// passes is reported flaky: in its output, on stderr, and in the record.
pub(crate) fn run(spec: TestSpec, settings: &RunSettings) -> (Result<Completion, Failed>, TestRecord) {
    let _serial = if spec.serial {
        Box::new(SERIAL.write().unwrap_or_else(|e| e.into_inner())) as Box<dyn std::any::Any>
    } else {
        Box::new(SERIAL.read().unwrap_or_else(|e| e.into_inner())) as Box<dyn std::any::Any>
    };
    let retries = spec.retries.unwrap_or(settings.retries);
    let again = match &spec.body {
        Body::Registered(b) => Some(*b),
        _ => None,
    };
    let copy = |s: &TestSpec, body: TestBody| TestSpec {
        name: s.name.clone(),
        file: s.file.clone(),
        line: s.line,
        tags: s.tags.clone(),
        timeout: s.timeout,
        requires: s.requires.clone(),
        ignore: s.ignore.clone(),
        serial: s.serial,
        retries: s.retries,
        body: Body::Registered(body),
    };
    let Some(body) = again.filter(|_| retries > 0) else {
        return run_once(spec, settings);
    };
    let mut failures: Vec<crate::report::FailedAttempt> = Vec::new();
    for attempt in 0..=retries {
        let (verdict, mut record) = run_once(copy(&spec, body), settings);
        match (&verdict, crate::report::FailedAttempt::of(&record)) {
            (Err(_), Some(failed)) if attempt < retries && crate::safety::interrupt::signalled().is_none() => {
                eprintln!(
                    "chaos: {} failed (attempt {} of {}): {}; retrying",
                    spec.name,
                    attempt + 1,
                    retries + 1,
                    failed.message
                );
                failures.push(failed);
            }
            (Ok(Completion::Completed), _) if !failures.is_empty() => {
                let note = flaky_note(&spec.name, &failures, attempt + 1);
                eprintln!("chaos: {note}");
                record.output = format!("{note}\n{}", record.output);
                record.failed_attempts = failures;
                return (verdict, record);
            }
            _ => {
                if !failures.is_empty()
                    && let TestStatus::Failed { detail, .. } = &mut record.status
                {
                    detail.push_str(&format!("\n\nfailed on all {} attempts", failures.len() + 1));
                    let detail = detail.clone();
                    record.failed_attempts = failures;
                    return (Err(detail.into()), record);
                }
                record.failed_attempts = failures;
                return (verdict, record);
            }
        }
    }
    unreachable!("the last attempt always returns")
}

/// `FLAKY: NAME failed N time(s) before passing on attempt M: why; why`: the line a flaky
/// test's output and the run's summary show.
pub(crate) fn flaky_note(name: &str, failures: &[crate::report::FailedAttempt], passed_on: u32) -> String {
    let why: Vec<&str> = failures.iter().map(|f| f.message.as_str()).collect();
    format!("FLAKY: {name} failed {} time(s) before passing on attempt {passed_on}: {}", failures.len(), why.join("; "))
}

fn run_once(spec: TestSpec, settings: &RunSettings) -> (Result<Completion, Failed>, TestRecord) {
    let started = Instant::now();
    let mut record = TestRecord::new(spec.name.clone(), TestStatus::Passed);
    record.file = spec.file.clone();
    record.line = spec.line;
    record.tags = spec.tags.clone();

    if let Some(sig) = crate::safety::interrupt::signalled() {
        let reason = format!("not started: the run was interrupted by {sig}");
        record.status = TestStatus::Skipped { reason: Some(reason.clone()) };
        return (Ok(Completion::ignored_with(reason)), record);
    }

    if let Err(reason) = capability::check_all(&spec.requires) {
        if settings.require_all {
            let message = format!("{reason} (CHAOS_REQUIRE_ALL=1 turns a missing capability into a failure)");
            record.status = TestStatus::Failed { message: message.clone(), detail: message.clone() };
            return (Err(message.into()), record);
        }
        record.status = TestStatus::Skipped { reason: Some(reason.clone()) };
        return (Ok(Completion::ignored_with(reason)), record);
    }

    let seed = settings.seed.unwrap_or_else(rand::random);
    record.seed = Some(seed);
    let timeout = spec.timeout.unwrap_or(settings.default_timeout);
    let capture = Capture::new(settings.nocapture);

    let sandbox = match Sandbox::new(&spec.name) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            let message = format!("could not create the test's sandbox: {e}");
            record.status = TestStatus::Failed { message: message.clone(), detail: message.clone() };
            return (Err(message.into()), record);
        }
    };

    // Registered for SIGINT/SIGTERM handling until the teardown below is done.
    let tracked = crate::safety::interrupt::track(&spec.name, &sandbox);
    let Ended { end, outcomes, events } = run_body(spec.body, &spec.name, seed, timeout, &sandbox, &capture);
    let last = outcomes.last();
    record.scenario = last.map(crate::report::scenario::scenario_report);
    let scenario_failure = last.and_then(crate::scenario::ScenarioOutcome::failure_message);
    let fixture_logs = fixture_log_tails(&sandbox.temp_dir().join("logs"), 20);
    let plan = sandbox.plan();
    let dry_run = sandbox.is_dry_run();
    let teardown = sandbox.teardown();
    drop(tracked);
    drop(sandbox);

    if dry_run {
        // A dry run stops at the first side effect whose result the test needs.
        let stopped = match &end {
            BodyEnd::Returned(Ok(())) => Some("the body finished".to_string()),
            BodyEnd::Returned(Err(e)) if crate::sandbox::dry_run::is_dry_run_stop(e) => {
                let effect = e.chain().find_map(|c| match c.downcast_ref::<crate::Error>() {
                    Some(crate::Error::DryRun { effect }) => Some(effect.clone()),
                    _ => None,
                });
                Some(format!("stopped before: {}", effect.unwrap_or_default()))
            }
            _ => None,
        };
        if let Some(how) = stopped {
            let reason = format!("dry run: {} side effect(s) planned, none performed; {how}", plan.len());
            let reason = reason.lines().next().unwrap_or_default().to_string();
            record.status = TestStatus::Skipped { reason: Some(reason.clone()) };
            record.output = plan.join("\n");
            return (Ok(Completion::ignored_with(reason)), record);
        }
    }

    let mut problems: Vec<String> = Vec::new();
    match end {
        BodyEnd::Returned(Ok(())) => {}
        BodyEnd::Returned(Err(e)) => problems.push(error_chain(&e)),
        BodyEnd::Panicked => {
            let panics = capture.panics();
            problems.push(match panics.first() {
                Some(first) => format!("test {first}"),
                None => "test panicked".into(),
            });
        }
        BodyEnd::Cancelled => {
            let events = events.map(|e| e.events()).unwrap_or_default();
            problems.push(timed_out(timeout, &events));
        }
    }
    if let Err(e) = teardown {
        problems.push(format!("teardown failed: {e}"));
    }

    record.duration = started.elapsed();
    let mut output = capture.text();
    if !fixture_logs.is_empty() {
        output.push_str(&fixture_logs);
    }
    record.output = output.clone();
    if problems.is_empty() {
        return (Ok(Completion::Completed), record);
    }

    // The one line CI shows: the violated criterion with what it observed, when a scenario
    // failed; else the first line of the first problem.
    let message = match scenario_failure {
        Some(message) => message,
        None => problems[0].lines().next().unwrap_or_default().to_string(),
    };
    let mut detail = problems.join("\n");
    detail.push_str(&format!(
        "\n\nseed: {seed} (replay: CHAOS_SEED={seed} cargo test --test {} -- '{}' --exact)",
        settings.binary, spec.name
    ));
    if !output.trim().is_empty() && !settings.nocapture {
        detail.push_str("\n\n---- captured output ----\n");
        detail.push_str(&output);
    }
    record.status = TestStatus::Failed { message, detail: detail.clone() };
    (Err(detail.into()), record)
}

/// Runs the body on a thread of its own with a fresh runtime, enforcing the timeout. The body's
/// thread may outlive this call only when a sync body ignores cancellation; the sandbox
/// teardown that follows kills everything it started either way.
fn run_body(body: Body, name: &str, seed: u64, timeout: Duration, sandbox: &Arc<Sandbox>, capture: &Capture) -> Ended {
    let (done_tx, done_rx) = mpsc::channel::<Ended>();
    let (cancel_tx, cancel_rx) = tokio::sync::oneshot::channel::<()>();
    let thread_capture = capture.clone();
    let sandbox = Arc::clone(sandbox);
    let events: Arc<std::sync::Mutex<Option<crate::observe::EventStream>>> = Arc::default();
    let stream_slot = Arc::clone(&events);
    let test_name = name.to_string();
    let spawned = std::thread::Builder::new().name(thread_name(name)).spawn(move || {
        let _guard = thread_capture.install_on_this_thread();
        let runtime_capture = thread_capture.clone();
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("chaos-test-rt")
            .on_thread_start(move || std::mem::forget(runtime_capture.install_on_this_thread()))
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = done_tx.send(Ended {
                    end: BodyEnd::Returned(Err(anyhow::anyhow!(
                        "could not start the test's tokio runtime: {e}; check thread limits (ulimit -u)"
                    ))),
                    outcomes: Vec::new(),
                    events: None,
                });
                return;
            }
        };
        let mut cx = Chaos::new(&test_name, seed, sandbox);
        *stream_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.events().clone());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match body {
            Body::Registered(TestBody::Async(f)) => runtime.block_on(cancellable(f(&mut cx), cancel_rx)),
            Body::Boxed(f) => runtime.block_on(cancellable(f(&mut cx), cancel_rx)),
            Body::Registered(TestBody::Sync(f)) => {
                let _enter = runtime.enter();
                BodyEnd::Returned(f(&mut cx))
            }
            Body::BoxedSync(f) => {
                let _enter = runtime.enter();
                BodyEnd::Returned(f(&mut cx))
            }
        }));
        let outcomes = cx.take_outcomes();
        drop(cx);
        runtime.shutdown_timeout(Duration::from_secs(2));
        let _ = done_tx.send(Ended { end: outcome.unwrap_or(BodyEnd::Panicked), outcomes, events: None });
    });
    if let Err(e) = spawned {
        let end = BodyEnd::Returned(Err(anyhow::anyhow!("could not spawn the test thread: {e}")));
        return Ended { end, outcomes: Vec::new(), events: None };
    }
    match done_rx.recv_timeout(timeout) {
        Ok(ended) => ended,
        Err(_) => {
            let _ = cancel_tx.send(());
            // Let an async body drop its fixtures; a blocked sync body is abandoned.
            let outcomes = done_rx.recv_timeout(CANCEL_GRACE).map(|e| e.outcomes).unwrap_or_default();
            let events = events.lock().unwrap_or_else(|e| e.into_inner()).take();
            Ended { end: BodyEnd::Cancelled, outcomes, events }
        }
    }
}

async fn cancellable(body: BoxTestFuture<'_>, cancel: tokio::sync::oneshot::Receiver<()>) -> BodyEnd {
    tokio::select! {
        result = body => BodyEnd::Returned(result),
        _ = cancel => BodyEnd::Cancelled,
    }
}

/// Most events a timeout message shows (the last ones).
const TIMELINE_MAX: usize = 200;

/// The failure of a test that ran out of time: `timed out after 2s` (plus, when a scenario was
/// cut short, which one and in which phase), then the test's timeline so far, as for other
/// failures (the fixture log tails follow in the captured output).
fn timed_out(timeout: Duration, events: &[crate::observe::Event]) -> String {
    use crate::observe::EventKind;
    let mut first = format!("timed out after {}", humantime::format_duration(timeout));
    let mut running: Option<(&str, Option<String>)> = None;
    for e in events {
        match &e.kind {
            EventKind::ScenarioStarted { scenario, .. } => running = Some((scenario, None)),
            EventKind::PhaseEntered { phase } => {
                if let Some((_, p)) = &mut running {
                    *p = Some(phase.to_string());
                }
            }
            EventKind::ScenarioFinished { .. } => running = None,
            _ => {}
        }
    }
    if let Some((scenario, phase)) = running {
        first.push_str(&format!(" during scenario {scenario:?}"));
        if let Some(phase) = phase {
            first.push_str(&format!(" (phase {phase})"));
        }
    }
    if events.is_empty() {
        return first;
    }
    // Resource monitor samples (one per fixture and second) would drown the steps.
    let shown: Vec<_> = events.iter().filter(|e| !matches!(e.kind, EventKind::MonitorSample { .. })).collect();
    let skipped = shown.len().saturating_sub(TIMELINE_MAX);
    first.push_str("\n\n---- timeline so far ----\n");
    if skipped > 0 {
        first.push_str(&format!("({skipped} earlier events left out)\n"));
    }
    for e in &shown[skipped..] {
        first.push_str(&format!("{e}\n"));
    }
    first
}

/// The error and its causes, one per line (no backtrace: the failure names what failed).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    let causes: Vec<String> = e.chain().skip(1).map(|c| c.to_string()).collect();
    if !causes.is_empty() {
        out.push_str("\n\nCaused by:");
        for (i, cause) in causes.iter().enumerate() {
            out.push_str(&format!("\n    {i}: {cause}"));
        }
    }
    out
}

fn thread_name(test: &str) -> String {
    // Linux thread names are cut at 15 bytes; keep the end, which holds the function name.
    let tail: String = test.chars().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect();
    format!("chaos:{tail}")
}

/// The last `n` lines of every fixture log in `dir`, labelled by file name.
fn fixture_log_tails(dir: &Path, n: usize) -> String {
    let Ok(entries) = std::fs::read_dir(dir) else { return String::new() };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut out = String::new();
    for path in paths {
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            continue;
        }
        let start = lines.len().saturating_sub(n);
        let name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        out.push_str(&format!("\n---- {name} (last {} lines) ----\n", lines.len() - start));
        for line in &lines[start..] {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}
