//! What a load run measured: one record per request (or per tick not issued), statistics with
//! HDR latency percentiles, and statistics per phase window.
//!
//! Phase rules: a request *belongs* to every phase its lifetime (intended send to end)
//! overlaps ([`LoadReport::overlapping`], [`PhaseStats::overlapping`]), and is *counted* in the
//! phase where it ended ([`LoadReport::phase_stats`]), so an error the fault caused lands in the
//! fault phase even when the request was issued during the baseline. A skipped tick ends at its
//! intended time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::Outcome;

/// One request, or one tick of an open loop that was not issued ([`Outcome::Skipped`]).
///
/// Times are relative to the load's start. For an open loop, `intended` is the tick of the
/// schedule and `latency()` counts from it (coordinated-omission correct: a request that waited
/// for the generator or for a free slot is as late as a user would see it). For a closed loop,
/// `intended == sent`.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRecord {
    /// Sequence number (0-based, in schedule order).
    pub seq: u64,
    /// When the schedule wanted it sent.
    pub intended: Duration,
    /// When it was actually sent (`== intended` for a skipped tick).
    pub sent: Duration,
    /// When it ended (reply, error, timeout; `== intended` for a skipped tick).
    pub ended: Duration,
    /// How it ended.
    pub outcome: Outcome,
    /// Which worker/route served it, when the target says.
    pub worker: Option<String>,
}

impl RequestRecord {
    /// From the intended send time to the end (what a user waiting on the schedule sees).
    ///
    /// ```
    /// use chaos_harness::load::{Outcome, RequestRecord};
    /// use std::time::Duration;
    /// let ms = Duration::from_millis;
    /// let r = RequestRecord { seq: 0, intended: ms(10), sent: ms(400), ended: ms(410), outcome: Outcome::Ok, worker: None };
    /// assert_eq!((r.latency(), r.service_time()), (ms(400), ms(10)));
    /// ```
    pub fn latency(&self) -> Duration {
        self.ended.saturating_sub(self.intended)
    }

    /// From the actual send to the end (what the target took; hides queueing in the generator).
    pub fn service_time(&self) -> Duration {
        self.ended.saturating_sub(self.sent)
    }

    /// Whether its lifetime `[intended, ended]` overlaps `[from, to)`.
    pub fn overlaps(&self, from: Duration, to: Duration) -> bool {
        self.intended < to && self.ended >= from
    }
}

/// Statistics over a set of requests.
///
/// `error_rate` counts every issued request that did not succeed (errors of any kind, refused,
/// timeouts, lost) over the issued ones; skipped ticks were never issued and are reported
/// apart. Latency percentiles are over successful requests, from the intended send time.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoadStats {
    /// Records counted (issued requests plus skipped ticks).
    pub total: u64,
    /// Successful replies.
    pub ok: u64,
    /// Error replies from the target (it answered; see `error_kinds`).
    pub errors: u64,
    /// Error replies by kind (`category/reason`).
    #[serde(default)]
    pub error_kinds: BTreeMap<String, u64>,
    /// Refused: nothing reached the server.
    #[serde(default)]
    pub refused: u64,
    /// No reply within the per-request timeout.
    #[serde(default)]
    pub timeouts: u64,
    /// Sent, then cut without a reply (indeterminate: the server may have run it).
    pub lost: u64,
    /// Open-loop ticks not issued.
    #[serde(default)]
    pub skipped: u64,
    /// Failed issued requests over issued requests (0 when none were issued).
    pub error_rate: f64,
    /// Median latency of successes.
    pub p50: Option<Duration>,
    /// 90th percentile.
    #[serde(default)]
    pub p90: Option<Duration>,
    /// 99th percentile.
    pub p99: Option<Duration>,
    /// 99.9th percentile.
    #[serde(default)]
    pub p999: Option<Duration>,
    /// Maximum latency of successes.
    pub max: Option<Duration>,
}

impl LoadStats {
    /// Requests actually sent or attempted (everything but skipped ticks).
    pub fn issued(&self) -> u64 {
        self.total - self.skipped
    }

    /// Requests sent that got no answer: lost plus timeouts (what `no_lost_requests` counts).
    pub fn unanswered(&self) -> u64 {
        self.lost + self.timeouts
    }

    /// Fraction of issued requests that ended as an error of this kind (`category/reason`,
    /// or just `reason` or `category`).
    pub fn error_rate_of(&self, kind: &str) -> f64 {
        let n: u64 = self
            .error_kinds
            .iter()
            .filter(|(k, _)| k.as_str() == kind || k.split('/').any(|part| part == kind))
            .map(|(_, n)| n)
            .sum();
        if self.issued() == 0 { 0.0 } else { n as f64 / self.issued() as f64 }
    }

    /// The latency quantile `q` (0.5, 0.9, 0.99, 0.999 or 1.0 for max).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        match q {
            q if q >= 1.0 => self.max,
            q if q >= 0.999 => self.p999,
            q if q >= 0.99 => self.p99,
            q if q >= 0.9 => self.p90,
            _ => self.p50,
        }
    }
}

impl std::fmt::Display for LoadStats {
    /// `120 requests: 118 ok, 1 errors, 0 refused, 0 timeouts, 1 lost, 0 skipped (error rate 1.7%), p50 1.2 ms, p99 8.0 ms`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Option<Duration>| d.map_or("-".to_string(), |d| format!("{:.1} ms", d.as_secs_f64() * 1e3));
        write!(
            f,
            "{} requests: {} ok, {} errors, {} refused, {} timeouts, {} lost, {} skipped (error rate {:.1}%), p50 {}, p99 {}",
            self.total,
            self.ok,
            self.errors,
            self.refused,
            self.timeouts,
            self.lost,
            self.skipped,
            self.error_rate * 100.0,
            ms(self.p50),
            ms(self.p99)
        )
    }
}

/// Accumulates [`LoadStats`].
pub(crate) struct StatsBuilder {
    s: LoadStats,
    hist: Option<Histogram<u64>>,
}

impl StatsBuilder {
    pub(crate) fn new() -> Self {
        Self { s: LoadStats::default(), hist: Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).ok() }
    }

    pub(crate) fn add(&mut self, r: &RequestRecord) {
        let s = &mut self.s;
        s.total += 1;
        match &r.outcome {
            Outcome::Ok => {
                s.ok += 1;
                if let Some(h) = self.hist.as_mut() {
                    let _ = h.record((r.latency().as_micros() as u64).clamp(1, 3_600_000_000));
                }
            }
            Outcome::Error { .. } => {
                s.errors += 1;
                *s.error_kinds.entry(r.outcome.error_kind().unwrap_or_default()).or_default() += 1;
            }
            Outcome::Refused(_) => s.refused += 1,
            Outcome::Timeout => s.timeouts += 1,
            Outcome::Lost(_) => s.lost += 1,
            Outcome::Skipped => s.skipped += 1,
        }
    }

    pub(crate) fn snapshot(&self) -> LoadStats {
        Self { s: self.s.clone(), hist: self.hist.clone() }.finish()
    }

    pub(crate) fn finish(self) -> LoadStats {
        let mut s = self.s;
        let issued = s.issued();
        s.error_rate = if issued == 0 { 0.0 } else { (issued - s.ok) as f64 / issued as f64 };
        if let Some(h) = self.hist.filter(|h| !h.is_empty()) {
            let q = |q: f64| Some(Duration::from_micros(h.value_at_quantile(q)));
            (s.p50, s.p90, s.p99, s.p999) = (q(0.5), q(0.9), q(0.99), q(0.999));
            s.max = Some(Duration::from_micros(h.max()));
        }
        s
    }
}

pub(crate) fn stats<'a>(records: impl Iterator<Item = &'a RequestRecord>) -> LoadStats {
    let mut b = StatsBuilder::new();
    records.for_each(|r| b.add(r));
    b.finish()
}

/// A phase window: `[from, to)` relative to the load's start, with the phase's name.
///
/// ```
/// use chaos_harness::load::PhaseSpan;
/// use std::time::Duration;
/// let p = PhaseSpan::new("fault", Duration::from_secs(1), Duration::from_secs(3));
/// assert_eq!(p.len(), Duration::from_secs(2));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PhaseSpan {
    /// `baseline`, `fault`, `recovery` or a custom name.
    pub phase: String,
    /// Start (inclusive).
    pub from: Duration,
    /// End (exclusive).
    pub to: Duration,
}

impl PhaseSpan {
    /// A window.
    pub fn new(phase: impl Into<String>, from: Duration, to: Duration) -> Self {
        Self { phase: phase.into(), from, to: to.max(from) }
    }

    /// Its length.
    pub fn len(&self) -> Duration {
        self.to - self.from
    }

    /// Whether it has zero length.
    pub fn is_empty(&self) -> bool {
        self.to == self.from
    }
}

/// Measurements of one phase.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PhaseStats {
    /// The window.
    pub span: PhaseSpan,
    /// Requests that *ended* in the window (skipped ticks by their intended time).
    pub stats: LoadStats,
    /// Requests whose lifetime overlaps the window (issued before and ended after count too).
    pub overlapping: u64,
    /// Successful requests ended in the window per second of it.
    pub throughput: f64,
}

/// Which requests a window of time selects, by their actual send and end times (for
/// [`LoadReport::ok_failed`]).
///
/// ```
/// use chaos_harness::load::{Outcome, RequestRecord, Window};
/// use std::time::Duration;
/// let ms = Duration::from_millis;
/// let r = RequestRecord { seq: 0, intended: ms(90), sent: ms(95), ended: ms(105), outcome: Outcome::Ok, worker: None };
/// assert!(Window::sent(ms(0), ms(100)).contains(&r));
/// assert!(!Window::within(ms(0), ms(100)).contains(&r));
/// assert!(Window::ended(ms(100), ms(200)).contains(&r));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// Sent in `[from, to)`.
    Sent(Duration, Duration),
    /// Ended in `[from, to)`.
    Ended(Duration, Duration),
    /// Sent at or after `from` and ended before `to`: the whole request inside the window.
    Within(Duration, Duration),
}

impl Window {
    /// Requests sent in `[from, to)`.
    pub fn sent(from: Duration, to: Duration) -> Self {
        Window::Sent(from, to)
    }

    /// Requests that ended in `[from, to)`.
    pub fn ended(from: Duration, to: Duration) -> Self {
        Window::Ended(from, to)
    }

    /// Requests sent at or after `from` that ended before `to`.
    pub fn within(from: Duration, to: Duration) -> Self {
        Window::Within(from, to)
    }

    /// Whether the window selects `r` (skipped ticks included; see [`LoadReport::ok_failed`]).
    pub fn contains(&self, r: &RequestRecord) -> bool {
        match *self {
            Window::Sent(from, to) => r.sent >= from && r.sent < to,
            Window::Ended(from, to) => r.ended >= from && r.ended < to,
            Window::Within(from, to) => r.sent >= from && r.ended < to,
        }
    }
}

/// Issued requests of a window that succeeded and that did not (any other outcome but
/// [`Outcome::Skipped`]: a tick never issued is neither).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OkFailed {
    /// Successful replies.
    pub ok: u64,
    /// Issued requests that did not succeed (error replies, refused, timeouts, lost).
    pub failed: u64,
}

/// Every request of a load run.
#[derive(Clone, Debug)]
pub struct LoadReport {
    pub(crate) records: Vec<RequestRecord>,
    pub(crate) totals: LoadStats,
    pub(crate) truncated: u64,
    pub(crate) started_at: Instant,
    pub(crate) in_flight: u64,
}

impl LoadReport {
    /// A report over these records (sorted by sequence number), as if the load started at
    /// `started_at`. Used by tests and by tools that replay saved records.
    ///
    /// ```
    /// use chaos_harness::load::{LoadReport, Outcome, RequestRecord};
    /// use std::time::{Duration, Instant};
    /// let r = RequestRecord { seq: 0, intended: Duration::ZERO, sent: Duration::ZERO, ended: Duration::from_millis(3), outcome: Outcome::Ok, worker: None };
    /// let report = LoadReport::from_records(vec![r], Instant::now());
    /// assert_eq!(report.stats().ok, 1);
    /// ```
    pub fn from_records(mut records: Vec<RequestRecord>, started_at: Instant) -> Self {
        records.sort_by_key(|r| r.seq);
        let totals = stats(records.iter());
        Self { records, totals, truncated: 0, started_at, in_flight: 0 }
    }

    /// All records kept, in schedule order (see [`LoadReport::truncated`]).
    pub fn records(&self) -> &[RequestRecord] {
        &self.records
    }

    /// When the load started (records' times are relative to it).
    pub fn started_at(&self) -> Instant {
        self.started_at
    }

    /// Records not kept because the load's `max_records` was reached; they are still in
    /// [`LoadReport::totals`], not in per-phase statistics.
    pub fn truncated(&self) -> u64 {
        self.truncated
    }

    /// Requests still in flight when this snapshot was taken (0 in a final report).
    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// Counts over every request, including truncated ones (latency percentiles over the
    /// records kept).
    pub fn totals(&self) -> LoadStats {
        let mut t = self.totals.clone();
        if self.truncated == 0 {
            return t;
        }
        let kept = stats(self.records.iter());
        (t.p50, t.p90, t.p99, t.p999, t.max) = (kept.p50, kept.p90, kept.p99, kept.p999, kept.max);
        t
    }

    /// Records (issued or skipped).
    pub fn total(&self) -> u64 {
        self.totals.total
    }

    /// Requests sent that got no answer (lost plus timeouts).
    pub fn lost(&self) -> u64 {
        self.totals.unanswered()
    }

    /// Open-loop ticks not issued (generator behind, or `max_in_flight` reached).
    pub fn skipped(&self) -> u64 {
        self.totals.skipped
    }

    /// Statistics over every record kept.
    pub fn stats(&self) -> LoadStats {
        if self.truncated == 0 { self.totals() } else { stats(self.records.iter()) }
    }

    /// Statistics over requests *intended* in `[from, to)` (relative to the load's start).
    pub fn stats_between(&self, from: Duration, to: Duration) -> LoadStats {
        stats(self.records.iter().filter(|r| r.intended >= from && r.intended < to))
    }

    /// Statistics over requests that *ended* in `[from, to)`.
    pub fn stats_ended_between(&self, from: Duration, to: Duration) -> LoadStats {
        stats(self.records.iter().filter(|r| r.ended >= from && r.ended < to))
    }

    /// Issued requests of `window` that succeeded and that failed; skipped ticks are neither.
    ///
    /// ```
    /// use chaos_harness::load::{LoadReport, OkFailed, Outcome, RequestRecord, Window};
    /// use std::time::{Duration, Instant};
    /// let ms = Duration::from_millis;
    /// let rec = |seq, at, outcome| RequestRecord { seq, intended: ms(at), sent: ms(at), ended: ms(at + 1), outcome, worker: None };
    /// let report = LoadReport::from_records(
    ///     vec![rec(0, 10, Outcome::Ok), rec(1, 20, Outcome::Timeout), rec(2, 30, Outcome::Skipped)],
    ///     Instant::now(),
    /// );
    /// assert_eq!(report.ok_failed(Window::sent(ms(0), ms(100))), OkFailed { ok: 1, failed: 1 });
    /// ```
    pub fn ok_failed(&self, window: Window) -> OkFailed {
        self.records.iter().filter(|r| r.outcome != Outcome::Skipped && window.contains(r)).fold(
            OkFailed::default(),
            |mut c, r| {
                if r.outcome.is_ok() {
                    c.ok += 1;
                } else {
                    c.failed += 1;
                }
                c
            },
        )
    }

    /// The first issued request of `window` that did not succeed.
    pub fn first_failure(&self, window: Window) -> Option<&RequestRecord> {
        self.records.iter().find(|r| !r.outcome.is_ok() && r.outcome != Outcome::Skipped && window.contains(r))
    }

    /// Records whose lifetime overlaps `[from, to)`.
    pub fn overlapping(&self, from: Duration, to: Duration) -> impl Iterator<Item = &RequestRecord> {
        self.records.iter().filter(move |r| r.overlaps(from, to))
    }

    /// Records in flight at `t` (sent at or before it, ended after it).
    pub fn in_flight_at(&self, t: Duration) -> impl Iterator<Item = &RequestRecord> {
        self.records.iter().filter(move |r| r.outcome != Outcome::Skipped && r.sent <= t && r.ended > t)
    }

    /// Measurements per phase window (see the module docs for which request counts where).
    ///
    /// ```
    /// use chaos_harness::load::{LoadReport, Outcome, PhaseSpan, RequestRecord};
    /// use std::time::{Duration, Instant};
    /// let ms = Duration::from_millis;
    /// let rec = |seq, from, to, outcome| RequestRecord { seq, intended: ms(from), sent: ms(from), ended: ms(to), outcome, worker: None };
    /// // Issued in the baseline, failed in the fault: counted in the fault phase.
    /// let report = LoadReport::from_records(vec![rec(0, 10, 20, Outcome::Ok), rec(1, 90, 150, Outcome::Timeout)], Instant::now());
    /// let phases = report.phase_stats(&[PhaseSpan::new("baseline", ms(0), ms(100)), PhaseSpan::new("fault", ms(100), ms(200))]);
    /// assert_eq!((phases[0].stats.ok, phases[0].stats.timeouts, phases[0].overlapping), (1, 0, 2));
    /// assert_eq!((phases[1].stats.timeouts, phases[1].overlapping), (1, 1));
    /// ```
    pub fn phase_stats(&self, spans: &[PhaseSpan]) -> Vec<PhaseStats> {
        spans
            .iter()
            .map(|span| {
                let stats = self.stats_ended_between(span.from, span.to);
                let secs = span.len().as_secs_f64();
                PhaseStats {
                    span: span.clone(),
                    throughput: if secs > 0.0 { stats.ok as f64 / secs } else { 0.0 },
                    overlapping: self.overlapping(span.from, span.to).count() as u64,
                    stats,
                }
            })
            .collect()
    }

    /// The end of the last record (the load's measured extent).
    pub fn end(&self) -> Duration {
        self.records.iter().map(|r| r.ended).max().unwrap_or_default()
    }
}
