//! Start-to-ready of the reference Snakepit target with a 4-worker pool, against the floor
//! measured in the same run: a bare BEAM boot (`elixir -e ':ok'`) and a bare start of the
//! real Python interpreter (not the pyenv shim, which adds ~90 ms per start).
//!
//! The ratio `pool_ready / beam_boot` is printed at the end. On this 2-core machine the floor
//! for a BEAM plus 4 Python workers is ~0.3 s; the reference target reaches ~0.5 s.
//!
//! Needs root (cgroups) and elixir; skipped with a message otherwise.
//! Run: `cargo bench -p chaos-harness --bench snakepit`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos_harness::fixture::snakepit::Snakepit;
use chaos_harness::fixture::{Fixture, python3};
use chaos_harness::host::capability;
use chaos_harness::sandbox::Sandbox;
use criterion::{Criterion, criterion_group, criterion_main};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn start_to_ready(c: &mut Criterion) {
    if let Err(why) = capability::check_all(&["elixir", "cgroups"]) {
        eprintln!("snakepit bench skipped: {why}");
        return;
    }
    let Ok(elixir) = capability::elixir() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    // Build (or find) the cached target before timing anything.
    let Ok(built) =
        chaos_harness::fixture::snakepit::build::ensure_built(&chaos_harness::fixture::snakepit::build::source_dir())
    else {
        eprintln!("snakepit bench skipped: the reference target does not build");
        return;
    };
    let _ = built;

    let mut group = c.benchmark_group("snakepit_start");
    group.sample_size(10).measurement_time(Duration::from_secs(15)).warm_up_time(Duration::from_secs(2));
    let (mut beam, mut python, mut pool) = (Vec::new(), Vec::new(), Vec::new());
    group.bench_function("beam_boot", |b| {
        b.iter(|| {
            let t0 = Instant::now();
            let ok =
                std::process::Command::new(&elixir).args(["-e", ":ok"]).status().map(|s| s.success()).unwrap_or(false);
            assert!(ok, "elixir -e :ok failed");
            beam.push(t0.elapsed());
        })
    });
    group.bench_function("python_start", |b| {
        b.iter(|| {
            let t0 = Instant::now();
            let ok = std::process::Command::new(python3())
                .args(["-c", "pass"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "python3 -c pass failed");
            python.push(t0.elapsed());
        })
    });
    group.bench_function("pool_of_4_ready", |b| {
        b.iter(|| {
            rt.block_on(async {
                let sandbox = Arc::new(Sandbox::new("bench::snakepit").expect("sandbox"));
                let t0 = Instant::now();
                let pit = Snakepit::reference().pool_size(4).start(Arc::clone(&sandbox)).await.expect("snakepit start");
                pool.push(t0.elapsed());
                pit.stop().await.expect("stop");
                sandbox.teardown().expect("teardown");
            })
        })
    });
    group.finish();
    if !beam.is_empty() && !pool.is_empty() && !python.is_empty() {
        let (b, p, py) = (median(beam), median(pool), median(python));
        println!(
            "snakepit start-to-ready (median): pool of 4 ready {:.0} ms; floor: BEAM boot {:.0} ms + python start {:.0} ms; pool/beam ratio {:.2}",
            p.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3,
            py.as_secs_f64() * 1e3,
            p.as_secs_f64() / b.as_secs_f64()
        );
    }
}

criterion_group!(benches, start_to_ready);
criterion_main!(benches);
