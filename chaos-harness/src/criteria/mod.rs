//! Success criteria: the [`Judge`] trait and the built-ins behind [`Criterion`], one file per
//! concern: [`process`], [`load`], [`resource`], [`network`] and [`snakepit`].
//!
//! Process criteria:
//! - [`Criterion::no_orphans`]: after the fixture's main process died, every process it owned
//!   is gone within `d`; a failure lists each survivor (pid, command line, parent, age).
//! - [`Criterion::process_count`]: the selection's live process count reaches `n` within `d`.
//! - [`Criterion::exits_within`]: the main process exits within `d`.
//! - [`Criterion::respawned`]: processes of the selection that died were replaced by new pids
//!   within `d`.
//!
//! `within(d)` counts from the moment the criterion is evaluated (the scenario evaluates an
//! `expect` right after the steps before it), except `no_orphans`, which counts from the main
//! process's death. Zombies count as dead.
//!
//! As with [`Fault`](crate::fault::Fault), the constructors live on the [`Criterion`] wrapper
//! and implementations implement the [`Judge`] trait.

#[cfg(feature = "snakepit")]
pub mod cluster;
pub mod history;
pub mod load;
pub mod network;
pub mod process;
pub mod resource;
#[cfg(feature = "snakepit")]
pub mod snakepit;

pub use load::{ErrorRate, Latency, LoadCheck, NoLostRequests, Over, RecoversWithin, Throughput, Windows};
pub use network::TcpConnect;
pub use process::{ExitsWithin, NoOrphans, ProcessCount, ProcessesGone, Respawned};
pub use resource::{Fds, OomKills, Rss};
#[cfg(feature = "snakepit")]
pub use snakepit::{
    GenerationNotLeaked, HealthTruthful, Healthy, NoGhostWorkers, NoOrphanedWorkers, PoolRecoversCapacity,
    SessionAffinity, SessionsSurvive, TelemetryFlow,
};

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::BoxFuture;
use crate::fault::Confirmation;
use crate::sandbox::Sandbox;

/// What a criterion may look at.
///
/// ```
/// # fn f(sb: std::sync::Arc<chaos_harness::sandbox::Sandbox>) {
/// let cx = chaos_harness::criteria::JudgeContext::new(sb, 42);
/// assert_eq!(cx.seed, 42);
/// assert_eq!(cx.window_start, cx.scenario_start);
/// # }
/// ```
pub struct JudgeContext {
    /// The test's sandbox.
    pub sandbox: Arc<Sandbox>,
    /// When the scenario started.
    pub scenario_start: Instant,
    /// When this criterion's `within` window opened: the confirmation of the fault (or of the
    /// clear) the criterion follows, or the end of the wait before it, else the scenario's
    /// start. Criteria that follow one step are judged concurrently and all count from here.
    pub window_start: Instant,
    /// Confirmations of the faults injected so far.
    pub confirmations: Vec<Confirmation>,
    /// The scenario's load so far (final once the load stopped), if it runs one.
    pub load: Option<crate::load::LoadReport>,
    /// The test's seed: random selectors in criteria draw from it.
    pub seed: u64,
    /// The scenario's events so far (offsets from the scenario's start).
    pub events: Vec<crate::observe::Event>,
    /// The resource series being sampled (see [`Judge::monitors`]); empty outside a scenario.
    pub monitor: crate::observe::MonitorHandle,
}

impl JudgeContext {
    /// A context for a scenario starting now.
    pub fn new(sandbox: Arc<Sandbox>, seed: u64) -> Self {
        let now = Instant::now();
        Self {
            sandbox,
            scenario_start: now,
            window_start: now,
            confirmations: Vec::new(),
            load: None,
            seed,
            events: Vec::new(),
            monitor: Default::default(),
        }
    }

    /// The seeded random source for selectors (the same draws for the same seed).
    pub fn rng(&self) -> rand_chacha::ChaCha8Rng {
        <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(self.seed)
    }

    /// The time left of a `within` window of `d` opened at [`JudgeContext::window_start`].
    pub fn deadline(&self, d: Duration) -> Instant {
        self.window_start + d
    }
}

/// A criterion's judgement.
///
/// ```
/// let v = chaos_harness::criteria::Verdict { criterion: "no orphans".into(), passed: true, detail: "none".into() };
/// assert_eq!(v.to_string(), "PASS no orphans: none");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    /// The criterion's description.
    pub criterion: String,
    /// Whether it held.
    pub passed: bool,
    /// The evidence.
    pub detail: String,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", if self.passed { "PASS" } else { "FAIL" }, self.criterion, self.detail)
    }
}

/// A criterion implementation.
pub trait Judge: Send + Sync {
    /// One-line description.
    fn describe(&self) -> String;

    /// Called once before the scenario's first step (to record a baseline).
    fn prepare(&self, _cx: &JudgeContext) {}

    /// Evaluates the criterion (may wait up to its `within`, counted from
    /// [`JudgeContext::window_start`]).
    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict>;

    /// The registry kind and parameters that build this criterion again from a scenario spec;
    /// `None` when it cannot be written down (a custom closure).
    fn described(&self) -> Option<crate::params::Described> {
        None
    }

    /// The selections whose resource series this criterion reads from
    /// [`JudgeContext::monitor`]: the scenario monitors them from its start.
    fn monitors(&self) -> Vec<crate::fixture::Selection> {
        Vec::new()
    }
}

/// A criterion, ready for [`Scenario::expect`](crate::scenario::Scenario::expect).
///
/// ```no_run
/// # use chaos_harness::prelude::*;
/// # use chaos_harness::criteria::Criterion;
/// # use chaos_harness::fixture::{FixtureHandle, Process};
/// # fn f(p: &Process) {
/// let cs: Vec<Criterion> = vec![
///     Criterion::no_orphans().of(p).within(Duration::from_secs(2)).into(),
///     Criterion::process_count(p.children()).reaches(4).within(Duration::from_secs(5)).into(),
///     Criterion::exits_within(Duration::from_secs(3)).of(p).into(),
///     Criterion::respawned(p.children()).within(Duration::from_secs(5)).into(),
/// ];
/// # }
/// ```
pub struct Criterion(Box<dyn Judge>);

impl Criterion {
    /// Wraps a [`Judge`].
    pub fn new(j: impl Judge + 'static) -> Self {
        Self(Box::new(j))
    }

    /// Description.
    pub fn describe(&self) -> String {
        self.0.describe()
    }

    /// See [`Judge::prepare`].
    pub fn prepare(&self, cx: &JudgeContext) {
        self.0.prepare(cx)
    }

    /// See [`Judge::judge`].
    pub fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        self.0.judge(cx)
    }

    /// See [`Judge::described`].
    pub fn described(&self) -> Option<crate::params::Described> {
        self.0.described()
    }

    /// See [`Judge::monitors`].
    pub fn monitors(&self) -> Vec<crate::fixture::Selection> {
        self.0.monitors()
    }
}

impl<T: Judge + 'static> From<T> for Criterion {
    fn from(j: T) -> Self {
        Criterion::new(j)
    }
}

/// A failed verdict for a criterion that was given no fixture.
pub(crate) fn no_target(name: String) -> Verdict {
    Verdict { criterion: name, passed: false, detail: "no fixture given: add .of(&fixture)".into() }
}

/// `d` as whole milliseconds, for verdict details.
pub(crate) fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}
