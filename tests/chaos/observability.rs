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
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("{name} not found on PATH: install it with scripts/install-deps (apt-get install prometheus)"))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `text` percent-encoded for a query string.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// A Prometheus server on a loopback port with a temp config and storage; killed and removed on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
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
        let p = Self { child, addr, _dir: dir };
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
        let body = http_get(self.addr, &format!("/api/v1/query?query={}", urlencode(promql)))?;
        let v: serde_json::Value = serde_json::from_str(&body).with_context(|| format!("prometheus answered {body}"))?;
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

/// The sample names of an exposition (`chaos_x_total`, `chaos_y_seconds_bucket`, ...).
fn sample_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next().map(str::to_string))
        .collect()
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
    let exposition = std::fs::read_to_string(&file).context("reading --metrics-file")?;

    // What the run itself says: the requests that succeeded, from the exposition it wrote.
    let ok_requests: f64 = exposition
        .lines()
        .filter(|l| l.starts_with("chaos_requests_total{") && l.contains("outcome=\"ok\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    ensure!(ok_requests > 0.0, "the scenario's load recorded no successful request:\n{exposition}");

    ensure!(
        prom.value("chaos_faults_injected_total{job=\"chaos\",kind=\"kill\"}")? == 1.0,
        "one kill fault injected"
    );
    ensure!(prom.value("chaos_faults_confirmed_total{kind=\"kill\"}")? == 1.0, "one kill fault confirmed");
    ensure!(prom.query("chaos_faults_not_injected_total")?.is_empty(), "no fault failed to inject");
    let count = prom.value("sum(chaos_request_duration_seconds_count)")?;
    ensure!(count == ok_requests, "histogram count {count} != successful requests {ok_requests}");
    let phases = prom.query("chaos_request_duration_seconds_count")?;
    let phase_names: BTreeSet<String> =
        phases.iter().filter_map(|(m, _)| m["phase"].as_str().map(str::to_string)).collect();
    ensure!(phase_names.contains("baseline") || phase_names.contains("fault"), "phases {phase_names:?}");
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
    let names = sample_names("chaos_a_total{kind=\"x\"} 1\n# TYPE chaos_b gauge\nchaos_b 2\n");
    ensure!(names == BTreeSet::from(["chaos_a_total".to_string(), "chaos_b".to_string()]), "{names:?}");
    let used = metric_names("sum by (le) (rate(chaos_c_bucket[5m])) / chaos_a_total");
    ensure!(used == BTreeSet::from(["chaos_a_total".to_string(), "chaos_c_bucket".to_string()]), "{used:?}");
    if check_queries_against("chaos_a_total 1\n").is_ok() {
        bail!("a dashboard checked against an exposition without its metrics passed");
    }
    Ok(())
}
