//! The bound steps of a scenario (faults, criteria and loads as values, ready to run), as both
//! the fluent builder and a bound [`ScenarioSpec`](super::ScenarioSpec) produce them.

use std::time::Duration;

use crate::criteria::Criterion;
use crate::fault::Fault;
use crate::observe::Phase;
use crate::params::format_duration;

/// One step of a scenario.
pub(crate) enum Step {
    /// Inject a fault (kept active until a `Clear` or the end).
    Inject(Fault),
    /// Wait.
    Wait(Duration),
    /// Clear every active fault, in reverse order.
    Clear,
    /// Judge a criterion. Consecutive `Expect`s are judged concurrently.
    Expect(Criterion),
    /// Stop the load (waiting for requests in flight).
    StopLoad,
    /// Enter a named phase.
    Phase(Phase),
    /// Steps run at once: injections concurrently, then the longest wait, then the criteria
    /// concurrently.
    Parallel(Vec<Step>),
}

/// A step with its optional offset from the scenario's start.
pub(crate) struct Planned {
    pub(crate) at: Option<Duration>,
    pub(crate) step: Step,
}

impl Step {
    /// What the step does, in one line with resolved parameters.
    pub(crate) fn describe(&self) -> String {
        match self {
            Step::Inject(f) => match f.described() {
                Some(d) => format!("inject {} ({d})", f.describe()),
                None => format!("inject {}", f.describe()),
            },
            Step::Wait(d) => format!("wait {}", format_duration(*d)),
            Step::Clear => "clear every active fault".into(),
            Step::Expect(c) => format!("expect {}", c.describe()),
            Step::StopLoad => "stop the load".into(),
            Step::Phase(p) => format!("enter phase {p}"),
            Step::Parallel(steps) => {
                format!("in parallel: {}", steps.iter().map(Step::describe).collect::<Vec<_>>().join("; "))
            }
        }
    }

    /// Every criterion in this step (including inside parallel groups).
    pub(crate) fn criteria(&self) -> Vec<&Criterion> {
        match self {
            Step::Expect(c) => vec![c],
            Step::Parallel(steps) => steps.iter().flat_map(Step::criteria).collect(),
            _ => Vec::new(),
        }
    }
}

impl Planned {
    /// The plan line: `+2s inject ...` or `inject ...`.
    pub(crate) fn describe(&self) -> String {
        match self.at {
            Some(at) => format!("at +{}: {}", format_duration(at), self.step.describe()),
            None => self.step.describe(),
        }
    }
}
