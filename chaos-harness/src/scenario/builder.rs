//! [`Scenario`]: the fluent builder. It holds the steps as values (faults, criteria, load),
//! runs them through the [engine], and writes them down as a
//! [`ScenarioSpec`] when every part can be described ([`Scenario::spec`]).

use std::time::Duration;

use super::spec::{Action, CallSpec, GuardSpec, LoadSpec, ScenarioSpec, SpecError, StepSpec, TargetSpec};
use super::step::{Planned, Step};
use super::{ScenarioError, ScenarioOutcome, engine};
use crate::Chaos;
use crate::criteria::Criterion;
use crate::fault::Fault;
use crate::load::{Call, Load};
use crate::observe::Phase;
use crate::safety::guard::Guard;

/// A scenario being built; run it with [`Scenario::run`].
///
/// Steps run in order. Consecutive `expect`s are judged concurrently, and their `within`
/// windows open when the fault before them was confirmed (not when the previous criterion
/// finished). Faults still active at the end are cleared in reverse order. A fault that cannot
/// be confirmed ends the scenario as *not injected*; any failed criterion makes it fail.
/// Either way the [`ScenarioOutcome`] (typed events, phases, verdicts) is in the error.
///
/// ```no_run
/// # use chaos_harness::prelude::*;
/// # use chaos_harness::{fault::Fault, criteria::Criterion, fixture::{Command, FixtureHandle}};
/// # async fn f(cx: &mut Chaos) -> ChaosResult {
/// let p = cx.start(Command::new("sleep").arg("60")).await?;
/// let outcome = cx.scenario("kill sleep")
///     .inject(Fault::kill(p.main()))
///     .expect(Criterion::no_orphans().of(&p).within(Duration::from_secs(1)))
///     .run()
///     .await?;
/// println!("{outcome}");
/// # Ok(()) }
/// ```
#[must_use = "a scenario does nothing until .run().await"]
pub struct Scenario<'cx> {
    pub(crate) cx: &'cx mut Chaos,
    pub(crate) name: String,
    pub(crate) tags: Vec<String>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) steps: Vec<Planned>,
    pub(crate) load: Option<(Load, Call)>,
    pub(crate) guards: Vec<Guard>,
    /// Fixtures whose data dir is checkpointed before and restored after ([`Scenario::restore_data`]).
    pub(crate) restore: Vec<crate::fixture::Process>,
}

/// The steps of a parallel group (see [`Scenario::parallel`]).
#[derive(Default)]
pub struct Parallel {
    steps: Vec<Step>,
}

impl Parallel {
    /// Injects a fault at the same time as the group's others.
    pub fn inject(mut self, fault: impl Into<Fault>) -> Self {
        self.steps.push(Step::Inject(fault.into()));
        self
    }

    /// Waits (the group waits for its longest wait).
    pub fn wait(mut self, d: Duration) -> Self {
        self.steps.push(Step::Wait(d));
        self
    }

    /// Judges a criterion at the same time as the group's others.
    pub fn expect(mut self, c: impl Into<Criterion>) -> Self {
        self.steps.push(Step::Expect(c.into()));
        self
    }
}

impl<'cx> Scenario<'cx> {
    pub(crate) fn new(cx: &'cx mut Chaos, name: &str) -> Self {
        Self {
            cx,
            name: name.to_string(),
            tags: Vec::new(),
            timeout: None,
            steps: Vec::new(),
            load: None,
            guards: Vec::new(),
            restore: Vec::new(),
        }
    }

    /// Leaves `fixture`'s data dir as this scenario found it: checkpointed when the scenario
    /// starts; when it ends (passed or not) the program is stopped, its data dir restored
    /// (files changed, added or removed by the scenario are undone, ownership kept) and the
    /// program started again, ready, so the next scenario starts from the same data. For
    /// scenarios that corrupt state (disk full, killed writes). A checkpoint or restore that
    /// fails fails the scenario with a verdict naming the fixture.
    ///
    /// ```no_run
    /// # use chaos_harness::prelude::*;
    /// # async fn f(cx: &mut Chaos) -> ChaosResult {
    /// let db = cx.start(Command::new("sleep").name("db").arg("60")).await?;
    /// cx.scenario("killed writes")
    ///     .restore_data(&db)
    ///     .inject(Fault::kill(db.main()).signal(Signal::SIGKILL))
    ///     .run()
    ///     .await?;
    /// // db runs again, on the data it had before the scenario.
    /// # Ok(()) }
    /// ```
    pub fn restore_data(mut self, fixture: &crate::fixture::Process) -> Self {
        self.restore.push(fixture.clone());
        self
    }

    fn push(mut self, step: Step) -> Self {
        self.steps.push(Planned { at: None, step });
        self
    }

    /// Adds a stop condition, polled while the scenario runs (see [`crate::safety::guard`]).
    /// When it trips, the scenario stops, stops its load, clears its active faults and fails
    /// with [`ScenarioError::AbortedByGuard`].
    pub fn guard(mut self, g: Guard) -> Self {
        self.guards.push(g);
        self
    }

    /// Tags the scenario (carried into its spec and reports).
    pub fn tags<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tags: I) -> Self {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// The longest the steps may run; past it the scenario stops like a tripped guard (load
    /// stopped, faults cleared) and fails.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Injects a fault (kept active until [`Scenario::clear_faults`] or the end).
    pub fn inject(self, fault: impl Into<Fault>) -> Self {
        self.push(Step::Inject(fault.into()))
    }

    /// Injects a fault `at` an offset from the scenario's start (waiting until then).
    pub fn inject_at(mut self, at: Duration, fault: impl Into<Fault>) -> Self {
        self.steps.push(Planned { at: Some(at), step: Step::Inject(fault.into()) });
        self
    }

    /// A group of steps run at once: `.parallel(|p| p.inject(a).inject(b))` injects both
    /// faults concurrently.
    pub fn parallel(self, group: impl FnOnce(Parallel) -> Parallel) -> Self {
        self.push(Step::Parallel(group(Parallel::default()).steps))
    }

    /// Runs `load` (issuing `call`) from the scenario's start until [`Scenario::stop_load`] or
    /// the end; criteria such as [`Criterion::no_lost_requests`] read it.
    pub fn load(mut self, load: Load, call: Call) -> Self {
        self.load = Some((load, call));
        self
    }

    /// Stops the load (waiting for requests in flight); later criteria see the final report.
    pub fn stop_load(self) -> Self {
        self.push(Step::StopLoad)
    }

    /// Waits.
    pub fn wait(self, d: Duration) -> Self {
        self.push(Step::Wait(d))
    }

    /// Clears every active fault (reverse order).
    pub fn clear_faults(self) -> Self {
        self.push(Step::Clear)
    }

    /// Judges a criterion at this point (consecutive ones concurrently).
    pub fn expect(self, c: impl Into<Criterion>) -> Self {
        self.push(Step::Expect(c.into()))
    }

    /// Enters a named phase (reports measure per phase).
    pub fn phase(self, name: &str) -> Self {
        self.push(Step::Phase(Phase::named(name)))
    }

    /// What would happen, one line per step with resolved parameters, as a dry run prints it.
    pub fn plan(&self) -> Vec<String> {
        let mut plan: Vec<String> = self
            .load
            .iter()
            .map(|(l, c)| match c.described() {
                Some(d) => format!("start load {} issuing {d}", l.described()),
                None => format!("start load {}", l.described()),
            })
            .collect();
        plan.extend(self.steps.iter().map(Planned::describe));
        plan
    }

    /// The scenario as data: its targets (the fixtures started in this test), load, steps and
    /// guards, each written as a registry kind with parameters. Fails naming the first part
    /// that cannot be written down (a custom fault, criterion or call).
    pub fn spec(&self) -> Result<ScenarioSpec, SpecError> {
        let mut spec = ScenarioSpec::new(self.name.clone());
        spec.tags = self.tags.clone();
        spec.timeout = self.timeout;
        for (name, d) in self.cx.fixture_specs() {
            let d = d.ok_or_else(|| SpecError::NotDescribable {
                at: format!("target {name}"),
                what: format!("fixture {name}"),
                why: "its builder cannot describe itself".into(),
            })?;
            spec.targets.insert(name, TargetSpec { kind: d.kind, params: d.params });
        }
        if let Some((load, call)) = &self.load {
            let call = call.described().ok_or_else(|| SpecError::NotDescribable {
                at: "load".into(),
                what: "the load's call".into(),
                why: "it is a closure".into(),
            })?;
            let shape = load.described();
            spec.load = Some(LoadSpec {
                kind: shape.kind,
                params: shape.params,
                call: CallSpec { kind: call.kind.clone(), params: call.params.clone() },
            });
        }
        for (i, p) in self.steps.iter().enumerate() {
            let mut s = step_spec(&p.step, &format!("step {i}"))?;
            s.at = p.at;
            spec.steps.push(s);
        }
        for (i, g) in self.guards.iter().enumerate() {
            let d = g.described().ok_or_else(|| SpecError::NotDescribable {
                at: format!("guard {i}"),
                what: format!("guard `{}`", g.name()),
                why: "it is a custom probe".into(),
            })?;
            spec.guards.push(GuardSpec { kind: d.kind.clone(), params: d.params.clone() });
        }
        Ok(spec)
    }

    /// Runs the steps and returns the outcome, or a [`ScenarioError`] carrying it.
    pub async fn run(mut self) -> Result<ScenarioOutcome, ScenarioError> {
        let restore = std::mem::take(&mut self.restore);
        let mut failed: Vec<crate::criteria::Verdict> = Vec::new();
        let mut checkpointed = Vec::new();
        for p in restore {
            match p.checkpoint_data() {
                Ok(()) => checkpointed.push(p),
                Err(e) => failed.push(restore_verdict(&p, "checkpointed before the scenario", e)),
            }
        }
        let result = engine::run(self).await;
        for p in checkpointed {
            if let Err(e) = p.restore_data_and_restart().await {
                failed.push(restore_verdict(&p, "restored and restarted after the scenario", e));
            }
        }
        if failed.is_empty() {
            return result;
        }
        let mut outcome = match result {
            Ok(o) => o,
            Err(
                ScenarioError::NotInjected(o) | ScenarioError::CriteriaFailed(o) | ScenarioError::AbortedByGuard(o),
            ) => *o,
        };
        outcome.verdicts.extend(failed);
        Err(ScenarioError::CriteriaFailed(Box::new(outcome)))
    }
}

/// The failed verdict of a data checkpoint or restore.
fn restore_verdict(p: &crate::fixture::Process, what: &str, e: crate::Error) -> crate::criteria::Verdict {
    crate::criteria::Verdict { criterion: format!("data of {} {what}", p.name()), passed: false, detail: e.to_string() }
}

fn step_spec(step: &Step, at: &str) -> Result<StepSpec, SpecError> {
    let not = |what: String| SpecError::NotDescribable { at: at.to_string(), what, why: "it is not registered".into() };
    let action = match step {
        Step::Inject(f) => {
            let d = f.described().ok_or_else(|| not(format!("fault `{}`", f.describe())))?;
            Action::Inject { fault: d.kind, params: d.params }
        }
        Step::Expect(c) => {
            let d = c.described().ok_or_else(|| not(format!("criterion `{}`", c.describe())))?;
            Action::Expect { criterion: d.kind, params: d.params }
        }
        Step::Wait(d) => Action::Wait { duration: *d },
        Step::Clear => Action::Clear,
        Step::StopLoad => Action::StopLoad,
        Step::Phase(p) => Action::Phase { phase: p.clone() },
        Step::Parallel(steps) => Action::Parallel {
            steps: steps
                .iter()
                .enumerate()
                .map(|(j, s)| step_spec(s, &format!("{at}.{j}")))
                .collect::<Result<_, _>>()?,
        },
    };
    Ok(StepSpec::new(action))
}
