//! `chaos cleanup`: the emergency stop (see `chaos_harness::safety::cleanup`).
//!
//! Acts only on journaled things and things with proof (a registered dead run's id in the name,
//! an owner file in a temp dir); look-alikes are reported as kept. Exit codes: 0 when nothing failed (kept live runs are not failures), 1 when something could
//! not be undone (the report says what; the journals that list it are kept).

use std::process::ExitCode;

use chaos_harness::safety::cleanup::{CleanupOptions, cleanup};

/// Options of `chaos cleanup`.
#[derive(Debug, clap::Args)]
pub struct CleanupArgs {
    /// Also undo runs whose harness is still running (stops them dead), and kill processes
    /// that carry the run marker without any other proof (by default they are only reported).
    #[arg(long)]
    pub force: bool,
    /// Report what would be removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only touch runs and leftovers whose name (run id, test, resource) contains TEXT.
    #[arg(long = "match", value_name = "TEXT")]
    pub matching: Option<String>,
    /// Only replay journals; do not sweep leftovers by name.
    #[arg(long)]
    pub journals_only: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the cleanup and prints its report.
pub fn run(args: &CleanupArgs) -> ExitCode {
    let opts = CleanupOptions {
        force: args.force,
        dry_run: args.dry_run,
        matching: args.matching.clone(),
        strays: !args.journals_only,
    };
    let report = cleanup(&opts);
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: could not serialise the report: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        println!("{report}");
    }
    if report.is_clean() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
