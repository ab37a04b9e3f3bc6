//! Resource criteria: OOM kills observed in a fixture's memory cgroup
//! (`Criterion::oom_kills(&p).at_least(1)`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Criterion, Judge, JudgeContext, Verdict};
use crate::BoxFuture;
use crate::fault::resource::MemoryCgroup;
use crate::fixture::{FixtureHandle, Target};

/// How often the OOM-kill counter is polled while waiting.
const OOM_POLL: Duration = Duration::from_millis(50);

/// Criterion: OOM kills in a fixture's memory cgroup since the scenario started (see
/// [`Criterion::oom_kills`]).
///
/// ```no_run
/// # use chaos_harness::criteria::Criterion;
/// # fn f(p: &chaos_harness::fixture::Process) {
/// let at_least_one = Criterion::oom_kills(p).at_least(1).within(std::time::Duration::from_secs(2));
/// let none = Criterion::oom_kills(p).none();
/// # }
/// ```
pub struct OomKills {
    target: Target,
    at_least: u64,
    at_most: Option<u64>,
    within: Duration,
    baseline: Mutex<Option<u64>>,
}

impl OomKills {
    /// At least `n` kills (waiting up to [`OomKills::within`] for them).
    ///
    /// ```no_run
    /// # fn f(p: &chaos_harness::fixture::Process) {
    /// let c = chaos_harness::criteria::Criterion::oom_kills(p).at_least(2);
    /// # }
    /// ```
    pub fn at_least(mut self, n: u64) -> Self {
        self.at_least = n;
        self
    }

    /// At most `n` kills.
    ///
    /// ```no_run
    /// # fn f(p: &chaos_harness::fixture::Process) {
    /// let c = chaos_harness::criteria::Criterion::oom_kills(p).at_most(1);
    /// # }
    /// ```
    pub fn at_most(mut self, n: u64) -> Self {
        self.at_most = Some(n);
        self
    }

    /// No kill at all.
    ///
    /// ```no_run
    /// # fn f(p: &chaos_harness::fixture::Process) {
    /// let c = chaos_harness::criteria::Criterion::oom_kills(p).none();
    /// # }
    /// ```
    pub fn none(self) -> Self {
        self.at_most(0)
    }

    /// How long to wait for `at_least` to be reached (default 0: judged at once).
    ///
    /// ```no_run
    /// # fn f(p: &chaos_harness::fixture::Process) {
    /// let c = chaos_harness::criteria::Criterion::oom_kills(p).at_least(1).within(std::time::Duration::from_secs(1));
    /// # }
    /// ```
    pub fn within(mut self, d: Duration) -> Self {
        self.within = d;
        self
    }
}

impl Criterion {
    /// OOM kills in the fixture's memory cgroup since the scenario started (the count is
    /// read at the scenario's start and when judged); combine with
    /// [`OomKills::at_least`], [`OomKills::at_most`] or [`OomKills::none`].
    ///
    /// ```no_run
    /// # use chaos_harness::prelude::*;
    /// # use chaos_harness::fault::resource::MIB;
    /// # async fn f(cx: &mut Chaos, p: &chaos_harness::fixture::Process) -> ChaosResult {
    /// cx.scenario("oom")
    ///     .inject(Fault::memory_limit(p, 32 * MIB))
    ///     .expect(Criterion::oom_kills(p).at_least(1).within(Duration::from_secs(5)))
    ///     .run()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn oom_kills(fixture: &(impl FixtureHandle + ?Sized)) -> OomKills {
        OomKills {
            target: fixture.target(),
            at_least: 0,
            at_most: None,
            within: Duration::ZERO,
            baseline: Mutex::new(None),
        }
    }
}

impl Judge for OomKills {
    fn described(&self) -> Option<crate::params::Described> {
        let mut p = crate::params::Params::new().with("target", self.target.name()).with("at_least", self.at_least);
        if let Some(m) = self.at_most {
            p = p.with("at_most", m);
        }
        Some(crate::params::Described::new("oom_kills", p.with_duration("within", self.within)))
    }

    fn describe(&self) -> String {
        let range = match self.at_most {
            Some(m) if m == self.at_least => format!("exactly {m}"),
            Some(m) if self.at_least == 0 => format!("at most {m}"),
            Some(m) => format!("{}..={m}", self.at_least),
            None => format!("at least {}", self.at_least),
        };
        format!("{range} OOM kill(s) in the memory cgroup of {}", self.target.name())
    }

    fn prepare(&self, _cx: &JudgeContext) {
        if let Ok(mem) = MemoryCgroup::of_target(&self.target) {
            *self.baseline.lock().unwrap_or_else(|e| e.into_inner()) = mem.oom_kills().ok();
        }
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let criterion = self.describe();
            let verdict = |passed, detail| Verdict { criterion: criterion.clone(), passed, detail };
            let mem = match MemoryCgroup::of_target(&self.target) {
                Ok(m) => m,
                Err(e) => return verdict(false, e.to_string()),
            };
            let Some(base) = *self.baseline.lock().unwrap_or_else(|e| e.into_inner()) else {
                return verdict(
                    false,
                    format!(
                        "the OOM-kill counter of {} was not readable when the scenario started",
                        mem.dir().display()
                    ),
                );
            };
            let deadline = cx.deadline(self.within);
            loop {
                let now = match mem.oom_kills() {
                    Ok(n) => n,
                    Err(e) => return verdict(false, e.to_string()),
                };
                let n = now.saturating_sub(base);
                let ok = n >= self.at_least && self.at_most.is_none_or(|m| n <= m);
                if ok || Instant::now() >= deadline || self.at_most.is_some_and(|m| n > m) {
                    return verdict(
                        ok,
                        format!(
                            "{n} OOM kill(s) since the scenario started ({now} in total) in {}",
                            mem.dir().display()
                        ),
                    );
                }
                tokio::time::sleep(OOM_POLL).await;
            }
        })
    }
}
