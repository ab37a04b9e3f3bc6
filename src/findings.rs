//! `docs/FINDINGS.md`: what a catalogue run against a target preset found, as Markdown. Each
//! failed criterion is a requirement the target's behaviour violates (the criterion states
//! it), with the evidence the criterion observed; the scenarios that held are listed too.
//! `chaos run --preset upstream-0.13 --findings docs/FINDINGS.md fixtures/scenarios/snakepit
//! --tag fast` writes it (`scripts/findings`).
//!
//! ```
//! use chaos_harness::report::{RunReport, TestRecord, TestStatus};
//! let run = RunReport::new("s", vec![TestRecord::new("process::beam-sigkill", TestStatus::Passed)]);
//! let md = snakepit_chaos::findings::render(&run, "upstream-0.13", "chaos run ...");
//! assert!(md.contains("0 of 1 scenario"));
//! ```

use chaos_harness::report::{RunReport, TestStatus};

/// The findings of `run` as Markdown; `preset` names the target's preset, `command` the
/// command that produced it.
pub fn render(run: &RunReport, preset: &str, command: &str) -> String {
    let failed: Vec<_> = run.tests.iter().filter(|t| matches!(t.status, TestStatus::Failed { .. })).collect();
    let held: Vec<_> = run.tests.iter().filter(|t| t.status == TestStatus::Passed).collect();
    let mut out = format!(
        "# Findings: the Snakepit catalogue against the `{preset}` preset\n\n\
         The reference target with the defects that reproduce {preset}'s behaviour switched on \
         ({defects}), run through the scenario catalogue (`fixtures/scenarios/snakepit`). Every \
         failed criterion below is a requirement the behaviour violates, with the evidence the \
         criterion observed. Generated; do not edit by hand:\n\n```sh\n{command}\n```\n\n\
         **{n} of {total} scenarios violate a requirement.**\n\n",
        defects = run.defects.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", "),
        n = failed.len(),
        total = failed.len() + held.len(),
    );
    if !failed.is_empty() {
        out += "## Violated requirements\n\n| scenario | requirement (criterion) | evidence |\n|---|---|---|\n";
        for t in &failed {
            let verdicts: Vec<_> = t.scenario.iter().flat_map(|s| s.verdicts.iter()).filter(|v| !v.passed).collect();
            if verdicts.is_empty() {
                let why = match &t.status {
                    TestStatus::Failed { message, .. } => message.lines().next().unwrap_or_default().to_string(),
                    _ => String::new(),
                };
                out += &format!("| `{}` | (no criterion judged) | {} |\n", t.name, cell(&why));
            }
            for v in verdicts {
                out += &format!("| `{}` | {} | {} |\n", t.name, cell(&v.criterion), cell(&v.detail));
            }
        }
        out += "\n";
    }
    out += "## Requirements that held\n\n";
    for t in &held {
        let criteria: Vec<String> =
            t.scenario.iter().flat_map(|s| s.verdicts.iter()).map(|v| v.criterion.clone()).collect();
        out += &format!("- `{}`: {}\n", t.name, criteria.join("; "));
    }
    out
}

/// A table cell: one line, pipes escaped, at most 300 characters.
fn cell(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|");
    if one.chars().count() > 300 { format!("{}...", one.chars().take(300).collect::<String>()) } else { one }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chaos_harness::report::{CriterionVerdict, ScenarioReport, TestRecord};

    #[test]
    fn a_failed_criterion_is_a_violated_requirement_with_its_evidence() {
        let mut bad = TestRecord::new(
            "process::worker-kill-idle",
            TestStatus::Failed { message: "criteria failed".into(), detail: String::new() },
        );
        bad.scenario = Some(ScenarioReport {
            verdicts: vec![
                CriterionVerdict {
                    criterion: "respawned within 5s".into(),
                    passed: false,
                    detail: "pid 7 | not replaced".into(),
                },
                CriterionVerdict { criterion: "healthy".into(), passed: true, detail: String::new() },
            ],
            ..ScenarioReport::default()
        });
        let mut run = RunReport::new("s", vec![bad, TestRecord::new("process::beam-sigkill", TestStatus::Passed)]);
        run.defects = vec!["no_restart".into()];
        let md = render(&run, "upstream-0.13", "chaos run --preset upstream-0.13");
        assert!(md.contains("**1 of 2 scenarios violate a requirement.**"), "{md}");
        assert!(md.contains("| `process::worker-kill-idle` | respawned within 5s | pid 7 \\| not replaced |"), "{md}");
        assert!(!md.contains("| healthy |"), "a criterion that held is no violation: {md}");
        assert!(md.contains("- `process::beam-sigkill`"), "{md}");
        assert!(md.contains("`no_restart`"), "{md}");
    }
}
