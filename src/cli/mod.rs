//! Subcommands of the `chaos` CLI, one module each.

pub mod cleanup;
mod doctor;
mod export;
mod list;
mod plan;
mod report;
mod run;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit codes, shown under `--help`.
const EXIT_CODES: &str = "\
Exit codes:
  0    every scenario passed (doctor: every required capability is present)
  1    a scenario failed (doctor: a required capability is missing)
  2    invalid arguments, or an output path that cannot be written (checked before anything runs)
  3    the harness could not run (a capability is missing, the report could not be written)
  5    the production guard refused (CHAOS_ENV=prod*, or the production marker file)
  130  interrupted by SIGINT (143: SIGTERM); faults undone, a partial report written";

/// Chaos experiments against the Snakepit reference target (or a Snakepit Mix project).
#[derive(Debug, Parser)]
#[command(name = "chaos", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print less: no progress, only failures and the summary.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print more: every step and fault of the running scenario (-vv: every event).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Colour: auto (a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Snakepit chaos scenarios and write a report (HTML, JSON, CSV, JUnit, history).
    #[command(after_help = EXIT_CODES)]
    Run(run::RunArgs),
    /// List the built-in scenarios.
    List(list::ListArgs),
    /// Re-render HTML, CSV and JUnit from a saved report.json, or compare two runs
    /// (`--compare OLD NEW`).
    Report(report::ReportArgs),
    /// Probe every capability the harness uses and say how to fix what is missing.
    #[command(after_help = EXIT_CODES)]
    Doctor(doctor::DoctorArgs),
    /// Emergency stop: undo everything earlier runs journaled (faults healed, fixtures killed,
    /// namespaces, nft tables, mounts, cgroups, temp dirs removed), then sweep leftovers that
    /// match the naming rules. Idempotent; prints what it removed.
    Cleanup(cleanup::CleanupArgs),
    /// Check scenario files (`*.chaos.toml`) without running anything; exit 1 on any error.
    Validate(validate::ValidateArgs),
    /// Print the resolved timeline of a scenario file.
    Plan(plan::PlanArgs),
    /// Translate a scenario file into another chaos engine's manifests (`--to chaos-mesh`:
    /// Kubernetes YAML); what has no equivalent is listed on stderr and in the output.
    #[command(after_help = export::EXIT_CODES)]
    Export(export::ExportArgs),
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

/// Output format of `run`, `list` and `doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// One JSON document on stdout.
    Json,
}

/// When to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// How much to print, shared by the subcommands.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    /// `-q`.
    pub quiet: bool,
    /// `-v` count.
    pub verbose: u8,
}

/// Whether to colour, from `--color` and `NO_COLOR` (<https://no-color.org>: set and non-empty).
fn colors(choice: ColorChoice, no_color: Option<std::ffi::OsString>) -> Option<bool> {
    match choice {
        ColorChoice::Always => Some(true),
        ColorChoice::Never => Some(false),
        ColorChoice::Auto if no_color.is_some_and(|v| !v.is_empty()) => Some(false),
        ColorChoice::Auto => None,
    }
}

/// Runs the chosen subcommand and returns the process exit code.
pub fn dispatch(cli: Cli) -> ExitCode {
    if let Some(on) = colors(cli.color, std::env::var_os("NO_COLOR")) {
        console::set_colors_enabled(on);
        console::set_colors_enabled_stderr(on);
    }
    let ui = Ui { quiet: cli.quiet, verbose: cli.verbose };
    match cli.command {
        Command::Run(args) => run::run(args, ui),
        Command::Cleanup(args) => cleanup::run(&args),
        Command::Validate(args) => validate::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Export(args) => export::run(&args),
        Command::JunitMerge(args) => junit_merge(&args),
        Command::List(args) => list::run(&args),
        Command::Doctor(args) => doctor::run(&args),
        Command::Report(args) => report::run(&args),
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

    #[test]
    fn help_documents_the_exit_codes() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit codes:") && help.contains("130"), "{help}");
        let mut cmd = Cli::command();
        let run = cmd.find_subcommand_mut("run").unwrap().render_long_help().to_string();
        assert!(run.contains("2    invalid arguments, or an output path"), "{run}");
    }

    #[test]
    fn export_flags_parse() {
        let cli = Cli::try_parse_from(["chaos", "export", "--to", "chaos-mesh", "f.chaos.toml", "-o", "out/"]).unwrap();
        let Command::Export(a) = cli.command else { panic!("expected export") };
        assert_eq!(a.to, export::Engine::ChaosMesh);
        assert_eq!(a.out.as_deref(), Some(std::path::Path::new("out/")));
        assert_eq!(a.namespace, "default");
        assert!(Cli::try_parse_from(["chaos", "export", "--to", "litmus", "f.chaos.toml"]).is_err());
    }

    #[test]
    fn no_color_and_color_flag() {
        assert_eq!(colors(ColorChoice::Auto, Some("1".into())), Some(false));
        assert_eq!(colors(ColorChoice::Auto, Some("".into())), None);
        assert_eq!(colors(ColorChoice::Auto, None), None);
        assert_eq!(colors(ColorChoice::Always, Some("1".into())), Some(true));
        assert_eq!(colors(ColorChoice::Never, None), Some(false));
    }

    #[test]
    fn quiet_verbose_and_formats_parse() {
        let cli = Cli::try_parse_from(["chaos", "-vv", "list", "--format", "json"]).unwrap();
        assert_eq!(cli.verbose, 2);
        let Command::List(a) = cli.command else { panic!("expected list") };
        assert_eq!(a.format, Format::Json);
        let cli = Cli::try_parse_from(["chaos", "run", "-q", "--format", "json"]).unwrap();
        assert!(cli.quiet);
        assert!(Cli::try_parse_from(["chaos", "-q", "-v", "list"]).is_err());
    }
}
