//! JUnit XML through quick-junit: one `<testsuite>` per test binary.
//!
//! quick-junit removes ANSI escape codes and XML-invalid control characters and escapes
//! everything else (including `]]>`), so any test output can be attached safely.

use std::path::{Path, PathBuf};

use quick_junit::{FlakyOrRerun, NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite};

use super::{TestRecord, TestStatus};
use crate::Error;

/// Builds the JUnit report for one test binary.
///
/// ```
/// use chaos_harness::report::{junit, TestRecord, TestStatus};
/// let xml = junit::to_xml("suite", &[TestRecord::new("a::b", TestStatus::Passed)]).unwrap();
/// assert!(xml.contains("<testcase name=\"a::b\""));
/// ```
pub fn to_xml(suite_name: &str, records: &[TestRecord]) -> Result<String, Error> {
    let mut report = Report::new(suite_name);
    let mut suite = TestSuite::new(suite_name);
    let mut total = std::time::Duration::ZERO;
    for record in records {
        total += record.duration;
        suite.add_test_case(test_case(suite_name, record));
    }
    suite.set_time(total);
    report.set_time(total);
    report.add_test_suite(suite);
    report.to_string().map_err(|e| Error::Config {
        what: "JUnit report".into(),
        cause: e.to_string(),
        fix: "report this as a harness bug".into(),
    })
}

fn test_case(suite_name: &str, record: &TestRecord) -> TestCase {
    let mut status = match &record.status {
        TestStatus::Passed => TestCaseStatus::success(),
        TestStatus::Failed { message, detail } => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(message.as_str()).set_type("chaos test failure").set_description(detail.as_str());
            s.set_rerun_kind(FlakyOrRerun::Rerun);
            s
        }
        TestStatus::Skipped { reason } => {
            let mut s = TestCaseStatus::skipped();
            if let Some(reason) = reason {
                s.set_message(reason.as_str());
            }
            s
        }
    };
    // Earlier failed attempts, as nextest writes them: `flakyFailure` under a passed test,
    // `rerunFailure` under a failed one.
    status.add_reruns(record.failed_attempts.iter().map(|a| {
        let mut rerun = TestRerun::new(NonSuccessKind::Failure);
        rerun
            .set_message(a.message.as_str())
            .set_type("chaos test failure")
            .set_description(a.detail.as_str())
            .set_time(a.duration);
        rerun
    }));
    let mut case = TestCase::new(record.name.as_str(), status);
    let classname = match record.name.rsplit_once("::") {
        Some((module, _)) => format!("{suite_name}::{module}"),
        None => suite_name.to_string(),
    };
    case.set_classname(classname).set_time(record.duration);
    if let Some(file) = &record.file {
        case.extra.insert("file".into(), file.as_str().into());
        if let Some(line) = record.line {
            case.extra.insert("line".into(), line.to_string().into());
        }
    }
    if let Some(seed) = record.seed {
        case.add_property(Property::new("seed", seed.to_string()));
    }
    if !record.tags.is_empty() {
        case.add_property(Property::new("tags", record.tags.join(",")));
    }
    // Phase measurements: `phase.<name>.<measure>` (requests, ok, errors, lost, p50_us, p99_us).
    for p in record.scenario.iter().flat_map(|s| &s.phases) {
        let measures = [
            ("requests", Some(p.total)),
            ("ok", Some(p.ok)),
            ("errors", Some(p.errors)),
            ("lost", Some(p.lost)),
            ("p50_us", p.p50_us),
            ("p99_us", p.p99_us),
        ];
        for (what, v) in measures {
            if let Some(v) = v {
                case.add_property(Property::new(format!("phase.{}.{what}", p.phase), v.to_string()));
            }
        }
    }
    if !record.output.is_empty() {
        case.set_system_out(record.output.as_str());
    }
    case
}

/// Writes the report to `path` (creating parent directories).
pub fn write(path: &Path, suite_name: &str, records: &[TestRecord]) -> Result<(), Error> {
    let xml = to_xml(suite_name, records)?;
    let io_err = |what: &str, p: &Path, source| Error::Io {
        what: what.into(),
        path: p.to_path_buf(),
        source,
        fix: "choose a writable path with --junit PATH or CHAOS_JUNIT".into(),
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| io_err("creating the JUnit directory", parent, e))?;
    }
    let tmp = path.with_extension("xml.tmp");
    std::fs::write(&tmp, xml).map_err(|e| io_err("writing JUnit XML", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err("writing JUnit XML", path, e))
}

/// Under cargo-nextest every test runs in its own process, so one shared file would be
/// overwritten by each: the harness writes `<dir>/<stem>.<test name>.xml` per test instead.
///
/// ```
/// use chaos_harness::report::junit::per_test_path;
/// let p = per_test_path("target/junit.xml".as_ref(), "process::beam kill");
/// assert_eq!(p, std::path::PathBuf::from("target/junit.process__beam_kill.xml"));
/// ```
pub fn per_test_path(path: &Path, test_name: &str) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "junit".into());
    let safe: String = test_name
        .replace("::", "__")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .collect();
    path.with_file_name(format!("{stem}.{safe}.xml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retried_tests_have_flaky_and_rerun_failures() {
        use crate::report::FailedAttempt;
        let attempt =
            |m: &str| FailedAttempt { message: m.into(), detail: format!("{m} detail"), ..Default::default() };
        let mut flaky = TestRecord::new("flaky", TestStatus::Passed);
        flaky.failed_attempts.push(attempt("first try"));
        let mut broken = TestRecord::new(
            "broken",
            TestStatus::Failed { message: "third try".into(), detail: "third try detail".into() },
        );
        broken.failed_attempts.extend([attempt("first"), attempt("second")]);
        let xml = to_xml("s", &[flaky, broken]).unwrap();
        assert_eq!(xml.matches("<flakyFailure").count(), 1, "{xml}");
        assert!(
            xml.contains("message=\"first try\" type=\"chaos test failure\">first try detail</flakyFailure>"),
            "{xml}"
        );
        assert_eq!(xml.matches("<rerunFailure").count(), 2, "{xml}");
        assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
    }

    #[test]
    fn hostile_output_is_made_safe() {
        let mut r = TestRecord::new(
            "m::t",
            TestStatus::Failed { message: "boom ]]> \x1b[31mred\x1b[0m".into(), detail: "d\x07\x00".into() },
        );
        r.output = "out ]]> \x1b[1mbold\x1b[0m \x0b".into();
        r.seed = Some(7);
        r.tags = vec!["net".into(), "smoke".into()];
        r.file = Some("tests/x.rs".into());
        let xml = to_xml("suite", &[r]).unwrap();
        assert!(!xml.contains('\x1b') && !xml.contains('\x07') && !xml.contains('\x0b'), "{xml}");
        assert!(xml.contains("]]&gt;") || xml.contains("]]]]><![CDATA[>"), "{xml}");
        assert!(xml.contains("<property name=\"seed\" value=\"7\"/>"), "{xml}");
        assert!(xml.contains("name=\"tags\" value=\"net,smoke\""), "{xml}");
        assert!(xml.contains("file=\"tests/x.rs\""), "{xml}");
        assert!(xml.contains("boom ]]&gt; red"), "{xml}");
    }

    #[test]
    fn phase_measurements_are_properties() {
        let mut r = TestRecord::new("s::t", TestStatus::Passed);
        r.scenario = Some(crate::report::ScenarioReport {
            phases: vec![crate::report::PhaseReport {
                phase: "fault".into(),
                from_ms: 0,
                to_ms: 1000,
                total: 10,
                ok: 7,
                errors: 2,
                lost: 1,
                p50_us: Some(1500),
                p99_us: None,
                ..Default::default()
            }],
            ..Default::default()
        });
        let xml = to_xml("suite", &[r]).unwrap();
        assert!(xml.contains("name=\"phase.fault.requests\" value=\"10\""), "{xml}");
        assert!(xml.contains("name=\"phase.fault.lost\" value=\"1\""), "{xml}");
        assert!(xml.contains("name=\"phase.fault.p50_us\" value=\"1500\""), "{xml}");
        assert!(!xml.contains("phase.fault.p99_us"), "no value, no property: {xml}");
    }
}
