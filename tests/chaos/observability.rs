//! Observability (issue [observability]): `chaos run --metrics-addr` scraped by a real
//! Prometheus, the exposition and the shipped rules checked by `promtool`, the Grafana
//! dashboard's queries checked against the metrics that exist.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chaos_harness::prelude::*;
use chaos_harness::report::metrics::http_get;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A Debian `prometheus` package binary (`prometheus`, `promtool`), or an error saying how to
/// install it.
fn prometheus_bin(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file()).with_context(|| {
        format!("{name} not found on PATH: install it with scripts/install-deps (apt-get install prometheus)")
    })
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `text` percent-encoded for a query string.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A Prometheus server on a loopback port with a temp config and storage; killed and removed on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
    /// Unix seconds at which instant queries are evaluated (`None`: now). A target that has
    /// exited is marked stale at the next failed scrape, and its series vanish from queries
    /// evaluated after that.
    eval_at: std::cell::Cell<Option<f64>>,
}

impl Prometheus {
    fn start(scrape: SocketAddr) -> anyhow::Result<Self> {
        let bin = prometheus_bin("prometheus")?;
        let dir = tempfile::Builder::new().prefix("chaos-harness-prometheus-").tempdir()?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 250ms\n  scrape_timeout: 200ms\nscrape_configs:\n  - job_name: chaos\n    static_configs:\n      - targets: ['{scrape}']\n"
            ),
        )?;
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting prometheus")?;
        let p = Self { child, addr, _dir: dir, eval_at: std::cell::Cell::new(None) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(p.addr, "/-/ready").is_err() {
            ensure!(Instant::now() < deadline, "prometheus not ready within 30 s:\n{}", p.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(p)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query's result: (labels, value) per series.
    fn query(&self, promql: &str) -> anyhow::Result<Vec<(serde_json::Value, f64)>> {
        let time = self.eval_at.get().map(|t| format!("&time={t:.3}")).unwrap_or_default();
        let body = http_get(self.addr, &format!("/api/v1/query?query={}{time}", urlencode(promql)))?;
        let v: serde_json::Value =
            serde_json::from_str(&body).with_context(|| format!("prometheus answered {body}"))?;
        ensure!(v["status"] == "success", "query {promql} failed: {body}");
        let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
        result
            .into_iter()
            .map(|r| {
                let value = r["value"][1].as_str().unwrap_or("nan").parse::<f64>()?;
                Ok((r["metric"].clone(), value))
            })
            .collect()
    }

    /// The single value of `promql`, waiting up to 10 s for it to appear.
    fn value(&self, promql: &str) -> anyhow::Result<f64> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = self.query(promql)?;
            if let [(_, v)] = r.as_slice() {
                return Ok(*v);
            }
            ensure!(Instant::now() < deadline, "{promql}: expected one series, got {r:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn promtool(args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    use std::io::Write;
    let mut child = Command::new(prometheus_bin("promtool")?)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(text) = stdin {
        child.stdin.take().context("promtool stdin")?.write_all(text.as_bytes())?;
    }
    drop(child.stdin.take());
    let out = child.wait_with_output()?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    ensure!(out.status.success(), "promtool {} failed:\n{text}", args.join(" "));
    Ok(text)
}

/// The series names an exposition has or declares (`chaos_x_total`, `chaos_y_seconds_bucket`,
/// ...): a family declared by its `# TYPE` line exists even before its first sample.
fn sample_names(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for l in exposition.lines().filter(|l| !l.is_empty()) {
        if let Some(decl) = l.strip_prefix("# TYPE ") {
            let mut parts = decl.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else { continue };
            if kind == "histogram" {
                names.extend(["_bucket", "_sum", "_count"].map(|s| format!("{name}{s}")));
            } else {
                names.insert(name.to_string());
            }
        } else if !l.starts_with('#')
            && let Some(name) = l.split(['{', ' ']).next()
        {
            names.insert(name.to_string());
        }
    }
    names
}

/// Every metric name a PromQL text uses.
fn metric_names(promql: &str) -> BTreeSet<String> {
    let re = regex_lite(promql);
    re.into_iter().collect()
}

/// `chaos_...` identifiers in `text` (a tiny scanner; no regex dependency in the suite).
fn regex_lite(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("chaos_") {
        let start = i + pos;
        let boundary = start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        if boundary {
            out.push(text[start..end].to_string());
        }
        i = end;
    }
    out
}

fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// The dashboard's and the rules' queries name only metrics the run exposed.
fn check_queries_against(exposition: &str) -> anyhow::Result<()> {
    let names = sample_names(exposition);
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(workspace_root().join("docs/grafana/chaos.json"))?)
            .context("docs/grafana/chaos.json does not parse")?;
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    let panels = dashboard["panels"].as_array().context("dashboard without panels")?;
    for p in panels {
        let targets = p["targets"].as_array().map_or(0, Vec::len);
        ensure!(targets > 0, "panel {} has no query", p["title"]);
    }
    ensure!(exprs.len() >= panels.len(), "fewer queries than panels");
    let rules = std::fs::read_to_string(workspace_root().join("docs/prometheus/chaos-rules.yml"))?;
    let mut unknown = BTreeSet::new();
    for expr in exprs.iter().map(String::as_str).chain([rules.as_str()]) {
        let used = metric_names(expr);
        ensure!(!used.is_empty() || !expr.contains("chaos"), "no metric in {expr}");
        unknown.extend(used.into_iter().filter(|n| !names.contains(n)));
    }
    ensure!(unknown.is_empty(), "queries name metrics the exposition lacks: {unknown:?}\nexposition names: {names:?}");
    Ok(())
}

/// `chaos run --only worker-sigkill --metrics-addr` scraped by a real Prometheus: the fault
/// counter and the latency histogram are in Prometheus with the run's values; the exposition
/// passes `promtool check metrics`; the dashboard's and rules' queries name metrics that exist.
#[chaos_test(tags = ["observability", "snakepit"], timeout = "170s", requires = ["elixir", "cgroups"])]
fn prometheus_scrapes_chaos_run() -> ChaosResult {
    let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let prom = Prometheus::start(metrics_addr)?;
    let dir = tempfile::Builder::new().prefix("chaos-harness-obs-").tempdir()?;
    let file = dir.path().join("chaos.prom");
    let out = Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args(["run", "--only", "worker-sigkill", "--metrics-linger", "3s"])
        .arg("--metrics-addr")
        .arg(metrics_addr.to_string())
        .arg("--metrics-file")
        .arg(&file)
        .arg("--report")
        .arg(dir.path().join("report"))
        .env_remove("CHAOS_TAGS")
        .output()
        .context("running chaos run")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "chaos run failed:\n{stderr}");
    // Query the run as it was during its 3 s linger (scraped every 250 ms), before Prometheus
    // marked its series stale.
    let exited = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs_f64();
    prom.eval_at.set(Some(exited - 0.5));
    let exposition = std::fs::read_to_string(&file).context("reading --metrics-file")?;

    // What the run's own report says: the requests that succeeded (its per-phase table).
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report/report.json"))?)?;
    let phases = report["tests"][0]["scenario"]["phases"].as_array().context("report without phases")?;
    let ok_requests: f64 = phases.iter().filter_map(|p| p["ok"].as_f64()).sum();
    ensure!(ok_requests > 0.0, "the scenario's load had no successful request: {report}");

    ensure!(prom.value("chaos_faults_injected_total{job=\"chaos\",kind=\"kill\"}")? == 1.0, "one kill fault injected");
    ensure!(prom.value("chaos_faults_confirmed_total{kind=\"kill\"}")? == 1.0, "one kill fault confirmed");
    ensure!(prom.value("sum(chaos_faults_not_injected_total)")? == 0.0, "no fault failed to inject");
    let count = prom.value("sum(chaos_request_duration_seconds_count)")?;
    ensure!(count == ok_requests, "histogram count {count} != successful requests {ok_requests}");
    let phases = prom.query("chaos_request_duration_seconds_count")?;
    let phase_names: BTreeSet<String> =
        phases.iter().filter_map(|(m, _)| m["phase"].as_str().map(str::to_string)).collect();
    // The 2 s requests end after the kill: in the fault or recovery phase, labelled by phase.
    ensure!(
        !phase_names.is_empty() && phase_names.iter().all(|p| ["baseline", "fault", "recovery"].contains(&p.as_str())),
        "phases {phase_names:?}"
    );
    // The scenario's requests sleep 2 s: the median lies in the bucket holding 2 s.
    let p50 = prom.value("histogram_quantile(0.5, sum by (le) (chaos_request_duration_seconds_bucket))")?;
    ensure!((1.0..=4.1).contains(&p50), "median latency {p50} s, expected about 2 s");
    let all = prom.value("sum(chaos_request_duration_seconds_bucket{le=\"+Inf\"})")?;
    ensure!(all == count, "+Inf bucket {all} != count {count}");
    ensure!(prom.value("chaos_tests_total{scenario=\"worker-sigkill\",result=\"passed\"}")? == 1.0, "test passed");
    ensure!(prom.value("chaos_metrics_scrapes_total")? >= 1.0, "scrapes counted");

    promtool(&["check", "metrics"], Some(&exposition))?;
    check_queries_against(&exposition)?;
    Ok(())
}

/// The shipped alerting rules pass `promtool check rules`.
#[chaos_test(tags = ["observability"], timeout = "30s")]
fn shipped_rules_pass_promtool() -> ChaosResult {
    let rules = workspace_root().join("docs/prometheus/chaos-rules.yml");
    let out = promtool(&["check", "rules", &rules.display().to_string()], None)?;
    ensure!(out.contains("SUCCESS"), "{out}");
    Ok(())
}

/// The checks themselves catch a dashboard query naming a metric that does not exist.
#[chaos_test(tags = ["observability"], timeout = "10s")]
fn query_check_catches_unknown_metric() -> ChaosResult {
    let names = sample_names("chaos_a_total{kind=\"x\"} 1\n# TYPE chaos_b gauge\n# TYPE chaos_h histogram\n");
    let expected = ["chaos_a_total", "chaos_b", "chaos_h_bucket", "chaos_h_count", "chaos_h_sum"];
    ensure!(names == expected.iter().map(|s| s.to_string()).collect(), "{names:?}");
    let used = metric_names("sum by (le) (rate(chaos_c_bucket[5m])) / chaos_a_total");
    ensure!(used == BTreeSet::from(["chaos_a_total".to_string(), "chaos_c_bucket".to_string()]), "{used:?}");
    if check_queries_against("chaos_a_total 1\n").is_ok() {
        bail!("a dashboard checked against an exposition without its metrics passed");
    }
    Ok(())
}

/// A scenario's spans reach a local OTLP/HTTP receiver, sent by `opentelemetry-otlp` from spans
/// that `tracing-opentelemetry` built, with the right structure: one root span for the
/// scenario, step spans under it, the fault's span under its inject step (with the
/// confirmation), a verdict event on the expect step, every span inside the scenario's time.
#[chaos_test(tags = ["observability", "process"], timeout = "60s", requires = ["cgroups"])]
async fn scenario_spans_reach_an_otlp_receiver(cx: &mut Chaos) -> ChaosResult {
    use chaos_harness::fixture::Command as Cmd;
    use chaos_harness::report::trace::{TraceRecorder, TraceSink, export};
    use std::io::{Read, Write};

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let receiver = std::thread::spawn(move || -> anyhow::Result<(String, String)> {
        let (mut c, _) = listener.accept()?;
        c.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut got = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = c.read(&mut chunk)?;
            got.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .context("no content-length")?;
                if body.len() >= len || n == 0 {
                    c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
                    return Ok((head.to_string(), body.to_string()));
                }
            }
            ensure!(n > 0, "connection closed early");
        }
    });

    let recorder = TraceRecorder::new();
    cx.events().subscribe(recorder.clone());
    let f = cx.start(Cmd::new("sleep").name("sleeper").arg("60")).await?;
    cx.scenario("kill the sleeper")
        .wait(Duration::from_millis(100))
        .inject(Fault::kill(f.main()))
        .expect(Criterion::no_orphans().of(&f).within(Duration::from_secs(2)))
        .run()
        .await?;
    export(&recorder, &TraceSink::Otlp(format!("http://{addr}/v1/traces")))?;
    let (head, body) = receiver.join().map_err(|_| anyhow::anyhow!("receiver panicked"))??;
    ensure!(head.starts_with("POST /v1/traces HTTP/1.1"), "{head}");
    ensure!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    // Sent by the OpenTelemetry OTLP exporter, not by hand.
    ensure!(head.to_ascii_lowercase().contains("user-agent: otel-otlp-exporter-rust/"), "{head}");
    let req: serde_json::Value = serde_json::from_str(&body)?;
    let spans = req["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().context("no spans")?.clone();
    let by_name = |prefix: &str| {
        spans.iter().filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with(prefix))).cloned().collect::<Vec<_>>()
    };
    // The OTLP JSON encoding writes a root's parent as absent or empty.
    let roots: Vec<_> =
        spans.iter().filter(|s| s.get("parentSpanId").and_then(|p| p.as_str()).is_none_or(str::is_empty)).collect();
    ensure!(roots.len() == 1, "one root span: {spans:#?}");
    let root = roots[0];
    ensure!(root["name"] == "scenario kill the sleeper", "{root}");
    let steps = by_name("step ");
    ensure!(steps.len() == 3, "wait, inject, expect: {spans:#?}");
    for s in &steps {
        ensure!(s["parentSpanId"] == root["spanId"] && s["traceId"] == root["traceId"], "step under the scenario: {s}");
    }
    let faults = by_name("fault kill");
    ensure!(faults.len() == 1, "{spans:#?}");
    let inject =
        steps.iter().find(|s| s["name"].as_str().is_some_and(|n| n.contains("inject"))).context("inject step")?;
    ensure!(faults[0]["parentSpanId"] == inject["spanId"], "fault under its inject step: {spans:#?}");
    ensure!(faults[0]["events"][0]["name"] == "confirmed", "{}", faults[0]);
    let expect =
        steps.iter().find(|s| s["name"].as_str().is_some_and(|n| n.contains("expect"))).context("expect step")?;
    let verdict =
        expect["events"].as_array().and_then(|e| e.iter().find(|e| e["name"] == "verdict")).context("verdict event")?;
    ensure!(verdict["attributes"].to_string().contains("no_orphans"), "{verdict}");
    let start =
        |s: &serde_json::Value| s["startTimeUnixNano"].as_str().and_then(|t| t.parse::<u128>().ok()).unwrap_or(0);
    let end = |s: &serde_json::Value| s["endTimeUnixNano"].as_str().and_then(|t| t.parse::<u128>().ok()).unwrap_or(0);
    for s in &spans {
        ensure!(start(s) >= start(root) && end(s) <= end(root) && start(s) <= end(s), "span inside the scenario: {s}");
    }
    Ok(())
}
