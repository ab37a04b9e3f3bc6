//! The report text that people read, as reviewed insta snapshots of a fixed report
//! (tests/fixtures/report.json: a 2-cycle run where `beam-sigkill` failed once with orphans,
//! passed once, and one run was skipped): the HTML summary table and root-cause section, the
//! CSV, the JUnit XML (its `<failure message>`), the `--compare` text and the trends text.
//! A change to any of them shows up as a snapshot diff to review.

use chaos_harness::report::history::HistoryEntry;
use chaos_harness::report::{RunReport, compare, csv, html, junit, trends};

fn fixture() -> RunReport {
    let text = include_str!("fixtures/report.json");
    serde_json::from_str(text).expect("tests/fixtures/report.json is a RunReport")
}

/// The element that starts with `open` (up to its matching `close`), one tag per line.
fn fragment(page: &str, open: &str, close: &str) -> String {
    let start = page.find(open).unwrap_or_else(|| panic!("`{open}` not in the page"));
    let len = page[start..].find(close).unwrap_or_else(|| panic!("`{close}` after `{open}`")) + close.len();
    page[start..start + len].replace("><", ">\n<")
}

#[test]
fn html_summary_table() {
    let page = html::render(&fixture());
    insta::assert_snapshot!(fragment(&page, "<table class=\"scenarios\">", "</table>"));
}

#[test]
fn html_root_cause() {
    let page = html::render(&fixture());
    assert_eq!(page.matches("class=\"rootcause\"").count(), 1, "one failure, one root cause");
    insta::assert_snapshot!(fragment(&page, "<div class=\"rootcause\">", "</div>"));
}

#[test]
fn csv_rows() {
    insta::assert_snapshot!(csv::render(&fixture()));
}

#[test]
fn junit_xml_with_the_failure_message() {
    let run = fixture();
    insta::assert_snapshot!(junit::to_xml(&run.suite, &run.tests).unwrap());
}

#[test]
fn compare_text() {
    let old = fixture();
    let mut new = fixture();
    // The failing scenario passes in the new run, with a slower baseline.
    let t = &mut new.tests[0];
    t.status = chaos_harness::report::TestStatus::Passed;
    let sc = t.scenario.as_mut().unwrap();
    sc.verdicts[0].passed = true;
    sc.verdicts[0].detail = "0 survivors after 0.4 s".into();
    sc.phases[0].p99_us = Some(61_000);
    new.tests.pop();
    let text: String = compare::compare(&old, &new).iter().map(|c| format!("{c}\n")).collect();
    insta::assert_snapshot!(text);
}

#[test]
fn trends_text() {
    let base = fixture();
    let mut history: Vec<HistoryEntry> = Vec::new();
    for i in 0..5u64 {
        let mut run = base.clone();
        run.started_unix_ms += i * 86_400_000;
        // The failing cycle fails every other day; the worker scenario gets slower on the last.
        if i % 2 == 1 {
            run.tests[0].status = chaos_harness::report::TestStatus::Passed;
        }
        if i == 4 {
            run.tests[1].duration *= 3;
        }
        history.push(HistoryEntry::of(&run));
    }
    insta::assert_snapshot!(trends::render_text(&trends::trends(&history, 10)));
}
