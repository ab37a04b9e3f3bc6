//! The Toxiproxy-compatible API defends itself (issue [reliability] item 8): Toxiproxy JSON for
//! every error, header-read and idle timeouts, a connection cap that keeps it answering under
//! 20,000 idle connections, and a `/reset` that recovers after a failed re-listen. Real sockets
//! on loopback only.

use std::time::{Duration, Instant};

use chaos_proxy::api::ApiLimits;
use chaos_proxy::{ApiServer, ProxyConfig, ProxyRegistry};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 request on a fresh connection; returns (status, content type, body).
async fn raw(addr: std::net::SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // A server may answer 413 before reading the whole body and close: ignore write errors.
    let _ = s.write_all(body).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (headers, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let ctype = headers
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    (status, ctype, rest.as_bytes().to_vec())
}

fn toxiproxy_error(status: u16, ctype: &str, body: &[u8]) -> Result<String, String> {
    if !ctype.starts_with("application/json") {
        return Err(format!("content type {ctype:?}, body {:?}", String::from_utf8_lossy(body)));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("{e}: {:?}", String::from_utf8_lossy(body)))?;
    let msg = v["error"].as_str().unwrap_or("").to_string();
    if msg.is_empty() || v["status"] != status {
        return Err(format!("not Toxiproxy's error shape: {v}"));
    }
    Ok(msg)
}

#[tokio::test]
async fn every_error_is_toxiproxy_json() {
    let api = ApiServer::start("127.0.0.1:0", ProxyRegistry::new(1)).await.unwrap();
    let a = api.local_addr();
    let (st, ct, body) = raw(a, "GET", "/no/such/route", b"").await;
    assert_eq!(st, 404);
    toxiproxy_error(st, &ct, &body).unwrap();
    let (st, ct, body) = raw(a, "DELETE", "/version", b"").await;
    assert_eq!(st, 405);
    toxiproxy_error(st, &ct, &body).unwrap();
    let big = vec![b' '; 3 << 20];
    let (st, ct, body) = raw(a, "POST", "/proxies", &big).await;
    assert_eq!(st, 413);
    let msg = toxiproxy_error(st, &ct, &body).unwrap();
    assert!(msg.contains("too large"), "{msg}");
    // Existing JSON errors are untouched.
    let (st, ct, body) = raw(a, "GET", "/proxies/none", b"").await;
    assert_eq!(st, 404);
    toxiproxy_error(st, &ct, &body).unwrap();
    api.shutdown().await;
}

/// Waits until the server closes `s` (EOF or reset); `None` if it is still open after `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit.saturating_sub(t0.elapsed()), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t0.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn slow_headers_and_idle_connections_are_cut() {
    let limits = ApiLimits {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(600),
        ..Default::default()
    };
    let api = ApiServer::start_with("127.0.0.1:0", ProxyRegistry::new(1), limits).await.unwrap();
    // Slowloris: a partial header line, one byte at a time (each byte resets any idle timer).
    let mut slow = TcpStream::connect(api.local_addr()).await.unwrap();
    slow.write_all(b"GET /version HTTP/1.1\r\nHo").await.unwrap();
    let trickle = async {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if slow.write_all(b"s").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), trickle).await;
    let cut = closed_within(&mut slow, Duration::from_secs(3)).await;
    assert!(cut.is_some(), "a connection trickling its headers for 4 s was not cut");
    // Idle: connected, nothing sent.
    let mut idle = TcpStream::connect(api.local_addr()).await.unwrap();
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await.is_some(), "an idle connection was kept");
    api.shutdown().await;
}

#[tokio::test]
async fn reset_recovers_after_a_failed_relisten() {
    let reg = ProxyRegistry::new(1);
    let api = ApiServer::start("127.0.0.1:0", reg.clone()).await.unwrap();
    let a = reg.create(ProxyConfig::new("a", "127.0.0.1:9").listen("127.0.0.1:0"), true).unwrap();
    let b = reg.create(ProxyConfig::new("b", "127.0.0.1:9").listen("127.0.0.1:0"), true).unwrap();
    let port = a.listen_addr();
    let toxic = r#"{"type": "latency", "attributes": {"latency": 10}}"#;
    let (st, _, _) = raw(api.local_addr(), "POST", "/proxies/b/toxics", toxic.as_bytes()).await;
    assert_eq!(st, 200);
    a.disable().await.unwrap();
    // Someone else takes a's address: a cannot listen again.
    let blocker = std::net::TcpListener::bind(port).unwrap();
    let (st, ct, body) = raw(api.local_addr(), "POST", "/reset", b"").await;
    assert!(st >= 400, "reset with a's address taken: {st}");
    let msg = toxiproxy_error(st, &ct, &body).unwrap();
    assert!(b.toxics().is_empty(), "reset stopped at the failing proxy; b kept its toxics ({msg})");
    drop(blocker);
    let (st, _, body) = raw(api.local_addr(), "POST", "/reset", b"").await;
    assert_eq!(st, 204, "reset after the address is free: {}", String::from_utf8_lossy(&body));
    assert!(a.enabled());
    assert!(TcpStream::connect(port).await.is_ok(), "a listens again");
    api.shutdown().await;
}

fn raise_nofile(want: u64) -> u64 {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid out pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) };
    let new = libc::rlimit { rlim_cur: want.max(l.rlim_cur), rlim_max: want.max(l.rlim_max) };
    // SAFETY: valid pointer; raising the hard limit needs CAP_SYS_RESOURCE (root).
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } != 0 {
        let soft = libc::rlimit { rlim_cur: l.rlim_max, rlim_max: l.rlim_max };
        // SAFETY: as above, soft up to the existing hard limit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft) };
    }
    // SAFETY: valid out pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) };
    l.rlim_cur
}

async fn version_latencies(addr: std::net::SocketAddr, n: usize) -> Vec<Duration> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let (st, _, _) = raw(addr, "GET", "/version", b"").await;
        assert_eq!(st, 200);
        v.push(t0.elapsed());
    }
    v.sort();
    v
}

fn p99(sorted: &[Duration]) -> Duration {
    sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)]
}

/// Python program that opens `argv[2]` idle connections to `argv[1]` (host:port), prints
/// `open N`, and holds them until its stdin closes. The connections live in other processes,
/// so neither side's RLIMIT_NOFILE (20,000 hard on some machines) caps the count.
const HOLDER: &str = r#"
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
host, port = sys.argv[1].rsplit(":", 1)
held = []
for _ in range(int(sys.argv[2])):
    held.append(socket.create_connection((host, int(port)), timeout=30))
print("open", len(held), flush=True)
sys.stdin.read()
"#;

/// A process holding idle connections; killed on drop.
struct Holder(std::process::Child);

impl Holder {
    fn spawn(addr: std::net::SocketAddr, n: usize) -> Self {
        let child = std::process::Command::new("python3")
            .args(["-c", HOLDER, &addr.to_string(), &n.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 holder");
        Holder(child)
    }

    /// Waits until it reports its connections open; returns how many.
    fn opened(&mut self) -> usize {
        use std::io::BufRead;
        let mut line = String::new();
        let out = self.0.stdout.as_mut().expect("stdout");
        std::io::BufReader::new(out).read_line(&mut line).expect("holder output");
        line.trim().strip_prefix("open ").and_then(|n| n.parse().ok()).unwrap_or(0)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The acceptance criterion: `/version` p99 under 100 ms while 20,000 idle connections are
/// open against the API (the timing is the subject of the criterion). The server keeps at
/// most `max_connections` of them and closes the longest-idle one to admit each new client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_answers_with_20000_idle_connections_open() {
    const WANT: usize = 20_000;
    const HOLDERS: usize = 8;
    raise_nofile(4096);
    let api = ApiServer::start("127.0.0.1:0", ProxyRegistry::new(1)).await.unwrap();
    let addr = api.local_addr();
    let baseline = version_latencies(addr, 200).await;
    let t0 = Instant::now();
    let holders: Vec<Holder> = (0..HOLDERS).map(|_| Holder::spawn(addr, WANT / HOLDERS)).collect();
    let (opened, holders): (usize, Vec<Holder>) = tokio::task::spawn_blocking(move || {
        let mut holders = holders;
        (holders.iter_mut().map(Holder::opened).sum(), holders)
    })
    .await
    .expect("holders");
    let opened_in = t0.elapsed();
    let loaded = version_latencies(addr, 300).await;
    let (b, l) = (p99(&baseline), p99(&loaded));
    eprintln!(
        "{opened} idle connections opened in {:.1} s by {HOLDERS} processes; /version p99 {:.2} ms (baseline {:.2} ms, ratio {:.2}), max {:.2} ms",
        opened_in.as_secs_f64(),
        l.as_secs_f64() * 1e3,
        b.as_secs_f64() * 1e3,
        l.as_secs_f64() / b.as_secs_f64().max(1e-9),
        loaded.last().unwrap().as_secs_f64() * 1e3
    );
    assert_eq!(opened, WANT, "the holders opened {opened} of {WANT} idle connections");
    assert!(l < Duration::from_millis(100), "/version p99 {l:?} with {opened} idle connections open");
    drop(holders);
    api.shutdown().await;
}
