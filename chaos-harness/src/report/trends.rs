//! Trends over the run history (`history.jsonl`): per scenario, its verdicts over the last runs,
//! whether it is flaky (its verdict changed between runs of the same code: same harness version
//! and defects), and every key measurement with the history's median and spread, the latest
//! value marked as a regression when it is worse than the median by more than the spread.
//! [`render`] is the page `chaos report --since 7d` writes; [`render_text`] its terminal form.

use std::collections::BTreeMap;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::history::{HistoryEntry, median_spread, worse};

/// One key measurement of a scenario over the history.
///
/// ```
/// use chaos_harness::report::trends::MeasurementTrend;
/// let m = MeasurementTrend { name: "fault.p99_us".into(), median: 1000.0, spread: 100.0, latest: 5000.0, runs: 5, regressed: true };
/// assert_eq!(m.describe(), "fault.p99_us = 5.0 ms, median 1.0 ms ± 100 us over 5 earlier runs");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MeasurementTrend {
    /// The measurement (`duration_ms`, `fault.p99_us`, `recovery.lost`, ...).
    pub name: String,
    /// Median over the runs before the latest.
    pub median: f64,
    /// Their spread (median absolute deviation, at least 10 % of the median).
    pub spread: f64,
    /// The latest run's value.
    pub latest: f64,
    /// How many earlier runs the median is over.
    pub runs: usize,
    /// The latest value is worse than the median by more than the spread.
    pub regressed: bool,
}

impl MeasurementTrend {
    /// One line: the value, the median and the spread, with units.
    pub fn describe(&self) -> String {
        format!(
            "{} = {}, median {} ± {} over {} earlier runs",
            self.name,
            value(&self.name, self.latest),
            value(&self.name, self.median),
            value(&self.name, self.spread),
            self.runs
        )
    }
}

/// One scenario over the history.
///
/// ```
/// use chaos_harness::report::trends::ScenarioTrend;
/// let t = ScenarioTrend { name: "a".into(), verdicts: vec![(0, true), (1, false)], flaky: true, measurements: vec![] };
/// assert_eq!(t.status(), "flaky");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioTrend {
    /// Scenario name (the `cycleNNNN::` prefix of repeated runs removed).
    pub name: String,
    /// Verdicts, oldest first: (run start in unix ms, passed).
    pub verdicts: Vec<(u64, bool)>,
    /// The verdict changed between runs of the same code.
    pub flaky: bool,
    /// Key measurements of the latest run against the earlier ones (those with enough history).
    pub measurements: Vec<MeasurementTrend>,
}

impl ScenarioTrend {
    /// The measurements that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &MeasurementTrend> {
        self.measurements.iter().filter(|m| m.regressed)
    }

    /// `flaky`, `regressed`, `failing` (failed every run), `stable`; flaky wins over regressed.
    pub fn status(&self) -> &'static str {
        if self.flaky {
            "flaky"
        } else if self.regressions().next().is_some() {
            "regressed"
        } else if !self.verdicts.is_empty() && self.verdicts.iter().all(|(_, p)| !p) {
            "failing"
        } else {
            "stable"
        }
    }

    /// Runs that passed.
    pub fn passes(&self) -> usize {
        self.verdicts.iter().filter(|(_, p)| *p).count()
    }
}

/// The trends of every scenario in the last `last` runs of `entries` (in file order, oldest
/// first), scenarios in order of first appearance.
pub fn trends(entries: &[HistoryEntry], last: usize) -> Vec<ScenarioTrend> {
    let recent = &entries[entries.len().saturating_sub(last)..];
    let mut order: Vec<String> = Vec::new();
    // Per scenario, per run: (start, passed, measurements, code = harness version + defects).
    type Runs<'a> = Vec<(u64, bool, &'a BTreeMap<String, f64>, (&'a str, &'a [String]))>;
    let mut runs: BTreeMap<String, Runs<'_>> = BTreeMap::new();
    for e in recent {
        for s in &e.scenarios {
            let name = super::html::base_name(&s.name).to_string();
            if !order.contains(&name) {
                order.push(name.clone());
            }
            runs.entry(name).or_default().push((
                e.started_unix_ms,
                s.passed,
                &s.measurements,
                (e.harness_version.as_str(), e.defects.as_slice()),
            ));
        }
    }
    order
        .into_iter()
        .map(|name| {
            let r = &runs[&name];
            let mut by_code: BTreeMap<(&str, &[String]), (bool, bool)> = BTreeMap::new();
            for (_, passed, _, code) in r {
                let c = by_code.entry(*code).or_default();
                if *passed { c.0 = true } else { c.1 = true }
            }
            let flaky = by_code.values().any(|(p, f)| *p && *f);
            let mut measurements = Vec::new();
            if let Some(((_, _, latest, _), earlier)) = r.split_last() {
                for (k, &v) in latest.iter() {
                    let mut hist: Vec<f64> = earlier.iter().filter_map(|(_, _, m, _)| m.get(k).copied()).collect();
                    if let Some((median, spread)) = median_spread(&mut hist) {
                        measurements.push(MeasurementTrend {
                            name: k.clone(),
                            median,
                            spread,
                            latest: v,
                            runs: hist.len(),
                            regressed: worse(v, median, spread),
                        });
                    }
                }
            }
            ScenarioTrend { verdicts: r.iter().map(|(at, p, _, _)| (*at, *p)).collect(), name, flaky, measurements }
        })
        .collect()
}

/// A measurement's value with its unit, from the name's suffix (`_us`, `_ms`, else a count).
fn value(name: &str, v: f64) -> String {
    let secs = if name.ends_with("_us") {
        v / 1e6
    } else if name.ends_with("_ms") {
        v / 1e3
    } else {
        return if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.1}") };
    };
    match secs.abs() {
        s if s >= 1.0 => format!("{secs:.2} s"),
        s if s >= 1e-3 => format!("{:.1} ms", secs * 1e3),
        _ => format!("{:.0} us", secs * 1e6),
    }
}

fn date(unix_ms: u64) -> String {
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_millis(unix_ms);
    humantime::format_rfc3339_seconds(when).to_string()
}

/// The trend page alone: a summary row per scenario (verdicts over the runs, pass count, status)
/// then per scenario its flaky mark, its regressions named with the measurement, and every
/// measurement's median and spread. `scope` says which runs (`runs since 2026-12-01 (7d)`).
///
/// ```
/// use chaos_harness::report::trends;
/// let page = trends::render("snakepit-chaos", "no runs", &[]);
/// assert!(page.starts_with("<!DOCTYPE html>") && page.contains("no runs in the history"));
/// ```
pub fn render(suite: &str, scope: &str, trends: &[ScenarioTrend]) -> String {
    let page: Markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "chaos trends: " (suite) }
                style { (PreEscaped(CSS)) }
            }
            body {
                h1 { "chaos trends: " (suite) }
                p.scope { (scope) }
                @if trends.is_empty() {
                    p { "no runs in the history for this period" }
                } @else {
                    table.trends {
                        tr { th { "scenario" } th { "verdicts (oldest first)" } th { "passed" } th { "status" } }
                        @for (i, t) in trends.iter().enumerate() {
                            tr data-scenario=(t.name) {
                                td { a href={ "#s" (i) } { (t.name) } }
                                td { (strip(t)) }
                                td { (t.passes()) "/" (t.verdicts.len()) }
                                td class={ "status " (t.status()) } { (t.status()) }
                            }
                        }
                    }
                    @for (i, t) in trends.iter().enumerate() {
                        section id={ "s" (i) } data-scenario=(t.name) {
                            h2 { (t.name) " " span class=(t.status()) { (t.status()) } }
                            p { (strip(t)) }
                            @if t.flaky {
                                p.flaky {
                                    "flaky: failed " (t.verdicts.len() - t.passes()) " of " (t.verdicts.len())
                                    " runs and passed in others, with the same harness version and defects"
                                }
                            }
                            @for m in t.regressions() {
                                p.regression { "regression: " (m.describe()) }
                            }
                            @if t.measurements.is_empty() {
                                p.note { "fewer than three earlier runs: no median yet" }
                            } @else {
                                table.measurements {
                                    tr { th { "measurement" } th { "median" } th { "spread" } th { "latest" } th { "" } }
                                    @for m in &t.measurements {
                                        tr class=[m.regressed.then_some("regression")] {
                                            td { (m.name) }
                                            td { (value(&m.name, m.median)) }
                                            td { "± " (value(&m.name, m.spread)) }
                                            td { (value(&m.name, m.latest)) }
                                            td { @if m.regressed { "regression" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page.into_string()
}

/// The verdicts as a strip of marks, oldest first, each with its run's date.
fn strip(t: &ScenarioTrend) -> Markup {
    html! {
        span.strip {
            @for (at, passed) in &t.verdicts {
                span class={ "v " @if *passed { "pass" } @else { "fail" } } title=(date(*at)) {
                    @if *passed { "✓" } @else { "✗" }
                }
            }
        }
    }
}

/// The trends as text: one line per scenario (status, passes, verdict strip), then one line per
/// regression.
pub fn render_text(trends: &[ScenarioTrend]) -> String {
    let mut out = String::new();
    for t in trends {
        let strip: String = t.verdicts.iter().map(|(_, p)| if *p { '+' } else { 'x' }).collect();
        out += &format!("{:<10} {:<40} {}/{} passed  {strip}\n", t.status(), t.name, t.passes(), t.verdicts.len());
        for m in t.regressions() {
            out += &format!("           regression: {}\n", m.describe());
        }
    }
    out
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}.v{display:inline-block;width:1.2em;text-align:center}.v.pass,.stable{color:#282}.v.fail,.failing{color:#c22;font-weight:bold}.flaky{color:#b60;font-weight:bold}.regressed,.regression{color:#a0a;font-weight:bold}tr.regression td{background:#fbeefb}.scope,.note{color:#555}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::history::ScenarioHistory;

    fn entry(day: u64, defects: &[&str], scenarios: &[(&str, bool, f64)]) -> HistoryEntry {
        HistoryEntry {
            started_unix_ms: 1_796_000_000_000 + day * 86_400_000,
            suite: "snakepit-chaos".into(),
            passed: 0,
            failed: 0,
            skipped: 0,
            failures: vec![],
            duration_ms: 0.0,
            scenarios: scenarios
                .iter()
                .map(|(n, passed, p99)| ScenarioHistory {
                    name: n.to_string(),
                    passed: *passed,
                    measurements: [("fault.p99_us".to_string(), *p99), ("fault.lost".to_string(), 0.0)].into(),
                })
                .collect(),
            harness_version: "0.1.0".into(),
            defects: defects.iter().map(|d| d.to_string()).collect(),
            flaky: vec![],
        }
    }

    #[test]
    fn flaky_regressed_stable_and_a_defect_run_is_not_flakiness() {
        let mut h: Vec<HistoryEntry> = (0..5)
            .map(|d| {
                entry(
                    d,
                    &[],
                    &[
                        ("stable", true, 1000.0 + d as f64 * 10.0),
                        ("cycle0001::flaky", d % 2 == 0, 2000.0),
                        ("slower", true, 1000.0),
                    ],
                )
            })
            .collect();
        // A run with a defect that fails `stable`: other code, not flakiness.
        h.push(entry(5, &["no_heartbeat"], &[("stable", false, 1000.0)]));
        h.push(entry(6, &[], &[("stable", true, 1030.0), ("flaky", true, 2000.0), ("slower", true, 9000.0)]));
        let t = trends(&h, 20);
        let status: Vec<(&str, &str)> = t.iter().map(|t| (t.name.as_str(), t.status())).collect();
        assert_eq!(status, [("stable", "stable"), ("flaky", "flaky"), ("slower", "regressed")]);
        let slower = &t[2];
        let r: Vec<_> = slower.regressions().collect();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].describe(), "fault.p99_us = 9.0 ms, median 1.0 ms ± 100 us over 5 earlier runs");
        // Only the last three runs: too little history for a median, and `flaky` passed in all.
        let t = trends(&h, 2);
        assert!(t.iter().all(|t| t.measurements.is_empty() && !t.flaky), "{t:?}");
    }
}
