//! `chaos validate [FILES|DIRS]`: checks scenario files (`*.chaos.toml`) without running
//! anything: every name, parameter, target and `${..}` against the registries, with
//! `file:line:column` errors. Exit 0 when all are valid, 1 otherwise. The project file
//! (`chaos.toml`, or `--config`) is checked too, with the profile `--profile`/`CHAOS_PROFILE`
//! names; with no path given, its `scenarios` (else fixtures/scenarios) are checked.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chaos_harness::scenario::file::{self, FileError, Options};
use chaos_harness::scenario::project::Settings;

use super::config::ConfigArgs;

/// Arguments of `chaos validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Files or directories (searched for `*.chaos.toml`); default: chaos.toml's `scenarios`,
    /// else fixtures/scenarios.
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub config: ConfigArgs,
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
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let config = match args.config.load(&cwd, |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            if args.format == "json" {
                let out = serde_json::json!({ "valid": false, "config_error": e.0 });
                let _ = writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            } else {
                eprintln!("error: {}", e.0);
            }
            return ExitCode::from(1);
        }
    };
    let paths = if args.paths.is_empty() {
        let flags = Settings::default();
        config.resolve(flags, Settings::default(), Settings::default()).settings.scenarios.unwrap_or_default()
    } else {
        args.paths.clone()
    };
    let files = files(&paths);
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
