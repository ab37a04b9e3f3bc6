//! Load criteria over the scenario's measurements, each optionally limited to a phase:
//! `no_lost_requests`, `error_rate` (all failures or one kind), `latency` (a percentile,
//! absolute or relative to the baseline), `throughput` (absolute or a fraction of the
//! baseline), `recovers_within`, `always` / `eventually` over sliding windows, and
//! `load_check` for a custom closure.
//!
//! Phases: baseline (before the first injection), fault (until the first clear), recovery
//! (after it). A request is counted in the phase where it *ended* (see
//! [`crate::load::LoadReport::phase_stats`]), so a fault's errors land in the fault phase.
//! What counts as lost: [`Outcome::Lost`](crate::load::Outcome::Lost) and
//! [`Outcome::Timeout`](crate::load::Outcome::Timeout) only (sent, no answer); refused
//! requests, error replies and skipped ticks are reported apart and never count as lost.
//!
//! ```
//! use chaos_harness::criteria::Criterion;
//! use chaos_harness::observe::Phase;
//! use std::time::Duration;
//! let c = Criterion::error_rate().at_most(0.01);
//! assert!(Criterion::from(c).describe().contains("error rate"));
//! let c = Criterion::latency().p99().during(Phase::Fault).at_most_times_baseline(3.0);
//! assert_eq!(Criterion::from(c).describe(), "p99 latency during fault at most 3x the baseline's");
//! let c = Criterion::throughput().during(Phase::Recovery).at_least_fraction_of_baseline(0.9);
//! assert!(Criterion::from(c).describe().contains("90%"));
//! let c = Criterion::error_rate().of_kind("pool_saturated").during(Phase::Fault).at_most(0.0);
//! assert!(Criterion::from(c).describe().contains("pool_saturated"));
//! let _ = Criterion::recovers_within(Duration::from_secs(5));
//! let _ = Criterion::windows(Duration::from_millis(500)).during(Phase::Fault).always("no refusals", |s| s.refused == 0);
//! ```

use std::time::Duration;

use super::{Criterion, Judge, JudgeContext, Verdict};
use crate::BoxFuture;
use crate::load::{LoadReport, LoadStats, PhaseSpan};

pub use crate::observe::Phase;

/// The phase windows of the load (relative to the load's start, by name) from the scenario's
/// `PhaseEntered` events; the last one ends at `end` (scenario time).
///
/// ```
/// use chaos_harness::observe::{Event, EventKind, Phase};
/// use std::time::Duration;
/// let ev = |ms, kind| Event { at: Duration::from_millis(ms), kind };
/// let events = vec![
///     ev(0, EventKind::PhaseEntered { phase: Phase::Baseline }),
///     ev(10, EventKind::LoadStarted { load: "constant_rate".into() }),
///     ev(1010, EventKind::PhaseEntered { phase: Phase::Fault }),
/// ];
/// let spans = chaos_harness::criteria::load::load_spans(&events, Duration::from_millis(2010));
/// assert_eq!(spans[1].phase, "fault");
/// assert_eq!((spans[1].from, spans[1].to), (Duration::from_secs(1), Duration::from_secs(2)));
/// ```
pub fn load_spans(events: &[crate::observe::Event], end: Duration) -> Vec<PhaseSpan> {
    use crate::observe::EventKind;
    let shift =
        events.iter().find(|e| matches!(e.kind, EventKind::LoadStarted { .. })).map(|e| e.at).unwrap_or_default();
    let entered: Vec<(Duration, &Phase)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::PhaseEntered { phase } => Some((e.at, phase)),
            _ => None,
        })
        .collect();
    let l = |d: Duration| d.saturating_sub(shift);
    entered
        .iter()
        .enumerate()
        .map(|(i, (from, phase))| {
            let to = entered.get(i + 1).map_or(end, |(t, _)| *t);
            PhaseSpan::new(phase.to_string(), l(*from), l(to.max(*from)))
        })
        .collect()
}

/// The spans of the scenario so far (the last phase runs to now).
fn spans(cx: &JudgeContext) -> Vec<PhaseSpan> {
    load_spans(&cx.events, cx.scenario_start.elapsed())
}

fn during(phase: &Option<Phase>) -> String {
    phase.as_ref().map(|p| format!(" during {p}")).unwrap_or_default()
}

fn no_load(name: String) -> Verdict {
    Verdict { criterion: name, passed: false, detail: "the scenario runs no load (add .load(..))".into() }
}

/// The window of `phase` (`None`: the whole run).
fn span_of(cx: &JudgeContext, report: &LoadReport, phase: &Option<Phase>) -> Result<PhaseSpan, String> {
    let whole = || PhaseSpan::new("whole run", Duration::ZERO, report.end() + Duration::from_millis(1));
    let Some(p) = phase else { return Ok(whole()) };
    let spans = spans(cx);
    // A phase entered more than once (a custom phase) counts from its first entry to its last end.
    let mine: Vec<&PhaseSpan> = spans.iter().filter(|s| s.phase == p.as_str()).collect();
    if let (Some(a), Some(b)) = (mine.first(), mine.last()) {
        return Ok(PhaseSpan::new(p.as_str(), a.from, b.to));
    }
    Err({
        let known: Vec<&str> = spans.iter().map(|s| s.phase.as_str()).collect();
        format!(
            "no phase {p:?} in this scenario (phases so far: {known:?}); evaluate the criterion after the phase began"
        )
    })
}

fn stats_of(cx: &JudgeContext, report: &LoadReport, phase: &Option<Phase>) -> Result<(PhaseSpan, LoadStats), String> {
    let span = span_of(cx, report, phase)?;
    let stats = if phase.is_none() { report.stats() } else { report.stats_ended_between(span.from, span.to) };
    Ok((span, stats))
}

/// One line of counts: `N requests: a ok, b errors {kinds}, c refused, d timeouts, e lost, f skipped`.
pub(crate) fn summary(s: &LoadStats) -> String {
    let kinds = if s.error_kinds.is_empty() { String::new() } else { format!(" {:?}", s.error_kinds) };
    format!(
        "{} requests: {} ok, {} errors{kinds}, {} refused, {} timeouts, {} lost, {} skipped",
        s.total, s.ok, s.errors, s.refused, s.timeouts, s.lost, s.skipped
    )
}

impl Criterion {
    /// Every request sent got an answer (success or an error reply): none ended as
    /// [`Outcome::Lost`](crate::load::Outcome::Lost) (cut without an answer) or
    /// [`Outcome::Timeout`](crate::load::Outcome::Timeout). Refused requests, error replies and
    /// skipped ticks are listed in the detail but are not lost.
    pub fn no_lost_requests() -> NoLostRequests {
        NoLostRequests { phase: None, allowed: 0 }
    }

    /// The fraction of issued requests that failed (error replies of any kind, refused,
    /// timeouts, lost) is at most the given fraction; with `.of_kind(k)`, only error replies
    /// of that kind count.
    pub fn error_rate() -> ErrorRate {
        ErrorRate { max: 0.0, kind: None, phase: None }
    }

    /// A latency percentile of successful requests (from the intended send time).
    pub fn latency() -> Latency {
        Latency { q: 0.99, phase: None, bound: LatencyBound::AtMost(Duration::MAX) }
    }

    /// Successful requests per second.
    pub fn throughput() -> Throughput {
        Throughput { phase: None, bound: ThroughputBound::AtLeast(0.0) }
    }

    /// After the first injection, within `d` starts a window (default 500 ms, by end time)
    /// whose error rate is at most the baseline's plus 1 point and whose p99 is at most 3x the
    /// baseline's. Evaluate it once the load ran long enough (after a wait or `stop_load`).
    pub fn recovers_within(d: Duration) -> RecoversWithin {
        RecoversWithin { within: d, window: Duration::from_millis(500), error_margin: 0.01, p99_factor: 3.0 }
    }

    /// Sliding windows of the load (by end time), for `always` / `eventually`.
    pub fn windows(size: Duration) -> Windows {
        Windows { size: size.max(Duration::from_millis(1)), phase: None }
    }

    /// A custom check over the load report and the phase windows: `Ok(detail)` passes,
    /// `Err(detail)` fails.
    ///
    /// ```
    /// use chaos_harness::criteria::Criterion;
    /// let c = Criterion::load_check("every request served by a worker", |report, _phases| {
    ///     match report.records().iter().find(|r| r.outcome.is_ok() && r.worker.is_none()) {
    ///         Some(r) => Err(format!("#{} has no worker", r.seq)),
    ///         None => Ok("all named".into()),
    ///     }
    /// });
    /// # let _ = c;
    /// ```
    pub fn load_check<F>(describe: impl Into<String>, f: F) -> LoadCheck
    where
        F: Fn(&LoadReport, &[PhaseSpan]) -> Result<String, String> + Send + Sync + 'static,
    {
        LoadCheck { describe: describe.into(), f: Box::new(f) }
    }
}

/// See [`Criterion::no_lost_requests`].
pub struct NoLostRequests {
    phase: Option<Phase>,
    allowed: u64,
}

impl NoLostRequests {
    /// Only requests that ended in this phase.
    pub fn during(mut self, p: Phase) -> Self {
        self.phase = Some(p);
        self
    }

    /// Tolerates up to `n` lost requests (e.g. the requests in flight on a process that was
    /// SIGKILLed, at most the load's concurrency).
    pub fn allowing(mut self, n: u64) -> Self {
        self.allowed = n;
        self
    }
}

impl Judge for NoLostRequests {
    fn described(&self) -> Option<crate::params::Described> {
        Some(crate::params::Described::new("no_lost_requests", crate::params::Params::new()))
    }

    fn describe(&self) -> String {
        match self.allowed {
            0 => format!("no lost requests{}", during(&self.phase)),
            n => format!("at most {n} lost requests{}", during(&self.phase)),
        }
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let Some(report) = &cx.load else { return no_load(name) };
            let (span, s) = match stats_of(cx, report, &self.phase) {
                Ok(x) => x,
                Err(e) => return Verdict { criterion: name, passed: false, detail: e },
            };
            let lost: Vec<String> = report
                .records()
                .iter()
                .filter(|r| {
                    r.outcome.is_lost() && (self.phase.is_none() || (r.ended >= span.from && r.ended < span.to))
                })
                .take(5)
                .map(|r| format!("#{} sent +{}ms: {:?}", r.seq, r.sent.as_millis(), r.outcome))
                .collect();
            let summary = summary(&s);
            if s.issued() == 0 && self.phase.is_none() {
                return Verdict {
                    criterion: name,
                    passed: false,
                    detail: format!("{summary}: the load issued nothing"),
                };
            }
            Verdict {
                criterion: name,
                passed: s.unanswered() <= self.allowed,
                detail: if lost.is_empty() { summary } else { format!("{summary}; first lost: {}", lost.join("; ")) },
            }
        })
    }
}

/// See [`Criterion::error_rate`].
pub struct ErrorRate {
    max: f64,
    kind: Option<String>,
    phase: Option<Phase>,
}

impl ErrorRate {
    /// The largest allowed fraction (0.0 to 1.0).
    pub fn at_most(mut self, max: f64) -> Self {
        self.max = max;
        self
    }

    /// Only error replies of this kind (`category/reason`, or a category or reason alone).
    pub fn of_kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Only requests that ended in this phase.
    pub fn during(mut self, p: Phase) -> Self {
        self.phase = Some(p);
        self
    }
}

impl Judge for ErrorRate {
    fn described(&self) -> Option<crate::params::Described> {
        Some(crate::params::Described::new("error_rate", crate::params::Params::new().with("at_most", self.max)))
    }

    fn describe(&self) -> String {
        let kind = self.kind.as_ref().map(|k| format!(" of {k}")).unwrap_or_default();
        format!("error rate{kind}{} at most {:.1}%", during(&self.phase), self.max * 100.0)
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let Some(report) = &cx.load else { return no_load(name) };
            let s = match stats_of(cx, report, &self.phase) {
                Ok((_, s)) => s,
                Err(e) => return Verdict { criterion: name, passed: false, detail: e },
            };
            let rate = match &self.kind {
                Some(k) => s.error_rate_of(k),
                None => s.error_rate,
            };
            Verdict {
                criterion: name,
                passed: s.issued() > 0 && rate <= self.max,
                detail: format!("{:.2}% of {} issued; {}", rate * 100.0, s.issued(), summary(&s)),
            }
        })
    }
}

enum LatencyBound {
    AtMost(Duration),
    TimesBaseline(f64),
}

/// See [`Criterion::latency`].
pub struct Latency {
    q: f64,
    phase: Option<Phase>,
    bound: LatencyBound,
}

impl Latency {
    /// The median.
    pub fn p50(mut self) -> Self {
        self.q = 0.5;
        self
    }
    /// The 90th percentile.
    pub fn p90(mut self) -> Self {
        self.q = 0.9;
        self
    }
    /// The 99th percentile (the default).
    pub fn p99(mut self) -> Self {
        self.q = 0.99;
        self
    }
    /// The 99.9th percentile.
    pub fn p999(mut self) -> Self {
        self.q = 0.999;
        self
    }
    /// The maximum.
    pub fn max(mut self) -> Self {
        self.q = 1.0;
        self
    }
    /// Only requests that ended in this phase.
    pub fn during(mut self, p: Phase) -> Self {
        self.phase = Some(p);
        self
    }
    /// At most `d`.
    pub fn at_most(mut self, d: Duration) -> Self {
        self.bound = LatencyBound::AtMost(d);
        self
    }
    /// At most `factor` times the same percentile in the baseline phase.
    pub fn at_most_times_baseline(mut self, factor: f64) -> Self {
        self.bound = LatencyBound::TimesBaseline(factor);
        self
    }

    fn label(&self) -> &'static str {
        match self.q {
            q if q >= 1.0 => "max",
            q if q >= 0.999 => "p99.9",
            q if q >= 0.99 => "p99",
            q if q >= 0.9 => "p90",
            _ => "p50",
        }
    }
}

fn fmt_d(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.1} ms", d.as_secs_f64() * 1000.0)).unwrap_or_else(|| "none (no success)".into())
}

impl Judge for Latency {
    fn describe(&self) -> String {
        let bound = match self.bound {
            LatencyBound::AtMost(d) => format!("at most {d:?}"),
            LatencyBound::TimesBaseline(f) => format!("at most {f}x the baseline's"),
        };
        format!("{} latency{} {bound}", self.label(), during(&self.phase))
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let Some(report) = &cx.load else { return no_load(name) };
            let s = match stats_of(cx, report, &self.phase) {
                Ok((_, s)) => s,
                Err(e) => return Verdict { criterion: name, passed: false, detail: e },
            };
            let v = s.quantile(self.q);
            let (limit, base) = match self.bound {
                LatencyBound::AtMost(d) => (Some(d), String::new()),
                LatencyBound::TimesBaseline(f) => match stats_of(cx, report, &Some(Phase::Baseline)) {
                    Ok((_, b)) => {
                        let bq = b.quantile(self.q);
                        (bq.map(|d| d.mul_f64(f)), format!(" (baseline {} {})", self.label(), fmt_d(bq)))
                    }
                    Err(e) => return Verdict { criterion: name, passed: false, detail: e },
                },
            };
            let Some(limit) = limit else {
                return Verdict {
                    criterion: name,
                    passed: false,
                    detail: format!("the baseline has no successful request to compare with; {}", summary(&s)),
                };
            };
            Verdict {
                criterion: name,
                passed: v.is_some_and(|v| v <= limit),
                detail: format!("{} {}{base}, limit {}; {}", self.label(), fmt_d(v), fmt_d(Some(limit)), summary(&s)),
            }
        })
    }
}

enum ThroughputBound {
    AtLeast(f64),
    FractionOfBaseline(f64),
}

/// See [`Criterion::throughput`].
pub struct Throughput {
    phase: Option<Phase>,
    bound: ThroughputBound,
}

impl Throughput {
    /// Only this phase.
    pub fn during(mut self, p: Phase) -> Self {
        self.phase = Some(p);
        self
    }
    /// At least `per_second` successes per second.
    pub fn at_least(mut self, per_second: f64) -> Self {
        self.bound = ThroughputBound::AtLeast(per_second);
        self
    }
    /// At least this fraction of the baseline's successes per second.
    pub fn at_least_fraction_of_baseline(mut self, f: f64) -> Self {
        self.bound = ThroughputBound::FractionOfBaseline(f);
        self
    }
}

fn per_second(report: &LoadReport, span: &PhaseSpan) -> f64 {
    report.phase_stats(std::slice::from_ref(span)).first().map(|p| p.throughput).unwrap_or(0.0)
}

impl Judge for Throughput {
    fn describe(&self) -> String {
        let bound = match self.bound {
            ThroughputBound::AtLeast(r) => format!("at least {r}/s"),
            ThroughputBound::FractionOfBaseline(f) => format!("at least {:.0}% of the baseline's", f * 100.0),
        };
        format!("throughput{} {bound}", during(&self.phase))
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let Some(report) = &cx.load else { return no_load(name) };
            let span = match span_of(cx, report, &self.phase) {
                Ok(s) => s,
                Err(e) => return Verdict { criterion: name, passed: false, detail: e },
            };
            let rate = per_second(report, &span);
            let (limit, base) = match self.bound {
                ThroughputBound::AtLeast(r) => (r, String::new()),
                ThroughputBound::FractionOfBaseline(f) => match span_of(cx, report, &Some(Phase::Baseline)) {
                    Ok(b) => {
                        let br = per_second(report, &b);
                        (br * f, format!(" (baseline {br:.1}/s)"))
                    }
                    Err(e) => return Verdict { criterion: name, passed: false, detail: e },
                },
            };
            Verdict {
                criterion: name,
                passed: rate >= limit && !span.is_empty(),
                detail: format!("{rate:.1}/s over {:?}{base}, limit {limit:.1}/s", span.len()),
            }
        })
    }
}

/// See [`Criterion::recovers_within`].
pub struct RecoversWithin {
    within: Duration,
    window: Duration,
    error_margin: f64,
    p99_factor: f64,
}

impl RecoversWithin {
    /// The window size (default 500 ms).
    pub fn window(mut self, d: Duration) -> Self {
        self.window = d.max(Duration::from_millis(1));
        self
    }
    /// Tolerance: error rate at most the baseline's plus `margin` (default 0.01) and p99 at
    /// most `p99_factor` times the baseline's (default 3).
    pub fn tolerance(mut self, margin: f64, p99_factor: f64) -> Self {
        self.error_margin = margin;
        self.p99_factor = p99_factor;
        self
    }
}

impl Judge for RecoversWithin {
    fn describe(&self) -> String {
        format!(
            "recovers within {:?} (a {:?} window with error rate <= baseline + {:.0}% and p99 <= {}x baseline)",
            self.within,
            self.window,
            self.error_margin * 100.0,
            self.p99_factor
        )
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let Some(report) = &cx.load else { return no_load(name) };
            let (base, fault) =
                match (stats_of(cx, report, &Some(Phase::Baseline)), span_of(cx, report, &Some(Phase::Fault))) {
                    (Ok((_, b)), Ok(f)) => (b, f),
                    (Err(e), _) | (_, Err(e)) => return Verdict { criterion: name, passed: false, detail: e },
                };
            let Some(base_p99) = base.p99 else {
                return Verdict {
                    criterion: name,
                    passed: false,
                    detail: format!("the baseline has no successful request; {}", summary(&base)),
                };
            };
            let (max_err, max_p99) = (base.error_rate + self.error_margin, base_p99.mul_f64(self.p99_factor));
            let end = report.end();
            let step = (self.window / 5).max(Duration::from_millis(1));
            let mut t = fault.from;
            let mut last = String::from("no window after the fault");
            while t + self.window <= end {
                let s = report.stats_ended_between(t, t + self.window);
                if s.ok > 0 && s.error_rate <= max_err && s.p99.is_some_and(|p| p <= max_p99) {
                    let took = t - fault.from;
                    return Verdict {
                        criterion: name,
                        passed: took <= self.within,
                        detail: format!(
                            "recovered {:.2} s after the fault (window +{} ms: error rate {:.1}%, p99 {}; baseline {:.1}%, p99 {})",
                            took.as_secs_f64(),
                            t.as_millis(),
                            s.error_rate * 100.0,
                            fmt_d(s.p99),
                            base.error_rate * 100.0,
                            fmt_d(Some(base_p99))
                        ),
                    };
                }
                last = format!("window +{} ms: {}, p99 {}", t.as_millis(), summary(&s), fmt_d(s.p99));
                t += step;
            }
            Verdict {
                criterion: name,
                passed: false,
                detail: format!(
                    "not recovered {:.2} s after the fault; last {last}",
                    end.saturating_sub(fault.from).as_secs_f64()
                ),
            }
        })
    }
}

type WindowPred = Box<dyn Fn(&LoadStats) -> bool + Send + Sync>;

/// See [`Criterion::windows`].
pub struct Windows {
    size: Duration,
    phase: Option<Phase>,
}

impl Windows {
    /// Only windows inside this phase.
    pub fn during(mut self, p: Phase) -> Self {
        self.phase = Some(p);
        self
    }
    /// Every window satisfies `pred`.
    pub fn always(
        self,
        describe: impl Into<String>,
        pred: impl Fn(&LoadStats) -> bool + Send + Sync + 'static,
    ) -> Over {
        Over { w: self, all: true, describe: describe.into(), pred: Box::new(pred) }
    }
    /// Some window satisfies `pred`.
    pub fn eventually(
        self,
        describe: impl Into<String>,
        pred: impl Fn(&LoadStats) -> bool + Send + Sync + 'static,
    ) -> Over {
        Over { w: self, all: false, describe: describe.into(), pred: Box::new(pred) }
    }
}

/// See [`Windows::always`] and [`Windows::eventually`].
pub struct Over {
    w: Windows,
    all: bool,
    describe: String,
    pred: WindowPred,
}

impl Judge for Over {
    fn describe(&self) -> String {
        format!(
            "{} over {:?} windows{}: {}",
            if self.all { "always" } else { "eventually" },
            self.w.size,
            during(&self.w.phase),
            self.describe
        )
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let Some(report) = &cx.load else { return no_load(name) };
            let span = match span_of(cx, report, &self.w.phase) {
                Ok(s) => s,
                Err(e) => return Verdict { criterion: name, passed: false, detail: e },
            };
            let mut t = span.from;
            let mut n = 0;
            while t < span.to {
                let to = (t + self.w.size).min(span.to);
                let s = report.stats_ended_between(t, to);
                n += 1;
                let holds = (self.pred)(&s);
                if holds != self.all {
                    return Verdict {
                        criterion: name,
                        passed: !self.all,
                        detail: format!(
                            "{} window +{}..+{} ms: {}",
                            if self.all { "fails in" } else { "holds in" },
                            t.as_millis(),
                            to.as_millis(),
                            summary(&s)
                        ),
                    };
                }
                t = to;
            }
            Verdict {
                criterion: name,
                passed: self.all && n > 0,
                detail: format!("{} of {n} windows", if self.all { "holds in all" } else { "holds in none" }),
            }
        })
    }
}

type CheckFn = Box<dyn Fn(&LoadReport, &[PhaseSpan]) -> Result<String, String> + Send + Sync>;

/// See [`Criterion::load_check`].
pub struct LoadCheck {
    describe: String,
    f: CheckFn,
}

impl Judge for LoadCheck {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.describe();
            let Some(report) = &cx.load else { return no_load(name) };
            let (passed, detail) = match (self.f)(report, &spans(cx)) {
                Ok(d) => (true, d),
                Err(d) => (false, d),
            };
            Verdict { criterion: name, passed, detail }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{Outcome, RequestRecord};
    use std::sync::Arc;
    use std::time::Instant;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// 10 ms requests every 10 ms; the fault (1000-2000 ms) refuses, then 100 ms requests
    /// until 2500 ms, then back to normal until 4000 ms. One request in flight at 1000 ms is lost.
    /// A judge context whose sandbox is torn down on drop.
    struct Cx(JudgeContext);

    impl std::ops::Deref for Cx {
        type Target = JudgeContext;
        fn deref(&self) -> &JudgeContext {
            &self.0
        }
    }

    impl Drop for Cx {
        fn drop(&mut self) {
            let _ = self.0.sandbox.teardown();
        }
    }

    fn cx() -> Cx {
        let mut recs = Vec::new();
        let mut t = 0;
        while t < 4000 {
            let (dur, outcome) = match t {
                990 => (20, Outcome::Lost("reset".into())),
                1000..2000 => (0, Outcome::Refused("connection refused".into())),
                2000..2500 => (100, Outcome::Ok),
                _ => (10, Outcome::Ok),
            };
            recs.push(RequestRecord {
                seq: recs.len() as u64,
                intended: ms(t),
                sent: ms(t),
                ended: ms(t + dur),
                outcome,
                worker: None,
            });
            t += 10;
        }
        let sandbox = Arc::new(
            crate::sandbox::Sandbox::with_options(
                "unit::criteria_load",
                crate::sandbox::SandboxOptions { cgroups: false },
            )
            .expect("sandbox"),
        );
        use crate::observe::{Event, EventKind};
        let mut cx = JudgeContext::new(sandbox, 7);
        cx.scenario_start = Instant::now().checked_sub(ms(4100)).unwrap_or_else(Instant::now);
        cx.load = Some(LoadReport::from_records(recs, Instant::now()));
        let ev = |t, kind| Event { at: ms(t), kind };
        cx.events = vec![
            ev(0, EventKind::PhaseEntered { phase: Phase::Baseline }),
            ev(0, EventKind::LoadStarted { load: "test".into() }),
            ev(1000, EventKind::PhaseEntered { phase: Phase::Fault }),
            ev(2000, EventKind::PhaseEntered { phase: Phase::Recovery }),
        ];
        Cx(cx)
    }

    async fn verdict(c: impl Into<Criterion>, cx: &JudgeContext) -> Verdict {
        c.into().judge(cx).await
    }

    #[tokio::test]
    async fn lost_counts_only_requests_cut_without_answer() {
        let cx = cx();
        let v = verdict(Criterion::no_lost_requests(), &cx).await;
        assert!(!v.passed && v.detail.contains("100 refused") && v.detail.contains("1 lost"), "{v}");
        assert!(verdict(Criterion::no_lost_requests().allowing(1), &cx).await.passed);
        // The lost request ended in the fault phase, not the baseline.
        assert!(verdict(Criterion::no_lost_requests().during(Phase::Baseline), &cx).await.passed);
        assert!(!verdict(Criterion::no_lost_requests().during(Phase::Fault), &cx).await.passed);
    }

    #[tokio::test]
    async fn error_rate_per_phase_and_kind() {
        let cx = cx();
        assert!(verdict(Criterion::error_rate().during(Phase::Baseline).at_most(0.0), &cx).await.passed);
        let v = verdict(Criterion::error_rate().during(Phase::Fault).at_most(0.5), &cx).await;
        assert!(!v.passed && v.detail.starts_with("100.00%"), "{v}");
        assert!(verdict(Criterion::error_rate().of_kind("pool_saturated").at_most(0.0), &cx).await.passed);
    }

    #[tokio::test]
    async fn latency_absolute_and_relative_to_baseline() {
        let cx = cx();
        assert!(verdict(Criterion::latency().p99().during(Phase::Baseline).at_most(ms(11)), &cx).await.passed);
        let v = verdict(Criterion::latency().p99().during(Phase::Recovery).at_most_times_baseline(3.0), &cx).await;
        assert!(!v.passed && v.detail.contains("baseline p99 10.0 ms"), "{v}");
        assert!(
            verdict(Criterion::latency().p50().during(Phase::Recovery).at_most_times_baseline(3.0), &cx).await.passed
        );
    }

    #[tokio::test]
    async fn throughput_fraction_of_baseline() {
        let cx = cx();
        assert!(
            verdict(Criterion::throughput().during(Phase::Recovery).at_least_fraction_of_baseline(0.9), &cx)
                .await
                .passed
        );
        let v = verdict(Criterion::throughput().during(Phase::Fault).at_least_fraction_of_baseline(0.9), &cx).await;
        assert!(!v.passed && v.detail.starts_with("0.0/s"), "{v}");
    }

    #[tokio::test]
    async fn recovery_time_is_measured_from_the_fault() {
        let cx = cx();
        let v = verdict(Criterion::recovers_within(Duration::from_secs(2)), &cx).await;
        // Refusals until 2000 ms, slow replies ending until 2590 ms (100 ms > 3x 10 ms): the
        // first good window starts at 2600 ms, 1.6 s after the fault.
        assert!(v.passed && v.detail.contains("recovered 1.60 s"), "{v}");
        assert!(!verdict(Criterion::recovers_within(Duration::from_secs(1)), &cx).await.passed);
    }

    #[tokio::test]
    async fn always_and_eventually_over_windows() {
        let cx = cx();
        let no_refusals = |s: &LoadStats| s.refused == 0;
        assert!(
            verdict(Criterion::windows(ms(200)).during(Phase::Baseline).always("no refusals", no_refusals), &cx)
                .await
                .passed
        );
        assert!(!verdict(Criterion::windows(ms(200)).always("no refusals", no_refusals), &cx).await.passed);
        assert!(
            verdict(Criterion::windows(ms(200)).during(Phase::Fault).eventually("a refusal", |s| s.refused > 0), &cx)
                .await
                .passed
        );
        let v = verdict(Criterion::windows(ms(200)).during(Phase::named("warmup")).always("x", no_refusals), &cx).await;
        assert!(!v.passed && v.detail.contains("no phase"), "{v}");
    }
}
