//! Resource criteria: OOM kills observed in a fixture's memory cgroup
//! (`Criterion::oom_kills(&p).at_least(1)`), and the resource monitor's series of a selection:
//! `Criterion::rss().of(sel).at_most(bytes)`, `Criterion::fds().of(sel).no_growth_after(d)`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Criterion, Judge, JudgeContext, Verdict};
use crate::BoxFuture;
use crate::fault::resource::MemoryCgroup;
use crate::fixture::{FixtureHandle, Selection, Target};
use crate::observe::MonitorSeries;

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

/// How long a monitor criterion waits for its selection's first sample.
const FIRST_SAMPLE: Duration = Duration::from_secs(2);

/// The monitored series of `sel`, waiting up to `until` for it to hold at least one sample at or
/// after `from` (scenario time).
async fn series_until(
    cx: &JudgeContext,
    sel: &Selection,
    from: Duration,
    until: Instant,
) -> Result<MonitorSeries, String> {
    loop {
        let series = cx.monitor.series_of(&sel.expr());
        let ready = series.as_ref().is_some_and(|s| s.samples.iter().any(|x| x.at >= from));
        if ready || Instant::now() >= until {
            return match series {
                Some(s) if !s.samples.is_empty() => Ok(s),
                Some(_) => Err(format!("no resource sample of {} was taken", sel.expr())),
                None => Err(format!(
                    "{} is not monitored (monitor criteria are judged inside a scenario, which samples their selections)",
                    sel.expr()
                )),
            };
        }
        tokio::time::sleep(crate::observe::monitor::INTERVAL / 2).await;
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Criterion: the resident memory of a selection (summed over its processes) stays at most a
/// limit at every sample of the scenario so far (see [`Criterion::rss`]).
///
/// ```no_run
/// # use chaos_harness::criteria::Criterion;
/// # use chaos_harness::fixture::FixtureHandle;
/// # fn f(p: &chaos_harness::fixture::Process) {
/// let c = Criterion::rss().of(p.main()).at_most(64 << 20);
/// # }
/// ```
pub struct Rss {
    sel: Option<Selection>,
    at_most: u64,
}

impl Rss {
    /// The processes whose RSS is summed.
    ///
    /// ```no_run
    /// # use chaos_harness::fixture::FixtureHandle;
    /// # fn f(p: &chaos_harness::fixture::Process) {
    /// let c = chaos_harness::criteria::Criterion::rss().of(p.children());
    /// # }
    /// ```
    pub fn of(mut self, sel: Selection) -> Self {
        self.sel = Some(sel);
        self
    }

    /// The largest RSS allowed, bytes.
    ///
    /// ```no_run
    /// # use chaos_harness::fixture::FixtureHandle;
    /// # fn f(p: &chaos_harness::fixture::Process) {
    /// let c = chaos_harness::criteria::Criterion::rss().of(p.main()).at_most(100 << 20);
    /// # }
    /// ```
    pub fn at_most(mut self, bytes: u64) -> Self {
        self.at_most = bytes;
        self
    }
}

/// Criterion: the open fds of a selection (summed over its processes) do not grow after a
/// warm-up (see [`Criterion::fds`]).
///
/// ```no_run
/// # use chaos_harness::criteria::Criterion;
/// # use chaos_harness::fixture::FixtureHandle;
/// # fn f(p: &chaos_harness::fixture::Process) {
/// let c = Criterion::fds().of(p.main()).no_growth_after(std::time::Duration::from_secs(1));
/// # }
/// ```
pub struct Fds {
    sel: Option<Selection>,
    after: Duration,
    tolerance: u64,
}

impl Fds {
    /// The processes whose fds are summed.
    ///
    /// ```no_run
    /// # use chaos_harness::fixture::FixtureHandle;
    /// # fn f(p: &chaos_harness::fixture::Process) {
    /// let c = chaos_harness::criteria::Criterion::fds().of(p.all());
    /// # }
    /// ```
    pub fn of(mut self, sel: Selection) -> Self {
        self.sel = Some(sel);
        self
    }

    /// From `d` after the scenario's start on, no sample may hold more fds than the first
    /// sample at or after `d` (plus [`Fds::tolerance`]).
    ///
    /// ```no_run
    /// # use chaos_harness::fixture::FixtureHandle;
    /// # fn f(p: &chaos_harness::fixture::Process) {
    /// let c = chaos_harness::criteria::Criterion::fds().of(p.main()).no_growth_after(std::time::Duration::from_millis(500));
    /// # }
    /// ```
    pub fn no_growth_after(mut self, d: Duration) -> Self {
        self.after = d;
        self
    }

    /// How many fds more than the reference are still no growth (default 0).
    ///
    /// ```no_run
    /// # use chaos_harness::fixture::FixtureHandle;
    /// # fn f(p: &chaos_harness::fixture::Process) {
    /// let c = chaos_harness::criteria::Criterion::fds().of(p.main()).tolerance(2);
    /// # }
    /// ```
    pub fn tolerance(mut self, n: u64) -> Self {
        self.tolerance = n;
        self
    }
}

impl Criterion {
    /// The resident memory of a selection, from the scenario's resource monitor: combine with
    /// [`Rss::of`] and [`Rss::at_most`]. It holds when no sample so far exceeds the limit.
    ///
    /// ```no_run
    /// # use chaos_harness::prelude::*;
    /// # use chaos_harness::fixture::FixtureHandle;
    /// # async fn f(cx: &mut Chaos, p: &chaos_harness::fixture::Process) -> ChaosResult {
    /// cx.scenario("no leak")
    ///     .wait(Duration::from_secs(2))
    ///     .expect(Criterion::rss().of(p.main()).at_most(64 << 20))
    ///     .run()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn rss() -> Rss {
        Rss { sel: None, at_most: u64::MAX }
    }

    /// The open fds of a selection, from the scenario's resource monitor: combine with
    /// [`Fds::of`] and [`Fds::no_growth_after`].
    ///
    /// ```no_run
    /// # use chaos_harness::prelude::*;
    /// # use chaos_harness::fixture::FixtureHandle;
    /// # async fn f(cx: &mut Chaos, p: &chaos_harness::fixture::Process) -> ChaosResult {
    /// cx.scenario("no fd leak")
    ///     .wait(Duration::from_secs(2))
    ///     .expect(Criterion::fds().of(p.main()).no_growth_after(Duration::from_millis(500)))
    ///     .run()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn fds() -> Fds {
        Fds { sel: None, after: Duration::ZERO, tolerance: 0 }
    }
}

impl Judge for Rss {
    fn described(&self) -> Option<crate::params::Described> {
        let sel = self.sel.as_ref()?;
        let p = crate::params::Params::new().with("target", sel.expr()).with("at_most", self.at_most);
        Some(crate::params::Described::new("rss", p))
    }

    fn describe(&self) -> String {
        let of = self.sel.as_ref().map_or_else(|| "?".to_string(), Selection::expr);
        format!("RSS of {of} at most {}", mib(self.at_most))
    }

    fn monitors(&self) -> Vec<Selection> {
        self.sel.iter().cloned().collect()
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let criterion = self.describe();
            let Some(sel) = &self.sel else { return super::no_target(criterion) };
            let verdict = |passed, detail| Verdict { criterion: criterion.clone(), passed, detail };
            let series = match series_until(cx, sel, Duration::ZERO, Instant::now() + FIRST_SAMPLE).await {
                Ok(s) => s,
                Err(e) => return verdict(false, e),
            };
            let Some(peak) = series.peak(|s| s.rss_bytes) else {
                return verdict(false, format!("no resource sample of {}", sel.expr()));
            };
            let n = series.samples.len() as u64 + series.older.iter().map(|b| b.count).sum::<u64>();
            let last = series.last().map_or(0, |s| s.rss_bytes);
            let passed = peak.rss_bytes <= self.at_most;
            verdict(
                passed,
                format!(
                    "peak {} at +{} ms ({} processes), last {}, over {n} samples; limit {}",
                    mib(peak.rss_bytes),
                    peak.at.as_millis(),
                    peak.processes,
                    mib(last),
                    mib(self.at_most)
                ),
            )
        })
    }
}

impl Judge for Fds {
    fn described(&self) -> Option<crate::params::Described> {
        let sel = self.sel.as_ref()?;
        let p = crate::params::Params::new().with("target", sel.expr()).with("tolerance", self.tolerance);
        Some(crate::params::Described::new("fds", p.with_duration("no_growth_after", self.after)))
    }

    fn describe(&self) -> String {
        let of = self.sel.as_ref().map_or_else(|| "?".to_string(), Selection::expr);
        let tol = if self.tolerance > 0 { format!(" (tolerance {})", self.tolerance) } else { String::new() };
        format!("open fds of {of} do not grow after +{}{tol}", super::ms(self.after))
    }

    fn monitors(&self) -> Vec<Selection> {
        self.sel.iter().cloned().collect()
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let criterion = self.describe();
            let Some(sel) = &self.sel else { return super::no_target(criterion) };
            let verdict = |passed, detail| Verdict { criterion: criterion.clone(), passed, detail };
            // Wait for a reference sample and a few after it, if the scenario is that young.
            let reference_by = cx.scenario_start + self.after + FIRST_SAMPLE;
            let later = self.after + 3 * crate::observe::monitor::INTERVAL;
            let series = match series_until(cx, sel, later, reference_by).await {
                Ok(s) => s,
                Err(e) => return verdict(false, e),
            };
            // Older samples summarized into buckets (a soak) count by their bucket's mean (the
            // reference) and maximum (the peak).
            let reference = series
                .older
                .iter()
                .find(|b| b.from >= self.after)
                .map(|b| &b.mean)
                .or_else(|| series.samples.iter().find(|s| s.at >= self.after));
            let after = series
                .older
                .iter()
                .filter(|b| b.from >= self.after)
                .map(|b| &b.max)
                .chain(series.samples.iter().filter(|s| s.at >= self.after));
            let Some(reference) = reference else {
                return verdict(
                    false,
                    format!(
                        "no sample of {} at or after +{} (the last is at +{} ms)",
                        sel.expr(),
                        super::ms(self.after),
                        series.last().map_or(0, |s| s.at.as_millis())
                    ),
                );
            };
            let peak = after.max_by_key(|s| s.fds).unwrap_or(reference);
            let grew = peak.fds.saturating_sub(reference.fds);
            let passed = grew <= self.tolerance;
            let last = series.last().unwrap_or(reference);
            verdict(
                passed,
                format!(
                    "{} fds at +{} ms, peak {} at +{} ms, last {} at +{} ms: grew by {grew} (tolerance {})",
                    reference.fds,
                    reference.at.as_millis(),
                    peak.fds,
                    peak.at.as_millis(),
                    last.fds,
                    last.at.as_millis(),
                    self.tolerance
                ),
            )
        })
    }
}
