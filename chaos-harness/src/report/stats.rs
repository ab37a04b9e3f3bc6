//! Statistics over repeated runs (`--cycles N`, `repeat` in a file): per scenario, how many runs
//! passed with a Wilson 95 % interval of the pass rate, and per criterion the worst observed
//! value: the time it took to hold, from its `expect` step's start to its verdict on the typed
//! timeline (for a `within` criterion that is the measured recovery time, e.g. how long the
//! orphans took to be gone), with the run that showed it.
//!
//! ```
//! use chaos_harness::report::{RunReport, TestRecord, TestStatus, stats};
//! let run = RunReport::new("s", vec![
//!     TestRecord::new("cycle0001::kill", TestStatus::Passed),
//!     TestRecord::new("cycle0002::kill", TestStatus::Failed { message: "m".into(), detail: "d".into() }),
//! ]);
//! let s = stats::by_scenario(&run);
//! assert_eq!((s[0].scenario.as_str(), s[0].runs, s[0].passed), ("kill", 2, 1));
//! assert!(s[0].wilson_low < 0.5 && s[0].wilson_high > 0.5);
//! ```

use serde::{Deserialize, Serialize};

use super::html::{base_name, wilson};
use super::{RunReport, TestStatus};

/// One scenario over every run of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioStats {
    /// The scenario (without the cycle prefix).
    pub scenario: String,
    /// Runs that passed or failed (skipped ones are not counted).
    pub runs: usize,
    /// Runs that passed.
    pub passed: usize,
    /// passed / runs.
    pub pass_rate: f64,
    /// Lower end of the Wilson 95 % interval of the pass rate.
    pub wilson_low: f64,
    /// Upper end.
    pub wilson_high: f64,
    /// Mean wall time of a run (s), fixture start and teardown included.
    pub mean_run_s: f64,
    /// Median of the target's start-to-ready times (ms), when the runs measured them.
    pub ready_ms_median: Option<u64>,
    /// The longest start-to-ready time (ms).
    pub ready_ms_worst: Option<u64>,
    /// Each criterion judged in those runs.
    pub criteria: Vec<CriterionStats>,
}

/// One criterion over every run of its scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriterionStats {
    /// Its description.
    pub criterion: String,
    /// How many times it was judged.
    pub judged: usize,
    /// How many times it held.
    pub held: usize,
    /// The longest time it took to hold or fail, from its step's start to its verdict (ms).
    pub worst_ms: u64,
    /// The run that showed it.
    pub worst_run: String,
}

/// The statistics of a run, one entry per scenario in the order they first ran.
pub fn by_scenario(run: &RunReport) -> Vec<ScenarioStats> {
    let mut out: Vec<ScenarioStats> = Vec::new();
    for t in &run.tests {
        let name = base_name(&t.name);
        let i = match out.iter().position(|s| s.scenario == name) {
            Some(i) => i,
            None => {
                out.push(ScenarioStats {
                    scenario: name.to_string(),
                    runs: 0,
                    passed: 0,
                    pass_rate: 0.0,
                    wilson_low: 0.0,
                    wilson_high: 1.0,
                    mean_run_s: 0.0,
                    ready_ms_median: None,
                    ready_ms_worst: None,
                    criteria: Vec::new(),
                });
                out.len() - 1
            }
        };
        let s = &mut out[i];
        match t.status {
            TestStatus::Passed => {
                s.runs += 1;
                s.passed += 1;
            }
            TestStatus::Failed { .. } => s.runs += 1,
            TestStatus::Skipped { .. } => {}
        }
        let Some(sc) = &t.scenario else { continue };
        for v in &sc.verdicts {
            let verdict_at =
                sc.events.iter().find(|e| e.kind == "verdict" && e.detail.contains(&v.criterion)).map(|e| e.at_ms);
            let step_at = verdict_at.and_then(|at| {
                sc.events
                    .iter()
                    .filter(|e| {
                        e.kind == "step" && e.at_ms <= at && e.detail.ends_with(&format!("expect {}", v.criterion))
                    })
                    .map(|e| e.at_ms)
                    .next_back()
            });
            let took = match (step_at, verdict_at) {
                (Some(s), Some(v)) => v.saturating_sub(s),
                _ => 0,
            };
            let c = match s.criteria.iter().position(|c| c.criterion == v.criterion) {
                Some(j) => &mut s.criteria[j],
                None => {
                    s.criteria.push(CriterionStats {
                        criterion: v.criterion.clone(),
                        judged: 0,
                        held: 0,
                        worst_ms: 0,
                        worst_run: String::new(),
                    });
                    s.criteria.last_mut().expect("just pushed")
                }
            };
            c.judged += 1;
            c.held += usize::from(v.passed);
            if c.worst_run.is_empty() || took > c.worst_ms {
                c.worst_ms = took;
                c.worst_run = t.name.clone();
            }
        }
    }
    for s in &mut out {
        s.pass_rate = if s.runs == 0 { 0.0 } else { s.passed as f64 / s.runs as f64 };
        (s.wilson_low, s.wilson_high) = wilson(s.passed, s.runs);
        let of_it: Vec<_> = run.tests.iter().filter(|t| base_name(&t.name) == s.scenario).collect();
        s.mean_run_s = of_it.iter().map(|t| t.duration.as_secs_f64()).sum::<f64>() / of_it.len().max(1) as f64;
        let mut ready: Vec<u64> = of_it.iter().filter_map(|t| t.ready_ms).collect();
        ready.sort_unstable();
        s.ready_ms_median = ready.get(ready.len() / 2).copied();
        s.ready_ms_worst = ready.last().copied();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CriterionVerdict, ScenarioReport, TestRecord, TimelineEvent};

    fn ev(at_ms: u64, kind: &str, detail: &str) -> TimelineEvent {
        TimelineEvent { at_ms, kind: kind.into(), detail: detail.into() }
    }

    fn record(name: &str, passed: bool, gone_after_ms: u64) -> TestRecord {
        let status =
            if passed { TestStatus::Passed } else { TestStatus::Failed { message: "m".into(), detail: "d".into() } };
        let mut t = TestRecord::new(name, status);
        t.ready_ms = name.ends_with("::beam").then_some(500 + gone_after_ms / 10);
        let c = "no orphans of pit within 5s";
        t.scenario = Some(ScenarioReport {
            name: "beam".into(),
            verdicts: vec![CriterionVerdict { criterion: c.into(), passed, detail: String::new() }],
            events: vec![
                ev(0, "step", "step 0: inject SIGKILL"),
                ev(8, "step", &format!("step 1: expect {c}")),
                ev(8 + gone_after_ms, "verdict", &format!("PASS {c}: gone")),
            ],
            phases: vec![],
            series: vec![],
            processes: vec![],
            logs: vec![],
            ..ScenarioReport::default()
        });
        t
    }

    #[test]
    fn pass_counts_wilson_and_the_worst_time_to_hold_with_its_run() {
        let run = RunReport::new(
            "s",
            vec![
                record("cycle0001::beam", true, 2900),
                record("cycle0002::beam", true, 3400),
                record("cycle0003::beam", false, 5001),
                record("cycle0003::other", true, 10),
            ],
        );
        let s = by_scenario(&run);
        assert_eq!(s.len(), 2);
        let b = &s[0];
        assert_eq!((b.scenario.as_str(), b.runs, b.passed), ("beam", 3, 2));
        assert_eq!((b.wilson_low, b.wilson_high), wilson(2, 3));
        let c = &b.criteria[0];
        assert_eq!((c.judged, c.held, c.worst_ms, c.worst_run.as_str()), (3, 2, 5001, "cycle0003::beam"));
        assert_eq!(s[1].criteria[0].worst_ms, 10);
        assert_eq!((b.ready_ms_median, b.ready_ms_worst), (Some(840), Some(1000)), "start-to-ready");
        assert_eq!(s[1].ready_ms_median, None);
    }
}
