//! Scenarios: a scenario is a value. [`ScenarioSpec`] is the plain-data form (serde; what
//! scenario files hold); [`Scenario`] is the fluent builder over a running [`Chaos`](crate::Chaos).
//! Both run through one [engine]: steps on a timeline (inject, wait, clear, expect,
//! stop the load, named phases, parallel groups, `at` offsets), every happening a typed
//! [`Event`](crate::observe::Event), phases as a type, and a [`ScenarioOutcome`] built from
//! the events.
//!
//! | file | what |
//! |---|---|
//! | [`spec`] | the serializable model and `plan()` |
//! | [`builder`] | the fluent builder, `Scenario::spec()` |
//! | [`bind`] | a spec bound to a running test through the registries |
//! | [`engine`] | runs the steps, emits events, tracks phases |
//! | [`outcome`] | the outcome and the error that carries it |
//! | [`evidence`] | process-tree difference and fixture log tails of a failed scenario |
//! | [`file`] | scenario files (`*.chaos.toml`) |
//! | [`project`] | the project file `chaos.toml`: defaults, profiles, precedence |
//! | [`schema`] | the JSON Schemas of both files (schemars) |
//!
//! ```no_run
//! # use chaos_harness::prelude::*;
//! # async fn f(cx: &mut Chaos) -> ChaosResult {
//! let p = cx.start(Command::new("sleep").arg("60")).await?;
//! let scenario = cx.scenario("kill sleep")
//!     .inject(Fault::kill(p.main()))
//!     .expect(Criterion::no_orphans().of(&p).within(Duration::from_secs(1)));
//! let spec = scenario.spec()?;                       // the same scenario as data
//! println!("{}", serde_json::to_string_pretty(&spec)?);
//! scenario.run().await?;
//! # Ok(()) }
//! ```

pub mod bind;
pub mod builder;
pub mod engine;
pub mod evidence;
pub mod file;
pub mod impact;
pub mod outcome;
pub mod project;
pub mod schema;
pub mod spec;
mod step;

pub use builder::{Parallel, Scenario};
pub use evidence::{FixtureLog, ProcessChange};
pub use outcome::{ScenarioError, ScenarioOutcome};
pub use spec::{Action, CallSpec, GuardSpec, LoadSpec, ScenarioSpec, SpecError, StepSpec, TargetSpec};
