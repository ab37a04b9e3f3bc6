//! [`ScenarioSpec`]: a scenario as plain, serializable data: targets (fixtures by name with
//! their builder parameters), load, steps on a timeline, criteria with their phases, guards,
//! tags, timeout. The fluent builder writes one ([`Scenario::spec`](super::Scenario::spec));
//! a scenario file is one; both run through the same engine after binding to a running
//! [`Chaos`](crate::Chaos) ([`Chaos::run_spec`](crate::Chaos::run_spec)).
//!
//! ```
//! use chaos_harness::scenario::ScenarioSpec;
//! let spec: ScenarioSpec = serde_json::from_value(serde_json::json!({
//!     "name": "kill sleep",
//!     "targets": { "web": { "kind": "command", "program": "sleep", "args": ["60"] } },
//!     "steps": [
//!         { "action": "inject", "fault": "kill", "target": "web.main" },
//!         { "action": "expect", "criterion": "no_orphans", "target": "web", "within": "2s" }
//!     ]
//! })).unwrap();
//! let plan = spec.plan().unwrap();
//! assert_eq!(plan[0], r#"start target web: command {"args":["60"],"program":"sleep","ready_timeout":"10s"}"#);
//! assert!(plan[1].starts_with(r#"inject kill {"confirm_timeout":"5s","signal":"SIGKILL","target":"web.main"}"#), "{}", plan[1]);
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::observe::Phase;
use crate::params::{Described, Params, format_duration};
use crate::registry::{self, RegistryError};

/// A scenario as data (see the [module docs](self)).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// The scenario's name.
    pub name: String,
    /// Tags, for selection (`process`, `slow`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The longest the scenario may run (`"90s"`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub timeout: Option<Duration>,
    /// The fixtures, by name: started when the spec binds (unless a fixture of that name is
    /// already running in the test).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub targets: BTreeMap<String, TargetSpec>,
    /// The load, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadSpec>,
    /// The steps, in order.
    #[serde(default)]
    pub steps: Vec<StepSpec>,
    /// Stop conditions polled while the scenario runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<GuardSpec>,
}

/// A fixture: its registry kind and builder parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetSpec {
    /// The kind (`command`, `snakepit`).
    pub kind: String,
    /// Its parameters.
    #[serde(flatten)]
    pub params: Params,
}

/// The load: a shape (`constant_rate` with `rate`, `closed_loop` with `clients`) and the call
/// it issues.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadSpec {
    /// `constant_rate`, `closed_loop`, `ramp` or `steps`.
    pub kind: String,
    /// The call (a registered call kind with its parameters).
    pub call: CallSpec,
    /// The shape's parameters.
    #[serde(flatten)]
    pub params: Params,
}

/// What the load issues: a registered call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallSpec {
    /// The call kind (`execute`).
    pub kind: String,
    /// Its parameters.
    #[serde(flatten)]
    pub params: Params,
}

/// A guard: `mem_available_below` (percent), `load_average_above` (load),
/// `free_disk_below` (path, percent).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuardSpec {
    /// The guard kind.
    pub kind: String,
    /// Its parameters.
    #[serde(flatten)]
    pub params: Params,
}

/// One step, optionally `at` an offset from the scenario's start, optionally named.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepSpec {
    /// When to start it, from the scenario's start (`"10s"`); otherwise right after the step
    /// before.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub at: Option<Duration>,
    /// A name for the step (unique in the scenario).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What it does.
    #[serde(flatten)]
    pub action: Action,
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Inject a registered fault.
    Inject {
        /// The fault kind (`kill`, `latency`, ...).
        fault: String,
        /// Its parameters.
        #[serde(flatten)]
        params: Params,
    },
    /// Wait.
    Wait {
        /// How long.
        #[serde(with = "duration")]
        duration: Duration,
    },
    /// Clear every active fault.
    Clear,
    /// Judge a registered criterion (consecutive ones concurrently).
    Expect {
        /// The criterion kind (`no_orphans`, ...).
        criterion: String,
        /// Its parameters.
        #[serde(flatten)]
        params: Params,
    },
    /// Stop the load.
    StopLoad,
    /// Enter a named phase.
    Phase {
        /// The phase.
        phase: Phase,
    },
    /// Steps run at once.
    Parallel {
        /// The steps.
        steps: Vec<StepSpec>,
    },
}

impl StepSpec {
    /// A step without offset or name.
    pub fn new(action: Action) -> Self {
        Self { at: None, name: None, action }
    }
}

/// Why a spec cannot be planned, bound or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// A name or parameter the registries do not know.
    #[error("{at}: {source}")]
    Registry {
        /// Where in the spec (`step 2`, `target web`).
        at: String,
        /// The problem.
        #[source]
        source: RegistryError,
    },
    /// A selector or target naming a target the spec does not define.
    #[error("{at}: `{name}` is not a target of this scenario; {hint}")]
    UnknownTarget {
        /// Where in the spec.
        at: String,
        /// The name used.
        name: String,
        /// `did you mean ...?` or the targets.
        hint: String,
    },
    /// Two steps with the same name.
    #[error("steps {first} and {second} are both named `{name}`; give each step its own name")]
    DuplicateStep {
        /// The name.
        name: String,
        /// The first step's index.
        first: usize,
        /// The second step's index.
        second: usize,
    },
    /// A builder scenario holding something that cannot be written down.
    #[error(
        "{at}: {what} cannot be written as a spec ({why}); register it (see chaos_harness::registry) or keep this scenario in Rust"
    )]
    NotDescribable {
        /// Where.
        at: String,
        /// What.
        what: String,
        /// Why.
        why: String,
    },
}

fn reg(at: impl Into<String>) -> impl FnOnce(RegistryError) -> SpecError {
    let at = at.into();
    move |source| SpecError::Registry { at, source }
}

impl ScenarioSpec {
    /// A spec with a name and nothing else.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Self::default() }
    }

    /// Checks every name, parameter and target reference against the registries, without
    /// touching anything; returns every problem found.
    pub fn validate(&self) -> Result<(), Vec<SpecError>> {
        match self.plan_lines() {
            (_, errors) if errors.is_empty() => Ok(()),
            (_, errors) => Err(errors),
        }
    }

    /// What would happen, one line per target and step, with every parameter resolved (the
    /// registries' defaults filled in), without touching anything.
    pub fn plan(&self) -> Result<Vec<String>, Vec<SpecError>> {
        match self.plan_lines() {
            (lines, errors) if errors.is_empty() => Ok(lines),
            (_, errors) => Err(errors),
        }
    }

    fn plan_lines(&self) -> (Vec<String>, Vec<SpecError>) {
        let mut lines = Vec::new();
        let mut errors = Vec::new();
        for (name, t) in &self.targets {
            let at = format!("target {name}");
            match registry::fixture(&t.kind).and_then(|e| registry::validate("fixture", &t.kind, e.params, &t.params)) {
                Ok(p) => lines.push(format!("start target {name}: {}", Described::new(t.kind.clone(), p))),
                Err(e) => errors.push(reg(at)(e)),
            }
        }
        if let Some(load) = &self.load {
            let call = registry::call(&load.call.kind)
                .and_then(|e| registry::validate("call", &load.call.kind, e.params, &load.call.params));
            match call {
                Ok(p) => {
                    self.check_target(p.str("target").ok().flatten(), "load", &mut errors);
                    lines.push(format!(
                        "start load {} issuing {}",
                        Described::new(load.kind.clone(), load.params.clone()),
                        Described::new(load.call.kind.clone(), p)
                    ));
                }
                Err(e) => errors.push(reg("load")(e)),
            }
        }
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, step) in self.steps.iter().enumerate() {
            if let Some(n) = &step.name
                && let Some(first) = names.insert(n, i)
            {
                errors.push(SpecError::DuplicateStep { name: n.clone(), first, second: i });
            }
            self.plan_step(step, &format!("step {i}"), &mut lines, &mut errors);
        }
        for (i, g) in self.guards.iter().enumerate() {
            lines.push(format!("guard {}", Described::new(g.kind.clone(), g.params.clone())));
            if !GUARD_KINDS.contains(&g.kind.as_str()) {
                errors.push(SpecError::NotDescribable {
                    at: format!("guard {i}"),
                    what: format!("guard `{}`", g.kind),
                    why: crate::error::did_you_mean(&g.kind, GUARD_KINDS),
                });
            }
        }
        (lines, errors)
    }

    fn plan_step(&self, step: &StepSpec, at: &str, lines: &mut Vec<String>, errors: &mut Vec<SpecError>) {
        let when = step.at.map(|d| format!("at +{}: ", format_duration(d))).unwrap_or_default();
        let line = match &step.action {
            Action::Inject { fault, params } => {
                match registry::fault(fault).and_then(|e| registry::validate("fault", fault, e.params, params)) {
                    Ok(p) => {
                        self.check_target(p.str("target").ok().flatten(), at, errors);
                        format!("inject {}", Described::new(fault.clone(), p))
                    }
                    Err(e) => return errors.push(reg(at)(e)),
                }
            }
            Action::Expect { criterion, params } => {
                match registry::criterion(criterion)
                    .and_then(|e| registry::validate("criterion", criterion, e.params, params))
                {
                    Ok(p) => {
                        self.check_target(p.str("target").ok().flatten(), at, errors);
                        format!("expect {}", Described::new(criterion.clone(), p))
                    }
                    Err(e) => return errors.push(reg(at)(e)),
                }
            }
            Action::Wait { duration } => format!("wait {}", format_duration(*duration)),
            Action::Clear => "clear every active fault".into(),
            Action::StopLoad => "stop the load".into(),
            Action::Phase { phase } => format!("enter phase {phase}"),
            Action::Parallel { steps } => {
                let mut inner = Vec::new();
                for (j, s) in steps.iter().enumerate() {
                    self.plan_step(s, &format!("{at}.{j}"), &mut inner, errors);
                }
                format!("in parallel: {}", inner.join("; "))
            }
        };
        lines.push(format!("{when}{line}"));
    }

    /// A selector or fixture reference (`web.main`, `web`) must name a target of the spec,
    /// when the spec defines targets at all (a spec without targets binds to fixtures already
    /// running in the test).
    fn check_target(&self, reference: Option<&str>, at: &str, errors: &mut Vec<SpecError>) {
        let Some(reference) = reference else { return };
        let name = reference.split_once('.').map_or(reference, |(n, _)| n);
        if self.targets.is_empty() || self.targets.contains_key(name) {
            return;
        }
        let names: Vec<&str> = self.targets.keys().map(String::as_str).collect();
        errors.push(SpecError::UnknownTarget {
            at: at.to_string(),
            name: name.to_string(),
            hint: crate::error::did_you_mean(name, &names),
        });
    }
}

/// The guard kinds a spec may use.
pub const GUARD_KINDS: &[&str] = &["mem_available_below", "load_average_above", "free_disk_below"];

/// Serde helper: a duration as a string (`"500ms"`).
mod duration {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::params::format_duration(*d))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "{s:?} is not a duration ({e}); write it like \"500ms\", \"5s\" or \"2m\""
            ))
        })
    }
}

/// Serde helper: an optional duration as a string.
mod opt_duration {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::duration::deserialize(d).map(Some)
    }
}
