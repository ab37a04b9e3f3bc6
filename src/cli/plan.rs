//! `chaos plan FILE`: prints each scenario of a file (one per template combination) as its
//! resolved timeline, parameters with their defaults filled in, without running anything.

use std::path::PathBuf;
use std::process::ExitCode;

use chaos_harness::scenario::file::{self, Options};

/// Arguments of `chaos plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The scenario file.
    pub file: PathBuf,
}

/// Runs `chaos plan`.
pub fn run(args: &PlanArgs) -> ExitCode {
    let loaded = match file::load(&args.file, &Options::default()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    for l in loaded {
        println!(
            "{} ({}){}",
            l.test_name,
            l.spec.name,
            if l.repeat > 1 { format!(", {} times", l.repeat) } else { String::new() }
        );
        if let Some(t) = l.spec.timeout {
            println!("  timeout {}", chaos_harness::params::format_duration(t));
        }
        match l.spec.plan() {
            Ok(lines) => lines.iter().for_each(|line| println!("  {line}")),
            Err(errors) => {
                errors.iter().for_each(|e| eprintln!("error: {e}"));
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}
