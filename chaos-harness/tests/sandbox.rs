//! Integration tests of the sandbox, the `Command` fixture, process faults and criteria
//! against REAL processes (small Python pre-fork servers and a double-forking daemon from
//! `fixtures/programs/`). The end-to-end acceptance tests (orphan judgement in both modes,
//! daemon, panic drop, pause/freeze, crash loop, fallback) are `#[chaos_test]`s in the chaos
//! suite: `tests/chaos/process.rs`. With root they use cgroup v1 + cgroup2 (hybrid) as on the dev
//! machines; every test tears its sandbox down and checks that nothing is left.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chaos_harness::criteria::Criterion;
use chaos_harness::fault::{Fault, FaultContext, Inject};
use chaos_harness::fixture::{Command, FixtureHandle, Probe, Process, python3};
use chaos_harness::sandbox::{OwnedPid, Sandbox, cgroup, journal, procfs};
use chaos_harness::{Chaos, Error};
use nix::sys::signal::Signal;

fn programs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/programs")
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A pre-fork server: `workers` workers that setsid and rewrite argv/comm and wipe their
/// environment; `mode` = "exit" | "stay" on parent death.
fn prefork(workers: usize, mode: &str) -> Command {
    Command::new(python3())
        .name("prefork")
        .arg(programs().join("prefork.py"))
        .args(["--workers", &workers.to_string(), "--on-parent-death", mode, "--wipe-env"])
        .ready(Probe::log_line(&format!("^ready: {workers} workers")))
        .ready_timeout(Duration::from_secs(10))
        .stop_grace(Duration::from_millis(500))
}

fn cx(name: &str) -> Chaos {
    Chaos::standalone(name, 42).expect("sandbox")
}

/// Every cgroup directory of this run, in any hierarchy.
fn run_cgroups(run_id: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for h in cgroup::hierarchies() {
        if let Ok(d) = std::fs::read_dir(h.mount.join(cgroup::PARENT)) {
            for e in d.flatten() {
                if e.file_name().to_string_lossy().starts_with(run_id) {
                    v.push(e.path());
                }
            }
        }
    }
    v
}

/// Tears down and checks: no cgroup, no marked process, no temp dir, none of `pids` alive.
fn teardown_clean(sb: &Sandbox, pids: &[OwnedPid]) {
    let report = sb.teardown().unwrap_or_else(|e| panic!("teardown failed: {e}"));
    assert!(report.is_clean(), "{report}");
    assert!(run_cgroups(sb.run_id()).is_empty(), "cgroups left: {:?}", run_cgroups(sb.run_id()));
    assert!(procfs::marked_pids(sb.run_id()).is_empty(), "marked processes left");
    assert!(!sb.temp_dir().exists(), "temp dir left");
    for p in pids {
        assert!(p.is_gone(), "{p} survived teardown");
    }
}

async fn wait_members(p: &Process, n: usize) -> Vec<OwnedPid> {
    let t0 = Instant::now();
    loop {
        let m = p.scope().members();
        if m.len() == n || t0.elapsed() > Duration::from_secs(10) {
            assert_eq!(m.len(), n, "fixture {} has {:?}", p.name(), m);
            return m;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The harness refuses to signal what it cannot prove it owns: pid 1, itself, a foreign
/// process, a pid pinned with the wrong start time (pid reuse), a pid claimed for the wrong
/// fixture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ownership_refuses_foreign_init_self_and_reused_pids() {
    let mut cx = cx("sandbox::ownership");
    let p = cx.start(prefork(1, "stay")).await.unwrap();
    let members = wait_members(&p, 2).await;
    let sb = cx.sandbox().clone();
    let mut foreign = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let fpid = foreign.id() as i32;
    for pid in [1, std::process::id() as i32, fpid] {
        let e = sb.owns(pid).unwrap_err();
        assert!(matches!(e, Error::NotOwned { .. }), "{e}");
    }
    // A forged claim on the foreign pid under the fixture's name.
    let fst = procfs::start_time(fpid).unwrap();
    let forged = OwnedPid { pid: fpid, start_time: fst, fixture: p.name().to_string() };
    let e = sb.signal(&forged, Signal::SIGKILL).unwrap_err();
    assert!(e.to_string().contains("no longer in its fixture"), "{e}");
    assert!(!forged.is_gone(), "foreign process untouched");
    // A stale claim (same pid, different start time) is treated as gone, never signalled.
    let main = p.scope().main().unwrap();
    let stale = OwnedPid { start_time: main.start_time + 1, ..main.clone() };
    assert!(!sb.signal(&stale, Signal::SIGKILL).unwrap());
    assert!(!main.is_gone(), "main untouched by the stale claim");
    // Pid 1 can never be signalled, even if claimed.
    let init = OwnedPid { pid: 1, start_time: procfs::start_time(1).unwrap_or(0), fixture: p.name().into() };
    assert!(sb.signal(&init, Signal::SIGCONT).is_err());
    foreign.kill().unwrap();
    foreign.wait().unwrap();
    drop(p);
    teardown_clean(&sb, &members);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Every probe kind waits for readiness: log line, TCP, HTTP 200, file, custom closure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_probes_of_every_kind() {
    let mut cx = cx("sandbox::probes");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c2 = calls.clone();
    let p = cx
        .start(
            prefork(2, "exit")
                .args(["--port", &port.to_string()])
                .ready(Probe::tcp(addr.clone()))
                .ready(Probe::http(addr.clone(), "/health"))
                .ready(Probe::custom("third call", move |_cx| {
                    let n = c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    async move { n >= 2 }
                })),
        )
        .await
        .unwrap();
    assert!(calls.load(std::sync::atomic::Ordering::SeqCst) >= 3);
    let flag_dir = cx.sandbox().temp_dir().to_path_buf();
    let f = cx
        .start(
            Command::new("sh")
                .name("flag")
                .args(["-c", "sleep 0.2; touch ready.flag; exec sleep 30"])
                .cwd(&flag_dir)
                .ready(Probe::file_exists("ready.flag")),
        )
        .await
        .unwrap();
    assert!(flag_dir.join("ready.flag").exists());
    assert!(cx.sandbox().logs_dir().join("flag.stdout.log").exists());
    assert!(cx.sandbox().logs_dir().join("prefork.stderr.log").exists());
    let members = [p.scope().members(), f.scope().members()].concat();
    f.stop().await.unwrap();
    p.stop().await.unwrap();
    teardown_clean(cx.sandbox(), &members);
}

/// A probe that never passes: the error names the probe, says whether the program died (with
/// its exit status) or still runs, and carries the last 20 log lines; nothing is left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_timeout_error_has_status_and_last_20_lines() {
    let mut cx = cx("sandbox::not_ready");
    let died = cx
        .start(
            Command::new("sh")
                .name("dies")
                .args(["-c", "for i in $(seq 1 30); do echo line $i; done; echo oops >&2; exit 3"])
                .ready(Probe::log_line("never printed")),
        )
        .await
        .unwrap_err();
    let msg = died.to_string();
    println!("{msg}");
    assert!(matches!(died, Error::NotReady { .. }), "{msg}");
    assert!(msg.contains("exited with code 3") && msg.contains("exited first"), "{msg}");
    assert!(msg.contains("line 11\n") && msg.contains("line 30\n") && !msg.contains("line 10\n"), "{msg}");
    assert!(msg.contains("oops"), "{msg}");
    let hung = cx
        .start(
            Command::new("sh")
                .name("hangs")
                .args(["-c", "echo starting; exec sleep 30"])
                .ready(Probe::tcp(format!("127.0.0.1:{}", free_port())))
                .ready_timeout(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
    let msg = hung.to_string();
    assert!(msg.contains("timed out") && msg.contains("still running") && msg.contains("starting"), "{msg}");
    assert!(procfs::marked_pids(cx.sandbox().run_id()).is_empty(), "the failed fixture was stopped");
    teardown_clean(cx.sandbox(), &[]);
}

/// Restart gives a new, ready main process; kill_tree empties the cgroup and exits_within sees
/// the main process end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_and_kill_tree_are_confirmed() {
    let mut cx = cx("sandbox::restart");
    let p = cx.start(prefork(2, "stay")).await.unwrap();
    let before = wait_members(&p, 3).await;
    let out = cx
        .scenario("restart, then kill the tree")
        .inject(Fault::restart(&p))
        .expect(Criterion::process_count(p.all()).reaches(3).within(Duration::from_secs(5)))
        .inject(Fault::kill_tree(&p))
        .expect(Criterion::exits_within(Duration::from_secs(2)).of(&p))
        .expect(Criterion::process_count(p.all()).reaches(0).within(Duration::from_secs(2)))
        .run()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let text = out.to_string();
    println!("{text}");
    assert!(text.contains("main pid") && text.contains("(ready)"), "{text}");
    assert!(text.contains("all 3 processes gone"), "{text}");
    for b in &before {
        assert!(b.is_gone());
    }
    drop(p);
    teardown_clean(cx.sandbox(), &before);
}

/// Selectors: main, children, nth, command-line regex over rewritten titles, seeded random.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_pick_roles() {
    let mut cx = cx("sandbox::selectors");
    let p = cx.start(prefork(3, "exit")).await.unwrap();
    let members = wait_members(&p, 4).await;
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(7);
    assert_eq!(p.main().resolve(&mut rng), vec![members[0].clone()]);
    assert_eq!(p.children().resolve(&mut rng), members[1..].to_vec());
    assert_eq!(p.nth(1).resolve(&mut rng), vec![members[2].clone()]);
    assert!(p.nth(9).resolve(&mut rng).is_empty());
    // Workers rewrite their titles right after fork: give them a moment.
    let t0 = Instant::now();
    let w2 = loop {
        let w2 = p.matching("worker 2$").unwrap().resolve(&mut rng);
        if w2.len() == 1 || t0.elapsed() > Duration::from_secs(5) {
            break w2;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(w2.len(), 1);
    assert!(chaos_harness::sandbox::snapshot::ProcSnapshot::take(&w2[0]).unwrap().cmdline.ends_with("worker 2"));
    assert_eq!(p.matching("master").unwrap().resolve(&mut rng), vec![members[0].clone()]);
    let pick = |seed| {
        let mut r = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
        p.random().resolve(&mut r)
    };
    assert_eq!(pick(5), pick(5), "random is reproducible from the seed");
    assert!(members[1..].contains(&pick(5)[0]));
    assert!(p.matching("(").is_err());
    drop(p);
    teardown_clean(cx.sandbox(), &members);
}

/// Stop: SIGTERM first; a program ignoring it is SIGKILLed after the grace period; cgroups are
/// removed and journaled as undone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_escalates_to_sigkill_and_removes_cgroups() {
    let mut cx = cx("sandbox::stop");
    let p = cx
        .start(
            Command::new("sh")
                .name("stubborn")
                .args(["-c", "trap '' TERM; echo up; while true; do sleep 0.05; done"])
                .ready(Probe::log_line("^up$"))
                .stop_grace(Duration::from_millis(200)),
        )
        .await
        .unwrap();
    let members = p.scope().members();
    let cgs: Vec<PathBuf> = p.scope().cgroups().iter().map(|c| c.dir()).collect();
    assert_eq!(cgs.is_empty(), !cx.sandbox().uses_cgroups());
    let t0 = Instant::now();
    p.stop().await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(200), "waited the grace period");
    for c in &cgs {
        assert!(!c.exists(), "{} removed", c.display());
    }
    let pending = journal::Parsed::read(cx.sandbox().journal_path()).unwrap().pending;
    assert!(
        pending
            .iter()
            .all(|p| matches!(p.effect, journal::Effect::TempDir { .. } | journal::Effect::CgroupParent { .. })),
        "only the temp dir and shared cgroup parents stay pending: {pending:?}"
    );
    teardown_clean(cx.sandbox(), &members);
}

/// The fallback as a real non-root user: re-runs `nobody_inner` as `nobody` via setpriv.
#[test]
fn fallback_as_nobody_via_setpriv() {
    if !is_root() || !Path::new("/usr/bin/setpriv").exists() {
        eprintln!("skipped: needs root and setpriv to drop to nobody");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(&exe)
        .args(["--exact", "nobody_inner", "--ignored", "--nocapture", "--test-threads=1"])
        .env("CHAOS_NOBODY_INNER", "1")
        .env("TMPDIR", "/tmp")
        .current_dir("/tmp")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
    assert!(text.contains("REDUCED (no cgroups: not root"), "{text}");
}

#[test]
#[ignore = "run as nobody by fallback_as_nobody_via_setpriv"]
fn nobody_inner() {
    if std::env::var("CHAOS_NOBODY_INNER").is_err() {
        return;
    }
    assert!(!is_root());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let mut cx = cx("sandbox::nobody");
        let p = cx.start(prefork(2, "exit")).await.unwrap();
        let members = wait_members(&p, 3).await;
        let notes = cx.sandbox().notes().join("\n");
        println!("{notes}");
        assert!(notes.contains("not root"), "{notes}");
        let out = cx
            .scenario("kill as nobody")
            .inject(Fault::kill(p.main()))
            .expect(Criterion::no_orphans().of(&p).within(Duration::from_secs(3)))
            .run()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.passed());
        drop(p);
        teardown_clean(cx.sandbox(), &members);
    });
}

/// Teardown from another thread while the body still runs (the runner's timeout path): every
/// process dies, new side effects are refused with SandboxClosed, teardown is idempotent.
#[test]
fn teardown_while_body_runs_kills_everything_and_refuses_new_effects() {
    let sb = Arc::new(Sandbox::new("sandbox::concurrent").unwrap());
    let seen: Arc<Mutex<Vec<OwnedPid>>> = Arc::default();
    let (sb2, seen2) = (sb.clone(), seen.clone());
    let body = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let mut cx = Chaos::with_sandbox("sandbox::concurrent", 1, sb2);
            let p = cx.start(prefork(2, "stay")).await.unwrap();
            let first = wait_members(&p, 3).await;
            seen2.lock().unwrap().extend(first);
            // Keep starting fixtures until the sandbox closes under us.
            let mut held = vec![];
            loop {
                match cx.start(Command::new("sleep").arg("30")).await {
                    Ok(s) => {
                        seen2.lock().unwrap().extend(s.scope().members());
                        held.push(s);
                    }
                    Err(e) => return (e, p, held),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    });
    while seen.lock().unwrap().len() < 5 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let report = sb.teardown().unwrap_or_else(|e| panic!("{e}"));
    assert!(report.is_clean(), "{report}");
    let (err, p, held) = body.join().unwrap();
    assert!(
        matches!(err, Error::SandboxClosed { .. }) || matches!(err, Error::Io { .. } | Error::Spawn { .. }),
        "body saw {err}"
    );
    drop(held);
    drop(p);
    let again = sb.teardown().unwrap();
    assert_eq!(again, report, "idempotent");
    let pids = seen.lock().unwrap().clone();
    teardown_clean(&sb, &pids);
}

/// The harness is SIGKILLed with fixtures running and a freeze in force; replaying its journal
/// from disk alone (what the reaper will do) removes everything.
#[test]
fn journal_replay_after_harness_sigkill_undoes_everything() {
    if !is_root() {
        eprintln!("skipped: needs root (cgroups and the freezer)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let info = dir.path().join("info");
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe)
        .args(["--exact", "crash_inner", "--ignored", "--nocapture"])
        .env("CHAOS_CRASH_INNER", &info)
        // This test replays the journal by hand; the crash reaper would race it (the reaper
        // itself is covered by tests/chaos/safety.rs).
        .env("CHAOS_NO_REAPER", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !info.exists() {
        assert!(t0.elapsed() < Duration::from_secs(20), "inner harness never got ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&info).unwrap();
    let mut lines = text.lines();
    let journal_path = PathBuf::from(lines.next().unwrap());
    let run_id = lines.next().unwrap().to_string();
    let pids: Vec<OwnedPid> = lines.map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(pids.len(), 3);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    assert!(!run_cgroups(&run_id).is_empty(), "cgroups outlive the harness");
    assert!(pids.iter().all(|p| !p.is_gone()), "fixture processes outlive the harness");
    let report = journal::replay(&journal_path, false).unwrap();
    assert!(report.is_clean(), "{report}");
    assert!(report.undone.iter().any(|u| u.starts_with("frozen cgroup")), "{report}");
    assert!(pids.iter().all(|p| p.is_gone()));
    assert!(run_cgroups(&run_id).is_empty());
    assert!(!journal_path.exists() && !journal_path.parent().unwrap().exists());
}

#[test]
#[ignore = "run and SIGKILLed by journal_replay_after_harness_sigkill_undoes_everything"]
fn crash_inner() {
    let Some(info) = std::env::var_os("CHAOS_CRASH_INNER") else { return };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let mut cx = cx("sandbox::crash");
        let p = cx.start(prefork(2, "stay")).await.unwrap();
        let members = wait_members(&p, 3).await;
        let sandbox = cx.sandbox().clone();
        let active = Fault::freeze(&p).inject(FaultContext { sandbox: &sandbox, rng: cx.rng() }).await.unwrap();
        let mut text = format!("{}\n{}\n", cx.sandbox().journal_path().display(), cx.sandbox().run_id());
        for m in &members {
            text.push_str(&serde_json::to_string(m).unwrap());
            text.push('\n');
        }
        let tmp = PathBuf::from(&info).with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &info).unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(active);
        drop(p);
    });
}

/// Observation keeps every process the fixture ever owned: a killed worker stays in the
/// history with the time it was found gone, next to its replacement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_keeps_every_process_ever_owned() {
    let mut cx = cx("sandbox::history");
    let p = cx.start(prefork(2, "exit").arg("--respawn")).await.unwrap();
    let members = wait_members(&p, 3).await;
    let out = cx.scenario("kill one worker").inject(Fault::kill(p.nth(0))).run().await.unwrap();
    let killed = out.confirmations[0].pids[0];
    let t0 = Instant::now();
    let history = loop {
        let h = p.scope().history();
        if h.len() >= 4 && h.iter().any(|r| r.first.pid == killed && r.gone_at.is_some()) {
            break h;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "history never showed the kill and respawn: {h:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let dead = history.iter().find(|r| r.first.pid == killed).unwrap();
    assert!(dead.first.rss_bytes > 0 && dead.first.cmdline.contains("prefork"), "{:?}", dead.first);
    assert_eq!(history.iter().filter(|r| r.gone_at.is_none()).count(), 3, "master + 2 workers alive");
    drop(p);
    teardown_clean(cx.sandbox(), &members);
}

/// `CHAOS_SANDBOX_NO_CGROUPS=1` forces the fallback (checked in a child process, since the
/// environment is process-wide).
#[test]
fn env_switch_forces_the_fallback() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", "env_switch_inner", "--ignored", "--nocapture"])
        .env("CHAOS_SANDBOX_NO_CGROUPS", "1")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}

#[test]
#[ignore = "run with CHAOS_SANDBOX_NO_CGROUPS=1 by env_switch_forces_the_fallback"]
fn env_switch_inner() {
    if std::env::var("CHAOS_SANDBOX_NO_CGROUPS").is_err() {
        return;
    }
    let sb = Sandbox::new("sandbox::env_switch").unwrap();
    assert!(!sb.uses_cgroups());
    let scope = sb.scope("x").unwrap();
    assert!(scope.cgroups().is_empty() && !scope.guarantee().is_full());
    assert!(sb.notes().join(" ").contains("CHAOS_SANDBOX_NO_CGROUPS=1"));
    drop(scope);
    teardown_clean(&sb, &[]);
}
