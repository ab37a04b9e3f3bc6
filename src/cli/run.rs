//! `chaos run`: the Snakepit chaos scenarios against the reference target, with a report.
//!
//! Each scenario runs in its own sandbox (cgroups, journal, temp dir) exactly as under the test
//! runner, and is torn down before the next one starts. `--cycles N` repeats the set (release
//! crash-cycle suites); `--defect NAME` enables a defect of the target to see the scenarios
//! catch it. `chaos run FILE|DIR...` runs scenario files (`*.chaos.toml`) instead, each file
//! and template combination one scenario, the same way.
//!
//! Settings layer as documented in docs/scenario-files.md: flag > `CHAOS_*` > the `chaos.toml`
//! profile (`--profile`, `CHAOS_PROFILE`) > the scenario file > `chaos.toml` > built-in.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chaos_harness::Chaos;
use chaos_harness::fixture::snakepit::Defect;
use chaos_harness::observe::{Event, EventKind};
use chaos_harness::report::metrics::{self, Metrics, MetricsServer};
use chaos_harness::report::trace::{self, TraceRecorder, TraceSink};
use chaos_harness::report::{FailedAttempt, RunReport, TestRecord, TestStatus, csv, history, html, junit, stats};
use chaos_harness::runner::OneTest;
use chaos_harness::safety::interrupt::{self, Interrupted};
use console::style;
use indicatif::{ProgressBar, ProgressStyle};
use snakepit_chaos::scenarios::{self, Verdicts};

use super::config::{Config, ConfigArgs};
use super::{Format, Ui};
use chaos_harness::runner::registry::BoxTestFuture;
use chaos_harness::runner::tags::TagFilter;
use chaos_harness::scenario::file::{self, LoadedScenario, Options};
use chaos_harness::scenario::project::{Resolved, Settings};

/// Arguments of `chaos run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenario files or directories (`*.chaos.toml`) to run instead of the built-in Snakepit
    /// scenarios (default: chaos.toml's `scenarios`, else the built-in ones).
    #[arg(value_name = "FILE|DIR")]
    files: Vec<PathBuf>,
    /// Directory for report.html, report.json, results.csv, junit.xml and history.jsonl
    /// [default: target/chaos-report; also CHAOS_REPORT_DIR, chaos.toml `report_dir`].
    #[arg(long)]
    report: Option<PathBuf>,
    /// Run the whole set this many times (crash-cycle suites).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    cycles: u32,
    /// Scenario runs at once, each in its own sandbox (cgroups, temp and data dirs, ports)
    /// [default: the CPU count with --cycles > 1, else 1].
    #[arg(long, value_name = "J", value_parser = clap::value_parser!(u32).range(1..))]
    jobs: Option<u32>,
    /// Continue an interrupted run: the scenario runs recorded in the report directory's
    /// cycles.jsonl are kept and not run again (give the same scenarios and --cycles).
    #[arg(long)]
    resume: bool,
    /// Enable a defect of the reference target (repeatable), e.g. --defect no_heartbeat.
    #[arg(long = "defect", value_name = "NAME", value_parser = parse_defect)]
    defects: Vec<Defect>,
    /// Enable the defects that reproduce a released Snakepit's behaviour: `upstream-0.13`
    /// (Snakepit::reference().upstream_0_13()).
    #[arg(long, value_name = "PRESET", value_parser = ["upstream-0.13"])]
    preset: Option<String>,
    /// Write the findings (violated requirements with their evidence) as Markdown to PATH.
    #[arg(long, value_name = "PATH")]
    findings: Option<PathBuf>,
    /// Run only these scenarios (repeatable; see `chaos list`).
    #[arg(long = "only", value_name = "SCENARIO")]
    only: Vec<String>,
    /// Seed for every random choice (printed in the report; default: random; also CHAOS_SEED,
    /// chaos.toml `seed`).
    #[arg(long)]
    seed: Option<u64>,
    /// Output format of the summary on stdout (progress always goes to stderr) [default: text;
    /// also CHAOS_FORMAT, chaos.toml `format`].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Timeout of each scenario (default: the file's `timeout`, else 180s built-in / 120s for
    /// files; also CHAOS_TIMEOUT, chaos.toml `timeout`).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// Rerun a failed scenario up to N times (same seed); one that fails and then passes is
    /// reported FLAKY: on the progress line, in junit.xml (`flakyFailure`), report.json and
    /// history.jsonl (`flaky`) [default: 0; also CHAOS_RETRIES].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=10))]
    retries: Option<u32>,
    /// Run only scenarios with these tags (`net,!slow`; repeatable; also CHAOS_TAGS, chaos.toml `tags`).
    #[arg(long = "tag", value_name = "EXPR")]
    tags: Vec<String>,
    #[command(flatten)]
    config: ConfigArgs,
    /// Serve Prometheus metrics on http://ADDR/metrics for the length of the run.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Keep serving /metrics this long after the last scenario (so a scrape sees the final values).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    metrics_linger: Duration,
    /// Write the final metrics exposition to PATH (node-exporter textfile collector style).
    #[arg(long, value_name = "PATH")]
    metrics_file: Option<PathBuf>,
    /// Push the final metrics to this Prometheus Pushgateway (http://HOST:PORT), job `chaos`.
    #[arg(long, value_name = "URL")]
    pushgateway: Option<String>,
    /// Append each scenario's spans (OTLP JSON, one request per line) to PATH; with
    /// OTEL_EXPORTER_OTLP_ENDPOINT set they go to that OTLP/HTTP endpoint instead.
    #[arg(long, value_name = "PATH")]
    trace_file: Option<PathBuf>,
}

fn parse_defect(s: &str) -> Result<Defect, String> {
    s.parse()
}

type ScenarioFn = for<'a> fn(&'a mut Chaos, &'a [Defect]) -> Pin<Box<dyn Future<Output = Verdicts> + Send + 'a>>;

/// A built-in scenario.
pub struct ScenarioDef {
    /// Its name for `--only`.
    pub name: &'static str,
    /// One line.
    pub about: &'static str,
    run: ScenarioFn,
}

/// The built-in scenarios, in run order.
pub const SCENARIOS: &[ScenarioDef] = &[
    ScenarioDef {
        name: "beam-sigkill",
        about: "SIGKILL the BEAM: every Python worker gone within 5 s",
        run: |cx, d| Box::pin(scenarios::beam_sigkill(cx, d)),
    },
    ScenarioDef {
        name: "beam-sigkill-restart",
        about: "SIGKILL the BEAM under load, supervised restart: old workers gone, healthy within 30 s",
        run: |cx, d| Box::pin(scenarios::beam_sigkill_under_load_then_restart(cx, d)),
    },
    ScenarioDef {
        name: "worker-sigkill",
        about: "SIGKILL a busy worker under load: replaced within 5 s, no request lost",
        run: |cx, d| Box::pin(scenarios::worker_sigkill_under_load(cx, d)),
    },
    ScenarioDef {
        name: "worker-crash-sessions",
        about: "SIGKILL a worker while sessions are written: sessions survive, affinity holds, no ghost worker",
        run: |cx, d| Box::pin(scenarios::worker_crash_keeps_sessions(cx, d)),
    },
    ScenarioDef {
        name: "session-store-restart",
        about: "restart the session store while sessions are written: every acknowledged session survives",
        run: |cx, d| Box::pin(scenarios::session_store_restart_keeps_sessions(cx, d)),
    },
    ScenarioDef {
        name: "abandoned-requests",
        about: "clients disconnect mid-request: every worker is free again within 2 s",
        run: |cx, d| Box::pin(scenarios::abandoned_requests_free_their_workers(cx, d)),
    },
    ScenarioDef {
        name: "pool-crash",
        about: "crash the pool process: one generation of workers, /health truthful meanwhile",
        run: |cx, d| Box::pin(scenarios::pool_crash(cx, d)),
    },
    ScenarioDef {
        name: "worker-elixir-kill",
        about: "kill a worker's Elixir process: its Python process does not outlive it",
        run: |cx, d| Box::pin(scenarios::worker_elixir_kill_leaves_no_orphan(cx, d)),
    },
];

/// One scenario to run: a built-in one, or one from a scenario file.
#[derive(Clone)]
enum Job {
    Builtin(&'static ScenarioDef),
    File(Box<LoadedScenario>),
}

impl Job {
    fn name(&self) -> &str {
        match self {
            Job::Builtin(d) => d.name,
            Job::File(l) => &l.test_name,
        }
    }

    /// How many times it runs per cycle (a file's `repeat`).
    fn repeat(&self) -> u32 {
        match self {
            Job::Builtin(_) => 1,
            Job::File(l) => l.repeat.max(1),
        }
    }

    fn tags(&self) -> Vec<String> {
        match self {
            Job::Builtin(_) => vec!["snakepit".into()],
            Job::File(l) => l.spec.tags.clone(),
        }
    }
}

/// What `run` decided before running anything.
struct Plan {
    jobs: Vec<Job>,
    /// The run-wide settings (report dir, seed, format, tags), resolved.
    settings: Resolved,
    config: Config,
    flags: Settings,
}

impl Plan {
    fn report_dir(&self) -> PathBuf {
        self.settings.settings.report_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_REPORT_DIR))
    }

    fn format(&self) -> Format {
        if self.settings.settings.format.as_deref() == Some("json") { Format::Json } else { Format::Text }
    }

    /// The timeout of one job: its file's `timeout` is a layer of its own.
    fn timeout(&self, job: &Job) -> Duration {
        let (file, builtin) = match job {
            Job::Builtin(_) => (None, BUILTIN_TIMEOUT),
            Job::File(l) => (l.spec.timeout, FILE_TIMEOUT),
        };
        let file = Settings { timeout: file, ..Settings::default() };
        let builtin = Settings { timeout: Some(builtin), ..Settings::default() };
        self.config.resolve(self.flags.clone(), file, builtin).settings.timeout.unwrap_or(builtin_timeout_of(job))
    }
}

const DEFAULT_REPORT_DIR: &str = "target/chaos-report";
const BUILTIN_TIMEOUT: Duration = Duration::from_secs(180);
const FILE_TIMEOUT: Duration = Duration::from_secs(120);

fn builtin_timeout_of(job: &Job) -> Duration {
    if matches!(job, Job::Builtin(_)) { BUILTIN_TIMEOUT } else { FILE_TIMEOUT }
}

/// The flags as the highest settings layer.
fn flag_layer(args: &RunArgs) -> Settings {
    Settings {
        seed: args.seed,
        timeout: args.timeout,
        tags: (!args.tags.is_empty()).then(|| args.tags.join(",")),
        report_dir: args.report.clone(),
        format: args.format.map(|f| if f == Format::Json { "json".into() } else { "text".into() }),
        scenarios: (!args.files.is_empty()).then(|| args.files.clone()),
    }
}

/// What `run` decided before running anything: the plan, or the exit code and why not.
fn preflight(args: &RunArgs) -> Result<Plan, (u8, String)> {
    preflight_in(args, &std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")), |k| std::env::var(k).ok())
}

fn preflight_in(args: &RunArgs, cwd: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Plan, (u8, String)> {
    let config = args.config.load(cwd, env).map_err(|e| (2, e.0))?;
    let flags = flag_layer(args);
    let builtin = Settings {
        report_dir: Some(PathBuf::from(DEFAULT_REPORT_DIR)),
        format: Some("text".into()),
        ..Settings::default()
    };
    let settings = config.resolve(flags.clone(), Settings::default(), builtin);
    let mut jobs: Vec<Job> = match &settings.settings.scenarios {
        Some(paths) => {
            let files = super::validate::files(paths);
            if files.is_empty() {
                return Err((2, format!("no *.chaos.toml file in {paths:?}; name scenario files or directories")));
            }
            let mut jobs = Vec::new();
            let mut errors = Vec::new();
            for f in &files {
                match file::load(f, &Options::default()) {
                    Ok(l) => jobs.extend(l.into_iter().map(|l| Job::File(Box::new(l)))),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            if !errors.is_empty() {
                return Err((2, format!("invalid scenario files (see `chaos validate`):\n{}", errors.join("\n"))));
            }
            jobs
        }
        None => SCENARIOS.iter().map(Job::Builtin).collect(),
    };
    if let Some(unknown) = args.only.iter().find(|o| !jobs.iter().any(|j| j.name() == o.as_str())) {
        let names: Vec<&str> = jobs.iter().map(Job::name).collect();
        return Err((2, format!("unknown scenario `{unknown}`; valid: {}", names.join(", "))));
    }
    jobs.retain(|j| args.only.is_empty() || args.only.iter().any(|o| o == j.name()));
    if let Some(expr) = &settings.settings.tags {
        let source = settings.source("tags").map(|l| l.to_string()).unwrap_or_default();
        let filter = TagFilter::parse(expr).map_err(|e| (2, format!("tags `{expr}` (from {source}): {e}")))?;
        jobs.retain(|j| filter.selects(&j.tags()));
    }
    // The production guard first: a refused run exits with the documented refusal code, before
    // anything is checked or started (a dry run is allowed: it changes nothing).
    if !chaos_harness::sandbox::dry_run::enabled() {
        match chaos_harness::sandbox::production::check() {
            Err(e) => return Err((chaos_harness::runner::EXIT_REFUSED, e.to_string())),
            Ok(Some(note)) => eprintln!("warning: {note}"),
            Ok(None) => {}
        }
    }
    let plan = Plan { jobs, settings, config, flags };
    check_writable(&plan.report_dir()).map_err(|e| (2, e))?;
    let needs: &[&str] =
        if plan.jobs.iter().any(|j| matches!(j, Job::Builtin(_))) { &["elixir", "cgroups"] } else { &["cgroups"] };
    if let Err(why) = chaos_harness::host::capability::check_all(needs) {
        return Err((3, format!("cannot run the scenarios: {why} (see `chaos doctor`)")));
    }
    Ok(plan)
}

/// The report directory can be created and written: checked before anything runs, so a bad
/// `--report` never throws results away.
fn check_writable(dir: &Path) -> Result<(), String> {
    let fix = "choose a writable directory with --report DIR";
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("the report directory {} cannot be created: {e}; {fix}", dir.display()))?;
    let probe = dir.join(format!(".chaos-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| format!("the report directory {} is not writable: {e}; {fix}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// What the interrupt hook needs to write the partial report.
struct Shared {
    template: RunReport,
    dir: PathBuf,
    finished: Vec<TestRecord>,
}

/// The report for the records so far, with the running tests marked interrupted.
fn partial_report(shared: &Shared, info: &Interrupted) -> RunReport {
    let mut report = shared.template.clone();
    let mut tests = shared.finished.clone();
    for t in &info.running {
        let earlier = tests.iter().position(|r| r.name == t.name).map(|i| tests.remove(i));
        let message = format!("interrupted by {} after {:.1} s", info.signal_name, t.elapsed.as_secs_f64());
        let mut r = earlier.unwrap_or_else(|| TestRecord::new(t.name.clone(), TestStatus::Passed));
        r.status = TestStatus::Failed { message: message.clone(), detail: message };
        r.duration = t.elapsed;
        r.interrupted = true;
        tests.push(r);
    }
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
        .saturating_sub(report.started_unix_ms);
    report.interrupted = Some(format!("{} after {:.1} s", info.signal_name, elapsed as f64 / 1000.0));
    report.tests = tests;
    report
}

/// Progress on stderr: an indicatif bar on a terminal, plain lines otherwise.
struct Progress {
    bar: ProgressBar,
    ui: Ui,
    plain: bool,
}

impl Progress {
    fn new(total: u64, ui: Ui) -> Self {
        let plain = ui.quiet || !console::Term::stderr().is_term();
        let bar = if plain { ProgressBar::hidden() } else { ProgressBar::new(total) };
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner:.cyan} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Self { bar, ui, plain }
    }

    /// A line above the bar (or on stderr when there is none).
    fn line(&self, text: &str) {
        if self.plain { eprintln!("{text}") } else { self.bar.println(text) }
    }
}

/// Runs the scenarios and writes the report.
pub fn run(args: RunArgs, ui: Ui) -> ExitCode {
    let plan = match preflight(&args) {
        Ok(s) => s,
        Err((code, why)) => {
            eprintln!("{} {why}", style("error:").red().bold());
            return ExitCode::from(code);
        }
    };
    let retries = match retries_of(&args, |k| std::env::var(k).ok()) {
        Ok(n) => n,
        Err(why) => {
            eprintln!("{} {why}", style("error:").red().bold());
            return ExitCode::from(2);
        }
    };
    let report_dir = plan.report_dir();
    let mut args = args;
    if args.preset.is_some() {
        for d in Defect::UPSTREAM_0_13 {
            if !args.defects.contains(&d) {
                args.defects.push(d);
            }
        }
    }
    let format = plan.format();
    let seed_setting = plan.settings.settings.seed;
    let total = plan.jobs.iter().map(Job::repeat).sum::<u32>() * args.cycles;
    let defects: Vec<String> = args.defects.iter().map(|d| d.to_string()).collect();
    let mut template = RunReport::new("snakepit-chaos", Vec::new());
    template.harness_version = env!("CARGO_PKG_VERSION").into();
    template.command_line = std::env::args().collect::<Vec<_>>().join(" ");
    template.defects = defects.clone();
    template.seed = seed_setting;
    template.cycles = args.cycles;
    let shared = Arc::new(Mutex::new(Shared { template, dir: report_dir.clone(), finished: Vec::new() }));
    {
        let shared = Arc::clone(&shared);
        let installed = interrupt::install(move |info| {
            let s = shared.lock().unwrap_or_else(|e| e.into_inner());
            let report = partial_report(&s, info);
            match write_report(&s.dir, &report, false) {
                Ok(()) => eprintln!(
                    "chaos run: partial report ({} finished, {} interrupted) written to {}",
                    s.finished.len(),
                    info.running.len(),
                    s.dir.join("report.json").display()
                ),
                Err(e) => eprintln!("chaos run: could not write the partial report: {e}"),
            }
        });
        if let Err(e) = installed {
            eprintln!("warning: {e}");
        }
    }
    if !ui.quiet {
        let against = if plan.jobs.iter().all(|j| matches!(j, Job::File(_))) {
            "from scenario files"
        } else {
            "against the reference Snakepit target"
        };
        eprintln!(
            "chaos run: {total} scenario run(s) {against}{} ({})",
            if defects.is_empty() { String::new() } else { format!(" with defects {}", defects.join(",")) },
            plan.config.describe()
        );
    }
    let progress = Arc::new(Progress::new(u64::from(total), ui));
    let metrics = Metrics::new();
    let server = match args.metrics_addr.map(|addr| MetricsServer::start(addr, metrics.clone())).transpose() {
        Ok(server) => server,
        Err(e) => {
            eprintln!("{} {e}", style("error:").red().bold());
            return ExitCode::from(2);
        }
    };
    if let Some(s) = &server
        && !ui.quiet
    {
        eprintln!("chaos run: metrics on http://{}/metrics", s.addr());
    }
    let started = Instant::now();
    let journal = report_dir.join(JOURNAL);
    let done = match resume_journal(&journal, args.resume) {
        Ok(done) => done,
        Err(e) => {
            eprintln!("{} {e}", style("error:").red().bold());
            return ExitCode::from(2);
        }
    };
    if args.resume && !ui.quiet {
        eprintln!("chaos run: resuming: {} scenario run(s) already recorded in {}", done.len(), journal.display());
    }
    let done_passed = done.iter().filter(|r| r.status == TestStatus::Passed).count() as u32;
    progress.bar.inc(done.len() as u64);
    shared.lock().unwrap_or_else(|e| e.into_inner()).finished.extend(done.iter().cloned());
    let jobs = parallel_jobs(args.jobs, args.cycles, total);
    if jobs > 1 && !ui.quiet {
        eprintln!("chaos run: {jobs} scenario runs at once, each in its own sandbox");
    }
    // Every (cycle, scenario, repeat) run not already recorded, in order, with its name;
    // `jobs` workers take the next one when free.
    let queue: Mutex<std::collections::VecDeque<(u32, usize, String)>> = Mutex::new(
        (1..=args.cycles)
            .flat_map(|cycle| {
                plan.jobs.iter().enumerate().flat_map(move |(index, job)| {
                    (1..=job.repeat()).map(move |rep| {
                        let k = (cycle - 1) * job.repeat() + rep;
                        let name = if args.cycles * job.repeat() > 1 {
                            format!("cycle{k:04}::{}", job.name())
                        } else {
                            job.name().to_string()
                        };
                        (cycle, index, name)
                    })
                })
            })
            .filter(|(_, _, name)| !done.iter().any(|r| &r.name == name))
            .collect(),
    );
    let counts = Mutex::new((done_passed, done.len() as u32 - done_passed));
    let worker = || {
        loop {
            if interrupt::signalled().is_some() {
                return;
            }
            let Some((cycle, index, name)) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
                return;
            };
            let job = &plan.jobs[index];
            let seed = seed_setting.unwrap_or_else(rand::random);
            let cycle_tag = if args.cycles > 1 { format!("cycle {cycle}/{} · ", args.cycles) } else { String::new() };
            progress.bar.set_message(format!("{cycle_tag}{}", job.name()));
            if progress.plain && ui.verbose > 0 {
                progress.line(&format!("[{name}]: started"));
            }
            let traces = TraceSink::from_env(args.trace_file.as_deref()).map(|sink| (sink, TraceRecorder::new()));
            let hooks = Hooks { metrics: &metrics, traces: traces.as_ref().map(|(_, r)| r.clone()) };
            let mut failed_attempts = Vec::new();
            let mut record = loop {
                let one = OneTest::new(&name).tags(job.tags()).timeout(plan.timeout(job)).seed(Some(seed));
                let hooks = Hooks { metrics: hooks.metrics, traces: hooks.traces.clone() };
                let record = run_one(job, one, &args.defects, Arc::clone(&progress), cycle_tag.clone(), hooks);
                match FailedAttempt::of(&record) {
                    Some(attempt) if failed_attempts.len() < retries as usize && interrupt::signalled().is_none() => {
                        let done = {
                            let c = counts.lock().unwrap_or_else(|e| e.into_inner());
                            c.0 + c.1
                        };
                        progress.line(&format!(
                            "[{:>4}/{total}] {name}: failed (attempt {} of {}), retrying: {}",
                            done + 1,
                            failed_attempts.len() + 1,
                            retries + 1,
                            attempt.message
                        ));
                        failed_attempts.push(attempt);
                    }
                    _ => break record,
                }
            };
            record.failed_attempts = failed_attempts;
            if let Some((sink, recorder)) = &traces
                && let Err(e) = trace::export(recorder, sink)
            {
                progress.line(&format!("warning: {e}"));
            }
            if interrupt::signalled().is_some() {
                // The interrupt handler writes the partial report and exits the process.
                shared.lock().unwrap_or_else(|e| e.into_inner()).finished.push(record);
                interrupt::wait_if_interrupted();
                return;
            }
            let ok = record.status == TestStatus::Passed;
            metrics.record_test(job.name(), ok);
            let (passed, failed) = {
                let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
                if ok {
                    c.0 += 1
                } else {
                    c.1 += 1
                }
                *c
            };
            progress.bar.inc(1);
            if !ui.quiet || !ok {
                progress.line(&format!(
                    "[{:>4}/{total}] {:<40} {} in {:.1} s   ({passed} passed, {failed} failed, {:.0} s elapsed)",
                    passed + failed,
                    name,
                    if record.is_flaky() {
                        style(format!("ok, FLAKY (failed {} time(s) first)", record.failed_attempts.len()))
                            .yellow()
                            .bold()
                            .to_string()
                    } else if ok {
                        style("ok").green().to_string()
                    } else {
                        style("FAILED").red().bold().to_string()
                    },
                    record.duration.as_secs_f64(),
                    started.elapsed().as_secs_f64()
                ));
            }
            if let TestStatus::Failed { message, detail } = &record.status {
                progress.line(&indent(if ui.verbose > 0 { detail } else { message }));
            }
            if let Err(e) = journal_append(&journal, &record) {
                progress.line(&format!("warning: {e}"));
            }
            shared.lock().unwrap_or_else(|e| e.into_inner()).finished.push(record);
        }
    };
    if jobs == 1 {
        worker();
    } else {
        std::thread::scope(|s| {
            for _ in 0..jobs {
                s.spawn(worker);
            }
        });
    }
    let (passed, failed) = *counts.lock().unwrap_or_else(|e| e.into_inner());
    progress.bar.finish_and_clear();
    if let Err(code) = export_metrics(&args, &metrics, server) {
        return code;
    }
    let report = {
        let s = shared.lock().unwrap_or_else(|e| e.into_inner());
        let mut report = s.template.clone();
        report.tests = s.finished.clone();
        // Parallel runs finish in any order; the report lists them in run order.
        report.tests.sort_by(|a, b| a.name.cmp(&b.name));
        report
    };
    if let Err(e) = write_report(&report_dir, &report, true) {
        eprintln!("{} writing the report: {e}", style("error:").red().bold());
        return ExitCode::from(3);
    }
    let html = report_dir.join("report.html");
    if let Some(path) = &args.findings {
        let md = snakepit_chaos::findings::render(
            &report,
            args.preset.as_deref().unwrap_or("custom"),
            &std::env::args().collect::<Vec<_>>().join(" "),
        );
        // No machine paths in a checked-in file: the project directory is written `.`.
        let md = md.replace(env!("CARGO_MANIFEST_DIR"), ".");
        if let Err(e) = std::fs::write(path, md) {
            eprintln!("{} writing the findings to {}: {e}", style("error:").red().bold(), path.display());
            return ExitCode::from(3);
        }
    }
    if !ui.quiet && format == Format::Text {
        for s in stats::by_scenario(&report).iter().filter(|s| s.runs > 1) {
            eprintln!(
                "chaos run: {}: {} of {} passed (95% interval {:.1}-{:.1}%){}",
                s.scenario,
                s.passed,
                s.runs,
                s.wilson_low * 100.0,
                s.wilson_high * 100.0,
                s.criteria
                    .iter()
                    .max_by_key(|c| c.worst_ms)
                    .map(|c| format!("; slowest to hold: {} ({} ms, {})", c.criterion, c.worst_ms, c.worst_run))
                    .unwrap_or_default()
            );
            if let (Some(median), Some(worst)) = (s.ready_ms_median, s.ready_ms_worst) {
                eprintln!(
                    "chaos run: {}: {:.1} s per run on average; the target's start-to-ready time median {median} ms, worst {worst} ms",
                    s.scenario, s.mean_run_s
                );
            }
        }
    }
    if !ui.quiet && format == Format::Text {
        let (entries, _) = history::read(&report_dir.join("history.jsonl"));
        if let Some((now, past)) = entries.split_last() {
            let past = &past[past.len().saturating_sub(20)..];
            for (scenario, what, median, value) in history::regressions(past, now) {
                eprintln!(
                    "{} {scenario}: {what} = {value:.0}, history median {median:.0} (last {} runs)",
                    style("regression:").yellow().bold(),
                    past.len()
                );
            }
            for (scenario, failures) in history::flaky_scenarios(&entries[entries.len().saturating_sub(10)..], 10) {
                eprintln!(
                    "{} {scenario}: failed {failures} of the last runs, passed in others",
                    style("flaky:").yellow()
                );
            }
        }
    }
    match format {
        Format::Json => println!("{}", summary_json(&report, &report_dir)),
        Format::Text => {
            if !ui.quiet {
                eprintln!(
                    "chaos run: {passed} passed, {failed} failed in {:.1} s; report: {}",
                    started.elapsed().as_secs_f64(),
                    html.display()
                );
            }
            let failed_text = format!("{failed} failed");
            let failed_text = if failed > 0 { style(failed_text).red().bold().to_string() } else { failed_text };
            // Flaky scenarios count as passed, never silently.
            let flaky = report.tests.iter().filter(|t| t.is_flaky()).count();
            let flaky_text =
                if flaky > 0 { style(format!(" ({flaky} FLAKY)")).yellow().bold().to_string() } else { String::new() };
            println!("{passed} passed{flaky_text}, {failed_text}");
        }
    }
    if failed > 0
        && let Some(url) = std::env::var("CHAOS_NOTIFY_WEBHOOK").ok().filter(|u| !u.is_empty())
    {
        let link = std::env::var("CHAOS_REPORT_URL").unwrap_or_else(|_| html.display().to_string());
        if let Err(e) = notify(&url, &report, &link) {
            eprintln!("{} failure notification not sent: {e}", style("warning:").yellow());
        }
    }
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// How many scenario runs go at once: `--jobs`, else the CPU count for crash cycles (one per
/// core: each run is a whole target, BEAM and workers), else 1; never more than there are runs.
///
/// (`chaos run --cycles 1000 --jobs 2` runs two targets at a time.)
fn parallel_jobs(jobs: Option<u32>, cycles: u32, runs: u32) -> u32 {
    let default =
        if cycles > 1 { std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1) } else { 1 };
    jobs.unwrap_or(default).clamp(1, runs.max(1))
}

/// The webhook body: the suite, the failing scenarios with their one-line message, the link.
fn notification(report: &RunReport, link: &str) -> serde_json::Value {
    let failing: Vec<serde_json::Value> = report
        .tests
        .iter()
        .filter_map(|t| match &t.status {
            TestStatus::Failed { message, .. } => Some(serde_json::json!({ "name": t.name, "message": message })),
            _ => None,
        })
        .collect();
    serde_json::json!({
        "text": format!("chaos run: {} of {} scenario run(s) failed; report: {link}", failing.len(), report.tests.len()),
        "suite": report.suite, "host": report.host, "failed": failing.len(), "passed": report.passed(),
        "failing": failing, "report": link,
    })
}

/// POSTs the notification to `CHAOS_NOTIFY_WEBHOOK` (10 s timeout).
fn notify(url: &str, report: &RunReport, link: &str) -> Result<(), String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let resp = client
        .post(url)
        .json(&notification(report, link))
        .send()
        .map_err(|e| format!("POST to CHAOS_NOTIFY_WEBHOOK failed: {e}; check the URL"))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("CHAOS_NOTIFY_WEBHOOK answered {}; check the URL and its token", resp.status()))
    }
}

/// `--format json`: counts, the report files and one line per scenario run.
fn summary_json(report: &RunReport, dir: &Path) -> serde_json::Value {
    let scenarios: Vec<serde_json::Value> = report
        .tests
        .iter()
        .map(|t| {
            let (status, message) = match &t.status {
                TestStatus::Passed => ("passed", None),
                TestStatus::Failed { message, .. } => ("failed", Some(message.clone())),
                TestStatus::Skipped { reason } => ("skipped", reason.clone()),
            };
            serde_json::json!({
                "name": t.name, "status": status, "message": message,
                "duration_ms": t.duration.as_millis() as u64, "seed": t.seed,
                "flaky": t.is_flaky(), "failed_attempts": t.failed_attempts.len(),
            })
        })
        .collect();
    serde_json::json!({
        "passed": report.passed(), "failed": report.failed(), "skipped": report.skipped(),
        "flaky": report.tests.iter().filter(|t| t.is_flaky()).count(),
        "report": { "html": dir.join("report.html"), "json": dir.join("report.json"),
                    "junit": dir.join("junit.xml"), "csv": dir.join("results.csv") },
        "scenarios": scenarios,
        "statistics": stats::by_scenario(report),
    })
}

/// `--retries N`, else `CHAOS_RETRIES`, else 0.
fn retries_of(args: &RunArgs, env: impl Fn(&str) -> Option<String>) -> Result<u32, String> {
    if let Some(n) = args.retries {
        return Ok(n);
    }
    match env("CHAOS_RETRIES").filter(|s| !s.trim().is_empty()) {
        None => Ok(0),
        Some(s) => s.trim().parse::<u32>().ok().filter(|n| *n <= 10).ok_or_else(|| {
            format!(
                "CHAOS_RETRIES: `{s}` is not a number from 0 to 10; write e.g. CHAOS_RETRIES=2 (or use --retries 2)"
            )
        }),
    }
}

/// One scenario on the runner's own execution path (sandbox, timeout, teardown, record); its
/// typed events drive the progress line.
fn run_one(
    job: &Job,
    test: OneTest,
    defects: &[Defect],
    progress: Arc<Progress>,
    prefix: String,
    hooks: Hooks<'_>,
) -> TestRecord {
    let defects = defects.to_vec();
    let label = format!("{prefix}{}", job.name());
    let subscriber = hooks.metrics.subscriber(job.name());
    let traces = hooks.traces;
    let job = job.clone();
    // The target's start-to-ready time: from the body's start to the first fixture started
    // (a fixture is adopted once its readiness probes passed).
    let ready: Arc<Mutex<Option<Duration>>> = Arc::default();
    let ready_in = Arc::clone(&ready);
    let mut record = chaos_harness::runner::run_one(test, move |cx| {
        let t0 = Instant::now();
        cx.events().subscribe(move |e: &Event| {
            if matches!(e.kind, EventKind::FixtureStarted { .. }) {
                ready_in.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(t0.elapsed());
            }
        });
        cx.events().subscribe(subscriber);
        if let Some(recorder) = traces {
            cx.events().subscribe(recorder);
        }
        let (progress, label) = (Arc::clone(&progress), label.clone());
        cx.events().subscribe(move |e: &Event| {
            let shown = match &e.kind {
                EventKind::StepStarted { .. } | EventKind::PhaseEntered { .. } => true,
                EventKind::FaultConfirmed { .. } | EventKind::FaultCleared { .. } => true,
                EventKind::LoadSample { .. } => false,
                _ => progress.ui.verbose > 1,
            };
            if shown {
                progress.bar.set_message(format!("{label} · {}", e.kind));
                if progress.ui.verbose > 0 {
                    progress.line(&format!("      {label} {e}"));
                }
            }
        });
        job_body(job, defects)(cx)
    });
    record.ready_ms = ready.lock().unwrap_or_else(|e| e.into_inner()).map(|d| d.as_millis() as u64);
    record
}

/// The body of one job.
fn job_body(job: Job, defects: Vec<Defect>) -> impl for<'a> FnOnce(&'a mut Chaos) -> BoxTestFuture<'a> + Send {
    move |cx: &mut Chaos| -> BoxTestFuture<'_> {
        Box::pin(async move {
            match job {
                Job::Builtin(def) => match (def.run)(cx, &defects).await? {
                    Ok(_) => Ok(()),
                    Err(e) => Err(anyhow::Error::new(e)),
                },
                // `repeat` is run by the caller, one record per run; `--defect` and `--preset`
                // switch the defects on in every Snakepit target of the file.
                Job::File(l) => match cx.run_spec(&with_defects(l.spec, &defects)).await? {
                    Ok(_) => Ok(()),
                    Err(e) => Err(anyhow::Error::new(e)),
                },
            }
        })
    }
}

/// The spec with `defects` added to each of its `snakepit` targets.
fn with_defects(
    mut spec: chaos_harness::scenario::ScenarioSpec,
    defects: &[Defect],
) -> chaos_harness::scenario::ScenarioSpec {
    if defects.is_empty() {
        return spec;
    }
    for t in spec.targets.values_mut().filter(|t| t.kind == "snakepit") {
        let mut names: Vec<String> = t.params.strings("defects").ok().flatten().unwrap_or_default();
        names.extend(defects.iter().map(|d| d.to_string()).filter(|d| !names.contains(d)).collect::<Vec<_>>());
        t.params = t.params.clone().with("defects", names);
    }
    spec
}

/// What a scenario run reports to besides the report: metrics and traces.
struct Hooks<'a> {
    metrics: &'a Metrics,
    traces: Option<TraceRecorder>,
}

/// The metrics at the end of the run: the file, the push, the linger of the server.
fn export_metrics(args: &RunArgs, metrics: &Metrics, server: Option<MetricsServer>) -> Result<(), ExitCode> {
    if let Some(path) = &args.metrics_file {
        metrics.write_textfile(path).map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(3)
        })?;
    }
    if let Some(url) = &args.pushgateway {
        metrics::push(metrics, url, "chaos").map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(3)
        })?;
    }
    if let Some(server) = server {
        std::thread::sleep(args.metrics_linger);
        server.stop();
    }
    Ok(())
}

fn write_report(dir: &Path, report: &RunReport, with_history: bool) -> Result<(), chaos_harness::Error> {
    let io = |what: &str, path: PathBuf, source: std::io::Error| chaos_harness::Error::Io {
        what: what.into(),
        path,
        source,
        fix: "choose a writable directory with --report DIR".into(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io("creating the report directory", dir.to_path_buf(), e))?;
    let mut report = report.clone();
    report.statistics = stats::by_scenario(&report);
    let report = &report;
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| io("serializing the report", dir.join("report.json"), std::io::Error::other(e)))?;
    for (file, text) in
        [("report.json", json), ("report.html", html::render(report)), ("results.csv", csv::render(report))]
    {
        std::fs::write(dir.join(file), text).map_err(|e| io("writing the report", dir.join(file), e))?;
    }
    junit::write(&dir.join("junit.xml"), &report.suite, &report.tests)?;
    if with_history { history::append(&dir.join("history.jsonl"), report) } else { Ok(()) }
}

/// The journal of a run in its report directory: one finished scenario run (its full record)
/// per line, appended as each finishes, so `--resume` knows which cycles ran even after the run
/// was killed outright.
const JOURNAL: &str = "cycles.jsonl";

/// The records of the journal to keep: all of them with `--resume`, none otherwise (the
/// journal is started afresh).
fn resume_journal(path: &Path, resume: bool) -> Result<Vec<TestRecord>, String> {
    if !resume {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("cannot start the journal {}: {e}; check the report directory", path.display()))
            }
            _ => Ok(Vec::new()),
        };
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "--resume: no journal {} (nothing was recorded there); run without --resume, or give the --report directory of the interrupted run",
                path.display()
            ));
        }
        Err(e) => return Err(format!("--resume: cannot read {}: {e}", path.display())),
    };
    // A line cut short by a kill mid-write is the last one: skip what does not parse.
    Ok(text.lines().filter_map(|l| serde_json::from_str::<TestRecord>(l).ok()).filter(|r| !r.interrupted).collect())
}

fn journal_append(path: &Path, record: &TestRecord) -> Result<(), String> {
    use std::io::Write;
    let line = serde_json::to_string(record).map_err(|e| format!("journal {}: {e}", path.display()))?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()))
        .map_err(|e| format!("cannot append to the journal {}: {e}; --resume will rerun this scenario", path.display()))
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("      {l}")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_jobs_default_from_the_cpu_count_for_cycles_only() {
        let cpus = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
        assert_eq!(parallel_jobs(None, 1, 5), 1, "one pass: one at a time");
        assert_eq!(parallel_jobs(None, 10, 10), cpus.min(10));
        assert_eq!(parallel_jobs(Some(4), 1, 10), 4, "the flag wins");
        assert_eq!(parallel_jobs(Some(8), 3, 3), 3, "never more than the runs");
    }
    use std::io::{BufRead, BufReader, Read, Write};

    fn args(report: &str) -> RunArgs {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct W {
            #[command(flatten)]
            a: RunArgs,
        }
        W::parse_from(["run", "--report", report]).a
    }

    fn args_of(argv: &[&str]) -> RunArgs {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct W {
            #[command(flatten)]
            a: RunArgs,
        }
        W::parse_from(std::iter::once("run").chain(argv.iter().copied())).a
    }

    /// `chaos run` in a project: chaos.toml's defaults, its profile (CHAOS_PROFILE or
    /// --profile), CHAOS_* and flags, each over the one below; the scenario file's timeout
    /// over chaos.toml's but under the profile's.
    #[test]
    fn run_settings_layer_flags_env_profile_file_and_chaos_toml() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("s")).unwrap();
        std::fs::write(
            d.join("chaos.toml"),
            "report_dir = \"from-project\"\ntimeout = \"2m\"\nscenarios = [\"s\"]\nformat = \"json\"\n\n[profile.ci]\nreport_dir = \"from-profile\"\n\n[profile.slow]\ntimeout = \"9m\"\n",
        )
        .unwrap();
        let web = "[target.web]\ncommand = [\"sleep\", \"60\"]\n[[step]]\nwait = \"10ms\"\n";
        std::fs::write(d.join("s/a.chaos.toml"), format!("timeout = \"30s\"\ntags = [\"fast\"]\n{web}")).unwrap();
        std::fs::write(d.join("s/b.chaos.toml"), format!("tags = [\"slow\"]\n{web}")).unwrap();
        let no_env = |_: &str| None;
        let p = preflight_in(&args_of(&[]), d, no_env).map_err(|e| e.1).unwrap();
        assert_eq!(p.jobs.iter().map(Job::name).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(p.report_dir(), d.join("from-project"));
        assert_eq!(p.format(), Format::Json);
        let timeouts: Vec<Duration> = p.jobs.iter().map(|j| p.timeout(j)).collect();
        assert_eq!(timeouts, [Duration::from_secs(30), Duration::from_secs(120)], "file over chaos.toml");
        let ci = |k: &str| (k == "CHAOS_PROFILE").then(|| "ci".to_string());
        let p = preflight_in(&args_of(&[]), d, ci).map_err(|e| e.1).unwrap();
        assert_eq!(p.report_dir(), d.join("from-profile"), "profile over chaos.toml");
        let p = preflight_in(&args_of(&["--profile", "slow"]), d, no_env).map_err(|e| e.1).unwrap();
        assert_eq!(p.timeout(&p.jobs[0]), Duration::from_secs(540), "profile over the file");
        let env = |k: &str| match k {
            "CHAOS_PROFILE" => Some("ci".to_string()),
            "CHAOS_REPORT_DIR" => Some(d.join("from-env").display().to_string()),
            "CHAOS_TAGS" => Some("fast".into()),
            _ => None,
        };
        let p = preflight_in(&args_of(&[]), d, env).map_err(|e| e.1).unwrap();
        assert_eq!(p.report_dir(), d.join("from-env"), "env over profile");
        assert_eq!(p.jobs.iter().map(Job::name).collect::<Vec<_>>(), ["a"], "CHAOS_TAGS selects");
        let flag_dir = d.join("from-flag").display().to_string();
        let p = preflight_in(&args_of(&["--report", &flag_dir, "--format", "text", "--timeout", "5s"]), d, env)
            .map_err(|e| e.1)
            .unwrap();
        assert_eq!((p.report_dir(), p.format()), (d.join("from-flag"), Format::Text), "flag over env");
        assert_eq!(p.timeout(&p.jobs[0]), Duration::from_secs(5));
        let (code, why) = preflight_in(&args_of(&["--profile", "cl"]), d, no_env).err().unwrap();
        assert_eq!(code, 2);
        assert!(why.contains("chaos.toml") && why.contains("ci, slow") && why.contains("did you mean `ci`?"), "{why}");
    }

    /// `--defect` / `--preset` reach a file's Snakepit targets (added to the defects the file
    /// names, once each) and leave other targets alone.
    #[test]
    fn defects_are_switched_on_in_every_snakepit_target_of_a_file() {
        let src = "[target.pit]\nkind = \"snakepit\"\ndefects = [\"fd_leak\"]\n[target.other]\ncommand = [\"sleep\", \"9\"]\n[[step]]\nwait = \"1s\"\n";
        let spec = file::parse_str("d.chaos.toml", src, &Options::default()).unwrap().remove(0).spec;
        let out = with_defects(spec.clone(), &[Defect::NoRestart, Defect::FdLeak]);
        assert_eq!(out.targets["pit"].params.strings("defects").unwrap().unwrap(), ["fd_leak", "no_restart"]);
        assert_eq!(out.targets["other"], spec.targets["other"]);
        assert_eq!(args_of(&["--preset", "upstream-0.13"]).preset.as_deref(), Some("upstream-0.13"));
        assert_eq!(with_defects(spec.clone(), &[]), spec);
    }

    #[test]
    fn an_unwritable_report_dir_is_refused_before_anything_runs() {
        let (code, why) = preflight(&args("/dev/null/x")).err().expect("refused");
        assert_eq!(code, 2);
        assert!(why.contains("/dev/null/x") && why.contains("--report DIR"), "{why}");
    }

    #[test]
    fn the_webhook_gets_the_failing_scenarios_and_the_link() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let receiver = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut head = String::new();
            let mut len = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
                head += &line;
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").unwrap();
            (head, String::from_utf8(body).unwrap())
        });
        let fail = TestStatus::Failed { message: "no_orphans within 5s: pid 42 survived".into(), detail: "d".into() };
        let report = RunReport::new(
            "snakepit-chaos",
            vec![TestRecord::new("beam-sigkill", fail), TestRecord::new("worker-sigkill", TestStatus::Passed)],
        );
        notify(&url, &report, "https://ci.example/run/7/report.html").unwrap();
        let (head, body) = receiver.join().unwrap();
        assert!(head.starts_with("POST /hook "), "{head}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["failed"], 1);
        assert_eq!(v["failing"][0]["name"], "beam-sigkill");
        assert!(v["failing"][0]["message"].as_str().unwrap().contains("no_orphans"));
        assert_eq!(v["report"], "https://ci.example/run/7/report.html");
        // A receiver that refuses is reported, not ignored.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        assert!(notify(&format!("http://{closed}/"), &report, "x").unwrap_err().contains("CHAOS_NOTIFY_WEBHOOK"));
    }
}
