//! Subcommands of the `chaos` CLI, one module each.

mod run;

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
}

/// Runs the chosen subcommand and returns the process exit code.
pub fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::List => {
            for s in run::SCENARIOS {
                println!("{:<28} {}", s.name, s.about);
            }
            ExitCode::SUCCESS
        }
    }
}
