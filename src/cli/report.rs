//! `chaos report`: re-render HTML, CSV and JUnit from a saved report.json, or compare two runs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chaos_harness::report::{RunReport, compare, csv, html, junit};
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

#[cfg(test)]
mod tests {
    use super::*;
    use chaos_harness::report::{TestRecord, TestStatus};

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
        let args = ReportArgs { dir: new.clone(), compare: vec![], format: Format::Text };
        run_inner(&args).unwrap();
        assert!(std::fs::read_to_string(new.join("report.html")).unwrap().contains("beam-sigkill"));
        assert!(std::fs::read_to_string(new.join("junit.xml")).unwrap().contains("<failure"));
        let args =
            ReportArgs { dir: PathBuf::new(), compare: vec![old, new.join("report.json")], format: Format::Text };
        assert_eq!(run_inner(&args).unwrap(), "beam-sigkill: verdict passed -> failed\n");
        let bad = ReportArgs { dir: tmp.path().join("nothing"), compare: vec![], format: Format::Text };
        assert!(run_inner(&bad).unwrap_err().contains("nothing/report.json"));
    }
}
