//! Subcommands of the `chaos` CLI, one module each.

pub mod cleanup;
mod plan;
mod run;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Chaos experiments against the Snakepit reference target (or a Snakepit Mix project).
#[derive(Debug, Parser)]
#[command(name = "chaos", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Snakepit chaos scenarios and write a report (HTML, JSON, CSV, JUnit, history).
    Run(run::RunArgs),
    /// List the built-in scenarios.
    List,
    /// Emergency stop: undo everything earlier runs journaled (faults healed, fixtures killed,
    /// namespaces, nft tables, mounts, cgroups, temp dirs removed), then sweep leftovers that
    /// match the naming rules. Idempotent; prints what it removed.
    Cleanup(cleanup::CleanupArgs),
    /// Check scenario files (`*.chaos.toml`) without running anything; exit 1 on any error.
    Validate(validate::ValidateArgs),
    /// Print the resolved timeline of a scenario file.
    Plan(plan::PlanArgs),
    /// Merge the JUnit reports of several CI shards (`cargo nextest run --partition hash:k/N`)
    /// into one: suites of the same name joined, totals recomputed.
    JunitMerge(JunitMergeArgs),
}

/// Arguments of `chaos junit-merge`.
#[derive(Debug, clap::Args)]
struct JunitMergeArgs {
    /// Where to write the merged report.
    #[arg(long)]
    out: std::path::PathBuf,
    /// The shards' JUnit files.
    #[arg(required = true)]
    inputs: Vec<std::path::PathBuf>,
}

fn junit_merge(args: &JunitMergeArgs) -> ExitCode {
    let mut texts = Vec::new();
    for p in &args.inputs {
        match std::fs::read_to_string(p) {
            Ok(t) => texts.push(t),
            Err(e) => {
                eprintln!(
                    "chaos junit-merge: cannot read {}: {e}; pass the junit.xml files the shards wrote",
                    p.display()
                );
                return ExitCode::from(2);
            }
        }
    }
    let merged = match snakepit_chaos::junit_merge::merge(&texts) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("chaos junit-merge: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::write(&args.out, merged) {
        eprintln!(
            "chaos junit-merge: cannot write {}: {e}; check the directory exists and is writable",
            args.out.display()
        );
        return ExitCode::from(2);
    }
    println!("merged {} report(s) into {}", texts.len(), args.out.display());
    ExitCode::SUCCESS
}

/// Runs the chosen subcommand and returns the process exit code.
pub fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Cleanup(args) => cleanup::run(&args),
        Command::Validate(args) => validate::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::JunitMerge(args) => junit_merge(&args),
        Command::List => {
            for s in run::SCENARIOS {
                println!("{:<28} {}", s.name, s.about);
            }
            ExitCode::SUCCESS
        }
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
        let cli =
            Cli::try_parse_from(["chaos", "cleanup", "--force", "--dry-run", "--match", "abc", "--json"]).unwrap();
        let Command::Cleanup(a) = cli.command else { panic!("expected cleanup") };
        assert!(a.force && a.dry_run && a.json && !a.journals_only);
        assert_eq!(a.matching.as_deref(), Some("abc"));
    }
}
