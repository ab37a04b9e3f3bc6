//! `chaos plan FILE`: prints each scenario of a file (one per template combination) as its
//! resolved timeline, parameters with their defaults filled in, without running anything; the
//! timeout and seed `chaos run` would use, with the layer each came from (flag, CHAOS_*,
//! chaos.toml profile, the file, chaos.toml, built-in).

use std::path::PathBuf;
use std::process::ExitCode;

use chaos_harness::scenario::file::{self, Options};
use chaos_harness::scenario::project::Settings;

use super::config::ConfigArgs;

/// Arguments of `chaos plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The scenario file.
    pub file: PathBuf,
    /// The timeout `chaos run --timeout` would be given.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<std::time::Duration>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Runs `chaos plan`.
pub fn run(args: &PlanArgs) -> ExitCode {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let config = match args.config.load(&cwd, |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}", e.0);
            return ExitCode::from(1);
        }
    };
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
        let flags = Settings { timeout: args.timeout, ..Settings::default() };
        let file = Settings { timeout: l.spec.timeout, ..Settings::default() };
        let builtin = Settings { timeout: Some(std::time::Duration::from_secs(120)), ..Settings::default() };
        let r = config.resolve(flags, file, builtin);
        if let (Some(t), Some(from)) = (r.settings.timeout, r.source("timeout")) {
            println!("  timeout {} (from {from})", chaos_harness::params::format_duration(t));
        }
        if let (Some(seed), Some(from)) = (r.settings.seed, r.source("seed")) {
            println!("  seed {seed} (from {from})");
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
