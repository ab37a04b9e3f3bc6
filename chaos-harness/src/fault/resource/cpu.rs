//! CPU faults: a CFS quota on the fixture's cgroup, and saturation by burner processes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cgroups::CpuCgroup;
use super::memory::restored;
use super::{Journaled, bad_config, not_injected, sandbox_of, set_ctl, undo_all, unsupported};
use crate::Error;
use crate::fault::{ActiveFault, Confirmation, FaultContext, Inject};
use crate::fixture::{BoxFuture, Command, Fixture, Probe, Process, Target, python3};
use crate::sandbox::{OwnedPid, Sandbox};

/// The smallest CFS quota the kernel accepts, in microseconds.
const MIN_QUOTA_US: u64 = 1000;

/// A CPU quota on the fixture's cgroup (see [`Fault::cpu_quota`](crate::fault::Fault::cpu_quota)).
///
/// ```no_run
/// # use chaos_harness::fault::{Fault, Inject};
/// # fn f(p: &chaos_harness::fixture::Process) {
/// let f = Fault::cpu_quota(p, 0.25);
/// assert!(f.describe().contains("0.25 CPU"));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CpuQuota {
    target: Target,
    fraction: f64,
    period: Option<Duration>,
}

impl CpuQuota {
    pub(crate) fn new(target: Target, fraction: f64) -> Self {
        Self { target, fraction, period: None }
    }

    /// The CFS period (default: keep the cgroup's, normally 100 ms). Shorter periods throttle
    /// in finer slices; the quota (fraction x period) must stay at least 1 ms.
    ///
    /// ```no_run
    /// # use chaos_harness::fault::Fault;
    /// # fn f(p: &chaos_harness::fixture::Process) {
    /// let f = Fault::cpu_quota(p, 0.05).period(std::time::Duration::from_millis(200));
    /// # }
    /// ```
    pub fn period(mut self, d: Duration) -> Self {
        self.period = Some(d);
        self
    }
}

struct CpuQuotaActive {
    confirmation: Confirmation,
    changes: Vec<Journaled>,
    sandbox: Arc<Sandbox>,
    cpu: CpuCgroup,
    throttled_before: Option<(u64, u64)>,
    fixture: String,
}

impl Inject for CpuQuota {
    fn describe(&self) -> String {
        format!("CPU quota {} CPU on {}", self.fraction, self.target.name())
    }

    fn described(&self) -> Option<crate::params::Described> {
        use crate::params::{Described, Params};
        let mut p = Params::new().with("target", self.target.name()).with("cpus", self.fraction);
        if let Some(d) = self.period {
            p = p.with_duration("period", d);
        }
        Some(Described::new("cpu_quota", p))
    }

    fn inject<'a>(&'a self, cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            if !self.fraction.is_finite() || self.fraction <= 0.0 {
                return Err(bad_config(
                    format!("{name}: fraction"),
                    format!("{} is not a positive number", self.fraction),
                    "give e.g. 0.1 for 10 % of one CPU",
                ));
            }
            let cpu = CpuCgroup::of_target(&self.target).map_err(|e| unsupported(&name, e))?;
            let (_, current_period) = cpu.quota_us()?;
            let period = match self.period {
                Some(d) => u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
                None => current_period,
            };
            if !(1000..=1_000_000).contains(&period) {
                return Err(bad_config(
                    format!("{name}: period"),
                    format!("{period} us"),
                    "give a period between 1 ms and 1 s",
                ));
            }
            let quota = (self.fraction * period as f64).round() as u64;
            if quota < MIN_QUOTA_US {
                return Err(bad_config(
                    format!("{name}: fraction"),
                    format!(
                        "{} of a {period} us period is a quota of {quota} us, below the kernel's minimum of {MIN_QUOTA_US} us",
                        self.fraction
                    ),
                    "use a longer period (.period(..)) or a larger fraction",
                ));
            }
            let sandbox = sandbox_of(&cx);
            let dir = cpu.cgroup().dir();
            let mut changes = Vec::new();
            let mut plan: Vec<(&str, String)> = Vec::new();
            if cpu.cgroup().is_v2() {
                plan.push(("cpu.max", format!("{quota} {period}")));
            } else {
                if period != current_period {
                    plan.push(("cpu.cfs_period_us", period.to_string()));
                }
                plan.push(("cpu.cfs_quota_us", quota.to_string()));
            }
            for (file, v) in &plan {
                match set_ctl(&sandbox, &name, &dir, file, v, v) {
                    Ok(c) => changes.push(c),
                    Err(e) => {
                        let _ = undo_all(&sandbox, &changes);
                        return Err(e);
                    }
                }
            }
            let (q, p) = cpu.quota_us()?;
            let pids: Vec<i32> = self.target.scope().members().iter().map(|o| o.pid).collect();
            let confirmation = Confirmation::new(
                &name,
                format!(
                    "quota {} us per {p} us period read back from {} ({})",
                    q.map(|q| q.to_string()).unwrap_or_else(|| "max".into()),
                    dir.display(),
                    plan.iter().map(|(f, v)| format!("{f} = {v}")).collect::<Vec<_>>().join(", ")
                ),
                pids,
            );
            Ok(Box::new(CpuQuotaActive {
                confirmation,
                changes,
                sandbox,
                throttled_before: cpu.throttled().ok(),
                cpu,
                fixture: self.target.name().to_string(),
            }) as Box<dyn ActiveFault>)
        })
    }
}

impl ActiveFault for CpuQuotaActive {
    fn confirmation(&self) -> &Confirmation {
        &self.confirmation
    }

    fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, Error>> {
        Box::pin(async move {
            let name = format!("lift the CPU quota of {}", self.fixture);
            let throttled = match (self.throttled_before, self.cpu.throttled()) {
                (Some((n0, t0)), Ok((n1, t1))) => {
                    format!(
                        "throttled in {} period(s) for {} ms during the fault",
                        n1.saturating_sub(n0),
                        t1.saturating_sub(t0) / 1000
                    )
                }
                _ => "throttling not observable".into(),
            };
            let failed = undo_all(&self.sandbox, &self.changes);
            if !failed.is_empty() {
                return Err(not_injected(&name, failed.join("; "), "teardown retries the undo from the journal"));
            }
            Ok(Confirmation::new(name, format!("{}; {throttled}", restored(&self.changes)), vec![]))
        })
    }
}

/// How many CPUs to saturate.
///
/// ```
/// use chaos_harness::fault::resource::Cpus;
/// assert_eq!(Cpus::from(2), Cpus::Count(2));
/// assert!(Cpus::All.count() >= 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cpus {
    /// One burner per CPU available to the harness.
    All,
    /// This many burners.
    Count(usize),
}

impl Cpus {
    /// The number of burner processes.
    ///
    /// ```
    /// assert_eq!(chaos_harness::fault::resource::Cpus::Count(3).count(), 3);
    /// ```
    pub fn count(self) -> usize {
        match self {
            Cpus::All => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            Cpus::Count(n) => n,
        }
    }
}

impl From<usize> for Cpus {
    fn from(n: usize) -> Self {
        Cpus::Count(n)
    }
}

/// N processes spinning forever: the first forks the others, then says so.
const BURN: &str = r#"
import os, sys
n = int(sys.argv[1])
for _ in range(n - 1):
    if os.fork() == 0:
        break
else:
    print('burning', n, flush=True)
while True:
    pass
"#;

/// CPU time a process has run, in nanoseconds (`/proc/PID/schedstat`, first field).
fn cpu_ns(o: &OwnedPid) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{}/schedstat", o.pid)).ok()?;
    let v = text.split_whitespace().next()?.parse().ok()?;
    // Re-check the identity after reading, against pid reuse.
    (!o.is_gone()).then_some(v)
}

/// CPU saturation by burner processes (see [`Fault::cpu_burn`](crate::fault::Fault::cpu_burn)).
///
/// ```no_run
/// # use chaos_harness::fault::{Fault, Inject};
/// let f = Fault::cpu_burn(2);
/// assert_eq!(f.describe(), "CPU burn: 2 busy-looping processes");
/// ```
#[derive(Debug, Clone)]
pub struct CpuBurn {
    cpus: Cpus,
    start_timeout: Duration,
}

impl CpuBurn {
    pub(crate) fn new(cpus: Cpus) -> Self {
        Self { cpus, start_timeout: Duration::from_secs(10) }
    }

    /// How long the burners may take to start and be seen running (default 10 s).
    ///
    /// ```no_run
    /// let f = chaos_harness::fault::Fault::cpu_burn(4).start_timeout(std::time::Duration::from_secs(20));
    /// ```
    pub fn start_timeout(mut self, d: Duration) -> Self {
        self.start_timeout = d;
        self
    }
}

struct CpuBurnActive {
    confirmation: Confirmation,
    burners: Process,
    pids: Vec<OwnedPid>,
}

impl Inject for CpuBurn {
    fn describe(&self) -> String {
        format!("CPU burn: {} busy-looping processes", self.cpus.count())
    }

    fn described(&self) -> Option<crate::params::Described> {
        use crate::params::{Described, Params};
        let mut p = match self.cpus {
            Cpus::All => Params::new().with("cpus", 0),
            Cpus::Count(n) => Params::new().with("cpus", n),
        };
        if self.start_timeout != Duration::from_secs(10) {
            p = p.with_duration("start_timeout", self.start_timeout);
        }
        Some(Described::new("cpu_burn", p))
    }

    fn inject<'a>(&'a self, cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            let n = self.cpus.count();
            if n == 0 {
                return Err(bad_config(format!("{name}: cpus"), "0 burners", "give at least 1, or Cpus::All"));
            }
            let cmd = Command::new(python3())
                .name("cpu-burn")
                .args(["-c", BURN])
                .arg(n.to_string())
                .ready(Probe::log_line("^burning"))
                .ready_timeout(self.start_timeout)
                .stop_grace(Duration::ZERO);
            let burners = cmd
                .start(sandbox_of(&cx))
                .await
                .map_err(|e| not_injected(&name, e.to_string(), "see the burners' logs"))?;
            // The burners' cgroup is a sibling of every fixture's: ten times the default CPU
            // weight makes them take ~90% of the CPU the fixtures compete for, whatever else
            // loads the machine, so the system under test is slowed but not starved (the
            // cgroup, and with it the setting, goes away with the burners).
            let weight = burners.scope().cgroup("cpu").or_else(|| burners.scope().cgroup("")).map(|cg| {
                let (file, value) = if cg.is_v2() { ("cpu.weight", "1000") } else { ("cpu.shares", "10240") };
                (file, std::fs::write(cg.dir().join(file), value).is_ok())
            });
            // Every burner must be seen running: its CPU time advances.
            let t0 = Instant::now();
            let pids = loop {
                let m = burners.scope().members();
                if m.len() == n {
                    break m;
                }
                if t0.elapsed() > self.start_timeout {
                    let _ = burners.stop().await;
                    return Err(not_injected(
                        &name,
                        format!("{} of {n} burners running", m.len()),
                        "check the process limits (pids.max, ulimit -u)",
                    ));
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            };
            let before: Vec<Option<u64>> = pids.iter().map(cpu_ns).collect();
            let w0 = Instant::now();
            let used = loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let now: Vec<Option<u64>> = pids.iter().map(cpu_ns).collect();
                let advanced = before.iter().zip(&now).all(|(b, n)| matches!((b, n), (Some(b), Some(n)) if n > b));
                if advanced {
                    break before
                        .iter()
                        .zip(&now)
                        .map(|(b, n)| n.unwrap_or(0).saturating_sub(b.unwrap_or(0)))
                        .sum::<u64>();
                }
                if w0.elapsed() > self.start_timeout {
                    let _ = burners.stop().await;
                    return Err(not_injected(
                        &name,
                        "some burners never got CPU time",
                        "check for a CPU quota or freezer on the harness's cgroup",
                    ));
                }
            };
            let wall = w0.elapsed();
            let confirmation = Confirmation::new(
                &name,
                format!(
                    "{n} burners {:?} busy in fixture {}: {:.0} ms of CPU in {:.0} ms; {}",
                    pids.iter().map(|o| o.pid).collect::<Vec<_>>(),
                    burners.name(),
                    used as f64 / 1e6,
                    wall.as_secs_f64() * 1000.0,
                    match weight {
                        Some((file, true)) => format!("{file} set to 10x the default"),
                        Some((file, false)) => format!("{file} could not be raised (default weight)"),
                        None => "no cpu cgroup: default weight".into(),
                    }
                ),
                pids.iter().map(|o| o.pid).collect(),
            );
            Ok(Box::new(CpuBurnActive { confirmation, burners, pids }) as Box<dyn ActiveFault>)
        })
    }
}

impl ActiveFault for CpuBurnActive {
    fn confirmation(&self) -> &Confirmation {
        &self.confirmation
    }

    fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, Error>> {
        Box::pin(async move {
            let this = *self;
            let name = format!("stop the CPU burn ({})", this.burners.name());
            let t0 = Instant::now();
            let stopped = this.burners.stop().await;
            let left: Vec<i32> = this.pids.iter().filter(|o| !o.is_gone()).map(|o| o.pid).collect();
            if let Err(e) = stopped
                && !left.is_empty()
            {
                return Err(not_injected(
                    &name,
                    format!("burners {left:?} survived: {e}"),
                    "teardown kills them from the journal",
                ));
            }
            if !left.is_empty() {
                return Err(not_injected(
                    &name,
                    format!("burners {left:?} survived"),
                    "teardown kills them from the journal",
                ));
            }
            let pids: Vec<i32> = this.pids.iter().map(|o| o.pid).collect();
            Ok(Confirmation::new(
                name,
                format!(
                    "burners {pids:?} killed and gone {:.1} ms after the clear",
                    t0.elapsed().as_secs_f64() * 1000.0
                ),
                pids,
            ))
        })
    }
}
