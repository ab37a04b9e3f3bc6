//! Cluster criteria for a [`SnakepitCluster`](crate::fixture::snakepit::cluster::SnakepitCluster):
//!
//! * [`Criterion::cluster_rejoined`]: within `d`, every node is joined and connected to every
//!   other node (`GET /cluster` on each);
//! * [`Criterion::pools_rebalanced`]: within `d`, every node's pool is back to its target (all
//!   workers ready, `/workers` lists exactly `size` workers);
//! * [`Criterion::no_orphans_on_nodes`]: within `d`, no node runs a worker of an earlier run of
//!   its BEAM, nor more workers than its pool size;
//! * [`Criterion::replicas_converged`]: within `d`, every node's replica holds the same
//!   version of every session (a failure lists each session whose versions differ, per node).
//!
//! `within` counts from the moment the criterion is evaluated (right after the steps before it).
//!
//! ```no_run
//! # fn f(c: &chaos_harness::fixture::snakepit::cluster::ClusterHandle) {
//! use chaos_harness::criteria::Criterion;
//! use std::time::Duration;
//! let all = [
//!     Criterion::from(Criterion::cluster_rejoined(c).within(Duration::from_secs(15))),
//!     Criterion::from(Criterion::pools_rebalanced(c).within(Duration::from_secs(15))),
//!     Criterion::from(Criterion::no_orphans_on_nodes(c).within(Duration::from_secs(15))),
//!     Criterion::from(Criterion::replicas_converged(c).within(Duration::from_secs(5))),
//! ];
//! # let _ = all; }
//! ```

use std::time::{Duration, Instant};

use super::{Criterion, Judge, JudgeContext, Verdict};
use crate::BoxFuture;
use crate::fixture::snakepit::cluster::ClusterHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rejoined,
    Rebalanced,
    NoOrphans,
    Converged,
}

/// A cluster criterion (see the [module docs](self)).
///
/// ```no_run
/// # fn f(c: &chaos_harness::fixture::snakepit::cluster::ClusterHandle) {
/// let j = chaos_harness::criteria::Criterion::cluster_rejoined(c).within(std::time::Duration::from_secs(10));
/// # let _ = j; }
/// ```
#[derive(Debug, Clone)]
pub struct ClusterCheck {
    cluster: ClusterHandle,
    kind: Kind,
    within: Duration,
}

impl ClusterCheck {
    /// The allowed time (default 15 s).
    ///
    /// ```no_run
    /// # fn f(c: &chaos_harness::fixture::snakepit::cluster::ClusterHandle) {
    /// let j = chaos_harness::criteria::Criterion::replicas_converged(c).within(std::time::Duration::from_secs(3));
    /// # let _ = j; }
    /// ```
    pub fn within(mut self, d: Duration) -> Self {
        self.within = d;
        self
    }

    /// Evaluates now, without a scenario (same verdict as a scenario's `expect`).
    ///
    /// ```no_run
    /// # async fn f(c: &chaos_harness::fixture::snakepit::cluster::ClusterHandle) {
    /// let v = chaos_harness::criteria::Criterion::cluster_rejoined(c).check().await;
    /// assert!(v.passed, "{v}");
    /// # }
    /// ```
    pub async fn check(&self) -> Verdict {
        let name = self.describe();
        let r = match self.kind {
            Kind::Rejoined => self.cluster.wait_joined(self.within).await,
            Kind::Converged => self.cluster.wait_converged(self.within).await,
            Kind::Rebalanced => self.poll(|c| Box::pin(rebalanced(c))).await,
            Kind::NoOrphans => self.poll(|c| Box::pin(orphans(c))).await,
        };
        match r {
            Ok(d) => Verdict { criterion: name, passed: true, detail: format!("after {:.2} s", d.as_secs_f64()) },
            Err(e) => Verdict { criterion: name, passed: false, detail: e },
        }
    }

    async fn poll<F>(&self, f: F) -> Result<Duration, String>
    where
        F: for<'a> Fn(&'a ClusterHandle) -> BoxFuture<'a, Vec<String>>,
    {
        let t0 = Instant::now();
        loop {
            let problems = f(&self.cluster).await;
            if problems.is_empty() {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > self.within {
                return Err(format!("still after {:?}: {}", self.within, problems.join("; ")));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn rebalanced(c: &ClusterHandle) -> Vec<String> {
    let mut out = Vec::new();
    for n in c.nodes() {
        let client = n.pit().client();
        match (client.health().await, client.workers().await) {
            (Ok(h), Ok(w)) if h.ready >= h.size && w.len() as u32 == h.size => {}
            (Ok(h), Ok(w)) => out.push(format!(
                "{}: {} of {} workers ready, {} listed ({})",
                n.name(),
                h.ready,
                h.size,
                w.len(),
                w.iter().map(|w| format!("{}={}", w.id, w.state)).collect::<Vec<_>>().join(" ")
            )),
            (Err(e), _) | (_, Err(e)) => out.push(format!("{}: {e}", n.name())),
        }
    }
    out
}

async fn orphans(c: &ClusterHandle) -> Vec<String> {
    let mut out = Vec::new();
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    for n in c.nodes() {
        let Some(run) = n.pit().run_id() else {
            out.push(format!("{}: no run id (BEAM not started)", n.name()));
            continue;
        };
        let marker = format!("--snakepit-run-id {run}");
        let size = n.pit().client().health().await.map(|h| h.size).unwrap_or(0);
        let mut current = 0;
        for p in n.pit().workers().resolve(&mut rng) {
            let Some(cmd) = crate::sandbox::procfs::cmdline(p.pid) else { continue };
            if cmd.contains(&marker) {
                current += 1;
            } else {
                out.push(format!("{}: orphan worker pid {} of an earlier run: {cmd}", n.name(), p.pid));
            }
        }
        if size > 0 && current > size {
            out.push(format!("{}: {current} workers of run {run} for a pool of {size}", n.name()));
        }
    }
    out
}

impl Judge for ClusterCheck {
    fn describe(&self) -> String {
        let what = match self.kind {
            Kind::Rejoined => "every node joined and connected to every other node",
            Kind::Rebalanced => "every node's pool back to its target size",
            Kind::NoOrphans => "no orphaned worker on any node",
            Kind::Converged => "every node's session replica identical",
        };
        format!("cluster: {what} within {:?}", self.within)
    }

    fn judge<'a>(&'a self, _cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(self.check())
    }
}

impl Criterion {
    /// Every node rejoins (joined, connected to all others) within `d` (default 15 s).
    ///
    /// ```no_run
    /// # fn f(c: &chaos_harness::fixture::snakepit::cluster::ClusterHandle) {
    /// let j = chaos_harness::criteria::Criterion::cluster_rejoined(c);
    /// # let _ = j; }
    /// ```
    pub fn cluster_rejoined(c: &ClusterHandle) -> ClusterCheck {
        ClusterCheck { cluster: c.clone(), kind: Kind::Rejoined, within: Duration::from_secs(15) }
    }

    /// Every node's pool is back to its target size.
    ///
    /// ```no_run
    /// # fn f(c: &chaos_harness::fixture::snakepit::cluster::ClusterHandle) {
    /// let j = chaos_harness::criteria::Criterion::pools_rebalanced(c);
    /// # let _ = j; }
    /// ```
    pub fn pools_rebalanced(c: &ClusterHandle) -> ClusterCheck {
        ClusterCheck { cluster: c.clone(), kind: Kind::Rebalanced, within: Duration::from_secs(15) }
    }

    /// No node runs workers of an earlier run or more than its pool size.
    ///
    /// ```no_run
    /// # fn f(c: &chaos_harness::fixture::snakepit::cluster::ClusterHandle) {
    /// let j = chaos_harness::criteria::Criterion::no_orphans_on_nodes(c);
    /// # let _ = j; }
    /// ```
    pub fn no_orphans_on_nodes(c: &ClusterHandle) -> ClusterCheck {
        ClusterCheck { cluster: c.clone(), kind: Kind::NoOrphans, within: Duration::from_secs(15) }
    }

    /// Every node's session replica converges to the same versions.
    ///
    /// ```no_run
    /// # fn f(c: &chaos_harness::fixture::snakepit::cluster::ClusterHandle) {
    /// let j = chaos_harness::criteria::Criterion::replicas_converged(c);
    /// # let _ = j; }
    /// ```
    pub fn replicas_converged(c: &ClusterHandle) -> ClusterCheck {
        ClusterCheck { cluster: c.clone(), kind: Kind::Converged, within: Duration::from_secs(15) }
    }
}
