//! Two runs side by side (`chaos report --compare OLD NEW`): per scenario, a changed verdict
//! and every measurement that moved by more than a threshold (criterion verdicts, duration,
//! per-phase request counts and latency percentiles).

use serde::Serialize;

use super::{RunReport, TestRecord, TestStatus};

/// One difference between two runs.
///
/// ```
/// use chaos_harness::report::compare::Change;
/// let c = Change { scenario: "beam-sigkill".into(), measurement: "verdict".into(), old: "passed".into(), new: "failed".into() };
/// assert_eq!(c.to_string(), "beam-sigkill: verdict passed -> failed");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The scenario (cycle prefix removed).
    pub scenario: String,
    /// What changed (`verdict`, `criterion no_orphans within 5s`, `fault.p99`, `duration`).
    pub measurement: String,
    /// Its value in the old run.
    pub old: String,
    /// Its value in the new run.
    pub new: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} {} -> {}", self.scenario, self.measurement, self.old, self.new)
    }
}

fn verdict(t: &TestRecord) -> &'static str {
    match t.status {
        TestStatus::Passed => "passed",
        TestStatus::Failed { .. } if t.interrupted => "interrupted",
        TestStatus::Failed { .. } => "failed",
        TestStatus::Skipped { .. } => "skipped",
    }
}

/// Whether `new` differs from `old` by more than `rel` (relative) and `abs` (absolute).
fn moved(old: f64, new: f64, rel: f64, abs: f64) -> bool {
    (new - old).abs() > abs && (new - old).abs() > rel * old.abs().max(new.abs())
}

fn us(v: u64) -> String {
    if v >= 1_000_000 { format!("{:.2} s", v as f64 / 1e6) } else { format!("{:.1} ms", v as f64 / 1e3) }
}

/// The differences from `old` to `new`, scenario by scenario in `new`'s order; scenarios only in
/// one run are reported as `added` / `removed`. Latencies must move by more than 50 % and 5 ms,
/// counts by more than 20 % and 5, durations by more than 50 % and 2 s.
pub fn compare(old: &RunReport, new: &RunReport) -> Vec<Change> {
    let mut out = Vec::new();
    let change = |scenario: &str, m: String, o: String, n: String| Change {
        scenario: scenario.to_string(),
        measurement: m,
        old: o,
        new: n,
    };
    for n in &new.tests {
        let Some(o) = old.tests.iter().find(|o| o.name == n.name) else {
            out.push(change(&n.name, "scenario".into(), "absent".into(), verdict(n).into()));
            continue;
        };
        if verdict(o) != verdict(n) {
            out.push(change(&n.name, "verdict".into(), verdict(o).into(), verdict(n).into()));
        }
        if let (Some(os), Some(ns)) = (&o.scenario, &n.scenario) {
            for nv in &ns.verdicts {
                match os.verdicts.iter().find(|ov| ov.criterion == nv.criterion) {
                    Some(ov) if ov.passed != nv.passed => out.push(change(
                        &n.name,
                        format!("criterion `{}`", nv.criterion),
                        format!("{} ({})", if ov.passed { "held" } else { "violated" }, ov.detail),
                        format!("{} ({})", if nv.passed { "held" } else { "violated" }, nv.detail),
                    )),
                    _ => {}
                }
            }
            for np in &ns.phases {
                let Some(op) = os.phases.iter().find(|p| p.phase == np.phase) else { continue };
                for (what, ov, nv) in [("p50", op.p50_us, np.p50_us), ("p99", op.p99_us, np.p99_us)] {
                    match (ov, nv) {
                        (Some(a), Some(b)) if moved(a as f64, b as f64, 0.5, 5000.0) => {
                            out.push(change(&n.name, format!("{} {what}", np.phase), us(a), us(b)))
                        }
                        (Some(a), None) => {
                            out.push(change(&n.name, format!("{} {what}", np.phase), us(a), "no success".into()))
                        }
                        _ => {}
                    }
                }
                for (what, a, b) in [("errors", op.errors, np.errors), ("lost", op.lost, np.lost), ("ok", op.ok, np.ok)]
                {
                    if moved(a as f64, b as f64, 0.2, 5.0) {
                        out.push(change(&n.name, format!("{} {what}", np.phase), a.to_string(), b.to_string()));
                    }
                }
            }
        }
        let (a, b) = (o.duration.as_secs_f64(), n.duration.as_secs_f64());
        if moved(a, b, 0.5, 2.0) {
            out.push(change(&n.name, "duration".into(), format!("{a:.1} s"), format!("{b:.1} s")));
        }
    }
    for o in old.tests.iter().filter(|o| !new.tests.iter().any(|n| n.name == o.name)) {
        out.push(change(&o.name, "scenario".into(), verdict(o).into(), "absent".into()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CriterionVerdict, PhaseReport, ScenarioReport};

    fn run(passed: bool, p99: u64) -> RunReport {
        let mut t = TestRecord::new(
            "beam-sigkill",
            if passed { TestStatus::Passed } else { TestStatus::Failed { message: "m".into(), detail: "d".into() } },
        );
        t.scenario = Some(ScenarioReport {
            verdicts: vec![CriterionVerdict {
                criterion: "no_orphans within 5s".into(),
                passed,
                detail: if passed { "none".into() } else { "pid 42 survived".into() },
            }],
            phases: vec![PhaseReport {
                phase: "fault".into(),
                from_ms: 0,
                to_ms: 1,
                total: 100,
                ok: 100,
                errors: 0,
                lost: 0,
                p50_us: Some(1000),
                p99_us: Some(p99),
                ..Default::default()
            }],
            ..Default::default()
        });
        RunReport::new("s", vec![t, TestRecord::new("worker-sigkill", TestStatus::Passed)])
    }

    #[test]
    fn names_the_scenario_and_the_measurement_that_changed() {
        let changes = compare(&run(true, 4000), &run(false, 60_000));
        let text: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "beam-sigkill: verdict passed -> failed",
                "beam-sigkill: criterion `no_orphans within 5s` held (none) -> violated (pid 42 survived)",
                "beam-sigkill: fault p99 4.0 ms -> 60.0 ms",
            ]
        );
        assert!(compare(&run(true, 4000), &run(true, 4500)).is_empty(), "noise is not a change");
    }
}
