//! Memory faults: a limit on the fixture's memory cgroup, pressure from a balloon inside it,
//! and OOM kills observed while they are active.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::cgroups::MemoryCgroup;
use super::{
    Journaled, OOM_TRACING_TARGET, bad_config, bytes, not_injected, read_ctl, sandbox_of, set_ctl, undo_all,
    unsupported,
};
use crate::Error;
use crate::fault::{ActiveFault, Confirmation, FaultContext, Inject};
use crate::fixture::{BoxFuture, Command, Fixture, Probe, Process, Target, python3};
use crate::sandbox::cgroup::CgroupRef;
use crate::sandbox::{Effect, OwnedPid, Sandbox, cgroup, procfs};

/// Polls a memory cgroup's OOM-kill counter while a memory fault is active and logs every new
/// kill as a tracing event (target [`OOM_TRACING_TARGET`]).
struct OomWatch {
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
    mem: MemoryCgroup,
    baseline: Option<u64>,
    last: Arc<AtomicU64>,
}

/// How often the OOM watcher reads the counter.
const OOM_POLL: Duration = Duration::from_millis(50);

impl OomWatch {
    fn start(mem: MemoryCgroup, fixture: String, fault: String) -> Self {
        let baseline = mem.oom_kills().ok();
        let stop = Arc::new(AtomicBool::new(false));
        let last = Arc::new(AtomicU64::new(baseline.unwrap_or(0)));
        let task = baseline.map(|b| {
            let (stop, last, mem) = (stop.clone(), last.clone(), mem.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    tokio::time::sleep(OOM_POLL).await;
                    let Ok(now) = mem.oom_kills() else { return };
                    let before = last.swap(now, Ordering::SeqCst);
                    if now > before {
                        tracing::warn!(
                            target: OOM_TRACING_TARGET,
                            fixture = %fixture,
                            cgroup = %mem.dir().display(),
                            new = now - before,
                            since_injection = now - b,
                            "OOM kill in the memory cgroup of fixture {fixture} during {fault}"
                        );
                    }
                }
            })
        });
        Self { stop, task, mem, baseline, last }
    }

    /// Stops watching; the kills since the start, or `None` when the counter is unreadable.
    async fn finish(mut self) -> Option<u64> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        let now = self.mem.oom_kills().ok().unwrap_or_else(|| self.last.load(Ordering::SeqCst));
        self.baseline.map(|b| now.saturating_sub(b))
    }

    fn describe(kills: Option<u64>) -> String {
        match kills {
            Some(n) => format!("{n} OOM kill(s) in the cgroup during the fault"),
            None => "OOM kills not observable (no oom_kill counter on this kernel)".into(),
        }
    }
}

impl Drop for OomWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Limit the fixture's memory cgroup (see [`Fault::memory_limit`](crate::fault::Fault::memory_limit)).
///
/// ```no_run
/// # use chaos_harness::fault::{Fault, resource::MIB};
/// # fn f(p: &chaos_harness::fixture::Process) {
/// let f = Fault::memory_limit(p, 100 * MIB);
/// assert!(f.describe().contains("100 MiB"));
/// # }
/// # use chaos_harness::fault::Inject;
/// ```
#[derive(Debug, Clone)]
pub struct MemoryLimit {
    target: Target,
    bytes: u64,
    swap: bool,
}

impl MemoryLimit {
    pub(crate) fn new(target: Target, bytes: u64) -> Self {
        Self { target, bytes, swap: true }
    }

    /// Whether swap is limited too (default `true`): v1 `memory.memsw.limit_in_bytes` set to
    /// the same value, v2 `memory.swap.max` set to 0. Ignored when the kernel has no such
    /// file.
    ///
    /// ```no_run
    /// # use chaos_harness::fault::{Fault, resource::MIB};
    /// # fn f(p: &chaos_harness::fixture::Process) {
    /// let f = Fault::memory_limit(p, 64 * MIB).swap(false);
    /// # }
    /// ```
    pub fn swap(mut self, limit_swap_too: bool) -> Self {
        self.swap = limit_swap_too;
        self
    }
}

struct MemoryLimitActive {
    confirmation: Confirmation,
    changes: Vec<Journaled>,
    sandbox: Arc<Sandbox>,
    watch: OomWatch,
    fixture: String,
}

impl Inject for MemoryLimit {
    fn describe(&self) -> String {
        format!("memory limit {} on {}", bytes(self.bytes), self.target.name())
    }

    fn described(&self) -> Option<crate::params::Described> {
        use crate::params::{Described, Params};
        let p = Params::new().with("target", self.target.name()).with("bytes", self.bytes);
        Some(Described::new("memory_limit", if self.swap { p } else { p.with("swap", false) }))
    }

    fn inject<'a>(&'a self, cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            let page = procfs::page_size();
            let limit = self.bytes / page * page;
            if limit == 0 {
                return Err(bad_config(
                    format!("{name}: bytes"),
                    format!("{} is less than one page ({page} bytes)", self.bytes),
                    "give a limit of at least one page (realistically several MiB)",
                ));
            }
            let mem = MemoryCgroup::of_target(&self.target).map_err(|e| unsupported(&name, e))?;
            let sandbox = sandbox_of(&cx);
            let dir = mem.dir();
            let value = limit.to_string();
            // v1 requires memory <= memsw at every moment: when lowering, the memory limit goes
            // first; when raising, memsw first. Undo runs in reverse, which keeps the order right.
            let mut plan: Vec<(&str, String)> = vec![(mem.limit_file(), value.clone())];
            if self.swap
                && let Some(swap) = mem.swap_file()
            {
                if mem.is_v2() {
                    plan.push((swap, "0".into()));
                } else {
                    let current: u64 = read_ctl(&dir.join(swap))?.parse().unwrap_or(u64::MAX);
                    if limit > current {
                        plan.insert(0, (swap, value.clone()));
                    } else {
                        plan.push((swap, value.clone()));
                    }
                }
            }
            let watch = OomWatch::start(mem.clone(), self.target.name().to_string(), name.clone());
            let mut changes = Vec::new();
            for (file, v) in &plan {
                match set_ctl(&sandbox, &name, &dir, file, v, v) {
                    Ok(c) => changes.push(c),
                    Err(e) => {
                        let _ = undo_all(&sandbox, &changes);
                        return Err(e);
                    }
                }
            }
            let read: Vec<String> =
                plan.iter().map(|(f, _)| format!("{f} = {}", read_ctl(&dir.join(f)).unwrap_or_default())).collect();
            let usage = mem.usage_bytes().map(bytes).unwrap_or_else(|e| e.to_string());
            let pids: Vec<i32> = self.target.scope().members().iter().map(|o| o.pid).collect();
            let confirmation = Confirmation::new(
                &name,
                format!("{} read back from {} (usage now {usage})", read.join(", "), dir.display()),
                pids,
            );
            Ok(Box::new(MemoryLimitActive {
                confirmation,
                changes,
                sandbox,
                watch,
                fixture: self.target.name().to_string(),
            }) as Box<dyn ActiveFault>)
        })
    }
}

/// Describes restored cgroup files: `memory.max restored to max (read back max)`.
pub(crate) fn restored(changes: &[Journaled]) -> String {
    changes
        .iter()
        .rev()
        .filter_map(|c| match &c.effect {
            Effect::CgroupLimit { dir, file, previous } => {
                let now = read_ctl(&dir.join(file)).unwrap_or_else(|_| "(cgroup gone)".into());
                Some(format!("{file} restored to {previous} (read back {now})"))
            }
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl ActiveFault for MemoryLimitActive {
    fn confirmation(&self) -> &Confirmation {
        &self.confirmation
    }

    fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, Error>> {
        Box::pin(async move {
            let name = format!("lift the memory limit of {}", self.fixture);
            let kills = self.watch.finish().await;
            let failed = undo_all(&self.sandbox, &self.changes);
            if !failed.is_empty() {
                return Err(not_injected(&name, failed.join("; "), "teardown retries the undo from the journal"));
            }
            Ok(Confirmation::new(name, format!("{}; {}", restored(&self.changes), OomWatch::describe(kills)), vec![]))
        })
    }
}

/// The balloon: waits until the harness has moved it into the target cgroup, then allocates
/// and touches N bytes in 1 MiB chunks and holds them. Arguments: bytes, the cgroup path it
/// must be in, the controller (`memory`, or empty for cgroup2), its oom_score_adj.
const BALLOON: &str = r#"
import signal, sys, time
size, want, ctrl, adj = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
try:
    with open('/proc/self/oom_score_adj', 'w') as f:
        f.write(adj)
except OSError as e:
    print('balloon could not set oom_score_adj:', e, flush=True)
def where():
    with open('/proc/self/cgroup') as f:
        for line in f:
            _, ctrls, path = line.rstrip('\n').split(':', 2)
            if (ctrl == '' and ctrls == '') or (ctrl != '' and ctrl in ctrls.split(',')):
                return path
print('balloon waiting', flush=True)
deadline = time.monotonic() + 30
while where() != want:
    if time.monotonic() > deadline:
        print('balloon gave up waiting to be moved into', want, flush=True)
        sys.exit(3)
    time.sleep(0.002)
chunks, left = [], size
while left > 0:
    n = min(1 << 20, left)
    chunks.append(b'\x01' * n)
    left -= n
print('balloon inflated', size, flush=True)
while True:
    signal.pause()
"#;

/// Pressure on the fixture's memory cgroup from a balloon process (see
/// [`Fault::memory_pressure`](crate::fault::Fault::memory_pressure)).
///
/// ```no_run
/// # use chaos_harness::fault::{Fault, resource::MIB};
/// # fn f(p: &chaos_harness::fixture::Process) {
/// let f = Fault::memory_pressure(p, 256 * MIB).inflate_timeout(std::time::Duration::from_secs(20));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MemoryPressure {
    target: Target,
    bytes: u64,
    oom_score_adj: Option<i32>,
    inflate_timeout: Duration,
}

/// The balloon's `oom_score_adj` unless one is asked for.
const BALLOON_OOM_SCORE_ADJ: i32 = -999;

impl MemoryPressure {
    pub(crate) fn new(target: Target, bytes: u64) -> Self {
        Self { target, bytes, oom_score_adj: None, inflate_timeout: Duration::from_secs(10) }
    }

    /// The balloon's `oom_score_adj` (-1000..=1000), required: the fault is not injected when
    /// it cannot be set (a negative value needs `CAP_SYS_RESOURCE`). Without this call the
    /// balloon *tries* -999 (killed only as a last resort, so the fixture's own allocations
    /// are the OOM killer's victims) and the confirmation says when it could not; 0 makes it
    /// an ordinary candidate, which usually means the balloon itself is killed first.
    ///
    /// ```no_run
    /// # use chaos_harness::fault::{Fault, resource::MIB};
    /// # fn f(p: &chaos_harness::fixture::Process) {
    /// let f = Fault::memory_pressure(p, 64 * MIB).oom_score_adj(0);
    /// # }
    /// ```
    pub fn oom_score_adj(mut self, adj: i32) -> Self {
        self.oom_score_adj = Some(adj);
        self
    }

    /// How long the balloon may take to start and allocate (default 10 s).
    ///
    /// ```no_run
    /// # use chaos_harness::fault::{Fault, resource::GIB};
    /// # fn f(p: &chaos_harness::fixture::Process) {
    /// let f = Fault::memory_pressure(p, 4 * GIB).inflate_timeout(std::time::Duration::from_secs(30));
    /// # }
    /// ```
    pub fn inflate_timeout(mut self, d: Duration) -> Self {
        self.inflate_timeout = d;
        self
    }
}

struct MemoryPressureActive {
    confirmation: Confirmation,
    balloon: Process,
    owned: OwnedPid,
    child: Option<Journaled>,
    sandbox: Arc<Sandbox>,
    mem: MemoryCgroup,
    watch: OomWatch,
    fixture: String,
}

/// Stops a balloon and the v2 child cgroup it lives in (if any).
async fn deflate(sandbox: &Sandbox, balloon: Process, child: Option<&Journaled>) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(c) = child
        && let Err(e) = c.undo(sandbox)
    {
        problems.push(format!("{}: {e}", c.effect));
    }
    if let Err(e) = balloon.stop().await {
        problems.push(e.to_string());
    }
    problems
}

impl Inject for MemoryPressure {
    fn describe(&self) -> String {
        format!("memory pressure: a {} balloon in the memory cgroup of {}", bytes(self.bytes), self.target.name())
    }

    fn described(&self) -> Option<crate::params::Described> {
        use crate::params::{Described, Params};
        let mut p = Params::new().with("target", self.target.name()).with("bytes", self.bytes);
        if let Some(adj) = self.oom_score_adj {
            p = p.with("oom_score_adj", adj);
        }
        if self.inflate_timeout != Duration::from_secs(10) {
            p = p.with_duration("inflate_timeout", self.inflate_timeout);
        }
        Some(Described::new("memory_pressure", p))
    }

    fn inject<'a>(&'a self, cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            let adj = self.oom_score_adj.unwrap_or(BALLOON_OOM_SCORE_ADJ);
            if self.bytes == 0 || !(-1000..=1000).contains(&adj) {
                return Err(bad_config(
                    format!("{name}: bytes / oom_score_adj"),
                    format!("bytes {} and oom_score_adj {adj}", self.bytes),
                    "give bytes > 0 and an oom_score_adj in -1000..=1000",
                ));
            }
            let mem = MemoryCgroup::of_target(&self.target).map_err(|e| unsupported(&name, e))?;
            let sandbox = sandbox_of(&cx);
            // cgroup v1: the balloon joins the fixture's memory cgroup itself and stays owned
            // through its own cgroups in the other hierarchies. cgroup2 has one hierarchy, so it
            // goes into a child cgroup of the fixture's (charged to the fixture's limit,
            // journaled, removed by the undo).
            let child = mem.is_v2().then(|| CgroupRef {
                controller: String::new(),
                mount: mem.cgroup().mount.clone(),
                rel: format!("{}/chaos-balloon", mem.cgroup().rel),
            });
            let home = child.clone().unwrap_or_else(|| mem.cgroup().clone());
            let watch = OomWatch::start(mem.clone(), self.target.name().to_string(), name.clone());
            let cmd = Command::new(python3())
                .name(format!("balloon-{}", self.target.name()))
                .args(["-c", BALLOON])
                .arg(self.bytes.to_string())
                .arg(&home.rel)
                .arg(&home.controller)
                .arg(adj.to_string())
                .ready(Probe::log_line("^balloon waiting"))
                .stop_grace(Duration::ZERO);
            let balloon = cmd
                .start(sandbox.clone())
                .await
                .map_err(|e| not_injected(&name, e.to_string(), "see the balloon's logs"))?;
            let fail = |balloon: Process, child: Option<Journaled>, cause: String, fix: &'static str| {
                let sandbox = sandbox.clone();
                let name = name.clone();
                async move {
                    let tail = balloon.log_tail();
                    let mut problems = deflate(&sandbox, balloon, child.as_ref()).await;
                    problems.insert(0, cause);
                    Err::<Box<dyn ActiveFault>, Error>(not_injected(
                        &name,
                        format!("{}\n{tail}", problems.join("; ")),
                        fix,
                    ))
                }
            };
            let owned = match balloon.scope().main().filter(|o| !o.is_gone()) {
                Some(o) => o,
                None => {
                    return fail(balloon, None, "the balloon exited at once".into(), "see the balloon's logs").await;
                }
            };
            let mut journaled_child = None;
            if let Some(c) = &child {
                let made = sandbox.record(Effect::Cgroup { cgroup: c.clone() }, || {
                    std::fs::create_dir(c.dir()).map_err(|source| Error::Io {
                        what: "creating the balloon's cgroup".into(),
                        path: c.dir(),
                        source,
                        fix: "check that the fixture's cgroup still exists".into(),
                    })
                });
                match made {
                    Ok(((), seq)) => {
                        journaled_child = Some(Journaled { effect: Effect::Cgroup { cgroup: c.clone() }, seq })
                    }
                    Err(e) => return fail(balloon, None, e.to_string(), "check the cgroup2 mount").await,
                }
            }
            // Moving the balloon is undone by killing it, which its own `process` journal entry
            // (and the fixture cgroup's undo) already guarantee.
            let procs = home.dir().join("cgroup.procs");
            if let Err(e) = cgroup::write_ctl(&procs, &owned.pid.to_string()) {
                return fail(
                    balloon,
                    journaled_child,
                    format!("moving balloon pid {} into {}: {e}", owned.pid, procs.display()),
                    "run as root",
                )
                .await;
            }
            let t0 = Instant::now();
            loop {
                if std::fs::read_to_string(balloon.stdout_log()).is_ok_and(|l| l.contains("balloon inflated")) {
                    break;
                }
                if let Some(exit) = balloon.exit_status() {
                    let limit = mem.limit_bytes().ok().flatten().map(bytes).unwrap_or_else(|| "none".into());
                    return fail(
                        balloon,
                        journaled_child,
                        format!("the balloon {exit} while inflating (cgroup limit {limit}, usage {})", mem.usage_bytes().map(bytes).unwrap_or_default()),
                        "the fixture's memory cgroup has less room than the balloon's size: use a smaller balloon or a larger limit",
                    )
                    .await;
                }
                if t0.elapsed() > self.inflate_timeout {
                    return fail(
                        balloon,
                        journaled_child,
                        format!("the balloon did not finish allocating within {:?}", self.inflate_timeout),
                        "raise inflate_timeout, or check for memory reclaim stalls (swap?)",
                    )
                    .await;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let in_cgroup = procfs::cgroup_path(owned.pid, &home.controller);
            let rss = owned.stat().map(|s| s.rss_bytes).unwrap_or(0);
            if in_cgroup.as_deref() != Some(home.rel.as_str()) || rss < self.bytes {
                return fail(
                    balloon,
                    journaled_child,
                    format!(
                        "balloon pid {} is in {in_cgroup:?} with RSS {} (want {} in {})",
                        owned.pid,
                        bytes(rss),
                        bytes(self.bytes),
                        home.rel
                    ),
                    "check that the memory is not swapped out (disable swap for the fixture's cgroup)",
                )
                .await;
            }
            let actual_adj: Option<i32> = std::fs::read_to_string(format!("/proc/{}/oom_score_adj", owned.pid))
                .ok()
                .and_then(|s| s.trim().parse().ok());
            let adj_note = match (self.oom_score_adj, actual_adj) {
                (_, Some(a)) if a == adj => format!("oom_score_adj {a}"),
                (Some(_), a) => {
                    return fail(
                        balloon,
                        journaled_child,
                        format!("the balloon's oom_score_adj reads {a:?}, not {adj}"),
                        "a negative oom_score_adj needs CAP_SYS_RESOURCE: give the harness that capability, or leave oom_score_adj unset",
                    )
                    .await;
                }
                (None, a) => format!(
                    "oom_score_adj stays {} (lowering it needs CAP_SYS_RESOURCE): the balloon is an ordinary OOM candidate",
                    a.map(|a| a.to_string()).unwrap_or_else(|| "unknown".into())
                ),
            };
            let usage = mem.usage_bytes().map(bytes).unwrap_or_default();
            let confirmation = Confirmation::new(
                &name,
                format!(
                    "balloon pid {} holds RSS {} in memory cgroup {} (cgroup usage now {usage}); {adj_note}",
                    owned.pid,
                    bytes(rss),
                    home.dir().display()
                ),
                vec![owned.pid],
            );
            Ok(Box::new(MemoryPressureActive {
                confirmation,
                balloon,
                owned,
                child: journaled_child,
                sandbox,
                mem,
                watch,
                fixture: self.target.name().to_string(),
            }) as Box<dyn ActiveFault>)
        })
    }
}

impl ActiveFault for MemoryPressureActive {
    fn confirmation(&self) -> &Confirmation {
        &self.confirmation
    }

    fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, Error>> {
        Box::pin(async move {
            let this = *self;
            let name = format!("deflate the balloon in {}", this.fixture);
            let already = this.balloon.exit_status();
            let problems = deflate(&this.sandbox, this.balloon, this.child.as_ref()).await;
            let kills = this.watch.finish().await;
            if !problems.is_empty() || !this.owned.is_gone() {
                return Err(not_injected(
                    &name,
                    format!("balloon pid {} gone: {}; {}", this.owned.pid, this.owned.is_gone(), problems.join("; ")),
                    "teardown kills it from the journal",
                ));
            }
            let usage = this.mem.usage_bytes().map(bytes).unwrap_or_else(|_| "(cgroup gone)".into());
            let how = match already {
                Some(e) => format!("balloon pid {} had already ended ({e})", this.owned.pid),
                None => format!("balloon pid {} killed and gone", this.owned.pid),
            };
            Ok(Confirmation::new(
                name,
                format!("{how}; cgroup usage now {usage}; {}", OomWatch::describe(kills)),
                vec![this.owned.pid],
            ))
        })
    }
}
