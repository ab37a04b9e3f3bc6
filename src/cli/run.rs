//! `chaos run`: the Snakepit chaos scenarios against the reference target, with a report.
//!
//! Each scenario runs in its own sandbox (cgroups, journal, temp dir) exactly as under the test
//! runner, and is torn down before the next one starts. `--cycles N` repeats the set (release
//! crash-cycle suites); `--defect NAME` enables a defect of the target to see the scenarios
//! catch it.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use chaos_harness::Chaos;
use chaos_harness::fixture::snakepit::Defect;
use chaos_harness::report::metrics::{self, Metrics, MetricsServer};
use chaos_harness::report::trace::{self, TraceRecorder, TraceSink};
use chaos_harness::report::{RunReport, TestRecord, TestStatus, csv, history, html, junit};
use chaos_harness::runner::OneTest;
use snakepit_chaos::scenarios::{self, Verdicts};

/// Arguments of `chaos run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Directory for report.html, report.json, results.csv, junit.xml and history.jsonl.
    #[arg(long, default_value = "target/chaos-report")]
    report: PathBuf,
    /// Run the whole set this many times (crash-cycle suites).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    cycles: u32,
    /// Enable a defect of the reference target (repeatable), e.g. --defect no_heartbeat.
    #[arg(long = "defect", value_name = "NAME", value_parser = parse_defect)]
    defects: Vec<Defect>,
    /// Run only these scenarios (repeatable; see `chaos list`).
    #[arg(long = "only", value_name = "SCENARIO")]
    only: Vec<String>,
    /// Seed for every random choice (printed in the report; default: random).
    #[arg(long, env = "CHAOS_SEED")]
    seed: Option<u64>,
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
];

/// Runs the scenarios and writes the report.
pub fn run(args: RunArgs) -> ExitCode {
    if let Some(unknown) = args.only.iter().find(|o| !SCENARIOS.iter().any(|s| s.name == o.as_str())) {
        let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
        eprintln!("error: unknown scenario `{unknown}`; valid: {}", names.join(", "));
        return ExitCode::from(2);
    }
    if let Err(why) = chaos_harness::host::capability::check_all(&["elixir", "cgroups"]) {
        eprintln!("error: cannot run the Snakepit scenarios: {why}");
        return ExitCode::from(3);
    }
    let selected: Vec<&'static ScenarioDef> =
        SCENARIOS.iter().filter(|s| args.only.is_empty() || args.only.iter().any(|o| o == s.name)).collect();
    let total = selected.len() as u32 * args.cycles;
    let defects: Vec<String> = args.defects.iter().map(|d| d.to_string()).collect();
    eprintln!(
        "chaos run: {total} scenario run(s) against the reference Snakepit target{}",
        if defects.is_empty() { String::new() } else { format!(" with defects {}", defects.join(",")) }
    );
    let metrics = Metrics::new();
    let server = match args.metrics_addr.map(|addr| MetricsServer::start(addr, metrics.clone())).transpose() {
        Ok(server) => server,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(s) = &server {
        eprintln!("chaos run: metrics on http://{}/metrics", s.addr());
    }
    let started = Instant::now();
    let mut records = Vec::new();
    let (mut passed, mut failed) = (0u32, 0u32);
    for cycle in 1..=args.cycles {
        for def in &selected {
            let name = if args.cycles > 1 { format!("cycle{cycle:04}::{}", def.name) } else { def.name.to_string() };
            let seed = args.seed.unwrap_or_else(rand::random);
            let traces = TraceSink::from_env(args.trace_file.as_deref()).map(|sink| (sink, TraceRecorder::new()));
            let record = run_one(def, &name, seed, &args.defects, &metrics, traces.as_ref().map(|(_, r)| r.clone()));
            if let Some((sink, recorder)) = &traces
                && let Err(e) = trace::export(recorder, sink)
            {
                eprintln!("warning: {e}");
            }
            let ok = record.status == TestStatus::Passed;
            metrics.record_test(def.name, ok);
            if ok {
                passed += 1
            } else {
                failed += 1
            }
            eprintln!(
                "[{:>4}/{total}] {:<40} {} in {:.1} s   ({passed} passed, {failed} failed, {:.0} s elapsed)",
                passed + failed,
                name,
                if ok { "ok" } else { "FAILED" },
                record.duration.as_secs_f64(),
                started.elapsed().as_secs_f64()
            );
            if let TestStatus::Failed { detail, .. } = &record.status {
                eprintln!("{}", indent(detail));
            }
            records.push(record);
        }
    }
    if let Err(code) = export_metrics(&args, &metrics, server) {
        return code;
    }
    let mut report = RunReport::new("snakepit-chaos", records);
    report.harness_version = env!("CARGO_PKG_VERSION").into();
    match write_report(&args.report, &report) {
        Ok(()) => eprintln!(
            "chaos run: {passed} passed, {failed} failed in {:.1} s; report: {}",
            started.elapsed().as_secs_f64(),
            args.report.join("report.html").display()
        ),
        Err(e) => {
            eprintln!("error: writing the report: {e}");
            return ExitCode::from(3);
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// One scenario on the runner's own execution path (sandbox, timeout, teardown, record).
fn run_one(
    def: &'static ScenarioDef,
    name: &str,
    seed: u64,
    defects: &[Defect],
    metrics: &Metrics,
    traces: Option<TraceRecorder>,
) -> TestRecord {
    let defects = defects.to_vec();
    let test = OneTest::new(name).tags(["snakepit"]).timeout(Duration::from_secs(180)).seed(Some(seed));
    let subscriber = metrics.subscriber(def.name);
    chaos_harness::runner::run_one(test, move |cx| {
        cx.events().subscribe(subscriber);
        if let Some(recorder) = traces {
            cx.events().subscribe(recorder);
        }
        Box::pin(async move {
            match (def.run)(cx, &defects).await? {
                Ok(_) => Ok(()),
                Err(e) => Err(anyhow::Error::new(e)),
            }
        })
    })
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

fn write_report(dir: &std::path::Path, report: &RunReport) -> Result<(), chaos_harness::Error> {
    let io = |what: &str, path: PathBuf, source: std::io::Error| chaos_harness::Error::Io {
        what: what.into(),
        path,
        source,
        fix: "choose a writable directory with --report DIR".into(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io("creating the report directory", dir.to_path_buf(), e))?;
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| io("serializing the report", dir.join("report.json"), std::io::Error::other(e)))?;
    for (file, text) in
        [("report.json", json), ("report.html", html::render(report)), ("results.csv", csv::render(report))]
    {
        std::fs::write(dir.join(file), text).map_err(|e| io("writing the report", dir.join(file), e))?;
    }
    junit::write(&dir.join("junit.xml"), &report.suite, &report.tests)?;
    history::append(&dir.join("history.jsonl"), report)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("      {l}")).collect::<Vec<_>>().join("\n")
}
