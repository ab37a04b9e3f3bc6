//! Binding a [`ScenarioSpec`] to a running [`Chaos`]: targets the test has not started yet are
//! started from the fixture registry, then every step is built through the fault, criterion
//! and call registries into the same [`Scenario`] the fluent builder makes.

use super::builder::Scenario;
use super::spec::{Action, ScenarioSpec, StepSpec};
use super::step::{Planned, Step};
use super::{ScenarioError, ScenarioOutcome};
use crate::Chaos;
use crate::Error;
use crate::load::Load;
use crate::observe::Phase;
use crate::params::Described;
use crate::registry::{self, Bindings};
use crate::safety::guard::Guard;

fn spec_error(errors: Vec<super::SpecError>) -> Error {
    Error::Config {
        what: "scenario spec".into(),
        cause: errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        fix: "fix the names and parameters listed (docs/scenarios.md lists every one)".into(),
    }
}

fn build_step(step: &StepSpec, b: &dyn Bindings) -> Result<Step, Error> {
    Ok(match &step.action {
        Action::Inject { fault, params } => Step::Inject(registry::build_fault(fault, params, b)?),
        Action::Expect { criterion, params } => Step::Expect(registry::build_criterion(criterion, params, b)?),
        Action::Wait { duration } => Step::Wait(*duration),
        Action::Clear => Step::Clear,
        Action::StopLoad => Step::StopLoad,
        Action::Phase { phase } => Step::Phase(Phase::named(phase.as_str())),
        Action::Parallel { steps } => Step::Parallel(steps.iter().map(|s| build_step(s, b)).collect::<Result<_, _>>()?),
    })
}

impl Chaos {
    /// Binds `spec` to this test: validates it, starts its targets that are not running yet
    /// (a fixture already started under a target's name is used as it is), and builds its
    /// steps through the registries. Run the result with [`Scenario::run`].
    ///
    /// ```no_run
    /// # async fn f(cx: &mut chaos_harness::Chaos, spec: chaos_harness::scenario::ScenarioSpec) -> chaos_harness::ChaosResult {
    /// let outcome = cx.bind(&spec).await?.run().await?;
    /// println!("{outcome}");
    /// # Ok(()) }
    /// ```
    pub async fn bind(&mut self, spec: &ScenarioSpec) -> Result<Scenario<'_>, Error> {
        spec.validate().map_err(spec_error)?;
        // A target that runs inside another one (a command's `netns`) starts after the rest.
        let mut order: Vec<_> = spec.targets.iter().collect();
        order.sort_by_key(|(_, t)| t.params.get("netns").is_some());
        for (name, target) in order {
            if self.has_fixture(name) {
                continue;
            }
            let entry = registry::fixture(&target.kind)?;
            let mut params = registry::validate("fixture", &target.kind, entry.params, &target.params)?;
            if let Ok(Some(ns)) = params.str("netns")
                && !ns.starts_with('/')
            {
                let path = self.netns_file(name, ns)?;
                params = params.with("netns", path);
            }
            let fixture_name = params.str("name").ok().flatten().unwrap_or(name).to_string();
            let started = (entry.start)(fixture_name, &params, self.sandbox().clone())?.await?;
            self.adopt(name.clone(), started, Some(Described::new(target.kind.clone(), target.params.clone())));
        }
        let (steps, load, guards) = {
            let b = self.bindings();
            let steps = spec
                .steps
                .iter()
                .map(|s| Ok(Planned { at: s.at, step: build_step(s, &b)? }))
                .collect::<Result<Vec<_>, Error>>()?;
            let load = match &spec.load {
                Some(l) => {
                    let shape = Load::from_described(&Described::new(l.kind.clone(), l.params.clone()))?;
                    Some((shape, registry::build_call(&l.call.kind, &l.call.params, &b)?))
                }
                None => None,
            };
            let guards = spec
                .guards
                .iter()
                .map(|g| Guard::from_described(&Described::new(g.kind.clone(), g.params.clone())))
                .collect::<Result<Vec<_>, Error>>()?;
            (steps, load, guards)
        };
        let mut scenario = Scenario::new(self, &spec.name);
        scenario.tags = spec.tags.clone();
        scenario.timeout = spec.timeout;
        scenario.steps = steps;
        scenario.load = load;
        scenario.guards = guards;
        Ok(scenario)
    }

    /// The namespace file of the `netns` target `ns` that target `of` runs in.
    fn netns_file(&self, of: &str, ns: &str) -> Result<String, Error> {
        #[cfg(feature = "net")]
        {
            let _ = of;
            let b = self.bindings();
            registry::typed::<crate::topology::Netns>(&b, ns, "netns").map(|n| format!("/run/netns/{}", n.name()))
        }
        #[cfg(not(feature = "net"))]
        Err(Error::Config {
            what: format!("target `{of}`: netns `{ns}`"),
            cause: "network namespaces need chaos-harness's `net` feature".into(),
            fix: "build with the default features".into(),
        })
    }

    /// Binds and runs `spec` (see [`Chaos::bind`]). The outer `Result` is the binding (a bad
    /// spec, a target that did not start); the inner one the scenario's verdict.
    pub async fn run_spec(&mut self, spec: &ScenarioSpec) -> Result<Result<ScenarioOutcome, ScenarioError>, Error> {
        Ok(self.bind(spec).await?.run().await)
    }
}
