//! Scenario files (`*.chaos.toml`): a scenario a person writes, reviews and runs, read into the
//! same [`ScenarioSpec`] the builder makes. Every error names `file:line:column`, the key, what
//! was expected and the nearest valid key or value, and all errors of a file are reported at
//! once.
//!
//! ```toml
//! name = "kill the web server"
//! tags = ["process", "generic"]
//! timeout = "60s"
//! repeat = 1
//!
//! [params]                      # a template: one scenario per value (or combination)
//! port = [8701, 8702]
//!
//! [target.web]                  # any program: command = [...] (or kind = "snakepit", "link", "netns")
//! command = ["python3", "-m", "http.server", "${port}", "--bind", "127.0.0.1"]
//! env = { PYTHONUNBUFFERED = "1" }
//! ready = { tcp = "127.0.0.1:${port}" }
//!
//! [[step]]
//! wait = "500ms"
//!
//! [[step]]
//! inject = "kill"               # inject / wait / clear / expect / stop_load / phase / parallel
//! target = "web.main"
//! signal = "SIGTERM"
//!
//! [[expect]]                    # criteria; phase = baseline | fault | recovery (default)
//! criterion = "exits_within"
//! target = "web"
//! eventually = "5s"             # same as within
//! ```
//!
//! Durations are strings (`"500ms"`, `"2m"`), sizes numbers of bytes or `"64MiB"`, rates
//! numbers per second or `"200/s"`. Strings may hold `${NAME}` (a `[params]` value, else the
//! environment variable), `${NAME:-default}`; a string that is exactly `"${NAME}"` takes the
//! parameter's type (a number stays a number).
//!
//! **How `[[expect]]` phases map onto steps:** `phase = "baseline"` judges the criterion
//! right before the first `inject` step, `phase = "fault"` right after it (its window opens at
//! the fault's confirmation), `phase = "recovery"` (the default) after the last step.
//! `tolerance` is written as the criterion's `at_most`; `eventually` as its `within`.
//!
//! ```
//! use chaos_harness::scenario::file;
//! let src = "[target.web]\ncommand = [\"sleep\", \"60\"]\n[[step]]\ninject = \"kil\"\ntarget = \"web.main\"\n";
//! let errors = file::parse_str("demo.chaos.toml", src, &file::Options::default()).unwrap_err();
//! assert_eq!(errors.0[0].to_string().lines().next().unwrap(),
//!     "demo.chaos.toml:4:10: unknown fault `kil`, did you mean `kill`?");
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::spec::{Action, CallSpec, GUARD_KINDS, GuardSpec, LoadSpec, ScenarioSpec, StepSpec, TargetSpec};
use crate::error::nearest;
use crate::params::Params;
use crate::registry::{self, Param, RegistryError};

/// One problem in a scenario file, at a position.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileError {
    /// The file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// The key involved (`step[1].inject`), if any.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// What was expected, or the fix (`did you mean ...?`).
    pub help: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)?;
        if !self.key.is_empty() {
            write!(f, "\n  key: {}", self.key)?;
        }
        if !self.help.is_empty() {
            write!(f, "\n  help: {}", self.help)?;
        }
        Ok(())
    }
}

/// Every problem found in one or more files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct FileErrors(pub Vec<FileError>);

/// A scenario read from a file: its spec, where it came from, and its test name.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedScenario {
    /// The spec.
    pub spec: ScenarioSpec,
    /// The file.
    pub path: PathBuf,
    /// How many times to run it (`repeat`, default 1).
    pub repeat: u32,
    /// The test name: the file stem, plus `[k=v,...]` for a template's combination.
    pub test_name: String,
}

/// Reading options: the environment used for `${VAR}` (the process's by default).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Variables that take precedence over the process environment (tests use this).
    pub vars: BTreeMap<String, String>,
    /// Do not read the process environment.
    pub no_process_env: bool,
}

impl Options {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned().or_else(|| if self.no_process_env { None } else { std::env::var(name).ok() })
    }
}

/// Reads a scenario file (following `extends`).
pub fn load(path: &Path, opts: &Options) -> Result<Vec<LoadedScenario>, FileErrors> {
    let display = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|e| {
        FileErrors(vec![FileError {
            file: display.clone(),
            line: 1,
            column: 1,
            key: String::new(),
            message: format!("cannot read the file: {e}"),
            help: "check the path".into(),
        }])
    })?;
    parse_at(&display, path, &src, opts, &mut vec![path.to_path_buf()])
}

/// Every `*.chaos.toml` under `dir` (recursively), sorted.
pub fn find_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".chaos.toml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Parses a scenario file's text (`name` is used in messages and for the default scenario
/// name). `extends` is resolved relative to the current directory.
pub fn parse_str(name: &str, src: &str, opts: &Options) -> Result<Vec<LoadedScenario>, FileErrors> {
    parse_at(name, Path::new(name), src, opts, &mut vec![PathBuf::from(name)])
}

fn stem(path: &Path) -> String {
    let f = path.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    f.strip_suffix(".chaos.toml").or_else(|| f.strip_suffix(".toml")).unwrap_or(&f).to_string()
}

/// Where text positions are turned into line:column.
pub(super) struct Src<'a> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
    pub(super) errors: Vec<FileError>,
}

impl Src<'_> {
    pub(super) fn pos(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    pub(super) fn err(&mut self, span: Range<usize>, key: &str, message: impl Into<String>, help: impl Into<String>) {
        let (line, column) = self.pos(span.start);
        self.errors.push(FileError {
            file: self.file.to_string(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
            help: help.into(),
        });
    }
}

type Table<'i> = DeTable<'i>;

pub(super) fn hint(given: &str, valid: &[&str]) -> String {
    match nearest(given, valid) {
        Some(n) => format!("did you mean `{n}`?"),
        None => format!("expected one of: {}", valid.join(", ")),
    }
}

fn suggest(given: &str, valid: &[&str]) -> String {
    match nearest(given, valid) {
        Some(n) => format!(", did you mean `{n}`?"),
        None => String::new(),
    }
}

pub(super) const TOP_KEYS: &[&str] = &[
    "name", "tags", "timeout", "repeat", "extends", "params", "target", "load", "step", "expect", "guard", "scenario",
];
const STEP_ACTIONS: &[&str] = &["inject", "wait", "clear", "expect", "stop_load", "phase", "parallel"];
pub(super) const COMMAND_KEYS: &[&str] = &["name", "command", "env", "cwd", "ready", "ready_timeout", "user", "netns"];
pub(super) const READY_KINDS: &[&str] = &["tcp", "http", "log_line", "file"];
const LOAD_KINDS: &[&str] = &["constant_rate", "closed_loop", "ramp"];
pub(super) const LOAD_KEYS: &[&str] =
    &["kind", "rate", "from", "to", "over", "clients", "timeout", "max_in_flight", "call"];
const PHASES: &[&str] = &["baseline", "fault", "recovery"];
/// The most scenarios one template may yield.
const MAX_COMBINATIONS: usize = 256;

/// A TOML value as JSON (what `Params` hold), with `${..}` interpolated.
fn to_json(src: &mut Src<'_>, v: &Spanned<DeValue<'_>>, key: &str, vars: &Vars<'_>) -> Value {
    match v.get_ref() {
        DeValue::String(s) => vars.interpolate(src, s, v.span(), key),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str().replace('_', "").trim_start_matches('+'), i.radix())
            .map_or_else(
                |_| {
                    src.err(v.span(), key, "integer out of range", "use a smaller number");
                    Value::Null
                },
                Value::from,
            ),
        DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().map_or(Value::Null, Value::from),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(a) => Value::Array(a.iter().map(|x| to_json(src, x, key, vars)).collect()),
        DeValue::Table(t) => Value::Object(
            t.iter()
                .map(|(k, x)| (k.get_ref().to_string(), to_json(src, x, &format!("{key}.{}", k.get_ref()), vars)))
                .collect(),
        ),
    }
}

/// Template parameters of one combination, then the environment.
struct Vars<'a> {
    params: BTreeMap<String, Value>,
    opts: &'a Options,
}

impl Vars<'_> {
    fn lookup(&self, name: &str) -> Option<Value> {
        self.params.get(name).cloned().or_else(|| self.opts.var(name).map(Value::String))
    }

    fn interpolate(&self, src: &mut Src<'_>, s: &str, span: Range<usize>, key: &str) -> Value {
        if !s.contains("${") {
            return Value::String(s.to_string());
        }
        let mut out = String::new();
        let mut rest = s;
        let mut whole: Option<Value> = None;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(end) = after.find('}') else {
                src.err(span.clone(), key, format!("unclosed `${{` in {s:?}"), "write ${NAME} or ${NAME:-default}");
                return Value::String(s.to_string());
            };
            let expr = &after[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            let value = self.lookup(name).or_else(|| default.map(|d| Value::String(d.to_string())));
            match value {
                Some(v) => {
                    if out.is_empty() && i == 0 && after[end + 1..].is_empty() && rest.len() == s.len() {
                        whole = Some(v.clone());
                    }
                    match v {
                        Value::String(t) => out.push_str(&t),
                        other => out.push_str(&other.to_string()),
                    }
                }
                None => {
                    let mut names: Vec<&str> = self.params.keys().map(String::as_str).collect();
                    names.sort_unstable();
                    src.err(
                        span.clone(),
                        key,
                        format!("`${{{name}}}` is not set: no [params] entry and no environment variable of that name"),
                        format!(
                            "set {name} in the environment, add it to [params], or write ${{{name}:-default}}{}",
                            suggest(name, &names)
                        ),
                    );
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        whole.unwrap_or(Value::String(out))
    }
}

fn duration_of(src: &mut Src<'_>, v: &Spanned<DeValue<'_>>, key: &str, vars: &Vars<'_>) -> Option<Duration> {
    match to_json(src, v, key, vars) {
        Value::String(s) => match humantime::parse_duration(&s) {
            Ok(d) => Some(d),
            Err(e) => {
                src.err(
                    v.span(),
                    key,
                    format!("`{key}`: {s:?} is not a duration ({e})"),
                    "expected a duration like \"500ms\", \"5s\" or \"2m\"",
                );
                None
            }
        },
        Value::Null => None,
        other => {
            src.err(
                v.span(),
                key,
                format!("`{key}`: expected a duration string, found {other}"),
                format!("write {key} = \"{other}s\""),
            );
            None
        }
    }
}

fn str_of(src: &mut Src<'_>, v: &Spanned<DeValue<'_>>, key: &str, vars: &Vars<'_>) -> Option<String> {
    match to_json(src, v, key, vars) {
        Value::String(s) => Some(s),
        Value::Null => None,
        other => {
            src.err(
                v.span(),
                key,
                format!("`{key}`: expected a string, found {}", v.get_ref().type_str()),
                format!("write {key} = \"{}\"", other.to_string().trim_matches('"')),
            );
            None
        }
    }
}

fn table_of<'a, 'i>(src: &mut Src<'_>, v: &'a Spanned<DeValue<'i>>, key: &str) -> Option<&'a Table<'i>> {
    match v.get_ref() {
        DeValue::Table(t) => Some(t),
        other => {
            src.err(
                v.span(),
                key,
                format!("`{key}`: expected a table, found {}", other.type_str()),
                format!("write [{key}] with its keys below"),
            );
            None
        }
    }
}

fn key_span(t: &Table<'_>, key: &str) -> Option<Range<usize>> {
    t.iter().find(|(k, _)| k.get_ref() == key).map(|(k, _)| k.span())
}

fn value_span(t: &Table<'_>, key: &str) -> Option<Range<usize>> {
    t.get(key).map(Spanned::span)
}

/// Checks params against a registry schema, reporting at the key or value spans; returns
/// them (defaults filled in) when valid.
#[allow(clippy::too_many_arguments)]
fn check_params(
    src: &mut Src<'_>,
    what: &'static str,
    entry: &str,
    schema: &[Param],
    params: &Params,
    t: &Table<'_>,
    at: &str,
    fallback: Range<usize>,
) -> Option<Params> {
    let names: Vec<&str> = schema.iter().map(|p| p.name).collect();
    let mut ok = true;
    for key in params.unknown_keys(&names) {
        let span = key_span(t, key).unwrap_or(fallback.clone());
        let help = match nearest(key, &names) {
            Some(n) => format!("did you mean `{n}`?"),
            None if names.is_empty() => format!("{what} `{entry}` takes no parameters"),
            None => format!("its parameters: {}", names.join(", ")),
        };
        src.err(span, &format!("{at}.{key}"), format!("{what} `{entry}` has no parameter `{key}`"), help);
        ok = false;
    }
    if !ok {
        return None;
    }
    match registry::validate(what, entry, schema, params) {
        Ok(p) => Some(p),
        Err(RegistryError::MissingParam { key, doc, .. }) => {
            src.err(
                fallback,
                &format!("{at}.{key}"),
                format!("{what} `{entry}` needs parameter `{key}` ({doc})"),
                format!("add {key} = ..."),
            );
            None
        }
        Err(RegistryError::BadParam { source, .. }) => {
            let span = value_span(t, &source.key).unwrap_or(fallback);
            src.err(
                span,
                &format!("{at}.{}", source.key),
                format!("`{}`: expected {}, found {}", source.key, source.expected, source.found),
                source.fix.clone(),
            );
            None
        }
        Err(e) => {
            src.err(fallback, at, e.to_string(), "");
            None
        }
    }
}

/// The file's shape before template expansion: the parsed document.
fn parse_at(
    display: &str,
    path: &Path,
    text: &str,
    opts: &Options,
    chain: &mut Vec<PathBuf>,
) -> Result<Vec<LoadedScenario>, FileErrors> {
    let mut src = Src { file: display, text, errors: Vec::new() };
    let (doc, parse_errors) = DeTable::parse_recoverable(text);
    for e in parse_errors {
        let span = e.span().unwrap_or(0..0);
        let msg = e.message().lines().next().unwrap_or("invalid TOML").to_string();
        src.err(span, "", format!("invalid TOML: {msg}"), "fix the TOML syntax (strings need quotes, tables [name])");
    }
    if !src.errors.is_empty() {
        return Err(FileErrors(src.errors));
    }
    let doc = doc.into_inner();
    // extends: the base file's keys, overridden key by key (tables merge, arrays replace).
    let merged_text;
    let doc_owned;
    let doc = match doc.get("extends") {
        Some(ext) => {
            let base_rel = match ext.get_ref().as_str() {
                Some(s) => s.to_string(),
                None => {
                    src.err(
                        ext.span(),
                        "extends",
                        "`extends`: expected a file name",
                        "write extends = \"base.chaos.toml\"",
                    );
                    return Err(FileErrors(src.errors));
                }
            };
            let base = path.parent().unwrap_or(Path::new(".")).join(&base_rel);
            let canon = base.canonicalize().unwrap_or(base.clone());
            if chain.iter().any(|c| c.canonicalize().unwrap_or(c.clone()) == canon) {
                let cycle: Vec<String> = chain.iter().map(|p| p.display().to_string()).collect();
                src.err(
                    ext.span(),
                    "extends",
                    format!("`extends` forms a cycle: {} -> {}", cycle.join(" -> "), base.display()),
                    "remove the `extends` that points back",
                );
                return Err(FileErrors(src.errors));
            }
            let base_text = match std::fs::read_to_string(&base) {
                Ok(t) => t,
                Err(e) => {
                    src.err(
                        ext.span(),
                        "extends",
                        format!("`extends`: cannot read {}: {e}", base.display()),
                        "give a path relative to this file",
                    );
                    return Err(FileErrors(src.errors));
                }
            };
            chain.push(base.clone());
            // Errors in the base are the base's: check it alone first.
            let base_check = parse_at(&base.display().to_string(), &base, &base_text, opts, chain);
            chain.pop();
            if let Err(e) = base_check {
                // A base may be incomplete on its own (no steps); only syntax/cycle errors count.
                let hard: Vec<FileError> =
                    e.0.into_iter()
                        .filter(|x| x.message.starts_with("invalid TOML") || x.message.contains("cycle"))
                        .collect();
                if !hard.is_empty() {
                    return Err(FileErrors(hard));
                }
            }
            merged_text = merge_texts(&base_text, text);
            let (d, _) = DeTable::parse_recoverable(&merged_text);
            doc_owned = d.into_inner();
            // Positions now refer to the merged text; report against this file still.
            src.text = &merged_text;
            &doc_owned
        }
        None => &doc,
    };
    let combos = template_combinations(&mut src, doc, opts);
    let subs = sub_scenarios(&mut src, doc);
    let mut out = Vec::new();
    for (label, params) in combos {
        let vars = Vars { params, opts };
        for (id, table) in &subs {
            let Some((spec, repeat)) = read_scenario(&mut src, table, &vars, path) else { continue };
            let base = if id.is_empty() { stem(path) } else { format!("{}::{id}", stem(path)) };
            let test_name = if label.is_empty() { base.clone() } else { format!("{base}[{label}]") };
            let mut spec = spec;
            if !id.is_empty() && table.get("name").is_none() {
                spec.name = base;
            }
            if !label.is_empty() {
                spec.name = format!("{} [{label}]", spec.name);
            }
            out.push(LoadedScenario { spec, path: path.to_path_buf(), repeat, test_name });
        }
    }
    if src.errors.is_empty() {
        Ok(out)
    } else {
        let mut seen = BTreeSet::new();
        src.errors.retain(|e| seen.insert((e.line, e.column, e.message.clone())));
        Err(FileErrors(src.errors))
    }
}

/// `[scenario.ID]`: several scenarios in one file (a catalogue of a failure family). Each is
/// the file's top-level keys with the table's keys over them: `target` tables merge (a target
/// of the same name replaces the file's), `tags` add to the file's, any other key replaces the
/// file's. Without `[scenario.*]` the file is one scenario, under the empty id.
fn sub_scenarios<'i>(src: &mut Src<'_>, doc: &Table<'i>) -> Vec<(String, Table<'i>)> {
    let Some(v) = doc.get("scenario") else { return vec![(String::new(), doc.clone())] };
    let Some(t) = table_of(src, v, "scenario") else { return vec![] };
    let mut base = doc.clone();
    base.remove("scenario");
    let mut out = Vec::new();
    for (k, sv) in t.iter() {
        let id = k.get_ref().to_string();
        let at = format!("scenario.{id}");
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            src.err(
                k.span(),
                &at,
                format!("scenario id `{id}`: use letters, digits, `-` and `_`"),
                "write [scenario.beam-sigkill]",
            );
            continue;
        }
        let Some(st) = table_of(src, sv, &at) else { continue };
        let mut merged = base.clone();
        for (sk, skv) in st.iter() {
            let key = sk.get_ref().to_string();
            match (key.as_str(), merged.get_mut(key.as_str()).map(|m| m.get_mut()), skv.get_ref()) {
                ("extends" | "params" | "scenario", _, _) => src.err(
                    sk.span(),
                    &format!("{at}.{key}"),
                    format!("`{key}` belongs at the top of the file, not in [{at}]"),
                    "move it above the first [scenario.*]",
                ),
                ("target", Some(DeValue::Table(mine)), DeValue::Table(theirs)) => {
                    for (tk, tv) in theirs.iter() {
                        mine.insert(tk.clone(), tv.clone());
                    }
                }
                ("tags", Some(DeValue::Array(mine)), DeValue::Array(theirs)) => {
                    for t in theirs.iter() {
                        mine.push(t.clone());
                    }
                }
                _ => {
                    merged.insert(sk.clone(), skv.clone());
                }
            }
        }
        out.push((id, merged));
    }
    if out.is_empty() && src.errors.is_empty() {
        src.err(v.span(), "scenario", "`scenario`: no scenario in it", "write [scenario.NAME] tables with their steps");
    }
    out
}

/// `extends`: the child's text appended to the base's, with the base's top-level keys and
/// tables the child redefines removed (a key in the child replaces the base's; a
/// `[target.x]` in the child replaces the base's `[target.x]`; `[[step]]` lists replace).
fn merge_texts(base: &str, child: &str) -> String {
    let (Ok(b), Ok(c)) = (base.parse::<toml::Table>(), child.parse::<toml::Table>()) else {
        return child.to_string();
    };
    let mut merged = b;
    for (k, v) in c {
        if k == "extends" {
            continue;
        }
        match (merged.get_mut(&k), v) {
            (Some(toml::Value::Table(bt)), toml::Value::Table(ct)) => {
                for (k2, v2) in ct {
                    bt.insert(k2, v2);
                }
            }
            (_, v) => {
                merged.insert(k, v);
            }
        }
    }
    // Keep the child's text (for its line numbers) when it defines everything itself.
    toml::to_string(&merged).unwrap_or_else(|_| child.to_string())
}

/// `[params]`: each key a list of values (or one value); the combinations in order, each with
/// its label `k=v,k2=v2`. No `[params]`: one combination without label.
fn template_combinations(src: &mut Src<'_>, doc: &Table<'_>, opts: &Options) -> Vec<(String, BTreeMap<String, Value>)> {
    let Some(p) = doc.get("params") else { return vec![(String::new(), BTreeMap::new())] };
    let Some(t) = table_of(src, p, "params") else { return vec![] };
    let empty = Vars { params: BTreeMap::new(), opts };
    let mut combos: Vec<(String, BTreeMap<String, Value>)> = vec![(String::new(), BTreeMap::new())];
    for (k, v) in t.iter() {
        let key = k.get_ref().to_string();
        let values = match to_json(src, v, &format!("params.{key}"), &empty) {
            Value::Array(a) if a.is_empty() => {
                src.err(
                    v.span(),
                    &format!("params.{key}"),
                    format!("`params.{key}` is an empty list"),
                    "give at least one value",
                );
                return vec![];
            }
            Value::Array(a) => a,
            other => vec![other],
        };
        if combos.len().saturating_mul(values.len()) > MAX_COMBINATIONS {
            src.err(
                v.span(),
                &format!("params.{key}"),
                format!("[params] yields more than {MAX_COMBINATIONS} combinations"),
                "give fewer values, or split the file",
            );
            return vec![];
        }
        let mut next = Vec::new();
        for (label, map) in &combos {
            for val in &values {
                let shown = match val {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let mut m = map.clone();
                m.insert(key.clone(), val.clone());
                let l = if label.is_empty() { format!("{key}={shown}") } else { format!("{label},{key}={shown}") };
                next.push((l, m));
            }
        }
        combos = next;
    }
    combos
}

fn read_scenario(src: &mut Src<'_>, doc: &Table<'_>, vars: &Vars<'_>, path: &Path) -> Option<(ScenarioSpec, u32)> {
    let before = src.errors.len();
    for (k, _) in doc.iter() {
        let key = k.get_ref();
        if !TOP_KEYS.contains(&key.as_ref()) {
            let help = match key.as_ref() {
                "targets" => "did you mean `target`? (write [target.NAME])".to_string(),
                "steps" => "did you mean `step`? (write [[step]])".to_string(),
                "guards" => "did you mean `guard`? (write [[guard]])".to_string(),
                "profile" => "profiles belong in the project file chaos.toml".to_string(),
                k => hint(k, TOP_KEYS),
            };
            src.err(k.span(), key, format!("unknown key `{key}`"), help);
        }
    }
    let mut spec = ScenarioSpec::new(stem(path));
    if let Some(v) = doc.get("name")
        && let Some(s) = str_of(src, v, "name", vars)
    {
        spec.name = s;
    }
    if let Some(v) = doc.get("tags") {
        match to_json(src, v, "tags", vars) {
            Value::Array(a) if a.iter().all(Value::is_string) => {
                spec.tags = a.into_iter().filter_map(|x| x.as_str().map(str::to_string)).collect();
            }
            _ => {
                src.err(v.span(), "tags", "`tags`: expected a list of strings", "write tags = [\"process\", \"slow\"]")
            }
        }
    }
    if let Some(v) = doc.get("timeout") {
        spec.timeout = duration_of(src, v, "timeout", vars);
    }
    let mut repeat = 1;
    if let Some(v) = doc.get("repeat") {
        match to_json(src, v, "repeat", vars) {
            Value::Number(n) if n.as_u64().is_some_and(|n| (1..=10_000).contains(&n)) => {
                repeat = u32::try_from(n.as_u64().unwrap_or(1)).unwrap_or(1);
            }
            _ => src.err(v.span(), "repeat", "`repeat`: expected a whole number from 1 to 10000", "write repeat = 3"),
        }
    }
    if let Some(v) = doc.get("target")
        && let Some(t) = table_of(src, v, "target")
    {
        for (name, tv) in t.iter() {
            let name_s = name.get_ref().to_string();
            if let Some(target) = read_target(src, &name_s, tv, vars) {
                spec.targets.insert(name_s, target);
            }
        }
    }
    check_netns_refs(src, doc, &spec);
    let targets: Vec<String> = spec.targets.keys().cloned().collect();
    let refs = Refs { targets: &targets };
    if let Some(v) = doc.get("load") {
        spec.load = read_load(src, v, vars, &refs);
    }
    let mut step_names: BTreeMap<String, Range<usize>> = BTreeMap::new();
    if let Some(v) = doc.get("step") {
        match v.get_ref() {
            DeValue::Array(a) => {
                for (i, s) in a.iter().enumerate() {
                    if let Some(step) = read_step(src, s, &format!("step[{i}]"), vars, &refs, &mut step_names) {
                        spec.steps.push(step);
                    }
                }
            }
            _ => src.err(v.span(), "step", "`step`: expected an array of tables", "write [[step]] before each step"),
        }
    }
    if let Some(v) = doc.get("expect") {
        match v.get_ref() {
            DeValue::Array(a) => {
                for (i, e) in a.iter().enumerate() {
                    read_expect(src, e, &format!("expect[{i}]"), vars, &refs, &mut spec.steps);
                }
            }
            _ => src.err(
                v.span(),
                "expect",
                "`expect`: expected an array of tables",
                "write [[expect]] before each criterion",
            ),
        }
    }
    if let Some(v) = doc.get("guard") {
        match v.get_ref() {
            DeValue::Array(a) => {
                for (i, g) in a.iter().enumerate() {
                    if let Some(g) = read_guard(src, g, &format!("guard[{i}]"), vars) {
                        spec.guards.push(g);
                    }
                }
            }
            _ => {
                src.err(v.span(), "guard", "`guard`: expected an array of tables", "write [[guard]] before each guard")
            }
        }
    }
    if src.errors.len() > before {
        return None;
    }
    // Whatever the walk could not see (it checked names, parameters and targets) still goes
    // through the spec's own validation.
    if let Err(errors) = spec.validate() {
        for e in errors {
            src.err(0..0, "", e.to_string(), "");
        }
        return None;
    }
    Some((spec, repeat))
}

/// A command target's `netns` names a target of kind `netns` of the same file.
fn check_netns_refs(src: &mut Src<'_>, doc: &Table<'_>, spec: &ScenarioSpec) {
    let Some(DeValue::Table(targets)) = doc.get("target").map(Spanned::get_ref) else { return };
    let namespaces: Vec<&str> =
        spec.targets.iter().filter(|(_, t)| t.kind == "netns").map(|(n, _)| n.as_str()).collect();
    for (name, tv) in targets.iter() {
        let DeValue::Table(t) = tv.get_ref() else { continue };
        let Some(nv) = t.get("netns") else { continue };
        let Some(ns) = spec.targets.get(name.get_ref().as_ref()).and_then(|t| t.params.str("netns").ok().flatten())
        else {
            continue;
        };
        if namespaces.contains(&ns) || ns.starts_with('/') {
            continue;
        }
        let key = format!("target.{}.netns", name.get_ref());
        let what = match spec.targets.get(ns) {
            Some(t) => format!("`{ns}` is a target of kind `{}`, not a network namespace", t.kind),
            None => format!("`{ns}` is not a target of this scenario"),
        };
        let help = match nearest(ns, &namespaces) {
            Some(n) => format!("did you mean `{n}`?"),
            None if namespaces.is_empty() => {
                format!("add a namespace target: [target.{ns}] with kind = \"netns\"")
            }
            None => format!("its netns targets: {}", namespaces.join(", ")),
        };
        src.err(nv.span(), &key, what, help);
    }
}

struct Refs<'a> {
    targets: &'a [String],
}

impl Refs<'_> {
    /// A `target` parameter must name a target of the file (when it defines any).
    fn check(&self, src: &mut Src<'_>, t: &Table<'_>, params: &Params, at: &str) {
        let Ok(Some(reference)) = params.str("target") else { return };
        let name = reference.split_once('.').map_or(reference, |(n, _)| n);
        if self.targets.is_empty() || self.targets.iter().any(|t| t == name) {
            return;
        }
        let names: Vec<&str> = self.targets.iter().map(String::as_str).collect();
        let span = value_span(t, "target").unwrap_or(0..0);
        src.err(
            span,
            &format!("{at}.target"),
            format!("`{name}` is not a target of this scenario"),
            match nearest(name, &names) {
                Some(n) => format!("did you mean `{n}`?"),
                None => format!("its targets: {}", names.join(", ")),
            },
        );
    }
}

fn params_of(src: &mut Src<'_>, t: &Table<'_>, skip: &[&str], at: &str, vars: &Vars<'_>) -> Params {
    let mut p = Params::new();
    for (k, v) in t.iter() {
        let key = k.get_ref();
        if skip.contains(&key.as_ref()) {
            continue;
        }
        p.0.insert(key.to_string(), to_json(src, v, &format!("{at}.{key}"), vars));
    }
    p
}

fn read_target(src: &mut Src<'_>, name: &str, v: &Spanned<DeValue<'_>>, vars: &Vars<'_>) -> Option<TargetSpec> {
    let at = format!("target.{name}");
    let t = table_of(src, v, &at)?;
    if let Some(cmd) = t.get("command") {
        if let Some(kv) = t.get("kind") {
            src.err(
                kv.span(),
                &format!("{at}.kind"),
                "a target has either `command` or `kind`, not both",
                "remove one",
            );
            return None;
        }
        let mut p = Params::new();
        for (k, _) in t.iter() {
            let key = k.get_ref();
            if !COMMAND_KEYS.contains(&key.as_ref()) {
                src.err(
                    k.span(),
                    &format!("{at}.{key}"),
                    format!("unknown key `{key}` in a command target"),
                    hint(key, COMMAND_KEYS),
                );
            }
        }
        match to_json(src, cmd, &format!("{at}.command"), vars) {
            Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_string) => {
                p = p.with("program", &a[0]);
                p = p.with("args", &a[1..]);
            }
            _ => src.err(
                cmd.span(),
                &format!("{at}.command"),
                "`command`: expected a non-empty list of strings",
                "write command = [\"python3\", \"-m\", \"http.server\"]",
            ),
        }
        if let Some(e) = t.get("env") {
            match to_json(src, e, &format!("{at}.env"), vars) {
                Value::Object(m) if m.values().all(Value::is_string) => p = p.with("env", m),
                _ => src.err(
                    e.span(),
                    &format!("{at}.env"),
                    "`env`: expected a table of strings",
                    "write env = { KEY = \"value\" }",
                ),
            }
        }
        for k in ["cwd", "name", "user", "netns"] {
            if let Some(x) = t.get(k)
                && let Some(s) = str_of(src, x, &format!("{at}.{k}"), vars)
            {
                p = p.with(k, s);
            }
        }
        if let Some(x) = t.get("ready_timeout")
            && let Some(d) = duration_of(src, x, &format!("{at}.ready_timeout"), vars)
        {
            p = p.with_duration("ready_timeout", d);
        }
        if let Some(r) = t.get("ready")
            && let Some(rt) = table_of(src, r, &format!("{at}.ready"))
        {
            for (k, x) in rt.iter() {
                let key = k.get_ref();
                if !READY_KINDS.contains(&key.as_ref()) {
                    src.err(
                        k.span(),
                        &format!("{at}.ready.{key}"),
                        format!("unknown readiness probe `{key}`"),
                        hint(key, READY_KINDS),
                    );
                    continue;
                }
                if let Some(s) = str_of(src, x, &format!("{at}.ready.{key}"), vars) {
                    p = p.with(&format!("ready_{key}"), s);
                }
            }
        }
        let entry = registry::fixture("command").ok()?;
        let span = v.span();
        let p = check_params(src, "fixture", "command", entry.params, &p, t, &at, span)?;
        return Some(TargetSpec { kind: "command".into(), params: p });
    }
    let Some(kind_v) = t.get("kind") else {
        src.err(
            v.span(),
            &at,
            format!("target `{name}` has neither `command` nor `kind`"),
            "add command = [\"program\", \"arg\"] or kind = \"snakepit\"",
        );
        return None;
    };
    let kind = str_of(src, kind_v, &format!("{at}.kind"), vars)?;
    let entry = match registry::fixture(&kind) {
        Ok(e) => e,
        Err(_) => {
            let names: Vec<&str> = registry::fixtures().iter().map(|e| e.name).collect();
            src.err(
                kind_v.span(),
                &format!("{at}.kind"),
                format!("unknown target kind `{kind}`{}", suggest(&kind, &names)),
                format!("expected one of: {}", names.join(", ")),
            );
            return None;
        }
    };
    let p = params_of(src, t, &["kind"], &at, vars);
    let p = check_params(src, "fixture", &kind, entry.params, &p, t, &at, v.span())?;
    Some(TargetSpec { kind, params: p })
}

fn read_load(src: &mut Src<'_>, v: &Spanned<DeValue<'_>>, vars: &Vars<'_>, refs: &Refs<'_>) -> Option<LoadSpec> {
    let t = table_of(src, v, "load")?;
    for (k, _) in t.iter() {
        let key = k.get_ref();
        if !LOAD_KEYS.contains(&key.as_ref()) {
            src.err(k.span(), &format!("load.{key}"), format!("unknown key `{key}` in [load]"), hint(key, LOAD_KEYS));
        }
    }
    let kind = match t.get("kind") {
        Some(k) => {
            let s = str_of(src, k, "load.kind", vars)?;
            if !LOAD_KINDS.contains(&s.as_str()) {
                src.err(
                    k.span(),
                    "load.kind",
                    format!("unknown load kind `{s}`{}", suggest(&s, LOAD_KINDS)),
                    "expected constant_rate, closed_loop or ramp",
                );
                return None;
            }
            s
        }
        None => "constant_rate".to_string(),
    };
    let mut params = Params::new();
    for (k, least) in [("rate", 1.0), ("from", 0.0), ("to", 1.0)] {
        let Some(r) = t.get(k) else { continue };
        let raw = to_json(src, r, &format!("load.{k}"), vars);
        match Params::new().with("rate", &raw).rate("rate") {
            Ok(Some(x)) if x >= least => params = params.with(k, x.round() as u64),
            _ => src.err(
                r.span(),
                &format!("load.{k}"),
                format!("`load.{k}`: expected a rate like \"200/s\", found {raw}"),
                format!("write {k} = \"200/s\""),
            ),
        }
    }
    if let Some(x) = t.get("over")
        && let Some(d) = duration_of(src, x, "load.over", vars)
    {
        params = params.with_duration("over", d);
    }
    if kind == "ramp" {
        for (k, example) in [("to", "to = \"200/s\""), ("over", "over = \"60s\"")] {
            if t.get(k).is_none() {
                src.err(v.span(), &format!("load.{k}"), format!("a ramp load needs `{k}`"), format!("add {example}"));
            }
        }
    }
    for k in ["clients", "max_in_flight"] {
        if let Some(x) = t.get(k) {
            match to_json(src, x, &format!("load.{k}"), vars) {
                Value::Number(n) if n.as_u64().is_some() => params = params.with(k, n),
                other => src.err(
                    x.span(),
                    &format!("load.{k}"),
                    format!("`load.{k}`: expected a whole number, found {other}"),
                    format!("write {k} = 4"),
                ),
            }
        }
    }
    if let Some(x) = t.get("timeout")
        && let Some(d) = duration_of(src, x, "load.timeout", vars)
    {
        params = params.with_duration("timeout", d);
    }
    if kind == "constant_rate" && params.get("rate").is_none() && t.get("rate").is_none() {
        src.err(v.span(), "load.rate", "a constant_rate load needs `rate`", "add rate = \"200/s\"");
    }
    if kind == "closed_loop" && t.get("clients").is_none() {
        src.err(v.span(), "load.clients", "a closed_loop load needs `clients`", "add clients = 4");
    }
    let Some(cv) = t.get("call") else {
        src.err(
            v.span(),
            "load.call",
            "[load] needs a `call`",
            "add call = { kind = \"execute\", target = \"pit\", tool = \"echo\" }",
        );
        return None;
    };
    let ct = table_of(src, cv, "load.call")?;
    let Some(ck) = ct.get("kind") else {
        src.err(cv.span(), "load.call.kind", "`load.call` needs a `kind`", "write kind = \"execute\"");
        return None;
    };
    let call_kind = str_of(src, ck, "load.call.kind", vars)?;
    let entry = match registry::call(&call_kind) {
        Ok(e) => e,
        Err(_) => {
            let names: Vec<&str> = registry::calls().iter().map(|e| e.name).collect();
            src.err(
                ck.span(),
                "load.call.kind",
                format!("unknown call `{call_kind}`{}", suggest(&call_kind, &names)),
                format!("expected one of: {}", names.join(", ")),
            );
            return None;
        }
    };
    let cp = params_of(src, ct, &["kind"], "load.call", vars);
    let cp = check_params(src, "call", &call_kind, entry.params, &cp, ct, "load.call", cv.span())?;
    refs.check(src, ct, &cp, "load.call");
    Some(LoadSpec { kind, call: CallSpec { kind: call_kind, params: cp }, params })
}

fn read_step(
    src: &mut Src<'_>,
    v: &Spanned<DeValue<'_>>,
    at: &str,
    vars: &Vars<'_>,
    refs: &Refs<'_>,
    names: &mut BTreeMap<String, Range<usize>>,
) -> Option<StepSpec> {
    let t = table_of(src, v, at)?;
    let actions: Vec<&str> = STEP_ACTIONS.iter().copied().filter(|a| t.get(*a).is_some()).collect();
    let action = match actions.as_slice() {
        [one] => *one,
        [] => {
            // The nearest action among the keys, for a typo like `injct = "kill"`.
            let guess = t
                .iter()
                .find_map(|(k, _)| nearest(k.get_ref(), STEP_ACTIONS).map(|n| (k.span(), k.get_ref().to_string(), n)));
            match guess {
                Some((span, key, n)) => src.err(
                    span,
                    &format!("{at}.{key}"),
                    format!("unknown key `{key}`; a step needs an action"),
                    format!("did you mean `{n}`?"),
                ),
                None => {
                    src.err(v.span(), at, "a step needs an action", format!("add one of: {}", STEP_ACTIONS.join(", ")))
                }
            }
            return None;
        }
        [_, second, ..] => {
            let span = key_span(t, second).unwrap_or(v.span());
            src.err(
                span,
                &format!("{at}.{second}"),
                format!("a step has one action, this one has {}", actions.join(" and ")),
                "split it into two [[step]]s, or use parallel = [...]",
            );
            return None;
        }
    };
    let mut step_at = None;
    if let Some(x) = t.get("at") {
        step_at = duration_of(src, x, &format!("{at}.at"), vars);
    }
    let mut name = None;
    if let Some(x) = t.get("name") {
        name = str_of(src, x, &format!("{at}.name"), vars);
        if let Some(n) = &name {
            if let Some(first) = names.get(n) {
                let (l, c) = src.pos(first.start);
                src.err(
                    x.span(),
                    &format!("{at}.name"),
                    format!("duplicate step name `{n}` (first used at {l}:{c})"),
                    "give each step its own name",
                );
            } else {
                names.insert(n.clone(), x.span());
            }
        }
    }
    let av = t.get(action)?;
    let akey = format!("{at}.{action}");
    let only = |src: &mut Src<'_>, allowed: &[&str]| {
        for (k, _) in t.iter() {
            let key = k.get_ref();
            if !allowed.contains(&key.as_ref()) && !["at", "name"].contains(&key.as_ref()) {
                src.err(
                    k.span(),
                    &format!("{at}.{key}"),
                    format!("unknown key `{key}` in a `{action}` step"),
                    hint(key, allowed),
                );
            }
        }
    };
    let action = match action {
        "inject" => {
            let fault = str_of(src, av, &akey, vars)?;
            let Ok(entry) = registry::fault(&fault) else {
                let names: Vec<&str> = registry::faults().iter().map(|e| e.name).collect();
                src.err(
                    av.span(),
                    &akey,
                    format!("unknown fault `{fault}`{}", suggest(&fault, &names)),
                    format!("expected one of: {}", names.join(", ")),
                );
                return None;
            };
            let p = params_of(src, t, &["inject", "at", "name"], at, vars);
            let p = check_params(src, "fault", &fault, entry.params, &p, t, at, v.span())?;
            refs.check(src, t, &p, at);
            Action::Inject { fault, params: strip_defaults(p, entry.params, t) }
        }
        "expect" => {
            let criterion = str_of(src, av, &akey, vars)?;
            let (criterion, p) = criterion_params(src, t, &criterion, av, at, vars, &["expect", "at", "name"])?;
            refs.check(src, t, &p, at);
            Action::Expect { criterion, params: p }
        }
        "wait" => {
            only(src, &["wait"]);
            Action::Wait { duration: duration_of(src, av, &akey, vars)? }
        }
        "clear" => {
            only(src, &["clear"]);
            if av.get_ref().as_bool() != Some(true) {
                src.err(av.span(), &akey, "`clear`: expected true", "write clear = true");
                return None;
            }
            Action::Clear
        }
        "stop_load" => {
            only(src, &["stop_load"]);
            if av.get_ref().as_bool() != Some(true) {
                src.err(av.span(), &akey, "`stop_load`: expected true", "write stop_load = true");
                return None;
            }
            Action::StopLoad
        }
        "phase" => {
            only(src, &["phase"]);
            let s = str_of(src, av, &akey, vars)?;
            Action::Phase { phase: crate::observe::Phase::named(&s) }
        }
        _ => {
            only(src, &["parallel"]);
            let DeValue::Array(items) = av.get_ref() else {
                src.err(av.span(), &akey, "`parallel`: expected a list of steps", "write parallel = [{ inject = \"pause\", target = \"a.main\" }, { inject = \"pause\", target = \"b.main\" }]");
                return None;
            };
            let mut steps = Vec::new();
            for (j, s) in items.iter().enumerate() {
                if let Some(st) = read_step(src, s, &format!("{akey}[{j}]"), vars, refs, names) {
                    steps.push(st);
                }
            }
            Action::Parallel { steps }
        }
    };
    Some(StepSpec { at: step_at, name, action })
}

/// Keeps only the parameters written in the file (the registries fill defaults again when
/// binding), so a file and its builder twin give the same spec.
fn strip_defaults(p: Params, schema: &[Param], t: &Table<'_>) -> Params {
    let mut out = Params::new();
    for (k, v) in p.0 {
        let written = t.get(k.as_str()).is_some() || schema.iter().all(|s| s.name != k);
        if written {
            out.0.insert(k, v);
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn criterion_params(
    src: &mut Src<'_>,
    t: &Table<'_>,
    criterion: &str,
    cv: &Spanned<DeValue<'_>>,
    at: &str,
    vars: &Vars<'_>,
    skip: &[&str],
) -> Option<(String, Params)> {
    let Ok(entry) = registry::criterion(criterion) else {
        let names: Vec<&str> = registry::criteria().iter().map(|e| e.name).collect();
        src.err(
            cv.span(),
            &format!("{at}.{}", skip[0]),
            format!("unknown criterion `{criterion}`{}", suggest(criterion, &names)),
            format!("expected one of: {}", names.join(", ")),
        );
        return None;
    };
    let mut p = params_of(src, t, skip, at, vars);
    // Aliases: `eventually` is `within`, `tolerance` is `at_most`.
    for (alias, real) in [("eventually", "within"), ("tolerance", "at_most")] {
        if let Some(x) = p.0.remove(alias) {
            if p.get(real).is_some() {
                let span = key_span(t, alias).unwrap_or(cv.span());
                src.err(
                    span,
                    &format!("{at}.{alias}"),
                    format!("`{alias}` and `{real}` say the same"),
                    "keep one of them",
                );
                return None;
            }
            if !entry.params.iter().any(|s| s.name == real) {
                let span = key_span(t, alias).unwrap_or(cv.span());
                src.err(
                    span,
                    &format!("{at}.{alias}"),
                    format!("criterion `{criterion}` has no `{real}`, so `{alias}` does not apply"),
                    format!("its parameters: {}", entry.params.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")),
                );
                return None;
            }
            p.0.insert(real.to_string(), x);
        }
    }
    let checked = check_params(src, "criterion", criterion, entry.params, &p, t, at, cv.span())?;
    let _ = checked;
    Some((criterion.to_string(), p))
}

fn read_expect(
    src: &mut Src<'_>,
    v: &Spanned<DeValue<'_>>,
    at: &str,
    vars: &Vars<'_>,
    refs: &Refs<'_>,
    steps: &mut Vec<StepSpec>,
) {
    let Some(t) = table_of(src, v, at) else { return };
    let Some(cv) = t.get("criterion") else {
        let guess = t.iter().find_map(|(k, _)| {
            (nearest(k.get_ref(), &["criterion"]).is_some()).then(|| (k.span(), k.get_ref().to_string()))
        });
        match guess {
            Some((span, key)) => {
                src.err(span, &format!("{at}.{key}"), format!("unknown key `{key}`"), "did you mean `criterion`?")
            }
            None => src.err(v.span(), at, "an [[expect]] needs `criterion`", "add criterion = \"no_orphans\""),
        }
        return;
    };
    let Some(criterion) = str_of(src, cv, &format!("{at}.criterion"), vars) else { return };
    let mut phase = "recovery".to_string();
    if let Some(pv) = t.get("phase")
        && let Some(s) = str_of(src, pv, &format!("{at}.phase"), vars)
    {
        if !PHASES.contains(&s.as_str()) {
            src.err(
                pv.span(),
                &format!("{at}.phase"),
                format!("unknown phase `{s}`{}", suggest(&s, PHASES)),
                "expected baseline, fault or recovery",
            );
            return;
        }
        phase = s;
    }
    let Some((criterion, p)) = criterion_params(src, t, &criterion, cv, at, vars, &["criterion", "phase"]) else {
        return;
    };
    refs.check(src, t, &p, at);
    let step = StepSpec::new(Action::Expect { criterion, params: p });
    let first_inject = steps.iter().position(|s| matches!(s.action, Action::Inject { .. }));
    match (phase.as_str(), first_inject) {
        ("baseline", Some(i)) => steps.insert(i, step),
        ("fault", Some(i)) => {
            // After the inject and the expects already placed right after it.
            let mut j = i + 1;
            while j < steps.len() && matches!(steps[j].action, Action::Expect { .. }) {
                j += 1;
            }
            steps.insert(j, step);
        }
        ("baseline" | "fault", None) => {
            src.err(
                v.span(),
                &format!("{at}.phase"),
                format!("phase `{phase}` needs an inject step to refer to"),
                "add an inject [[step]] or use phase = \"recovery\"",
            );
        }
        _ => steps.push(step),
    }
}

fn read_guard(src: &mut Src<'_>, v: &Spanned<DeValue<'_>>, at: &str, vars: &Vars<'_>) -> Option<GuardSpec> {
    let t = table_of(src, v, at)?;
    let Some(kv) = t.get("kind") else {
        src.err(v.span(), at, "a [[guard]] needs `kind`", format!("add kind = one of {}", GUARD_KINDS.join(", ")));
        return None;
    };
    let kind = str_of(src, kv, &format!("{at}.kind"), vars)?;
    if !GUARD_KINDS.contains(&kind.as_str()) {
        src.err(
            kv.span(),
            &format!("{at}.kind"),
            format!("unknown guard `{kind}`{}", suggest(&kind, GUARD_KINDS)),
            format!("expected one of: {}", GUARD_KINDS.join(", ")),
        );
        return None;
    }
    let params = params_of(src, t, &["kind"], at, vars);
    Some(GuardSpec { kind, params })
}
