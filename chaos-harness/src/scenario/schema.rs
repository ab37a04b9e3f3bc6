//! JSON Schemas of the scenario file (`*.chaos.toml`) and the project file (`chaos.toml`),
//! generated from the types below with `schemars` and checked in under `schema/` (a test fails
//! when they are stale; `UPDATE_SCHEMA=1` rewrites them). Editors use them through taplo /
//! Even Better TOML: put `#:schema ./schema/chaos-scenario.schema.json` (a path relative to
//! the file, or a URL) on the first line of a file.
//!
//! The types mirror the file's shape, not [`ScenarioSpec`](super::ScenarioSpec): the reader
//! in [`file`](super::file) maps that shape onto the spec (phases, aliases, templates). A
//! test checks that the schema's keys are the reader's keys. Fault, criterion and target kind
//! names and their parameters are open here (plugins add them); `chaos validate` checks them.
//!
//! ```
//! let schema = chaos_harness::scenario::schema::scenario_schema();
//! assert_eq!(schema["title"], "chaos scenario file");
//! assert!(schema["properties"]["step"].is_object());
//! ```

use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::Value;

/// `${NAME}` or `${NAME:-default}`: a template parameter or environment variable.
const INTERP: &str = r"\$\{[^}]*\}";

fn duration(_: &mut SchemaGenerator) -> Schema {
    let item = format!(r"({INTERP}|[0-9]+\s*[a-zA-Zµ]+)");
    json_schema!({
        "type": "string",
        "description": "a duration: \"500ms\", \"5s\", \"2m\", \"1m 30s\" (or ${PARAM})",
        "pattern": format!(r"^\s*{item}(\s*{item})*\s*$"),
        "examples": ["500ms", "5s", "2m"],
    })
}

fn rate(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "requests per second: a number, or \"200/s\" (per s, m or h)",
        "anyOf": [
            { "type": "number", "exclusiveMinimum": 0 },
            { "type": "string", "pattern": format!(r"^\s*([0-9]+(\.[0-9]+)?\s*/\s*(s|m|h)|{INTERP})\s*$") },
        ],
    })
}

fn count(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "a whole number (or ${PARAM})",
        "anyOf": [
            { "type": "integer", "minimum": 0 },
            { "type": "string", "pattern": format!(r"^{INTERP}$") },
        ],
    })
}

fn repeat(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "how many times the scenario runs (1 to 10000)",
        "anyOf": [
            { "type": "integer", "minimum": 1, "maximum": 10000 },
            { "type": "string", "pattern": format!(r"^{INTERP}$") },
        ],
    })
}

fn always_true(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "const": true })
}

fn phase(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "when the criterion is judged: baseline (before the first inject), fault (after it), recovery (after the last step)",
        "enum": ["baseline", "fault", "recovery"],
    })
}

fn guard_kind(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "enum": super::spec::GUARD_KINDS })
}

fn load_kind(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "enum": ["constant_rate", "closed_loop", "ramp"] })
}

fn format_kind(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "enum": super::project::FORMATS })
}

fn seed(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "a seed: a whole number, or \"0x\" hex in a string",
        "anyOf": [
            { "type": "integer", "minimum": 0 },
            { "type": "string", "pattern": "^\\s*(0[xX][0-9a-fA-F]+|[0-9]+)\\s*$" },
        ],
    })
}

fn tags_expr(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "a tag expression (\"net,!slow\") or a list of tags ([\"net\", \"!slow\"])",
        "anyOf": [
            { "type": "string" },
            { "type": "array", "items": { "type": "string", "pattern": "^[A-Za-z0-9_:!-]+$" } },
        ],
    })
}

fn non_empty_strings(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "array", "items": { "type": "string" }, "minItems": 1 })
}

/// A scenario file (`*.chaos.toml`).
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "chaos scenario file",
    description = "A chaos scenario (*.chaos.toml): targets, load, steps, criteria, guards. See docs/scenario-files.md."
)]
pub struct ScenarioFile {
    /// The scenario's name (default: the file name less `.chaos.toml`).
    pub name: Option<String>,
    /// Its tags: the test runner selects scenarios by them.
    pub tags: Option<Vec<String>>,
    /// How long the whole scenario may take.
    #[serde(default)]
    #[schemars(schema_with = "duration")]
    pub timeout: Option<String>,
    /// How many times it runs.
    #[serde(default)]
    #[schemars(schema_with = "repeat")]
    pub repeat: Option<Value>,
    /// A base file (relative to this one) whose keys this file overrides.
    pub extends: Option<String>,
    /// Template parameters: each key a value or a list of values; one scenario per combination.
    pub params: Option<BTreeMap<String, Value>>,
    /// The programs and resources under test, by name.
    pub target: Option<BTreeMap<String, Target>>,
    /// The load driven during the scenario.
    pub load: Option<LoadTable>,
    /// The timeline.
    pub step: Option<Vec<Step>>,
    /// Criteria judged in a phase.
    pub expect: Option<Vec<Expect>>,
    /// Stop conditions that end the scenario early.
    pub guard: Option<Vec<Guard>>,
    /// Several scenarios in one file, by id: each is the file's keys with its own over them
    /// (`target` tables merge, `tags` add up).
    pub scenario: Option<BTreeMap<String, SubScenario>>,
}

/// One scenario of a file with `[scenario.ID]` tables.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubScenario {
    /// The scenario's name (default: `<file stem>::<id>`).
    pub name: Option<String>,
    /// Tags added to the file's.
    pub tags: Option<Vec<String>>,
    /// How long the whole scenario may take.
    #[serde(default)]
    #[schemars(schema_with = "duration")]
    pub timeout: Option<String>,
    /// How many times it runs.
    #[serde(default)]
    #[schemars(schema_with = "repeat")]
    pub repeat: Option<Value>,
    /// Targets added to (or replacing) the file's.
    pub target: Option<BTreeMap<String, Target>>,
    /// The load driven during the scenario.
    pub load: Option<LoadTable>,
    /// The timeline.
    pub step: Option<Vec<Step>>,
    /// Criteria judged in a phase.
    pub expect: Option<Vec<Expect>>,
    /// Stop conditions that end the scenario early.
    pub guard: Option<Vec<Guard>>,
}

/// A target: any program (`command`) or a registered kind (`kind = "snakepit"`, `"link"`, `"netns"`).
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Target {
    /// Any program.
    Command(Box<CommandTarget>),
    /// A registered kind with its parameters.
    Kind(KindTarget),
}

/// Any program as a target.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandTarget {
    /// The fixture's name (default: the target's key).
    pub name: Option<String>,
    /// The program and its arguments.
    #[schemars(schema_with = "non_empty_strings")]
    pub command: Vec<String>,
    /// Extra environment variables.
    pub env: Option<BTreeMap<String, String>>,
    /// Working directory.
    pub cwd: Option<String>,
    /// Readiness probes: the target is ready when they pass.
    pub ready: Option<Ready>,
    /// How long readiness may take (default 10s).
    #[serde(default)]
    #[schemars(schema_with = "duration")]
    pub ready_timeout: Option<String>,
    /// Run as this user (needs root).
    pub user: Option<String>,
    /// Run inside this network namespace: a target of kind `netns` of the same file.
    pub netns: Option<String>,
}

/// Readiness probes of a command target.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    /// A TCP connect to IP:PORT succeeds.
    pub tcp: Option<String>,
    /// GET IP:PORT/PATH answers 200.
    pub http: Option<String>,
    /// A line of the program's output matches this regex.
    pub log_line: Option<String>,
    /// This file exists.
    pub file: Option<String>,
}

/// A target of a registered kind; its other keys are the kind's parameters.
#[derive(Debug, serde::Deserialize, JsonSchema)]
pub struct KindTarget {
    /// The kind (`snakepit`, `link`, `netns`, or a plugin's).
    pub kind: String,
    /// The kind's parameters.
    #[serde(flatten)]
    pub params: BTreeMap<String, Value>,
}

/// The load.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadTable {
    /// `constant_rate` (default, open loop), `closed_loop`, or `ramp` (open loop from `from` to
    /// `to` per second over `over`, then holding `to`).
    #[serde(default)]
    #[schemars(schema_with = "load_kind")]
    pub kind: Option<String>,
    /// Requests per second (constant_rate).
    #[serde(default)]
    #[schemars(schema_with = "rate")]
    pub rate: Option<Value>,
    /// Starting rate (ramp; default 0).
    #[serde(default)]
    #[schemars(schema_with = "rate")]
    pub from: Option<Value>,
    /// Final rate (ramp).
    #[serde(default)]
    #[schemars(schema_with = "rate")]
    pub to: Option<Value>,
    /// How long the ramp takes (ramp).
    #[serde(default)]
    #[schemars(schema_with = "duration")]
    pub over: Option<String>,
    /// Concurrent clients (closed_loop).
    #[serde(default)]
    #[schemars(schema_with = "count")]
    pub clients: Option<Value>,
    /// Per-request timeout.
    #[serde(default)]
    #[schemars(schema_with = "duration")]
    pub timeout: Option<String>,
    /// Most requests in flight at once.
    #[serde(default)]
    #[schemars(schema_with = "count")]
    pub max_in_flight: Option<Value>,
    /// What each request does.
    pub call: Call,
}

/// A call: `kind` plus its parameters.
#[derive(Debug, serde::Deserialize, JsonSchema)]
pub struct Call {
    /// The call (`execute`, or a plugin's).
    pub kind: String,
    /// Its parameters.
    #[serde(flatten)]
    pub params: BTreeMap<String, Value>,
}

/// One step of the timeline: exactly one action.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Step {
    /// Inject a fault.
    Inject(InjectStep),
    /// Judge a criterion now.
    Expect(ExpectStep),
    /// Wait.
    Wait(WaitStep),
    /// Clear the active faults.
    Clear(ClearStep),
    /// Stop the load.
    StopLoad(StopLoadStep),
    /// Enter a named phase.
    Phase(PhaseStep),
    /// Run steps at the same time.
    Parallel(ParallelStep),
}

/// `inject = "FAULT"` with the fault's parameters.
#[derive(Debug, serde::Deserialize, JsonSchema)]
pub struct InjectStep {
    /// The fault (`kill`, `pause`, `latency`, `memory_limit`, ...).
    pub inject: String,
    /// Offset from the scenario's start.
    #[serde(default)]
    #[schemars(schema_with = "duration")]
    pub at: Option<String>,
    /// The step's name (unique in the file).
    pub name: Option<String>,
    /// The fault's parameters (`target`, `signal`, ...).
    #[serde(flatten)]
    pub params: BTreeMap<String, Value>,
}

/// `expect = "CRITERION"` with the criterion's parameters.
#[derive(Debug, serde::Deserialize, JsonSchema)]
pub struct ExpectStep {
    /// The criterion (`no_orphans`, `gone`, `error_rate`, ...).
    pub expect: String,
    /// Offset from the scenario's start.
    #[serde(default)]
    #[schemars(schema_with = "duration")]
    pub at: Option<String>,
    /// The step's name (unique in the file).
    pub name: Option<String>,
    /// The criterion's parameters.
    #[serde(flatten)]
    pub params: BTreeMap<String, Value>,
}

/// `wait = "DURATION"`.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitStep {
    /// How long.
    #[schemars(schema_with = "duration")]
    pub wait: String,
    /// Offset from the scenario's start.
    #[serde(default)]
    #[schemars(schema_with = "duration")]
    pub at: Option<String>,
    /// The step's name.
    pub name: Option<String>,
}

/// `clear = true`.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClearStep {
    /// Always true.
    #[schemars(schema_with = "always_true")]
    pub clear: bool,
    /// Offset from the scenario's start.
    #[serde(default)]
    #[schemars(schema_with = "duration")]
    pub at: Option<String>,
    /// The step's name.
    pub name: Option<String>,
}

/// `stop_load = true`.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopLoadStep {
    /// Always true.
    #[schemars(schema_with = "always_true")]
    pub stop_load: bool,
    /// Offset from the scenario's start.
    #[serde(default)]
    #[schemars(schema_with = "duration")]
    pub at: Option<String>,
    /// The step's name.
    pub name: Option<String>,
}

/// `phase = "NAME"`.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseStep {
    /// The phase's name.
    pub phase: String,
    /// Offset from the scenario's start.
    #[serde(default)]
    #[schemars(schema_with = "duration")]
    pub at: Option<String>,
    /// The step's name.
    pub name: Option<String>,
}

/// `parallel = [ {..}, {..} ]`.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParallelStep {
    /// The steps run together.
    pub parallel: Vec<Step>,
    /// Offset from the scenario's start.
    #[serde(default)]
    #[schemars(schema_with = "duration")]
    pub at: Option<String>,
    /// The step's name.
    pub name: Option<String>,
}

/// A criterion judged in a phase; its other keys are the criterion's parameters
/// (`tolerance` = `at_most`, `eventually` = `within`).
#[derive(Debug, serde::Deserialize, JsonSchema)]
pub struct Expect {
    /// The criterion.
    pub criterion: String,
    /// When it is judged (default recovery).
    #[serde(default)]
    #[schemars(schema_with = "phase")]
    pub phase: Option<String>,
    /// Its parameters.
    #[serde(flatten)]
    pub params: BTreeMap<String, Value>,
}

/// A guard; its other keys are the guard's parameters.
#[derive(Debug, serde::Deserialize, JsonSchema)]
pub struct Guard {
    /// The guard.
    #[schemars(schema_with = "guard_kind")]
    pub kind: String,
    /// Its parameters.
    #[serde(flatten)]
    pub params: BTreeMap<String, Value>,
}

/// The project file `chaos.toml`.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "chaos project file",
    description = "chaos.toml: run defaults and [profile.NAME] overrides. Precedence: flag > CHAOS_* > profile > scenario file > these defaults > built-in."
)]
pub struct ProjectSchema {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub settings: ProfileSchema,
    /// Profiles chosen with --profile NAME or CHAOS_PROFILE.
    pub profile: Option<BTreeMap<String, ProfileSchema>>,
}

/// Run settings (top level of chaos.toml, or one profile).
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileSchema {
    /// The seed of every random choice.
    #[serde(default)]
    #[schemars(schema_with = "seed")]
    pub seed: Option<Value>,
    /// Per-scenario timeout.
    #[serde(default)]
    #[schemars(schema_with = "duration")]
    pub timeout: Option<String>,
    /// Which scenarios run.
    #[serde(default)]
    #[schemars(schema_with = "tags_expr")]
    pub tags: Option<Value>,
    /// Where reports go (relative to chaos.toml).
    pub report_dir: Option<String>,
    /// Summary format.
    #[serde(default)]
    #[schemars(schema_with = "format_kind")]
    pub format: Option<String>,
    /// Scenario files or directories read when none are named (relative to chaos.toml).
    pub scenarios: Option<Vec<String>>,
}

/// The scenario file's schema.
pub fn scenario_schema() -> Value {
    Value::from(schemars::schema_for!(ScenarioFile))
}

/// The project file's schema.
///
/// ```
/// let s = chaos_harness::scenario::schema::project_schema();
/// assert!(s["properties"]["profile"].is_object());
/// ```
pub fn project_schema() -> Value {
    Value::from(schemars::schema_for!(ProjectSchema))
}

/// Where the checked-in schemas live (relative to the workspace root) and their content.
pub fn files() -> [(&'static str, Value); 2] {
    [("schema/chaos-scenario.schema.json", scenario_schema()), ("schema/chaos-project.schema.json", project_schema())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
    }

    #[test]
    fn checked_in_schemas_are_current() {
        let update = std::env::var_os("UPDATE_SCHEMA").is_some_and(|v| v == "1");
        let mut stale = Vec::new();
        for (rel, schema) in files() {
            let path = root().join(rel);
            let want = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            if update {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &want).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
                stale.push(rel);
            }
        }
        assert!(
            stale.is_empty(),
            "{} stale (the types in chaos-harness/src/scenario/schema.rs changed): regenerate with \
             UPDATE_SCHEMA=1 cargo test -p chaos-harness --lib scenario::schema, and commit the result",
            stale.join(", ")
        );
    }

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v["properties"].as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    }

    fn sorted(k: &[&str]) -> Vec<String> {
        let mut k: Vec<String> = k.iter().map(|s| s.to_string()).collect();
        k.sort();
        k
    }

    /// The schema's keys are the reader's keys: a key added to one and not the other fails.
    #[test]
    fn the_schema_has_the_readers_keys() {
        let s = scenario_schema();
        assert_eq!(keys(&s), sorted(super::super::file::TOP_KEYS));
        let defs = &s["$defs"];
        assert_eq!(keys(&defs["CommandTarget"]), sorted(super::super::file::COMMAND_KEYS));
        assert_eq!(keys(&defs["Ready"]), sorted(super::super::file::READY_KINDS));
        assert_eq!(keys(&defs["LoadTable"]), sorted(super::super::file::LOAD_KEYS));
        let p = project_schema();
        let mut want = super::super::project::KEYS.to_vec();
        want.push("profile");
        assert_eq!(keys(&p), sorted(&want));
    }

    fn toml_to_json(text: &str) -> Value {
        let v: toml::Value = toml::from_str(text).expect("TOML");
        serde_json::to_value(v).unwrap()
    }

    fn scenario_files(dir: &Path) -> Vec<PathBuf> {
        super::super::file::find_files(dir)
    }

    #[test]
    fn every_shipped_scenario_file_validates_against_the_schema() {
        let validator = jsonschema::validator_for(&scenario_schema()).expect("a valid schema");
        let files = scenario_files(&root().join("fixtures/scenarios"));
        assert!(files.len() >= 6, "{files:?}");
        let mut failures = Vec::new();
        for f in &files {
            let v = toml_to_json(&std::fs::read_to_string(f).unwrap());
            for e in validator.iter_errors(&v) {
                failures.push(format!("{}: {} at {}", f.display(), e, e.instance_path()));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn bad_files_fail_schema_validation() {
        let validator = jsonschema::validator_for(&scenario_schema()).unwrap();
        let web = "[target.web]\ncommand = [\"sleep\", \"60\"]\n";
        let good = format!("{web}[[step]]\ninject = \"kill\"\ntarget = \"web.main\"\n[[step]]\nwait = \"1s\"\n");
        assert!(validator.is_valid(&toml_to_json(&good)));
        let bad = [
            ("unknown top key", format!("targets = 1\n{web}")),
            ("duration as a number", format!("timeout = 5\n{web}")),
            ("bad duration", format!("timeout = \"soon\"\n{web}")),
            ("unknown command key", "[target.web]\ncommand = [\"sleep\"]\ncwdd = \"/\"\n".into()),
            ("target with neither command nor kind", "[target.web]\ncwd = \"/\"\n".into()),
            ("empty command", "[target.web]\ncommand = []\n".into()),
            ("step without an action", format!("{web}[[step]]\ntarget = \"web.main\"\n")),
            ("extra key in a wait step", format!("{web}[[step]]\nwait = \"1s\"\ntarget = \"web\"\n")),
            ("clear = false", format!("{web}[[step]]\nclear = false\n")),
            ("unknown phase", format!("{web}[[expect]]\ncriterion = \"gone\"\nphase = \"later\"\n")),
            ("unknown guard", format!("{web}[[guard]]\nkind = \"mem_low\"\n")),
            ("repeat zero", format!("repeat = 0\n{web}")),
            ("load without call", format!("{web}[load]\nrate = 5\n")),
            ("bad rate", format!("{web}[load]\nrate = \"fast\"\ncall = {{ kind = \"execute\" }}\n")),
        ];
        let wrongly_valid: Vec<&str> =
            bad.iter().filter(|(_, text)| validator.is_valid(&toml_to_json(text))).map(|(case, _)| *case).collect();
        assert!(wrongly_valid.is_empty(), "the schema accepts: {wrongly_valid:?}");
    }

    #[test]
    fn project_files_validate_and_bad_ones_do_not() {
        let validator = jsonschema::validator_for(&project_schema()).unwrap();
        let good = "seed = 7\ntimeout = \"2m\"\ntags = [\"a\", \"!b\"]\nformat = \"json\"\n[profile.ci]\nseed = \"0x10\"\nreport_dir = \"ci\"\n";
        let errors: Vec<String> = validator.iter_errors(&toml_to_json(good)).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}");
        for bad in ["timout = \"1m\"\n", "format = \"xml\"\n", "[profile.ci]\nformt = \"json\"\n", "seed = -1\n"] {
            assert!(!validator.is_valid(&toml_to_json(bad)), "accepted: {bad:?}");
        }
    }
}
