//! A self-contained HTML report (no scripts, no external assets) with inline SVG charts:
//! a summary, one section per test, and for scenarios their criteria, phases, timeline, a
//! latency chart (p50/p99) and a throughput chart with fault markers.

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
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>chaos report: {suite}</title>\n<style>{CSS}</style></head><body>\n<h1>chaos report: {suite}</h1>\n<p class=\"summary\"><span class=\"pass\">{p} passed</span> <span class=\"fail\">{f} failed</span> <span class=\"skip\">{s} skipped</span> &middot; harness {v}</p>\n",
        suite = esc(&run.suite),
        p = run.passed(),
        f = run.failed(),
        s = run.skipped(),
        v = esc(&run.harness_version),
    );
    o.push_str("<table><tr><th>test</th><th>status</th><th>duration</th><th>seed</th><th>tags</th></tr>\n");
    for (i, t) in run.tests.iter().enumerate() {
        let (class, label) = status(&t.status);
        let _ = writeln!(
            o,
            "<tr><td><a href=\"#t{i}\">{}</a></td><td class=\"{class}\">{label}</td><td>{:.2} s</td><td>{}</td><td>{}</td></tr>",
            esc(&t.name),
            t.duration.as_secs_f64(),
            t.seed.map(|s| s.to_string()).unwrap_or_default(),
            esc(&t.tags.join(", "))
        );
    }
    o.push_str("</table>\n");
    for (i, t) in run.tests.iter().enumerate() {
        let (class, label) = status(&t.status);
        let _ = writeln!(o, "<section id=\"t{i}\"><h2>{} <span class=\"{class}\">{label}</span></h2>", esc(&t.name));
        match &t.status {
            TestStatus::Failed { detail, .. } => {
                let _ = writeln!(o, "<pre class=\"failure\">{}</pre>", esc(detail));
            }
            TestStatus::Skipped { reason: Some(r) } => {
                let _ = writeln!(o, "<p>skipped: {}</p>", esc(r));
            }
            _ => {}
        }
        if let Some(sc) = &t.scenario {
            scenario(&mut o, sc);
        }
        if !t.output.trim().is_empty() {
            let _ = writeln!(o, "<details><summary>captured output</summary><pre>{}</pre></details>", esc(&t.output));
        }
        o.push_str("</section>\n");
    }
    o.push_str("</body></html>\n");
    o
}

fn scenario(o: &mut String, sc: &ScenarioReport) {
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
    if !sc.series.is_empty() {
        o.push_str("<h3>latency (p50, p99)</h3>\n");
        o.push_str(&latency_chart(sc));
        o.push_str("<h3>throughput (ok, failed per bucket)</h3>\n");
        o.push_str(&throughput_chart(sc));
    }
    if !sc.events.is_empty() {
        o.push_str("<h3>timeline</h3><table><tr><th>t</th><th>kind</th><th>what</th></tr>\n");
        for e in &sc.events {
            let _ = writeln!(
                o,
                "<tr><td>{:.3} s</td><td>{}</td><td>{}</td></tr>",
                e.at_ms as f64 / 1000.0,
                esc(&e.kind),
                esc(&e.detail)
            );
        }
        o.push_str("</table>\n");
    }
}

const W: f64 = 760.0;
const H: f64 = 180.0;
const PAD: f64 = 40.0;

fn frame(sc: &ScenarioReport, y_label: &str, body: &str) -> String {
    let t_max =
        sc.series.iter().map(|p| p.at_ms).chain(sc.events.iter().map(|e| e.at_ms)).max().unwrap_or(1).max(1) as f64;
    let mut s = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {h}\" width=\"{W}\" height=\"{h}\" role=\"img\">\n<line x1=\"{PAD}\" y1=\"{H}\" x2=\"{W}\" y2=\"{H}\" stroke=\"#888\"/><line x1=\"{PAD}\" y1=\"0\" x2=\"{PAD}\" y2=\"{H}\" stroke=\"#888\"/>\n<text x=\"2\" y=\"12\" font-size=\"10\">{}</text><text x=\"{PAD}\" y=\"{ty}\" font-size=\"10\">0 s</text><text x=\"{tx}\" y=\"{ty}\" font-size=\"10\">{:.1} s</text>\n",
        esc(y_label),
        t_max / 1000.0,
        h = H + 20.0,
        ty = H + 14.0,
        tx = W - 40.0,
    );
    for e in sc.events.iter().filter(|e| e.kind == "fault" || e.kind == "clear") {
        let x = PAD + (e.at_ms as f64 / t_max) * (W - PAD);
        let color = if e.kind == "fault" { "#d33" } else { "#3a3" };
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" y1=\"0\" x2=\"{x:.1}\" y2=\"{H}\" stroke=\"{color}\" stroke-dasharray=\"4 3\"><title>{}</title></line>",
            esc(&e.detail)
        );
    }
    s.push_str(body);
    s.push_str("</svg>\n");
    s
}

fn latency_chart(sc: &ScenarioReport) -> String {
    let y_max = sc.series.iter().filter_map(|p| p.p99_us.or(p.p50_us)).max().unwrap_or(1).max(1) as f64;
    let t_max =
        sc.series.iter().map(|p| p.at_ms).chain(sc.events.iter().map(|e| e.at_ms)).max().unwrap_or(1).max(1) as f64;
    // One polyline per run of buckets with a success: a bucket where nothing succeeded (an
    // outage) is a gap, not a line drawn across it.
    let line = |pick: fn(&super::SeriesPoint) -> Option<u64>, color: &str| {
        let mut runs: Vec<Vec<String>> = vec![Vec::new()];
        for p in &sc.series {
            match pick(p) {
                Some(v) => {
                    let x = PAD + (p.at_ms as f64 / t_max) * (W - PAD);
                    let y = H - (v as f64 / y_max) * (H - 10.0);
                    if let Some(r) = runs.last_mut() {
                        r.push(format!("{x:.1},{y:.1}"));
                    }
                }
                None if runs.last().is_some_and(|r| !r.is_empty()) => runs.push(Vec::new()),
                None => {}
            }
        }
        runs.iter()
            .filter(|r| !r.is_empty())
            .map(|r| {
                format!(
                    "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>\n",
                    r.join(" ")
                )
            })
            .collect::<String>()
    };
    let body = format!("{}{}", line(|p| p.p50_us, "#36c"), line(|p| p.p99_us, "#c63"));
    frame(sc, &format!("max {}", us(Some(y_max as u64))), &body)
}

fn throughput_chart(sc: &ScenarioReport) -> String {
    let y_max = sc.series.iter().map(|p| p.ok + p.failed).max().unwrap_or(1).max(1) as f64;
    let t_max =
        sc.series.iter().map(|p| p.at_ms).chain(sc.events.iter().map(|e| e.at_ms)).max().unwrap_or(1).max(1) as f64;
    let bw = ((W - PAD) / sc.series.len().max(1) as f64 * 0.8).max(1.0);
    let mut body = String::new();
    for p in &sc.series {
        let x = PAD + (p.at_ms as f64 / t_max) * (W - PAD);
        let h_ok = p.ok as f64 / y_max * (H - 10.0);
        let h_fail = p.failed as f64 / y_max * (H - 10.0);
        let _ = writeln!(
            body,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{h_ok:.1}\" fill=\"#4a4\"/><rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{h_fail:.1}\" fill=\"#d33\"/>",
            H - h_ok,
            H - h_ok - h_fail
        );
    }
    frame(sc, &format!("max {} req", y_max as u64), &body)
}

fn status(s: &TestStatus) -> (&'static str, &'static str) {
    match s {
        TestStatus::Passed => ("pass", "passed"),
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

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}.pass{color:#282}.fail{color:#c22;font-weight:bold}.skip{color:#888}pre{background:#f6f6f6;padding:.5em;overflow-x:auto;max-height:30em}.chart{background:#fcfcfc;border:1px solid #eee}";

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
        assert!(page.contains("<polyline") && page.contains("<rect"));
        // Two runs (before and after the outage) for each of p50 and p99.
        assert_eq!(page.matches("<polyline").count(), 4);
        assert!(page.contains("SIGKILL beam") && page.contains("violated") && page.contains("pid 42 survived"));
    }
}
