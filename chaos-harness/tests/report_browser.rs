//! The HTML report as a person sees it: reports of a passing, a failing, an interrupted and a
//! 20-cycle run, each opened in headless Chromium (Debian's `chromium`, installed by
//! scripts/install-deps). Checks: no console errors, no request leaves the page (every request
//! Chromium makes goes to a local proxy that records it), the legend, axis ticks, labelled
//! fault/clear annotations and named phases are text inside the rendered charts' SVG; a screenshot of each goes to
//! target/report-screenshots/. A negative control (a page with a console error and an external
//! image) proves both checks can fail.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chaos_harness::report::{
    CriterionVerdict, PhaseReport, RunReport, ScenarioReport, SeriesPoint, TestRecord, TestStatus, TimelineEvent, html,
};
use chaos_harness::scenario::{FixtureLog, ProcessChange};

fn chromium() -> PathBuf {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|b| chaos_harness::host::capability::which(b))
        .expect("chromium not found on PATH: run scripts/install-deps (apt-get install chromium)")
}

/// A scenario with a baseline, a fault (nothing succeeds for 1 s) and a recovery.
fn scenario(name: &str, passed: bool) -> ScenarioReport {
    let series = (0..40)
        .map(|i| {
            let outage = (16..20).contains(&i);
            SeriesPoint {
                at_ms: i * 250,
                ok: if outage { 0 } else { 20 + i % 3 },
                failed: if outage { 6 } else { u64::from(i == 20) },
                p50_us: (!outage).then_some(1500 + i * 20),
                p99_us: (!outage).then_some(if i > 20 && i < 24 { 90_000 } else { 6000 }),
                ..Default::default()
            }
        })
        .collect();
    let phase = |phase: &str, from_ms, to_ms| PhaseReport {
        phase: phase.into(),
        from_ms,
        to_ms,
        total: 200,
        ok: 190,
        errors: 6,
        lost: 4,
        p50_us: Some(1600),
        p99_us: Some(7000),
        ..Default::default()
    };
    ScenarioReport {
        name: name.into(),
        verdicts: vec![
            CriterionVerdict {
                criterion: "no_orphans within 5s".into(),
                passed,
                detail: if passed {
                    "0 survivors after 0.4 s".into()
                } else {
                    "pid 4242 (python3 grpc_server.py) survived, ppid 1, sid 4242".into()
                },
            },
            CriterionVerdict {
                criterion: "recovers within 30s".into(),
                passed: true,
                detail: "healthy after 2.1 s".into(),
            },
        ],
        events: vec![
            TimelineEvent { at_ms: 0, kind: "phase".into(), detail: "phase baseline".into() },
            TimelineEvent { at_ms: 4000, kind: "fault".into(), detail: "inject #1 sigkill pit.beam".into() },
            TimelineEvent { at_ms: 5000, kind: "clear".into(), detail: "cleared #1 restarted pit.beam".into() },
        ],
        phases: vec![phase("baseline", 0, 4000), phase("fault", 4000, 5000), phase("recovery", 5000, 10000)],
        series,
        impact: None,
        processes: if passed {
            vec![]
        } else {
            vec![ProcessChange {
                fixture: "pit".into(),
                pid: 4242,
                ppid: 1,
                pgid: 4242,
                sid: 4242,
                command: "python3 grpc_server.py --port 50051".into(),
                change: "survived".into(),
                at_ms: None,
            }]
        },
        logs: if passed {
            vec![]
        } else {
            vec![FixtureLog {
                file: "pit.stderr.log".into(),
                first_line: 40,
                lines: vec!["worker 4242 ready".into(), "beam: heartbeat missed for worker 4242".into()],
                scenario_from: 1,
            }]
        },
    }
}

fn record(name: &str, passed: bool) -> TestRecord {
    let status = if passed {
        TestStatus::Passed
    } else {
        TestStatus::Failed {
            message: "criterion `no_orphans within 5s` violated: pid 4242 survived".into(),
            detail: "criterion `no_orphans within 5s` violated: pid 4242 survived\nseed 7".into(),
        }
    };
    let mut r = TestRecord::new(name, status);
    r.duration = Duration::from_millis(9800);
    r.seed = Some(7);
    r.scenario = Some(scenario(name, passed));
    r.output = "beam: started\nworker 1: ready".into();
    r
}

fn run(tests: Vec<TestRecord>) -> RunReport {
    let mut r = RunReport::new("snakepit-chaos", tests);
    r.command_line = "chaos run".into();
    r.started_unix_ms = 1_796_000_000_000;
    r
}

fn reports() -> Vec<(&'static str, RunReport)> {
    let passing = run(vec![record("beam-sigkill", true), record("worker-sigkill", true)]);
    let mut failing = run(vec![record("beam-sigkill", true), record("worker-sigkill", false)]);
    failing.defects = vec!["no_heartbeat".into()];
    let mut interrupted = run(vec![record("beam-sigkill", true), {
        let mut r = TestRecord::new(
            "worker-sigkill",
            TestStatus::Failed { message: "interrupted by SIGINT after 3.2 s".into(), detail: "interrupted".into() },
        );
        r.interrupted = true;
        r
    }]);
    interrupted.interrupted = Some("SIGINT after 13.1 s".into());
    let mut cycles = run((1..=20)
        .flat_map(|c| {
            ["beam-sigkill", "worker-sigkill"]
                .map(|s| record(&format!("cycle{c:04}::{s}"), !(s == "worker-sigkill" && (c % 7 == 0 || c == 20))))
        })
        .collect());
    cycles.cycles = 20;
    vec![("passing", passing), ("failing", failing), ("interrupted", interrupted), ("cycles20", cycles)]
}

/// A local HTTP proxy that records the first line of every request sent through it.
fn recording_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s = Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            let mut line = String::new();
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = BufReader::new(&conn).read_line(&mut line);
            s.lock().unwrap().push(line.trim().to_string());
        }
    });
    (port, seen)
}

struct Opened {
    dom: String,
    console_errors: Vec<String>,
    requests: Vec<String>,
}

/// Opens `page` in headless Chromium through the recording proxy; saves a screenshot.
fn open(page: &Path, screenshot: &Path) -> Opened {
    let (port, seen) = recording_proxy();
    let profile = tempfile::tempdir().unwrap();
    let common = |cmd: &mut Command| {
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-pings",
            "--disable-domain-reliability",
            "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,Translate,MediaRouter",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--proxy-server=http://127.0.0.1:{port}"))
        .arg("--proxy-bypass-list=<-loopback>")
        .arg(format!("--user-data-dir={}", profile.path().display()));
    };
    let url = format!("file://{}", page.display());
    let mut dump = Command::new(chromium());
    common(&mut dump);
    let out = dump.arg("--dump-dom").arg(&url).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut shot = Command::new(chromium());
    common(&mut shot);
    let out2 = shot
        .args(["--window-size=1100,1600"])
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(screenshot.exists(), "no screenshot: {}", String::from_utf8_lossy(&out2.stderr));
    std::thread::sleep(Duration::from_millis(200));
    let console_errors = log
        .lines()
        .chain(String::from_utf8_lossy(&out2.stderr).lines())
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect();
    // Chromium's own background services (clock, component updates, sign-in) are not the
    // page's requests.
    const BROWSER_OWN: &[&str] = &["google.com", "googleapis.com", "gvt1.com", "gstatic.com"];
    let requests = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| {
            // A connection that sent no request line (Chromium preconnects) carried nothing.
            if r.trim().is_empty() {
                return false;
            }
            let host = r.split_whitespace().nth(1).unwrap_or_default();
            let host = host.trim_start_matches("http://").split(['/', ':']).next().unwrap_or_default();
            !BROWSER_OWN.iter().any(|d| host == *d || host.ends_with(&format!(".{d}")))
        })
        .cloned()
        .collect();
    Opened { dom: String::from_utf8_lossy(&out.stdout).into_owned(), console_errors, requests }
}

/// The text of every `<text>` element inside the page's `<svg>` elements, trimmed.
fn svg_texts(dom: &str) -> Vec<String> {
    dom.split("<svg")
        .skip(1)
        .filter_map(|svg| svg.split_once("</svg>").map(|(inside, _)| inside))
        .flat_map(|svg| svg.split("<text").skip(1))
        .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim().to_string()))
        .collect()
}

fn shots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("report-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn reports_open_cleanly_in_chromium_with_legends_ticks_and_fault_labels() {
    let dir = tempfile::tempdir().unwrap();
    let shots = shots_dir();
    for (name, report) in reports() {
        let page = dir.path().join(format!("{name}.html"));
        std::fs::write(&page, html::render(&report)).unwrap();
        let o = open(&page, &shots.join(format!("{name}.png")));
        assert!(o.console_errors.is_empty(), "{name}: console errors: {:?}", o.console_errors);
        assert!(o.requests.is_empty(), "{name}: requests left the page: {:?}", o.requests);
        assert!(o.dom.contains("<html"), "{name}: no DOM");
        assert!(!o.dom.contains("Some(") && !o.dom.contains(" { "), "{name}: Debug output in the page");
        if name != "interrupted" {
            // What the charts (plotters' SVG) show, read from the text inside the rendered <svg>s.
            let texts = svg_texts(&o.dom);
            let has = |t: &str| texts.iter().any(|x| x == t);
            assert!(["p50", "p99", "ok", "failed or lost"].iter().all(|t| has(t)), "{name}: legend: {texts:?}");
            assert!(has("0 s") && has("2 s"), "{name}: x ticks: {texts:?}");
            assert!(texts.iter().any(|t| t.ends_with(" ms")), "{name}: latency y ticks: {texts:?}");
            assert!(texts.iter().any(|t| t.ends_with(" req")), "{name}: throughput y ticks: {texts:?}");
            assert!(has("fault: inject #1 sigkill pit.beam"), "{name}: labelled fault: {texts:?}");
            assert!(texts.iter().any(|t| t.starts_with("clear: cleared #1")), "{name}: labelled clear: {texts:?}");
            assert!(["baseline", "fault", "recovery"].iter().all(|t| has(t)), "{name}: phases named: {texts:?}");
            assert!(o.dom.contains("fill=\"#FDE8E8\""), "{name}: the fault phase shaded");
        }
        match name {
            "passing" => assert!(o.dom.contains("class=\"zero\">0 failed"), "0 failed is not red"),
            "failing" => {
                assert!(o.dom.contains("class=\"fail\">1 failed") && o.dom.contains("no_heartbeat"));
                assert!(o.dom.contains("<b>violated:</b> no_orphans within 5s"), "root cause names the criterion");
                assert!(o.dom.contains("4.000 s fault: inject #1 sigkill pit.beam"), "and the fault before it");
                assert!(o.dom.contains("<td>4242</td>") && o.dom.contains("python3 grpc_server.py --port 50051"));
                assert!(o.dom.contains("beam: heartbeat missed for worker 4242"), "the fixture's log lines");
            }
            "interrupted" => {
                assert!(o.dom.contains("Interrupted (SIGINT after 13.1 s)") && o.dom.contains("INTERRUPTED"));
                assert!(o.dom.contains("class=\"fail\">interrupted</td>"), "the summary says interrupted");
            }
            "cycles20" => {
                assert!(o.dom.contains("<td>20</td><td>17</td>"), "per-scenario summary");
                assert!(o.dom.contains("85% (64-95%)"), "pass rate with its Wilson interval");
                assert!(o.dom.contains(">flaky<"));
                assert_eq!(o.dom.matches("<details class=\"cycle\">").count(), 37, "passing cycles collapsed");
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn the_browser_checks_catch_a_console_error_and_an_external_request() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><img src=\"http://report-assets.invalid/x.png\"><script>console.error('boom')</script></body></html>",
    )
    .unwrap();
    let o = open(&page, &shots_dir().join("negative-control.png"));
    assert!(o.console_errors.iter().any(|l| l.contains("boom")), "console error not seen: {:?}", o.console_errors);
    assert!(o.requests.iter().any(|r| r.contains("report-assets.invalid")), "request not seen: {:?}", o.requests);
}
