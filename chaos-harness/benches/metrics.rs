//! The metrics exporter's overhead on a scenario, as ratios to the same scenario without it,
//! measured in one run (alternating, so machine load drifts hit both sides alike).
//!
//! The scenario: a `sleep` Command fixture; closed-loop load of 8 clients whose requests are
//! ~100 us (a worst case for the exporter: many requests, each observed into a histogram);
//! wait 400 ms, SIGKILL the fixture, expect no orphans, wait 400 ms, stop the load. With
//! metrics: a [`MetricsSubscriber`] on the stream and a [`MetricsServer`] scraped every 100 ms
//! by a client thread (10x Prometheus's usual rate).
//!
//! Printed: process CPU time per scenario and requests completed per scenario, each as
//! `with / without` (median of the rounds). Needs root (cgroups).
//! Run: `cargo bench -p chaos-harness --bench metrics` (`-- --rounds N`, default 8).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chaos_harness::Chaos;
use chaos_harness::criteria::Criterion;
use chaos_harness::fault::Fault;
use chaos_harness::fixture::{Command, FixtureHandle};
use chaos_harness::load::{Call, Load, Outcome};
use chaos_harness::report::metrics::{Metrics, MetricsServer, http_get};

fn cpu_time() -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// One scenario; returns (CPU time, requests completed).
fn scenario(rt: &tokio::runtime::Runtime, round: usize, metrics: Option<&Metrics>) -> (Duration, u64) {
    let name = format!("bench::metrics_{round}_{}", metrics.is_some());
    let mut cx = Chaos::standalone(&name, round as u64).expect("sandbox (needs root for cgroups)");
    if let Some(m) = metrics {
        cx.events().subscribe(m.subscriber("bench"));
    }
    let cpu0 = cpu_time();
    let total = rt.block_on(async {
        let f = cx.start(Command::new("sleep").name("sleeper").arg("60")).await.expect("start sleep");
        let call = Call::new(|_| async {
            tokio::time::sleep(Duration::from_micros(100)).await;
            Outcome::Ok
        });
        let out = cx
            .scenario("metrics overhead")
            .load(Load::closed_loop(8), call)
            .wait(Duration::from_millis(400))
            .inject(Fault::kill(f.main()))
            .expect(Criterion::no_orphans().of(&f).within(Duration::from_secs(2)))
            .wait(Duration::from_millis(400))
            .stop_load()
            .run()
            .await
            .expect("scenario passes");
        out.load.map_or(0, |l| l.total)
    });
    let cpu = cpu_time() - cpu0;
    cx.sandbox().teardown().expect("teardown");
    (cpu, total)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(8usize);
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("metrics bench skipped: needs root (cgroups)");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let metrics = Metrics::new();
    let server = MetricsServer::start("127.0.0.1:0".parse().expect("addr"), metrics.clone()).expect("server");
    let addr = server.addr();
    let scraping = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (s2, st2) = (Arc::clone(&scraping), Arc::clone(&stop));
    let scraper = std::thread::spawn(move || {
        while !st2.load(Ordering::SeqCst) {
            if s2.load(Ordering::SeqCst) {
                let _ = http_get(addr, "/metrics");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    // Warm up both paths once.
    scenario(&rt, 0, None);
    scenario(&rt, 0, Some(&metrics));
    let (mut cpu_ratio, mut req_ratio, mut cpu_base, mut req_base) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let (cpu_without, req_without) = scenario(&rt, round, None);
        scraping.store(true, Ordering::SeqCst);
        let (cpu_with, req_with) = scenario(&rt, round, Some(&metrics));
        scraping.store(false, Ordering::SeqCst);
        cpu_ratio.push(cpu_with.as_secs_f64() / cpu_without.as_secs_f64());
        req_ratio.push(req_with as f64 / req_without.max(1) as f64);
        cpu_base.push(cpu_without.as_secs_f64());
        req_base.push(req_without as f64);
        eprintln!(
            "round {round}: cpu {:.3}s -> {:.3}s, requests {req_without} -> {req_with}",
            cpu_without.as_secs_f64(),
            cpu_with.as_secs_f64()
        );
    }
    stop.store(true, Ordering::SeqCst);
    let _ = scraper.join();
    server.stop();
    println!(
        "metrics overhead over {rounds} rounds (median): CPU time per scenario x{:.3} (baseline {:.3} s), requests completed x{:.3} (baseline {:.0})",
        median(cpu_ratio),
        median(cpu_base),
        median(req_ratio),
        median(req_base)
    );
}
