//! The embedded Toxiproxy-compatible proxy on real loopback traffic: every toxic measured,
//! live toxic changes, enable/disable, counters, clean shutdown, the HTTP API (shapes and
//! errors), the `toxiproxy_rust` client and the external backend against our API server.
//!
//! Timing assertions only check the behaviour under test (latency added, bandwidth bound,
//! delayed close) with generous upper bounds: this runs on a loaded 2-core machine.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chaos_harness::topology::{ExternalToxiproxy, ProxyBackend};
use chaos_proxy::{ApiServer, Proxy, ProxyConfig, ProxyRegistry, ProxyUpdate, Stream, Toxic, ToxicKind};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const SEED: u64 = 0x5eed;

/// A server task that is aborted when dropped.
struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Echo every byte back, on every connection.
async fn echo_server() -> Server {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                break;
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    Server { addr, task }
}

/// On every connection: write `payload` at once, then close (or keep open if `hold`).
async fn send_server(payload: Vec<u8>, hold: bool) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                break;
            };
            let payload = payload.clone();
            tokio::spawn(async move {
                let _ = s.set_nodelay(true);
                let _ = s.write_all(&payload).await;
                if hold {
                    let mut sink = [0u8; 1024];
                    while let Ok(n) = s.read(&mut sink).await {
                        if n == 0 {
                            break;
                        }
                    }
                }
            });
        }
    });
    Server { addr, task }
}

async fn proxy_to(name: &str, upstream: SocketAddr) -> Proxy {
    Proxy::start(ProxyConfig::new(name, upstream.to_string()).seed(SEED)).await.unwrap()
}

async fn connect(p: &Proxy) -> TcpStream {
    let c = TcpStream::connect(p.listen_addr()).await.unwrap();
    c.set_nodelay(true).unwrap();
    c
}

/// One 64-byte round trip through an echo.
async fn round_trip(c: &mut TcpStream) -> Duration {
    let msg = [7u8; 64];
    let mut back = [0u8; 64];
    let t0 = Instant::now();
    c.write_all(&msg).await.unwrap();
    c.read_exact(&mut back).await.unwrap();
    assert_eq!(back, msg);
    t0.elapsed()
}

fn latency(ms: u64, jitter: u64, stream: Stream) -> Toxic {
    Toxic::new(ToxicKind::Latency { latency: ms, jitter }, stream)
}

/// Read until EOF or error; returns (bytes, number of reads, the error if any).
async fn drain(c: &mut TcpStream) -> (Vec<u8>, usize, Option<std::io::Error>) {
    let mut out = Vec::new();
    let mut reads = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match c.read(&mut buf).await {
            Ok(0) => return (out, reads, None),
            Ok(n) => {
                reads += 1;
                out.extend_from_slice(&buf[..n]);
            }
            Err(e) => return (out, reads, Some(e)),
        }
    }
}

const LIMIT: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f).await.unwrap_or_else(|_| panic!("{what}: no result within {LIMIT:?}"))
}

// ---------------------------------------------------------------- plain proxying

/// Bytes pass through unchanged in both directions (1 MiB echo), and the proxy counts them.
#[tokio::test]
async fn proxies_bytes_unchanged_and_counts_them() {
    let echo = echo_server().await;
    let p = proxy_to("echo", echo.addr).await;
    let mut c = connect(&p).await;
    let data: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = c.split();
    let send = async {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let mut got = Vec::new();
    let recv = async { r.read_to_end(&mut got).await.unwrap() };
    within("1 MiB echo", async { tokio::join!(send, recv) }).await;
    assert_eq!(got.len(), data.len());
    assert!(got == data, "echoed bytes differ");
    let s = p.stats();
    assert_eq!(s.accepted, 1);
    assert_eq!(s.bytes_upstream, data.len() as u64);
    assert_eq!(s.bytes_downstream, data.len() as u64);
}

/// A client whose upstream is unreachable is closed at once and counted.
#[tokio::test]
async fn unreachable_upstream_closes_the_client() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = l.local_addr().unwrap();
    drop(l);
    let p = proxy_to("dead", dead).await;
    let mut c = connect(&p).await;
    let (data, _, _) = within("close", drain(&mut c)).await;
    assert!(data.is_empty());
    assert_eq!(p.stats().upstream_failures, 1);
}

// ---------------------------------------------------------------- toxics, one by one

/// latency 100 ms on downstream adds ~100 ms to a round trip; with jitter 30 the added delay
/// stays within 100 ± 30 ms (plus scheduling slack); upstream and downstream latencies add up.
#[tokio::test]
async fn latency_adds_to_round_trip() {
    let echo = echo_server().await;
    let p = proxy_to("lat", echo.addr).await;
    let mut c = connect(&p).await;
    let base = round_trip(&mut c).await;

    p.add_toxic(latency(100, 0, Stream::Downstream)).unwrap();
    for _ in 0..3 {
        let rtt = round_trip(&mut c).await;
        assert!(rtt >= Duration::from_millis(100), "rtt {rtt:?} < latency 100ms");
        assert!(rtt < Duration::from_millis(100) + base + Duration::from_millis(400), "rtt {rtt:?}");
    }

    p.update_toxic(latency(100, 30, Stream::Downstream)).unwrap();
    for _ in 0..5 {
        let rtt = round_trip(&mut c).await;
        assert!(rtt >= Duration::from_millis(70), "rtt {rtt:?} < 100-30 ms");
        assert!(rtt < Duration::from_millis(130 + 400), "rtt {rtt:?}");
    }

    p.update_toxic(latency(100, 0, Stream::Downstream)).unwrap();
    p.add_toxic(latency(60, 0, Stream::Upstream)).unwrap();
    let rtt = round_trip(&mut c).await;
    assert!(rtt >= Duration::from_millis(160), "rtt {rtt:?} < 60 up + 100 down");

    let down = p.toxic_stats("latency_downstream").unwrap();
    assert_eq!(down.connections, 1);
    assert_eq!(down.bytes, 64 * 9);
    assert_eq!(p.toxic_stats("latency_upstream").unwrap().bytes, 64);
}

/// bandwidth 100 KB/s: 60 000 bytes take at least ~0.6 s (and not wildly more).
#[tokio::test]
async fn bandwidth_bounds_transfer_time() {
    let server = send_server(vec![1u8; 60_000], false).await;
    let p = proxy_to("bw", server.addr).await;
    p.add_toxic(Toxic::new(ToxicKind::Bandwidth { rate: 100 }, Stream::Downstream)).unwrap();
    let t0 = Instant::now();
    let mut c = connect(&p).await;
    let (data, _, err) = within("transfer", drain(&mut c)).await;
    let took = t0.elapsed();
    assert!(err.is_none(), "{err:?}");
    assert_eq!(data.len(), 60_000);
    assert!(took >= Duration::from_millis(570), "60 kB at 100 KB/s took only {took:?}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    let s = p.toxic_stats("bandwidth_downstream").unwrap();
    assert_eq!((s.connections, s.bytes), (1, 60_000));
}

/// slicer cuts one 2000-byte write into many small reads (average 20 ± 5 bytes, 1 ms apart).
#[tokio::test]
async fn slicer_splits_writes_into_small_reads() {
    let payload: Vec<u8> = (0..2000u32).map(|i| i as u8).collect();
    let server = send_server(payload.clone(), false).await;
    let p = proxy_to("slice", server.addr).await;
    p.add_toxic(Toxic::new(ToxicKind::Slicer { average_size: 20, size_variation: 5, delay: 1000 }, Stream::Downstream))
        .unwrap();
    let mut c = connect(&p).await;
    let (data, reads, err) = within("sliced transfer", drain(&mut c)).await;
    assert!(err.is_none(), "{err:?}");
    assert!(data == payload, "sliced data differs");
    // ~100 pieces; reads may merge a few when the reader is late.
    assert!(reads >= 30, "only {reads} reads for 2000 bytes in ~20-byte slices");
    assert_eq!(p.toxic_stats("slicer_downstream").unwrap().bytes, 2000);
}

/// limit_data 1000: the client gets exactly 1000 bytes, then the connection is closed.
#[tokio::test]
async fn limit_data_closes_after_n_bytes() {
    let server = send_server(vec![9u8; 200_000], true).await;
    let p = proxy_to("limit", server.addr).await;
    p.add_toxic(Toxic::new(ToxicKind::LimitData { bytes: 1000 }, Stream::Downstream)).unwrap();
    let mut c = connect(&p).await;
    let (data, _, _) = within("limited transfer", drain(&mut c)).await;
    assert_eq!(data.len(), 1000);
    let s = p.toxic_stats("limit_data_downstream").unwrap();
    assert_eq!((s.connections, s.triggered), (1, 1));
}

/// timeout 300: data stops flowing and the connection is closed after ~300 ms;
/// timeout 0: data stops and the connection stays open (a stall).
#[tokio::test]
async fn timeout_stalls_then_closes() {
    let echo = echo_server().await;
    let p = proxy_to("to", echo.addr).await;
    p.add_toxic(Toxic::new(ToxicKind::Timeout { timeout: 300 }, Stream::Upstream)).unwrap();
    let t0 = Instant::now();
    let mut c = connect(&p).await;
    c.write_all(b"hello").await.unwrap();
    let (data, _, _) = within("timeout close", drain(&mut c)).await;
    let took = t0.elapsed();
    assert!(data.is_empty(), "data passed a timeout toxic");
    assert!(took >= Duration::from_millis(290), "closed after {took:?} < 300 ms");
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    let s = p.toxic_stats("timeout_upstream").unwrap();
    assert_eq!((s.connections, s.bytes, s.triggered), (1, 5, 1));

    p.update_toxic(Toxic::new(ToxicKind::Timeout { timeout: 0 }, Stream::Upstream)).unwrap();
    let mut c = connect(&p).await;
    c.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 5];
    let stalled = tokio::time::timeout(Duration::from_millis(600), c.read(&mut buf)).await;
    assert!(stalled.is_err(), "a timeout-0 connection answered or closed: {stalled:?}");
    // Removing a timeout toxic closes the connections it stalled (Toxiproxy does the same).
    p.remove_toxic("timeout_upstream").unwrap();
    let (data, _, _) = within("close after removal", drain(&mut c)).await;
    assert!(data.is_empty());
}

/// reset_peer: the client's read fails with ECONNRESET (at once with timeout 0, after ~200 ms
/// with timeout 200).
#[tokio::test]
async fn reset_peer_resets_the_connection() {
    let echo = echo_server().await;
    let p = proxy_to("rst", echo.addr).await;
    p.add_toxic(Toxic::new(ToxicKind::ResetPeer { timeout: 0 }, Stream::Upstream)).unwrap();
    let mut c = connect(&p).await;
    c.write_all(b"hello").await.unwrap();
    let (data, _, err) = within("reset", drain(&mut c)).await;
    assert!(data.is_empty());
    let err = err.expect("expected ECONNRESET, got a clean EOF");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");

    p.update_toxic(Toxic::new(ToxicKind::ResetPeer { timeout: 200 }, Stream::Upstream)).unwrap();
    let mut c = connect(&p).await;
    let t0 = Instant::now();
    c.write_all(b"hello").await.unwrap();
    let (_, _, err) = within("reset", drain(&mut c)).await;
    let took = t0.elapsed();
    assert_eq!(err.map(|e| e.kind()), Some(std::io::ErrorKind::ConnectionReset));
    assert!(took >= Duration::from_millis(190), "reset after {took:?} < 200 ms");
    let s = p.toxic_stats("reset_peer_upstream").unwrap();
    assert_eq!((s.connections, s.triggered), (2, 2));
}

/// slow_close 300: the server's close reaches the client ~300 ms late; the data does not.
#[tokio::test]
async fn slow_close_delays_the_close() {
    let server = send_server(b"bye".to_vec(), false).await;
    let p = proxy_to("slowclose", server.addr).await;
    p.add_toxic(Toxic::new(ToxicKind::SlowClose { delay: 300 }, Stream::Downstream)).unwrap();
    let mut c = connect(&p).await;
    let t0 = Instant::now();
    let mut bye = [0u8; 3];
    within("data", c.read_exact(&mut bye)).await.unwrap();
    let data_at = t0.elapsed();
    let (rest, _, err) = within("close", drain(&mut c)).await;
    let closed_at = t0.elapsed();
    assert!(rest.is_empty() && err.is_none());
    assert!(data_at < Duration::from_millis(250), "data was delayed too: {data_at:?}");
    assert!(closed_at >= Duration::from_millis(290), "close after {closed_at:?} < 300 ms");
    assert_eq!(p.toxic_stats("slow_close_downstream").unwrap().triggered, 1);
}

/// toxicity 0.5 applies a toxic to some connections only, drawn from the seed: the same seed
/// picks the same connections, and the counter matches the connections actually hit.
#[tokio::test]
async fn toxicity_is_drawn_per_connection_from_the_seed() {
    async fn pattern(seed: u64, upstream: SocketAddr) -> (Vec<bool>, u64) {
        let p = Proxy::start(ProxyConfig::new("tox", upstream.to_string()).seed(seed)).await.unwrap();
        p.add_toxic(Toxic::new(ToxicKind::LimitData { bytes: 0 }, Stream::Downstream).toxicity(0.5)).unwrap();
        let mut hit = Vec::new();
        for _ in 0..24 {
            let mut c = connect(&p).await;
            c.write_all(b"ping").await.unwrap();
            let (data, _, _) = within("toxicity probe", drain_or_echo(&mut c)).await;
            hit.push(data.is_empty());
        }
        (hit, p.toxic_stats("limit_data_downstream").unwrap().connections)
    }
    /// Read the 4-byte echo or EOF.
    async fn drain_or_echo(c: &mut TcpStream) -> (Vec<u8>, usize, Option<std::io::Error>) {
        let mut buf = [0u8; 4];
        match c.read_exact(&mut buf).await {
            Ok(_) => (buf.to_vec(), 1, None),
            Err(e) => (Vec::new(), 0, Some(e)),
        }
    }
    let echo = echo_server().await;
    let (a, count_a) = pattern(7, echo.addr).await;
    let (b, _) = pattern(7, echo.addr).await;
    let hits = a.iter().filter(|h| **h).count();
    assert_eq!(a, b, "same seed, different connections hit");
    assert!(hits > 0 && hits < a.len(), "toxicity 0.5 hit {hits} of {}", a.len());
    assert_eq!(count_a, hits as u64, "counter disagrees with the connections hit");
}

// ---------------------------------------------------------------- live changes

/// Toxics added to, updated on and removed from an open connection take effect on it; an
/// update lets a chunk held by the old toxic go at once.
#[tokio::test]
async fn toxics_change_on_live_connections() {
    let echo = echo_server().await;
    let p = proxy_to("live", echo.addr).await;
    let mut c = connect(&p).await;
    round_trip(&mut c).await;

    p.add_toxic(latency(150, 0, Stream::Downstream)).unwrap();
    let rtt = round_trip(&mut c).await;
    assert!(rtt >= Duration::from_millis(150), "added latency not applied: {rtt:?}");

    p.remove_toxic("latency_downstream").unwrap();
    let rtt = round_trip(&mut c).await;
    assert!(rtt < Duration::from_millis(150), "removed latency still applied: {rtt:?}");

    // A chunk held by a 10 s latency is released when the toxic is updated to 0.
    p.add_toxic(latency(10_000, 0, Stream::Downstream)).unwrap();
    let p2 = p.clone();
    let updater = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        p2.update_toxic(latency(0, 0, Stream::Downstream)).unwrap();
    });
    let rtt = within("held chunk", round_trip(&mut c)).await;
    updater.await.unwrap();
    assert!(rtt >= Duration::from_millis(190), "{rtt:?}");
    assert!(rtt < Duration::from_secs(5), "update did not release the held chunk: {rtt:?}");

    // A timeout added to an idle connection starts its clock without any traffic.
    p.add_toxic(Toxic::new(ToxicKind::Timeout { timeout: 200 }, Stream::Upstream)).unwrap();
    let (data, _, _) = within("idle timeout", drain(&mut c)).await;
    assert!(data.is_empty());
}

// ---------------------------------------------------------------- enable / disable / shutdown

/// Disabling refuses new connections and closes open ones; enabling listens again on the same
/// address.
#[tokio::test]
async fn disable_refuses_and_closes_enable_restores() {
    let echo = echo_server().await;
    let p = proxy_to("down", echo.addr).await;
    let addr = p.listen_addr();
    let mut c = connect(&p).await;
    round_trip(&mut c).await;

    within("disable", p.disable()).await.unwrap();
    assert!(!p.enabled());
    let (data, _, _) = within("existing connection closed", drain(&mut c)).await;
    assert!(data.is_empty());
    let refused = TcpStream::connect(addr).await;
    assert!(refused.is_err(), "a disabled proxy accepted a connection");
    assert_eq!(p.stats().active, 0);

    within("enable", p.enable()).await.unwrap();
    assert_eq!(p.listen_addr(), addr);
    let mut c = connect(&p).await;
    round_trip(&mut c).await;
}

/// Shutting down (or dropping the last handle) ends every task: the listener and the pumps of
/// open connections; clients see their connections closed.
#[tokio::test]
async fn shutdown_and_drop_end_every_task() {
    let echo = echo_server().await;
    let p = proxy_to("bye", echo.addr).await;
    let addr = p.listen_addr();
    let mut conns = Vec::new();
    for _ in 0..3 {
        let mut c = connect(&p).await;
        round_trip(&mut c).await;
        conns.push(c);
    }
    // accept loop + one connection task and one pump task per connection
    assert_eq!(p.tasks(), 1 + 2 * 3);
    within("shutdown", p.shutdown()).await;
    assert_eq!(p.tasks(), 0);
    for c in &mut conns {
        let (data, _, _) = within("closed", drain(c)).await;
        assert!(data.is_empty());
    }
    assert!(TcpStream::connect(addr).await.is_err());

    // Dropping the only handle does the same, without waiting.
    let p = proxy_to("dropped", echo.addr).await;
    let addr = p.listen_addr();
    let mut c = connect(&p).await;
    round_trip(&mut c).await;
    drop(p);
    let (data, _, _) = within("closed after drop", drain(&mut c)).await;
    assert!(data.is_empty());
    let mut refused = false;
    for _ in 0..50 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the listener outlived the dropped proxy");
}

/// A changed upstream restarts the proxy: open connections close, new ones reach the new server.
#[tokio::test]
async fn updating_upstream_moves_new_connections() {
    let a = send_server(b"A".to_vec(), true).await;
    let b = send_server(b"B".to_vec(), true).await;
    let p = proxy_to("move", a.addr).await;
    let mut c = connect(&p).await;
    let mut one = [0u8; 1];
    c.read_exact(&mut one).await.unwrap();
    assert_eq!(&one, b"A");
    let info = p.update(ProxyUpdate { upstream: Some(b.addr.to_string()), ..Default::default() }).await.unwrap();
    assert!(info.enabled);
    let (rest, _, _) = within("old connection closed", drain(&mut c)).await;
    assert!(rest.is_empty());
    let mut c = connect(&p).await;
    c.read_exact(&mut one).await.unwrap();
    assert_eq!(&one, b"B");
}

// ---------------------------------------------------------------- HTTP API

async fn api_with_registry() -> (ApiServer, ProxyRegistry) {
    let reg = ProxyRegistry::new(SEED);
    let api = ApiServer::start("127.0.0.1:0", reg.clone()).await.unwrap();
    (api, reg)
}

/// A raw HTTP request (blocking reqwest, on the blocking pool): (status, JSON body or Null).
async fn http(api: &ApiServer, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let url = format!("{}{path}", api.url());
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let body = body.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let client = reqwest::blocking::Client::builder().no_proxy().build().unwrap();
        let mut req = client.request(method, url);
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
    .await
    .unwrap()
}

/// The JSON shapes of Toxiproxy v2: proxies, toxics, populate, reset, version.
#[tokio::test]
async fn api_speaks_toxiproxy_json() {
    let echo = echo_server().await;
    let (api, reg) = api_with_registry().await;
    let up = echo.addr.to_string();

    let (st, body) = http(
        &api,
        "POST",
        "/proxies",
        Some(&json!({"name": "echo", "listen": "127.0.0.1:0", "upstream": up}).to_string()),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let listen = body["listen"].as_str().unwrap().to_string();
    assert!(listen.starts_with("127.0.0.1:") && !listen.ends_with(":0"), "{body}");
    assert_eq!(body, json!({"name": "echo", "listen": listen, "upstream": up, "enabled": true, "toxics": []}));

    let (st, body) =
        http(&api, "POST", "/proxies/echo/toxics", Some(r#"{"type": "latency", "attributes": {"latency": 100}}"#))
            .await;
    assert_eq!(st, 200);
    assert_eq!(
        body,
        json!({"attributes": {"latency": 100, "jitter": 0}, "name": "latency_downstream",
        "type": "latency", "stream": "downstream", "toxicity": 1.0})
    );
    // ... and it acts on real traffic.
    let mut c = TcpStream::connect(&listen).await.unwrap();
    assert!(round_trip(&mut c).await >= Duration::from_millis(100));

    let (st, body) = http(
        &api,
        "POST",
        "/proxies/echo/toxics/latency_downstream",
        Some(r#"{"attributes": {"jitter": 5}, "toxicity": 0.5}"#),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(body["attributes"], json!({"latency": 100, "jitter": 5}));
    assert_eq!(body["toxicity"], json!(0.5));

    let (st, body) = http(&api, "GET", "/proxies", None).await;
    assert_eq!(st, 200);
    assert_eq!(body["echo"]["toxics"][0]["name"], "latency_downstream");
    let (st, body) = http(&api, "GET", "/proxies/echo/toxics", None).await;
    assert_eq!((st, body.as_array().map(Vec::len)), (200, Some(1)));
    let (st, body) = http(&api, "GET", "/proxies/echo/toxics/latency_downstream", None).await;
    assert_eq!((st, body["type"].as_str()), (200, Some("latency")));

    let (st, body) = http(&api, "POST", "/proxies/echo", Some(r#"{"enabled": false}"#)).await;
    assert_eq!((st, body["enabled"].as_bool()), (200, Some(false)));
    assert!(TcpStream::connect(&listen).await.is_err());

    let (st, _) = http(&api, "POST", "/reset", None).await;
    assert_eq!(st, 204);
    let info = reg.get("echo").unwrap().info();
    assert!(info.enabled && info.toxics.is_empty());
    let mut c = TcpStream::connect(&listen).await.unwrap();
    assert!(round_trip(&mut c).await < Duration::from_millis(100));

    let (st, body) = http(
        &api,
        "POST",
        "/populate",
        Some(
            &json!([
                {"name": "echo", "listen": listen, "upstream": up},
                {"name": "two", "listen": "127.0.0.1:0", "upstream": up, "enabled": false}
            ])
            .to_string(),
        ),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let proxies = body["proxies"].as_array().unwrap();
    assert_eq!(proxies.len(), 2);
    assert_eq!(proxies[0]["listen"], json!(listen), "an unchanged proxy was replaced");
    assert_eq!(proxies[1]["enabled"], json!(false));

    let (st, _) = http(&api, "DELETE", "/proxies/echo/toxics/latency_downstream", None).await;
    assert_eq!(st, 404);
    let (st, _) = http(&api, "DELETE", "/proxies/two", None).await;
    assert_eq!(st, 204);
    assert_eq!(reg.names(), vec!["echo".to_string()]);

    let (st, body) = http(&api, "GET", "/version", None).await;
    assert_eq!(st, 200);
    assert!(body["version"].as_str().unwrap().starts_with("2."));
    api.shutdown().await;
}

/// Toxiproxy's error shapes and codes: 404 missing proxy/toxic, 409 duplicates, 400 bad
/// JSON/params; arbitrary garbage never produces a 5xx or kills the server.
#[tokio::test]
async fn api_errors_have_toxiproxy_shapes() {
    let (api, _reg) = api_with_registry().await;
    let err = |msg: &str, status: u16| json!({"error": msg, "status": status});

    let cases: Vec<(&str, &str, Option<&str>, u16, Value)> = vec![
        ("GET", "/proxies/nope", None, 404, err("proxy not found", 404)),
        ("DELETE", "/proxies/nope", None, 404, err("proxy not found", 404)),
        ("POST", "/proxies/nope", Some("{}"), 404, err("proxy not found", 404)),
        ("GET", "/proxies/nope/toxics", None, 404, err("proxy not found", 404)),
        ("POST", "/proxies/nope/toxics", Some(r#"{"type":"latency"}"#), 404, err("proxy not found", 404)),
        ("POST", "/proxies", Some(r#"{"name":"p","upstream":"127.0.0.1:9"}"#), 201, Value::Null),
        ("POST", "/proxies", Some(r#"{"name":"p","upstream":"127.0.0.1:9"}"#), 409, err("proxy already exists", 409)),
        ("POST", "/proxies", Some(r#"{"upstream":"127.0.0.1:9"}"#), 400, err("missing required field: name", 400)),
        ("POST", "/proxies", Some(r#"{"name":"q"}"#), 400, err("missing required field: upstream", 400)),
        ("GET", "/proxies/p/toxics/nope", None, 404, err("toxic not found", 404)),
        ("DELETE", "/proxies/p/toxics/nope", None, 404, err("toxic not found", 404)),
        ("POST", "/proxies/p/toxics/nope", Some("{}"), 404, err("toxic not found", 404)),
        ("POST", "/proxies/p/toxics", Some(r#"{"type":"latency"}"#), 200, Value::Null),
        ("POST", "/proxies/p/toxics", Some(r#"{"type":"latency"}"#), 409, err("toxic already exists", 409)),
        ("POST", "/proxies/p/toxics", Some(r#"{"type":"fire"}"#), 400, err("invalid toxic type", 400)),
        (
            "POST",
            "/proxies/p/toxics",
            Some(r#"{"type":"latency","stream":"sideways"}"#),
            400,
            err("stream was invalid, can be either upstream or downstream", 400),
        ),
    ];
    for (method, path, body, status, want) in cases {
        let (st, got) = http(&api, method, path, body).await;
        assert_eq!(st, status, "{method} {path} {body:?} -> {got}");
        if !want.is_null() {
            assert_eq!(got, want, "{method} {path} {body:?}");
        }
    }

    // Bad JSON and bad parameters: 400 with "bad request body: ...".
    let bad: [(&str, &str); 13] = [
        ("/proxies", "{"),
        ("/proxies", "[1,2]"),
        ("/proxies", r#"{"name": 5, "upstream": "127.0.0.1:9"}"#),
        ("/proxies", r#"{"name": "r", "upstream": "no-port"}"#),
        ("/proxies/p", r#"{"enabled": "yes"}"#),
        ("/proxies/p/toxics", "not json"),
        ("/proxies/p/toxics", r#"{"type":"latency","name":"x","attributes":{"latency":-5}}"#),
        ("/proxies/p/toxics", r#"{"type":"latency","name":"y","attributes":{"latency":"slow"}}"#),
        ("/proxies/p/toxics", r#"{"type":"latency","name":"z","toxicity":2}"#),
        ("/proxies/p/toxics", r#"{"type":"slicer","name":"s","attributes":{"average_size":0}}"#),
        ("/proxies/p/toxics/latency_downstream", r#"{"attributes":{"latency":1.5}}"#),
        ("/populate", r#"{"name":"p"}"#),
        ("/populate", r#"[{"name":"d","upstream":"127.0.0.1:9"},{"name":"d","upstream":"127.0.0.1:9"}]"#),
    ];
    for (path, body) in bad {
        let (st, got) = http(&api, "POST", path, Some(body)).await;
        assert_eq!(st, 400, "POST {path} {body} -> {got}");
        assert_eq!(got["status"], json!(400), "{got}");
        let msg = got["error"].as_str().unwrap_or("");
        assert!(msg.starts_with("bad request body"), "POST {path} {body} -> {msg}");
    }

    // Garbage never crashes the server or yields a 5xx.
    let garbage = [
        "",
        "null",
        "\u{0}",
        "{\"type\":null}",
        "{\"attributes\":{}}",
        "[[[[",
        "1e999",
        "{\"name\":\"\",\"upstream\":\"\"}",
        "\"\\ud800\"",
        "{\"toxicity\":-0}",
    ];
    for g in garbage {
        for path in ["/proxies", "/populate", "/proxies/p", "/proxies/p/toxics", "/proxies/p/toxics/latency_downstream"]
        {
            let (st, got) = http(&api, "POST", path, Some(g)).await;
            assert!(st < 500, "POST {path} {g:?} -> {st} {got}");
        }
    }
    let (st, _) = http(&api, "GET", "/version", None).await;
    assert_eq!(st, 200);
}

/// Requests from browsers are refused like Toxiproxy does.
#[tokio::test]
async fn api_refuses_browsers() {
    let (api, _reg) = api_with_registry().await;
    let url = format!("{}/proxies", api.url());
    let st = tokio::task::spawn_blocking(move || {
        let client = reqwest::blocking::Client::builder().no_proxy().build().unwrap();
        client.get(url).header("User-Agent", "Mozilla/5.0").send().unwrap().status().as_u16()
    })
    .await
    .unwrap();
    assert_eq!(st, 403);
}

/// The `toxiproxy_rust` client drives the embedded API: populate, toxics (checked on real
/// traffic), delete all toxics, disable/enable, reset, version.
#[tokio::test]
async fn toxiproxy_rust_client_drives_the_embedded_api() {
    let echo = echo_server().await;
    let (api, reg) = api_with_registry().await;
    let api_addr = api.local_addr();
    let upstream = echo.addr.to_string();
    let result = tokio::task::spawn_blocking(move || {
        use toxiproxy_rust::client::Client;
        use toxiproxy_rust::proxy::ProxyPack;
        let client = Client::new(api_addr);
        assert!(client.is_running());
        assert!(client.version().unwrap().contains("2."));
        let made =
            client.populate(vec![ProxyPack::new("echo".into(), "127.0.0.1:0".into(), upstream.clone())]).unwrap();
        assert_eq!(made.len(), 1);
        let listen = made[0].proxy_pack.listen.clone();

        let rtt = |listen: &str| {
            let mut c = std::net::TcpStream::connect(listen).unwrap();
            c.set_nodelay(true).unwrap();
            let t0 = Instant::now();
            c.write_all(&[1u8; 64]).unwrap();
            let mut back = [0u8; 64];
            c.read_exact(&mut back).unwrap();
            t0.elapsed()
        };

        let proxy = client.find_and_reset_proxy("echo").unwrap();
        proxy.with_latency("downstream".into(), 120, 0, 1.0);
        proxy.with_bandwidth("upstream".into(), 1000, 1.0);
        proxy.with_slicer("upstream".into(), 16, 4, 0, 1.0);
        assert!(rtt(&listen) >= Duration::from_millis(120));
        let toxics = proxy.toxics().unwrap();
        let mut names: Vec<_> = toxics.iter().map(|t| t.name.clone()).collect();
        names.sort();
        assert_eq!(names, ["bandwidth_upstream", "latency_downstream", "slicer_upstream"]);
        assert_eq!(toxics.iter().find(|t| t.name == "slicer_upstream").unwrap().attributes["average_size"], 16);

        proxy.delete_all_toxics().unwrap();
        assert!(proxy.toxics().unwrap().is_empty());
        assert!(rtt(&listen) < Duration::from_millis(120));

        proxy.disable().unwrap();
        assert!(std::net::TcpStream::connect(&listen).is_err());
        proxy.enable().unwrap();
        assert!(rtt(&listen) < Duration::from_millis(120));

        proxy.with_timeout("upstream".into(), 0, 1.0);
        proxy.disable().unwrap();
        client.reset().unwrap();
        let all = client.all().unwrap();
        assert!(all["echo"].proxy_pack.enabled);
        assert!(all["echo"].proxy_pack.toxics.is_empty());
        listen
    })
    .await
    .unwrap();
    assert_eq!(reg.get("echo").unwrap().listen_addr().to_string(), result);
    api.shutdown().await;
}

/// `ProxyBackend::External` (through `toxiproxy_rust` + raw calls) against our own API server:
/// every operation, the error mapping, and a toxic acting on real traffic.
#[tokio::test]
async fn external_backend_drives_a_toxiproxy_api() {
    let echo = echo_server().await;
    let (api, reg) = api_with_registry().await;
    let backend = ProxyBackend::from_url(Some(&api.url()), 1).await.unwrap();
    assert!(backend.is_external());
    assert!(backend.version().await.unwrap().starts_with("2."));

    let info = backend.create_proxy("echo", "127.0.0.1:0", &echo.addr.to_string()).await.unwrap();
    assert!(info.enabled);
    assert_eq!(info.listen, reg.get("echo").unwrap().listen_addr().to_string());
    let dup = backend.create_proxy("echo", "127.0.0.1:0", &echo.addr.to_string()).await;
    assert_eq!(dup.unwrap_err().status(), 409);
    assert_eq!(backend.proxy("nope").await.unwrap_err().status(), 404);

    let t = latency(100, 0, Stream::Downstream).named("slow");
    backend.add_toxic("echo", t.clone()).await.unwrap();
    assert_eq!(backend.add_toxic("echo", t.clone()).await.unwrap_err().status(), 409);
    assert_eq!(backend.add_toxic("nope", t.clone()).await.unwrap_err().status(), 404);
    let mut c = TcpStream::connect(&info.listen).await.unwrap();
    assert!(round_trip(&mut c).await >= Duration::from_millis(100));
    // The embedded side counted it (an external Toxiproxy has no counters).
    assert!(reg.get("echo").unwrap().toxic_stats("slow").unwrap().took_effect());
    assert_eq!(backend.toxic_stats("echo", "slow").await.unwrap(), None);

    let updated = backend.update_toxic("echo", latency(200, 10, Stream::Downstream).named("slow")).await.unwrap();
    assert_eq!(updated.kind, ToxicKind::Latency { latency: 200, jitter: 10 });
    assert_eq!(backend.toxics("echo").await.unwrap(), vec![updated]);
    backend.remove_toxic("echo", "slow").await.unwrap();
    assert_eq!(backend.remove_toxic("echo", "slow").await.unwrap_err().status(), 404);
    assert!(round_trip(&mut c).await < Duration::from_millis(100));

    backend.set_enabled("echo", false).await.unwrap();
    assert!(!backend.proxy("echo").await.unwrap().enabled);
    assert!(TcpStream::connect(&info.listen).await.is_err());
    backend.set_enabled("echo", true).await.unwrap();
    let moved = backend.update_proxy("echo", ProxyUpdate { enabled: Some(false), ..Default::default() }).await.unwrap();
    assert!(!moved.enabled);

    backend.add_toxic("echo", Toxic::new(ToxicKind::Bandwidth { rate: 5 }, Stream::Upstream)).await.unwrap();
    backend.reset().await.unwrap();
    let all = backend.proxies().await.unwrap();
    assert_eq!(all.len(), 1);
    assert!(all[0].enabled && all[0].toxics.is_empty());

    backend.delete_proxy("echo").await.unwrap();
    assert_eq!(backend.delete_proxy("echo").await.unwrap_err().status(), 404);
    assert!(reg.names().is_empty());
    drop(backend);
    api.shutdown().await;
}

/// An unreachable external Toxiproxy is reported with the URL and a fix.
#[tokio::test]
async fn external_backend_reports_an_unreachable_server() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let err = ExternalToxiproxy::connect(&dead).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&dead) && msg.contains("TOXIPROXY_URL"), "{msg}");
}

/// Item 10 of [reliability]: a proxy created on an *external* Toxiproxy is journaled, so a
/// harness killed outright (no `Drop`, no teardown) does not leave it on the server: its crash
/// reaper deletes it. The embedded `ApiServer` plays the external server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_proxy_of_a_sigkilled_harness_is_deleted_by_the_reaper() {
    let registry = ProxyRegistry::new(7);
    let api = ApiServer::start("127.0.0.1:0", registry.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let info = dir.path().join("info");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "external_proxy_inner", "--ignored", "--nocapture"])
        .env("CHAOS_EXTERNAL_INNER", &info)
        .env("CHAOS_EXTERNAL_URL", api.url())
        .env_remove("CHAOS_NO_REAPER")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !info.exists() {
        assert!(t0.elapsed() < Duration::from_secs(20), "inner harness never got ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let name = std::fs::read_to_string(&info).unwrap();
    assert!(registry.get(&name).is_ok(), "the inner harness created {name} on the server");
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    let t0 = Instant::now();
    while registry.get(&name).is_ok() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "proxy {name} is still on the external server 10 s after its harness was SIGKILLed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    api.shutdown().await;
}

#[test]
#[ignore = "run and SIGKILLed by external_proxy_of_a_sigkilled_harness_is_deleted_by_the_reaper"]
fn external_proxy_inner() {
    let (Some(info), Ok(url)) = (std::env::var_os("CHAOS_EXTERNAL_INNER"), std::env::var("CHAOS_EXTERNAL_URL")) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let sb = std::sync::Arc::new(chaos_harness::sandbox::Sandbox::new("net_proxy::external_crash").unwrap());
        let link = chaos_harness::topology::Link::builder("db", "127.0.0.1:9").external(url).start(&sb).await.unwrap();
        let tmp = std::path::PathBuf::from(&info).with_extension("tmp");
        std::fs::write(&tmp, link.proxy_name()).unwrap();
        std::fs::rename(&tmp, &info).unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(link);
    });
}
