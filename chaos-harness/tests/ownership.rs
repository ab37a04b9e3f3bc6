//! Ownership by proof, not by name (issue [reliability] items 2-5, 7): teardown and `chaos
//! cleanup` act only on journaled things and things with proof, never on look-alikes (a user's
//! temp dir, cgroup, netns, nft table, a process with a spoofed marker) nor on a live run seen
//! from another `TMPDIR`; a frozen stray is thawed before it is killed, each removal with its
//! own deadline. Every test builds real decoys and removes them by hand afterwards; cleanup runs
//! are limited with `matching` to this test's own token so other runs on the machine are
//! never touched.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chaos_harness::safety::cleanup::{CleanupOptions, CleanupReport, cleanup};
use chaos_harness::sandbox::runs::{self, RunRecord};
use chaos_harness::sandbox::{Effect, RUN_MARKER_ENV, Sandbox, cgroup, procfs};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn alive(pid: u32) -> bool {
    procfs::stat(pid as i32).is_some_and(|s| !s.is_dead())
}

fn sleeper(marker: Option<&str>) -> Child {
    let mut c = Command::new("sleep");
    c.arg("300").stdin(Stdio::null());
    if let Some(m) = marker {
        c.env(RUN_MARKER_ENV, m);
    }
    c.spawn().expect("spawn sleep")
}

fn kill(c: &mut Child) {
    let _ = c.kill();
    let _ = c.wait();
}

fn token(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{tag}{}x{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn run(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn clean(matching: &str, force: bool) -> CleanupReport {
    cleanup(&CleanupOptions { matching: Some(matching.into()), force, ..Default::default() })
}

/// Item 2: a process carrying the current run's marker but not journaled (and in none of the
/// sandbox's cgroups) survives teardown and is reported; the journaled one dies.
#[test]
fn teardown_kills_journaled_processes_not_spoofed_markers() {
    let sb = Sandbox::new("ownership::spoofed_marker").unwrap();
    let run_id = sb.run_id().to_string();
    let effect = Effect::Process { fixture: "f".into(), run_id: run_id.clone(), program: "sleep".into() };
    let ((), seq) = sb.record(effect, || Ok(())).unwrap();
    let mut ours = sleeper(Some(&run_id));
    let st = procfs::start_time(ours.id() as i32).unwrap();
    sb.journal().pid(seq, ours.id() as i32, st).unwrap();
    let mut decoy = sleeper(Some(&run_id));
    let report = sb.teardown().unwrap();
    let _ = ours.wait();
    let decoy_alive = alive(decoy.id());
    let notes = report.notes.join("\n");
    kill(&mut decoy);
    assert!(decoy_alive, "teardown killed a process whose only tie to the run was a spoofable marker");
    assert!(notes.contains(&decoy.id().to_string()), "the spoofed process must be reported: {report}");
}

/// Items 2 and 4: user things that only look like ours are reported, not removed; a process
/// with an old spoofed marker is killed only with `--force`.
#[test]
fn cleanup_keeps_look_alikes_and_kills_marker_only_processes_only_with_force() {
    if !is_root() {
        eprintln!("skipped: needs root (cgroups, netns, nft)");
        return;
    }
    let tok = token("decoy");
    let user_dir = std::env::temp_dir().join(format!("chaos-harness-userdata-{tok}"));
    std::fs::create_dir_all(&user_dir).unwrap();
    std::fs::write(user_dir.join("thesis.txt"), "a user's file").unwrap();
    let pids = cgroup::hierarchies().iter().find(|h| h.controller == "pids").expect("pids hierarchy").clone();
    let user_cg = pids.mount.join(cgroup::PARENT).join(format!("userjob-{tok}"));
    std::fs::create_dir_all(&user_cg).unwrap();
    let mut user_job = sleeper(None);
    std::fs::write(user_cg.join("cgroup.procs"), user_job.id().to_string()).unwrap();
    let netns = format!("chaos-userns-{tok}");
    let have_netns = run("ip", &["netns", "add", &netns]);
    let table = format!("chaos_user_{tok}");
    let have_nft = run("nft", &["add", "table", "inet", &table]);
    let mut spoofed = sleeper(Some(&format!("6000000-1-0-{tok}")));

    let report = clean(&tok, false);
    let intact = (
        user_dir.join("thesis.txt").exists(),
        user_cg.exists() && alive(user_job.id()),
        !have_netns || Path::new("/run/netns").join(&netns).exists(),
        !have_nft || run("nft", &["list", "table", "inet", &table]),
        alive(spoofed.id()),
    );
    let forced = clean(&tok, true);
    let spoofed_after_force = alive(spoofed.id());

    kill(&mut spoofed);
    kill(&mut user_job);
    let _ = std::fs::remove_dir_all(&user_dir);
    let t0 = Instant::now();
    while std::fs::remove_dir(&user_cg).is_err() && user_cg.exists() && t0.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
    }
    if have_netns {
        run("ip", &["netns", "delete", &netns]);
    }
    if have_nft {
        run("nft", &["delete", "table", "inet", &table]);
    }
    assert_eq!(intact, (true, true, true, true, true), "a look-alike was touched:\n{report}");
    assert!(report.is_clean(), "{report}");
    let text = report.to_string();
    assert!(text.contains("kept") && text.contains("no proof"), "look-alikes must be reported as kept:\n{text}");
    assert!(text.contains("the marker alone is no proof"), "{text}");
    assert!(!spoofed_after_force, "--force kills marker-only processes:\n{forced}");
}

/// Item 3: `chaos cleanup` run with another TMPDIR than a live harness finds the run through
/// the registry and touches none of its things.
#[test]
fn cleanup_under_another_tmpdir_leaves_a_live_run_alone() {
    if !is_root() {
        eprintln!("skipped: needs root (cgroups)");
        return;
    }
    let sb = Sandbox::new("ownership::live_other_tmpdir").unwrap();
    let scope = sb.scope("web").unwrap();
    let cgs: Vec<PathBuf> = scope.cgroups().iter().map(|c| c.dir()).collect();
    assert!(!cgs.is_empty());
    let mut child = sleeper(None);
    for cg in scope.cgroups() {
        std::fs::write(cg.dir().join("cgroup.procs"), child.id().to_string()).unwrap();
    }
    let other = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "cleanup_inner", "--ignored", "--nocapture"])
        .env("CHAOS_CLEANUP_INNER", sb.run_id())
        .env("TMPDIR", other.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let untouched = (child_alive(&child), cgs.iter().all(|c| c.exists()), sb.temp_dir().exists());
    kill(&mut child);
    drop(scope);
    let report = sb.teardown().unwrap();
    assert!(report.is_clean(), "{report}");
    assert!(out.status.success(), "{text}");
    assert_eq!(untouched, (true, true, true), "cleanup under another TMPDIR touched the live run:\n{text}");
    assert!(text.contains("kept"), "the live run is reported as kept:\n{text}");
}

fn child_alive(c: &Child) -> bool {
    alive(c.id())
}

#[test]
#[ignore = "run by cleanup_under_another_tmpdir_leaves_a_live_run_alone"]
fn cleanup_inner() {
    let Ok(run) = std::env::var("CHAOS_CLEANUP_INNER") else { return };
    println!("{}", clean(&run, false));
}

/// A registered run whose owner is dead (a real process that exited).
fn dead_run(tok: &str) -> RunRecord {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id() as i32;
    let st = procfs::start_time(pid).unwrap_or(1);
    c.wait().unwrap();
    let run_id = format!("{:x}-{pid}-{tok}", 0x6000_0000u32);
    let rec = RunRecord {
        run_id: run_id.clone(),
        test: "ownership::dead".into(),
        owner_pid: pid,
        owner_start_time: st,
        temp_dir: std::env::temp_dir().join(format!("chaos-harness-{run_id}")),
    };
    runs::register(&rec).unwrap();
    rec
}

/// Item 5: a frozen stray of a dead run is thawed before it is killed, and every removal has
/// its own deadline (the pids cgroup is not failed by a freezer cgroup behind it).
#[test]
fn cleanup_thaws_a_frozen_stray_before_killing_it() {
    if !is_root() {
        eprintln!("skipped: needs root (cgroups, freezer)");
        return;
    }
    let hs = cgroup::hierarchies();
    let (Some(pids), Some(freezer)) =
        (hs.iter().find(|h| h.controller == "pids"), hs.iter().find(|h| h.controller == "freezer"))
    else {
        eprintln!("skipped: needs the v1 pids and freezer hierarchies");
        return;
    };
    let tok = token("frozen");
    let rec = dead_run(&tok);
    let name = format!("{}-web", rec.run_id);
    let dirs: Vec<PathBuf> = [pids, freezer].iter().map(|h| h.mount.join(cgroup::PARENT).join(&name)).collect();
    let mut stray = sleeper(None);
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("cgroup.procs"), stray.id().to_string()).unwrap();
    }
    std::fs::write(dirs[1].join("freezer.state"), "FROZEN").unwrap();
    let t0 = Instant::now();
    while std::fs::read_to_string(dirs[1].join("freezer.state")).unwrap().trim() != "FROZEN" {
        assert!(t0.elapsed() < Duration::from_secs(2));
        std::thread::sleep(Duration::from_millis(5));
    }
    let report = clean(&tok, false);
    let stray_alive = alive(stray.id());
    let left: Vec<&PathBuf> = dirs.iter().filter(|d| d.exists()).collect();
    // Hand cleanup whatever happened.
    let _ = std::fs::write(dirs[1].join("freezer.state"), "THAWED");
    kill(&mut stray);
    for d in &dirs {
        let t0 = Instant::now();
        while d.exists() && std::fs::remove_dir(d).is_err() && t0.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    runs::unregister(&rec.run_id);
    assert!(report.is_clean(), "{report}");
    assert!(!stray_alive, "the frozen stray survived:\n{report}");
    assert!(left.is_empty(), "cgroups left: {left:?}\n{report}");
    assert!(runs::all().iter().all(|r| r.run_id != rec.run_id), "the dead run's registry entry is dropped");
}
