//! Command-line parsing (clap) and dispatch. Add a subcommand as a variant of [`Command`] with
//! its own module holding its `Args` and `run`.

pub mod cleanup;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Chaos experiments against real running systems, as ordinary Rust tests.
#[derive(Debug, Parser)]
#[command(name = "chaos", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Emergency stop: undo everything earlier runs journaled (faults healed, fixtures killed,
    /// namespaces, nft tables, mounts, cgroups, temp dirs removed), then sweep leftovers that
    /// match the naming rules. Idempotent; prints what it removed.
    Cleanup(cleanup::CleanupArgs),
}

/// Parses the command line and runs the subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Cleanup(args) => cleanup::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn cleanup_flags_parse() {
        let cli = Cli::try_parse_from(["chaos", "cleanup", "--force", "--dry-run", "--match", "abc", "--json"]).unwrap();
        let Command::Cleanup(a) = cli.command;
        assert!(a.force && a.dry_run && a.json && !a.journals_only);
        assert_eq!(a.matching.as_deref(), Some("abc"));
    }
}
