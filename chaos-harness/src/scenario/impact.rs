//! Performance impact analysis: per phase of a scenario (baseline, fault, recovery, named
//! ones), the load's throughput and latency and each monitored series' resources, with the
//! difference to the baseline.
//!
//! Load figures count requests by the phase where they ended (as the per-phase report does);
//! latency percentiles are over successes, from the intended send time. Resource figures come
//! from the monitor's series: CPU as cores used (CPU time gained between consecutive samples
//! over the phase's length; a drop, when processes died, counts as no gain), RSS and open fds
//! as the mean and maximum of the samples in the phase (on a long run, summarized samples
//! count by their bucket's mean and maximum).
//!
//! ```
//! let o = chaos_harness::scenario::ScenarioOutcome::default();
//! assert!(o.impact().phases.is_empty());
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ScenarioOutcome;
use crate::observe::{EventKind, MonitorSeries, Phase, PhaseSpan, ResourceSample};

/// The impact of a scenario's fault, phase by phase (see the [module docs](self)).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Impact {
    /// One entry per phase span, in timeline order.
    pub phases: Vec<PhaseImpact>,
}

impl Impact {
    /// The first span of `phase`, if any.
    ///
    /// ```
    /// use chaos_harness::observe::Phase;
    /// assert!(chaos_harness::scenario::impact::Impact::default().phase(&Phase::Fault).is_none());
    /// ```
    pub fn phase(&self, phase: &Phase) -> Option<&PhaseImpact> {
        self.phases.iter().find(|p| p.phase == phase.as_str())
    }
}

/// One phase span's measurements and their differences to the baseline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseImpact {
    /// `baseline`, `fault`, `recovery` or a named phase.
    pub phase: String,
    /// Start, ms since the scenario started.
    pub from_ms: u64,
    /// End (exclusive).
    pub to_ms: u64,
    /// Load figures, when the scenario ran a load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadImpact>,
    /// One entry per monitored series with samples in the phase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceImpact>,
}

/// Throughput and latency in one phase; `*_delta`/`*_ratio` against the baseline (absent for
/// the baseline itself, or when either side has no value).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadImpact {
    /// Requests that ended in the phase (issued ones: skipped ticks excluded).
    pub issued: u64,
    /// Successful requests per second of the phase.
    pub throughput: f64,
    /// Median latency of successes, µs.
    pub p50_us: Option<u64>,
    /// 99th percentile latency of successes, µs.
    pub p99_us: Option<u64>,
    /// Issued requests that failed, over issued ones.
    pub error_rate: f64,
    /// `throughput - baseline throughput`, requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_delta: Option<f64>,
    /// `throughput / baseline throughput`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_ratio: Option<f64>,
    /// `p50 - baseline p50`, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_delta_us: Option<i64>,
    /// `p99 - baseline p99`, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_delta_us: Option<i64>,
    /// `p99 / baseline p99`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ratio: Option<f64>,
}

/// One monitored series (`pit.beam`) in one phase; `*_delta` against the baseline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceImpact {
    /// The series' selector expression.
    pub series: String,
    /// Samples in the phase.
    pub samples: u64,
    /// CPU used, in cores (1.0: one core busy for the whole phase).
    pub cpu_cores: f64,
    /// Mean RSS, bytes.
    pub rss_mean_bytes: u64,
    /// Largest RSS, bytes.
    pub rss_max_bytes: u64,
    /// Mean open fds.
    pub fds_mean: u64,
    /// Most open fds.
    pub fds_max: u64,
    /// `cpu_cores - baseline cpu_cores`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores_delta: Option<f64>,
    /// `rss_mean_bytes - baseline rss_mean_bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_mean_delta_bytes: Option<i64>,
    /// `fds_mean - baseline fds_mean`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fds_mean_delta: Option<i64>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn us(d: Option<Duration>) -> Option<u64> {
    d.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn diff(a: Option<u64>, b: Option<u64>) -> Option<i64> {
    Some(i64::try_from(a?).ok()? - i64::try_from(b?).ok()?)
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// A series as (time, reading, peak reading) points: kept samples, and older buckets by their
/// mean (with their maximum as the peak).
fn points(s: &MonitorSeries) -> Vec<(&ResourceSample, &ResourceSample)> {
    s.older.iter().map(|b| (&b.mean, &b.max)).chain(s.samples.iter().map(|x| (x, x))).collect()
}

fn resources(s: &MonitorSeries, span: &PhaseSpan) -> Option<ResourceImpact> {
    let pts = points(s);
    let inside: Vec<usize> = (0..pts.len()).filter(|&i| span.contains(pts[i].0.at)).collect();
    if inside.is_empty() {
        return None;
    }
    let n = inside.len() as u64;
    let mean = |f: fn(&ResourceSample) -> u64| {
        let sum: u128 = inside.iter().map(|&i| u128::from(f(pts[i].0))).sum();
        u64::try_from(sum / u128::from(n)).unwrap_or(u64::MAX)
    };
    let max = |f: fn(&ResourceSample) -> u64| inside.iter().map(|&i| f(pts[i].1)).max().unwrap_or(0);
    // CPU gained from the sample before each one in the phase (the first may lie before it).
    let gained: u64 =
        inside.iter().filter(|&&i| i > 0).map(|&i| pts[i].0.cpu_us.saturating_sub(pts[i - 1].0.cpu_us)).sum();
    let secs = (span.to - span.from).as_secs_f64();
    Some(ResourceImpact {
        series: s.expr(),
        samples: n,
        cpu_cores: if secs > 0.0 { gained as f64 / 1e6 / secs } else { 0.0 },
        rss_mean_bytes: mean(|x| x.rss_bytes),
        rss_max_bytes: max(|x| x.rss_bytes),
        fds_mean: mean(|x| x.fds),
        fds_max: max(|x| x.fds),
        ..Default::default()
    })
}

/// See [`ScenarioOutcome::impact`].
pub fn impact(o: &ScenarioOutcome) -> Impact {
    // Load records are timed from the load's start; phases from the scenario's.
    let shift =
        o.events.iter().find(|e| matches!(e.kind, EventKind::LoadStarted { .. })).map(|e| e.at).unwrap_or_default();
    let mut phases: Vec<PhaseImpact> = o
        .phases
        .iter()
        .map(|span| {
            let load = o.load_report.as_ref().map(|report| {
                let l = |d: Duration| d.saturating_sub(shift);
                let window = crate::load::PhaseSpan::new(span.phase.to_string(), l(span.from), l(span.to));
                let p = report.phase_stats(std::slice::from_ref(&window)).pop().unwrap_or_else(|| {
                    crate::load::PhaseStats { span: window, stats: Default::default(), overlapping: 0, throughput: 0.0 }
                });
                LoadImpact {
                    issued: p.stats.issued(),
                    throughput: p.throughput,
                    p50_us: us(p.stats.p50),
                    p99_us: us(p.stats.p99),
                    error_rate: p.stats.error_rate,
                    ..Default::default()
                }
            });
            PhaseImpact {
                phase: span.phase.to_string(),
                from_ms: ms(span.from),
                to_ms: ms(span.to),
                load,
                resources: o.monitor.iter().filter_map(|s| resources(s, span)).collect(),
            }
        })
        .collect();
    let Some(base) = phases.iter().find(|p| p.phase == Phase::Baseline.as_str()).cloned() else {
        return Impact { phases };
    };
    for (i, p) in phases.iter_mut().enumerate() {
        if o.phases.get(i).is_some_and(|s| s.phase == Phase::Baseline) {
            continue;
        }
        if let (Some(l), Some(b)) = (p.load.as_mut(), base.load.as_ref()) {
            l.throughput_delta = Some(l.throughput - b.throughput);
            l.throughput_ratio = ratio(l.throughput, b.throughput);
            l.p50_delta_us = diff(l.p50_us, b.p50_us);
            l.p99_delta_us = diff(l.p99_us, b.p99_us);
            l.p99_ratio = match (l.p99_us, b.p99_us) {
                (Some(a), Some(b)) => ratio(a as f64, b as f64),
                _ => None,
            };
        }
        for r in &mut p.resources {
            let Some(b) = base.resources.iter().find(|b| b.series == r.series) else { continue };
            r.cpu_cores_delta = Some(r.cpu_cores - b.cpu_cores);
            r.rss_mean_delta_bytes = diff(Some(r.rss_mean_bytes), Some(b.rss_mean_bytes));
            r.fds_mean_delta = diff(Some(r.fds_mean), Some(b.fds_mean));
        }
    }
    Impact { phases }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{LoadReport, Outcome, RequestRecord};
    use crate::observe::Event;

    /// A load that serves 10/s with 10 ms latency, stops serving during the fault and comes
    /// back at 50 ms; a monitored process that burns half a core in the fault and grows.
    #[test]
    fn impact_has_per_phase_figures_and_deltas_to_the_baseline() {
        let ms = Duration::from_millis;
        let mut records = Vec::new();
        for i in 0..30u64 {
            let at = ms(100 * i);
            let (outcome, took) = match i {
                0..10 => (Outcome::Ok, ms(10)),
                10..20 => (Outcome::Refused("refused".into()), ms(1)),
                _ => (Outcome::Ok, ms(50)),
            };
            records.push(RequestRecord { seq: i, intended: at, sent: at, ended: at + took, outcome, worker: None });
        }
        let samples = (0..30u64)
            .map(|i| ResourceSample {
                at: ms(100 * i),
                cpu_us: if i < 10 { 0 } else { (i - 9) * 50_000 },
                rss_bytes: if i < 10 { 100 } else { 300 },
                fds: 10,
                ..Default::default()
            })
            .collect();
        let o = ScenarioOutcome {
            events: vec![Event { at: Duration::ZERO, kind: EventKind::LoadStarted { load: "x".into() } }],
            phases: vec![
                PhaseSpan { phase: Phase::Baseline, from: ms(0), to: ms(1000) },
                PhaseSpan { phase: Phase::Fault, from: ms(1000), to: ms(2000) },
                PhaseSpan { phase: Phase::Recovery, from: ms(2000), to: ms(3000) },
            ],
            load_report: Some(LoadReport::from_records(records, std::time::Instant::now())),
            monitor: vec![MonitorSeries { fixture: "pit".into(), role: "beam".into(), samples, older: vec![] }],
            ..Default::default()
        };
        let i = o.impact();
        let (b, f, r) = (&i.phases[0], &i.phases[1], &i.phases[2]);
        let (bl, fl, rl) = (b.load.as_ref().unwrap(), f.load.as_ref().unwrap(), r.load.as_ref().unwrap());
        // HDR percentiles: within 0.1%.
        let near = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() <= b.abs() * 1e-3);
        assert_eq!((bl.throughput, bl.throughput_delta, bl.issued), (10.0, None, 10));
        assert!(near(bl.p50_us.map(|x| x as f64), 10_000.0), "{bl:?}");
        assert_eq!(
            (fl.throughput, fl.throughput_ratio, fl.throughput_delta, fl.error_rate),
            (0.0, Some(0.0), Some(-10.0), 1.0)
        );
        assert_eq!(rl.throughput_ratio, Some(1.0));
        assert!(near(rl.p50_delta_us.map(|x| x as f64), 40_000.0) && near(rl.p99_ratio, 5.0), "{rl:?}");
        let (bres, fres) = (&b.resources[0], &f.resources[0]);
        assert_eq!((bres.series.as_str(), bres.samples, bres.cpu_cores), ("pit.beam", 10, 0.0));
        assert!((fres.cpu_cores - 0.5).abs() < 1e-9, "{fres:?}");
        assert_eq!((fres.rss_mean_delta_bytes, fres.fds_mean_delta), (Some(200), Some(0)));
        let json = serde_json::to_value(&i).unwrap();
        assert_eq!(json["phases"][1]["load"]["throughput_ratio"], 0.0);
    }
}
