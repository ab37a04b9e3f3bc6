//! Resource exhaustion faults (tag `resources`): each fault proven in force against a real
//! program (read back, and an allocation, fork, open or write that fails because of it) and
//! its undo proven to restore the exact prior state (read back). Every test ends by tearing
//! its sandbox down and checking that no mount, cgroup, fill file, temp dir or process is left.
//!
//! The program under test is `fixtures/programs/hog.py`, which runs commands sent through a
//! named pipe (`alloc`, `fork`, `open`, `write`, `spawn`) and reports what the kernel said.

use crate::util::programs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, ensure};
use chaos_harness::fault::resource::{
    CpuCgroup, Cpus, KIB, MIB, MemoryCgroup, PidsCgroup, disk_free, has_cap_sys_resource, mounts_at, read_nofile,
};
use chaos_harness::fault::{ActiveFault, FaultContext, Inject};
use chaos_harness::fixture::{Process, python3};
use chaos_harness::prelude::*;
use chaos_harness::sandbox::{OwnedPid, cgroup, procfs};

/// A running `hog.py` and the pipe that feeds it commands.
struct Hog {
    p: Process,
    fifo: PathBuf,
    next: u32,
}

async fn hog(cx: &mut Chaos, name: &str) -> anyhow::Result<Hog> {
    let fifo = cx.sandbox().temp_dir().join(format!("{name}.fifo"));
    let p = cx
        .start(
            Command::new(python3())
                .name(name)
                .arg(programs().join("hog.py"))
                .arg(&fifo)
                .ready(Probe::log_line("^hog ready"))
                .stop_grace(Duration::from_millis(200)),
        )
        .await?;
    Ok(Hog { p, fifo, next: 0 })
}

/// Sends `ID CMD` to a hog and waits for its `ID RESULT` line.
async fn ask(p: &Process, fifo: &Path, id: &str, cmd: &str) -> anyhow::Result<String> {
    {
        // The hog holds the pipe open read-write, so this open never blocks.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(fifo)
            .with_context(|| format!("opening {}", fifo.display()))?;
        writeln!(f, "{id} {cmd}")?;
    }
    let prefix = format!("{id} ");
    let t0 = Instant::now();
    loop {
        let log = std::fs::read_to_string(p.stdout_log())?;
        if let Some(l) = log.lines().find(|l| l.starts_with(&prefix)) {
            let answer = l[prefix.len()..].to_string();
            tracing::info!("hog: {cmd} -> {answer}");
            return Ok(answer);
        }
        ensure!(
            p.exit_status().is_none(),
            "the hog ended ({:?}) before answering {cmd:?}\n{}",
            p.exit_status(),
            p.log_tail()
        );
        ensure!(t0.elapsed() < Duration::from_secs(30), "no answer to {cmd:?} in 30 s\n{}", p.log_tail());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

impl Hog {
    async fn run(&mut self, cmd: &str) -> anyhow::Result<String> {
        self.next += 1;
        ask(&self.p, &self.fifo, &format!("c{}", self.next), cmd).await
    }

    fn main(&self) -> anyhow::Result<OwnedPid> {
        self.p.scope().main().context("the hog has a main process")
    }
}

/// `key=value` from a hog answer such as `ok=12 err=EMFILE`.
fn field<'a>(answer: &'a str, key: &str) -> anyhow::Result<&'a str> {
    answer
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .with_context(|| format!("no {key}= in {answer:?}"))
}

fn count(answer: &str) -> anyhow::Result<u64> {
    Ok(field(answer, "ok")?.parse()?)
}

/// Injects a fault outside a scenario, to check its effect step by step.
async fn inject(cx: &mut Chaos, f: impl Inject) -> anyhow::Result<Box<dyn ActiveFault>> {
    let sandbox = cx.sandbox().clone();
    let active = f.inject(FaultContext { sandbox: &sandbox, rng: cx.rng() }).await?;
    tracing::info!("confirmed {}", active.confirmation());
    Ok(active)
}

async fn clear(active: Box<dyn ActiveFault>) -> anyhow::Result<String> {
    let c = active.clear().await?;
    tracing::info!("cleared {c}");
    Ok(c.detail)
}

/// Tears the sandbox down (as the runner will again, idempotently) and checks that nothing of
/// this test is left: no mount under its temp dir, no cgroup, no temp dir, no process.
fn leftovers(cx: &Chaos) -> anyhow::Result<Vec<String>> {
    let report = cx.sandbox().teardown()?;
    tracing::info!("{report}");
    let run = cx.sandbox().run_id();
    let temp = cx.sandbox().temp_dir();
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    let ours: Vec<&str> = mounts.lines().filter(|l| l.contains(&*temp.to_string_lossy())).collect();
    ensure!(ours.is_empty(), "mounts left: {ours:?}");
    let cgroups: Vec<PathBuf> = cgroup::hierarchies()
        .iter()
        .filter_map(|h| std::fs::read_dir(h.mount.join(cgroup::PARENT)).ok())
        .flat_map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(run)).map(|e| e.path()))
        .collect();
    ensure!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
    ensure!(!temp.exists(), "temp dir {} left", temp.display());
    ensure!(procfs::marked_pids(run).is_empty(), "processes left: {:?}", procfs::marked_pids(run));
    Ok(report.undone)
}

fn read(dir: &Path, file: &str) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(dir.join(file)).with_context(|| format!("reading {file}"))?.trim().to_string())
}

#[chaos_test(tags = ["resources"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn memory_limit_oom_kills_an_allocation_past_it_and_undo_restores_it(cx: &mut Chaos) -> ChaosResult {
    let mut h = hog(cx, "hog").await?;
    let mem = MemoryCgroup::of(&h.p)?;
    let mut files = vec![mem.limit_file()];
    files.extend(mem.swap_file());
    let before: Vec<String> = files.iter().map(|f| read(&mem.dir(), f)).collect::<Result<_, _>>()?;
    let oom0 = mem.oom_kills()?;

    let active = inject(cx, Fault::memory_limit(&h.p, 64 * MIB)).await?;
    ensure!(mem.limit_bytes()? == Some(64 * MIB), "limit read back");
    for f in &files {
        ensure!(read(&mem.dir(), f)? == (64 * MIB).to_string(), "{f} read back");
    }
    ensure!(h.run("alloc 8").await? == "exited 0", "an allocation under the limit succeeds");
    ensure!(h.run("alloc 256").await? == "killed 9", "an allocation past the limit is OOM-killed");
    ensure!(mem.oom_kills()? > oom0, "the OOM kill is counted");
    ensure!(h.p.exit_status().is_none(), "the hog itself survives");

    let detail = clear(active).await?;
    ensure!(detail.contains("1 OOM kill(s)"), "{detail}");
    let after: Vec<String> = files.iter().map(|f| read(&mem.dir(), f)).collect::<Result<_, _>>()?;
    ensure!(after == before, "exact prior values: {after:?} vs {before:?}");
    ensure!(h.run("alloc 256").await? == "exited 0", "without the limit the same allocation succeeds");
    drop(h);
    leftovers(cx)?;
    Ok(())
}

#[chaos_test(tags = ["resources"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn oom_kill_is_judged_in_a_scenario_and_reported_when_cleared(cx: &mut Chaos) -> ChaosResult {
    let h = hog(cx, "hog").await?;
    let mem = MemoryCgroup::of(&h.p)?;
    // Allocate once the limit is in force (the scenario injects it).
    let (p, fifo, mem2) = (h.p.clone(), h.fifo.clone(), mem.clone());
    let trigger = tokio::spawn(async move {
        let t0 = Instant::now();
        while mem2.limit_bytes()? != Some(48 * MIB) {
            ensure!(t0.elapsed() < Duration::from_secs(10), "the limit never appeared");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        ask(&p, &fifo, "x1", "alloc 256").await
    });
    let out = cx
        .scenario("allocation past a memory limit")
        .inject(Fault::memory_limit(&h.p, 48 * MIB))
        .expect(Criterion::oom_kills(&h.p).at_least(1).within(Duration::from_secs(20)))
        .clear_faults()
        .expect(Criterion::oom_kills(&h.p).at_most(1))
        .run()
        .await?;
    tracing::info!("{out}");
    ensure!(trigger.await?? == "killed 9");
    let text = out.to_string();
    ensure!(
        text.contains("memory.limit_in_bytes = 50331648") || text.contains("memory.max = 50331648"),
        "limit read back: {text}"
    );
    ensure!(text.contains("1 OOM kill(s) in the cgroup during the fault") && text.contains("restored to"), "{text}");
    drop(h);
    leftovers(cx)?;
    Ok(())
}

#[chaos_test(tags = ["resources"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn memory_pressure_balloon_squeezes_the_fixture_and_deflates(cx: &mut Chaos) -> ChaosResult {
    let mut h = hog(cx, "hog").await?;
    let mem = MemoryCgroup::of(&h.p)?;
    let limit = inject(cx, Fault::memory_limit(&h.p, 160 * MIB)).await?;
    ensure!(h.run("alloc 128").await? == "exited 0", "128 MiB fit under the limit without the balloon");

    // 48 MiB: smaller than the allocation, so the allocation is the OOM killer's choice even
    // where the balloon's oom_score_adj cannot be lowered (no CAP_SYS_RESOURCE).
    let balloon = inject(cx, Fault::memory_pressure(&h.p, 48 * MIB)).await?;
    let bpid = *balloon.confirmation().pids.first().context("balloon pid")?;
    let bowned = cx.sandbox().owns(bpid)?;
    ensure!(bowned.fixture != h.p.name(), "the balloon is its own fixture, not one of the hog's processes");
    ensure!(
        procfs::cgroup_path(bpid, if mem.is_v2() { "" } else { "memory" })
            .is_some_and(|p| p.starts_with(&mem.cgroup().rel)),
        "the balloon is charged to the hog's memory cgroup"
    );
    ensure!(mem.usage_bytes()? >= 48 * MIB, "usage includes the balloon");
    ensure!(h.run("alloc 128").await? == "killed 9", "with the balloon the same allocation is OOM-killed");
    ensure!(!bowned.is_gone(), "the balloon, not a victim, is still there");

    let detail = clear(balloon).await?;
    ensure!(detail.contains("killed and gone") && detail.contains("1 OOM kill(s)"), "{detail}");
    ensure!(bowned.is_gone());
    ensure!(h.run("alloc 128").await? == "exited 0", "room again once the balloon is gone");
    clear(limit).await?;
    ensure!(mem.limit_bytes()?.is_none(), "limit lifted");
    drop(h);
    leftovers(cx)?;
    Ok(())
}

/// CPU time per wall time of one process over `window` (from `/proc/PID/schedstat`).
async fn cpu_rate(o: &OwnedPid, window: Duration) -> anyhow::Result<f64> {
    let read = || -> anyhow::Result<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/schedstat", o.pid))?;
        Ok(s.split_whitespace().next().context("schedstat")?.parse()?)
    };
    let (c0, t0) = (read()?, Instant::now());
    tokio::time::sleep(window).await;
    let (c1, wall) = (read()?, t0.elapsed());
    Ok((c1 - c0) as f64 / wall.as_nanos() as f64)
}

#[chaos_test(tags = ["resources"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn cpu_quota_throttles_a_busy_loop_to_its_share(cx: &mut Chaos) -> ChaosResult {
    let spin = cx
        .start(Command::new(python3()).name("spin").args(["-c", "while True: pass"]).stop_grace(Duration::ZERO))
        .await?;
    let o = spin.scope().main().context("main")?;
    let cpu = CpuCgroup::of(&spin)?;
    let before = cpu.quota_us()?;

    let free = cpu_rate(&o, Duration::from_millis(800)).await?;
    let active = inject(cx, Fault::cpu_quota(&spin, 0.1)).await?;
    ensure!(cpu.quota_us()? == (Some(before.1 / 10), before.1), "quota read back: {:?}", cpu.quota_us()?);
    let (n0, _) = cpu.throttled()?;
    let slow = cpu_rate(&o, Duration::from_millis(800)).await?;
    let (n1, _) = cpu.throttled()?;
    tracing::info!("busy loop: {free:.3} CPU unthrottled, {slow:.3} CPU under a 0.1 quota (ratio {:.2})", slow / free);
    // The behaviour under test: progress continues at about the quota, far below the free run.
    ensure!(n1 > n0, "the cgroup was throttled");
    ensure!(slow > 0.0, "the loop still makes progress");
    ensure!(slow <= 0.2, "at most ~0.1 CPU (generous): {slow:.3}");
    ensure!(slow / free < 0.6, "much slower than unthrottled: {slow:.3} vs {free:.3}");

    let detail = clear(active).await?;
    ensure!(detail.contains("throttled in"), "{detail}");
    ensure!(cpu.quota_us()? == before, "exact prior quota/period: {:?} vs {before:?}", cpu.quota_us()?);
    drop(spin);
    leftovers(cx)?;
    Ok(())
}

#[chaos_test(tags = ["resources"], timeout = "60s", requires = ["cgroups", "python3"], serial)]
async fn cpu_burn_runs_in_its_own_fixture_and_stops_at_once(cx: &mut Chaos) -> ChaosResult {
    let n = Cpus::All.count();
    let active = inject(cx, Fault::cpu_burn(Cpus::All)).await?;
    let pids = active.confirmation().pids.clone();
    ensure!(pids.len() == n, "{n} burners: {pids:?}");
    let owned: Vec<OwnedPid> = pids.iter().map(|p| cx.sandbox().owns(*p)).collect::<Result<_, _>>()?;
    ensure!(owned.iter().all(|o| o.fixture == "cpu-burn"), "owned by the sandbox's cpu-burn fixture: {owned:?}");
    for o in &owned {
        ensure!(o.stat().is_some_and(|s| s.state == 'R' || s.state == 'S'), "{o} alive");
    }
    let detail = clear(active).await?;
    // Checked right after clear returns: no grace period, nothing left running.
    ensure!(owned.iter().all(|o| o.is_gone()), "burners gone at once: {detail}");
    leftovers(cx)?;
    Ok(())
}

#[chaos_test(tags = ["resources"], timeout = "60s", requires = ["tmpfs", "python3"])]
async fn disk_tmpfs_makes_writes_fail_with_enospc_and_unmount_restores_the_dir(cx: &mut Chaos) -> ChaosResult {
    let data = cx.sandbox().temp_dir().join("data");
    std::fs::create_dir(&data)?;
    std::fs::write(data.join("keep.txt"), "original")?;
    let mut h = hog(cx, "hog").await?;

    let active = inject(cx, Fault::disk_tmpfs(&data, MIB)).await?;
    let m = mounts_at(&data);
    let top = m.last().context("mounted")?;
    ensure!(top.fstype == "tmpfs" && top.options.contains("size=1024k"), "{m:?}");
    ensure!(!data.join("keep.txt").exists(), "the original contents are hidden");
    let big = data.join("big");
    let out = h.run(&format!("write {} {} rm", big.display(), 2 * MIB)).await?;
    ensure!(field(&out, "err")? == "ENOSPC", "{out}");
    ensure!(count(&out)? > 0 && count(&out)? <= MIB, "{out}");

    let detail = clear(active).await?;
    ensure!(mounts_at(&data).is_empty(), "unmounted: {detail}");
    ensure!(std::fs::read_to_string(data.join("keep.txt"))? == "original", "the original contents are back, unchanged");
    ensure!(!big.exists());
    let out = h.run(&format!("write {} {} rm", big.display(), 2 * MIB)).await?;
    ensure!(field(&out, "err")? == "None", "the same write succeeds without the tmpfs: {out}");
    drop(h);
    leftovers(cx)?;
    Ok(())
}

#[chaos_test(tags = ["resources"], timeout = "60s", requires = ["tmpfs", "python3"])]
async fn disk_fill_leaves_the_asked_free_space_and_removal_gives_it_back(cx: &mut Chaos) -> ChaosResult {
    let data = cx.sandbox().temp_dir().join("data");
    std::fs::create_dir(&data)?;
    let mut h = hog(cx, "hog").await?;
    // Fill a small tmpfs, never the real disk.
    let tmpfs = inject(cx, Fault::disk_tmpfs(&data, 8 * MIB)).await?;
    let free0 = disk_free(&data)?;

    let fill = inject(cx, Fault::disk_fill(&data, 256 * KIB)).await?;
    let free = disk_free(&data)?;
    ensure!(free <= 256 * KIB, "{free} bytes free");
    let fill_files: Vec<PathBuf> = std::fs::read_dir(&data)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("chaos-fill-")))
        .collect();
    ensure!(fill_files.len() == 1, "{fill_files:?}");
    let out = h.run(&format!("write {}/x {} rm", data.display(), MIB)).await?;
    ensure!(field(&out, "err")? == "ENOSPC" && count(&out)? <= 256 * KIB, "{out}");

    let detail = clear(fill).await?;
    ensure!(!fill_files[0].exists(), "fill file removed: {detail}");
    ensure!(disk_free(&data)? == free0, "exactly the free space of before: {} vs {free0}", disk_free(&data)?);
    clear(tmpfs).await?;
    drop(h);
    leftovers(cx)?;
    Ok(())
}

#[chaos_test(tags = ["resources"], timeout = "60s", requires = ["root", "python3"])]
async fn fd_limit_makes_open_fail_with_emfile_and_restores_exact_limits(cx: &mut Chaos) -> ChaosResult {
    let mut h = hog(cx, "hog").await?;
    let main = h.main()?;
    let before = read_nofile(main.pid).context("limits")?;
    ensure!(h.run("open 200").await? == "ok=200 err=None");

    // Lowering a hard limit can only be undone with CAP_SYS_RESOURCE: refused without it,
    // before anything changes.
    let lower_hard = Fault::fd_limit(h.p.main(), 64, 128);
    if !has_cap_sys_resource() {
        let sandbox = cx.sandbox().clone();
        let err =
            lower_hard.inject(FaultContext { sandbox: &sandbox, rng: cx.rng() }).await.err().context("refused")?;
        tracing::info!("refused as expected: {err}");
        ensure!(err.to_string().contains("CAP_SYS_RESOURCE") && err.to_string().contains("keep_hard"), "{err}");
        ensure!(read_nofile(main.pid) == Some(before), "nothing changed");
    } else {
        let hard = inject(cx, lower_hard).await?;
        ensure!(read_nofile(main.pid).is_some_and(|l| (l.soft, l.hard) == (64, 128)), "read back");
        clear(hard).await?;
        ensure!(read_nofile(main.pid) == Some(before), "exact prior soft/hard");
    }

    let active = inject(cx, Fault::fd_limit(h.p.main(), 64, 0).keep_hard()).await?;
    let now = read_nofile(main.pid).context("limits")?;
    ensure!((now.soft, now.hard) == (64, before.hard), "read back from /proc: {now}");
    let child: i32 = field(&h.run("spawn").await?, "pid")?.parse()?;
    let inherited = read_nofile(child).context("child limits")?;
    ensure!(inherited == now, "a child spawned meanwhile inherits it: {inherited}");
    let out = h.run("open 200").await?;
    ensure!(field(&out, "err")? == "EMFILE" && count(&out)? < 64, "{out}");

    let detail = clear(active).await?;
    ensure!(read_nofile(main.pid) == Some(before), "exact prior soft/hard: {:?} vs {before}", read_nofile(main.pid));
    ensure!(read_nofile(child) == Some(before), "lifted from the child too: {detail}");
    ensure!(h.run("open 200").await? == "ok=200 err=None");
    drop(h);
    leftovers(cx)?;
    Ok(())
}

#[chaos_test(tags = ["resources"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn pids_limit_makes_fork_fail_with_eagain_and_undo_restores_it(cx: &mut Chaos) -> ChaosResult {
    let mut h = hog(cx, "hog").await?;
    let pids = PidsCgroup::of(&h.p)?;
    let before = read(&pids.cgroup().dir(), "pids.max")?;
    let refused0 = pids.refused_forks()?;
    let current = pids.current()?;

    let active = inject(cx, Fault::pids_limit(&h.p, current + 3)).await?;
    ensure!(pids.max()? == Some(current + 3), "read back");
    let out = h.run("fork 10").await?;
    ensure!(out == "ok=3 err=EAGAIN", "{out}");
    ensure!(pids.refused_forks()? > refused0, "pids.events counts the refusal");

    let detail = clear(active).await?;
    ensure!(detail.contains("fork(s) refused"), "{detail}");
    ensure!(read(&pids.cgroup().dir(), "pids.max")? == before, "exact prior value");
    ensure!(h.run("fork 10").await? == "ok=10 err=None");
    drop(h);
    leftovers(cx)?;
    Ok(())
}

#[chaos_test(tags = ["resources"], timeout = "60s", requires = ["cgroups", "tmpfs", "python3"], serial)]
async fn faults_never_cleared_are_undone_by_teardown_from_the_journal(cx: &mut Chaos) -> ChaosResult {
    let data = cx.sandbox().temp_dir().join("data");
    std::fs::create_dir(&data)?;
    let h = hog(cx, "hog").await?;
    let main = h.main()?;
    let faults = vec![
        inject(cx, Fault::memory_limit(&h.p, 128 * MIB)).await?,
        inject(cx, Fault::cpu_quota(&h.p, 0.5)).await?,
        inject(cx, Fault::pids_limit(&h.p, 50)).await?,
        inject(cx, Fault::fd_limit(&h.p, 100, 0).keep_hard()).await?,
        inject(cx, Fault::disk_tmpfs(&data, 4 * MIB)).await?,
        inject(cx, Fault::disk_fill(&data, 0)).await?,
        inject(cx, Fault::cpu_burn(1)).await?,
    ];
    let burner = cx.sandbox().owns(*faults[6].confirmation().pids.first().context("burner")?)?;
    // Dropped without clear (as when a body panics or times out): the burners die with their
    // handle, everything else waits in the journal for teardown, the hog still running.
    drop(faults);
    ensure!(burner.is_gone(), "the burners died with their handle");
    ensure!(!main.is_gone() && read_nofile(main.pid).is_some_and(|l| l.soft == 100));
    let undone = leftovers(cx)?;
    drop(h);
    let text = undone.join("\n");
    ensure!(
        undone.iter().filter(|u| u.starts_with("cgroup limit")).count() >= 3,
        "memory, cpu and pids limits undone:\n{text}"
    );
    for kind in ["rlimit 7 of pid", "mount on", "file "] {
        ensure!(text.contains(kind), "teardown undid a {kind}:\n{text}");
    }
    Ok(())
}

// ---- Snakepit under resource exhaustion (issue 7 item 7) ------------------------------------
//
// Each scenario is a function of the target's defects, so the same scenario runs as a test
// (healthy target: must pass) and as a meta-test (defect enabled: must fail on the right
// criterion). Every one ends with the faults cleared and the pool fully functional again
// without any manual action.

use std::sync::Mutex;
use std::time::SystemTime;

use crate::util::passed;
use chaos_harness::BoxFuture;
use chaos_harness::criteria::{Judge, JudgeContext, Verdict};
use chaos_harness::fixture::snakepit::{Defect, Execute, SnakepitHandle};
use chaos_harness::load::{Call, Load, Outcome};
use snakepit_chaos::scenarios::{Verdicts, pit};

const SECS: fn(u64) -> Duration = Duration::from_secs;
const MS: fn(u64) -> Duration = Duration::from_millis;

/// The BEAM that ran when the scenario started is still running.
struct BeamUp {
    pit: SnakepitHandle,
    at_start: Mutex<Option<OwnedPid>>,
}

fn beam_up(pit: &SnakepitHandle) -> BeamUp {
    BeamUp { pit: pit.clone(), at_start: Mutex::new(None) }
}

impl Judge for BeamUp {
    fn describe(&self) -> String {
        "the BEAM stays up (same process, not exited)".into()
    }

    fn prepare(&self, _cx: &JudgeContext) {
        *self.at_start.lock().unwrap_or_else(|e| e.into_inner()) = self.pit.process().scope().main();
    }

    fn judge<'a>(&'a self, _cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let criterion = self.describe();
            let start = self.at_start.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let (passed, detail) = match (start, self.pit.process().exit_status()) {
                (None, _) => (false, "no BEAM when the scenario started".to_string()),
                (Some(b), Some(exit)) => {
                    (false, format!("BEAM pid {} {exit}\n{}", b.pid, self.pit.process().log_tail()))
                }
                (Some(b), None) if b.is_gone() => (false, format!("BEAM pid {} is gone", b.pid)),
                (Some(b), None) => (true, format!("BEAM pid {} still running", b.pid)),
            };
            Verdict { criterion, passed, detail }
        })
    }
}

/// The load's requests so far were rejected with `reason` (at least one), and none failed in
/// any other way or went unanswered. Judged on the load as it is when the step runs: put a
/// `wait` before it.
struct RejectedWith(&'static str);

impl Judge for RejectedWith {
    fn describe(&self) -> String {
        format!("requests rejected with {} (no other error, none lost)", self.0)
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let criterion = self.describe();
            let Some(load) = &cx.load else {
                return Verdict { criterion, passed: false, detail: "the scenario runs no load".into() };
            };
            let (mut hit, mut ok) = (0u64, 0u64);
            let mut other: std::collections::BTreeMap<String, u64> = Default::default();
            for r in load.records() {
                match &r.outcome {
                    Outcome::Ok => ok += 1,
                    Outcome::Error { reason, .. } if reason == self.0 => hit += 1,
                    Outcome::Error { category, reason } => {
                        *other.entry(format!("{category}/{reason}")).or_default() += 1
                    }
                    o => *other.entry(o.kind().into()).or_default() += 1,
                }
            }
            let detail = format!("{} requests: {ok} ok, {hit} {}, others {other:?}", load.total(), self.0);
            Verdict { criterion, passed: other.is_empty() && hit > 0, detail }
        })
    }
}

/// Requests kept succeeding in the last `fault` window, at a lower rate than in the first
/// `baseline` window of the load. With a closed-loop load the rate of successful requests is
/// the rate of progress (clients x 1 / mean latency); the median alone can hide the slowdown
/// in the tail, as preempted requests wait while the rest stay fast. Speed is the subject of
/// the CPU fault, so this is the one timing comparison here, as a ratio within the same run.
struct Slower {
    baseline: Duration,
    fault: Duration,
}

impl Judge for Slower {
    fn describe(&self) -> String {
        format!(
            "requests continue, slower (fewer per second in the last {:?} than in the first {:?})",
            self.fault, self.baseline
        )
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let criterion = self.describe();
            let Some(load) = &cx.load else {
                return Verdict { criterion, passed: false, detail: "the scenario runs no load".into() };
            };
            let now = cx.scenario_start.elapsed();
            let before = load.stats_between(Duration::ZERO, self.baseline);
            let during = load.stats_between(now.saturating_sub(self.fault), now);
            let rate_before = before.ok as f64 / self.baseline.as_secs_f64();
            let rate_during = during.ok as f64 / self.fault.as_secs_f64();
            let detail = format!(
                "before: {rate_before:.0} ok/s (p50 {:?}, p99 {:?}); during: {rate_during:.0} ok/s (p50 {:?}, p99 {:?}): {:.2}x the rate",
                before.p50,
                before.p99,
                during.p50,
                during.p99,
                rate_during / rate_before.max(1e-9)
            );
            Verdict { criterion, passed: during.ok > 0 && rate_during < rate_before, detail }
        })
    }
}

/// The target emitted telemetry `event` since the scenario started (within `within`).
struct Telemetered {
    pit: SnakepitHandle,
    event: &'static str,
    within: Duration,
    since: Mutex<SystemTime>,
}

fn telemetered(pit: &SnakepitHandle, event: &'static str, within: Duration) -> Telemetered {
    Telemetered { pit: pit.clone(), event, within, since: Mutex::new(SystemTime::now()) }
}

impl Judge for Telemetered {
    fn describe(&self) -> String {
        format!("telemetry {} within {:?}", self.event, self.within)
    }

    fn prepare(&self, _cx: &JudgeContext) {
        *self.since.lock().unwrap_or_else(|e| e.into_inner()) = SystemTime::now();
    }

    fn judge<'a>(&'a self, _cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let criterion = self.describe();
            let since = *self.since.lock().unwrap_or_else(|e| e.into_inner());
            let t0 = Instant::now();
            loop {
                let seen = self.pit.telemetry().named_since(self.event, since);
                if let Some(e) = seen.first() {
                    return Verdict {
                        criterion,
                        passed: true,
                        detail: format!("{} event(s), first: {}", seen.len(), e.metadata),
                    };
                }
                if t0.elapsed() > self.within {
                    return Verdict { criterion, passed: false, detail: "none".into() };
                }
                tokio::time::sleep(MS(50)).await;
            }
        })
    }
}

/// A session write succeeds (within `within`).
struct SessionWritable {
    pit: SnakepitHandle,
    within: Duration,
}

impl Judge for SessionWritable {
    fn describe(&self) -> String {
        format!("session writes succeed again within {:?}", self.within)
    }

    fn judge<'a>(&'a self, _cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let criterion = self.describe();
            let t0 = Instant::now();
            loop {
                let last = match self.pit.client().session_put("after-the-fault", serde_json::json!({"ok": true})).await
                {
                    Ok(_) => {
                        let detail =
                            format!("PUT /sessions/after-the-fault answered after {:.2} s", t0.elapsed().as_secs_f64());
                        return Verdict { criterion, passed: true, detail };
                    }
                    Err(e) => e.to_string(),
                };
                if t0.elapsed() > self.within {
                    return Verdict { criterion, passed: false, detail: format!("last: {last}") };
                }
                tokio::time::sleep(MS(100)).await;
            }
        })
    }
}

/// The scenarios' target: `snakepit_chaos::scenarios::pit`, with a BEAM crash dump (the
/// defects crash it) written into the sandbox rather than the working directory.
fn target(cx: &Chaos, defects: &[Defect]) -> chaos_harness::fixture::snakepit::Snakepit {
    pit(defects).env("ERL_CRASH_DUMP", cx.sandbox().temp_dir().join("erl_crash.dump").to_string_lossy())
}

/// Worker 1 (whose Python process is killed by the scenario) is replaced by a new process that
/// the pool reports ready, and the whole pool is ready, within `within`.
struct Replaced {
    pit: SnakepitHandle,
    within: Duration,
    before: Mutex<Option<i32>>,
}

fn replaced(pit: &SnakepitHandle, within: Duration) -> Replaced {
    Replaced { pit: pit.clone(), within, before: Mutex::new(None) }
}

impl Judge for Replaced {
    fn describe(&self) -> String {
        format!("worker_1 replaced and the pool fully ready within {:?}", self.within)
    }

    fn prepare(&self, _cx: &JudgeContext) {
        // A command-line selector: the random source is not consulted.
        let pid = self.pit.worker(0).resolve(&mut rand::rng()).first().map(|o| o.pid);
        *self.before.lock().unwrap_or_else(|e| e.into_inner()) = pid;
    }

    fn judge<'a>(&'a self, _cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let criterion = self.describe();
            let Some(old) = *self.before.lock().unwrap_or_else(|e| e.into_inner()) else {
                return Verdict {
                    criterion,
                    passed: false,
                    detail: "worker_1 had no process when the scenario started".into(),
                };
            };
            let t0 = Instant::now();
            loop {
                let c = self.pit.client();
                let last = match (c.workers().await, c.health().await) {
                    (Ok(ws), Ok(h)) => {
                        let w1 = ws.iter().find(|w| w.id == "worker_1");
                        let fresh = w1.is_some_and(|w| {
                            w.python_pid.is_some_and(|p| p != old) && (w.state == "ready" || w.state == "busy")
                        });
                        if fresh && h.ready >= h.size {
                            let detail = format!(
                                "worker_1 pid {old} -> {:?} after {:.2} s; {} of {} ready",
                                w1.and_then(|w| w.python_pid),
                                t0.elapsed().as_secs_f64(),
                                h.ready,
                                h.size
                            );
                            return Verdict { criterion, passed: true, detail };
                        }
                        format!("worker_1 {w1:?}, health {} ({} of {} ready)", h.status, h.ready, h.size)
                    }
                    (Err(e), _) | (_, Err(e)) => e.to_string(),
                };
                if t0.elapsed() > self.within {
                    return Verdict {
                        criterion,
                        passed: false,
                        detail: format!("not after {:?}; last: {last}", self.within),
                    };
                }
                tokio::time::sleep(MS(50)).await;
            }
        })
    }
}

/// Memory: a limit on the pool's cgroup with a balloon inside it that leaves the pool ~6 % of
/// the limit (the target's pressure watermark is 90 %). On cgroup v1 a limit below the current
/// usage is refused by the kernel (EBUSY), so the squeeze comes from limit + balloon; the
/// balloon, the largest process, is also what the OOM killer would take first. Requests must
/// be rejected with `pool/memory_pressure` while the BEAM stays up (catches `crash_on_oom`).
pub(crate) async fn memory_squeeze(cx: &mut Chaos, defects: &[Defect]) -> Verdicts {
    let pit = cx.start(target(cx, defects)).await?;
    let mem = MemoryCgroup::of(&pit)?;
    let usage = mem.usage_bytes()?;
    let limit = (usage * 2).max(usage + 128 * MIB);
    let balloon = (limit as f64 * 0.94) as u64 - mem.working_set_bytes()?;
    tracing::info!("pool usage {usage} bytes: limit {limit}, balloon {balloon}");
    let call = pit.call(Execute::tool("echo"));
    Ok(cx
        .scenario("memory: limit + balloon leave the pool short of memory")
        .load(Load::closed_loop(2).timeout(SECS(5)), call)
        .wait(MS(300))
        .inject(Fault::memory_limit(&pit, limit))
        .inject(Fault::memory_pressure(&pit, balloon))
        .wait(SECS(1))
        .expect(RejectedWith("memory_pressure"))
        .expect(beam_up(&pit))
        .clear_faults()
        .expect(Criterion::healthy(&pit).within(SECS(10)))
        .stop_load()
        .expect(Criterion::oom_kills(&pit).none())
        .run()
        .await)
}

/// CPU: burners on every core; requests keep succeeding, more slowly.
pub(crate) async fn cpu_saturated(cx: &mut Chaos, defects: &[Defect]) -> Verdicts {
    let pit = cx.start(target(cx, defects)).await?;
    let call = pit.call(Execute::tool("echo"));
    Ok(cx
        .scenario("CPU saturated by a burner on every core")
        .load(Load::closed_loop(4).timeout(SECS(10)), call)
        .wait(MS(1500))
        .inject(Fault::cpu_burn(Cpus::All))
        .wait(MS(1500))
        .expect(Slower { baseline: MS(1400), fault: MS(1400) })
        .expect(Criterion::error_rate().at_most(0.0))
        .clear_faults()
        .expect(Criterion::healthy(&pit).within(SECS(10)))
        .stop_load()
        .expect(Criterion::no_lost_requests())
        .run()
        .await)
}

/// Disk: the data dir lives on a small tmpfs; a fill file leaves it no free byte while new
/// sessions are written. Writes must fail with `storage/disk_full`, the BEAM stay up, and
/// writes succeed again once the file is gone (catches `crash_on_disk_full`).
pub(crate) async fn disk_full(cx: &mut Chaos, defects: &[Defect]) -> Verdicts {
    let data = cx.sandbox().temp_dir().join("pit-data");
    std::fs::create_dir(&data)?;
    let tmpfs = inject(cx, Fault::disk_tmpfs(&data, 8 * MIB)).await?;
    let pit = cx.start(target(cx, defects).data_dir(&data)).await?;
    let client = pit.client().clone();
    let pad = "x".repeat(2048);
    // New session ids: the store's file must grow, so a full disk is hit at once.
    let call = Call::new(move |seq| {
        let (client, pad) = (client.clone(), pad.clone());
        async move {
            match client.session_put(&format!("s{seq}"), serde_json::json!({ "pad": pad })).await {
                Ok(_) => Outcome::Ok,
                Err(e) => e.to_outcome(),
            }
        }
    });
    let v = cx
        .scenario("disk full under the data dir")
        .load(Load::constant_rate(40).timeout(SECS(5)), call)
        .wait(MS(300))
        .inject(Fault::disk_fill(&data, 0))
        .wait(SECS(1))
        .expect(RejectedWith("disk_full"))
        .expect(beam_up(&pit))
        .stop_load()
        .clear_faults()
        .expect(SessionWritable { pit: pit.clone(), within: SECS(5) })
        .expect(Criterion::healthy(&pit).within(SECS(10)))
        .run()
        .await;
    // The BEAM holds files on the tmpfs: stop it before unmounting.
    pit.stop().await?;
    clear(tmpfs).await?;
    Ok(v)
}

/// The BEAM's open descriptors.
fn open_fds(pid: i32) -> anyhow::Result<u64> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64)
}

/// The BEAM's descriptors for the pipes of a worker's Port (matched by pipe inode with the
/// worker's own stdin/stdout/stderr).
fn port_pipe_fds(beam: i32, worker: i32) -> anyhow::Result<Vec<u64>> {
    let link =
        |pid: i32, fd: &str| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok().map(|p| p.display().to_string());
    let pipes: Vec<String> =
        ["0", "1", "2"].iter().filter_map(|fd| link(worker, fd)).filter(|l| l.starts_with("pipe:")).collect();
    let mut fds: Vec<u64> = std::fs::read_dir(format!("/proc/{beam}/fd"))?
        .flatten()
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| pipes.contains(&l.display().to_string())))
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect();
    fds.sort_unstable();
    Ok(fds)
}

/// File descriptors, exhausted when a worker must be restarted: the BEAM's soft limit is set
/// just above the lowest descriptor of worker 1's Port pipes, so once worker 1 is killed the
/// BEAM has exactly one descriptor to spare: enough to load code (one file at a time), not
/// enough for the pipe pair a new Port needs. The restart must fail gracefully (`spawn_failed`,
/// the BEAM up) and the pool recover by itself once the limit is lifted. (A limit of 0 is no
/// test of the target: the VM cannot load code then and halts.)
pub(crate) async fn fds_exhausted(cx: &mut Chaos, defects: &[Defect]) -> Verdicts {
    let pit = cx.start(target(cx, defects)).await?;
    let beam = pit.process().scope().main().context("BEAM")?;
    let worker = pit.worker(0).resolve(cx.rng()).pop().context("worker 1")?;
    let pipes = port_pipe_fds(beam.pid, worker.pid)?;
    let soft = pipes.first().context("the BEAM holds no pipe of worker 1's Port")? + 1;
    tracing::info!("worker 1's Port pipes are BEAM fds {pipes:?}: soft limit {soft}");
    Ok(cx
        .scenario("one spare descriptor in the BEAM while a worker restarts")
        .inject(Fault::fd_limit(pit.beam(), soft, 0).keep_hard())
        .inject(Fault::kill(pit.worker(0)))
        .expect(telemetered(&pit, "snakepit.pool.worker.spawn_failed", SECS(5)))
        .expect(beam_up(&pit))
        .clear_faults()
        .expect(Criterion::healthy(&pit).within(SECS(15)))
        .run()
        .await)
}

/// File descriptors, modest limit: 64 more than the BEAM holds, ample for a healthy pool under
/// load, which then replaces a killed worker (a new process, reported ready) while the limit
/// is still in force (catches `fd_leak`: a second of load leaks far more than 64 descriptors,
/// and the replacement cannot be brought up).
pub(crate) async fn fds_modest(cx: &mut Chaos, defects: &[Defect]) -> Verdicts {
    let pit = cx.start(target(cx, defects)).await?;
    let beam = pit.process().scope().main().context("BEAM")?;
    let soft = open_fds(beam.pid)? + 64;
    let call = pit.call(Execute::tool("echo"));
    Ok(cx
        .scenario("a modest descriptor limit under load, then a worker restart")
        .load(Load::closed_loop(4).timeout(SECS(5)), call)
        .inject(Fault::fd_limit(pit.beam(), soft, 0).keep_hard())
        .wait(SECS(1))
        .stop_load()
        .inject(Fault::kill(pit.worker(0)))
        .expect(replaced(&pit, SECS(5)))
        .expect(beam_up(&pit))
        .clear_faults()
        .expect(Criterion::healthy(&pit).within(SECS(15)))
        .run()
        .await)
}

#[chaos_test(tags = ["resources", "snakepit"], requires = ["elixir", "cgroups"], timeout = "2m")]
async fn snakepit_memory_pressure_rejects_requests_and_the_beam_stays_up(cx: &mut Chaos) -> ChaosResult {
    passed(memory_squeeze(cx, &[]).await)
}

#[chaos_test(tags = ["resources", "snakepit"], requires = ["elixir", "cgroups"], timeout = "2m", serial)]
async fn snakepit_cpu_saturated_requests_continue_slower(cx: &mut Chaos) -> ChaosResult {
    passed(cpu_saturated(cx, &[]).await)
}

#[chaos_test(tags = ["resources", "snakepit"], requires = ["elixir", "cgroups", "tmpfs"], timeout = "2m")]
async fn snakepit_disk_full_session_writes_fail_cleanly_and_recover(cx: &mut Chaos) -> ChaosResult {
    passed(disk_full(cx, &[]).await)
}

#[chaos_test(tags = ["resources", "snakepit"], requires = ["elixir", "cgroups", "root"], timeout = "2m")]
async fn snakepit_fd_exhaustion_spawn_fails_gracefully_and_recovers(cx: &mut Chaos) -> ChaosResult {
    passed(fds_exhausted(cx, &[]).await)
}

#[chaos_test(tags = ["resources", "snakepit"], requires = ["elixir", "cgroups", "root"], timeout = "2m")]
async fn snakepit_modest_fd_limit_is_enough_for_a_healthy_pool(cx: &mut Chaos) -> ChaosResult {
    passed(fds_modest(cx, &[]).await)
}
