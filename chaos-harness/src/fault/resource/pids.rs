//! The pids fault: `pids.max` on the fixture's cgroup.

use std::sync::Arc;

use super::cgroups::PidsCgroup;
use super::memory::restored;
use super::{Journaled, bad_config, not_injected, sandbox_of, set_ctl, undo_all, unsupported};
use crate::Error;
use crate::fault::{ActiveFault, Confirmation, FaultContext, Inject};
use crate::fixture::{BoxFuture, Target};
use crate::sandbox::Sandbox;

/// A process-count limit on the fixture's cgroup (see
/// [`Fault::pids_limit`](crate::fault::Fault::pids_limit)).
///
/// ```no_run
/// # use chaos_harness::fault::{Fault, Inject};
/// # fn f(p: &chaos_harness::fixture::Process) {
/// let f = Fault::pids_limit(p, 8);
/// assert!(f.describe().starts_with("pids.max 8"));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PidsLimit {
    target: Target,
    max: u64,
}

impl PidsLimit {
    pub(crate) fn new(target: Target, max: u64) -> Self {
        Self { target, max }
    }
}

struct PidsLimitActive {
    confirmation: Confirmation,
    change: Journaled,
    sandbox: Arc<Sandbox>,
    pids: PidsCgroup,
    refused_before: Option<u64>,
    fixture: String,
}

impl Inject for PidsLimit {
    fn describe(&self) -> String {
        format!("pids.max {} on {}", self.max, self.target.name())
    }

    fn described(&self) -> Option<crate::params::Described> {
        use crate::params::{Described, Params};
        Some(Described::new("pids_limit", Params::new().with("target", self.target.name()).with("max", self.max)))
    }

    fn inject<'a>(&'a self, cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            if self.max > i32::MAX as u64 {
                return Err(bad_config(
                    format!("{name}: n"),
                    format!("{} is above the kernel's pid limit", self.max),
                    "give a smaller number",
                ));
            }
            let pids = PidsCgroup::of_target(&self.target).map_err(|e| unsupported(&name, e))?;
            let sandbox = sandbox_of(&cx);
            let refused_before = pids.refused_forks().ok();
            let v = self.max.to_string();
            let change = set_ctl(&sandbox, &name, &pids.cgroup().dir(), "pids.max", &v, &v)?;
            let current = pids.current().map(|c| c.to_string()).unwrap_or_else(|e| e.to_string());
            let members: Vec<i32> = self.target.scope().members().iter().map(|o| o.pid).collect();
            let confirmation = Confirmation::new(
                &name,
                format!("pids.max = {v} read back from {} (pids.current {current})", pids.cgroup().dir().display()),
                members,
            );
            Ok(Box::new(PidsLimitActive {
                confirmation,
                change,
                sandbox,
                pids,
                refused_before,
                fixture: self.target.name().to_string(),
            }) as Box<dyn ActiveFault>)
        })
    }
}

impl ActiveFault for PidsLimitActive {
    fn confirmation(&self) -> &Confirmation {
        &self.confirmation
    }

    fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, Error>> {
        Box::pin(async move {
            let name = format!("lift pids.max of {}", self.fixture);
            let refused = match (self.refused_before, self.pids.refused_forks()) {
                (Some(b), Ok(n)) => format!("{} fork(s) refused during the fault", n.saturating_sub(b)),
                _ => "refused forks not observable".into(),
            };
            let failed = undo_all(&self.sandbox, std::slice::from_ref(&self.change));
            if !failed.is_empty() {
                return Err(not_injected(&name, failed.join("; "), "teardown retries the undo from the journal"));
            }
            Ok(Confirmation::new(name, format!("{}; {refused}", restored(std::slice::from_ref(&self.change))), vec![]))
        })
    }
}
