//! The `chaos` command-line interface. Subcommands live in `cli/`, one module each.
//!
//! ```text
//! chaos cleanup [--force] [--dry-run] [--match TEXT] [--journals-only] [--json]
//! ```

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
