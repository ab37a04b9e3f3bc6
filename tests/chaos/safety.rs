//! Safety meta-tests (tag `safety`): the `safety-victim` target of `fixtures/selftest-suite`
//! puts fixture processes, a network namespace, an nft table with a rule, a tmpfs mount, a
//! frozen fixture, a fill file and (on a *survivor* process owned by this test) SIGSTOP, a
//! frozen freezer cgroup and a lowered RLIMIT_NOFILE in force, then churns faults until it is
//! killed. These tests kill or interrupt it at seeded random moments and check that within 2 s
//! nothing of it is left and the survivor is restored; they also cover the second Ctrl-C, the
//! production guard, dry runs, `chaos cleanup` and the reaper's sweep of stale runs.
//!
//! The tests take a lock so they never overlap (each measures a 2 s budget on a 2-core box).

use std::path::{Path, PathBuf};
use std::process::{Child, Command as Std, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chaos_harness::fixture::Process;
use chaos_harness::prelude::*;
use chaos_harness::sandbox::{cgroup, procfs};
use rand::Rng;

/// The acceptance budget: everything undone within 2 s of the kill.
const BUDGET: Duration = Duration::from_secs(2);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A command with the outer run's harness settings removed.
fn clean(mut cmd: Std) -> Std {
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("CHAOS_") || k.starts_with("NEXTEST") || k.starts_with("SAFETY_") || k == "RUST_LOG" {
            cmd.env_remove(&key);
        }
    }
    cmd.current_dir(workspace_root());
    cmd
}

/// Builds the victim once per run.
fn victim_binary() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Mutex<Option<PathBuf>>> = OnceLock::new();
    let mut slot = BUILT.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = &*slot {
        return Ok(p.clone());
    }
    let cargo = std::env::var_os("CARGO").map(PathBuf::from).unwrap_or_else(|| "cargo".into());
    let out = clean(Std::new(cargo))
        .args(["test", "-p", "selftest-suite", "--test", "safety-victim", "--no-run", "--message-format=json"])
        .output()
        .context("running cargo to build the safety victim")?;
    ensure!(out.status.success(), "building safety-victim failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let path = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("executable").and_then(|e| e.as_str()).map(PathBuf::from))
        .next_back()
        .context("cargo reported no executable for safety-victim")?;
    *slot = Some(path.clone());
    Ok(path)
}

/// A process of this test's own sandbox on which the victim stops, freezes and lowers the
/// rlimit: restoring it is observable after the victim is gone.
struct Survivor {
    proc: Process,
    pid: i32,
    nofile: (u64, u64),
    freezer: cgroup::CgroupRef,
}

fn nofile(pid: i32) -> anyhow::Result<(u64, u64)> {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: reading into a valid struct.
    let r = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, std::ptr::null(), &mut l) };
    ensure!(r == 0, "prlimit({pid}): {}", std::io::Error::last_os_error());
    Ok((l.rlim_cur, l.rlim_max))
}

impl Survivor {
    async fn start(cx: &mut Chaos) -> anyhow::Result<Self> {
        let proc = cx.start(Command::new("sleep").name("survivor").arg("100000")).await?;
        let pid = proc.pid().context("survivor pid")?;
        let freezer = proc.scope().freezer().cloned().context("the survivor has no freezer cgroup")?;
        Ok(Self { pid, nofile: nofile(pid)?, freezer, proc })
    }

    fn spec(&self) -> String {
        let st = procfs::start_time(self.pid).unwrap_or(0);
        serde_json::json!({ "pid": self.pid, "start_time": st, "freezer": self.freezer }).to_string()
    }

    /// What is not restored yet.
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        match procfs::stat(self.pid) {
            None => p.push(format!("survivor {} is gone", self.pid)),
            Some(s) if s.is_stopped() => {
                p.push(format!("survivor {} is still stopped (state {:?})", self.pid, s.state))
            }
            Some(_) => {}
        }
        let file = if self.freezer.is_v2() { "cgroup.freeze" } else { "freezer.state" };
        let state = std::fs::read_to_string(self.freezer.dir().join(file)).unwrap_or_default();
        if !matches!(state.trim(), "THAWED" | "0") {
            p.push(format!("survivor's cgroup {} reads {}", self.freezer.dir().display(), state.trim()));
        }
        match nofile(self.pid) {
            Ok(now) if now != self.nofile => p.push(format!("survivor RLIMIT_NOFILE {now:?}, was {:?}", self.nofile)),
            Ok(_) => {}
            Err(e) => p.push(e.to_string()),
        }
        p
    }
}

/// Everything of the victim `pid` still present (run ids are `<secs>-<pid>-<n>`).
fn leftovers(pid: u32) -> Vec<String> {
    let dash = format!("-{pid}-");
    let under = format!("_{pid}_");
    let mut left = Vec::new();
    for h in cgroup::hierarchies() {
        if let Ok(d) = std::fs::read_dir(h.mount.join(cgroup::PARENT)) {
            for e in d.flatten() {
                if e.file_name().to_string_lossy().contains(&dash) {
                    left.push(format!("cgroup {}", e.path().display()));
                }
            }
        }
    }
    if let Ok(d) = std::fs::read_dir(std::env::temp_dir()) {
        for e in d.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("chaos-harness-") && n.contains(&dash) {
                left.push(format!("temp dir {n}"));
            }
        }
    }
    for n in chaos_harness::safety::cleanup::chaos_netns() {
        if n.contains(&dash) {
            left.push(format!("netns {n}"));
        }
    }
    for (f, n) in chaos_harness::safety::cleanup::chaos_nft_tables() {
        if n.contains(&under) {
            left.push(format!("nft table {f} {n}"));
        }
    }
    for line in std::fs::read_to_string("/proc/self/mounts").unwrap_or_default().lines() {
        if let Some(t) = line.split_whitespace().nth(1)
            && t.contains("chaos-harness-")
            && t.contains(&dash)
        {
            left.push(format!("mount {t}"));
        }
    }
    for p in procfs::all_pids() {
        let Ok(env) = std::fs::read(format!("/proc/{p}/environ")) else { continue };
        let marked = env
            .split(|b| *b == 0)
            .any(|e| e.starts_with(b"CHAOS_HARNESS_RUN=") && String::from_utf8_lossy(e).contains(&dash));
        if marked && procfs::stat(p).is_some_and(|s| !s.is_dead()) {
            left.push(format!("process {p} carrying CHAOS_HARNESS_RUN of the victim"));
        }
    }
    left
}

/// The pid of the victim's child moved out of every cgroup, from its info file.
fn escaped_pid(info: &Path) -> Option<i32> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(info).ok()?).ok()?;
    v["escaped_pid"].as_i64().map(|p| p as i32)
}

fn alive(pid: i32) -> bool {
    procfs::stat(pid).is_some_and(|s| !s.is_dead())
}

/// The reaper started by `victim` (its child named `chaos-reaper`).
fn reaper_of(victim: u32) -> Option<i32> {
    procfs::all_pids().into_iter().find(|&p| {
        procfs::stat(p).is_some_and(|s| s.ppid == victim as i32 && !s.is_dead())
            && std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "chaos-reaper")
    })
}

struct Victim {
    child: Child,
    info: PathBuf,
    out: PathBuf,
}

impl Victim {
    fn spawn(dir: &Path, tag: &str, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let info = dir.join(format!("{tag}.info.json"));
        let out = dir.join(format!("{tag}.out"));
        let log = std::fs::File::create(&out)?;
        let mut cmd = clean(Std::new(victim_binary()?));
        cmd.args(args).env("SAFETY_VICTIM_INFO", &info).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Ok(Self { child: cmd.spawn().context("spawning the victim")?, info, out })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until everything is in force (the info file exists).
    fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<serde_json::Value> {
        let t0 = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&self.info) {
                return Ok(serde_json::from_str(&text)?);
            }
            if let Some(st) = self.child.try_wait()? {
                bail!("the victim exited early ({st}):\n{}", self.output());
            }
            ensure!(t0.elapsed() < limit, "the victim was not ready after {limit:?}:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the victim to exit, at most [`BUDGET`] after `since` (a signal's sending).
    fn exit_within(&mut self, since: Instant, what: &str) -> anyhow::Result<std::process::ExitStatus> {
        loop {
            if let Some(st) = self.child.try_wait()? {
                return Ok(st);
            }
            ensure!(since.elapsed() < BUDGET, "{what}: the victim still runs {BUDGET:?} later:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) of our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

/// Polls until nothing of the victim is left and the survivor is restored; returns how long it
/// took after `since`, or what was still there at the budget.
fn wait_clean(pid: u32, survivor: &Survivor, since: Instant) -> Result<Duration, Vec<String>> {
    loop {
        let mut left = leftovers(pid);
        left.extend(survivor.problems());
        if left.is_empty() {
            return Ok(since.elapsed());
        }
        if since.elapsed() > BUDGET {
            return Err(left);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Undoes a victim run without a reaper even when the test fails half-way.
struct CleanupOnDrop(u32);

impl Drop for CleanupOnDrop {
    fn drop(&mut self) {
        let opts =
            chaos_harness::safety::cleanup::CleanupOptions { matching: Some(self.0.to_string()), ..Default::default() };
        let report = chaos_harness::safety::cleanup::cleanup(&opts);
        if report.removed() > 0 {
            tracing::info!("{report}");
        }
    }
}

fn audit_env(cx: &Chaos) -> (String, PathBuf) {
    let p = cx.sandbox().temp_dir().join("audit.jsonl");
    (p.to_string_lossy().into_owned(), p)
}

#[chaos_test(tags = ["safety"], timeout = "10m", requires = ["root", "cgroups", "freezer", "netns", "nft", "tmpfs"])]
async fn sigkill_at_20_random_moments_leaves_nothing(cx: &mut Chaos) -> ChaosResult {
    let _serial = SERIAL.lock().await;
    victim_binary()?;
    let survivor = Survivor::start(cx).await?;
    let dir = cx.sandbox().temp_dir().to_path_buf();
    let (audit, audit_path) = audit_env(cx);
    let spec = survivor.spec();
    let t_all = Instant::now();
    let (mut in_force, mut worst, mut escapes) = (0, Duration::ZERO, 0);
    for i in 0..20 {
        let mid_setup = i % 4 == 3;
        let delay = Duration::from_millis(if mid_setup {
            cx.rng().random_range(0..250)
        } else {
            cx.rng().random_range(0..150)
        });
        let mut v = Victim::spawn(
            &dir,
            &format!("kill{i}"),
            &["b_hold_everything_in_force", "--exact"],
            &[("SAFETY_SURVIVOR", spec.as_str()), ("CHAOS_AUDIT_LOG", audit.as_str())],
        )?;
        if !mid_setup {
            v.wait_ready(Duration::from_secs(20))?;
        }
        tokio::time::sleep(delay).await;
        let ready = v.info.exists();
        let escaped = escaped_pid(&v.info);
        let reaper = reaper_of(v.pid());
        v.signal(libc::SIGKILL);
        let killed = Instant::now();
        v.child.wait()?;
        match wait_clean(v.pid(), &survivor, killed) {
            Ok(took) => {
                tracing::info!(
                    kill = i,
                    in_force = ready,
                    delay_ms = delay.as_millis() as u64,
                    clean_after_ms = took.as_millis() as u64,
                    "SIGKILL"
                );
                worst = worst.max(took)
            }
            Err(left) => bail!(
                "kill {i} (after {delay:?}, everything in force: {ready}): left after {BUDGET:?}: {left:#?}\n{}",
                v.output()
            ),
        }
        if let Some(r) = reaper {
            while alive(r) {
                ensure!(killed.elapsed() < BUDGET, "kill {i}: the reaper {r} still runs {BUDGET:?} after the kill");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // Still clean once the reaper is gone (its settle passes found nothing re-created).
        let mut left = leftovers(v.pid());
        left.extend(survivor.problems());
        ensure!(left.is_empty(), "kill {i}: after the reaper exited: {left:?}");
        if let Some(p) = escaped {
            ensure!(!alive(p), "kill {i}: the child {p} moved out of its fixture's cgroups outlived the victim");
            escapes += 1;
        }
        in_force += ready as u32;
    }
    // As root the kernel's process events are available: every kill in force had an escapee.
    ensure!(escapes == in_force, "{escapes} of {in_force} kills in force had a child moved out of the cgroups");
    tracing::info!(
        in_force,
        worst_ms = worst.as_millis() as u64,
        total_ms = t_all.elapsed().as_millis() as u64,
        "20 SIGKILLs"
    );
    ensure!(in_force >= 15, "only {in_force} of 20 kills landed with everything in force");
    let (entries, bad) = chaos_harness::sandbox::audit::read(&audit_path)?;
    ensure!(bad.is_empty(), "unreadable audit lines: {bad:?}");
    for what in [
        "network namespace chaos-",
        "nft table inet chaos_",
        "mount on",
        "frozen cgroup",
        "SIGSTOP of pid",
        "rlimit 7 of pid",
    ] {
        ensure!(
            entries.iter().any(|e| e.by == chaos_harness::sandbox::audit::By::Reaper
                && e.what.starts_with(what)
                && e.undo.as_deref() == Some("ok")),
            "no reaper undo of `{what}` in the audit log"
        );
    }
    drop(survivor.proc);
    Ok(())
}

#[chaos_test(tags = ["safety"], timeout = "10m", requires = ["root", "cgroups", "freezer", "netns", "nft", "tmpfs"])]
async fn sigint_at_random_moments_undoes_and_writes_partial_junit(cx: &mut Chaos) -> ChaosResult {
    let _serial = SERIAL.lock().await;
    victim_binary()?;
    let survivor = Survivor::start(cx).await?;
    let dir = cx.sandbox().temp_dir().to_path_buf();
    let spec = survivor.spec();
    for i in 0..20 {
        let mid_setup = i % 5 == 4;
        let delay = Duration::from_millis(if mid_setup {
            cx.rng().random_range(0..250)
        } else {
            cx.rng().random_range(0..150)
        });
        let junit = dir.join(format!("int{i}.xml"));
        let junit_s = junit.to_string_lossy().into_owned();
        let mut v = Victim::spawn(
            &dir,
            &format!("int{i}"),
            &["--test-threads", "1", "--skip", "z_dry", "--junit", &junit_s],
            &[("SAFETY_SURVIVOR", spec.as_str())],
        )?;
        if !mid_setup {
            v.wait_ready(Duration::from_secs(20))?;
        }
        tokio::time::sleep(delay).await;
        let ready = v.info.exists();
        v.signal(libc::SIGINT);
        let sent = Instant::now();
        let status = v.exit_within(sent, &format!("SIGINT {i}"))?;
        if let Err(left) = wait_clean(v.pid(), &survivor, sent) {
            bail!("SIGINT {i} (after {delay:?}, in force: {ready}): left after {BUDGET:?}: {left:#?}\n{}", v.output());
        }
        if ready {
            ensure!(status.code() == Some(130), "SIGINT {i}: exit {status}, want 130:\n{}", v.output());
            let xml = std::fs::read_to_string(&junit)
                .with_context(|| format!("SIGINT {i}: no partial JUnit\n{}", v.output()))?;
            ensure!(xml.contains("a_quick_passes"), "partial JUnit lacks the finished test:\n{xml}");
            ensure!(xml.contains("interrupted by SIGINT"), "partial JUnit lacks the interrupted test:\n{xml}");
            ensure!(v.output().contains("SIGINT received"), "{}", v.output());
        }
    }
    drop(survivor.proc);
    Ok(())
}

#[chaos_test(tags = ["safety"], timeout = "10m", requires = ["root", "cgroups", "freezer", "netns", "nft", "tmpfs"])]
async fn second_sigint_exits_at_once_and_the_reaper_undoes(cx: &mut Chaos) -> ChaosResult {
    let _serial = SERIAL.lock().await;
    victim_binary()?;
    let survivor = Survivor::start(cx).await?;
    let dir = cx.sandbox().temp_dir().to_path_buf();
    let spec = survivor.spec();
    for i in 0..3 {
        let mut v = Victim::spawn(
            &dir,
            &format!("twice{i}"),
            &["b_hold_everything_in_force", "--exact"],
            &[("SAFETY_SURVIVOR", spec.as_str())],
        )?;
        v.wait_ready(Duration::from_secs(20))?;
        v.signal(libc::SIGINT);
        std::thread::sleep(Duration::from_millis(2));
        v.signal(libc::SIGINT);
        let second = Instant::now();
        let status = loop {
            if let Some(st) = v.child.try_wait()? {
                break st;
            }
            ensure!(
                second.elapsed() < Duration::from_millis(500),
                "a second SIGINT must exit at once:\n{}",
                v.output()
            );
            std::thread::sleep(Duration::from_millis(2));
        };
        ensure!(status.code() == Some(130), "exit {status}, want 130:\n{}", v.output());
        if let Err(left) = wait_clean(v.pid(), &survivor, second) {
            bail!("second SIGINT {i}: left after {BUDGET:?}: {left:#?}\n{}", v.output());
        }
    }
    drop(survivor.proc);
    Ok(())
}

#[chaos_test(tags = ["safety"], timeout = "10m", requires = ["root", "cgroups", "freezer"])]
async fn dry_run_prints_the_plan_and_touches_nothing(cx: &mut Chaos) -> ChaosResult {
    let _serial = SERIAL.lock().await;
    let survivor = Survivor::start(cx).await?;
    let dir = cx.sandbox().temp_dir().to_path_buf();
    let (audit, audit_path) = audit_env(cx);
    let spec = survivor.spec();
    let mut v = Victim::spawn(
        &dir,
        "dry",
        &["--test-threads", "1"],
        &[("CHAOS_DRY_RUN", "1"), ("SAFETY_SURVIVOR", spec.as_str()), ("CHAOS_AUDIT_LOG", audit.as_str())],
    )?;
    let status = v.child.wait()?;
    let out = v.output();
    ensure!(status.success(), "dry run failed ({status}):\n{out}");
    for needle in [
        "DRY RUN (CHAOS_DRY_RUN=1)",
        "would create cgroup /sys/fs/cgroup/",
        "would spawn fixture held: sh (marked CHAOS_HARNESS_RUN=",
        "would create cgroup /sys/fs/cgroup/freezer/chaos-harness/",
        "side effect(s) planned, none performed; stopped before: processes of fixture held (sh))",
        "would inject the victim's never-run fault",
        "would wait 1h",
    ] {
        ensure!(out.contains(needle), "dry-run output lacks {needle:?}:\n{out}");
    }
    ensure!(!out.contains("FAILED"), "{out}");
    ensure!(!v.info.exists(), "the dry run must stop before anything is in force");
    let left = leftovers(v.pid());
    ensure!(left.is_empty(), "a dry run left {left:?}");
    ensure!(survivor.problems().is_empty(), "{:?}", survivor.problems());
    ensure!(reaper_of(v.pid()).is_none(), "a dry run starts no reaper");
    let (entries, _) = chaos_harness::sandbox::audit::read(&audit_path)?;
    ensure!(
        entries.iter().any(|e| e.event == chaos_harness::sandbox::audit::Event::Planned
            && e.what.starts_with("processes of fixture held")),
        "no `planned` audit entry: {entries:?}"
    );
    drop(survivor.proc);
    Ok(())
}

#[chaos_test(tags = ["safety"], timeout = "10m")]
async fn production_guard_refuses_unless_allowed(cx: &mut Chaos) -> ChaosResult {
    let _serial = SERIAL.lock().await;
    let dir = cx.sandbox().temp_dir().to_path_buf();
    let marker = dir.join("production");
    std::fs::write(&marker, "")?;
    let no_marker = dir.join("absent");
    let marker_s = marker.to_string_lossy().into_owned();
    let no_marker_s = no_marker.to_string_lossy().into_owned();
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: [Case; 2] = [
        ("env", vec![("CHAOS_ENV", "production"), ("CHAOS_PRODUCTION_MARKER", &no_marker_s)], "CHAOS_ENV=production"),
        ("marker", vec![("CHAOS_PRODUCTION_MARKER", &marker_s)], "the production marker file"),
    ];
    for (tag, env, why) in cases {
        let mut v = Victim::spawn(&dir, &format!("prod-{tag}"), &["a_quick_passes", "--exact"], &env)?;
        let status = v.child.wait()?;
        let out = v.output();
        ensure!(status.code() == Some(5), "{tag}: exit {status}, want 5 (refused):\n{out}");
        ensure!(out.contains("refused to run chaos experiments") && out.contains(why), "{tag}: {out}");
        ensure!(out.contains("CHAOS_ALLOW_PRODUCTION=1"), "{tag}: the fix is named: {out}");
        ensure!(leftovers(v.pid()).is_empty() && !out.contains("test result"), "{tag}: nothing may run");
    }
    let mut v = Victim::spawn(
        &dir,
        "prod-allowed",
        &["a_quick_passes", "--exact"],
        &[("CHAOS_ENV", "production"), ("CHAOS_ALLOW_PRODUCTION", "1"), ("CHAOS_PRODUCTION_MARKER", &no_marker_s)],
    )?;
    let status = v.child.wait()?;
    let out = v.output();
    ensure!(status.success(), "allowed run failed:\n{out}");
    ensure!(out.contains("allowed by CHAOS_ALLOW_PRODUCTION=1") && out.contains("1 passed"), "{out}");
    Ok(())
}

/// `chaos run` under the production guard exits with the documented refusal code (5) before
/// anything starts, for every production-like `CHAOS_ENV` spelling; a non-production value is
/// not refused by the guard.
#[chaos_test(tags = ["safety"], timeout = "5m")]
async fn chaos_run_under_the_production_guard_exits_with_the_refusal_code(cx: &mut Chaos) -> ChaosResult {
    let report = cx.sandbox().temp_dir().join("report");
    for value in ["production", "prod", "PRD", "production-eu", " Prod-US ", "live"] {
        let out = clean(Std::new(env!("CARGO_BIN_EXE_chaos")))
            .args(["run", "--report"])
            .arg(&report)
            .env("CHAOS_ENV", value)
            .env("CHAOS_PRODUCTION_MARKER", "")
            .output()?;
        let text = String::from_utf8_lossy(&out.stderr);
        ensure!(out.status.code() == Some(5), "CHAOS_ENV={value:?}: exit {}, want 5 (refused):\n{text}", out.status);
        ensure!(
            text.contains("refused to run chaos experiments") && text.contains("CHAOS_ALLOW_PRODUCTION=1"),
            "CHAOS_ENV={value:?}: the refusal names the cause and the fix:\n{text}"
        );
        ensure!(!report.exists() && !text.contains("scenario run(s)"), "CHAOS_ENV={value:?}: nothing may run");
    }
    let out = clean(Std::new(env!("CARGO_BIN_EXE_chaos")))
        .args(["run", "--only", "no-such-scenario"])
        .env("CHAOS_ENV", "staging")
        .env("CHAOS_PRODUCTION_MARKER", "")
        .output()?;
    ensure!(out.status.code() == Some(2), "staging is not refused by the guard: {}", out.status);
    Ok(())
}

fn chaos_cli(args: &[&str]) -> anyhow::Result<(std::process::ExitStatus, String)> {
    let out = clean(Std::new(env!("CARGO_BIN_EXE_chaos"))).args(args).output()?;
    Ok((out.status, format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))))
}

#[chaos_test(tags = ["safety"], timeout = "10m", requires = ["root", "cgroups", "freezer", "netns", "nft", "tmpfs"])]
async fn chaos_cleanup_undoes_a_crashed_run_and_strays(cx: &mut Chaos) -> ChaosResult {
    let _serial = SERIAL.lock().await;
    victim_binary()?;
    let survivor = Survivor::start(cx).await?;
    let dir = cx.sandbox().temp_dir().to_path_buf();
    let spec = survivor.spec();
    // A crash without a reaper leaves everything behind (the negative control).
    let mut v = Victim::spawn(
        &dir,
        "noreaper",
        &["b_hold_everything_in_force", "--exact"],
        &[("SAFETY_SURVIVOR", spec.as_str()), ("CHAOS_NO_REAPER", "1")],
    )?;
    let _cleanup = CleanupOnDrop(v.pid());
    v.wait_ready(Duration::from_secs(20))?;
    v.signal(libc::SIGKILL);
    v.child.wait()?;
    std::thread::sleep(Duration::from_millis(500));
    let pid = v.pid();
    let left = leftovers(pid);
    for kind in ["cgroup ", "temp dir ", "netns ", "nft table ", "mount ", "process "] {
        ensure!(left.iter().any(|l| l.starts_with(kind)), "without a reaper a {kind}should be left: {left:?}");
    }
    ensure!(survivor.problems().len() >= 2, "the survivor stays frozen and limited: {:?}", survivor.problems());
    // Strays that no journal lists but that carry the dead run's id (the proof cleanup needs):
    // a namespace, a cgroup holding a marked process, a temp dir with a tmpfs inside.
    let run_id = chaos_harness::sandbox::runs::all()
        .into_iter()
        .find(|r| r.owner_pid == pid as i32)
        .map(|r| r.run_id)
        .context("the crashed run is in the run registry")?;
    let token = format!("{run_id}-stray");
    ensure!(Std::new("ip").args(["netns", "add", &format!("chaos-{token}")]).status()?.success());
    let stray_dir = std::env::temp_dir().join(format!("chaos-harness-{token}"));
    std::fs::create_dir_all(stray_dir.join("mnt"))?;
    ensure!(
        Std::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(stray_dir.join("mnt"))
            .status()?
            .success()
    );
    let pids = cgroup::hierarchies().iter().find(|h| h.controller == "pids").context("pids hierarchy")?;
    let stray_cg = pids.mount.join(cgroup::PARENT).join(&token);
    std::fs::create_dir_all(&stray_cg)?;
    let mut stray_proc = Std::new("sleep").arg("100000").env("CHAOS_HARNESS_RUN", &token).spawn()?;
    std::fs::write(stray_cg.join("cgroup.procs"), stray_proc.id().to_string())?;

    let key = pid.to_string();
    let before = leftovers(pid);
    let (st, text) = chaos_cli(&["cleanup", "--dry-run", "--match", &key])?;
    ensure!(st.success(), "{text}");
    for needle in [
        "(dry run)",
        "would remove network namespace chaos-",
        "would remove nft table inet chaos_",
        "would remove temp dir",
        "(stray)",
    ] {
        ensure!(text.contains(needle), "dry-run report lacks {needle:?}:\n{text}");
    }
    ensure!(leftovers(pid) == before, "a cleanup dry run must not change anything");

    let (st, text) = chaos_cli(&["cleanup", "--match", &key])?;
    ensure!(st.success(), "cleanup failed:\n{text}");
    for needle in [
        "undone network namespace chaos-",
        "undone nft table inet chaos_",
        "undone mount on",
        "undone frozen cgroup",
        "undone SIGSTOP of pid",
        "undone rlimit 7 of pid",
        &format!("removed network namespace chaos-{token} (stray)"),
        &format!("cgroup {} (stray)", stray_cg.display()),
        &format!("removed temp dir {}", stray_dir.display()),
    ] {
        ensure!(text.contains(needle), "cleanup report lacks {needle:?}:\n{text}");
    }
    let _ = stray_proc.wait();
    let left = leftovers(pid);
    ensure!(left.is_empty(), "after cleanup: {left:?}\n{text}");
    ensure!(survivor.problems().is_empty(), "{:?}", survivor.problems());
    ensure!(!stray_dir.exists() && !stray_cg.exists(), "strays left");
    ensure!(!chaos_harness::safety::cleanup::chaos_netns().iter().any(|n| n.contains(&token)), "stray netns left");
    let (st, text) = chaos_cli(&["cleanup", "--match", &key])?;
    ensure!(st.success() && text.contains("nothing to clean"), "second cleanup must find nothing:\n{text}");
    drop(survivor.proc);
    Ok(())
}

#[chaos_test(tags = ["safety"], timeout = "10m", requires = ["root", "cgroups", "freezer", "netns", "nft", "tmpfs"])]
async fn a_new_run_sweeps_stale_runs_of_earlier_crashes(cx: &mut Chaos) -> ChaosResult {
    let _serial = SERIAL.lock().await;
    victim_binary()?;
    let survivor = Survivor::start(cx).await?;
    let dir = cx.sandbox().temp_dir().to_path_buf();
    let spec = survivor.spec();
    let mut v = Victim::spawn(
        &dir,
        "stale",
        &["b_hold_everything_in_force", "--exact"],
        &[("SAFETY_SURVIVOR", spec.as_str()), ("CHAOS_NO_REAPER", "1")],
    )?;
    let _cleanup = CleanupOnDrop(v.pid());
    v.wait_ready(Duration::from_secs(20))?;
    v.signal(libc::SIGKILL);
    v.child.wait()?;
    ensure!(!leftovers(v.pid()).is_empty(), "the crashed run must leave things for the sweep");
    // Stale once untouched for the grace (1 s here instead of 10 s).
    std::thread::sleep(Duration::from_millis(1200));
    let mut next =
        Victim::spawn(&dir, "sweeper", &["a_quick_passes", "--exact"], &[("CHAOS_REAPER_STALE_GRACE", "1s")])?;
    ensure!(next.child.wait()?.success(), "{}", next.output());
    let t0 = Instant::now();
    loop {
        let mut left = leftovers(v.pid());
        left.extend(survivor.problems());
        if left.is_empty() {
            break;
        }
        ensure!(t0.elapsed() < Duration::from_secs(10), "the next run's reaper did not sweep the stale run: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(survivor.proc);
    Ok(())
}

#[chaos_test(tags = ["safety"], timeout = "2m", requires = ["cgroups", "freezer"])]
async fn a_tripped_guard_aborts_and_heals_and_everything_is_audited(cx: &mut Chaos) -> ChaosResult {
    use chaos_harness::safety::guard::Guard;
    use chaos_harness::sandbox::audit::{self, By, Event};
    use chaos_harness::scenario::ScenarioError;
    let p = cx.start(Command::new("sleep").name("guarded").arg("100000")).await?;
    let freezer = p.scope().freezer().cloned().context("freezer cgroup")?;
    let t0 = Instant::now();
    let trip_at = Duration::from_millis(300);
    let err = cx
        .scenario("freeze under a guard")
        .guard(Guard::mem_available_below(0.0))
        .guard(Guard::probe("test probe", move || {
            if t0.elapsed() > trip_at { Err("the probe saw trouble".into()) } else { Ok(()) }
        }))
        .inject(Fault::freeze(&p))
        .wait(Duration::from_secs(60))
        .run()
        .await
        .err()
        .context("the guard must abort the scenario")?;
    let took = t0.elapsed();
    let ScenarioError::AbortedByGuard(out) = &err else { bail!("expected AbortedByGuard, got {err}") };
    tracing::info!("{out}");
    ensure!(took < Duration::from_secs(5), "aborted after {took:?}, want soon after the trip at {trip_at:?}");
    ensure!(!out.passed(), "an aborted scenario never passes");
    let text = out.to_string();
    ensure!(text.contains("ABORTED BY GUARD: aborted by guard `test probe`: the probe saw trouble"), "{text}");
    let healed = out.first(|k| {
        matches!(k, chaos_harness::observe::EventKind::FaultCleared { confirmation, .. }
            if confirmation.fault.contains("thaw the cgroup of guarded"))
    });
    ensure!(healed.is_some(), "the active fault is healed: {text}");
    let state =
        std::fs::read_to_string(freezer.dir().join(if freezer.is_v2() { "cgroup.freeze" } else { "freezer.state" }))?;
    ensure!(matches!(state.trim(), "THAWED" | "0"), "freezer reads {state}");
    // The audit log has the injection with its confirmation, the clearing with its undo result
    // and the guard's abort.
    let path = audit::path().context("the audit log is on by default")?;
    let (entries, _) = audit::read(&path)?;
    let run = cx.sandbox().run_id().to_string();
    let mine: Vec<_> = entries.iter().filter(|e| e.run_id == run).collect();
    ensure!(
        mine.iter().any(|e| e.event == Event::Inject
            && e.what.starts_with("freeze the cgroup of guarded")
            && e.confirmation.as_deref().is_some_and(|c| c.contains("FROZEN"))),
        "no inject entry with its confirmation: {mine:#?}"
    );
    ensure!(
        mine.iter().any(|e| e.event == Event::Clear && e.undo.as_deref() == Some("ok")),
        "no clear entry: {mine:#?}"
    );
    ensure!(
        mine.iter().any(|e| e.event == Event::Guard && e.by == By::Harness && e.what.contains("test probe")),
        "no guard entry: {mine:#?}"
    );
    Ok(())
}

/// Things that look like a harness's but are a user's: a temp dir named like a run's, a cgroup
/// under the harness's parent, a network namespace and an nft table with chaos-like names,
/// and a process in that cgroup carrying a spoofed run marker. No run may touch them.
struct Decoys {
    temp_dir: PathBuf,
    cgroup: PathBuf,
    netns: String,
    table: String,
    marked: Child,
}

impl Decoys {
    fn create() -> anyhow::Result<Self> {
        let tok = format!("{}x{}", std::process::id(), Instant::now().elapsed().subsec_nanos());
        let temp_dir = std::env::temp_dir().join(format!("chaos-harness-userdecoy-{tok}"));
        std::fs::create_dir_all(&temp_dir)?;
        std::fs::write(temp_dir.join("keep"), b"a user's file")?;
        let pids = cgroup::hierarchies().iter().find(|h| h.controller == "pids").context("no pids cgroup hierarchy")?;
        let cgroup = pids.mount.join(cgroup::PARENT).join(format!("userjob-{tok}"));
        std::fs::create_dir_all(&cgroup)?;
        let netns = format!("chaos-userns-{tok}");
        ensure!(run_tool("ip", &["netns", "add", &netns]), "ip netns add {netns}");
        let table = format!("chaos_user_{tok}");
        ensure!(run_tool("nft", &["add", "table", "inet", &table]), "nft add table inet {table}");
        let marked = Std::new("sleep")
            .arg("3000")
            .env(chaos_harness::sandbox::RUN_MARKER_ENV, "1700000000-999999-0")
            .stdin(Stdio::null())
            .spawn()?;
        std::fs::write(cgroup.join("cgroup.procs"), marked.id().to_string())?;
        Ok(Self { temp_dir, cgroup, netns, table, marked })
    }

    /// What of the decoys is no longer intact.
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.temp_dir.join("keep").exists() {
            p.push(format!("decoy temp dir {} was touched", self.temp_dir.display()));
        }
        if !self.cgroup.exists() {
            p.push(format!("decoy cgroup {} was removed", self.cgroup.display()));
        }
        if !chaos_harness::safety::cleanup::chaos_netns().contains(&self.netns) {
            p.push(format!("decoy netns {} was removed", self.netns));
        }
        if !chaos_harness::safety::cleanup::chaos_nft_tables().iter().any(|(_, n)| *n == self.table) {
            p.push(format!("decoy nft table {} was removed", self.table));
        }
        if !alive(self.marked.id() as i32) {
            p.push(format!("decoy process {} with a spoofed marker was killed", self.marked.id()));
        }
        p
    }
}

impl Drop for Decoys {
    fn drop(&mut self) {
        let _ = self.marked.kill();
        let _ = self.marked.wait();
        let _ = std::fs::remove_dir_all(&self.temp_dir);
        let _ = std::fs::remove_dir(&self.cgroup);
        run_tool("ip", &["netns", "delete", &self.netns]);
        run_tool("nft", &["delete", "table", "inet", &self.table]);
    }
}

fn run_tool(program: &str, args: &[&str]) -> bool {
    Std::new(program).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// The kill campaign of [reliability]: 50 SIGKILLs, 30 SIGINTs (10 of them 0-40 ms after the
/// start) and 20 SIGTERMs, in random order, of a harness holding process, network, resource
/// and external-proxy effects. After each: nothing of it left, its external proxy deleted,
/// the survivor restored and every decoy intact. Opt-in (`soak`): about 100 harness runs.
#[chaos_test(
    tags = ["safety", "soak"],
    timeout = "60m",
    requires = ["root", "cgroups", "freezer", "netns", "nft", "tmpfs"]
)]
async fn kill_campaign_leaves_nothing_and_every_decoy_intact(cx: &mut Chaos) -> ChaosResult {
    use rand::seq::SliceRandom;
    let _serial = SERIAL.lock().await;
    victim_binary()?;
    let decoys = Decoys::create()?;
    let registry = chaos_proxy::ProxyRegistry::new(3);
    let api = chaos_proxy::ApiServer::start("127.0.0.1:0", registry.clone()).await?;
    let url = api.url();
    let survivor = Survivor::start(cx).await?;
    let dir = cx.sandbox().temp_dir().to_path_buf();
    let spec = survivor.spec();
    let mut plan: Vec<(i32, bool)> = Vec::new();
    plan.extend(std::iter::repeat_n((libc::SIGKILL, false), 50));
    plan.extend(std::iter::repeat_n((libc::SIGINT, true), 10));
    plan.extend(std::iter::repeat_n((libc::SIGINT, false), 20));
    plan.extend(std::iter::repeat_n((libc::SIGTERM, false), 20));
    plan.shuffle(cx.rng());
    let (mut in_force, mut worst, t_all) = (0u32, Duration::ZERO, Instant::now());
    for (i, &(sig, early)) in plan.iter().enumerate() {
        let env = [("SAFETY_SURVIVOR", spec.as_str()), ("SAFETY_TOXIPROXY_URL", url.as_str())];
        let mut v = Victim::spawn(&dir, &format!("c{i}"), &["b_hold_everything_in_force", "--exact"], &env)?;
        let delay = if early {
            Duration::from_millis(cx.rng().random_range(0..40))
        } else {
            v.wait_ready(Duration::from_secs(20))?;
            Duration::from_millis(cx.rng().random_range(0..150))
        };
        tokio::time::sleep(delay).await;
        let info: Option<serde_json::Value> =
            std::fs::read_to_string(&v.info).ok().and_then(|t| serde_json::from_str(&t).ok());
        v.signal(sig);
        let sent = Instant::now();
        let status = v.exit_within(sent, &format!("run {i} (signal {sig})"))?;
        let took = wait_clean(v.pid(), &survivor, sent).map_err(|left| {
            anyhow::anyhow!("run {i} (signal {sig}, early {early}, after {delay:?}): left {left:#?}\n{}", v.output())
        })?;
        worst = worst.max(took);
        if let Some(info) = &info {
            in_force += 1;
            let want = match sig {
                libc::SIGINT => Some(130),
                libc::SIGTERM => Some(143),
                _ => None,
            };
            ensure!(
                want.is_none() || status.code() == want,
                "run {i}: exit {status} after signal {sig}, want {want:?}"
            );
            if let Some(name) = info["external_proxy"].as_str() {
                while registry.get(name).is_ok() {
                    ensure!(sent.elapsed() < Duration::from_secs(10), "run {i}: external proxy {name} still exists");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        let broken = decoys.problems();
        ensure!(broken.is_empty(), "run {i} (signal {sig}): {broken:?}");
    }
    let stray: Vec<String> = registry.names().into_iter().filter(|n| n.starts_with("chaos-")).collect();
    ensure!(stray.is_empty(), "external proxies left: {stray:?}");
    tracing::info!(
        runs = plan.len(),
        in_force,
        worst_clean_ms = worst.as_millis() as u64,
        total_s = t_all.elapsed().as_secs(),
        "kill campaign: 50 SIGKILL, 30 SIGINT (10 within 40 ms of start), 20 SIGTERM; 0 leftovers, decoys intact"
    );
    api.shutdown().await;
    drop(survivor.proc);
    Ok(())
}
