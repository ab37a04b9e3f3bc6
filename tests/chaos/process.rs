//! End-to-end process tests (tag `process`): real pre-fork servers and daemons from
//! `fixtures/programs/` under the sandbox, process faults with their confirmations, orphan
//! judgement. Library-level integration tests (ownership, probes, selectors, journal replay
//! after SIGKILL, teardown racing the body, running as `nobody`) live in
//! `chaos-harness/tests/sandbox.rs`.

use std::sync::Arc;

use anyhow::{Context, bail, ensure};
use chaos_harness::fault::FaultContext;
use chaos_harness::fault::Inject;
use chaos_harness::fixture::python3;
use chaos_harness::prelude::*;
use chaos_harness::sandbox::{Sandbox, SandboxOptions, procfs};
use chaos_harness::scenario::ScenarioError;

use crate::util::{members, prefork, programs, run_cgroups};

#[chaos_test(tags = ["process"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn prefork_master_sigkill_with_staying_workers_is_orphaning(cx: &mut Chaos) -> ChaosResult {
    let p = cx.start(prefork(3, "stay")?).await?;
    members(&p, 4).await?;
    let err = cx
        .scenario("master SIGKILL, workers stay")
        .inject(Fault::kill(p.main()))
        .expect(Criterion::no_orphans().of(&p).within(Duration::from_millis(500)))
        .run()
        .await
        .err()
        .context("staying workers must be judged orphans")?;
    let ScenarioError::CriteriaFailed(out) = &err else { bail!("expected a criteria failure, got {err}") };
    tracing::info!("{out}");
    let verdict = &out.verdicts[0].detail;
    ensure!(verdict.contains("3 orphan(s)"), "{out}");
    for i in 0..3 {
        ensure!(
            verdict.contains(&format!("[prefork: worker {i}] parent ")),
            "survivor {i} listed with its title: {out}"
        );
    }
    Ok(())
}

/// The root cause of a real orphaning failure: the report lists the surviving workers (pid,
/// reparented away from the dead master, their own sessions, their rewritten command lines), the
/// master as exited, and the fixture's log lines, which name the same pids.
#[chaos_test(tags = ["process", "report"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn root_cause_lists_the_surviving_processes_and_the_fixture_log(cx: &mut Chaos) -> ChaosResult {
    use chaos_harness::report::{RunReport, TestRecord, TestStatus, html, scenario::scenario_report};
    let p = cx.start(prefork(3, "stay")?).await?;
    members(&p, 4).await?;
    let master = p.pid().context("master pid")?;
    let err = cx
        .scenario("master SIGKILL, workers stay")
        .inject(Fault::kill(p.main()))
        .expect(Criterion::no_orphans().of(&p).within(Duration::from_millis(500)))
        .run()
        .await
        .err()
        .context("staying workers must be judged orphans")?;
    let out = err.outcome();
    let report = scenario_report(out);
    let survivors: Vec<_> = report.processes.iter().filter(|c| c.change == "survived").collect();
    ensure!(survivors.len() == 3, "three workers survived: {out}");
    for i in 0..3 {
        let w = survivors
            .iter()
            .find(|c| c.command.contains(&format!("prefork: worker {i}")))
            .with_context(|| format!("worker {i} listed with its command line: {out}"))?;
        ensure!(w.ppid != master && w.sid == w.pid, "reparented, own session: {w}");
    }
    let gone = report.processes.iter().find(|c| c.pid == master).context("the master is listed")?;
    ensure!(gone.change == "exited" && gone.command.contains("prefork: master"), "{gone}");
    let log = report
        .logs
        .iter()
        .find(|l| l.file.starts_with("prefork") && l.file.ends_with(".stdout.log"))
        .with_context(|| format!("the fixture's stdout log: {:?}", report.logs))?;
    ensure!(log.lines.iter().any(|l| l == "ready: 3 workers"), "{log:?}");
    for w in &survivors {
        ensure!(log.lines.iter().any(|l| l.ends_with(&format!(" pid {} started", w.pid))), "{log:?}");
    }
    // The page's root cause shows them.
    let mut t = TestRecord::new(
        "process::orphans",
        TestStatus::Failed { message: out.failure_message().unwrap_or_default(), detail: String::new() },
    );
    t.scenario = Some(report.clone());
    let page = html::render(&RunReport::new("process", vec![t]));
    let start = page.find("<div class=\"rootcause\">").context("a root cause")?;
    let root = &page[start..start + page[start..].find("</div>").context("its end")?];
    for w in &survivors {
        ensure!(root.contains(&format!("<td>{}</td>", w.pid)), "pid {} in the root cause", w.pid);
        ensure!(root.contains(&w.command), "{} in the root cause", w.command);
    }
    ensure!(root.contains("ready: 3 workers") && root.contains("prefork"), "the log in the root cause: {root}");
    Ok(())
}

#[chaos_test(tags = ["process"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn prefork_master_sigkill_with_exiting_workers_is_not_orphaning(cx: &mut Chaos) -> ChaosResult {
    let p = cx.start(prefork(3, "exit")?).await?;
    members(&p, 4).await?;
    let out = cx
        .scenario("master SIGKILL, workers exit")
        .inject(Fault::kill(p.main()))
        .expect(Criterion::no_orphans().of(&p).within(Duration::from_secs(3)))
        .run()
        .await?;
    tracing::info!("{out}");
    ensure!(out.confirmations[0].detail.contains("gone"), "{out}");
    Ok(())
}

#[chaos_test(tags = ["process"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn double_forked_daemon_is_tracked_and_killed_at_teardown(cx: &mut Chaos) -> ChaosResult {
    let pidfile = cx.sandbox().temp_dir().join("daemon.pid");
    let d = cx
        .start(
            Command::new(python3())
                .name("daemon")
                .arg(programs().join("daemon.py"))
                .arg(&pidfile)
                .ready(Probe::log_line("^daemon started pid")),
        )
        .await?;
    ensure!(d.wait().await.code == Some(0), "the launcher exits 0");
    let pid: i32 = std::fs::read_to_string(&pidfile)?.trim().parse()?;
    let daemon = cx.sandbox().owns(pid).context("the daemon is still in the fixture's cgroup")?;
    ensure!(d.scope().members() == vec![daemon.clone()], "only the daemon is left");
    // What the runner does after the body: tear down (idempotent, it runs again later).
    let report = cx.sandbox().teardown()?;
    tracing::info!("{report}");
    ensure!(daemon.is_gone(), "teardown killed the daemon");
    ensure!(run_cgroups(cx.sandbox().run_id()).is_empty(), "cgroups removed");
    Ok(())
}

#[chaos_test(tags = ["process"], timeout = "60s", requires = ["cgroups", "python3"])]
fn fixture_dropped_during_panic_leaves_nothing(cx: &mut Chaos) -> ChaosResult {
    let sandbox = cx.sandbox().clone();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (sb, seen2) = (sandbox.clone(), seen.clone());
    let joined = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        rt.block_on(async move {
            let mut inner = Chaos::with_sandbox("process::panicking_body", 1, sb);
            let p = inner.start(prefork(2, "stay").expect("command")).await.expect("start");
            *seen2.lock().unwrap_or_else(|e| e.into_inner()) = members(&p, 3).await.expect("members");
            // Unwind like a panic, without the panic hook's noise in the output.
            std::panic::resume_unwind(Box::new("the body panics while holding the fixture"));
        })
    })
    .join();
    ensure!(joined.is_err(), "the body panicked");
    let pids = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    ensure!(pids.len() == 3, "{pids:?}");
    for p in &pids {
        ensure!(p.is_gone(), "{p} survived the drop");
    }
    ensure!(run_cgroups(sandbox.run_id()).is_empty(), "cgroups left: {:?}", run_cgroups(sandbox.run_id()));
    Ok(())
}

#[chaos_test(tags = ["process"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn pause_and_resume_are_confirmed(cx: &mut Chaos) -> ChaosResult {
    let p = cx.start(prefork(2, "stay")?).await?;
    let all = members(&p, 3).await?;
    let sandbox = cx.sandbox().clone();
    let active = Fault::pause(p.children()).inject(FaultContext { sandbox: &sandbox, rng: cx.rng() }).await?;
    tracing::info!("{}", active.confirmation());
    for w in &all[1..] {
        ensure!(w.stat().map(|s| s.state) == Some('T'), "{w} stopped");
    }
    let cleared = active.clear().await?;
    tracing::info!("{cleared}");
    ensure!(cleared.detail.contains("left state T"), "{cleared}");
    let out = cx
        .scenario("pause workers")
        .inject(Fault::pause(p.children()))
        .wait(Duration::from_millis(50))
        .clear_faults()
        .run()
        .await?;
    tracing::info!("{out}");
    let text = out.to_string();
    ensure!(text.contains("in state T (stopped)") && text.contains("left state T (running)"), "{text}");
    Ok(())
}

#[chaos_test(tags = ["process"], timeout = "60s", requires = ["freezer", "python3"])]
async fn freeze_and_thaw_are_confirmed(cx: &mut Chaos) -> ChaosResult {
    let p = cx.start(prefork(2, "stay")?).await?;
    members(&p, 3).await?;
    let out =
        cx.scenario("freeze").inject(Fault::freeze(&p)).wait(Duration::from_millis(50)).clear_faults().run().await?;
    tracing::info!("{out}");
    let text = out.to_string();
    ensure!(text.contains("FROZEN read back") || text.contains("frozen 1 read back"), "{text}");
    ensure!(text.contains("THAWED read back") || text.contains("frozen 0 read back"), "{text}");
    Ok(())
}

#[chaos_test(tags = ["process"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn crash_loop_is_confirmed_and_workers_respawn(cx: &mut Chaos) -> ChaosResult {
    let p = cx.start(prefork(2, "exit")?.arg("--respawn")).await?;
    members(&p, 3).await?;
    let out = cx
        .scenario("crash loop")
        .inject(Fault::crash_loop(p.random()).every(Duration::from_millis(150)).lasting(Duration::from_millis(700)))
        .wait(Duration::from_millis(800))
        .clear_faults()
        .expect(Criterion::respawned(p.children()).within(Duration::from_secs(5)))
        .expect(Criterion::process_count(p.children()).reaches(2).within(Duration::from_secs(5)))
        .run()
        .await?;
    tracing::info!("{out}");
    let stop =
        out.confirmations.iter().find(|c| c.fault.starts_with("stop crash loop")).context("final confirmation")?;
    let kills: usize = stop.detail.split_whitespace().next().context("count")?.parse()?;
    ensure!(kills >= 3 && !stop.detail.contains("UNCONFIRMED"), "{out}");
    Ok(())
}

#[chaos_test(tags = ["process"], timeout = "60s", requires = ["python3"])]
async fn fallback_without_cgroups_shows_reduced_guarantee(cx: &mut Chaos) -> ChaosResult {
    // What CHAOS_SANDBOX_NO_CGROUPS=1 (or running as non-root) gives every sandbox.
    let sb = Arc::new(Sandbox::with_options("process::fallback", SandboxOptions { cgroups: false })?);
    let mut fx = Chaos::with_sandbox("process::fallback", cx.seed(), sb.clone());
    let p = fx.start(prefork(2, "stay")?).await?;
    let all = members(&p, 3).await?;
    ensure!(!p.scope().guarantee().is_full());
    let err = fx
        .scenario("fallback orphans")
        .inject(Fault::kill(p.main()))
        .expect(Criterion::no_orphans().of(&p).within(Duration::from_millis(300)))
        .run()
        .await
        .err()
        .context("orphans must be found without cgroups too")?;
    let out = err.outcome();
    tracing::warn!("{out}");
    ensure!(out.verdicts[0].detail.contains("2 orphan(s)"), "{out}");
    ensure!(out.notes.iter().any(|n| n.contains("REDUCED (no cgroups")), "{out}");
    drop(p);
    let report = sb.teardown()?;
    ensure!(report.notes.iter().any(|n| n.contains("REDUCED")), "{report}");
    ensure!(all.iter().all(|o| o.is_gone()), "teardown killed the tracked tree");
    ensure!(procfs::marked_pids(sb.run_id()).is_empty());
    Ok(())
}

/// Moves `pid` into the root cgroup of every mounted hierarchy, as a service manager or a
/// container runtime may do to a process it adopts.
fn move_out_of_all_cgroups(pid: i32) -> anyhow::Result<()> {
    for h in chaos_harness::sandbox::cgroup::hierarchies() {
        let procs = h.mount.join("cgroup.procs");
        std::fs::write(&procs, pid.to_string()).with_context(|| format!("moving {pid} into {}", procs.display()))?;
    }
    Ok(())
}

/// [reliability] item 6: a fixture's child moved out of all of the fixture's cgroups is still
/// the fixture's: the kernel's process events followed it from its fork, so it is a member,
/// `no_orphans` counts it while it lives, and stopping the fixture kills it.
#[chaos_test(tags = ["process", "safety"], timeout = "60s", requires = ["root", "cgroups"])]
async fn a_child_moved_out_of_the_cgroups_is_still_the_fixtures(cx: &mut Chaos) -> ChaosResult {
    let p = cx
        .start(
            Command::new("sh")
                .name("mover")
                .args(["-c", "(sleep 1000 & echo child $!); exec sleep 1000"])
                .ready(Probe::log_line("^child ")),
        )
        .await?;
    p.scope().kernel_tracking().map_err(|why| anyhow::anyhow!("no kernel process tracking as root: {why}"))?;
    let log = std::fs::read_to_string(p.stdout_log())?;
    let child: i32 = log
        .lines()
        .find_map(|l| l.strip_prefix("child "))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("no child pid in {log:?}"))?;
    let start_time = procfs::start_time(child).context("the child is alive")?;
    move_out_of_all_cgroups(child)?;
    ensure!(!p.scope().cgroups().iter().any(|c| c.contains(child)), "the child left every cgroup of the fixture");
    ensure!(p.scope().members().iter().any(|m| m.pid == child), "a child moved out is still a member");
    ensure!(p.scope().owns(child).is_ok(), "and still owned: {:?}", p.scope().owns(child).err());
    let err = cx
        .scenario("main SIGKILL, the moved child stays")
        .inject(Fault::kill(p.main()))
        .expect(Criterion::no_orphans().of(&p).within(Duration::from_millis(300)))
        .run()
        .await
        .err()
        .context("the moved child outlives its parent: no_orphans must fail")?;
    let ScenarioError::CriteriaFailed(out) = &err else { bail!("expected a criteria failure, got {err}") };
    ensure!(out.verdicts[0].detail.contains(&child.to_string()), "the orphan is named: {out}");
    p.stop().await?;
    ensure!(procfs::is_gone(child, start_time), "stopping the fixture killed the child moved out of its cgroups");
    Ok(())
}

/// Starts a `sleep` fixture and stops it.
async fn cycle(cx: &mut Chaos, i: usize) -> anyhow::Result<()> {
    let p = cx.start(Command::new("sleep").name(format!("cycle{i}")).arg("1000")).await?;
    p.stop().await?;
    Ok(())
}

/// Open fds, threads and RSS (KiB) of this process.
fn own_usage() -> anyhow::Result<(usize, usize, u64)> {
    let fds = std::fs::read_dir("/proc/self/fd")?.count();
    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| -> anyhow::Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {name} in /proc/self/status"))
    };
    Ok((fds, field("Threads:")? as usize, field("VmRSS:")?))
}

/// [reliability]: 1000 fixture start/stop cycles in one harness process leave its open fds,
/// threads and RSS where they were after a warm-up (bounds: +8 fds, +4 threads, +32 MiB).
/// Opt-in (`slow`): about a minute.
#[chaos_test(tags = ["process", "slow"], timeout = "20m", requires = ["cgroups"])]
async fn a_thousand_fixture_cycles_leak_no_fds_threads_or_memory(cx: &mut Chaos) -> ChaosResult {
    for i in 0..50 {
        cycle(cx, i).await?;
    }
    let (fds0, threads0, rss0) = own_usage()?;
    let t0 = std::time::Instant::now();
    for i in 50..1050 {
        cycle(cx, i).await?;
        if i % 250 == 49 {
            let (fds, threads, rss) = own_usage()?;
            tracing::info!(cycles = i - 49, fds, threads, rss_kib = rss, "progress");
        }
    }
    let (fds, threads, rss) = own_usage()?;
    tracing::info!(
        fds0,
        fds,
        threads0,
        threads,
        rss0_kib = rss0,
        rss_kib = rss,
        per_cycle_ms = t0.elapsed().as_millis() as u64 / 1000,
        "1000 fixture start/stop cycles"
    );
    ensure!(fds <= fds0 + 8, "open fds grew from {fds0} to {fds} over 1000 cycles");
    ensure!(threads <= threads0 + 4, "threads grew from {threads0} to {threads} over 1000 cycles");
    ensure!(rss <= rss0 + 32 * 1024, "RSS grew from {rss0} KiB to {rss} KiB over 1000 cycles");
    Ok(())
}

/// `exits_within` passes only once the fixture has recorded the main process's exit, so the
/// test can read the exit status right after the verdict (a process gone from /proc but not
/// yet reaped by the fixture's waiter used to pass it with no status to read).
#[chaos_test(tags = ["process"], timeout = "60s", requires = ["cgroups"])]
async fn exits_within_passes_with_the_exit_status_recorded(cx: &mut Chaos) -> ChaosResult {
    for round in 0..5 {
        let p = cx.start(Command::new("sleep").args(["600"]).name(format!("sleeper{round}"))).await?;
        let out = cx
            .scenario("SIGKILL a sleeper")
            .inject(Fault::kill(p.main()).signal(Signal::SIGKILL))
            .expect(Criterion::exits_within(Duration::from_secs(5)).of(&p))
            .run()
            .await?;
        let status = p.exit_status().with_context(|| format!("round {round}: passed with no exit recorded\n{out}"))?;
        ensure!(status.signal == Some(9), "round {round}: {status}");
        ensure!(!out.verdicts[0].detail.contains("gone"), "round {round}: {}", out.verdicts[0].detail);
    }
    Ok(())
}
