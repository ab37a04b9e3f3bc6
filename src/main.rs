//! The `chaos` command-line interface.
//!
//! ```text
//! chaos run [--report DIR] [--cycles N] [--defect NAME]... [--only NAME]...   run the Snakepit chaos scenarios
//!           [--metrics-addr ADDR] [--metrics-linger DUR] [--metrics-file PATH] [--pushgateway URL] [--trace-file PATH]
//! chaos list                                                                 list the built-in scenarios
//! chaos cleanup [--force] [--dry-run] [--match TEXT] [--journals-only] [--json]   emergency stop: undo what earlier runs left
//! ```
//!
//! Exit codes: 0 every scenario passed; 1 a scenario failed; 2 invalid arguments; 3 the
//! harness could not run (target did not build, report not writable).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::dispatch(args)
}
