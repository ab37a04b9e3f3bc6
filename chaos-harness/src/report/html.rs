//! A self-contained HTML report (no scripts, no external assets) with inline SVG charts: the
//! run header (date, command line, host, harness, profile, defects, seed), a summary per
//! scenario (pass rate with a Wilson interval over repeated runs, worst duration, flaky), then
//! one section per run: verdicts first, a latency chart (p50/p99, gaps where nothing succeeded)
//! and a throughput chart by outcome, both with phases shaded, axis ticks, a legend and labelled
//! fault/clear annotations; failure detail, timeline and logs collapsed. The page is built with
//! maud (which escapes every value), the charts with plotters' SVG backend, inlined.

use maud::{DOCTYPE, Markup, PreEscaped, html};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

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
                (criteria_stats(run))
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

/// Per criterion over repeated runs (`run.statistics`, when filled): how often it held and the
/// worst time it took to hold, with the run that showed it.
fn criteria_stats(run: &RunReport) -> Markup {
    if run.statistics.iter().all(|s| s.runs < 2) {
        return html! {};
    }
    html! {
        table.criteria-stats {
            tr {
                th { "scenario" } th { "criterion" } th { "held" }
                th { "worst time to hold" } th { "in run" }
            }
            @for s in &run.statistics {
                @for c in &s.criteria {
                    tr {
                        td { (s.scenario) }
                        td { (c.criterion) }
                        td class=(if c.held < c.judged { "fail" } else { "zero" }) { (c.held) " of " (c.judged) }
                        td { (secs(c.worst_ms)) }
                        td { (c.worst_run) }
                    }
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

/// Chart size in pixels.
const W: u32 = 820;
const H: u32 = 210;

/// Phase shading colours.
fn phase_fill(phase: &str) -> RGBColor {
    match phase {
        "baseline" => RGBColor(0xe8, 0xf0, 0xfe),
        "fault" => RGBColor(0xfd, 0xe8, 0xe8),
        "recovery" => RGBColor(0xe8, 0xf7, 0xe8),
        _ => RGBColor(0xf0, 0xf0, 0xf0),
    }
}

const FAULT: RGBColor = RGBColor(0xcc, 0x22, 0x22);
const CLEAR: RGBColor = RGBColor(0x22, 0x88, 0x22);
const AXIS: RGBColor = RGBColor(0x88, 0x88, 0x88);

/// One chart drawn with plotters' SVG backend: phases shaded and named, axis ticks with labels
/// (seconds on x, `y_label` on y), fault and clear annotations labelled above the plot, then
/// `draw` adds the data series (their labels make the legend).
fn chart<F>(sc: &ScenarioReport, y_max: f64, y_label: &dyn Fn(&f64) -> String, draw: F) -> Markup
where
    F: FnOnce(&mut PlotChart<'_, '_>) -> Result<(), String>,
{
    let t_end = sc.series.iter().map(|p| p.at_ms + 250).chain(sc.events.iter().map(|e| e.at_ms)).max();
    let t_max = t_end.unwrap_or(1000).max(1) as f64 / 1000.0;
    let mut svg = String::new();
    let drawn = (|| -> Result<(), String> {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&RGBColor(0xfc, 0xfc, 0xfc)).map_err(|e| e.to_string())?;
        let mut c = ChartBuilder::on(&root)
            .margin_top(40)
            .margin_right(14)
            .margin_left(6)
            .x_label_area_size(26)
            .y_label_area_size(62)
            .build_cartesian_2d(0f64..t_max, 0f64..y_max * 1.05)
            .map_err(|e| e.to_string())?;
        let small = ("sans-serif", 12).into_font();
        for p in &sc.phases {
            let (a, b) = (p.from_ms as f64 / 1000.0, p.to_ms as f64 / 1000.0);
            c.draw_series(std::iter::once(Rectangle::new(
                [(a, 0.0), (b, y_max * 1.05)],
                phase_fill(&p.phase).filled(),
            )))
            .map_err(|e| e.to_string())?;
            c.draw_series(std::iter::once(
                EmptyElement::at((a, 0.0))
                    + Text::new(p.phase.clone(), (3, -12), small.color(&RGBColor(0x66, 0x66, 0x66))),
            ))
            .map_err(|e| e.to_string())?;
        }
        c.configure_mesh()
            .disable_x_mesh()
            .x_labels(10)
            .y_labels(5)
            .x_label_formatter(&|v| format!("{v} s"))
            .y_label_formatter(y_label)
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .bold_line_style(RGBColor(0xe4, 0xe4, 0xe4))
            .axis_style(AXIS)
            .label_style(small.clone())
            .draw()
            .map_err(|e| e.to_string())?;
        let marks = sc.events.iter().filter(|e| e.kind == "fault" || e.kind == "clear");
        for (k, e) in marks.enumerate() {
            let x = e.at_ms as f64 / 1000.0;
            let color = if e.kind == "fault" { FAULT } else { CLEAR };
            let label: String = e.detail.chars().take(40).collect();
            c.draw_series(std::iter::once(PathElement::new(vec![(x, 0.0), (x, y_max * 1.05)], color.stroke_width(1))))
                .map_err(|e| e.to_string())?;
            // Labels above the plot, alternating rows so neighbours do not overlap.
            let dy = -6 - 12 * (k % 2) as i32;
            c.draw_series(std::iter::once(
                EmptyElement::at((x, y_max * 1.05))
                    + Text::new(format!("{}: {label}", e.kind), (2, dy - 8), small.color(&color)),
            ))
            .map_err(|e| e.to_string())?;
        }
        draw(&mut c)?;
        c.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(AXIS)
            .label_font(small)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())
    })();
    match drawn {
        Ok(()) => html! { div.chart { (PreEscaped(svg)) } },
        Err(e) => html! { p.fail { "chart not drawn: " (e) } },
    }
}

/// The plotters chart type every chart draws on.
type PlotChart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn latency_chart(sc: &ScenarioReport) -> Markup {
    let y_max = sc.series.iter().filter_map(|p| p.p99_us.or(p.p50_us)).max().unwrap_or(1).max(1) as f64;
    chart(sc, y_max, &|v| us(Some(*v as u64)), |c| {
        for (name, pick, color) in [("p50", 0usize, RGBColor(0x33, 0x66, 0xcc)), ("p99", 1, RGBColor(0xcc, 0x66, 0x33))]
        {
            // One line per run of buckets with successes: a gap where none succeeded; a run of
            // one bucket is a dot.
            let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
            for p in &sc.series {
                match if pick == 0 { p.p50_us } else { p.p99_us } {
                    Some(v) => runs.last_mut().expect("one run").push(((p.at_ms as f64 + 125.0) / 1000.0, v as f64)),
                    None => runs.push(Vec::new()),
                }
            }
            runs.retain(|r| !r.is_empty());
            // The legend entry comes from the first series drawn under the name (an empty one
            // when nothing succeeded at all).
            if runs.is_empty() {
                runs.push(Vec::new());
            }
            let mut labelled = false;
            for run in runs {
                let anno = if let [(x, y)] = run.as_slice() {
                    c.draw_series(std::iter::once(Circle::new((*x, *y), 2, color.filled())))
                } else {
                    c.draw_series(LineSeries::new(run, color.stroke_width(2)))
                }
                .map_err(|e| e.to_string())?;
                if !labelled {
                    anno.label(name)
                        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
                    labelled = true;
                }
            }
        }
        Ok(())
    })
}

fn throughput_chart(sc: &ScenarioReport) -> Markup {
    let y_max = sc.series.iter().map(|p| p.ok + p.failed).max().unwrap_or(1).max(1) as f64;
    let (ok, failed) = (RGBColor(0x44, 0xaa, 0x44), RGBColor(0xdd, 0x33, 0x33));
    chart(sc, y_max, &|v| format!("{v} req"), |c| {
        let bar = |p: &super::SeriesPoint, lo: u64, hi: u64, color: RGBColor| {
            let x = p.at_ms as f64 / 1000.0;
            Rectangle::new([(x, lo as f64), (x + 0.25 * 0.85, hi as f64)], color.filled())
        };
        c.draw_series(sc.series.iter().map(|p| bar(p, 0, p.ok, ok)))
            .map_err(|e| e.to_string())?
            .label("ok")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], ok.filled()));
        c.draw_series(sc.series.iter().map(|p| bar(p, p.ok, p.ok + p.failed, failed)))
            .map_err(|e| e.to_string())?
            .label("failed or lost")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], failed.filled()));
        Ok(())
    })
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

    /// The text of every `<text>` element inside the page's SVG charts, trimmed.
    fn svg_texts(page: &str) -> Vec<String> {
        page.split("<text")
            .skip(1)
            .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim().to_string()))
            .collect()
    }

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
        let texts = svg_texts(&page);
        for want in ["p50", "p99", "ok", "failed or lost", "0 s", "1 s", "fault: SIGKILL beam"] {
            assert!(texts.iter().any(|t| t == want), "`{want}` (legend, x ticks, labelled fault) in {texts:?}");
        }
        assert!(texts.iter().any(|t| t.ends_with(" ms")) && texts.iter().any(|t| t.ends_with(" req")), "y ticks");
        assert!(page.contains("<polyline") && page.contains("<rect"));
        // Two runs (before and after the outage) for each of p50 and p99: the run before is a
        // line, the one after holds a single bucket and is drawn as a dot. Nothing crosses the gap.
        let data_line =
            |stroke: &str| format!("<polyline fill=\"none\" opacity=\"1\" stroke=\"{stroke}\" stroke-width=\"2\"");
        assert_eq!(page.matches(&data_line("#3366CC")).count() + page.matches(&data_line("#CC6633")).count(), 2);
        assert_eq!(page.matches("<circle").count(), 2);
        assert!(page.contains("SIGKILL beam") && page.contains("violated") && page.contains("pid 42 survived"));
    }
}
