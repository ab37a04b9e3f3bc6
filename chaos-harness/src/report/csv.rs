//! CSV: one row per test (name, status, duration, seed, tags, message).

use super::{RunReport, TestStatus};

/// Renders the run as CSV with a header row. Fields are quoted per RFC 4180.
///
/// ```
/// use chaos_harness::report::{csv, RunReport, TestRecord, TestStatus};
/// let run = RunReport::new("s", vec![TestRecord::new("a, \"b\"", TestStatus::Passed)]);
/// let text = csv::render(&run);
/// assert!(text.starts_with("name,status,duration_ms,seed,tags,message\n"));
/// assert!(text.contains("\"a, \"\"b\"\"\",passed,"));
/// ```
pub fn render(run: &RunReport) -> String {
    let mut out = String::from("name,status,duration_ms,seed,tags,message\n");
    for t in &run.tests {
        let (status, message) = match &t.status {
            TestStatus::Passed => ("passed", String::new()),
            TestStatus::Failed { message, .. } => ("failed", message.clone()),
            TestStatus::Skipped { reason } => ("skipped", reason.clone().unwrap_or_default()),
        };
        let row = [
            t.name.clone(),
            status.to_string(),
            format!("{:.1}", t.duration.as_secs_f64() * 1000.0),
            t.seed.map(|s| s.to_string()).unwrap_or_default(),
            t.tags.join(" "),
            message,
        ];
        out.push_str(&row.iter().map(|f| quote(f)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}
