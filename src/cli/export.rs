//! `chaos export --to chaos-mesh FILE [-o DIR|FILE] [--namespace NS]`: a scenario file as
//! Chaos Mesh manifests (one `Workflow` per scenario of the file; see
//! `snakepit_chaos::export::chaos_mesh` and docs/chaos-mesh.md). What cannot be translated is
//! printed to stderr and written into the output's comment header.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chaos_harness::scenario::file::{self, Options as FileOptions};
use clap::ValueEnum;
use snakepit_chaos::export::chaos_mesh::{self, Options};

/// Exit codes of `chaos export`, shown under its `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0    every step of every scenario was translated
  1    the scenario file is not valid (as `chaos validate` reports it)
  2    invalid arguments, or the output cannot be written
  4    written, but in part: the steps listed on stderr (and in the output's header) have no
       Chaos Mesh equivalent";

/// The engines `chaos export` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// Chaos Mesh (chaos-mesh.org/v1alpha1): PodChaos, NetworkChaos, StressChaos in a Workflow.
    ChaosMesh,
}

/// Arguments of `chaos export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The engine to export for.
    #[arg(long = "to", value_enum)]
    pub to: Engine,
    /// The scenario file (`*.chaos.toml`).
    pub file: PathBuf,
    /// Where to write: a directory (existing, or written with a trailing `/`) gets
    /// `<file stem>.yaml`; anything else is the file to write. Default: stdout.
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    /// The Kubernetes namespace of the Workflow and of the targets' pods.
    #[arg(long, default_value = "default")]
    pub namespace: String,
}

/// Where the YAML of `file` goes for `-o out`.
pub fn output_path(file: &Path, out: &Path) -> PathBuf {
    let is_dir = out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/');
    if !is_dir {
        return out.to_path_buf();
    }
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = name.strip_suffix(".chaos.toml").or_else(|| name.strip_suffix(".toml")).unwrap_or(&name);
    out.join(format!("{stem}.yaml"))
}

/// Runs `chaos export`.
pub fn run(args: &ExportArgs) -> ExitCode {
    let Engine::ChaosMesh = args.to;
    if chaos_mesh::dns_label(&args.namespace) != args.namespace {
        eprintln!(
            "error: namespace `{}` is not a Kubernetes name; use lowercase letters, digits and `-` (at most 63)",
            args.namespace
        );
        return ExitCode::from(2);
    }
    let loaded = match file::load(&args.file, &FileOptions::default()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let opts = Options { namespace: args.namespace.clone() };
    let exports: Vec<_> = loaded.iter().map(|l| chaos_mesh::export_as(&l.spec, &l.test_name, &opts)).collect();
    let source = args.file.display().to_string();
    let yaml = match chaos_mesh::render(&source, &exports, &opts) {
        Ok(y) => y,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match &args.out {
        None => print!("{yaml}"),
        Some(out) => {
            let path = output_path(&args.file, out);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                && out.as_os_str().to_string_lossy().ends_with('/')
                && let Err(e) = std::fs::create_dir_all(dir)
            {
                eprintln!("error: cannot create {}: {e}; check the path and its permissions", dir.display());
                return ExitCode::from(2);
            }
            if let Err(e) = std::fs::write(&path, &yaml) {
                eprintln!(
                    "error: cannot write {}: {e}; check that its directory exists and is writable",
                    path.display()
                );
                return ExitCode::from(2);
            }
            eprintln!("wrote {}", path.display());
        }
    }
    let mut partial = false;
    for e in &exports {
        if e.workflow.is_none() {
            eprintln!("scenario \"{}\": nothing could be exported", e.scenario);
        }
        if !e.untranslated.is_empty() {
            eprintln!("scenario \"{}\": not translated:", e.scenario);
            for u in &e.untranslated {
                eprintln!("  - {u}");
            }
        }
        partial |= !e.is_complete();
    }
    if partial { ExitCode::from(4) } else { ExitCode::SUCCESS }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_path_in_a_directory_or_a_file() {
        let f = Path::new("fixtures/scenarios/generic/http-kill.chaos.toml");
        assert_eq!(output_path(f, Path::new("out/")), Path::new("out/http-kill.yaml"));
        assert_eq!(output_path(f, Path::new("x.yaml")), Path::new("x.yaml"));
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(output_path(f, dir.path()), dir.path().join("http-kill.yaml"));
    }
}
