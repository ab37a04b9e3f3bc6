//! Load generation with honest measurement: open-loop schedules (constant rate, ramp, steps,
//! Poisson) measured from the intended send time, closed-loop clients with think time and
//! back-off, and one record per request with a meaningful [`Outcome`].
//!
//! The load is target-agnostic: a [`Call`] is an async closure returning an [`Outcome`] (or a
//! [`Reply`] naming the worker that served it). The Snakepit fixture provides calls for its HTTP
//! API; any other fixture can provide its own.
//!
//! Outcomes and what counts as lost:
//!
//! | outcome | meaning | counted by `no_lost_requests` |
//! |---|---|---|
//! | `Ok` | the target answered with success | no |
//! | `Error { category, reason }` | the target answered with an error of that kind | no (see `error_rate().of_kind(..)`) |
//! | `Refused` | nothing reached the server (connection refused, reset before the request was sent) | no (reported apart) |
//! | `Timeout` | sent, no answer within the per-request timeout | **yes** |
//! | `Lost` | sent, then cut without an answer (reset, closed): indeterminate, the server may have run it (Jepsen's `info`) | **yes** |
//! | `Skipped` | an open-loop tick not issued (generator behind, or `max_in_flight` reached) | no (reported apart) |
//!
//! Open loop: every tick of the schedule before the stop becomes exactly one record, issued or
//! skipped, and latency counts from the tick (coordinated-omission correct, as wrk2 does), so a
//! stalled target shows the queueing delay its users would see. Closed loop: `n` clients, each
//! sends, waits for the end, thinks, and sends again; after a refused, lost or error-answered
//! request a client backs off (doubling up to a cap) so an outage is not a busy loop.
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

mod report;
mod schedule;

pub use report::{LoadReport, LoadStats, OkFailed, PhaseSpan, PhaseStats, RequestRecord, Window};

pub mod history;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

use schedule::Profile;

/// How one request ended (see the module docs for which outcomes count as lost).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A successful reply.
    Ok,
    /// The target answered with an error (`category`/`reason` as the target reports).
    Error {
        /// Error category (e.g. `pool`, `worker`).
        category: String,
        /// Error reason (e.g. `pool_saturated`).
        reason: String,
    },
    /// Nothing reached the server: connection refused, or reset before the request was sent.
    Refused(String),
    /// Sent, and no answer within the load's per-request timeout.
    Timeout,
    /// Sent, then cut without an answer (reset, closed, garbled): indeterminate, the server may
    /// have run it.
    Lost(String),
    /// An open-loop tick that was not issued.
    Skipped,
}

impl Outcome {
    /// `true` for [`Outcome::Ok`].
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }

    /// `true` when the request was sent and got no answer ([`Outcome::Lost`] or
    /// [`Outcome::Timeout`]): what `no_lost_requests` counts. Refused and error replies are not
    /// lost.
    ///
    /// ```
    /// use chaos_harness::load::Outcome;
    /// assert!(Outcome::Lost("reset".into()).is_lost() && Outcome::Timeout.is_lost());
    /// assert!(!Outcome::Refused("refused".into()).is_lost() && !Outcome::Skipped.is_lost());
    /// ```
    pub fn is_lost(&self) -> bool {
        matches!(self, Outcome::Lost(_) | Outcome::Timeout)
    }

    /// `true` for [`Outcome::Refused`].
    pub fn is_refused(&self) -> bool {
        matches!(self, Outcome::Refused(_))
    }

    /// The outcome's kind: `ok`, `error`, `refused`, `timeout`, `lost` or `skipped`.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error { .. } => "error",
            Outcome::Refused(_) => "refused",
            Outcome::Timeout => "timeout",
            Outcome::Lost(_) => "lost",
            Outcome::Skipped => "skipped",
        }
    }

    /// `category/reason` of an error reply.
    ///
    /// ```
    /// use chaos_harness::load::Outcome;
    /// let e = Outcome::Error { category: "pool".into(), reason: "pool_saturated".into() };
    /// assert_eq!(e.error_kind().as_deref(), Some("pool/pool_saturated"));
    /// ```
    pub fn error_kind(&self) -> Option<String> {
        match self {
            Outcome::Error { category, reason } => Some(format!("{category}/{reason}")),
            _ => None,
        }
    }

    /// Classifies a transport failure: refused when nothing was sent, lost otherwise.
    ///
    /// ```
    /// use chaos_harness::load::Outcome;
    /// assert!(Outcome::transport(false, "connection refused").is_refused());
    /// assert!(Outcome::transport(true, "connection reset").is_lost());
    /// ```
    pub fn transport(sent: bool, cause: impl Into<String>) -> Self {
        if sent { Outcome::Lost(cause.into()) } else { Outcome::Refused(cause.into()) }
    }
}

/// What a [`Call`] returns: the outcome and, when the target says, the worker that served it.
///
/// ```
/// use chaos_harness::load::{Outcome, Reply};
/// let r = Reply::from(Outcome::Ok).worker("worker_1");
/// assert_eq!(r.worker.as_deref(), Some("worker_1"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// How it ended.
    pub outcome: Outcome,
    /// Which worker/route served it.
    pub worker: Option<String>,
}

impl Reply {
    /// Names the worker.
    pub fn worker(mut self, w: impl Into<String>) -> Self {
        self.worker = Some(w.into());
        self
    }
}

impl From<Outcome> for Reply {
    fn from(outcome: Outcome) -> Self {
        Self { outcome, worker: None }
    }
}

type CallFn = dyn Fn(u64) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync;

/// One kind of request, as an async closure of the request's sequence number.
#[derive(Clone)]
pub struct Call {
    f: Arc<CallFn>,
    described: Option<crate::params::Described>,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Call")
    }
}

impl Call {
    /// Wraps an async closure returning an [`Outcome`] or a [`Reply`].
    ///
    /// ```
    /// let call = chaos_harness::load::Call::new(|seq| async move {
    ///     if seq % 2 == 0 { chaos_harness::load::Outcome::Ok } else { chaos_harness::load::Outcome::Timeout }
    /// });
    /// # let _ = call;
    /// ```
    pub fn new<F, Fut, R>(f: F) -> Self
    where
        F: Fn(u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: Into<Reply>,
    {
        Self {
            f: Arc::new(move |seq| {
                let fut = f(seq);
                Box::pin(async move { fut.await.into() })
            }),
            described: None,
        }
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

    fn invoke(&self, seq: u64) -> Pin<Box<dyn Future<Output = Reply> + Send>> {
        (self.f)(seq)
    }
}

/// What kind of load to run.
#[derive(Clone, Debug)]
enum Shape {
    Open(Profile),
    Closed { concurrency: usize },
}

/// A load specification; [`Load::start`] runs it on the current tokio runtime.
///
/// ```
/// use chaos_harness::load::Load;
/// use std::time::Duration;
/// let _ = Load::ramp(10, 200, Duration::from_secs(5)).max_in_flight(64).timeout(Duration::from_secs(2));
/// let _ = Load::steps(&[(Duration::from_secs(1), 50), (Duration::from_secs(1), 500)]);
/// let _ = Load::poisson(100).seed(7);
/// let _ = Load::closed_loop(4).think_time(Duration::from_millis(10)).backoff(Duration::from_millis(10), Duration::from_secs(1));
/// ```
#[derive(Clone, Debug)]
pub struct Load {
    shape: Shape,
    timeout: Duration,
    max_in_flight: usize,
    workers: usize,
    max_lag: Duration,
    max_records: usize,
    think: Duration,
    backoff: (Duration, Duration),
}

impl Load {
    fn with(shape: Shape) -> Self {
        Self {
            shape,
            timeout: Duration::from_secs(30),
            max_in_flight: 10_000,
            workers: 0,
            max_lag: Duration::from_secs(1),
            max_records: 2_000_000,
            think: Duration::ZERO,
            backoff: (Duration::from_millis(10), Duration::from_secs(1)),
        }
    }

    /// Open loop: `per_second` requests per second on a fixed schedule, whatever the replies
    /// do (requests pile up when the system slows down, as real clients' do).
    pub fn constant_rate(per_second: u32) -> Self {
        Self::with(Shape::Open(Profile::constant(f64::from(per_second))))
    }

    /// Open loop whose rate goes linearly from `from` to `to` per second over `over`, then
    /// stays at `to`.
    pub fn ramp(from: u32, to: u32, over: Duration) -> Self {
        Self::with(Shape::Open(Profile::ramp(f64::from(from), f64::from(to), over)))
    }

    /// Open loop at `rate` per second for each `duration` in turn; the last rate holds.
    pub fn steps(steps: &[(Duration, u32)]) -> Self {
        let steps: Vec<(Duration, f64)> = steps.iter().map(|(d, r)| (*d, f64::from(*r))).collect();
        Self::with(Shape::Open(Profile::steps(&steps)))
    }

    /// Open loop with Poisson arrivals at a mean of `per_second` (seed with [`Load::seed`];
    /// default seed 0).
    pub fn poisson(per_second: u32) -> Self {
        Self::with(Shape::Open(Profile { poisson: Some(0), ..Profile::constant(f64::from(per_second)) }))
    }

    /// The seed of Poisson arrivals (use the test's seed for replayable runs); makes any
    /// open-loop profile Poisson.
    pub fn seed(mut self, seed: u64) -> Self {
        if let Shape::Open(p) = &mut self.shape {
            p.poisson = Some(seed);
        }
        self
    }

    /// Closed loop: `concurrency` clients, each issuing its next request when the last ends
    /// (after its think time, or its back-off after a failed request).
    pub fn closed_loop(concurrency: usize) -> Self {
        Self::with(Shape::Closed { concurrency: concurrency.max(1) })
    }

    /// Per-request timeout (default 30 s); a request without a reply by then is an
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
        match &self.shape {
            Shape::Open(profile) => {
                let p = match profile.poisson {
                    Some(seed) => p.with("poisson_seed", seed),
                    None => p,
                };
                match profile.segments.as_slice() {
                    [one] => Described::new("constant_rate", p.with("rate", one.from.round() as u64)),
                    [ramp, _] if ramp.from != ramp.to => Described::new(
                        "ramp",
                        p.with("from", ramp.from.round() as u64)
                            .with("to", ramp.to.round() as u64)
                            .with_duration("over", Duration::from_secs_f64(ramp.len.unwrap_or_default())),
                    ),
                    steps => Described::new(
                        "steps",
                        p.with(
                            "steps",
                            steps
                                .iter()
                                .filter_map(|s| Some(format!("{}ms@{}", (s.len? * 1000.0).round(), s.from.round())))
                                .collect::<Vec<_>>()
                                .join(","),
                        ),
                    ),
                }
            }
            Shape::Closed { concurrency } => Described::new("closed_loop", p.with("clients", *concurrency)),
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
            "ramp" => {
                let over = d.params.duration("over").map_err(|e| bad(e.to_string()))?;
                Load::ramp(
                    num("from")?.unwrap_or(0) as u32,
                    num("to")?.ok_or_else(|| bad("`to` is missing".into()))? as u32,
                    over.ok_or_else(|| bad("`over` is missing".into()))?,
                )
            }
            "steps" => {
                let text = d.params.str("steps").map_err(|e| bad(e.to_string()))?.unwrap_or_default();
                let steps = text
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| {
                        let (ms, rate) = s.trim().split_once("ms@")?;
                        Some((Duration::from_millis(ms.parse().ok()?), rate.parse().ok()?))
                    })
                    .collect::<Option<Vec<(Duration, u32)>>>()
                    .ok_or_else(|| bad(format!("`steps` = {text:?} is not like \"1000ms@50,2000ms@200\"")))?;
                Load::steps(&steps)
            }
            other => return Err(bad(format!("unknown load kind `{other}`"))),
        };
        if let Some(t) = d.params.duration("timeout").map_err(|e| bad(e.to_string()))? {
            load = load.timeout(t);
        }
        if let Some(m) = num("max_in_flight")? {
            load = load.max_in_flight(m as usize);
        }
        if let Some(seed) = num("poisson_seed")? {
            load = load.seed(seed);
        }
        Ok(load)
    }

    /// Caps open-loop requests in flight (default 10 000); a tick that finds the cap reached
    /// is recorded as [`Outcome::Skipped`], so a stalled target cannot exhaust the harness.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max.max(1);
        self
    }

    /// Open loop served by `n` workers (as wrk2's connections): each takes the next tick of the
    /// schedule when it is free, waits for it, and sends; a tick due while every worker is busy
    /// waits for one, and its latency still counts from the tick (coordinated-omission correct).
    /// At most `n` requests are then in flight; a tick reached later than
    /// [`Load::max_lag`] is skipped. Without it (the default) every tick is sent at once in a
    /// task of its own, up to [`Load::max_in_flight`]. No effect on a closed loop.
    ///
    /// ```
    /// let _ = chaos_harness::load::Load::constant_rate(10_000).workers(4);
    /// ```
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// How late the open-loop generator may issue a tick (default 1 s): a tick it reaches later
    /// than that (the harness itself could not keep up) is recorded as skipped.
    pub fn max_lag(mut self, lag: Duration) -> Self {
        self.max_lag = lag;
        self
    }

    /// Records kept (default 2 000 000, ~200 MB); past it only the totals count, so a long
    /// or very fast run stays in bounded memory.
    pub fn max_records(mut self, n: usize) -> Self {
        self.max_records = n;
        self
    }

    /// Closed loop: each client waits this long between requests (default none).
    pub fn think_time(mut self, d: Duration) -> Self {
        self.think = d;
        self
    }

    /// Closed loop: after a refused, lost or error-answered request a client waits `first`,
    /// doubling on each further one up to `max` (default 10 ms to 1 s); a success or a timeout
    /// resets it. An outage (refusals) or a target answering errors at once is then not a busy
    /// loop.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = (first, max.max(first));
        self
    }

    /// Expected open-loop requests in the first `t` (`None` for a closed loop).
    ///
    /// ```
    /// use chaos_harness::load::Load;
    /// use std::time::Duration;
    /// assert_eq!(Load::constant_rate(100).expected(Duration::from_secs(2)), Some(200.0));
    /// ```
    pub fn expected(&self, t: Duration) -> Option<f64> {
        match &self.shape {
            Shape::Open(p) => Some(p.expected(t)),
            Shape::Closed { .. } => None,
        }
    }

    /// Starts the load. Must be called inside a tokio runtime.
    pub fn start(&self, call: Call) -> LoadRun {
        let now = Instant::now();
        self.launch(call, now, now)
    }

    /// Starts the load now, with its records' times measured from `t0` (a scenario's start, so
    /// that the records and the scenario's events share one clock). `t0` must not be in the
    /// future; the open-loop schedule counts from now.
    pub(crate) fn start_on_clock(&self, call: Call, t0: Instant) -> LoadRun {
        let now = Instant::now();
        self.launch(call, t0.min(now), now)
    }

    fn launch(&self, call: Call, started_at: Instant, schedule: Instant) -> LoadRun {
        let (stop_tx, stop_rx) = watch::channel(None);
        let sink = Arc::new(Sink::new(self.max_records));
        let clock = Clock { t0: started_at, schedule };
        let driver = tokio::spawn(drive(self.clone(), call, stop_rx, Arc::clone(&sink), clock));
        LoadRun { stop: stop_tx, driver: Some(driver), sink, started_at }
    }
}

/// Where records go: kept up to a cap, always counted.
struct Sink {
    max: usize,
    inner: Mutex<SinkInner>,
    in_flight: AtomicUsize,
    /// Notified when `in_flight` drops to zero while `draining`.
    idle: tokio::sync::Notify,
    /// Set when the load stopped and waits for its requests in flight.
    draining: std::sync::atomic::AtomicBool,
}

struct SinkInner {
    records: Vec<RequestRecord>,
    totals: report::StatsBuilder,
    truncated: u64,
}

impl Sink {
    fn new(max: usize) -> Self {
        Self {
            max,
            inner: Mutex::new(SinkInner { records: Vec::new(), totals: report::StatsBuilder::new(), truncated: 0 }),
            in_flight: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
            draining: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn push(&self, r: RequestRecord) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.totals.add(&r);
        if g.records.len() < self.max {
            g.records.push(r);
        } else {
            g.truncated += 1;
        }
    }

    fn report(&self, started_at: Instant) -> LoadReport {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut records = g.records.clone();
        records.sort_by_key(|r| r.seq);
        LoadReport {
            records,
            totals: g.totals.snapshot(),
            truncated: g.truncated,
            started_at,
            in_flight: self.in_flight.load(Ordering::Relaxed) as u64,
        }
    }
}

/// Runs one request and records it (`intended`: the open-loop tick; `None`: now). The caller
/// holds an [`InFlight`] slot for it.
async fn one(
    call: &Call,
    seq: u64,
    intended: Option<Duration>,
    timeout: Duration,
    sink: &Sink,
    t0: Instant,
) -> Outcome {
    let sent = t0.elapsed();
    let intended = intended.unwrap_or(sent);
    let reply = tokio::time::timeout(timeout, call.invoke(seq))
        .await
        .unwrap_or(Reply { outcome: Outcome::Timeout, worker: None });
    let outcome = reply.outcome.clone();
    sink.push(RequestRecord { seq, intended, sent, ended: t0.elapsed(), outcome: reply.outcome, worker: reply.worker });
    outcome
}

/// One request in flight: counted in the sink from its creation to its drop (also when the
/// call panics), and the last one out wakes [`all_done`].
struct InFlight(Arc<Sink>);

impl InFlight {
    fn new(sink: &Arc<Sink>) -> Self {
        sink.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(sink))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Only a stopping load has a waiter: the notification (a lock) is not paid per request.
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 && self.0.draining.load(Ordering::SeqCst) {
            self.0.idle.notify_waiters();
        }
    }
}

/// Waits until no request is in flight.
async fn all_done(sink: &Sink) {
    sink.draining.store(true, Ordering::SeqCst);
    loop {
        let idle = sink.idle.notified();
        tokio::pin!(idle);
        idle.as_mut().enable();
        if sink.in_flight.load(Ordering::SeqCst) == 0 {
            return;
        }
        idle.await;
    }
}

/// The open-loop schedule shared by the workers of [`Load::workers`].
struct Lanes {
    /// The ticks and the next sequence number.
    ticks: Mutex<(schedule::Ticks, u64)>,
    schedule: Instant,
    offset: Duration,
    max_lag: Duration,
}

fn skipped(seq: u64, at: Duration) -> RequestRecord {
    RequestRecord { seq, intended: at, sent: at, ended: at, outcome: Outcome::Skipped, worker: None }
}

/// One worker of an open loop with [`Load::workers`]: takes the next tick, waits for it, sends.
async fn lane(
    lanes: Arc<Lanes>,
    call: Call,
    sink: Arc<Sink>,
    mut stop: watch::Receiver<Option<Instant>>,
    timeout: Duration,
    t0: Instant,
) {
    loop {
        let next = {
            let mut g = lanes.ticks.lock().unwrap_or_else(|e| e.into_inner());
            let seq = g.1;
            g.0.next().map(|tick| {
                g.1 += 1;
                (seq, tick)
            })
        };
        // A schedule that ended (rate zero): nothing more to send.
        let Some((seq, tick)) = next else { return };
        let (when, at) = (lanes.schedule + tick, lanes.offset + tick);
        loop {
            if let Some(stopped_at) = *stop.borrow() {
                // Due before the stop and never sent: skipped; due after it: the end.
                if when < stopped_at {
                    sink.push(skipped(seq, at));
                    break;
                }
                return;
            }
            if when > Instant::now() {
                tokio::select! {
                    _ = tokio::time::sleep_until(when.into()) => {}
                    // Look at this tick again: it may still be due before the stop.
                    _ = stop.changed() => continue,
                }
            }
            if Instant::now().saturating_duration_since(when) > lanes.max_lag {
                sink.push(skipped(seq, at));
            } else {
                let slot = InFlight::new(&sink);
                one(&call, seq, Some(at), timeout, &sink, t0).await;
                drop(slot);
            }
            break;
        }
        // A worker that is behind never awaits a timer: give the runtime its turn.
        tokio::task::consume_budget().await;
    }
}

/// Sleeps `d` unless the load stops first; `false` when it stopped.
async fn pause(d: Duration, stop: &mut watch::Receiver<Option<Instant>>) -> bool {
    if d.is_zero() {
        return stop.borrow().is_none();
    }
    let stopped = tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(Option::is_some) => true,
    };
    !stopped && stop.borrow().is_none()
}

/// The load's clock: records' times count from `t0`, the open-loop schedule from `schedule`.
#[derive(Clone, Copy)]
struct Clock {
    t0: Instant,
    schedule: Instant,
}

async fn drive(spec: Load, call: Call, mut stop: watch::Receiver<Option<Instant>>, sink: Arc<Sink>, clock: Clock) {
    let Clock { t0, schedule } = clock;
    let mut tasks = JoinSet::new();
    let timeout = spec.timeout;
    match spec.shape {
        Shape::Open(profile) if spec.workers > 0 => {
            let lanes = Arc::new(Lanes {
                ticks: Mutex::new((profile.ticks(), 0)),
                schedule,
                offset: schedule.saturating_duration_since(t0),
                max_lag: spec.max_lag,
            });
            for _ in 0..spec.workers {
                let (lanes, call, sink, stop) = (Arc::clone(&lanes), call.clone(), Arc::clone(&sink), stop.clone());
                tasks.spawn(lane(lanes, call, sink, stop, timeout, t0));
            }
            let _ = stop.wait_for(Option::is_some).await;
        }
        Shape::Open(profile) => {
            let skip = |seq: u64, at: Duration| RequestRecord {
                seq,
                intended: at,
                sent: at,
                ended: at,
                outcome: Outcome::Skipped,
                worker: None,
            };
            let mut seq = 0u64;
            let mut ticks = profile.ticks();
            let mut next = ticks.next();
            // The records' times count from `t0` (the clock they share with a scenario's
            // events, which may have started a little earlier).
            let offset = schedule.saturating_duration_since(t0);
            while let Some(tick) = next {
                let (when, at) = (schedule + tick, offset + tick);
                if let Some(stopped_at) = *stop.borrow() {
                    // Ticks due before the stop that the generator never reached were skipped.
                    if when < stopped_at {
                        sink.push(skip(seq, at));
                        seq += 1;
                        next = ticks.next();
                        continue;
                    }
                    break;
                }
                if when > Instant::now() {
                    tokio::select! {
                        _ = tokio::time::sleep_until(when.into()) => {}
                        // Look at this tick again: it may still be due before the stop.
                        _ = stop.changed() => continue,
                    }
                }
                let late = Instant::now().saturating_duration_since(when);
                if late > spec.max_lag || sink.in_flight.load(Ordering::Acquire) >= spec.max_in_flight {
                    sink.push(skip(seq, at));
                } else {
                    // A plain task per request (no JoinSet: its bookkeeping costs a lock and an
                    // allocation per request); the slot counts it until it ends.
                    let slot = InFlight::new(&sink);
                    let call = call.clone();
                    tokio::spawn(async move {
                        one(&call, seq, Some(at), timeout, &slot.0, t0).await;
                        drop(slot);
                    });
                }
                seq += 1;
                next = ticks.next();
                // A generator running behind never awaits a timer: give the runtime its turn.
                tokio::task::consume_budget().await;
            }
            // A profile that ended (rate zero): wait for the stop.
            let _ = stop.wait_for(Option::is_some).await;
        }
        Shape::Closed { concurrency } => {
            let next = Arc::new(AtomicU64::new(0));
            for _ in 0..concurrency {
                let (next, call, sink, mut stop) = (Arc::clone(&next), call.clone(), Arc::clone(&sink), stop.clone());
                let (think, (first, cap)) = (spec.think, spec.backoff);
                tasks.spawn(async move {
                    let mut backoff = first;
                    // A request in flight when the load stops runs to its end (bounded by the
                    // per-request timeout): cancelling it would hide a hang as "not issued".
                    while stop.borrow().is_none() {
                        let seq = next.fetch_add(1, Ordering::Relaxed);
                        let slot = InFlight::new(&sink);
                        let outcome = one(&call, seq, None, timeout, &sink, t0).await;
                        drop(slot);
                        let wait = if matches!(outcome, Outcome::Refused(_) | Outcome::Lost(_) | Outcome::Error { .. })
                        {
                            let w = backoff;
                            backoff = (backoff * 2).min(cap);
                            w
                        } else {
                            backoff = first;
                            think
                        };
                        if !pause(wait, &mut stop).await {
                            break;
                        }
                        // A call that is always ready never yields on its own: without this the
                        // client would starve the timer and the stop.
                        tokio::task::consume_budget().await;
                    }
                });
            }
            let _ = stop.wait_for(Option::is_some).await;
        }
    }
    // Let requests in flight finish (each is bounded by the per-request timeout).
    while tasks.join_next().await.is_some() {}
    all_done(&sink).await;
}

/// A running load; [`LoadRun::stop`] ends it and returns the report.
pub struct LoadRun {
    stop: watch::Sender<Option<Instant>>,
    driver: Option<tokio::task::JoinHandle<()>>,
    sink: Arc<Sink>,
    started_at: Instant,
}

impl std::fmt::Debug for LoadRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadRun").field("started_at", &self.started_at).finish_non_exhaustive()
    }
}

impl LoadRun {
    /// When the load started.
    pub fn started_at(&self) -> Instant {
        self.started_at
    }

    /// A snapshot of the requests finished so far.
    pub fn snapshot(&self) -> LoadReport {
        self.sink.report(self.started_at)
    }

    /// Stops issuing requests, waits for those in flight (each bounded by the per-request
    /// timeout, so a hung request ends as [`Outcome::Timeout`]), and returns the report.
    pub async fn stop(mut self) -> LoadReport {
        let _ = self.stop.send(Some(Instant::now()));
        if let Some(driver) = self.driver.take() {
            let _ = driver.await;
        }
        self.snapshot()
    }
}

impl Drop for LoadRun {
    fn drop(&mut self) {
        let _ = self.stop.send(Some(Instant::now()));
    }
}

#[cfg(test)]
mod tests;
