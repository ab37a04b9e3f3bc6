//! Sandbox benchmarks (criterion), all in one run so the ratios are meaningful:
//!
//! - `orphan_scan`: finding a fixture's live processes with 2000 unrelated processes alive:
//!   `cgroup` (read the fixture's `cgroup.procs` + `/proc/PID/stat` of each member, what
//!   `no_orphans` polls) against `proc_environ_scan` (every `/proc/*/environ` for the run
//!   marker) and `fallback_tree` (the no-cgroup scope: every `/proc/*/stat` plus marker).
//!   Target: cgroup <= 2 ms.
//! - `kill_confirmed`: SIGKILL through the ownership check (pidfd + cgroup + start time) until
//!   the victim is gone or a zombie. Victims: a `sleep` respawned by a shell loop, and a Python
//!   pre-fork worker. Target: <= 1 ms p50. A percentile summary (p50/p90/p99 over 500 kills)
//!   is printed before criterion's own numbers.
//!
//! Needs root (cgroups); without it the cgroup benches are skipped with a message.
//! Run: `CARGO_TARGET_DIR=... cargo bench -p chaos-harness --bench sandbox`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos_harness::fault::process::wait_gone_blocking;
use chaos_harness::fixture::{Command, Fixture, Probe, Process, python3};
use chaos_harness::sandbox::{OwnedPid, Sandbox, SandboxOptions, Scope, procfs};
use criterion::{Criterion, criterion_group, criterion_main};
use nix::sys::signal::Signal;

const UNRELATED: usize = 2000;

/// 2000 `sleep`s in one process group, killed on drop.
struct Crowd {
    children: Vec<std::process::Child>,
    pgid: i32,
}

impl Crowd {
    fn spawn(n: usize) -> Self {
        use std::os::unix::process::CommandExt;
        let mut children = Vec::with_capacity(n);
        let mut pgid = 0;
        for _ in 0..n {
            let c = std::process::Command::new("sleep")
                .arg("600")
                .process_group(pgid)
                .stdin(std::process::Stdio::null())
                .spawn()
                .expect("spawn an unrelated sleep");
            if pgid == 0 {
                pgid = c.id() as i32;
            }
            children.push(c);
        }
        Self { children, pgid }
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(self.pgid), Signal::SIGKILL);
        for c in &mut self.children {
            let _ = c.wait();
        }
    }
}

fn programs() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/programs"))
}

fn prefork(workers: usize, respawn: bool) -> Command {
    let mut c = Command::new(python3())
        .name("prefork")
        .arg(programs().join("prefork.py"))
        .args(["--workers", &workers.to_string(), "--on-parent-death", "exit"])
        .ready(Probe::log_line(&format!("^ready: {workers} workers")));
    if respawn {
        c = c.arg("--respawn");
    }
    c
}

fn start(rt: &tokio::runtime::Runtime, sb: &Arc<Sandbox>, c: Command) -> Process {
    rt.block_on(c.start(sb.clone())).expect("start fixture")
}

/// Waits (untimed) for a non-main member that is not `last`.
fn next_victim(scope: &Scope, last: Option<&OwnedPid>) -> OwnedPid {
    let main = scope.main();
    let t0 = Instant::now();
    loop {
        if let Some(v) = scope.members().into_iter().find(|m| Some(m) != main.as_ref() && Some(m) != last) {
            return v;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "no victim respawned");
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn kill_confirm(scope: &Scope, v: &OwnedPid) -> Duration {
    let t0 = Instant::now();
    assert!(scope.signal(v, Signal::SIGKILL).expect("owned"));
    wait_gone_blocking(std::slice::from_ref(v), Duration::from_secs(2)).expect("victim gone");
    t0.elapsed()
}

fn percentiles(scope: &Scope, label: &str, n: usize) -> Duration {
    let mut v = Vec::with_capacity(n);
    let mut last = None;
    for _ in 0..n {
        let victim = next_victim(scope, last.as_ref());
        v.push(kill_confirm(scope, &victim));
        last = Some(victim);
    }
    v.sort();
    let p = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    eprintln!(
        "kill_confirmed/{label}: n={n} p50={:?} p90={:?} p99={:?} max={:?}",
        p(0.5),
        p(0.9),
        p(0.99),
        v[v.len() - 1]
    );
    p(0.5)
}

fn bench(c: &mut Criterion) {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("sandbox benches need root for cgroups: skipped");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let sb = Arc::new(Sandbox::new("bench::sandbox").expect("sandbox"));
    let fb = Arc::new(Sandbox::with_options("bench::fallback", SandboxOptions { cgroups: false }).expect("sandbox"));
    let t0 = Instant::now();
    let crowd = Crowd::spawn(UNRELATED);
    eprintln!("spawned {UNRELATED} unrelated processes in {:?}", t0.elapsed());

    // --- orphan scan ---
    let pf = start(&rt, &sb, prefork(8, false));
    let fpf = start(&rt, &fb, prefork(8, false));
    let scope = pf.scope().clone();
    let fscope = fpf.scope().clone();
    let run_id = sb.run_id().to_string();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(scope.members().len(), 9);
    assert_eq!(fscope.members().len(), 9);
    assert_eq!(procfs::marked_pids(&run_id).len(), 9, "marker scan finds the same processes");
    let time = |f: &dyn Fn() -> usize| {
        let t0 = Instant::now();
        for _ in 0..20 {
            std::hint::black_box(f());
        }
        t0.elapsed() / 20
    };
    let cg = time(&|| scope.members().len());
    let env = time(&|| procfs::marked_pids(&run_id).len());
    eprintln!(
        "orphan_scan with {UNRELATED} unrelated processes: cgroup {cg:?}, /proc environ scan {env:?} (ratio {:.0}x)",
        env.as_secs_f64() / cg.as_secs_f64()
    );
    let mut g = c.benchmark_group("orphan_scan");
    g.sample_size(30).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    g.bench_function("cgroup", |b| b.iter(|| scope.members().len()));
    g.bench_function("proc_environ_scan", |b| b.iter(|| procfs::marked_pids(&run_id).len()));
    g.bench_function("fallback_tree", |b| b.iter(|| fscope.members().len()));
    g.finish();
    drop(pf);
    drop(fpf);

    // --- kill to confirmed ---
    let sleeper = start(
        &rt,
        &sb,
        Command::new("sh")
            .name("sleeper")
            .args(["-c", "echo up; while true; do sleep 600 & wait $!; done"])
            .ready(Probe::log_line("^up$")),
    );
    let workers = start(&rt, &sb, prefork(2, true));
    let p50_sleep = percentiles(sleeper.scope(), "sleep", 500);
    let p50_py = percentiles(workers.scope(), "python_worker", 300);
    eprintln!("kill_confirmed p50: sleep {p50_sleep:?}, python worker {p50_py:?} (target <= 1 ms)");
    let mut g = c.benchmark_group("kill_confirmed");
    g.sample_size(20).measurement_time(Duration::from_millis(800)).warm_up_time(Duration::from_millis(200));
    for (label, scope) in [("sleep", sleeper.scope().clone()), ("python_worker", workers.scope().clone())] {
        g.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut last = None;
                for _ in 0..iters {
                    let v = next_victim(&scope, last.as_ref());
                    total += kill_confirm(&scope, &v);
                    last = Some(v);
                }
                total
            })
        });
    }
    g.finish();
    drop(sleeper);
    drop(workers);
    drop(crowd);
    let report = sb.teardown().expect("teardown");
    assert!(report.is_clean(), "{report}");
    fb.teardown().expect("teardown");
}

criterion_group!(benches, bench);
criterion_main!(benches);
