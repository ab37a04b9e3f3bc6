//! A self-contained HTML report (no scripts, no external assets) with inline SVG charts: the
//! run header (date, command line, host, harness, profile, defects, seed), a summary per
//! scenario (pass rate with a Wilson interval over repeated runs, worst duration, flaky), then
//! one section per run: verdicts first, a latency chart (p50/p99, gaps where nothing succeeded)
//! and a throughput chart by outcome, both with phases shaded, axis ticks, a legend and labelled
//! fault/clear annotations; failure detail, timeline and logs collapsed.

use std::fmt::Write;

use super::{RunReport, ScenarioReport, TestStatus};

/// Renders the run as one HTML page.
///
/// ```
/// use chaos_harness::report::{html, RunReport, TestRecord, TestStatus};
/// let page = html::render(&RunReport::new("smoke", vec![TestRecord::new("a<b>", TestStatus::Passed)]));
/// assert!(page.contains("a&lt;b&gt;") && page.starts_with("<!DOCTYPE html>"));
/// ```
pub fn render(run: &RunReport) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>chaos report: {suite}</title>\n<style>{CSS}</style></head><body>\n<h1>chaos report: {suite}</h1>\n",
        suite = esc(&run.suite),
    );
    header(&mut o, run);
    let failed = run.failed();
    let _ = writeln!(
        o,
        "<p class=\"summary\"><span class=\"pass\">{} passed</span> <span class=\"{}\">{failed} failed</span> <span class=\"skip\">{} skipped</span></p>",
        run.passed(),
        if failed > 0 { "fail" } else { "zero" },
        run.skipped(),
    );
    by_scenario(&mut o, run);
    let repeated = run.cycles > 1;
    for (i, t) in run.tests.iter().enumerate() {
        let (class, label) = status(t);
        let ok = !matches!(t.status, TestStatus::Failed { .. });
        // Repeated runs: failures expanded, passing repetitions collapsed.
        let (open, close) = if repeated && ok {
            (
                format!(
                    "<details class=\"cycle\"><summary>{} <span class=\"{class}\">{label}</span></summary>",
                    esc(&t.name)
                ),
                "</details>",
            )
        } else {
            (format!("<h2>{} <span class=\"{class}\">{label}</span></h2>", esc(&t.name)), "")
        };
        let _ = writeln!(o, "<section id=\"t{i}\">{open}");
        match &t.status {
            TestStatus::Failed { message, .. } => {
                let _ = writeln!(o, "<p class=\"failure\">{}</p>", esc(message));
            }
            TestStatus::Skipped { reason: Some(r) } => {
                let _ = writeln!(o, "<p>skipped: {}</p>", esc(r));
            }
            _ => {}
        }
        if let Some(sc) = &t.scenario {
            scenario(&mut o, sc);
        }
        if let TestStatus::Failed { detail, .. } = &t.status {
            let _ = writeln!(o, "<details><summary>failure detail</summary><pre>{}</pre></details>", esc(detail));
        }
        if !t.output.trim().is_empty() {
            let _ = writeln!(o, "<details><summary>captured output</summary><pre>{}</pre></details>", esc(&t.output));
        }
        let _ = writeln!(o, "{close}</section>");
    }
    o.push_str("</body></html>\n");
    o
}

/// The run header: when, what, where, with which settings.
fn header(o: &mut String, run: &RunReport) {
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_millis(run.started_unix_ms);
    let mut rows = vec![
        ("date", humantime::format_rfc3339_seconds(when).to_string()),
        ("command", if run.command_line.is_empty() { "-".into() } else { run.command_line.clone() }),
        ("host", if run.host.is_empty() { "-".into() } else { run.host.clone() }),
        ("harness", run.harness_version.clone()),
        ("profile", run.profile.clone().unwrap_or_else(|| "default".into())),
        ("defects", if run.defects.is_empty() { "none".into() } else { run.defects.join(", ") }),
        ("seed", run.seed.map(|s| s.to_string()).unwrap_or_else(|| "random per scenario (see each)".into())),
    ];
    if run.cycles > 1 {
        rows.push(("cycles", run.cycles.to_string()));
    }
    o.push_str("<table class=\"header\">");
    for (k, v) in rows {
        let _ = write!(o, "<tr><th>{k}</th><td>{}</td></tr>", esc(&v));
    }
    o.push_str("</table>\n");
    if let Some(why) = &run.interrupted {
        let _ = writeln!(
            o,
            "<p class=\"interrupted\">Interrupted ({}): the scenarios below finished; the one running was cut short.</p>",
            esc(why)
        );
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
fn by_scenario(o: &mut String, run: &RunReport) {
    let mut names: Vec<&str> = Vec::new();
    for t in &run.tests {
        let n = base_name(&t.name);
        if !names.contains(&n) {
            names.push(n);
        }
    }
    o.push_str("<table class=\"scenarios\"><tr><th>scenario</th><th>runs</th><th>passed</th><th>failed</th><th>pass rate (95% interval)</th><th>worst duration</th><th>verdict</th></tr>\n");
    for n in names {
        let runs: Vec<(usize, &super::TestRecord)> =
            run.tests.iter().enumerate().filter(|(_, t)| base_name(&t.name) == n).collect();
        let passed = runs.iter().filter(|(_, t)| t.status == TestStatus::Passed).count();
        let failed = runs.iter().filter(|(_, t)| matches!(t.status, TestStatus::Failed { .. })).count();
        let counted = passed + failed;
        let (lo, hi) = wilson(passed, counted);
        let worst = runs.iter().map(|(_, t)| t.duration).max().unwrap_or_default();
        let first = runs.first().map(|(i, _)| *i).unwrap_or(0);
        let interrupted = runs.iter().any(|(_, t)| t.interrupted);
        let (class, verdict) = match (passed, failed) {
            (0, 1) if interrupted => ("fail", "interrupted"),
            (_, 0) if passed > 0 => ("pass", "passed"),
            (0, _) if failed > 0 => ("fail", "failed"),
            (0, 0) => ("skip", "skipped"),
            _ => ("flaky", "flaky"),
        };
        let _ = writeln!(
            o,
            "<tr><td><a href=\"#t{first}\">{}</a></td><td>{}</td><td>{passed}</td><td class=\"{}\">{failed}</td><td>{}</td><td>{:.2} s</td><td class=\"{class}\">{verdict}</td></tr>",
            esc(n),
            runs.len(),
            if failed > 0 { "fail" } else { "zero" },
            if counted == 0 {
                "-".to_string()
            } else {
                format!("{:.0}% ({:.0}-{:.0}%)", 100.0 * passed as f64 / counted as f64, lo * 100.0, hi * 100.0)
            },
            worst.as_secs_f64(),
        );
    }
    o.push_str("</table>\n");
}

/// Why it failed: the violated criterion and what it observed, then what happened before it
/// (faults, clears, fixture exits and restarts, guards) with their times.
fn root_cause(o: &mut String, sc: &ScenarioReport) {
    let Some(v) = sc.verdicts.iter().find(|v| !v.passed) else { return };
    // The verdict's time on the timeline, when the engine recorded it; else the end.
    let at = sc
        .events
        .iter()
        .find(|e| e.kind == "verdict" && e.detail.contains(&v.criterion))
        .or(sc.events.last())
        .map(|e| e.at_ms)
        .unwrap_or(0);
    let _ = writeln!(
        o,
        "<div class=\"rootcause\"><h3>root cause</h3><p><b>violated:</b> {} <br><b>observed:</b> {}</p>",
        esc(&v.criterion),
        esc(&v.detail)
    );
    let before: Vec<_> = sc
        .events
        .iter()
        .filter(|e| e.at_ms <= at && matches!(e.kind.as_str(), "fault" | "clear" | "fixture" | "guard"))
        .collect();
    if !before.is_empty() {
        let _ = writeln!(o, "<p>before it (verdict at {:.3} s):</p><ul>", at as f64 / 1000.0);
        for e in before {
            let _ = writeln!(o, "<li>{:.3} s {}: {}</li>", e.at_ms as f64 / 1000.0, esc(&e.kind), esc(&e.detail));
        }
        o.push_str("</ul>");
    }
    o.push_str("</div>\n");
}

fn scenario(o: &mut String, sc: &ScenarioReport) {
    root_cause(o, sc);
    if !sc.verdicts.is_empty() {
        o.push_str("<h3>criteria</h3><table><tr><th>criterion</th><th>verdict</th><th>observed</th></tr>\n");
        for v in &sc.verdicts {
            let (class, label) = if v.passed { ("pass", "held") } else { ("fail", "violated") };
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td class=\"{class}\">{label}</td><td>{}</td></tr>",
                esc(&v.criterion),
                esc(&v.detail)
            );
        }
        o.push_str("</table>\n");
    }
    if !sc.series.is_empty() {
        o.push_str("<h3>latency of successful requests</h3>\n");
        o.push_str(&latency_chart(sc));
        o.push_str("<h3>throughput by outcome</h3>\n");
        o.push_str(&throughput_chart(sc));
    }
    if !sc.phases.is_empty() {
        o.push_str("<h3>phases</h3><table><tr><th>phase</th><th>from</th><th>to</th><th>requests</th><th>ok</th><th>errors</th><th>lost</th><th>p50</th><th>p99</th></tr>\n");
        for p in &sc.phases {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{:.1} s</td><td>{:.1} s</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&p.phase),
                p.from_ms as f64 / 1000.0,
                p.to_ms as f64 / 1000.0,
                p.total,
                p.ok,
                p.errors,
                p.lost,
                us(p.p50_us),
                us(p.p99_us)
            );
        }
        o.push_str("</table>\n");
    }
    if !sc.events.is_empty() {
        o.push_str(
            "<details><summary>timeline (events)</summary><table><tr><th>t</th><th>kind</th><th>what</th></tr>\n",
        );
        for e in &sc.events {
            let _ = writeln!(
                o,
                "<tr><td>{:.3} s</td><td>{}</td><td>{}</td></tr>",
                e.at_ms as f64 / 1000.0,
                esc(&e.kind),
                esc(&e.detail)
            );
        }
        o.push_str("</table></details>\n");
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

struct Chart {
    t_max: f64,
    y_max: f64,
    svg: String,
}

impl Chart {
    fn x(&self, ms: f64) -> f64 {
        LEFT + ms / self.t_max * (W - LEFT - RIGHT)
    }

    fn y(&self, v: f64) -> f64 {
        TOP + (H - TOP - BOTTOM) * (1.0 - v / self.y_max)
    }

    /// Frame, phases shaded, axis ticks with labels, fault and clear annotations, the legend.
    fn new(sc: &ScenarioReport, y_max: f64, y_label: impl Fn(f64) -> String, legend: &[(&str, &str)]) -> Self {
        let t_end = sc.series.iter().map(|p| p.at_ms + 250).chain(sc.events.iter().map(|e| e.at_ms)).max();
        let xt = ticks(t_end.unwrap_or(1000).max(1) as f64 / 1000.0, 8);
        let yt = ticks(y_max, 4);
        let mut c = Self {
            t_max: xt.last().copied().unwrap_or(1.0) * 1000.0,
            y_max: yt.last().copied().unwrap_or(1.0),
            svg: String::new(),
        };
        let (x0, x1, y0, y1) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
        let _ = writeln!(
            c.svg,
            "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" font-size=\"10\">"
        );
        for p in &sc.phases {
            let (a, b) = (c.x(p.from_ms as f64), c.x(p.to_ms as f64));
            let fill = match p.phase.as_str() {
                "baseline" => "#e8f0fe",
                "fault" => "#fde8e8",
                "recovery" => "#e8f7e8",
                _ => "#f0f0f0",
            };
            let _ = writeln!(
                c.svg,
                "<g class=\"phase\"><rect x=\"{a:.1}\" y=\"{y0}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#666\">{}</text></g>",
                (b - a).max(0.5),
                y1 - y0,
                a + 3.0,
                y1 - 4.0,
                esc(&p.phase)
            );
        }
        for v in &yt {
            let y = c.y(*v);
            let _ = writeln!(
                c.svg,
                "<g class=\"tick y\"><line x1=\"{x0}\" y1=\"{y:.1}\" x2=\"{x1}\" y2=\"{y:.1}\" stroke=\"#e4e4e4\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text></g>",
                x0 - 4.0,
                y + 3.0,
                esc(&y_label(*v))
            );
        }
        for t in &xt {
            let x = c.x(t * 1000.0);
            let _ = writeln!(
                c.svg,
                "<g class=\"tick x\"><line x1=\"{x:.1}\" y1=\"{y1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#888\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{t} s</text></g>",
                y1 + 4.0,
                y1 + 15.0
            );
        }
        let _ = writeln!(
            c.svg,
            "<line x1=\"{x0}\" y1=\"{y1}\" x2=\"{x1}\" y2=\"{y1}\" stroke=\"#888\"/><line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\" stroke=\"#888\"/>"
        );
        for (k, e) in sc.events.iter().filter(|e| e.kind == "fault" || e.kind == "clear").enumerate() {
            let x = c.x(e.at_ms as f64);
            let color = if e.kind == "fault" { "#c22" } else { "#282" };
            let label: String = e.detail.chars().take(40).collect();
            let ly = y0 - 2.0 - (k % 2) as f64 * 11.0;
            let _ = writeln!(
                c.svg,
                "<g class=\"annotation {kind}\"><line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{y1}\" stroke=\"{color}\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{ly:.1}\" fill=\"{color}\">{kind}: {}</text><title>{}</title></g>",
                ly + 2.0,
                x + 2.0,
                esc(&label),
                esc(&e.detail),
                kind = e.kind,
            );
        }
        let mut lx = x1 - 10.0;
        let _ = write!(c.svg, "<g class=\"legend\">");
        for (name, color) in legend.iter().rev() {
            lx -= 8.0 + 6.5 * name.len() as f64 + 14.0;
            let _ = write!(
                c.svg,
                "<rect x=\"{lx:.1}\" y=\"4\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"13\">{}</text>",
                lx + 14.0,
                esc(name)
            );
        }
        c.svg.push_str("</g>\n");
        c
    }

    fn finish(mut self, body: &str) -> String {
        self.svg.push_str(body);
        self.svg.push_str("</svg>\n");
        self.svg
    }
}

fn latency_chart(sc: &ScenarioReport) -> String {
    let y_max = sc.series.iter().filter_map(|p| p.p99_us.or(p.p50_us)).max().unwrap_or(1).max(1) as f64;
    let legend = [("p50", "#36c"), ("p99", "#c63")];
    let c = Chart::new(sc, y_max, |v| us(Some(v as u64)), &legend);
    let mut body = String::new();
    for (pick, color) in [(0usize, "#36c"), (1, "#c63")] {
        // One polyline per run of buckets with successes: a gap where none succeeded.
        let mut run: Vec<String> = Vec::new();
        let flush = |run: &mut Vec<String>, body: &mut String| {
            if run.len() == 1 {
                let (x, y) = run[0].split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(body, "<circle cx=\"{x}\" cy=\"{y}\" r=\"1.5\" fill=\"{color}\"/>");
            } else if run.len() > 1 {
                let _ = writeln!(
                    body,
                    "<polyline class=\"series\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>",
                    run.join(" ")
                );
            }
            run.clear();
        };
        for p in &sc.series {
            let v = if pick == 0 { p.p50_us } else { p.p99_us };
            match v {
                Some(v) => run.push(format!("{:.1},{:.1}", c.x(p.at_ms as f64 + 125.0), c.y(v as f64))),
                None => flush(&mut run, &mut body),
            }
        }
        flush(&mut run, &mut body);
    }
    c.finish(&body)
}

fn throughput_chart(sc: &ScenarioReport) -> String {
    let y_max = sc.series.iter().map(|p| p.ok + p.failed).max().unwrap_or(1).max(1) as f64;
    let legend = [("ok", "#4a4"), ("failed or lost", "#d33")];
    let c = Chart::new(sc, y_max, |v| format!("{v} req"), &legend);
    let mut body = String::new();
    for p in &sc.series {
        let x = c.x(p.at_ms as f64);
        let bw = (c.x(p.at_ms as f64 + 250.0) - x) * 0.85;
        let (y_ok, y_all) = (c.y(p.ok as f64), c.y((p.ok + p.failed) as f64));
        let base = c.y(0.0);
        let _ = writeln!(
            body,
            "<rect x=\"{x:.1}\" y=\"{y_ok:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"#4a4\"/><rect x=\"{x:.1}\" y=\"{y_all:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"#d33\"/>",
            base - y_ok,
            y_ok - y_all
        );
    }
    c.finish(&body)
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

/// Escapes text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}.pass{color:#282}.fail{color:#c22;font-weight:bold}.skip{color:#888}.zero{color:#444}.flaky{color:#b60;font-weight:bold}.interrupted{background:#fff3cd;border:1px solid #e0c060;padding:.5em}.header th{background:#f4f4f4}p.failure{color:#c22;font-weight:bold}.rootcause{border-left:4px solid #c22;padding:0 1em;background:#fff6f6}details.cycle{margin:.3em 0}pre{background:#f6f6f6;padding:.5em;overflow-x:auto;max-height:30em}.chart{background:#fcfcfc;border:1px solid #eee}";

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
