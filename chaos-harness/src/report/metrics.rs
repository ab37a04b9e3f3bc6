//! Prometheus metrics derived from the typed event stream (feature `metrics`).
//!
//! [`Metrics`] holds one registry for a whole run; [`Metrics::subscriber`] gives a
//! [`Subscriber`] for each scenario's [`EventStream`](crate::observe::EventStream)
//! (`cx.events().subscribe(metrics.subscriber("name"))`). Everything is counted from typed
//! [`EventKind`]s; the exposition is encoded by `prometheus-client` in the Prometheus text
//! format (0.0.4). [`MetricsServer`] serves it on `/metrics`, [`Metrics::write_textfile`]
//! writes it for a textfile collector, [`push`] sends it to a Pushgateway.
//!
//! Labels have few values: fault and criterion *kinds* (registry names), phases, outcome
//! kinds, scenario names, fixture names and roles (the resource monitor's
//! `chaos_monitor_*` gauges); never pids or descriptions.
//!
//! ```
//! use chaos_harness::observe::{EventKind, EventStream, FaultRef};
//! use chaos_harness::report::metrics::Metrics;
//! let metrics = Metrics::new();
//! let stream = EventStream::new();
//! stream.subscribe(metrics.subscriber("demo"));
//! let fault = FaultRef { id: 0, kind: "kill".into(), description: "SIGKILL web".into() };
//! stream.emit(EventKind::FaultInjecting { fault });
//! let text = metrics.encode();
//! assert!(text.contains("chaos_faults_injected_total{kind=\"kill\"} 1"), "{text}");
//! ```

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::observe::{Event, EventKind, Phase, Subscriber};

/// The `Content-Type` of the exposition (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScenarioLabel {
    scenario: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScenarioResult {
    scenario: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CriterionResult {
    criterion: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseOutcome {
    phase: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabel {
    fixture: String,
    role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabel {
    event: String,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~33 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

fn recovery_histogram() -> Histogram {
    // 10 ms .. ~164 s
    Histogram::new(exponential_buckets(0.01, 2.0, 15))
}

fn confirm_histogram() -> Histogram {
    // 50 us .. ~1.6 s
    Histogram::new(exponential_buckets(0.00005, 2.0, 16))
}

/// The metric families (cheap clones share the values).
#[derive(Clone, Debug)]
struct Families {
    scenarios_started: Family<ScenarioLabel, Counter>,
    scenarios: Family<ScenarioResult, Counter>,
    scenario_duration: Family<ScenarioLabel, Histogram, fn() -> Histogram>,
    tests: Family<ScenarioResult, Counter>,
    last_test_passed: Family<ScenarioLabel, Gauge>,
    last_run_timestamp: Gauge<f64, AtomicU64>,
    last_run_failed: Gauge,
    faults_injected: Family<KindLabel, Counter>,
    faults_confirmed: Family<KindLabel, Counter>,
    faults_not_injected: Family<KindLabel, Counter>,
    faults_cleared: Family<KindLabel, Counter>,
    fault_clear_failures: Family<KindLabel, Counter>,
    fault_confirmation: Family<KindLabel, Histogram, fn() -> Histogram>,
    verdicts: Family<CriterionResult, Counter>,
    recovery: Family<ScenarioLabel, Histogram, fn() -> Histogram>,
    last_recovery: Family<ScenarioLabel, Gauge<f64, AtomicU64>>,
    requests: Family<PhaseOutcome, Counter>,
    request_duration: Family<PhaseLabel, Histogram, fn() -> Histogram>,
    guard_trips: Counter,
    fixture_events: Family<EventLabel, Counter>,
    monitor_cpu: Family<RoleLabel, Gauge<f64, AtomicU64>>,
    monitor_rss: Family<RoleLabel, Gauge>,
    monitor_fds: Family<RoleLabel, Gauge>,
    monitor_threads: Family<RoleLabel, Gauge>,
    monitor_processes: Family<RoleLabel, Gauge>,
    events: Family<EventLabel, Counter>,
    scrapes: Counter,
}

struct Inner {
    registry: Registry,
    f: Families,
}

/// The metrics of a run: one registry, fed by one [`Subscriber`] per scenario.
///
/// ```
/// let m = chaos_harness::report::metrics::Metrics::new();
/// assert!(m.encode().contains("# TYPE chaos_faults_injected_total counter"));
/// ```
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every chaos metric registered (families with no samples yet).
    pub fn new() -> Self {
        let f = Families {
            scenarios_started: Family::default(),
            scenarios: Family::default(),
            scenario_duration: Family::new_with_constructor(recovery_histogram),
            tests: Family::default(),
            last_test_passed: Family::default(),
            last_run_timestamp: Gauge::default(),
            last_run_failed: Gauge::default(),
            faults_injected: Family::default(),
            faults_confirmed: Family::default(),
            faults_not_injected: Family::default(),
            faults_cleared: Family::default(),
            fault_clear_failures: Family::default(),
            fault_confirmation: Family::new_with_constructor(confirm_histogram),
            verdicts: Family::default(),
            recovery: Family::new_with_constructor(recovery_histogram),
            last_recovery: Family::default(),
            requests: Family::default(),
            request_duration: Family::new_with_constructor(latency_histogram),
            guard_trips: Counter::default(),
            fixture_events: Family::default(),
            monitor_cpu: Family::default(),
            monitor_rss: Family::default(),
            monitor_fds: Family::default(),
            monitor_threads: Family::default(),
            monitor_processes: Family::default(),
            events: Family::default(),
            scrapes: Counter::default(),
        };
        // Every registered fault kind starts at 0, so a first failure is an increase (alerts
        // use `increase()`) and dashboards show the kinds before they are used.
        for entry in crate::registry::faults() {
            let k = kind(entry.name);
            for family in [&f.faults_injected, &f.faults_confirmed, &f.faults_not_injected] {
                let _ = family.get_or_create(&k);
            }
        }
        f.guard_trips.inc_by(0);
        let mut r = Registry::default();
        r.register("chaos_scenarios_started", "Scenarios started", f.scenarios_started.clone());
        r.register("chaos_scenarios", "Scenarios finished, by result (passed, failed)", f.scenarios.clone());
        r.register_with_unit(
            "chaos_scenario_duration",
            "Duration of a scenario, from its start to its verdict",
            Unit::Seconds,
            f.scenario_duration.clone(),
        );
        r.register("chaos_tests", "Tests (scenario runs with setup and teardown) by result", f.tests.clone());
        r.register(
            "chaos_test_last_passed",
            "1 if the scenario's last run passed, 0 if it failed",
            f.last_test_passed.clone(),
        );
        r.register_with_unit(
            "chaos_last_run_timestamp",
            "When the run last finished a test (Unix time)",
            Unit::Seconds,
            f.last_run_timestamp.clone(),
        );
        r.register("chaos_last_run_failed_tests", "Tests of this run that failed so far", f.last_run_failed.clone());
        r.register("chaos_faults_injected", "Faults whose injection started, by kind", f.faults_injected.clone());
        r.register("chaos_faults_confirmed", "Faults confirmed in effect, by kind", f.faults_confirmed.clone());
        r.register(
            "chaos_faults_not_injected",
            "Faults that could not be injected or confirmed, by kind",
            f.faults_not_injected.clone(),
        );
        r.register("chaos_faults_cleared", "Faults cleared with proof, by kind", f.faults_cleared.clone());
        r.register(
            "chaos_fault_clear_failures",
            "Fault clears that failed (teardown undoes them), by kind",
            f.fault_clear_failures.clone(),
        );
        r.register_with_unit(
            "chaos_fault_confirmation",
            "Harness: time from starting an injection to its confirmation, by kind",
            Unit::Seconds,
            f.fault_confirmation.clone(),
        );
        r.register(
            "chaos_criterion_verdicts",
            "Criterion verdicts by criterion kind and result (passed, failed)",
            f.verdicts.clone(),
        );
        r.register_with_unit(
            "chaos_recovery",
            "Time from the first fault's confirmation to the recovery phase",
            Unit::Seconds,
            f.recovery.clone(),
        );
        r.register_with_unit(
            "chaos_last_recovery",
            "The scenario's last recovery time",
            Unit::Seconds,
            f.last_recovery.clone(),
        );
        r.register("chaos_requests", "Load requests that ended, by phase and outcome", f.requests.clone());
        r.register_with_unit(
            "chaos_request_duration",
            "Latency of successful load requests, by phase",
            Unit::Seconds,
            f.request_duration.clone(),
        );
        r.register("chaos_guard_trips", "Guards that tripped and stopped a scenario", f.guard_trips.clone());
        r.register(
            "chaos_fixture_events",
            "Fixture lifecycle events (started, exited, restarted, reexeced)",
            f.fixture_events.clone(),
        );
        r.register_with_unit(
            "chaos_monitor_cpu",
            "CPU time (user + system) used by the live processes of a fixture's role",
            Unit::Seconds,
            f.monitor_cpu.clone(),
        );
        r.register_with_unit(
            "chaos_monitor_rss",
            "Resident memory of the processes of a fixture's role",
            Unit::Bytes,
            f.monitor_rss.clone(),
        );
        r.register("chaos_monitor_open_fds", "Open file descriptors of a fixture's role", f.monitor_fds.clone());
        r.register("chaos_monitor_threads", "Threads of the processes of a fixture's role", f.monitor_threads.clone());
        r.register("chaos_monitor_processes", "Live processes of a fixture's role", f.monitor_processes.clone());
        r.register("chaos_events", "Harness: events on the stream, by event kind", f.events.clone());
        r.register("chaos_metrics_scrapes", "Harness: /metrics requests served", f.scrapes.clone());
        Self { inner: Arc::new(Inner { registry: r, f }) }
    }

    /// A subscriber for one scenario's event stream; `scenario` labels the scenario-level
    /// metrics (empty: the name from `ScenarioStarted`).
    pub fn subscriber(&self, scenario: &str) -> MetricsSubscriber {
        MetricsSubscriber {
            f: self.inner.f.clone(),
            label: scenario.to_string(),
            scenario: scenario.to_string(),
            phase: Phase::Baseline,
            started: None,
            first_confirmed: None,
            recovered: false,
            injecting: HashMap::new(),
        }
    }

    /// Records a finished test (a scenario with its setup and teardown) for the run-level
    /// metrics: tests by result, the scenario's last result, the run's failure count.
    ///
    /// ```
    /// let m = chaos_harness::report::metrics::Metrics::new();
    /// m.record_test("beam-sigkill", false);
    /// assert!(m.encode().contains("chaos_last_run_failed_tests 1"));
    /// ```
    pub fn record_test(&self, scenario: &str, passed: bool) {
        let f = &self.inner.f;
        let result = if passed { "passed" } else { "failed" };
        f.tests.get_or_create(&ScenarioResult { scenario: scenario.into(), result: result.into() }).inc();
        f.last_test_passed.get_or_create(&ScenarioLabel { scenario: scenario.into() }).set(i64::from(passed));
        if !passed {
            f.last_run_failed.inc();
        }
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        f.last_run_timestamp.set(now.as_secs_f64());
    }

    /// The exposition in the Prometheus text format (0.0.4).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an encoder error would be a bug in a label value.
        if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry) {
            out.push_str(&format!("# encoding failed: {e}\n"));
        }
        out
    }

    /// Writes the exposition to `path` atomically (a temp file renamed over it), as a
    /// node-exporter textfile collector expects.
    pub fn write_textfile(&self, path: &Path) -> Result<(), crate::Error> {
        let io = |source: std::io::Error| crate::Error::Io {
            what: "writing the metrics file".into(),
            path: path.to_path_buf(),
            source,
            fix: "choose a writable path with --metrics-file PATH".into(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("prom.tmp");
        std::fs::write(&tmp, self.encode()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

/// The metrics subscriber of one scenario's stream (see [`Metrics::subscriber`]).
#[derive(Debug)]
pub struct MetricsSubscriber {
    f: Families,
    label: String,
    scenario: String,
    phase: Phase,
    started: Option<Duration>,
    first_confirmed: Option<Duration>,
    recovered: bool,
    injecting: HashMap<u32, Duration>,
}

fn event_name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::ScenarioStarted { .. } => "scenario_started",
        EventKind::StepStarted { .. } => "step_started",
        EventKind::PhaseEntered { .. } => "phase_entered",
        EventKind::FaultInjecting { .. } => "fault_injecting",
        EventKind::FaultConfirmed { .. } => "fault_confirmed",
        EventKind::FaultNotInjected { .. } => "fault_not_injected",
        EventKind::FaultCleared { .. } => "fault_cleared",
        EventKind::FaultClearFailed { .. } => "fault_clear_failed",
        EventKind::CriterionVerdict { .. } => "criterion_verdict",
        EventKind::LoadStarted { .. } => "load_started",
        EventKind::LoadSample { .. } => "load_sample",
        EventKind::LoadStopped { .. } => "load_stopped",
        EventKind::GuardTripped { .. } => "guard_tripped",
        EventKind::FixtureStarted { .. } => "fixture_started",
        EventKind::FixtureExited { .. } => "fixture_exited",
        EventKind::FixtureRestarted { .. } => "fixture_restarted",
        EventKind::FixtureReexeced { .. } => "fixture_reexeced",
        EventKind::MonitorSample { .. } => "monitor_sample",
        EventKind::Note { .. } => "note",
        EventKind::ScenarioFinished { .. } => "scenario_finished",
    }
}

fn kind(k: &str) -> KindLabel {
    KindLabel { kind: if k.is_empty() { "custom".into() } else { k.to_string() } }
}

impl MetricsSubscriber {
    fn scenario(&self) -> ScenarioLabel {
        ScenarioLabel { scenario: self.scenario.clone() }
    }
}

impl Subscriber for MetricsSubscriber {
    fn on_event(&mut self, event: &Event) {
        let f = &self.f;
        f.events.get_or_create(&EventLabel { event: event_name(&event.kind).into() }).inc();
        match &event.kind {
            EventKind::ScenarioStarted { scenario, .. } => {
                self.scenario = if self.label.is_empty() { scenario.clone() } else { self.label.clone() };
                self.phase = Phase::Baseline;
                self.started = Some(event.at);
                self.first_confirmed = None;
                self.recovered = false;
                self.injecting.clear();
                f.scenarios_started.get_or_create(&self.scenario()).inc();
            }
            EventKind::ScenarioFinished { passed } => {
                let result = if *passed { "passed" } else { "failed" };
                f.scenarios
                    .get_or_create(&ScenarioResult { scenario: self.scenario.clone(), result: result.into() })
                    .inc();
                if let Some(t0) = self.started.take() {
                    f.scenario_duration
                        .get_or_create(&self.scenario())
                        .observe(event.at.saturating_sub(t0).as_secs_f64());
                }
            }
            EventKind::PhaseEntered { phase } => {
                self.phase = phase.clone();
                if *phase == Phase::Recovery
                    && !self.recovered
                    && let Some(confirmed) = self.first_confirmed
                {
                    self.recovered = true;
                    let secs = event.at.saturating_sub(confirmed).as_secs_f64();
                    f.recovery.get_or_create(&self.scenario()).observe(secs);
                    f.last_recovery.get_or_create(&self.scenario()).set(secs);
                }
            }
            EventKind::FaultInjecting { fault } => {
                self.injecting.insert(fault.id, event.at);
                f.faults_injected.get_or_create(&kind(&fault.kind)).inc();
            }
            EventKind::FaultConfirmed { fault, .. } => {
                f.faults_confirmed.get_or_create(&kind(&fault.kind)).inc();
                if let Some(t) = self.injecting.remove(&fault.id) {
                    f.fault_confirmation
                        .get_or_create(&kind(&fault.kind))
                        .observe(event.at.saturating_sub(t).as_secs_f64());
                }
                self.first_confirmed.get_or_insert(event.at);
            }
            EventKind::FaultNotInjected { fault, .. } => {
                self.injecting.remove(&fault.id);
                f.faults_not_injected.get_or_create(&kind(&fault.kind)).inc();
            }
            EventKind::FaultCleared { fault, .. } => {
                f.faults_cleared.get_or_create(&kind(&fault.kind)).inc();
            }
            EventKind::FaultClearFailed { fault, .. } => {
                f.fault_clear_failures.get_or_create(&kind(&fault.kind)).inc();
            }
            EventKind::CriterionVerdict { criterion_kind: k, passed, .. } => {
                let criterion = if k.is_empty() { "custom".to_string() } else { k.clone() };
                let result = if *passed { "passed" } else { "failed" };
                f.verdicts.get_or_create(&CriterionResult { criterion, result: result.into() }).inc();
            }
            EventKind::LoadSample { window } => {
                let phase = self.phase.to_string();
                for (outcome, n) in &window.by_outcome {
                    f.requests
                        .get_or_create(&PhaseOutcome { phase: phase.clone(), outcome: outcome.clone() })
                        .inc_by(*n);
                }
                let h = f.request_duration.get_or_create(&PhaseLabel { phase });
                for us in &window.latencies_us {
                    h.observe(*us as f64 / 1e6);
                }
            }
            EventKind::MonitorSample { fixture, role, sample } => {
                let l = RoleLabel { fixture: fixture.clone(), role: role.clone() };
                let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                f.monitor_cpu.get_or_create(&l).set(sample.cpu_secs());
                f.monitor_rss.get_or_create(&l).set(int(sample.rss_bytes));
                f.monitor_fds.get_or_create(&l).set(int(sample.fds));
                f.monitor_threads.get_or_create(&l).set(int(sample.threads));
                f.monitor_processes.get_or_create(&l).set(int(sample.processes));
            }
            EventKind::GuardTripped { .. } => {
                f.guard_trips.inc();
            }
            EventKind::FixtureStarted { .. } => {
                f.fixture_events.get_or_create(&EventLabel { event: "started".into() }).inc();
            }
            EventKind::FixtureExited { .. } => {
                f.fixture_events.get_or_create(&EventLabel { event: "exited".into() }).inc();
            }
            EventKind::FixtureRestarted { .. } => {
                f.fixture_events.get_or_create(&EventLabel { event: "restarted".into() }).inc();
            }
            EventKind::FixtureReexeced { .. } => {
                f.fixture_events.get_or_create(&EventLabel { event: "reexeced".into() }).inc();
            }
            _ => {}
        }
    }
}

/// Serves `GET /metrics` on a loopback (or any) address from a background thread until
/// dropped or [`MetricsServer::stop`]ped.
///
/// ```
/// use chaos_harness::report::metrics::{Metrics, MetricsServer};
/// let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), Metrics::new()).unwrap();
/// let body = chaos_harness::report::metrics::http_get(server.addr(), "/metrics").unwrap();
/// assert!(body.contains("chaos_faults_injected_total"));
/// server.stop();
/// ```
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and starts serving `metrics`.
    pub fn start(addr: SocketAddr, metrics: Metrics) -> Result<Self, crate::Error> {
        let listener = TcpListener::bind(addr).map_err(|e| crate::Error::Io {
            what: format!("binding the metrics server to {addr}"),
            path: Default::default(),
            source: e,
            fix: "choose a free address with --metrics-addr HOST:PORT (port 0 picks one)".into(),
        })?;
        let addr = listener.local_addr().unwrap_or(addr);
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("chaos-metrics".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        serve(conn, &metrics);
                    }
                }
            })
            .map_err(|e| crate::Error::Io {
                what: "starting the metrics server thread".into(),
                path: Default::default(),
                source: e,
                fix: "raise the process's thread limit".into(),
            })?;
        Ok(Self { addr, stop, thread: Some(thread) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and joins the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(mut conn: TcpStream, metrics: &Metrics) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, ctype, body) = if method != "GET" && method != "HEAD" {
        ("405 Method Not Allowed", "text/plain", "only GET /metrics\n".to_string())
    } else if path == "/metrics" || path.starts_with("/metrics?") {
        metrics.inner.f.scrapes.inc();
        ("200 OK", CONTENT_TYPE, metrics.encode())
    } else {
        ("404 Not Found", "text/plain", "chaos metrics are at /metrics\n".to_string())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    if method != "HEAD" {
        let _ = conn.write_all(body.as_bytes());
    }
}

/// Error of [`push`] and [`http_get`].
#[derive(Debug, thiserror::Error)]
#[error("{what} {url}: {cause}; {fix}")]
pub struct HttpError {
    what: &'static str,
    url: String,
    cause: String,
    fix: &'static str,
}

fn split_http_url(url: &str) -> Result<(String, String), HttpError> {
    let err = |cause: &str| HttpError {
        what: "sending to",
        url: url.to_string(),
        cause: cause.to_string(),
        fix: "give the URL as http://HOST:PORT[/PATH] (https is not supported; use a local relay)",
    };
    let rest = url.strip_prefix("http://").ok_or_else(|| err("not an http:// URL"))?;
    let (host, path) = rest.split_once('/').map_or((rest, String::new()), |(h, p)| (h, format!("/{p}")));
    if host.is_empty() {
        return Err(err("no host"));
    }
    Ok((host.to_string(), path.trim_end_matches('/').to_string()))
}

fn http(host: &str, request: &[u8]) -> std::io::Result<(u16, String)> {
    use std::net::ToSocketAddrs;
    let addr = host
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "host resolves to no address"))?;
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    conn.write_all(request)?;
    let mut resp = Vec::new();
    conn.read_to_end(&mut resp)?;
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_string());
    Ok((status, body))
}

/// Pushes the exposition to a Prometheus Pushgateway: `PUT {url}/metrics/job/{job}` (replacing
/// the job's previous group).
///
/// ```no_run
/// let m = chaos_harness::report::metrics::Metrics::new();
/// chaos_harness::report::metrics::push(&m, "http://127.0.0.1:9091", "chaos").unwrap();
/// ```
pub fn push(metrics: &Metrics, url: &str, job: &str) -> Result<(), HttpError> {
    let url = format!("{}/metrics/job/{job}", url.trim_end_matches('/'));
    send("PUT", &url, CONTENT_TYPE, &metrics.encode())
}

/// `POST`s `body` to a plain `http://` URL (OTLP/HTTP export uses it); `Ok` on a 2xx answer.
pub fn http_post(url: &str, content_type: &str, body: &str) -> Result<(), HttpError> {
    send("POST", url, content_type, body)
}

fn send(method: &str, url: &str, content_type: &str, body: &str) -> Result<(), HttpError> {
    let (host, path) = split_http_url(url)?;
    let path = if path.is_empty() { "/".to_string() } else { path };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let fail = |cause: String| HttpError {
        what: "sending to",
        url: format!("http://{host}{path}"),
        cause,
        fix: "check that the receiver (Pushgateway, OTLP collector) runs there",
    };
    match http(&host, request.as_bytes()) {
        Ok((200..=299, _)) => Ok(()),
        Ok((status, body)) => Err(fail(format!("HTTP {status}: {}", body.trim()))),
        Err(e) => Err(fail(e.to_string())),
    }
}

/// `GET path` from a plain HTTP server, returning the body of a 2xx answer (a small client for
/// tests and examples).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<String, HttpError> {
    let host = addr.to_string();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let fail = |cause: String| HttpError {
        what: "fetching",
        url: format!("http://{host}{path}"),
        cause,
        fix: "check that the server runs there",
    };
    match http(&host, request.as_bytes()) {
        Ok((200..=299, body)) => Ok(body),
        Ok((status, body)) => Err(fail(format!("HTTP {status}: {}", body.trim()))),
        Err(e) => Err(fail(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::Confirmation;
    use crate::observe::{EventStream, FaultRef, LoadWindow};

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
    }

    #[test]
    fn a_scenario_timeline_becomes_counters_and_histograms() {
        let m = Metrics::new();
        let s = EventStream::new();
        s.subscribe(m.subscriber("kill-web"));
        let fault = FaultRef { id: 0, kind: "kill".into(), description: "SIGKILL web (pid 42)".into() };
        s.emit(EventKind::ScenarioStarted { scenario: "kill web".into(), seed: 1 });
        s.emit(EventKind::PhaseEntered { phase: Phase::Baseline });
        let window = |lat: &[u64], errors: u64| LoadWindow {
            ok: lat.len() as u64,
            failed: errors,
            by_outcome: [("ok".to_string(), lat.len() as u64), ("error".to_string(), errors)].into_iter().collect(),
            latencies_us: lat.to_vec(),
            ..Default::default()
        };
        s.emit(EventKind::LoadSample { window: window(&[1000, 2000, 3000], 0) });
        s.emit(EventKind::FaultInjecting { fault: fault.clone() });
        let confirmation = Confirmation::new("SIGKILL web (pid 42)", "pid 42 gone", vec![42]);
        s.emit(EventKind::FaultConfirmed { fault: fault.clone(), confirmation, one_shot: true });
        s.emit(EventKind::PhaseEntered { phase: Phase::Fault });
        s.emit(EventKind::LoadSample { window: window(&[400_000], 2) });
        s.emit(EventKind::CriterionVerdict {
            criterion: "no orphans within 5s".into(),
            criterion_kind: "no_orphans".into(),
            passed: true,
            detail: "none".into(),
        });
        s.emit(EventKind::PhaseEntered { phase: Phase::Recovery });
        s.emit(EventKind::ScenarioFinished { passed: true });
        let t = m.encode();
        assert_eq!(value(&t, "chaos_faults_injected_total{kind=\"kill\"}"), Some(1.0), "{t}");
        assert_eq!(value(&t, "chaos_faults_confirmed_total{kind=\"kill\"}"), Some(1.0));
        assert_eq!(value(&t, "chaos_requests_total{phase=\"baseline\",outcome=\"ok\"}"), Some(3.0), "{t}");
        assert_eq!(value(&t, "chaos_requests_total{phase=\"fault\",outcome=\"error\"}"), Some(2.0));
        assert_eq!(value(&t, "chaos_request_duration_seconds_count{phase=\"baseline\"}"), Some(3.0));
        assert_eq!(value(&t, "chaos_request_duration_seconds_sum{phase=\"baseline\"}"), Some(0.006));
        assert_eq!(value(&t, "chaos_request_duration_seconds_count{phase=\"fault\"}"), Some(1.0));
        assert_eq!(value(&t, "chaos_criterion_verdicts_total{criterion=\"no_orphans\",result=\"passed\"}"), Some(1.0));
        assert_eq!(value(&t, "chaos_scenarios_total{scenario=\"kill-web\",result=\"passed\"}"), Some(1.0));
        assert_eq!(value(&t, "chaos_recovery_seconds_count{scenario=\"kill-web\"}"), Some(1.0));
        assert_eq!(value(&t, "chaos_fault_confirmation_seconds_count{kind=\"kill\"}"), Some(1.0));
        assert!(!t.contains("42"), "no pid may leak into a label: {t}");
    }

    #[test]
    fn monitor_samples_become_gauges_per_role() {
        let m = Metrics::new();
        let s = EventStream::new();
        s.subscribe(m.subscriber("leak"));
        let sample = |rss: u64, fds: u64| crate::observe::ResourceSample {
            at: Duration::from_millis(100),
            cpu_us: 1_500_000,
            rss_bytes: rss,
            fds,
            threads: 3,
            processes: 2,
        };
        let emit = |role: &str, rss, fds| {
            s.emit(EventKind::MonitorSample { fixture: "pit".into(), role: role.into(), sample: sample(rss, fds) })
        };
        emit("workers", 1000, 10);
        emit("beam", 5000, 40);
        emit("workers", 3000, 12);
        let t = m.encode();
        assert_eq!(value(&t, "chaos_monitor_rss_bytes{fixture=\"pit\",role=\"workers\"}"), Some(3000.0), "{t}");
        assert_eq!(value(&t, "chaos_monitor_rss_bytes{fixture=\"pit\",role=\"beam\"}"), Some(5000.0));
        assert_eq!(value(&t, "chaos_monitor_open_fds{fixture=\"pit\",role=\"workers\"}"), Some(12.0));
        assert_eq!(value(&t, "chaos_monitor_threads{fixture=\"pit\",role=\"beam\"}"), Some(3.0));
        assert_eq!(value(&t, "chaos_monitor_processes{fixture=\"pit\",role=\"beam\"}"), Some(2.0));
        assert_eq!(value(&t, "chaos_monitor_cpu_seconds{fixture=\"pit\",role=\"beam\"}"), Some(1.5));
    }

    #[test]
    fn pushgateway_urls_are_checked() {
        assert_eq!(split_http_url("http://127.0.0.1:9091/").unwrap(), ("127.0.0.1:9091".into(), String::new()));
        assert_eq!(split_http_url("http://gw:9091/base").unwrap(), ("gw:9091".into(), "/base".into()));
        let e = split_http_url("https://gw").unwrap_err().to_string();
        assert!(e.contains("https is not supported"), "{e}");
    }

    #[test]
    fn push_sends_the_exposition_to_a_local_receiver() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let receiver = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut got = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head, then Content-Length bytes of body.
            loop {
                let n = c.read(&mut chunk).unwrap();
                got.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse().ok())
                        .unwrap();
                    if body.len() >= len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
            String::from_utf8(got).unwrap()
        });
        let m = Metrics::new();
        m.record_test("beam-sigkill", true);
        push(&m, &format!("http://{addr}"), "chaos").unwrap();
        let got = receiver.join().unwrap();
        assert!(got.starts_with("PUT /metrics/job/chaos HTTP/1.1\r\n"), "{got}");
        assert!(got.contains("chaos_tests_total{scenario=\"beam-sigkill\",result=\"passed\"} 1"), "{got}");
    }

    #[test]
    fn the_server_serves_metrics_and_404s_elsewhere() {
        let m = Metrics::new();
        m.record_test("x", true);
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), m).unwrap();
        let body = http_get(server.addr(), "/metrics").unwrap();
        assert!(body.contains("chaos_tests_total{scenario=\"x\",result=\"passed\"} 1"), "{body}");
        let e = http_get(server.addr(), "/").unwrap_err().to_string();
        assert!(e.contains("HTTP 404"), "{e}");
        let addr = server.addr();
        server.stop();
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err(), "stopped server still listens");
    }
}
