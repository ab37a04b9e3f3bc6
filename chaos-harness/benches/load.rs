//! The load generator's own ceiling against `wrk` on the same local HTTP/1.1 server, in the
//! same run, as a ratio (goal: at least 0.8 of wrk's rate on this 2-core machine).
//!
//! The server is a minimal keep-alive HTTP/1.1 responder (one Tokio worker thread); both
//! clients use 4 keep-alive connections and one thread: `wrk -t1 -c4`, and a closed loop of 4
//! clients on a one-worker runtime whose call writes a `GET` and reads the fixed-length reply
//! on a connection of its pool (the generator's cost, not an HTTP library's). Then an open loop
//! at 80% of wrk's rate over the same 4 connections (a request waits for a free one),
//! CO-correct, reporting the rate it achieved and the ticks it skipped; and the same served by
//! 4 workers (`Load::workers(4)`, wrk2's model: a tick waits for a free worker, its latency
//! counted from the tick). Each is measured twice,
//! interleaved with wrk. Last, the generator alone over a call that completes at once: its
//! headroom over the rates above.
//!
//! Needs `wrk` (`apt-get install wrk`); skipped with a message otherwise.
//! Run: `cargo bench -p chaos-harness --bench load`. `BENCH_SECS` (default 5) per measurement.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chaos_harness::load::{Call, Load, Outcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const REPLY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// Answers every request (counted by its blank line) with [`REPLY`].
async fn serve(l: TcpListener) {
    while let Ok((mut s, _)) = l.accept().await {
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut tail = 0usize; // bytes of a partial "\r\n\r\n" carried over
            loop {
                let n = match s.read(&mut buf[tail..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let data = &buf[..tail + n];
                let count = data.windows(4).filter(|w| w == b"\r\n\r\n").count();
                let keep = data.len().min(3);
                let start = data.len() - keep;
                buf.copy_within(start..start + keep, 0);
                tail = keep;
                if count > 0 && s.write_all(&REPLY.repeat(count)).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn wrk_rate(addr: std::net::SocketAddr, secs: u64) -> Option<f64> {
    let out = std::process::Command::new("wrk")
        .args(["-t1", "-c4", &format!("-d{secs}s"), &format!("http://{addr}/")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rate = text.lines().find_map(|l| l.trim().strip_prefix("Requests/sec:")).and_then(|v| v.trim().parse().ok());
    if rate.is_none() {
        eprintln!("could not read wrk's output:\n{text}");
    }
    rate
}

/// A call over a pool of `conns` keep-alive connections: a request waits (FIFO) for a free
/// connection, as a real client's pool makes it, so an open loop's latency includes that wait.
async fn raw_call(addr: std::net::SocketAddr, conns: usize) -> Call {
    let mut pool = Vec::new();
    for _ in 0..conns {
        let s = TcpStream::connect(addr).await.expect("connect to the bench server");
        let _ = s.set_nodelay(true);
        pool.push(s);
    }
    let pool = Arc::new(Mutex::new(pool));
    let free = Arc::new(tokio::sync::Semaphore::new(conns));
    Call::new(move |_| {
        let (pool, free) = (Arc::clone(&pool), Arc::clone(&free));
        async move {
            let Ok(_permit) = free.acquire().await else { return Outcome::Refused("pool closed".into()) };
            let Some(mut s) = pool.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                return Outcome::Refused("no free connection".into());
            };
            let mut reply = [0u8; REPLY.len()];
            let r = match s.write_all(REQUEST).await {
                Ok(()) => s.read_exact(&mut reply).await.map(|_| ()),
                Err(e) => Err(e),
            };
            pool.lock().unwrap_or_else(|e| e.into_inner()).push(s);
            match r {
                Ok(()) if reply == REPLY => Outcome::Ok,
                Ok(()) => Outcome::Lost("wrong reply".into()),
                Err(e) => Outcome::Lost(e.to_string()),
            }
        }
    })
}

/// The generator alone, over a call that completes at once (one runtime thread, the best of
/// three 0.5 s runs each, as the machine is shared): closed-loop requests per second, and the
/// requests per second an open loop asked for 2 000 000/s issues (the rest it skips).
fn generator_only(rt: &tokio::runtime::Runtime) -> (f64, f64) {
    let half = Duration::from_millis(500);
    let best = |f: &dyn Fn() -> f64| (0..3).map(|_| f()).fold(0.0, f64::max);
    let closed = best(&|| {
        rt.block_on(async {
            let ready = Call::new(|_| std::future::ready(Outcome::Ok));
            let run = Load::closed_loop(4).max_records(10_000_000).start(ready);
            tokio::time::sleep(half).await;
            run.stop().await.totals().total as f64 / half.as_secs_f64()
        })
    });
    let open = best(&|| {
        rt.block_on(async {
            let yielding = Call::new(|_| async {
                tokio::task::yield_now().await;
                Outcome::Ok
            });
            let run = Load::constant_rate(2_000_000).max_records(10_000_000).start(yielding);
            tokio::time::sleep(half).await;
            run.stop().await.totals().ok as f64 / half.as_secs_f64()
        })
    });
    (closed, open)
}

fn main() {
    if std::process::Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("load bench skipped: wrk not found (apt-get install wrk)");
        return;
    }
    let secs: u64 = std::env::var("BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
    let addr = server_rt.block_on(async {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(serve(l));
        addr
    });
    let gen_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
    let closed = |secs: u64| {
        gen_rt.block_on(async {
            let call = raw_call(addr, 4).await;
            let run = Load::closed_loop(4).timeout(Duration::from_secs(5)).start(call);
            let t0 = Instant::now();
            tokio::time::sleep(Duration::from_secs(secs)).await;
            let report = run.stop().await;
            let s = report.totals();
            (s.ok as f64 / t0.elapsed().as_secs_f64(), s)
        })
    };
    // The open loop on the same 4 connections as wrk, at `rate`: requests wait for a free
    // connection, or for a free worker with `workers` (latency from the intended send time
    // includes the wait either way).
    let open = |rate: u32, secs: u64, workers: usize| {
        gen_rt.block_on(async {
            let call = raw_call(addr, 4).await;
            let run = Load::constant_rate(rate).workers(workers).timeout(Duration::from_secs(5)).start(call);
            tokio::time::sleep(Duration::from_secs(secs)).await;
            let report = run.stop().await;
            let s = report.totals();
            (s.ok as f64 / secs as f64, s)
        })
    };
    // Interleave, so load on the shared machine hits every client alike.
    let Some(w1) = wrk_rate(addr, secs) else { return };
    let (ours1, s1) = closed(secs);
    let (open1, o1) = open((w1 * 0.8) as u32, secs, 0);
    let (lanes1, l1) = open((w1 * 0.8) as u32, secs, 4);
    let Some(w2) = wrk_rate(addr, secs) else { return };
    let (ours2, _) = closed(secs);
    let (open2, o2) = open((w2 * 0.8) as u32, secs, 0);
    let (lanes2, l2) = open((w2 * 0.8) as u32, secs, 4);
    let (alone_closed, alone_open) = generator_only(&gen_rt);
    let wrk = (w1 + w2) / 2.0;
    println!("wrk -t1 -c4:                     {w1:>10.0} {w2:>10.0} req/s");
    println!("closed loop, 4 clients:          {ours1:>10.0} {ours2:>10.0} req/s  ({s1})");
    println!("ratio closed loop / wrk: {:.2}", (ours1 + ours2) / 2.0 / wrk);
    println!(
        "open loop at 0.8x wrk, 4 conns:  {open1:>10.0} {open2:>10.0} ok/s  (run 1: {o1}; run 2: {} skipped)",
        o2.skipped
    );
    println!("ratio open loop achieved / wrk: {:.2} (goal 0.8)", (open1 + open2) / 2.0 / wrk);
    println!(
        "open loop at 0.8x wrk, 4 workers: {lanes1:>10.0} {lanes2:>10.0} ok/s  (run 1: {l1}; run 2: {} skipped)",
        l2.skipped
    );
    println!("ratio open loop with 4 workers achieved / wrk: {:.2} (goal 0.8)", (lanes1 + lanes2) / 2.0 / wrk);
    println!(
        "generator alone (ready call), 1 thread: closed loop {alone_closed:.0} req/s ({:.1}x wrk), open loop {alone_open:.0} req/s ({:.1}x wrk)",
        alone_closed / wrk,
        alone_open / wrk
    );
}
