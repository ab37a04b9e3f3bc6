//! The `chaos` command-line interface.
//!
//! ```text
//! chaos [-q|-v] [--color auto|always|never] COMMAND
//! chaos run [--report DIR] [--cycles N] [--defect NAME]... [--only NAME]... [--format text|json]
//!           [--metrics-addr ADDR] [--metrics-linger DUR] [--metrics-file PATH] [--pushgateway URL] [--trace-file PATH]
//! chaos list [--format text|json]                                 the built-in scenarios
//! chaos report [DIR] | --compare OLD NEW [--format text|json]     re-render a saved run, or compare two
//! chaos doctor [--format text|json]                               what this machine lacks, and the fix
//! chaos export --to chaos-mesh FILE [-o DIR|FILE] [--namespace NS]   Kubernetes manifests (exit 4: partial)
//! chaos cleanup [--force] [--dry-run] [--match TEXT] [--journals-only] [--json]   emergency stop
//! ```
//!
//! Exit codes: 0 every scenario passed; 1 a scenario failed (doctor: a required capability is
//! missing); 2 invalid arguments or an unwritable output path (checked before anything runs);
//! 3 the harness could not run; 5 the production guard refused (see
//! `chaos_harness::sandbox::production`); 130/143 interrupted by SIGINT/SIGTERM (partial report written).
//! `CHAOS_NOTIFY_WEBHOOK`: on failure, `chaos run` POSTs the failing scenarios and the report
//! link (`CHAOS_REPORT_URL`, else the report path) as JSON.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::dispatch(args)
}
