//! `chaos report`: re-render HTML, CSV and JUnit from a saved report.json, compare two runs, or
//! render the trend page of the run history alone (`--since 7d`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chaos_harness::report::{RunReport, compare, csv, history, html, junit, trends};
use console::style;

use super::Format;

/// Arguments of `chaos report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The report directory (or its report.json) to re-render.
    #[arg(default_value = "target/chaos-report", conflicts_with = "compare")]
    dir: PathBuf,
    /// Compare two saved runs (directories or report.json files): names each scenario and
    /// measurement that changed.
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"])]
    compare: Vec<PathBuf>,
    /// Render the trend page alone (trends.html next to the history) from the runs of this
    /// period (`7d`, `36h`): per scenario its verdicts, flaky marks, regressions with the
    /// measurement, medians and spreads.
    #[arg(long, value_name = "PERIOD", value_parser = humantime::parse_duration, conflicts_with = "compare")]
    since: Option<std::time::Duration>,
    /// The history file for `--since` (default: DIR/history.jsonl).
    #[arg(long, value_name = "PATH", requires = "since")]
    history: Option<PathBuf>,
    /// How many of the most recent runs in the period `--since` looks at.
    #[arg(long, value_name = "N", default_value_t = 30, requires = "since")]
    last: usize,
    /// Output format of `--compare`.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// The path itself for a `.json` file, else `DIR/report.json`.
fn json_path(p: &Path) -> PathBuf {
    if p.extension().is_some_and(|e| e == "json") && !p.is_dir() { p.to_path_buf() } else { p.join("report.json") }
}

fn load(p: &Path) -> Result<RunReport, String> {
    let path = json_path(p);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}; pass a report directory written by `chaos run`", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!("{} is not a chaos report: {e}; pass the report.json that `chaos run` wrote", path.display())
    })
}

/// Re-renders or compares.
pub fn run(args: &ReportArgs) -> ExitCode {
    match run_inner(args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{} {e}", style("error:").red().bold());
            ExitCode::from(2)
        }
    }
}

fn run_inner(args: &ReportArgs) -> Result<String, String> {
    if let [old, new] = args.compare.as_slice() {
        let changes = compare::compare(&load(old)?, &load(new)?);
        return Ok(match args.format {
            Format::Json => format!("{}\n", serde_json::to_string_pretty(&changes).unwrap_or_default()),
            Format::Text if changes.is_empty() => "no scenario or measurement changed\n".into(),
            Format::Text => changes.iter().map(|c| format!("{c}\n")).collect(),
        });
    }
    if let Some(since) = args.since {
        return trend_page(args, since);
    }
    let report = load(&args.dir)?;
    let dir = json_path(&args.dir).parent().map(Path::to_path_buf).unwrap_or_default();
    let write = |file: &str, text: String| {
        std::fs::write(dir.join(file), text).map_err(|e| format!("cannot write {}: {e}", dir.join(file).display()))
    };
    write("report.html", html::render(&report))?;
    write("results.csv", csv::render(&report))?;
    junit::write(&dir.join("junit.xml"), &report.suite, &report.tests).map_err(|e| e.to_string())?;
    Ok(format!("re-rendered report.html, results.csv and junit.xml in {}\n", dir.display()))
}

/// `--since`: the trend page of the runs started in the period, written next to the history;
/// the same trends as text on stdout.
fn trend_page(args: &ReportArgs, since: std::time::Duration) -> Result<String, String> {
    let path = args.history.clone().unwrap_or_else(|| {
        let dir = if args.dir.is_file() {
            args.dir.parent().map(Path::to_path_buf).unwrap_or_default()
        } else {
            args.dir.clone()
        };
        dir.join("history.jsonl")
    });
    if !path.is_file() {
        return Err(format!(
            "no run history at {}: `chaos run` appends to DIR/history.jsonl; pass --history PATH",
            path.display()
        ));
    }
    let (entries, bad) = history::read(&path);
    let now = std::time::SystemTime::now();
    let cutoff = now
        .checked_sub(since)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let recent: Vec<_> = entries.into_iter().filter(|e| e.started_unix_ms >= cutoff).collect();
    let shown = recent.len().min(args.last);
    let suite = recent.last().map(|e| e.suite.clone()).unwrap_or_else(|| "snakepit-chaos".into());
    let from = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(cutoff));
    let scope = format!(
        "{shown} run(s) since {from} ({}) from {}{}",
        humantime::format_duration(since),
        path.display(),
        if bad > 0 { format!("; {bad} unreadable line(s) skipped") } else { String::new() }
    );
    let t = trends::trends(&recent, args.last);
    let out = path.parent().map(|p| p.join("trends.html")).unwrap_or_else(|| PathBuf::from("trends.html"));
    std::fs::write(&out, trends::render(&suite, &scope, &t))
        .map_err(|e| format!("cannot write {}: {e}; check the directory is writable", out.display()))?;
    Ok(format!("{scope}\n{}wrote {}\n", trends::render_text(&t), out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chaos_harness::report::{TestRecord, TestStatus};

    fn parse(argv: &[&str]) -> ReportArgs {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct W {
            #[command(flatten)]
            a: ReportArgs,
        }
        W::try_parse_from(std::iter::once("report").chain(argv.iter().copied())).unwrap().a
    }

    fn save(dir: &Path, passed: bool) {
        let status =
            if passed { TestStatus::Passed } else { TestStatus::Failed { message: "m".into(), detail: "d".into() } };
        let r = RunReport::new("s", vec![TestRecord::new("beam-sigkill", status)]);
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("report.json"), serde_json::to_string(&r).unwrap()).unwrap();
    }

    #[test]
    fn rerenders_and_compares_saved_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let (old, new) = (tmp.path().join("old"), tmp.path().join("new"));
        save(&old, true);
        save(&new, false);
        let args = parse(&[new.to_str().unwrap()]);
        run_inner(&args).unwrap();
        assert!(std::fs::read_to_string(new.join("report.html")).unwrap().contains("beam-sigkill"));
        assert!(std::fs::read_to_string(new.join("junit.xml")).unwrap().contains("<failure"));
        let args = parse(&["--compare", old.to_str().unwrap(), new.join("report.json").to_str().unwrap()]);
        assert_eq!(run_inner(&args).unwrap(), "beam-sigkill: verdict passed -> failed\n");
        let bad = parse(&[tmp.path().join("nothing").to_str().unwrap()]);
        assert!(run_inner(&bad).unwrap_err().contains("nothing/report.json"));
    }

    /// The row of the summary table for `scenario`.
    fn row<'a>(page: &'a str, scenario: &str) -> &'a str {
        let start = page.find(&format!("<tr data-scenario=\"{scenario}\">")).unwrap_or_else(|| panic!("{scenario}"));
        let len = page[start..].find("</tr>").unwrap();
        &page[start..start + len]
    }

    #[test]
    fn since_renders_the_trend_page_naming_flaky_regressed_and_stable() {
        let tmp = tempfile::tempdir().unwrap();
        let hist = tmp.path().join("nightly/history.jsonl");
        std::fs::create_dir_all(hist.parent().unwrap()).unwrap();
        synthetic_history(&hist);
        let text = run_inner(&parse(&["--since", "7d", "--history", hist.to_str().unwrap()])).unwrap();
        let page = std::fs::read_to_string(tmp.path().join("nightly/trends.html")).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>") && page.contains("6 run(s) since"), "{page}");
        assert!(row(&page, "flaky-scenario").contains("class=\"status flaky\">flaky<"));
        assert!(row(&page, "flaky-scenario").contains("<td>4/6</td>"), "verdicts over the period");
        assert!(row(&page, "slow-scenario").contains("class=\"status regressed\">regressed<"));
        // The failure 10 days ago is outside the period: stable, 6 of 6.
        assert!(row(&page, "stable-scenario").contains("class=\"status stable\">stable<"));
        assert!(row(&page, "stable-scenario").contains("<td>6/6</td>"));
        assert!(
            page.contains("regression: fault.p99_us = 48.0 ms, median 5.1 ms ± 510 us over 5 earlier runs"),
            "the regression names the measurement, its median and spread: {page}"
        );
        assert!(page.contains("flaky: failed 2 of 6 runs"));
        assert_eq!(page.matches("class=\"regression\"").count(), 1 + 1, "one paragraph, one table row");
        assert!(text.contains("flaky      flaky-scenario") && text.contains("regressed  slow-scenario"), "{text}");
        // Over 30 days the old failure counts: stable-scenario's verdict changed with the same code.
        run_inner(&parse(&["--since", "30d", "--history", hist.to_str().unwrap()])).unwrap();
        let page = std::fs::read_to_string(tmp.path().join("nightly/trends.html")).unwrap();
        assert!(row(&page, "stable-scenario").contains(">flaky<"));
        // No history: the path and the fix.
        let err = run_inner(&parse(&[tmp.path().to_str().unwrap(), "--since", "7d"])).unwrap_err();
        assert!(err.contains("history.jsonl") && err.contains("--history PATH"), "{err}");
    }

    /// A synthetic history: `stable-scenario` passes with steady numbers, `flaky-scenario`
    /// alternates with the same code, `slow-scenario` passes but its fault p99 jumps in the latest
    /// run. A failure of `stable-scenario` 10 days ago lies outside `--since 7d`.
    fn synthetic_history(path: &Path) {
        use chaos_harness::report::history::{HistoryEntry, ScenarioHistory};
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let day = 86_400_000;
        let entry = |at: u64, scenarios: Vec<(&str, bool, f64)>| HistoryEntry {
            started_unix_ms: at,
            suite: "snakepit-chaos".into(),
            passed: 0,
            failed: 0,
            skipped: 0,
            failures: vec![],
            duration_ms: 0.0,
            scenarios: scenarios
                .into_iter()
                .map(|(name, passed, p99)| ScenarioHistory {
                    name: name.into(),
                    passed,
                    measurements: [("fault.p99_us".to_string(), p99), ("duration_ms".to_string(), 9000.0)].into(),
                })
                .collect(),
            harness_version: "0.1.0".into(),
            defects: vec![],
            flaky: vec![],
        };
        let mut lines = vec![entry(now - 10 * day, vec![("stable-scenario", false, 4000.0)])];
        for i in 0..5u64 {
            lines.push(entry(
                now - (6 - i) * day,
                vec![
                    ("stable-scenario", true, 4000.0 + 100.0 * (i % 2) as f64),
                    ("flaky-scenario", i % 2 == 0, 3000.0),
                    ("slow-scenario", true, 5000.0 + 50.0 * i as f64),
                ],
            ));
        }
        lines.push(entry(
            now - day / 2,
            vec![
                ("stable-scenario", true, 4050.0),
                ("flaky-scenario", true, 3000.0),
                ("slow-scenario", true, 48_000.0),
            ],
        ));
        let text: String = lines.iter().map(|e| serde_json::to_string(e).unwrap() + "\n").collect();
        std::fs::write(path, text).unwrap();
    }
}
