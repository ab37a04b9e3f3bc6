//! `chaos validate [FILES|DIRS]`: checks scenario files (`*.chaos.toml`) without running
//! anything: every name, parameter, target and `${..}` against the registries, with
//! `file:line:column` errors. Exit 0 when all are valid, 1 otherwise.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chaos_harness::scenario::file::{self, FileError, Options};

/// Arguments of `chaos validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Files or directories (searched for `*.chaos.toml`); default: fixtures/scenarios.
    pub paths: Vec<PathBuf>,
    /// Output format: `text` (default) or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

/// The files named by `paths` (directories searched recursively).
pub fn files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let paths = if paths.is_empty() { vec![PathBuf::from("fixtures/scenarios")] } else { paths.to_vec() };
    paths.iter().flat_map(|p| if p.is_dir() { file::find_files(p) } else { vec![p.clone()] }).collect()
}

/// Runs `chaos validate`.
pub fn run(args: &ValidateArgs) -> ExitCode {
    let files = files(&args.paths);
    let mut errors: Vec<FileError> = Vec::new();
    let mut scenarios = 0;
    for f in &files {
        match file::load(f, &Options::default()) {
            Ok(l) => scenarios += l.len(),
            Err(e) => errors.extend(e.0),
        }
    }
    if args.format == "json" {
        let out = serde_json::json!({
            "files": files.len(),
            "scenarios": scenarios,
            "valid": errors.is_empty(),
            "errors": errors,
        });
        let _ = writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        for e in &errors {
            eprintln!("error: {e}");
        }
        if files.is_empty() {
            eprintln!("error: no *.chaos.toml file found");
        }
        println!("{} file(s), {} scenario(s), {} error(s)", files.len(), scenarios, errors.len());
    }
    if errors.is_empty() && !files.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
