//! Load generation: open-loop (constant rate) and closed-loop (fixed concurrency) load against
//! any async call, with per-request outcome accounting and HDR latency histograms.
//!
//! The load is target-agnostic: a [`Call`] is an async closure returning an [`Outcome`]. The
//! Snakepit fixture provides calls for its HTTP API; any other fixture can provide its own.
//!
//! ```
//! use chaos_harness::load::{Call, Load, Outcome};
//! use std::time::Duration;
//! # tokio_test();
//! # fn tokio_test() { tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let call = Call::new(|_seq| async { Outcome::Ok });
//! let run = Load::constant_rate(200).timeout(Duration::from_secs(1)).start(call);
//! tokio::time::sleep(Duration::from_millis(100)).await;
//! let report = run.stop().await;
//! assert!(report.total() > 0 && report.lost() == 0);
//! # }); }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// How one request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A successful reply.
    Ok,
    /// A structured error reply from the system (`category`/`reason` as the target reports).
    Error {
        /// Error category (e.g. `pool`, `worker`).
        category: String,
        /// Error reason (e.g. `pool_saturated`).
        reason: String,
    },
    /// No reply: the connection failed or was dropped (refused, reset, closed without reply).
    Transport(String),
    /// No reply within the load's per-request timeout.
    Timeout,
}

impl Outcome {
    /// `true` for [`Outcome::Ok`].
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }

    /// `true` when the request got no reply at all (transport failure or timeout): a lost
    /// request, as opposed to one the system rejected with an error.
    pub fn is_lost(&self) -> bool {
        matches!(self, Outcome::Transport(_) | Outcome::Timeout)
    }

    /// The outcome's kind, a label with few values: `ok`, `error`, `transport` or `timeout`.
    ///
    /// ```
    /// assert_eq!(chaos_harness::load::Outcome::Timeout.kind(), "timeout");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error { .. } => "error",
            Outcome::Transport(_) => "transport",
            Outcome::Timeout => "timeout",
        }
    }
}

type CallFn = dyn Fn(u64) -> Pin<Box<dyn Future<Output = Outcome> + Send>> + Send + Sync;

/// One kind of request, as an async closure of the request's sequence number.
#[derive(Clone)]
pub struct Call {
    f: Arc<CallFn>,
    described: Option<crate::params::Described>,
}

impl Call {
    /// Wraps an async closure.
    ///
    /// ```
    /// let call = chaos_harness::load::Call::new(|seq| async move {
    ///     if seq % 2 == 0 { chaos_harness::load::Outcome::Ok } else { chaos_harness::load::Outcome::Timeout }
    /// });
    /// # let _ = call;
    /// ```
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn(u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        Self { f: Arc::new(move |seq| Box::pin(f(seq))), described: None }
    }

    /// Records the registry kind and parameters that build this call again from a scenario
    /// spec (registered calls do this; a closure alone cannot be written down).
    pub fn with_described(mut self, d: crate::params::Described) -> Self {
        self.described = Some(d);
        self
    }

    /// See [`Call::with_described`].
    pub fn described(&self) -> Option<&crate::params::Described> {
        self.described.as_ref()
    }

    fn invoke(&self, seq: u64) -> Pin<Box<dyn Future<Output = Outcome> + Send>> {
        (self.f)(seq)
    }
}

/// One finished request.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// Sequence number (0-based, in issue order).
    pub seq: u64,
    /// When it was issued, relative to the load's start.
    pub started: Duration,
    /// How long until it ended.
    pub latency: Duration,
    /// How it ended.
    pub outcome: Outcome,
}

/// What kind of load to run.
#[derive(Clone, Debug)]
enum Shape {
    Open { per_second: u32 },
    Closed { concurrency: usize },
}

/// A load specification; [`Load::start`] runs it on the current tokio runtime.
#[derive(Clone, Debug)]
pub struct Load {
    shape: Shape,
    timeout: Duration,
    max_in_flight: usize,
}

impl Load {
    /// Open loop: issue `per_second` requests per second whatever the replies do (requests
    /// pile up when the system slows down, as real clients' do).
    pub fn constant_rate(per_second: u32) -> Self {
        Self {
            shape: Shape::Open { per_second: per_second.max(1) },
            timeout: Duration::from_secs(30),
            max_in_flight: 10_000,
        }
    }

    /// Closed loop: `concurrency` clients, each issuing its next request when the last ends.
    pub fn closed_loop(concurrency: usize) -> Self {
        Self {
            shape: Shape::Closed { concurrency: concurrency.max(1) },
            timeout: Duration::from_secs(30),
            max_in_flight: 10_000,
        }
    }

    /// Per-request timeout (default 30 s); a request without a reply by then is a
    /// [`Outcome::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The load as a scenario spec writes it: `constant_rate` with `rate`, or `closed_loop`
    /// with `clients`, plus `timeout` and `max_in_flight`.
    ///
    /// ```
    /// let d = chaos_harness::load::Load::constant_rate(200).described();
    /// assert_eq!(d.kind, "constant_rate");
    /// assert_eq!(d.params.u64("rate").unwrap(), Some(200));
    /// ```
    pub fn described(&self) -> crate::params::Described {
        use crate::params::{Described, Params};
        let p = Params::new().with_duration("timeout", self.timeout).with("max_in_flight", self.max_in_flight);
        match self.shape {
            Shape::Open { per_second } => Described::new("constant_rate", p.with("rate", per_second)),
            Shape::Closed { concurrency } => Described::new("closed_loop", p.with("clients", concurrency)),
        }
    }

    /// Builds a load from its description (see [`Load::described`]).
    pub fn from_described(d: &crate::params::Described) -> Result<Self, crate::Error> {
        let bad = |cause: String| crate::Error::Config {
            what: format!("load `{}`", d.kind),
            cause,
            fix: "write kind = \"constant_rate\" with rate = 200, or kind = \"closed_loop\" with clients = 4".into(),
        };
        let num = |key: &str| d.params.u64(key).map_err(|e| bad(e.to_string()));
        let mut load = match d.kind.as_str() {
            "constant_rate" => Load::constant_rate(num("rate")?.ok_or_else(|| bad("`rate` is missing".into()))? as u32),
            "closed_loop" => {
                Load::closed_loop(num("clients")?.ok_or_else(|| bad("`clients` is missing".into()))? as usize)
            }
            other => return Err(bad(format!("unknown load kind `{other}`"))),
        };
        if let Some(t) = d.params.duration("timeout").map_err(|e| bad(e.to_string()))? {
            load = load.timeout(t);
        }
        if let Some(m) = num("max_in_flight")? {
            load = load.max_in_flight(m as usize);
        }
        Ok(load)
    }

    /// Caps requests in flight for open-loop load (default 10 000); beyond it the load skips
    /// issuing and counts the skip, so a stalled target cannot exhaust the harness.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max.max(1);
        self
    }

    /// Starts the load. Must be called inside a tokio runtime.
    pub fn start(&self, call: Call) -> LoadRun {
        let (stop_tx, stop_rx) = watch::channel(false);
        let records: Arc<Mutex<Vec<RequestRecord>>> = Arc::default();
        let skipped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let started_at = Instant::now();
        let spec = self.clone();
        let driver = tokio::spawn(drive(spec, call, stop_rx, Arc::clone(&records), Arc::clone(&skipped), started_at));
        LoadRun { stop: stop_tx, driver: Some(driver), records, skipped, started_at }
    }
}

async fn drive(
    spec: Load,
    call: Call,
    mut stop: watch::Receiver<bool>,
    records: Arc<Mutex<Vec<RequestRecord>>>,
    skipped: Arc<std::sync::atomic::AtomicU64>,
    t0: Instant,
) {
    let mut tasks = JoinSet::new();
    let timeout = spec.timeout;
    let one = move |seq: u64| {
        let (call, records) = (call.clone(), Arc::clone(&records));
        async move {
            let begun = Instant::now();
            let outcome = tokio::time::timeout(timeout, call.invoke(seq)).await.unwrap_or(Outcome::Timeout);
            let record = RequestRecord { seq, started: begun - t0, latency: begun.elapsed(), outcome };
            records.lock().unwrap_or_else(|e| e.into_inner()).push(record);
        }
    };
    match spec.shape {
        Shape::Open { per_second } => {
            let permits = Arc::new(Semaphore::new(spec.max_in_flight));
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(per_second)));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut seq = 0u64;
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stop.changed() => break,
                }
                match Arc::clone(&permits).try_acquire_owned() {
                    Ok(permit) => {
                        let fut = one(seq);
                        tasks.spawn(async move {
                            fut.await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        skipped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                seq += 1;
                while tasks.try_join_next().is_some() {}
            }
        }
        Shape::Closed { concurrency } => {
            let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
            for _ in 0..concurrency {
                let (next, one, stop) = (Arc::clone(&next), one.clone(), stop.clone());
                tasks.spawn(async move {
                    // A request in flight when the load stops runs to its end (bounded by the
                    // per-request timeout): cancelling it would hide a hang as "not issued".
                    while !*stop.borrow() {
                        let seq = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        one(seq).await;
                    }
                });
            }
            let _ = stop.changed().await;
        }
    }
    // Let requests in flight finish (each is bounded by the per-request timeout).
    while tasks.join_next().await.is_some() {}
}

/// A running load; [`LoadRun::stop`] ends it and returns the report.
pub struct LoadRun {
    stop: watch::Sender<bool>,
    driver: Option<tokio::task::JoinHandle<()>>,
    records: Arc<Mutex<Vec<RequestRecord>>>,
    skipped: Arc<std::sync::atomic::AtomicU64>,
    started_at: Instant,
}

impl LoadRun {
    /// When the load started.
    pub fn started_at(&self) -> Instant {
        self.started_at
    }

    /// A snapshot of the requests finished so far.
    pub fn snapshot(&self) -> LoadReport {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner()).clone();
        LoadReport::new(records, self.skipped.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Stops issuing requests, waits for those in flight (each bounded by the per-request
    /// timeout, so a hung request ends as [`Outcome::Timeout`]), and returns the report.
    pub async fn stop(mut self) -> LoadReport {
        let _ = self.stop.send(true);
        if let Some(driver) = self.driver.take() {
            let _ = driver.await;
        }
        self.snapshot()
    }
}

impl Drop for LoadRun {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Statistics over a set of requests.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoadStats {
    /// Requests that ended.
    pub total: u64,
    /// Successful ones.
    pub ok: u64,
    /// Structured error replies.
    pub errors: u64,
    /// Requests without any reply (transport failures and timeouts).
    pub lost: u64,
    /// `(errors + lost) / total`, 0 when there were none.
    pub error_rate: f64,
    /// Median latency of successful requests.
    pub p50: Option<Duration>,
    /// 99th percentile latency of successful requests.
    pub p99: Option<Duration>,
    /// Maximum latency of successful requests.
    pub max: Option<Duration>,
}

/// Every request of a load run.
#[derive(Clone, Debug)]
pub struct LoadReport {
    records: Vec<RequestRecord>,
    skipped: u64,
}

impl LoadReport {
    fn new(mut records: Vec<RequestRecord>, skipped: u64) -> Self {
        records.sort_by_key(|r| r.seq);
        Self { records, skipped }
    }

    /// All requests, in issue order.
    pub fn records(&self) -> &[RequestRecord] {
        &self.records
    }

    /// Requests that ended.
    pub fn total(&self) -> u64 {
        self.records.len() as u64
    }

    /// Requests that got no reply at all.
    pub fn lost(&self) -> u64 {
        self.records.iter().filter(|r| r.outcome.is_lost()).count() as u64
    }

    /// Open-loop requests not issued because `max_in_flight` was reached.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Statistics over every request.
    pub fn stats(&self) -> LoadStats {
        stats(self.records.iter())
    }

    /// Statistics over requests issued in `[from, to)` (relative to the load's start).
    pub fn stats_between(&self, from: Duration, to: Duration) -> LoadStats {
        stats(self.records.iter().filter(|r| r.started >= from && r.started < to))
    }
}

fn stats<'a>(records: impl Iterator<Item = &'a RequestRecord>) -> LoadStats {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).ok();
    let (mut total, mut ok, mut errors, mut lost) = (0u64, 0u64, 0u64, 0u64);
    for r in records {
        total += 1;
        match &r.outcome {
            Outcome::Ok => {
                ok += 1;
                if let Some(h) = hist.as_mut() {
                    let _ = h.record((r.latency.as_micros() as u64).clamp(1, 3_600_000_000));
                }
            }
            Outcome::Error { .. } => errors += 1,
            Outcome::Transport(_) | Outcome::Timeout => lost += 1,
        }
    }
    let pick = |q: f64| hist.as_ref().filter(|h| !h.is_empty()).map(|h| Duration::from_micros(h.value_at_quantile(q)));
    LoadStats {
        total,
        ok,
        errors,
        lost,
        error_rate: if total == 0 { 0.0 } else { (errors + lost) as f64 / total as f64 },
        p50: pick(0.5),
        p99: pick(0.99),
        max: hist.as_ref().filter(|h| !h.is_empty()).map(|h| Duration::from_micros(h.max())),
    }
}

impl std::fmt::Display for LoadStats {
    /// `120 requests: 118 ok, 1 errors, 1 lost (error rate 1.7%), p50 1.2 ms, p99 8.0 ms`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Option<Duration>| d.map_or("-".to_string(), |d| format!("{:.1} ms", d.as_secs_f64() * 1e3));
        write!(
            f,
            "{} requests: {} ok, {} errors, {} lost (error rate {:.1}%), p50 {}, p99 {}",
            self.total,
            self.ok,
            self.errors,
            self.lost,
            self.error_rate * 100.0,
            ms(self.p50),
            ms(self.p99)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_loop_issues_at_rate_and_accounts_outcomes() {
        let call = Call::new(|seq| async move {
            match seq % 4 {
                0 => Outcome::Ok,
                1 => Outcome::Error { category: "pool".into(), reason: "pool_saturated".into() },
                2 => Outcome::Transport("reset".into()),
                _ => {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    Outcome::Ok
                }
            }
        });
        let run = Load::constant_rate(100).timeout(Duration::from_millis(200)).start(call);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let report = run.stop().await;
        let s = report.stats();
        assert!(s.total >= 8, "{s:?}");
        assert_eq!(s.ok + s.errors + s.lost, s.total);
        assert!(s.errors >= 2 && s.lost >= 4, "{s:?}");
        assert!(report.records().iter().any(|r| r.outcome == Outcome::Timeout));
        assert!(report.records().windows(2).all(|w| w[0].seq < w[1].seq));
    }

    #[tokio::test]
    async fn closed_loop_keeps_concurrency() {
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (f, p) = (Arc::clone(&in_flight), Arc::clone(&peak));
        let call = Call::new(move |_| {
            let (f, p) = (Arc::clone(&f), Arc::clone(&p));
            async move {
                let now = f.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                p.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                f.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                Outcome::Ok
            }
        });
        let run = Load::closed_loop(3).start(call);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let report = run.stop().await;
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert!(report.stats().ok > 10);
        assert_eq!(report.lost(), 0);
        assert!(report.stats().p50.is_some());
    }

    #[tokio::test]
    async fn closed_loop_stop_waits_for_hung_requests_and_reports_them_lost() {
        let call = Call::new(|seq| async move {
            if seq == 0 {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            Outcome::Ok
        });
        let run = Load::closed_loop(2).timeout(Duration::from_millis(300)).start(call);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let report = run.stop().await;
        assert_eq!(report.lost(), 1, "{:?}", report.stats());
        assert_eq!(report.records()[0].outcome, Outcome::Timeout);
    }

    #[test]
    fn phase_stats_split_by_issue_time() {
        let rec = |seq, ms, outcome| RequestRecord {
            seq,
            started: Duration::from_millis(ms),
            latency: Duration::from_millis(1),
            outcome,
        };
        let report = LoadReport::new(
            vec![
                rec(0, 10, Outcome::Ok),
                rec(1, 20, Outcome::Ok),
                rec(2, 30, Outcome::Timeout),
                rec(3, 40, Outcome::Ok),
            ],
            0,
        );
        let before = report.stats_between(Duration::ZERO, Duration::from_millis(25));
        assert_eq!((before.total, before.ok, before.error_rate), (2, 2, 0.0));
        let after = report.stats_between(Duration::from_millis(25), Duration::from_secs(1));
        assert_eq!((after.total, after.lost), (2, 1));
        assert!((after.error_rate - 0.5).abs() < 1e-9);
    }
}
