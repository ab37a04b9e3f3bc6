//! Guardrails: stop conditions checked while a scenario runs. When one trips, the scenario
//! stops where it is, clears every active fault (reverse order) and fails as
//! *aborted by guard* with the reading that tripped it.
//!
//! Built-ins read the host: available memory (`MemAvailable` / `MemTotal` from
//! `/proc/meminfo`), the 1-minute load average (`/proc/loadavg`), free disk space of a path
//! (`statvfs`, space available to unprivileged users). [`Guard::probe`] takes any check.
//! A [`GuardWatch`] polls the guards on its own thread (every 200 ms by default) and lets
//! async code race a step against a trip.
//!
//! ```no_run
//! # use chaos_harness::prelude::*;
//! # async fn f(cx: &mut Chaos) -> ChaosResult {
//! use chaos_harness::safety::guard::Guard;
//! let outcome = cx.scenario("memory hog")
//!     .guard(Guard::mem_available_below(10.0))
//!     .guard(Guard::load_average_above(8.0))
//!     .guard(Guard::free_disk_below("/", 5.0))
//!     .guard(Guard::probe("api healthy", || Ok(())))
//!     .wait(Duration::from_secs(30))
//!     .run()
//!     .await?;
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a [`GuardWatch`] checks its guards by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(200);

type Check = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// A stop condition: `check` returns `Err(reading)` when the scenario must stop.
///
/// ```
/// use chaos_harness::safety::guard::Guard;
/// let g = Guard::probe("always trips", || Err("the probe said no".into()));
/// let t = g.check().unwrap_err();
/// assert_eq!(t.to_string(), "aborted by guard `always trips`: the probe said no");
/// assert!(Guard::probe("fine", || Ok(())).check().is_ok());
/// ```
#[derive(Clone)]
pub struct Guard {
    name: String,
    check: Check,
    described: Option<crate::params::Described>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Guard({})", self.name)
    }
}

/// A guard that tripped: which, and the reading.
///
/// ```
/// let t = chaos_harness::safety::guard::Tripped { guard: "g".into(), reading: "r".into() };
/// assert_eq!(t.to_string(), "aborted by guard `g`: r");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("aborted by guard `{guard}`: {reading}")]
pub struct Tripped {
    /// The guard's name.
    pub guard: String,
    /// What it read.
    pub reading: String,
}

impl Guard {
    /// Trips when the host's available memory falls below `percent` of its total.
    ///
    /// ```
    /// assert!(chaos_harness::safety::guard::Guard::mem_available_below(0.0).check().is_ok());
    /// ```
    pub fn mem_available_below(percent: f64) -> Self {
        let d =
            crate::params::Described::new("mem_available_below", crate::params::Params::new().with("percent", percent));
        Self::probe(format!("host MemAvailable below {percent}%"), move || {
            let text =
                std::fs::read_to_string("/proc/meminfo").map_err(|e| format!("cannot read /proc/meminfo: {e}"))?;
            mem_check(&text, percent)
        })
        .with_described(d)
    }

    /// Trips when the 1-minute load average rises above `load`.
    ///
    /// ```
    /// assert!(chaos_harness::safety::guard::Guard::load_average_above(1e9).check().is_ok());
    /// ```
    pub fn load_average_above(load: f64) -> Self {
        let d = crate::params::Described::new("load_average_above", crate::params::Params::new().with("load", load));
        Self::probe(format!("host load average above {load}"), move || {
            let text =
                std::fs::read_to_string("/proc/loadavg").map_err(|e| format!("cannot read /proc/loadavg: {e}"))?;
            load_check(&text, load)
        })
        .with_described(d)
    }

    /// Trips when the free space of the file system holding `path` falls below `percent`.
    ///
    /// ```
    /// assert!(chaos_harness::safety::guard::Guard::free_disk_below("/", 0.0).check().is_ok());
    /// ```
    pub fn free_disk_below(path: impl Into<PathBuf>, percent: f64) -> Self {
        let path = path.into();
        let d = crate::params::Described::new(
            "free_disk_below",
            crate::params::Params::new().with("path", path.display().to_string()).with("percent", percent),
        );
        Self::probe(format!("free disk of {} below {percent}%", path.display()), move || {
            let st = nix::sys::statvfs::statvfs(&path).map_err(|e| format!("statvfs {}: {e}", path.display()))?;
            disk_check(st.blocks_available() as u64, st.blocks() as u64, percent)
        })
        .with_described(d)
    }

    /// A custom stop condition: `check` returns `Err(reading)` to stop the scenario. It runs on
    /// the watch thread every interval, so keep it short.
    pub fn probe(name: impl Into<String>, check: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> Self {
        Self { name: name.into(), check: Arc::new(check), described: None }
    }

    fn with_described(mut self, d: crate::params::Described) -> Self {
        self.described = Some(d);
        self
    }

    /// The guard as a scenario spec writes it (`mem_available_below` with `percent`); `None`
    /// for custom probes.
    pub fn described(&self) -> Option<&crate::params::Described> {
        self.described.as_ref()
    }

    /// Builds a guard from its description (see [`Guard::described`]).
    ///
    /// ```
    /// use chaos_harness::params::{Described, Params};
    /// use chaos_harness::safety::guard::Guard;
    /// let g = Guard::from_described(&Described::new("load_average_above", Params::new().with("load", 1e9))).unwrap();
    /// assert!(g.check().is_ok());
    /// ```
    pub fn from_described(d: &crate::params::Described) -> Result<Self, crate::Error> {
        let bad = |cause: String| crate::Error::Config {
            what: format!("guard `{}`", d.kind),
            cause,
            fix: "use mem_available_below (percent), load_average_above (load) or free_disk_below (path, percent)"
                .into(),
        };
        let num =
            |k: &str| d.params.f64(k).map_err(|e| bad(e.to_string()))?.ok_or_else(|| bad(format!("`{k}` is missing")));
        match d.kind.as_str() {
            "mem_available_below" => Ok(Self::mem_available_below(num("percent")?)),
            "load_average_above" => Ok(Self::load_average_above(num("load")?)),
            "free_disk_below" => {
                let path = d
                    .params
                    .str("path")
                    .map_err(|e| bad(e.to_string()))?
                    .ok_or_else(|| bad("`path` is missing".into()))?;
                Ok(Self::free_disk_below(path, num("percent")?))
            }
            other => Err(bad(format!("unknown guard kind `{other}`"))),
        }
    }

    /// The guard's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks it once.
    pub fn check(&self) -> Result<(), Tripped> {
        (self.check)().map_err(|reading| Tripped { guard: self.name.clone(), reading })
    }
}

/// The `MemAvailable` decision on `/proc/meminfo` text.
///
/// ```
/// use chaos_harness::safety::guard::mem_check;
/// let m = "MemTotal:  1000 kB\nMemFree: 10 kB\nMemAvailable:  50 kB\n";
/// assert!(mem_check(m, 4.0).is_ok());
/// assert_eq!(mem_check(m, 10.0).unwrap_err(), "MemAvailable 50 kB of 1000 kB (5.0%) < 10%");
/// assert!(mem_check("garbage", 1.0).is_err());
/// ```
pub fn mem_check(meminfo: &str, percent: f64) -> Result<(), String> {
    let field = |name: &str| -> Option<u64> {
        meminfo.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.split_whitespace().next()?.parse().ok())
    };
    let (Some(total), Some(avail)) = (field("MemTotal"), field("MemAvailable")) else {
        return Err("no MemTotal/MemAvailable in /proc/meminfo".into());
    };
    let pct = if total == 0 { 0.0 } else { avail as f64 * 100.0 / total as f64 };
    if pct < percent { Err(format!("MemAvailable {avail} kB of {total} kB ({pct:.1}%) < {percent}%")) } else { Ok(()) }
}

/// The load-average decision on `/proc/loadavg` text.
///
/// ```
/// use chaos_harness::safety::guard::load_check;
/// assert!(load_check("0.50 0.40 0.30 1/100 42", 1.0).is_ok());
/// assert_eq!(load_check("3.25 0.40 0.30 1/100 42", 2.0).unwrap_err(), "load average 3.25 > 2");
/// ```
pub fn load_check(loadavg: &str, max: f64) -> Result<(), String> {
    let one: f64 = loadavg
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("unreadable /proc/loadavg: {loadavg:?}"))?;
    if one > max { Err(format!("load average {one:.2} > {max}")) } else { Ok(()) }
}

/// The free-disk decision on block counts.
///
/// ```
/// use chaos_harness::safety::guard::disk_check;
/// assert!(disk_check(50, 100, 10.0).is_ok());
/// assert_eq!(disk_check(5, 100, 10.0).unwrap_err(), "free disk 5.0% < 10%");
/// ```
pub fn disk_check(available: u64, total: u64, percent: f64) -> Result<(), String> {
    let pct = if total == 0 { 100.0 } else { available as f64 * 100.0 / total as f64 };
    if pct < percent { Err(format!("free disk {pct:.1}% < {percent}%")) } else { Ok(()) }
}

struct Shared {
    tripped: Mutex<Option<Tripped>>,
    notify: tokio::sync::Notify,
    stop: AtomicBool,
}

/// Polls a set of guards on a thread of its own until dropped; the first trip is kept.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use chaos_harness::safety::guard::{Guard, GuardWatch};
/// use std::time::Duration;
/// let w = GuardWatch::start(vec![Guard::probe("no", || Err("tripped".into()))], Duration::from_millis(10));
/// let r = w.race(tokio::time::sleep(Duration::from_secs(10))).await;
/// assert_eq!(r.unwrap_err().reading, "tripped");
/// assert!(w.tripped().is_some());
/// # });
/// ```
pub struct GuardWatch {
    shared: Arc<Shared>,
}

impl GuardWatch {
    /// Starts polling `guards` every `interval` (checked once right away). With no guards it
    /// does nothing and never trips.
    pub fn start(guards: Vec<Guard>, interval: Duration) -> Self {
        let shared = Arc::new(Shared {
            tripped: Mutex::new(None),
            notify: tokio::sync::Notify::new(),
            stop: AtomicBool::new(false),
        });
        if guards.is_empty() {
            return Self { shared };
        }
        let check = move |shared: &Shared| -> bool {
            for g in &guards {
                if let Err(t) = g.check() {
                    tracing::warn!("{t}");
                    *shared.tripped.lock().unwrap_or_else(|e| e.into_inner()) = Some(t);
                    shared.notify.notify_waiters();
                    return true;
                }
            }
            false
        };
        if check(&shared) {
            return Self { shared };
        }
        let s = Arc::clone(&shared);
        let spawned = std::thread::Builder::new().name("chaos-guards".into()).spawn(move || {
            while !s.stop.load(Ordering::Relaxed) {
                std::thread::sleep(interval);
                if s.stop.load(Ordering::Relaxed) || check(&s) {
                    return;
                }
            }
        });
        if let Err(e) = spawned {
            // Without a thread the guards cannot be watched: fail safe by tripping.
            *shared.tripped.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(Tripped { guard: "guard watch".into(), reading: format!("cannot start the guard thread: {e}") });
        }
        Self { shared }
    }

    /// The trip, if one happened.
    pub fn tripped(&self) -> Option<Tripped> {
        self.shared.tripped.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until a guard trips (forever when none does).
    pub async fn wait_tripped(&self) -> Tripped {
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(t) = self.tripped() {
                return t;
            }
            notified.await;
        }
    }

    /// Runs `f` unless a guard trips first (then `f` is dropped, i.e. cancelled).
    pub async fn race<F: std::future::Future>(&self, f: F) -> Result<F::Output, Tripped> {
        if let Some(t) = self.tripped() {
            return Err(t);
        }
        tokio::select! {
            r = f => Ok(r),
            t = self.wait_tripped() => Err(t),
        }
    }
}

impl Drop for GuardWatch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_guards_never_trip_and_race_passes_through() {
        let w = GuardWatch::start(Vec::new(), Duration::from_millis(1));
        assert_eq!(w.race(async { 5 }).await.unwrap(), 5);
        assert!(w.tripped().is_none());
    }

    #[tokio::test]
    async fn a_later_trip_interrupts_a_wait() {
        let n = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let n2 = n.clone();
        let g = Guard::probe("third check", move || {
            if n2.fetch_add(1, Ordering::SeqCst) >= 2 { Err("now".into()) } else { Ok(()) }
        });
        let w = GuardWatch::start(vec![g], Duration::from_millis(5));
        let t0 = std::time::Instant::now();
        let r = w.race(tokio::time::sleep(Duration::from_secs(10))).await;
        assert_eq!(r.unwrap_err().guard, "third check");
        assert!(t0.elapsed() < Duration::from_secs(2));
    }
}
