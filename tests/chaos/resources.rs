//! Resource exhaustion faults (tag `resources`): each fault proven in force against a real
//! program (read back, and an allocation, fork, open or write that fails because of it) and
//! its undo proven to restore the exact prior state (read back). Every test ends by tearing
//! its sandbox down and checking that no mount, cgroup, fill file, temp dir or process is left.
//!
//! The program under test is `fixtures/programs/hog.py`, which runs commands sent through a
//! named pipe (`alloc`, `fork`, `open`, `write`, `spawn`) and reports what the kernel said.

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

fn programs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/programs")
}

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
                .ready(Probe::log_line("^hog ready")?)
                .stop_grace(Duration::from_millis(200)),
        )
        .await?;
    Ok(Hog { p, fifo, next: 0 })
}

/// Sends `ID CMD` to a hog and waits for its `ID RESULT` line.
async fn ask(p: &Process, fifo: &Path, id: &str, cmd: &str) -> anyhow::Result<String> {
    {
        // The hog holds the pipe open read-write, so this open never blocks.
        let mut f = std::fs::OpenOptions::new().write(true).open(fifo).with_context(|| format!("opening {}", fifo.display()))?;
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
        ensure!(p.exit_status().is_none(), "the hog ended ({:?}) before answering {cmd:?}\n{}", p.exit_status(), p.log_tail());
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
    let ours: Vec<&str> = mounts.lines().filter(|l| l.contains(&*temp.to_string_lossy()) || l.starts_with("chaos-tmpfs ")).collect();
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
    ensure!(text.contains("memory.limit_in_bytes = 50331648") || text.contains("memory.max = 50331648"), "limit read back: {text}");
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
        procfs::cgroup_path(bpid, if mem.is_v2() { "" } else { "memory" }).is_some_and(|p| p.starts_with(&mem.cgroup().rel)),
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
    let spin = cx.start(Command::new(python3()).name("spin").args(["-c", "while True: pass"]).stop_grace(Duration::ZERO)).await?;
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

#[chaos_test(tags = ["resources"], timeout = "60s", requires = ["cgroups", "python3"])]
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
        let err = lower_hard.inject(FaultContext { sandbox: &sandbox, rng: cx.rng() }).await.err().context("refused")?;
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

#[chaos_test(tags = ["resources"], timeout = "60s", requires = ["cgroups", "tmpfs", "python3"])]
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
    ensure!(undone.iter().filter(|u| u.starts_with("cgroup limit")).count() >= 3, "memory, cpu and pids limits undone:\n{text}");
    for kind in ["rlimit 7 of pid", "mount on", "file "] {
        ensure!(text.contains(kind), "teardown undid a {kind}:\n{text}");
    }
    Ok(())
}
