//! The resource monitor's own CPU use at 10 Hz on a fixture of 100 processes, as a fraction of
//! one core, against the same process idle for the same time without it, in one run
//! (alternating rounds, so machine load drifts hit both sides alike).
//!
//! The fixture: a `sh` that starts 99 `sleep`s (100 processes in one cgroup). Monitored: the
//! default roles of a command fixture (`all`, `main`) plus `children`, each sampled every
//! 100 ms. CPU time is the bench process's own (`getrusage(RUSAGE_SELF)`: user + system, which
//! includes the monitor's thread).
//!
//! Printed: the process's CPU time over wall time with the monitor minus the same without it
//! (median of the rounds; goal: under 1% of one core), the monitor thread's own CPU time over
//! wall time (from its `schedstat`, which no other thread's noise enters), and the samples per
//! second taken. Without the monitor the process is not idle: the sandbox's own membership
//! sampler runs, so the difference is noisy on a busy machine and the thread figure is the
//! sharper one.
//! Needs root (cgroups). Run: `cargo bench -p chaos-harness --bench monitor` (`-- --rounds N
//! --secs S`, defaults 5 and 3).

use std::time::{Duration, Instant};

use chaos_harness::Chaos;
use chaos_harness::fixture::{Command, FixtureHandle, Probe};
use chaos_harness::observe::{EventStream, Monitor};

fn cpu_time() -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The CPU time of this process's thread named `name`, from `/proc/self/task/TID/schedstat`
/// (nanoseconds on CPU).
fn thread_cpu(name: &str) -> Option<Duration> {
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let sched = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            return Some(Duration::from_nanos(sched.split_whitespace().next()?.parse().ok()?));
        }
    }
    None
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|n| n.parse().ok()).unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds = arg(&args, "--rounds", 5) as usize;
    let secs = Duration::from_secs(arg(&args, "--secs", 3));
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("monitor bench skipped: needs root (cgroups)");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut cx = Chaos::standalone("bench::monitor", 1).expect("sandbox (needs root for cgroups)");
    let p = rt
        .block_on(
            cx.start(
                Command::new("sh")
                    .name("hundred")
                    .args(["-c", "for i in $(seq 99); do sleep 600 & done; echo ready; wait"])
                    .ready(Probe::log_line("^ready")),
            ),
        )
        .expect("start the fixture");
    let t0 = Instant::now();
    while p.scope().members().len() < 100 {
        assert!(t0.elapsed() < Duration::from_secs(10), "the fixture did not reach 100 processes");
        std::thread::sleep(Duration::from_millis(10));
    }
    let roles = || vec![p.all(), p.main(), p.children()];
    let idle = || {
        let (c0, w0) = (cpu_time(), Instant::now());
        std::thread::sleep(secs);
        (cpu_time() - c0, w0.elapsed())
    };
    let monitored = || {
        let (c0, w0) = (cpu_time(), Instant::now());
        let m = Monitor::start(roles(), EventStream::new(), Instant::now());
        std::thread::sleep(secs);
        let own = thread_cpu("chaos-monitor").unwrap_or_default();
        let series = m.stop();
        let (cpu, wall) = (cpu_time() - c0, w0.elapsed());
        let n = series.iter().find(|s| s.role == "all").map_or(0, |s| s.samples.len());
        let procs = series.iter().find(|s| s.role == "all").and_then(|s| s.last()).map_or(0, |s| s.processes);
        (cpu, wall, n, procs, own)
    };
    // Warm up both paths once.
    idle();
    monitored();
    let (mut overhead, mut rates, mut own_share) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let (cpu0, wall0) = idle();
        let (cpu1, wall1, samples, procs, own) = monitored();
        own_share.push(own.as_secs_f64() / wall1.as_secs_f64());
        let base = cpu0.as_secs_f64() / wall0.as_secs_f64();
        let with = cpu1.as_secs_f64() / wall1.as_secs_f64();
        overhead.push(with - base);
        rates.push(samples as f64 / wall1.as_secs_f64());
        eprintln!(
            "round {round}: {procs} processes, {samples} samples; CPU/wall without {:.5}, with {:.5}; monitor thread {:.5}",
            base,
            with,
            own.as_secs_f64() / wall1.as_secs_f64()
        );
    }
    drop(p);
    cx.sandbox().teardown().expect("teardown");
    println!(
        "monitor overhead over {rounds} rounds (median): {:.3}% of one core (process CPU with minus without), \
         {:.3}% by the monitor thread's own schedstat, at {:.1} samples/s of 3 roles over 100 processes (goal: under 1%)",
        100.0 * median(overhead),
        100.0 * median(own_share),
        median(rates)
    );
}
