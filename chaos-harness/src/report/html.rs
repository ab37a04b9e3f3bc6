//! A self-contained HTML report (no scripts, no external assets) with inline SVG charts: the
//! run header (date, command line, host, harness, profile, defects, seed), a summary per
//! scenario (pass rate with a Wilson interval over repeated runs, worst duration, flaky), then
//! one section per run: verdicts first, a latency chart (p50/p99, gaps where nothing succeeded)
//! and a throughput chart by outcome, both with phases shaded, axis ticks, a legend and labelled
//! fault/clear annotations; failure detail, timeline and logs collapsed. All markup (page and
//! SVG) is built with maud, which escapes every value.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::{RunReport, ScenarioReport, TestStatus};

/// Renders the run as one HTML page.
///
/// ```
/// use chaos_harness::report::{html, RunReport, TestRecord, TestStatus};
/// let page = html::render(&RunReport::new("smoke", vec![TestRecord::new("a<b>", TestStatus::Passed)]));
/// assert!(page.contains("a&lt;b&gt;") && page.starts_with("<!DOCTYPE html>"));
/// ```
pub fn render(run: &RunReport) -> String {
    let failed = run.failed();
    let repeated = run.cycles > 1;
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "chaos report: " (run.suite) }
                style { (PreEscaped(CSS)) }
            }
            body {
                h1 { "chaos report: " (run.suite) }
                (header(run))
                p.summary {
                    span.pass { (run.passed()) " passed" } " "
                    span class=(if failed > 0 { "fail" } else { "zero" }) { (failed) " failed" } " "
                    span.skip { (run.skipped()) " skipped" }
                }
                (by_scenario(run))
                @for (i, t) in run.tests.iter().enumerate() {
                    @let (class, label) = status(t);
                    @let body = test_body(t);
                    section id={ "t" (i) } {
                        // Repeated runs: failures expanded, passing repetitions collapsed.
                        @if repeated && !matches!(t.status, TestStatus::Failed { .. }) {
                            details.cycle {
                                summary { (t.name) " " span class=(class) { (label) } }
                                (body)
                            }
                        } @else {
                            h2 { (t.name) " " span class=(class) { (label) } }
                            (body)
                        }
                    }
                }
            }
        }
    };
    page.into_string()
}

/// One test's section: why it failed or was skipped, its scenario, the collapsed detail and logs.
fn test_body(t: &super::TestRecord) -> Markup {
    html! {
        @match &t.status {
            TestStatus::Failed { message, .. } => p.failure { (message) },
            TestStatus::Skipped { reason: Some(r) } => p { "skipped: " (r) },
            _ => {}
        }
        @if let Some(sc) = &t.scenario {
            (scenario(sc))
        }
        @if let TestStatus::Failed { detail, .. } = &t.status {
            details { summary { "failure detail" } pre { (clean(detail)) } }
        }
        @if !t.output.trim().is_empty() {
            details { summary { "captured output" } pre { (clean(&t.output)) } }
        }
    }
}

/// The run header: when, what, where, with which settings.
fn header(run: &RunReport) -> Markup {
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_millis(run.started_unix_ms);
    let or_dash = |s: &str| if s.is_empty() { "-".to_string() } else { s.to_string() };
    let mut rows = vec![
        ("date", humantime::format_rfc3339_seconds(when).to_string()),
        ("command", or_dash(&run.command_line)),
        ("host", or_dash(&run.host)),
        ("harness", run.harness_version.clone()),
        ("profile", run.profile.clone().unwrap_or_else(|| "default".into())),
        ("defects", if run.defects.is_empty() { "none".into() } else { run.defects.join(", ") }),
        ("seed", run.seed.map(|s| s.to_string()).unwrap_or_else(|| "random per scenario (see each)".into())),
    ];
    if run.cycles > 1 {
        rows.push(("cycles", run.cycles.to_string()));
    }
    html! {
        table.header {
            @for (k, v) in &rows {
                tr { th { (k) } td { (v) } }
            }
        }
        @if let Some(why) = &run.interrupted {
            p.interrupted {
                "Interrupted (" (why) "): the scenarios below finished; the one running was cut short."
            }
        }
    }
}

/// The scenario's name without the cycle prefix (`cycle0003::beam-sigkill` -> `beam-sigkill`).
pub(crate) fn base_name(name: &str) -> &str {
    match name.split_once("::") {
        Some((c, rest)) if c.starts_with("cycle") && c[5..].chars().all(|d| d.is_ascii_digit()) => rest,
        _ => name,
    }
}

/// Wilson score interval (95 %) of `k` successes in `n` trials.
///
/// ```
/// let (lo, hi) = chaos_harness::report::html::wilson(20, 20);
/// assert!(lo > 0.83 && lo < 0.84 && hi == 1.0);
/// ```
pub fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (n, p, z) = (n as f64, k as f64 / n as f64, 1.96f64);
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * ((p * (1.0 - p) / n) + z * z / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Summary per scenario: runs, passes, pass rate with its interval, worst duration.
fn by_scenario(run: &RunReport) -> Markup {
    let mut names: Vec<&str> = Vec::new();
    for t in &run.tests {
        let n = base_name(&t.name);
        if !names.contains(&n) {
            names.push(n);
        }
    }
    html! {
        table.scenarios {
            tr {
                th { "scenario" } th { "runs" } th { "passed" } th { "failed" }
                th { "pass rate (95% interval)" } th { "worst duration" } th { "verdict" }
            }
            @for n in names {
                @let runs: Vec<(usize, &super::TestRecord)> =
                    run.tests.iter().enumerate().filter(|(_, t)| base_name(&t.name) == n).collect();
                @let passed = runs.iter().filter(|(_, t)| t.status == TestStatus::Passed).count();
                @let failed = runs.iter().filter(|(_, t)| matches!(t.status, TestStatus::Failed { .. })).count();
                @let counted = passed + failed;
                @let (lo, hi) = wilson(passed, counted);
                @let worst = runs.iter().map(|(_, t)| t.duration).max().unwrap_or_default();
                @let first = runs.first().map(|(i, _)| *i).unwrap_or(0);
                @let interrupted = runs.iter().any(|(_, t)| t.interrupted);
                @let (class, verdict) = match (passed, failed) {
                    (0, 1) if interrupted => ("fail", "interrupted"),
                    (_, 0) if passed > 0 => ("pass", "passed"),
                    (0, _) if failed > 0 => ("fail", "failed"),
                    (0, 0) => ("skip", "skipped"),
                    _ => ("flaky", "flaky"),
                };
                tr {
                    td { a href={ "#t" (first) } { (n) } }
                    td { (runs.len()) }
                    td { (passed) }
                    td class=(if failed > 0 { "fail" } else { "zero" }) { (failed) }
                    td {
                        @if counted == 0 {
                            "-"
                        } @else {
                            (format!("{:.0}% ({:.0}-{:.0}%)", 100.0 * passed as f64 / counted as f64, lo * 100.0, hi * 100.0))
                        }
                    }
                    td { (format!("{:.2} s", worst.as_secs_f64())) }
                    td class=(class) { (verdict) }
                }
            }
        }
    }
}

fn secs(ms: u64) -> String {
    format!("{:.3} s", ms as f64 / 1000.0)
}

/// Why it failed: the violated criterion and what it observed, then what happened before it
/// (faults, clears, fixture exits and restarts, guards) with their times.
fn root_cause(sc: &ScenarioReport) -> Markup {
    let Some(v) = sc.verdicts.iter().find(|v| !v.passed) else { return html! {} };
    // The verdict's time on the timeline, when the engine recorded it; else the end.
    let at = sc
        .events
        .iter()
        .find(|e| e.kind == "verdict" && e.detail.contains(&v.criterion))
        .or(sc.events.last())
        .map(|e| e.at_ms)
        .unwrap_or(0);
    let before: Vec<_> = sc
        .events
        .iter()
        .filter(|e| e.at_ms <= at && matches!(e.kind.as_str(), "fault" | "clear" | "fixture" | "guard"))
        .collect();
    // Survivors first: they are what a failed orphan or recovery criterion is about.
    let mut processes: Vec<_> = sc.processes.iter().collect();
    processes.sort_by_key(|p| (["survived", "started", "exited"].iter().position(|c| *c == p.change), p.pid));
    html! {
        div.rootcause {
            h3 { "root cause" }
            p { b { "violated:" } " " (v.criterion) " " br; b { "observed:" } " " (v.detail) }
            @if !before.is_empty() {
                p { "before it (verdict at " (secs(at)) "):" }
                ul {
                    @for e in before {
                        li { (secs(e.at_ms)) " " (e.kind) ": " (e.detail) }
                    }
                }
            }
            @if !processes.is_empty() {
                p { "processes when it failed (survived: alive before the scenario and still alive):" }
                table.processes {
                    tr {
                        th { "change" } th { "fixture" } th { "pid" } th { "ppid" } th { "pgid" } th { "sid" }
                        th { "command" }
                    }
                    @for p in &processes {
                        tr class=(p.change) {
                            td { (p.change) @if let Some(at) = p.at_ms { " at " (secs(at)) } }
                            td { (p.fixture) } td { (p.pid) } td { (p.ppid) } td { (p.pgid) } td { (p.sid) }
                            td { code { (clean(&p.command)) } }
                        }
                    }
                }
            }
            @for l in &sc.logs {
                details.log {
                    summary {
                        "log " (l.file) ": lines " (l.first_line) "-" (l.first_line + l.lines.len().saturating_sub(1))
                        " (" (l.during_scenario().len()) " written during the scenario)"
                    }
                    pre {
                        @for (i, line) in l.lines.iter().enumerate() {
                            @if i < l.scenario_from { span.before { (clean(line)) } "\n" } @else { (clean(line)) "\n" }
                        }
                    }
                }
            }
        }
    }
}

fn scenario(sc: &ScenarioReport) -> Markup {
    html! {
        (root_cause(sc))
        @if !sc.verdicts.is_empty() {
            h3 { "criteria" }
            table {
                tr { th { "criterion" } th { "verdict" } th { "observed" } }
                @for v in &sc.verdicts {
                    tr {
                        td { (v.criterion) }
                        @if v.passed { td.pass { "held" } } @else { td.fail { "violated" } }
                        td { (v.detail) }
                    }
                }
            }
        }
        @if !sc.series.is_empty() {
            h3 { "latency of successful requests" }
            (latency_chart(sc))
            h3 { "throughput by outcome" }
            (throughput_chart(sc))
        }
        @if !sc.phases.is_empty() {
            h3 { "phases" }
            table {
                tr {
                    th { "phase" } th { "from" } th { "to" } th { "requests" } th { "ok" } th { "errors" }
                    th { "lost" } th { "p50" } th { "p99" }
                }
                @for p in &sc.phases {
                    tr {
                        td { (p.phase) }
                        td { (format!("{:.1} s", p.from_ms as f64 / 1000.0)) }
                        td { (format!("{:.1} s", p.to_ms as f64 / 1000.0)) }
                        td { (p.total) } td { (p.ok) } td { (p.errors) } td { (p.lost) }
                        td { (us(p.p50_us)) } td { (us(p.p99_us)) }
                    }
                }
            }
        }
        @if !sc.events.is_empty() {
            details {
                summary { "timeline (events)" }
                table {
                    tr { th { "t" } th { "kind" } th { "what" } }
                    @for e in &sc.events {
                        tr { td { (secs(e.at_ms)) } td { (e.kind) } td { (e.detail) } }
                    }
                }
            }
        }
    }
}

const W: f64 = 820.0;
const H: f64 = 200.0;
/// Left margin (y tick labels), top margin (legend, annotation labels), bottom (x ticks).
const LEFT: f64 = 64.0;
const TOP: f64 = 46.0;
const BOTTOM: f64 = 30.0;
const RIGHT: f64 = 12.0;

/// "Nice" tick values from 0 to at least `max` (1, 2, 5 x 10^k steps), about `n` of them.
fn ticks(max: f64, n: usize) -> Vec<f64> {
    let max = if max > 0.0 { max } else { 1.0 };
    let raw = max / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let mut v = Vec::new();
    let mut t = 0.0;
    while t <= max + step * 1e-9 {
        v.push(t);
        t += step;
    }
    if *v.last().unwrap_or(&0.0) < max {
        v.push(t);
    }
    v
}

/// A coordinate in SVG user units, one decimal.
fn c(v: f64) -> String {
    format!("{v:.1}")
}

/// The frame every chart shares: scales, phases, ticks, annotations and legend.
struct Chart<'a> {
    sc: &'a ScenarioReport,
    t_max: f64,
    y_max: f64,
    x_ticks: Vec<f64>,
    y_ticks: Vec<f64>,
}

impl<'a> Chart<'a> {
    fn new(sc: &'a ScenarioReport, y_max: f64) -> Self {
        let t_end = sc.series.iter().map(|p| p.at_ms + 250).chain(sc.events.iter().map(|e| e.at_ms)).max();
        let x_ticks = ticks(t_end.unwrap_or(1000).max(1) as f64 / 1000.0, 8);
        let y_ticks = ticks(y_max, 4);
        Self {
            sc,
            t_max: x_ticks.last().copied().unwrap_or(1.0) * 1000.0,
            y_max: y_ticks.last().copied().unwrap_or(1.0),
            x_ticks,
            y_ticks,
        }
    }

    fn x(&self, ms: f64) -> f64 {
        LEFT + ms / self.t_max * (W - LEFT - RIGHT)
    }

    fn y(&self, v: f64) -> f64 {
        TOP + (H - TOP - BOTTOM) * (1.0 - v / self.y_max)
    }

    /// The whole chart: phases shaded, axis ticks with labels, the axes, fault and clear
    /// annotations, the legend, then `body` (the data).
    fn render(&self, y_label: impl Fn(f64) -> String, legend: &[(&str, &str)], body: Markup) -> Markup {
        let (x0, x1, y0, y1) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
        let annotations: Vec<_> = self.sc.events.iter().filter(|e| e.kind == "fault" || e.kind == "clear").collect();
        // Legend entries laid out from the right edge.
        let mut lx = x1 - 10.0;
        let mut entries = Vec::new();
        for (name, color) in legend.iter().rev() {
            lx -= 8.0 + 6.5 * name.len() as f64 + 14.0;
            entries.push((lx, *name, *color));
        }
        html! {
            svg.chart viewBox={ "0 0 " (W) " " (H) } width=(W) height=(H) role="img" font-size="10" {
                @for p in &self.sc.phases {
                    @let (a, b) = (self.x(p.from_ms as f64), self.x(p.to_ms as f64));
                    @let fill = match p.phase.as_str() {
                        "baseline" => "#e8f0fe",
                        "fault" => "#fde8e8",
                        "recovery" => "#e8f7e8",
                        _ => "#f0f0f0",
                    };
                    g.phase {
                        rect x=(c(a)) y=(y0) width=(c((b - a).max(0.5))) height=(c(y1 - y0)) fill=(fill) {}
                        text x=(c(a + 3.0)) y=(c(y1 - 4.0)) fill="#666" { (p.phase) }
                    }
                }
                @for v in &self.y_ticks {
                    @let y = self.y(*v);
                    g class="tick y" {
                        line x1=(x0) y1=(c(y)) x2=(x1) y2=(c(y)) stroke="#e4e4e4" {}
                        text x=(c(x0 - 4.0)) y=(c(y + 3.0)) text-anchor="end" { (y_label(*v)) }
                    }
                }
                @for t in &self.x_ticks {
                    @let x = self.x(t * 1000.0);
                    g class="tick x" {
                        line x1=(c(x)) y1=(y1) x2=(c(x)) y2=(c(y1 + 4.0)) stroke="#888" {}
                        text x=(c(x)) y=(c(y1 + 15.0)) text-anchor="middle" { (t) " s" }
                    }
                }
                line x1=(x0) y1=(y1) x2=(x1) y2=(y1) stroke="#888" {}
                line x1=(x0) y1=(y0) x2=(x0) y2=(y1) stroke="#888" {}
                @for (k, e) in annotations.iter().enumerate() {
                    @let x = self.x(e.at_ms as f64);
                    @let color = if e.kind == "fault" { "#c22" } else { "#282" };
                    @let label: String = e.detail.chars().take(40).collect();
                    @let ly = y0 - 2.0 - (k % 2) as f64 * 11.0;
                    g class={ "annotation " (e.kind) } {
                        line x1=(c(x)) y1=(c(ly + 2.0)) x2=(c(x)) y2=(y1) stroke=(color) stroke-dasharray="4 3" {}
                        text x=(c(x + 2.0)) y=(c(ly)) fill=(color) { (e.kind) ": " (label) }
                        title { (e.detail) }
                    }
                }
                g.legend {
                    @for (lx, name, color) in entries {
                        rect x=(c(lx)) y="4" width="10" height="10" fill=(color) {}
                        text x=(c(lx + 14.0)) y="13" { (name) }
                    }
                }
                (body)
            }
        }
    }
}

fn latency_chart(sc: &ScenarioReport) -> Markup {
    let y_max = sc.series.iter().filter_map(|p| p.p99_us.or(p.p50_us)).max().unwrap_or(1).max(1) as f64;
    let chart = Chart::new(sc, y_max);
    let mut lines: Vec<(&str, Vec<(f64, f64)>)> = Vec::new();
    for (pick, color) in [(0usize, "#36c"), (1, "#c63")] {
        // One polyline per run of buckets with successes: a gap where none succeeded.
        let mut run: Vec<(f64, f64)> = Vec::new();
        for p in &sc.series {
            match if pick == 0 { p.p50_us } else { p.p99_us } {
                Some(v) => run.push((chart.x(p.at_ms as f64 + 125.0), chart.y(v as f64))),
                None if !run.is_empty() => lines.push((color, std::mem::take(&mut run))),
                None => {}
            }
        }
        if !run.is_empty() {
            lines.push((color, run));
        }
    }
    let body = html! {
        @for (color, run) in &lines {
            @if let [(x, y)] = run.as_slice() {
                circle cx=(c(*x)) cy=(c(*y)) r="1.5" fill=(color) {}
            } @else {
                @let points: Vec<String> = run.iter().map(|(x, y)| format!("{},{}", c(*x), c(*y))).collect();
                polyline.series fill="none" stroke=(color) stroke-width="1.5" points=(points.join(" ")) {}
            }
        }
    };
    chart.render(|v| us(Some(v as u64)), &[("p50", "#36c"), ("p99", "#c63")], body)
}

fn throughput_chart(sc: &ScenarioReport) -> Markup {
    let y_max = sc.series.iter().map(|p| p.ok + p.failed).max().unwrap_or(1).max(1) as f64;
    let chart = Chart::new(sc, y_max);
    let base = chart.y(0.0);
    let body = html! {
        @for p in &sc.series {
            @let x = chart.x(p.at_ms as f64);
            @let bw = (chart.x(p.at_ms as f64 + 250.0) - x) * 0.85;
            @let (y_ok, y_all) = (chart.y(p.ok as f64), chart.y((p.ok + p.failed) as f64));
            rect x=(c(x)) y=(c(y_ok)) width=(c(bw)) height=(c(base - y_ok)) fill="#4a4" {}
            rect x=(c(x)) y=(c(y_all)) width=(c(bw)) height=(c(y_ok - y_all)) fill="#d33" {}
        }
    };
    chart.render(|v| format!("{v} req"), &[("ok", "#4a4"), ("failed or lost", "#d33")], body)
}

fn status(t: &super::TestRecord) -> (&'static str, &'static str) {
    match &t.status {
        TestStatus::Passed => ("pass", "passed"),
        TestStatus::Failed { .. } if t.interrupted => ("fail", "INTERRUPTED"),
        TestStatus::Failed { .. } => ("fail", "FAILED"),
        TestStatus::Skipped { .. } => ("skip", "skipped"),
    }
}

fn us(v: Option<u64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 1_000_000 => format!("{:.2} s", v as f64 / 1e6),
        Some(v) if v >= 1_000 => format!("{:.1} ms", v as f64 / 1e3),
        Some(v) => format!("{v} us"),
    }
}

/// Text without control characters (ANSI escapes from captured output), newlines and tabs kept;
/// maud escapes the rest.
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control() || *c == '\n' || *c == '\t').collect()
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}.pass{color:#282}.fail{color:#c22;font-weight:bold}.skip{color:#888}.zero{color:#444}.flaky{color:#b60;font-weight:bold}.interrupted{background:#fff3cd;border:1px solid #e0c060;padding:.5em}.header th{background:#f4f4f4}p.failure{color:#c22;font-weight:bold}.rootcause{border-left:4px solid #c22;padding:0 1em;background:#fff6f6}details.cycle{margin:.3em 0}tr.survived td{background:#fde8e8}pre span.before{color:#888}pre{background:#f6f6f6;padding:.5em;overflow-x:auto;max-height:30em}.chart{background:#fcfcfc;border:1px solid #eee}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CriterionVerdict, SeriesPoint, TestRecord, TimelineEvent};

    #[test]
    fn scenario_sections_and_charts_render_and_escape() {
        let mut t = TestRecord::new(
            "snakepit::beam_kill",
            TestStatus::Failed { message: "m".into(), detail: "<script>x</script>".into() },
        );
        t.scenario = Some(ScenarioReport {
            name: "beam kill".into(),
            verdicts: vec![CriterionVerdict {
                criterion: "no_orphans within 5s".into(),
                passed: false,
                detail: "pid 42 survived".into(),
            }],
            events: vec![TimelineEvent { at_ms: 1000, kind: "fault".into(), detail: "SIGKILL beam".into() }],
            phases: vec![],
            series: (0..10)
                .map(|i| SeriesPoint {
                    at_ms: i * 200,
                    ok: 10,
                    failed: i % 3,
                    // An outage at 1.2-1.6 s: nothing succeeded, no latency point.
                    p50_us: (!(6..=8).contains(&i)).then_some(500 + i * 10),
                    p99_us: (!(6..=8).contains(&i)).then_some(2000),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        let page = render(&RunReport::new("suite", vec![t]));
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;"));
        assert_eq!(page.matches("<svg").count(), 2);
        assert!(page.contains("class=\"legend\"") && page.contains("class=\"tick x\""));
        assert!(page.contains("fault: SIGKILL beam"), "labelled fault annotation");
        assert!(page.contains("<polyline") && page.contains("<rect"));
        // Two runs (before and after the outage) for each of p50 and p99: the run before is a
        // line, the one after holds a single bucket and is drawn as a dot. Nothing crosses the gap.
        assert_eq!(page.matches("<polyline class=\"series\"").count(), 2);
        assert_eq!(page.matches("r=\"1.5\"").count(), 2);
        assert!(page.contains("SIGKILL beam") && page.contains("violated") && page.contains("pid 42 survived"));
    }
}
