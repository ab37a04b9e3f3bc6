//! The project file `chaos.toml`: defaults for runs, environment profiles, and how they layer
//! with `CHAOS_*` variables, command-line flags and the scenario file.
//!
//! ```toml
//! # chaos.toml, at the project root (found from the current directory upward, or --config PATH)
//! seed = 42                          # defaults for every run
//! timeout = "2m"                     # per scenario, when its file sets none
//! tags = "generic,!slow"             # which scenarios run (a tag expression, or a list)
//! report_dir = "target/chaos-report" # relative paths are relative to this file
//! format = "text"                    # text | json
//! scenarios = ["fixtures/scenarios"] # what `chaos validate` / `chaos run` read when no file is named
//!
//! [profile.ci]                       # chosen with --profile ci or CHAOS_PROFILE=ci
//! timeout = "5m"
//! format = "json"
//! report_dir = "ci-report"
//! ```
//!
//! **Precedence**, highest first: command-line flag > `CHAOS_*` environment variable > the
//! selected profile > the scenario file > the `chaos.toml` defaults > built-in defaults.
//! Flags, variables and profiles are chosen when running, so they override; the scenario file
//! is more specific than project-wide defaults, so a default only fills what a file leaves
//! unsaid (a soak file's `timeout = "30m"` is not cut to a project `timeout = "2m"`).
//! docs/scenario-files.md says the same with examples.
//!
//! ```
//! use chaos_harness::scenario::project::{Layer, ProjectFile, Settings};
//! let p = ProjectFile::parse_str("chaos.toml", "timeout = \"2m\"\n[profile.ci]\ntimeout = \"5m\"\n").unwrap();
//! let env = Settings::from_env(|_| None).unwrap();
//! let r = Settings::resolve(&[
//!     (Layer::Env, env),
//!     (Layer::Profile, p.profile(Some("ci")).unwrap().clone()),
//!     (Layer::Project, p.defaults.clone()),
//! ]);
//! assert_eq!(r.settings.timeout, Some(std::time::Duration::from_secs(300)));
//! assert_eq!(r.source("timeout"), Some(Layer::Profile));
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::file::{FileError, FileErrors, Src, hint};
use crate::Error;
use crate::error::nearest;

/// The project file's name.
pub const FILE_NAME: &str = "chaos.toml";

/// The keys of the project file (and of each profile, less `profile`).
pub const KEYS: &[&str] = &["seed", "timeout", "tags", "report_dir", "format", "scenarios"];

/// Output formats a run accepts.
pub const FORMATS: &[&str] = &["text", "json"];

/// One layer's settings; `None` leaves the value to the layers below.
///
/// ```
/// use chaos_harness::scenario::project::Settings;
/// let s = Settings { seed: Some(7), ..Settings::default() };
/// assert_eq!(s.seed, Some(7));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Settings {
    /// The seed of every random choice (none: a fresh one per scenario).
    pub seed: Option<u64>,
    /// The timeout of one scenario.
    #[serde(with = "opt_duration")]
    pub timeout: Option<Duration>,
    /// Which scenarios run: a tag expression (`net,!soak`).
    pub tags: Option<String>,
    /// Where reports go.
    pub report_dir: Option<PathBuf>,
    /// The summary format (`text` or `json`).
    pub format: Option<String>,
    /// Scenario files or directories read when none are named.
    pub scenarios: Option<Vec<PathBuf>>,
}

mod opt_duration {
    pub fn serialize<S: serde::Serializer>(d: &Option<std::time::Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&crate::params::format_duration(*d)),
            None => s.serialize_none(),
        }
    }
}

/// Where a setting came from, highest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// A command-line flag.
    Flag,
    /// A `CHAOS_*` environment variable.
    Env,
    /// The profile chosen with `--profile` / `CHAOS_PROFILE`.
    Profile,
    /// The scenario file (its `timeout`).
    ScenarioFile,
    /// The top-level keys of `chaos.toml`.
    Project,
    /// The harness's own defaults.
    BuiltIn,
}

impl Layer {
    /// Every layer, highest precedence first.
    pub const ORDER: [Layer; 6] =
        [Layer::Flag, Layer::Env, Layer::Profile, Layer::ScenarioFile, Layer::Project, Layer::BuiltIn];
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layer::Flag => "command-line flag",
            Layer::Env => "CHAOS_* environment",
            Layer::Profile => "profile",
            Layer::ScenarioFile => "scenario file",
            Layer::Project => "chaos.toml",
            Layer::BuiltIn => "built-in default",
        })
    }
}

/// The settings after layering, with the layer each value came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The values.
    pub settings: Settings,
    /// Key -> the layer that set it.
    pub sources: BTreeMap<&'static str, Layer>,
}

impl Resolved {
    /// The layer that gave `key` its value, if any did.
    pub fn source(&self, key: &str) -> Option<Layer> {
        self.sources.get(key).copied()
    }
}

impl Settings {
    /// Layers settings: each value from the highest-precedence layer that sets it. The layers
    /// are sorted by [`Layer::ORDER`] first, so the caller's order does not matter.
    ///
    /// ```
    /// use chaos_harness::scenario::project::{Layer, Settings};
    /// let flag = Settings { seed: Some(1), ..Settings::default() };
    /// let env = Settings { seed: Some(2), format: Some("json".into()), ..Settings::default() };
    /// let r = Settings::resolve(&[(Layer::Env, env), (Layer::Flag, flag)]);
    /// assert_eq!((r.settings.seed, r.settings.format.as_deref()), (Some(1), Some("json")));
    /// ```
    pub fn resolve(layers: &[(Layer, Settings)]) -> Resolved {
        let mut sorted: Vec<&(Layer, Settings)> = layers.iter().collect();
        sorted.sort_by_key(|(l, _)| *l);
        let mut out = Resolved::default();
        for (layer, s) in sorted {
            macro_rules! take {
                ($field:ident) => {
                    if out.settings.$field.is_none() && s.$field.is_some() {
                        out.settings.$field = s.$field.clone();
                        out.sources.insert(stringify!($field), *layer);
                    }
                };
            }
            take!(seed);
            take!(timeout);
            take!(tags);
            take!(report_dir);
            take!(format);
            take!(scenarios);
        }
        out
    }

    /// The `CHAOS_*` layer: `CHAOS_SEED` (decimal or 0x hex), `CHAOS_TIMEOUT`, `CHAOS_TAGS`,
    /// `CHAOS_REPORT_DIR`, `CHAOS_FORMAT`, `CHAOS_SCENARIOS` (paths separated by `:`). Empty
    /// variables count as unset.
    ///
    /// ```
    /// use chaos_harness::scenario::project::Settings;
    /// let s = Settings::from_env(|k| (k == "CHAOS_TIMEOUT").then(|| "90s".to_string())).unwrap();
    /// assert_eq!(s.timeout, Some(std::time::Duration::from_secs(90)));
    /// assert!(Settings::from_env(|k| (k == "CHAOS_FORMAT").then(|| "xml".to_string())).is_err());
    /// ```
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Settings, Error> {
        let get = |k: &str| env(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let bad = |k: &str, cause: String, fix: &str| Error::Config { what: k.into(), cause, fix: fix.into() };
        let mut s = Settings::default();
        if let Some(v) = get("CHAOS_SEED") {
            s.seed =
                Some(parse_seed(&v).ok_or_else(|| {
                    bad("CHAOS_SEED", format!("`{v}` is not a number"), "write e.g. CHAOS_SEED=12345")
                })?);
        }
        if let Some(v) = get("CHAOS_TIMEOUT") {
            s.timeout =
                Some(humantime::parse_duration(&v).map_err(|e| {
                    bad("CHAOS_TIMEOUT", format!("`{v}`: {e}"), "write a duration like 90s, 5m or 1m 30s")
                })?);
        }
        s.tags = get("CHAOS_TAGS");
        s.report_dir = get("CHAOS_REPORT_DIR").map(PathBuf::from);
        if let Some(v) = get("CHAOS_FORMAT") {
            if !FORMATS.contains(&v.as_str()) {
                return Err(bad(
                    "CHAOS_FORMAT",
                    format!(
                        "`{v}` is not a format{}",
                        nearest(&v, FORMATS).map(|n| format!(" (did you mean `{n}`?)")).unwrap_or_default()
                    ),
                    "write CHAOS_FORMAT=text or CHAOS_FORMAT=json",
                ));
            }
            s.format = Some(v);
        }
        s.scenarios =
            get("CHAOS_SCENARIOS").map(|v| v.split(':').filter(|p| !p.is_empty()).map(PathBuf::from).collect());
        Ok(s)
    }
}

/// Parses a seed written in decimal or `0x` hex.
fn parse_seed(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// A read `chaos.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectFile {
    /// Where it was read from (shown in messages).
    pub path: PathBuf,
    /// Its top-level keys.
    pub defaults: Settings,
    /// `[profile.NAME]` tables.
    pub profiles: BTreeMap<String, Settings>,
}

/// A profile that the project file does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown profile `{name}` (from {from}): {file} defines {}{}; {}",
    if defined.is_empty() { "no profiles".to_string() } else { format!("the profiles {}", defined.join(", ")) },
    nearest.as_ref().map(|n| format!(", did you mean `{n}`?")).unwrap_or_default(),
    if defined.is_empty() { format!("add [profile.{name}] to {file}, or unset it") } else { format!("add [profile.{name}] to {file}, or choose one of them") }
)]
pub struct UnknownProfile {
    /// The profile asked for.
    pub name: String,
    /// Who asked: `--profile` or `CHAOS_PROFILE`.
    pub from: String,
    /// The project file.
    pub file: String,
    /// The profiles it defines.
    pub defined: Vec<String>,
    /// The nearest of them.
    pub nearest: Option<String>,
}

impl ProjectFile {
    /// The `chaos.toml` in `dir` or the nearest directory above it.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::write(dir.path().join("chaos.toml"), "").unwrap();
    /// std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
    /// let found = chaos_harness::scenario::project::ProjectFile::find(&dir.path().join("a/b")).unwrap();
    /// assert_eq!(found, dir.path().join("chaos.toml"));
    /// ```
    pub fn find(dir: &Path) -> Option<PathBuf> {
        dir.ancestors().map(|d| d.join(FILE_NAME)).find(|p| p.is_file())
    }

    /// Reads a project file; relative paths in it are made relative to its directory.
    pub fn load(path: &Path) -> Result<ProjectFile, FileErrors> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            FileErrors(vec![FileError {
                file: display.clone(),
                line: 1,
                column: 1,
                key: String::new(),
                message: format!("cannot read the project file: {e}"),
                help: "check the path given to --config".into(),
            }])
        })?;
        let mut p = Self::parse_str(&display, &text)?;
        p.path = path.to_path_buf();
        let base = path.parent().unwrap_or(Path::new("."));
        for s in std::iter::once(&mut p.defaults).chain(p.profiles.values_mut()) {
            if let Some(d) = &mut s.report_dir
                && d.is_relative()
            {
                *d = base.join(&*d);
            }
            for d in s.scenarios.iter_mut().flatten() {
                if d.is_relative() {
                    *d = base.join(&*d);
                }
            }
        }
        Ok(p)
    }

    /// Parses a project file's text (`name` is used in messages); every error at once, each
    /// with file:line:column and the nearest valid key.
    ///
    /// ```
    /// let e = chaos_harness::scenario::project::ProjectFile::parse_str("chaos.toml", "timout = \"1m\"\n").unwrap_err();
    /// assert!(e.to_string().starts_with("chaos.toml:1:1: unknown key `timout`"), "{e}");
    /// assert!(e.to_string().contains("did you mean `timeout`?"));
    /// ```
    pub fn parse_str(name: &str, text: &str) -> Result<ProjectFile, FileErrors> {
        let mut src = Src { file: name, text, errors: Vec::new() };
        let (doc, parse_errors) = DeTable::parse_recoverable(text);
        for e in parse_errors {
            let span = e.span().unwrap_or(0..0);
            let msg = e.message().lines().next().unwrap_or("invalid TOML").to_string();
            src.err(
                span,
                "",
                format!("invalid TOML: {msg}"),
                "fix the TOML syntax (strings need quotes, tables [name])",
            );
        }
        if !src.errors.is_empty() {
            return Err(FileErrors(src.errors));
        }
        let doc = doc.into_inner();
        let mut out = ProjectFile { path: PathBuf::from(name), ..ProjectFile::default() };
        out.defaults = read_settings(&mut src, &doc, "", true);
        if let Some(pv) = doc.get("profile") {
            match pv.get_ref() {
                DeValue::Table(t) => {
                    for (k, v) in t.iter() {
                        let at = format!("profile.{}", k.get_ref());
                        match v.get_ref() {
                            DeValue::Table(pt) => {
                                let s = read_settings(&mut src, pt, &format!("{at}."), false);
                                out.profiles.insert(k.get_ref().to_string(), s);
                            }
                            other => src.err(
                                v.span(),
                                &at,
                                format!("`{at}`: expected a table, found {}", other.type_str()),
                                format!("write [{at}] with its keys below"),
                            ),
                        }
                    }
                }
                other => src.err(
                    pv.span(),
                    "profile",
                    format!("`profile`: expected a table of profiles, found {}", other.type_str()),
                    "write [profile.ci] with its keys below",
                ),
            }
        }
        if src.errors.is_empty() { Ok(out) } else { Err(FileErrors(src.errors)) }
    }

    /// The profile `name` (none: an empty layer). `from` says who chose it in the error.
    ///
    /// ```
    /// let p = chaos_harness::scenario::project::ProjectFile::parse_str("chaos.toml", "[profile.ci]\nseed = 1\n").unwrap();
    /// assert_eq!(p.profile(Some("ci")).unwrap().seed, Some(1));
    /// let e = p.profile(Some("cj")).unwrap_err().to_string();
    /// assert!(e.contains("chaos.toml") && e.contains("did you mean `ci`?"), "{e}");
    /// ```
    pub fn profile(&self, name: Option<&str>) -> Result<&Settings, UnknownProfile> {
        self.profile_from(name, "--profile")
    }

    /// [`ProjectFile::profile`], naming who chose it (`--profile` or `CHAOS_PROFILE`).
    pub fn profile_from(&self, name: Option<&str>, from: &str) -> Result<&Settings, UnknownProfile> {
        static EMPTY: Settings =
            Settings { seed: None, timeout: None, tags: None, report_dir: None, format: None, scenarios: None };
        let Some(name) = name else { return Ok(&EMPTY) };
        self.profiles.get(name).ok_or_else(|| {
            let defined: Vec<String> = self.profiles.keys().cloned().collect();
            let names: Vec<&str> = defined.iter().map(String::as_str).collect();
            UnknownProfile {
                name: name.to_string(),
                from: from.to_string(),
                file: self.path.display().to_string(),
                nearest: nearest(name, &names).map(str::to_string),
                defined,
            }
        })
    }
}

fn read_settings(src: &mut Src<'_>, t: &DeTable<'_>, prefix: &str, top: bool) -> Settings {
    let mut s = Settings::default();
    for (k, v) in t.iter() {
        let key = k.get_ref().as_ref();
        let full = format!("{prefix}{key}");
        match key {
            "profile" if top => {}
            "seed" => s.seed = read_seed(src, v, &full),
            "timeout" => s.timeout = read_duration(src, v, &full),
            "tags" => s.tags = read_tags(src, v, &full),
            "report_dir" => s.report_dir = read_string(src, v, &full).map(PathBuf::from),
            "format" => {
                if let Some(f) = read_string(src, v, &full) {
                    if FORMATS.contains(&f.as_str()) {
                        s.format = Some(f);
                    } else {
                        src.err(v.span(), &full, format!("unknown format `{f}`"), hint(&f, FORMATS));
                    }
                }
            }
            "scenarios" => match v.get_ref() {
                DeValue::Array(a) if a.iter().all(|x| x.get_ref().as_str().is_some()) => {
                    s.scenarios = Some(a.iter().filter_map(|x| x.get_ref().as_str()).map(PathBuf::from).collect());
                }
                _ => src.err(
                    v.span(),
                    &full,
                    format!("`{full}`: expected a list of paths"),
                    "write scenarios = [\"fixtures/scenarios\"]",
                ),
            },
            other => {
                let valid: Vec<&str> = KEYS.iter().copied().chain(top.then_some("profile")).collect();
                let help = match other {
                    "profiles" if top => "did you mean `profile`? (write [profile.NAME])".to_string(),
                    "target" | "step" | "expect" | "load" | "guard" => {
                        format!("`{other}` belongs in a scenario file (*.chaos.toml), not in chaos.toml")
                    }
                    _ => hint(other, &valid),
                };
                let what = if top { "chaos.toml".to_string() } else { format!("[{}]", prefix.trim_end_matches('.')) };
                src.err(k.span(), &full, format!("unknown key `{other}` in {what}"), help);
            }
        }
    }
    s
}

fn read_string(src: &mut Src<'_>, v: &Spanned<DeValue<'_>>, key: &str) -> Option<String> {
    match v.get_ref() {
        DeValue::String(s) => Some(s.to_string()),
        other => {
            src.err(
                v.span(),
                key,
                format!("`{key}`: expected a string, found {}", other.type_str()),
                format!("write {} = \"...\"", key.rsplit('.').next().unwrap_or(key)),
            );
            None
        }
    }
}

fn read_seed(src: &mut Src<'_>, v: &Spanned<DeValue<'_>>, key: &str) -> Option<u64> {
    let parsed = match v.get_ref() {
        DeValue::Integer(i) => u64::from_str_radix(i.as_str().replace('_', "").trim_start_matches('+'), i.radix()).ok(),
        DeValue::String(s) => parse_seed(s),
        _ => None,
    };
    if parsed.is_none() {
        src.err(v.span(), key, format!("`{key}`: expected a whole number from 0 to 2^64-1"), "write seed = 12345");
    }
    parsed
}

fn read_duration(src: &mut Src<'_>, v: &Spanned<DeValue<'_>>, key: &str) -> Option<Duration> {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    match v.get_ref() {
        DeValue::String(s) => match humantime::parse_duration(s) {
            Ok(d) => Some(d),
            Err(e) => {
                src.err(
                    v.span(),
                    key,
                    format!("`{key}`: {:?} is not a duration ({e})", s.as_ref()),
                    "expected a duration like \"500ms\", \"5s\" or \"2m\"",
                );
                None
            }
        },
        DeValue::Integer(i) => {
            src.err(
                v.span(),
                key,
                format!("`{key}`: expected a duration string, found {}", i.as_str()),
                format!("write {leaf} = \"{}s\"", i.as_str()),
            );
            None
        }
        other => {
            src.err(
                v.span(),
                key,
                format!("`{key}`: expected a duration string, found {}", other.type_str()),
                format!("write {leaf} = \"90s\""),
            );
            None
        }
    }
}

fn read_tags(src: &mut Src<'_>, v: &Spanned<DeValue<'_>>, key: &str) -> Option<String> {
    let ok = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || "-_!:".contains(c));
    let tags: Option<Vec<String>> = match v.get_ref() {
        DeValue::String(s) => Some(s.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect()),
        DeValue::Array(a) => a.iter().map(|x| x.get_ref().as_str().map(str::to_string)).collect(),
        _ => None,
    };
    match tags {
        Some(t) if t.iter().all(|x| ok(x)) => Some(t.join(",")),
        _ => {
            src.err(
                v.span(),
                key,
                format!("`{key}`: expected a tag expression or a list of tags"),
                "write tags = \"net,!slow\" or tags = [\"net\", \"!slow\"]",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A layer that sets every key to a value telling the layer apart.
    fn layer(l: Layer) -> Settings {
        let n = l as u64 + 1;
        Settings {
            seed: Some(n),
            timeout: Some(Duration::from_secs(n)),
            tags: Some(format!("t{n}")),
            report_dir: Some(PathBuf::from(format!("r{n}"))),
            format: Some(FORMATS[(n % 2) as usize].to_string()),
            scenarios: Some(vec![PathBuf::from(format!("s{n}"))]),
        }
    }

    /// Only `hi` and `lo` set values; every key must come from `hi`. The scenario file only
    /// ever sets `timeout`, so for pairs with it only that key is compared.
    fn check_pair(hi: Layer, lo: Layer) {
        let file_only = |l: Layer, s: Settings| {
            if l == Layer::ScenarioFile { Settings { timeout: s.timeout, ..Settings::default() } } else { s }
        };
        // Given in the wrong order on purpose: resolve sorts by precedence.
        let r = Settings::resolve(&[(lo, file_only(lo, layer(lo))), (hi, file_only(hi, layer(hi)))]);
        let want = file_only(hi, layer(hi));
        assert_eq!(r.settings.timeout, want.timeout, "{hi:?} over {lo:?}");
        assert_eq!(r.source("timeout"), Some(hi));
        if hi != Layer::ScenarioFile && lo != Layer::ScenarioFile {
            assert_eq!(r.settings, want, "{hi:?} over {lo:?}");
            assert!(r.sources.values().all(|l| *l == hi), "{:?}", r.sources);
        }
    }

    macro_rules! pairs {
        ($($name:ident: $hi:ident > $lo:ident;)*) => {$(
            #[test]
            fn $name() {
                check_pair(Layer::$hi, Layer::$lo);
            }
        )*};
    }

    pairs! {
        flag_beats_env: Flag > Env;
        flag_beats_profile: Flag > Profile;
        flag_beats_scenario_file: Flag > ScenarioFile;
        flag_beats_project_defaults: Flag > Project;
        flag_beats_built_in: Flag > BuiltIn;
        env_beats_profile: Env > Profile;
        env_beats_scenario_file: Env > ScenarioFile;
        env_beats_project_defaults: Env > Project;
        env_beats_built_in: Env > BuiltIn;
        profile_beats_scenario_file: Profile > ScenarioFile;
        profile_beats_project_defaults: Profile > Project;
        profile_beats_built_in: Profile > BuiltIn;
        scenario_file_beats_project_defaults: ScenarioFile > Project;
        scenario_file_beats_built_in: ScenarioFile > BuiltIn;
        project_defaults_beat_built_in: Project > BuiltIn;
    }

    #[test]
    fn a_lower_layer_fills_what_a_higher_one_leaves_unset() {
        let flag = Settings { seed: Some(1), ..Settings::default() };
        let r = Settings::resolve(&[(Layer::Flag, flag), (Layer::BuiltIn, layer(Layer::BuiltIn))]);
        assert_eq!(r.settings.seed, Some(1));
        assert_eq!(r.settings.report_dir, layer(Layer::BuiltIn).report_dir);
        assert_eq!((r.source("seed"), r.source("report_dir")), (Some(Layer::Flag), Some(Layer::BuiltIn)));
    }

    #[test]
    fn the_environment_layer_reads_every_chaos_variable() {
        let vars: BTreeMap<&str, &str> = [
            ("CHAOS_SEED", "0x10"),
            ("CHAOS_TIMEOUT", "1m 30s"),
            ("CHAOS_TAGS", "net,!soak"),
            ("CHAOS_REPORT_DIR", "out"),
            ("CHAOS_FORMAT", "json"),
            ("CHAOS_SCENARIOS", "a:b"),
        ]
        .into();
        let s = Settings::from_env(|k| vars.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(s.seed, Some(16));
        assert_eq!(s.timeout, Some(Duration::from_secs(90)));
        assert_eq!(s.tags.as_deref(), Some("net,!soak"));
        assert_eq!(s.report_dir, Some(PathBuf::from("out")));
        assert_eq!(s.format.as_deref(), Some("json"));
        assert_eq!(s.scenarios, Some(vec![PathBuf::from("a"), PathBuf::from("b")]));
        for (k, v, want) in [
            ("CHAOS_SEED", "abc", "CHAOS_SEED"),
            ("CHAOS_TIMEOUT", "soon", "CHAOS_TIMEOUT"),
            ("CHAOS_FORMAT", "jsn", "did you mean `json`?"),
        ] {
            let e = Settings::from_env(|x| (x == k).then(|| v.to_string())).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains(v), "{e}");
        }
        assert_eq!(Settings::from_env(|_| Some(" ".into())).unwrap(), Settings::default());
    }

    const PROJECT: &str = "seed = 7\ntimeout = \"2m\"\ntags = [\"generic\", \"!slow\"]\nreport_dir = \"out\"\nformat = \"text\"\nscenarios = [\"fixtures/scenarios\"]\n\n[profile.ci]\ntimeout = \"5m\"\nformat = \"json\"\n\n[profile.local]\nseed = \"0xff\"\n";

    #[test]
    fn a_project_file_reads_defaults_and_profiles() {
        let p = ProjectFile::parse_str("chaos.toml", PROJECT).unwrap();
        assert_eq!(p.defaults.seed, Some(7));
        assert_eq!(p.defaults.tags.as_deref(), Some("generic,!slow"));
        assert_eq!(p.profiles["ci"].timeout, Some(Duration::from_secs(300)));
        assert_eq!(p.profile(Some("local")).unwrap().seed, Some(255));
        assert_eq!(p.profile(None).unwrap(), &Settings::default());
    }

    #[test]
    fn load_makes_paths_relative_to_the_project_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), PROJECT).unwrap();
        let p = ProjectFile::load(&dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(p.defaults.report_dir, Some(dir.path().join("out")));
        assert_eq!(p.defaults.scenarios, Some(vec![dir.path().join("fixtures/scenarios")]));
    }

    #[test]
    fn an_unknown_profile_names_the_file_the_profiles_and_the_nearest() {
        let p = ProjectFile { path: "proj/chaos.toml".into(), ..ProjectFile::parse_str("x", PROJECT).unwrap() };
        let e = p.profile_from(Some("lokal"), "CHAOS_PROFILE").unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown profile `lokal` (from CHAOS_PROFILE): proj/chaos.toml defines the profiles ci, local, did you mean `local`?; add [profile.lokal] to proj/chaos.toml, or choose one of them"
        );
        let none = ProjectFile { path: "chaos.toml".into(), ..ProjectFile::default() };
        let e = none.profile(Some("ci")).unwrap_err().to_string();
        assert!(e.contains("defines no profiles") && e.contains("add [profile.ci]"), "{e}");
    }

    #[test]
    fn bad_keys_name_file_line_column_and_the_nearest_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("timout = \"1m\"\n", "chaos.toml:1:1: unknown key `timout` in chaos.toml", "did you mean `timeout`?"),
            (
                "[profile.ci]\nformt = \"json\"\n",
                "chaos.toml:2:1: unknown key `formt` in [profile.ci]",
                "did you mean `format`?",
            ),
            (
                "[profiles.ci]\nseed = 1\n",
                "chaos.toml:1:2: unknown key `profiles` in chaos.toml",
                "did you mean `profile`?",
            ),
            ("timeout = 90\n", "chaos.toml:1:11: `timeout`: expected a duration string, found 90", "timeout = \"90s\""),
            (
                "[profile.ci]\ntimeout = \"5 parsecs\"\n",
                "chaos.toml:2:11: `profile.ci.timeout`: \"5 parsecs\" is not a duration",
                "\"500ms\"",
            ),
            ("format = \"jsn\"\n", "chaos.toml:1:10: unknown format `jsn`", "did you mean `json`?"),
            ("seed = -1\n", "chaos.toml:1:8: `seed`: expected a whole number", "seed = 12345"),
            ("tags = 3\n", "chaos.toml:1:8: `tags`: expected a tag expression or a list of tags", "net,!slow"),
            ("scenarios = \"dir\"\n", "chaos.toml:1:13: `scenarios`: expected a list of paths", "scenarios = ["),
            (
                "[[step]]\nwait = \"1s\"\n",
                "chaos.toml:1:3: unknown key `step` in chaos.toml",
                "belongs in a scenario file",
            ),
            ("profile = 1\n", "chaos.toml:1:11: `profile`: expected a table of profiles", "[profile.ci]"),
            ("seed = \n", "chaos.toml:1:8: invalid TOML", "TOML syntax"),
        ];
        for (text, first, help) in cases {
            let e = ProjectFile::parse_str("chaos.toml", text).unwrap_err();
            let shown = e.0[0].to_string();
            assert!(shown.starts_with(first) && shown.contains(help), "{text:?}: {shown}");
        }
        // Several at once.
        let e = ProjectFile::parse_str("chaos.toml", "timout = \"1m\"\nformat = \"xml\"\n").unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
    }
}
