//! Registries by name: faults, criteria, fixtures (targets), calls (what load issues) and
//! selector roles, each with a parameter schema, so a scenario spec can say
//! `fault = "kill"`, `signal = "SIGKILL"`.
//!
//! Entries are collected with [`inventory`]: the built-ins live in this room, and a user crate
//! registers its own the same way (the plugin architecture), then uses them from specs and
//! from the builder alike. An unknown name is an error listing the valid ones with the nearest.
//!
//! ```
//! use chaos_harness::registry;
//! let kill = registry::fault("kill").unwrap();
//! assert!(kill.params.iter().any(|p| p.name == "signal"));
//! let e = registry::fault("kil").unwrap_err();
//! assert!(e.to_string().contains("did you mean `kill`?"), "{e}");
//! ```
//!
//! A plugin registers a fault like this (see `fixtures/plugin-demo` for a whole one, with a
//! journaled side effect the crash reaper undoes):
//!
//! ```
//! use chaos_harness::registry::{FaultEntry, Param, ParamKind};
//! fn build(_: &chaos_harness::params::Params, _: &dyn chaos_harness::registry::Bindings)
//!     -> Result<chaos_harness::fault::Fault, chaos_harness::Error> { unimplemented!() }
//! chaos_harness::inventory::submit! {
//!     FaultEntry {
//!         name: "doc_fault",
//!         summary: "does nothing (a doc example)",
//!         params: &[Param::required("target", ParamKind::Selector, "what to act on")],
//!         build,
//!     }
//! }
//! assert!(chaos_harness::registry::fault("doc_fault").is_ok());
//! ```

mod builtin;
#[cfg(feature = "net")]
mod net;
pub mod reference;
mod resource;
#[cfg(feature = "snakepit")]
mod snakepit;

use std::any::Any;
use std::sync::Arc;

use crate::BoxFuture;
use crate::Error;
use crate::criteria::Criterion;
use crate::error::nearest;
use crate::fault::Fault;
use crate::fixture::{FixtureHandle, Selection};
use crate::load::Call;
use crate::params::{ParamError, Params};
use crate::sandbox::Sandbox;

/// The type of a parameter, for validation messages and the generated reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A selector expression `<fixture>.<role>` (`web.main`, `pit.workers`).
    Selector,
    /// A fixture name.
    Fixture,
    /// A duration string (`"500ms"`, `"5s"`).
    Duration,
    /// A signal name (`"SIGKILL"`).
    Signal,
    /// A whole number.
    Count,
    /// A number.
    Number,
    /// A string.
    Text,
    /// `true` or `false`.
    Bool,
    /// A list of strings.
    Texts,
    /// A table of string values.
    Table,
    /// A size in bytes: a number or `"64MiB"`.
    Size,
    /// A rate per second: a number or `"200/s"`.
    Rate,
}

impl ParamKind {
    /// How the kind is written in the reference (`duration`).
    pub fn as_str(self) -> &'static str {
        match self {
            ParamKind::Selector => "selector",
            ParamKind::Fixture => "fixture",
            ParamKind::Duration => "duration",
            ParamKind::Signal => "signal",
            ParamKind::Count => "count",
            ParamKind::Number => "number",
            ParamKind::Text => "text",
            ParamKind::Bool => "bool",
            ParamKind::Texts => "list of text",
            ParamKind::Table => "table",
            ParamKind::Size => "size",
            ParamKind::Rate => "rate",
        }
    }
}

/// One parameter of a registered thing.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Its key.
    pub name: &'static str,
    /// Its type.
    pub kind: ParamKind,
    /// Whether it must be given.
    pub required: bool,
    /// Its default, as written in a spec, when optional.
    pub default: Option<&'static str>,
    /// What it means.
    pub doc: &'static str,
}

impl Param {
    /// A required parameter.
    pub const fn required(name: &'static str, kind: ParamKind, doc: &'static str) -> Self {
        Self { name, kind, required: true, default: None, doc }
    }

    /// An optional parameter with its default (as written in a spec).
    pub const fn optional(name: &'static str, kind: ParamKind, default: &'static str, doc: &'static str) -> Self {
        Self { name, kind, required: false, default: Some(default), doc }
    }

    /// An optional parameter without a default.
    pub const fn maybe(name: &'static str, kind: ParamKind, doc: &'static str) -> Self {
        Self { name, kind, required: false, default: None, doc }
    }
}

/// What a factory may look up while building from a spec: the running fixtures by name.
pub trait Bindings {
    /// The running fixture named `name`.
    fn handle(&self, name: &str) -> Result<&dyn FixtureHandle, Error>;

    /// The typed handle of the fixture named `name` (downcast to e.g. `SnakepitHandle`).
    fn typed(&self, name: &str) -> Result<&(dyn Any + Send + Sync), Error>;

    /// The names of the running fixtures.
    fn names(&self) -> Vec<String>;

    /// Resolves a selector expression `<fixture>.<role>` (`web.main`, `pit.worker[0]`); a bare
    /// fixture name means its main process.
    fn selection(&self, expr: &str) -> Result<Selection, Error> {
        let (fixture, role) = expr.split_once('.').unwrap_or((expr, "main"));
        self.handle(fixture)?.role(role)
    }
}

/// The typed handle of fixture `name`, or an error naming the expected kind.
///
/// ```no_run
/// # fn f(b: &dyn chaos_harness::registry::Bindings) -> Result<(), chaos_harness::Error> {
/// let pit: &chaos_harness::fixture::snakepit::SnakepitHandle = chaos_harness::registry::typed(b, "pit", "snakepit")?;
/// # Ok(()) }
/// ```
pub fn typed<'a, T: 'static>(b: &'a dyn Bindings, name: &str, kind: &str) -> Result<&'a T, Error> {
    b.typed(name)?.downcast_ref::<T>().ok_or_else(|| Error::Config {
        what: format!("target `{name}`"),
        cause: format!("it is not a {kind} fixture"),
        fix: format!("name a target of kind \"{kind}\""),
    })
}

/// A registered fault.
#[derive(Debug)]
pub struct FaultEntry {
    /// Its name in specs (`kill`).
    pub name: &'static str,
    /// One line for the reference.
    pub summary: &'static str,
    /// Its parameters.
    pub params: &'static [Param],
    /// Builds it from validated parameters.
    pub build: fn(&Params, &dyn Bindings) -> Result<Fault, Error>,
}

/// A registered criterion.
#[derive(Debug)]
pub struct CriterionEntry {
    /// Its name in specs (`no_orphans`).
    pub name: &'static str,
    /// One line for the reference.
    pub summary: &'static str,
    /// Its parameters.
    pub params: &'static [Param],
    /// Builds it from validated parameters.
    pub build: fn(&Params, &dyn Bindings) -> Result<Criterion, Error>,
}

/// A fixture started from a spec: its handle as the object-safe trait and as itself (for
/// typed lookups such as `Criterion::healthy`).
pub struct StartedFixture {
    /// The handle; `None` for a target without processes (a proxy `link`, a `netns`), which
    /// only typed lookups ([`typed`]) reach.
    pub handle: Option<Box<dyn FixtureHandle>>,
    /// The same handle, typed.
    pub typed: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for StartedFixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.handle {
            Some(h) => write!(f, "StartedFixture({})", h.target().name()),
            None => write!(f, "StartedFixture(no processes)"),
        }
    }
}

impl StartedFixture {
    /// Wraps a started fixture's handle.
    pub fn new<H: FixtureHandle + Clone + Send + Sync + 'static>(handle: H) -> Self {
        Self { handle: Some(Box::new(handle.clone())), typed: Box::new(handle) }
    }

    /// A target without processes (a proxy link, a network namespace): reachable by name
    /// through [`Bindings::typed`] only; selectors and process faults naming it fail with an
    /// error saying so.
    ///
    /// ```
    /// let s = chaos_harness::registry::StartedFixture::resource(42u32);
    /// assert!(s.handle.is_none());
    /// ```
    pub fn resource<T: Send + Sync + 'static>(value: T) -> Self {
        Self { handle: None, typed: Box::new(value) }
    }
}

/// Starting a fixture: checks the parameters at once, then a future that starts it.
pub type StartFn =
    fn(String, &Params, Arc<Sandbox>) -> Result<BoxFuture<'static, Result<StartedFixture, Error>>, Error>;

/// A registered fixture (target) kind.
#[derive(Debug)]
pub struct FixtureEntry {
    /// Its kind in specs (`command`, `snakepit`).
    pub name: &'static str,
    /// One line for the reference.
    pub summary: &'static str,
    /// Its builder parameters.
    pub params: &'static [Param],
    /// The roles it adds to the generic ones (`beam`, `workers`).
    pub roles: &'static [&'static str],
    /// Starts it (named `name`) in the sandbox from validated parameters.
    pub start: StartFn,
}

/// A registered call: what a load issues (`execute` on a Snakepit).
#[derive(Debug)]
pub struct CallEntry {
    /// Its name in specs.
    pub name: &'static str,
    /// One line for the reference.
    pub summary: &'static str,
    /// Its parameters.
    pub params: &'static [Param],
    /// Builds it from validated parameters.
    pub build: fn(&Params, &dyn Bindings) -> Result<Call, Error>,
}

inventory::collect!(FaultEntry);
inventory::collect!(CriterionEntry);
inventory::collect!(FixtureEntry);
inventory::collect!(CallEntry);

/// A name that no entry of the registry has, or parameters that do not fit an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No entry of this name.
    #[error("unknown {what} `{name}`; {hint} (registered: {valid})")]
    Unknown {
        /// `fault`, `criterion`, `fixture`, `call`.
        what: &'static str,
        /// The name given.
        name: String,
        /// `did you mean ...?` or how to register one.
        hint: String,
        /// Every registered name.
        valid: String,
    },
    /// A parameter the entry does not take.
    #[error("{what} `{entry}` has no parameter `{key}`; {hint}")]
    UnknownParam {
        /// `fault`, `criterion`, ...
        what: &'static str,
        /// The entry.
        entry: String,
        /// The key given.
        key: String,
        /// `did you mean ...?` or the list of parameters.
        hint: String,
    },
    /// A required parameter is missing.
    #[error("{what} `{entry}` needs parameter `{key}` ({doc}); add {key} = ...")]
    MissingParam {
        /// `fault`, `criterion`, ...
        what: &'static str,
        /// The entry.
        entry: String,
        /// The missing key.
        key: String,
        /// What it means.
        doc: String,
    },
    /// A parameter of the wrong type.
    #[error("{what} `{entry}`: {source}")]
    BadParam {
        /// `fault`, `criterion`, ...
        what: &'static str,
        /// The entry.
        entry: String,
        /// The problem.
        #[source]
        source: Box<ParamError>,
    },
}

impl From<RegistryError> for Error {
    fn from(e: RegistryError) -> Self {
        Error::Config {
            what: "scenario spec".into(),
            cause: e.to_string(),
            fix: "see docs/scenarios.md for every name and parameter".into(),
        }
    }
}

fn lookup<T>(
    what: &'static str,
    name: &str,
    all: Vec<&'static T>,
    name_of: fn(&T) -> &'static str,
) -> Result<&'static T, RegistryError> {
    if let Some(e) = all.iter().find(|e| name_of(e) == name) {
        return Ok(e);
    }
    let mut names: Vec<&str> = all.iter().map(|e| name_of(e)).collect();
    names.sort_unstable();
    let hint = match nearest(name, &names) {
        Some(n) => format!("did you mean `{n}`?"),
        None => {
            format!("register your own with inventory::submit!(chaos_harness::registry::{}Entry {{ .. }})", title(what))
        }
    };
    Err(RegistryError::Unknown { what, name: name.to_string(), hint, valid: names.join(", ") })
}

fn title(what: &str) -> String {
    let mut c = what.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

/// Every registered fault, sorted by name.
pub fn faults() -> Vec<&'static FaultEntry> {
    let mut v: Vec<_> = inventory::iter::<FaultEntry>.into_iter().collect();
    v.sort_by_key(|e| e.name);
    v
}

/// Every registered criterion, sorted by name.
pub fn criteria() -> Vec<&'static CriterionEntry> {
    let mut v: Vec<_> = inventory::iter::<CriterionEntry>.into_iter().collect();
    v.sort_by_key(|e| e.name);
    v
}

/// Every registered fixture kind, sorted by name.
pub fn fixtures() -> Vec<&'static FixtureEntry> {
    let mut v: Vec<_> = inventory::iter::<FixtureEntry>.into_iter().collect();
    v.sort_by_key(|e| e.name);
    v
}

/// Every registered call, sorted by name.
pub fn calls() -> Vec<&'static CallEntry> {
    let mut v: Vec<_> = inventory::iter::<CallEntry>.into_iter().collect();
    v.sort_by_key(|e| e.name);
    v
}

/// The fault registered as `name`.
pub fn fault(name: &str) -> Result<&'static FaultEntry, RegistryError> {
    lookup("fault", name, faults(), |e| e.name)
}

/// The criterion registered as `name`.
pub fn criterion(name: &str) -> Result<&'static CriterionEntry, RegistryError> {
    lookup("criterion", name, criteria(), |e| e.name)
}

/// The fixture kind registered as `name`.
pub fn fixture(name: &str) -> Result<&'static FixtureEntry, RegistryError> {
    lookup("fixture", name, fixtures(), |e| e.name)
}

/// The call registered as `name`.
pub fn call(name: &str) -> Result<&'static CallEntry, RegistryError> {
    lookup("call", name, calls(), |e| e.name)
}

/// Checks `params` against a schema: no unknown key (with the nearest valid one), every
/// required key present, every value of its type. Returns the parameters with the defaults
/// filled in (what a plan shows).
///
/// ```
/// use chaos_harness::{params::Params, registry};
/// let kill = registry::fault("kill").unwrap();
/// let p = registry::validate("fault", "kill", kill.params, &Params::new().with("target", "web.main")).unwrap();
/// assert_eq!(p.str("signal").unwrap(), Some("SIGKILL"));
/// let e = registry::validate("fault", "kill", kill.params, &Params::new().with("target", "w").with("signl", "x"));
/// assert!(e.unwrap_err().to_string().contains("did you mean `signal`?"));
/// ```
pub fn validate(what: &'static str, entry: &str, schema: &[Param], params: &Params) -> Result<Params, RegistryError> {
    let names: Vec<&str> = schema.iter().map(|p| p.name).collect();
    if let Some(key) = params.unknown_keys(&names).first() {
        let hint = match nearest(key, &names) {
            Some(n) => format!("did you mean `{n}`?"),
            None if names.is_empty() => "it takes no parameters".into(),
            None => format!("its parameters: {}", names.join(", ")),
        };
        return Err(RegistryError::UnknownParam { what, entry: entry.into(), key: key.to_string(), hint });
    }
    let mut out = params.clone();
    for p in schema {
        let bad = |source| RegistryError::BadParam { what, entry: entry.into(), source: Box::new(source) };
        if params.get(p.name).is_none() {
            if p.required {
                return Err(RegistryError::MissingParam {
                    what,
                    entry: entry.into(),
                    key: p.name.into(),
                    doc: p.doc.into(),
                });
            }
            if let Some(d) = p.default {
                let v = match p.kind {
                    ParamKind::Count => d.parse::<u64>().map(serde_json::Value::from).ok(),
                    ParamKind::Number => d.parse::<f64>().ok().map(serde_json::Value::from),
                    ParamKind::Bool => d.parse::<bool>().ok().map(serde_json::Value::from),
                    _ => Some(serde_json::Value::from(d)),
                };
                if let Some(v) = v {
                    out.0.insert(p.name.to_string(), v);
                }
            }
            continue;
        }
        let checked = match p.kind {
            ParamKind::Duration => params.duration(p.name).map(drop),
            ParamKind::Count => params.u64(p.name).map(drop),
            ParamKind::Number => params.f64(p.name).map(drop),
            ParamKind::Bool => params.bool(p.name).map(drop),
            ParamKind::Texts => params.strings(p.name).map(drop),
            ParamKind::Table => Ok(()),
            ParamKind::Size => params.bytes(p.name).map(drop),
            ParamKind::Rate => params.rate(p.name).map(drop),
            ParamKind::Selector | ParamKind::Fixture | ParamKind::Signal | ParamKind::Text => {
                params.str(p.name).map(drop)
            }
        };
        checked.map_err(bad)?;
    }
    Ok(out)
}

/// Builds the fault `name` from `params` (validated first).
pub fn build_fault(name: &str, params: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    let e = fault(name)?;
    let p = validate("fault", name, e.params, params)?;
    (e.build)(&p, b)
}

/// Builds the criterion `name` from `params` (validated first).
pub fn build_criterion(name: &str, params: &Params, b: &dyn Bindings) -> Result<Criterion, Error> {
    let e = criterion(name)?;
    let p = validate("criterion", name, e.params, params)?;
    (e.build)(&p, b)
}

/// Builds the call `name` from `params` (validated first).
pub fn build_call(name: &str, params: &Params, b: &dyn Bindings) -> Result<Call, Error> {
    let e = call(name)?;
    let p = validate("call", name, e.params, params)?;
    (e.build)(&p, b)
}

/// A required parameter as a string (the registry validated it is present).
pub fn need_str<'a>(p: &'a Params, key: &str) -> Result<&'a str, Error> {
    p.str(key).map_err(param_err)?.ok_or_else(|| missing(key))
}

/// A duration parameter (validated; the default filled in).
pub fn need_duration(p: &Params, key: &str) -> Result<std::time::Duration, Error> {
    p.duration(key).map_err(param_err)?.ok_or_else(|| missing(key))
}

/// Converts a parameter error.
pub fn param_err(e: ParamError) -> Error {
    Error::Config {
        what: format!("parameter `{}`", e.key),
        cause: format!("expected {}, found {}", e.expected, e.found),
        fix: e.fix,
    }
}

fn missing(key: &str) -> Error {
    Error::Config { what: format!("parameter `{key}`"), cause: "it is missing".into(), fix: format!("add {key} = ...") }
}
