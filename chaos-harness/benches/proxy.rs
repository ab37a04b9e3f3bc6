//! The embedded proxy's cost: 64-byte round trips (p50/p99) and bulk throughput, direct
//! loopback vs. through the proxy with no toxics, measured in the same run.
//!
//! First a summary pass (interleaved direct/proxy rounds, so load on the machine hits both
//! alike) prints p50/p99, the added p50 and the throughput ratio against the targets
//! (added p50 <= 30 us, throughput >= 55% of direct); then criterion measures the same four
//! cases. `cargo bench -p chaos-harness --bench proxy`.
//!
//! Clients and servers are plain blocking threads; the proxy runs on a Tokio multi-thread
//! runtime with 2 workers on threads of its own (the machine has 2 cores). The summary also
//! measures a bare `tokio::io::copy_bidirectional` proxy (256 KiB buffers, same runtime) as a
//! reference: the floor any Tokio proxy pays on this machine.
//!
//! Environment: `BENCH_WORKERS=1` or `0` (current-thread runtime) to try other runtimes;
//! `BENCH_PIN=1` to pin the whole process to CPU 0 (removes idle-vCPU wake-up costs, which
//! dominate round trips on an idle VM); `BENCH_SUMMARY_ONLY=1` to skip criterion.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use chaos_proxy::{Proxy, ProxyConfig};
use criterion::{Criterion, Throughput};

const MSG: usize = 64;
const BUF: usize = 256 * 1024;

/// Echo server on a thread per connection.
fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind echo server");
    let addr = l.local_addr().expect("echo addr");
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            thread::spawn(move || {
                let _ = s.set_nodelay(true);
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Bulk server: per request (8-byte big-endian length) writes that many bytes.
fn bulk_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind bulk server");
    let addr = l.local_addr().expect("bulk addr");
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            thread::spawn(move || {
                let chunk = vec![0xabu8; BUF];
                let mut req = [0u8; 8];
                while s.read_exact(&mut req).is_ok() {
                    let mut left = u64::from_be_bytes(req) as usize;
                    while left > 0 {
                        let n = left.min(BUF);
                        if s.write_all(&chunk[..n]).is_err() {
                            return;
                        }
                        left -= n;
                    }
                }
            });
        }
    });
    addr
}

fn connect(addr: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(addr).expect("connect");
    c.set_nodelay(true).expect("nodelay");
    c
}

fn round_trip(c: &mut TcpStream) -> Duration {
    let msg = [1u8; MSG];
    let mut back = [0u8; MSG];
    let t0 = Instant::now();
    c.write_all(&msg).expect("write");
    c.read_exact(&mut back).expect("read");
    t0.elapsed()
}

fn bulk(c: &mut TcpStream, bytes: usize, buf: &mut [u8]) -> Duration {
    let t0 = Instant::now();
    c.write_all(&(bytes as u64).to_be_bytes()).expect("request");
    let mut left = bytes;
    while left > 0 {
        let n = c.read(&mut buf[..left.min(BUF)]).expect("read bulk");
        assert!(n > 0, "bulk server closed early");
        left -= n;
    }
    t0.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct Setup {
    _proxies: (Proxy, Proxy),
    echo: SocketAddr,
    echo_proxy: SocketAddr,
    echo_bare: SocketAddr,
    bulk: SocketAddr,
    bulk_proxy: SocketAddr,
    bulk_bare: SocketAddr,
}

async fn start_proxies(echo: SocketAddr, bulk: SocketAddr) -> (Proxy, Proxy) {
    let pe = Proxy::start(ProxyConfig::new("bench-echo", echo.to_string())).await.expect("echo proxy");
    let pb = Proxy::start(ProxyConfig::new("bench-bulk", bulk.to_string())).await.expect("bulk proxy");
    (pe, pb)
}

/// The reference: a bare Tokio copy proxy with 256 KiB buffers and no toxic machinery.
async fn bare_proxy(upstream: SocketAddr) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind bare proxy");
    let addr = l.local_addr().expect("bare addr");
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let Ok(mut s) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = c.set_nodelay(true);
                let _ = s.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional_with_sizes(&mut c, &mut s, BUF, BUF).await;
            });
        }
    });
    addr
}

/// The proxy runs on a runtime of its own thread(s): `BENCH_WORKERS` workers of a
/// multi-thread runtime (default 2), or 0 for a current-thread runtime on one thread.
fn setup() -> Setup {
    let workers: usize = std::env::var("BENCH_WORKERS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let echo = echo_server();
    let bulk = bulk_server();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let rt = if workers == 0 {
            tokio::runtime::Builder::new_current_thread().enable_all().build()
        } else {
            tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()
        }
        .expect("tokio runtime");
        rt.block_on(async move {
            let proxies = start_proxies(echo, bulk).await;
            let bare = (bare_proxy(echo).await, bare_proxy(bulk).await);
            tx.send((proxies, bare)).expect("send proxies");
            std::future::pending::<()>().await
        })
    });
    let (proxies, bare) = rx.recv().expect("proxies started");
    Setup {
        echo_proxy: proxies.0.listen_addr(),
        bulk_proxy: proxies.1.listen_addr(),
        echo_bare: bare.0,
        bulk_bare: bare.1,
        _proxies: proxies,
        echo,
        bulk,
    }
}

struct Rtt {
    p50: Duration,
    p99: Duration,
}

/// Interleaved direct/proxy/bare measurement; prints the table the targets are judged on.
fn summary(s: &Setup) {
    let (rounds, per_round) = (10, 2000);
    let targets = [s.echo, s.echo_proxy, s.echo_bare];
    let mut conns: Vec<TcpStream> = targets.iter().map(|a| connect(*a)).collect();
    let mut samples: Vec<Vec<Duration>> = (0..3).map(|_| Vec::with_capacity(rounds * per_round)).collect();
    for c in &mut conns {
        for _ in 0..200 {
            round_trip(c);
        }
    }
    for _ in 0..rounds {
        for (c, out) in conns.iter_mut().zip(samples.iter_mut()) {
            out.extend((0..per_round).map(|_| round_trip(c)));
        }
    }
    let rtt: Vec<Rtt> = samples
        .iter_mut()
        .map(|v| {
            v.sort();
            Rtt { p50: percentile(v, 0.5), p99: percentile(v, 0.99) }
        })
        .collect();

    let bytes = 256 * 1024 * 1024;
    let mut buf = vec![0u8; BUF];
    let mut bulks: Vec<TcpStream> = [s.bulk, s.bulk_proxy, s.bulk_bare].iter().map(|a| connect(*a)).collect();
    for c in &mut bulks {
        bulk(c, 16 << 20, &mut buf);
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); 3];
    for _ in 0..5 {
        for (c, out) in bulks.iter_mut().zip(rates.iter_mut()) {
            out.push(bytes as f64 / bulk(c, bytes, &mut buf).as_secs_f64());
        }
    }
    let tput: Vec<f64> = rates
        .iter_mut()
        .map(|v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
        .collect();

    let pinned = std::env::var("BENCH_PIN").is_ok_and(|v| !v.is_empty() && v != "0");
    println!(
        "\n== proxy summary ({} round trips and 5 x 256 MiB each, interleaved; {}) ==",
        rounds * per_round,
        if pinned { "pinned to CPU 0" } else { "unpinned" }
    );
    let names = ["direct", "chaos proxy", "bare tokio copy"];
    println!(
        "{:<16} {:>10} {:>10} {:>12} {:>12} {:>10} {:>9}",
        "path", "p50 us", "p99 us", "added p50", "added p99", "MB/s", "of direct"
    );
    for i in 0..3 {
        println!(
            "{:<16} {:>10.1} {:>10.1} {:>12.1} {:>12.1} {:>10.0} {:>8.0}%",
            names[i],
            us(rtt[i].p50),
            us(rtt[i].p99),
            us(rtt[i].p50) - us(rtt[0].p50),
            us(rtt[i].p99) - us(rtt[0].p99),
            tput[i] / 1e6,
            100.0 * tput[i] / tput[0]
        );
    }
    let added = us(rtt[1].p50) - us(rtt[0].p50);
    let ratio = tput[1] / tput[0];
    println!(
        "targets: added p50 <= 30 us: {} ({added:.1} us); throughput >= 55% of direct: {} ({:.0}%)\n",
        if added <= 30.0 { "met" } else { "MISSED" },
        if ratio >= 0.55 { "met" } else { "MISSED" },
        100.0 * ratio
    );
}

/// Pin the process (and the threads it starts later) to CPU 0.
fn pin_to_cpu0() {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it; pid 0 is this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!("BENCH_PIN: sched_setaffinity failed: {}", std::io::Error::last_os_error());
        }
    }
}

fn main() {
    if std::env::var("BENCH_PIN").is_ok_and(|v| !v.is_empty() && v != "0") {
        pin_to_cpu0();
    }
    let s = setup();
    summary(&s);
    if std::env::var("BENCH_SUMMARY_ONLY").is_ok() {
        return;
    }

    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group("rtt_64B");
        let mut cd = connect(s.echo);
        let mut cp = connect(s.echo_proxy);
        g.bench_function("direct", |b| b.iter(|| round_trip(&mut cd)));
        g.bench_function("proxy", |b| b.iter(|| round_trip(&mut cp)));
        g.finish();
    }
    {
        let bytes = 64 * 1024 * 1024;
        let mut g = c.benchmark_group("bulk_64MiB");
        g.sample_size(10).throughput(Throughput::Bytes(bytes as u64));
        let mut buf = vec![0u8; BUF];
        let mut bd = connect(s.bulk);
        let mut bp = connect(s.bulk_proxy);
        g.bench_function("direct", |b| b.iter(|| bulk(&mut bd, bytes, &mut buf)));
        g.bench_function("proxy", |b| b.iter(|| bulk(&mut bp, bytes, &mut buf)));
        g.finish();
    }
    c.final_summary();
}
