//! [`Params`]: the named parameters of a fault, criterion, fixture or call, as a scenario spec
//! holds them (`signal = "SIGKILL"`, `within = "5s"`), with typed getters whose errors name the
//! key, what was expected and the fix.
//!
//! A plain value type shared by every room (like [`crate::Error`]): faults and criteria
//! describe themselves as a kind plus `Params` ([`Described`]); the registries build them back.
//!
//! ```
//! use std::time::Duration;
//! use chaos_harness::params::Params;
//! let p = Params::new().with("within", "5s").with("n", 3).with("signal", "SIGKILL");
//! assert_eq!(p.duration("within").unwrap(), Some(Duration::from_secs(5)));
//! assert_eq!(p.u64("n").unwrap(), Some(3));
//! assert!(p.u64("signal").unwrap_err().to_string().contains("`signal`"));
//! assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"n":3,"signal":"SIGKILL","within":"5s"}"#);
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A parameter with a value of the wrong shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter `{key}`: expected {expected}, found {found}; {fix}")]
pub struct ParamError {
    /// The key.
    pub key: String,
    /// What was expected (`a duration like "500ms"`).
    pub expected: String,
    /// What was found.
    pub found: String,
    /// How to fix it.
    pub fix: String,
}

/// Named parameters (sorted by key; serialized as a plain JSON/TOML table).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Params(pub BTreeMap<String, Value>);

/// A registered kind with its parameters: how a fault, criterion, fixture or call describes
/// itself so that a registry can build it again.
///
/// ```
/// use chaos_harness::params::{Described, Params};
/// let d = Described::new("kill", Params::new().with("target", "web.main"));
/// assert_eq!(d.to_string(), r#"kill {"target":"web.main"}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Described {
    /// The registry name.
    pub kind: String,
    /// Its parameters.
    pub params: Params,
}

impl Described {
    /// A kind with parameters.
    pub fn new(kind: impl Into<String>, params: Params) -> Self {
        Self { kind: kind.into(), params }
    }
}

impl std::fmt::Display for Described {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let params = serde_json::to_string(&self.params).unwrap_or_default();
        write!(f, "{} {params}", self.kind)
    }
}

/// A duration as written in specs: `"500ms"`, `"5s"`, `"2m 30s"`.
///
/// ```
/// assert_eq!(chaos_harness::params::format_duration(std::time::Duration::from_millis(1500)), "1s 500ms");
/// ```
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn kind_of(v: &Value) -> String {
    match v {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a table".into(),
    }
}

impl Params {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key = value` (builder style). A value that cannot be represented is skipped.
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        if let Ok(v) = serde_json::to_value(value) {
            self.0.insert(key.to_string(), v);
        }
        self
    }

    /// Adds `key = "<duration>"`.
    pub fn with_duration(self, key: &str, d: Duration) -> Self {
        self.with(key, format_duration(d))
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// The keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn wrong(&self, key: &str, expected: &str, fix: &str) -> ParamError {
        ParamError {
            key: key.to_string(),
            expected: expected.to_string(),
            found: self.0.get(key).map(kind_of).unwrap_or_else(|| "nothing".into()),
            fix: fix.to_string(),
        }
    }

    /// A string parameter, if present.
    pub fn str(&self, key: &str) -> Result<Option<&str>, ParamError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.wrong(key, "a string", &format!("write {key} = \"...\""))),
        }
    }

    /// A whole non-negative number, if present.
    pub fn u64(&self, key: &str) -> Result<Option<u64>, ParamError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Some(_) => Err(self.wrong(key, "a whole number >= 0", &format!("write {key} = 3"))),
        }
    }

    /// A number, if present.
    pub fn f64(&self, key: &str) -> Result<Option<f64>, ParamError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(_) => Err(self.wrong(key, "a number", &format!("write {key} = 0.5"))),
        }
    }

    /// A boolean, if present.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ParamError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.wrong(key, "true or false", &format!("write {key} = true"))),
        }
    }

    /// A duration written as a string (`"500ms"`, `"5s"`), if present.
    pub fn duration(&self, key: &str) -> Result<Option<Duration>, ParamError> {
        let fix = format!("write {key} = \"500ms\" (units: ms, s, m, h)");
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => humantime::parse_duration(s).map(Some).map_err(|e| ParamError {
                key: key.to_string(),
                expected: "a duration like \"500ms\" or \"5s\"".into(),
                found: format!("{s:?} ({e})"),
                fix,
            }),
            Some(_) => Err(self.wrong(key, "a duration like \"500ms\" or \"5s\"", &fix)),
        }
    }

    /// A list of strings, if present.
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, ParamError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                Ok(Some(items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()))
            }
            Some(_) => Err(self.wrong(key, "a list of strings", &format!("write {key} = [\"a\", \"b\"]"))),
        }
    }

    /// The keys not in `known`.
    pub fn unknown_keys<'a>(&'a self, known: &[&str]) -> Vec<&'a str> {
        self.keys().filter(|k| !known.contains(k)).collect()
    }
}
