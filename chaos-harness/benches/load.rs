//! The load generator's own ceiling against `wrk` on the same local HTTP/1.1 server, in the
//! same run, as a ratio (goal: at least 0.8 of wrk's rate on this 2-core machine).
//!
//! The server is a minimal keep-alive HTTP/1.1 responder (one Tokio worker thread); both
//! clients use 4 keep-alive connections and one thread: `wrk -t1 -c4`, and a closed loop of 4
//! clients on a one-worker runtime whose call writes a `GET` and reads the fixed-length reply
//! on its own connection (the generator's cost, not an HTTP library's). Then an open loop at
//! 80% of wrk's rate, CO-correct, reporting the rate it achieved and the ticks it skipped.
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

async fn raw_call(addr: std::net::SocketAddr, conns: usize) -> Call {
    let mut pool = Vec::new();
    for _ in 0..conns {
        let s = TcpStream::connect(addr).await.expect("connect to the bench server");
        let _ = s.set_nodelay(true);
        pool.push(s);
    }
    let pool = Arc::new(Mutex::new(pool));
    Call::new(move |_| {
        let pool = Arc::clone(&pool);
        async move {
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
    // Interleave, so load on the shared machine hits both alike.
    let (wrk1, (ours1, s1)) = (wrk_rate(addr, secs), closed(secs));
    let (wrk2, (ours2, _)) = (wrk_rate(addr, secs), closed(secs));
    let (Some(w1), Some(w2)) = (wrk1, wrk2) else { return };
    let wrk = (w1 + w2) / 2.0;
    let ours = (ours1 + ours2) / 2.0;
    println!("wrk -t1 -c4:            {w1:>10.0} {w2:>10.0} req/s");
    println!("closed loop, 4 clients: {ours1:>10.0} {ours2:>10.0} req/s  ({s1})");
    println!("ratio closed loop / wrk: {:.2}", ours / wrk);
    let target = (wrk * 0.8) as u32;
    let (achieved, s) = gen_rt.block_on(async {
        let call = raw_call(addr, 64).await;
        let run = Load::constant_rate(target).max_in_flight(64).timeout(Duration::from_secs(5)).start(call);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let report = run.stop().await;
        let s = report.totals();
        (s.ok as f64 / secs as f64, s)
    });
    println!("open loop at {target}/s (0.8x wrk): {achieved:.0} ok/s, {} skipped ({s})", s.skipped);
    println!("ratio open loop achieved / wrk: {:.2}", achieved / wrk);
}
