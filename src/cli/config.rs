//! The project file `chaos.toml` and its profiles for `chaos run`, `validate` and `plan`:
//! found in the current directory or above (or `--config PATH`), profile from `--profile` or
//! `CHAOS_PROFILE`, layered with `CHAOS_*` variables and flags (see
//! `chaos_harness::scenario::project` for the order).

use std::path::{Path, PathBuf};

use chaos_harness::scenario::project::{Layer, ProjectFile, Resolved, Settings};

/// `--config` and `--profile`, shared by the subcommands that read chaos.toml.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// The project file (default: chaos.toml in the current directory or the nearest above).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The profile of the project file to apply ([profile.NAME]); default: CHAOS_PROFILE.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

/// The project file (if any), the chosen profile and the environment layer.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The project file read, if one was found or given.
    pub project: Option<ProjectFile>,
    /// The chosen profile's settings (empty when none is chosen).
    pub profile: Settings,
    /// The profile's name.
    pub profile_name: Option<String>,
    /// The `CHAOS_*` layer.
    pub env: Settings,
}

/// Why the configuration could not be read: the message, and whether it is a bad file (exit 1
/// for validate) or a bad invocation.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl ConfigArgs {
    /// Reads chaos.toml (from `--config`, else found from `cwd` upward), the profile and the
    /// environment (`env` is the variable lookup).
    pub fn load(&self, cwd: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let path = match &self.config {
            Some(p) => {
                if !p.is_file() {
                    return Err(ConfigError(format!(
                        "--config {}: no such file; give the path of a chaos.toml, or drop --config to search from the current directory upward",
                        p.display()
                    )));
                }
                Some(p.clone())
            }
            None => ProjectFile::find(cwd),
        };
        let project = path.map(|p| ProjectFile::load(&p)).transpose().map_err(|e| ConfigError(e.to_string()))?;
        let (name, from) = match &self.profile {
            Some(n) => (Some(n.clone()), "--profile"),
            None => (env("CHAOS_PROFILE").filter(|v| !v.trim().is_empty()), "CHAOS_PROFILE"),
        };
        let profile = match (&project, &name) {
            (_, None) => Settings::default(),
            (Some(p), Some(n)) => p.profile_from(Some(n), from).map_err(|e| ConfigError(e.to_string()))?.clone(),
            (None, Some(n)) => {
                return Err(ConfigError(format!(
                    "profile `{n}` (from {from}) asked for, but there is no chaos.toml in {} or above; \
                     create one with [profile.{n}], pass --config PATH, or unset {from}",
                    cwd.display()
                )));
            }
        };
        let env = Settings::from_env(env).map_err(|e| ConfigError(e.to_string()))?;
        Ok(Config { project, profile, profile_name: name, env })
    }
}

impl Config {
    /// Layers the flags, the environment, the profile, the scenario file, the project defaults
    /// and the built-in defaults.
    pub fn resolve(&self, flags: Settings, file: Settings, builtin: Settings) -> Resolved {
        let project = self.project.as_ref().map(|p| p.defaults.clone()).unwrap_or_default();
        Settings::resolve(&[
            (Layer::Flag, flags),
            (Layer::Env, self.env.clone()),
            (Layer::Profile, self.profile.clone()),
            (Layer::ScenarioFile, file),
            (Layer::Project, project),
            (Layer::BuiltIn, builtin),
        ])
    }

    /// "chaos.toml (profile ci)" for messages.
    pub fn describe(&self) -> String {
        match (&self.project, &self.profile_name) {
            (Some(p), Some(n)) => format!("{} (profile {n})", p.path.display()),
            (Some(p), None) => p.path.display().to_string(),
            (None, _) => "no chaos.toml".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(dir: &Path) {
        std::fs::write(
            dir.join("chaos.toml"),
            "timeout = \"2m\"\nreport_dir = \"out\"\n[profile.ci]\ntimeout = \"5m\"\n[profile.local]\nseed = 3\n",
        )
        .unwrap();
    }

    #[test]
    fn found_upward_with_the_profile_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        project(dir.path());
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        let env = |k: &str| (k == "CHAOS_PROFILE").then(|| "ci".to_string());
        let c = ConfigArgs::default().load(&dir.path().join("a/b"), env).unwrap();
        let r = c.resolve(Settings::default(), Settings::default(), Settings::default());
        assert_eq!(r.settings.timeout, Some(std::time::Duration::from_secs(300)));
        assert_eq!(r.source("timeout"), Some(Layer::Profile));
        assert_eq!(r.settings.report_dir, Some(dir.path().join("out")));
        // --profile wins over CHAOS_PROFILE.
        let args = ConfigArgs { profile: Some("local".into()), ..ConfigArgs::default() };
        let c = args.load(dir.path(), env).unwrap();
        assert_eq!(c.profile.seed, Some(3));
    }

    #[test]
    fn an_unknown_profile_and_a_missing_project_are_errors_that_say_what_exists() {
        let dir = tempfile::tempdir().unwrap();
        project(dir.path());
        let args = ConfigArgs { profile: Some("cl".into()), ..ConfigArgs::default() };
        let e = args.load(dir.path(), |_| None).unwrap_err().0;
        assert!(e.contains("chaos.toml") && e.contains("ci, local") && e.contains("did you mean `ci`?"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        let e = args.load(empty.path(), |_| None).unwrap_err().0;
        assert!(e.contains("no chaos.toml") && e.contains("--config"), "{e}");
        let args = ConfigArgs { config: Some(empty.path().join("nope.toml")), ..ConfigArgs::default() };
        assert!(args.load(empty.path(), |_| None).unwrap_err().0.contains("nope.toml"));
    }
}
