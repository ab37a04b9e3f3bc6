//! Network faults end to end (tag `network`), through `cx.scenario(..)`:
//!
//! * proxied links ([`Link`]) in front of an in-process echo server: latency, link down,
//!   reset_peer and every other toxic, each confirmed by the proxy's counters, its effect
//!   measured on the requests of the scenario's load per phase (before, during, after);
//! * the same faults on the external-Toxiproxy backend (our own Toxiproxy API server plays the
//!   external server);
//! * partitions and packet loss for a real program (a Python echo server) in its own network
//!   namespace, restored exactly, and undone by teardown when a test leaves them behind;
//! * Snakepit's links: worker->BEAM link down (workers self-terminate, the pool recovers when
//!   it returns), 500 ms on the bridge (slower, no errors), reset_peer on the client->API link
//!   (clients see errors, the pool does not notice).
//!
//! The toxics' exact effects on traffic (latency +-jitter, bandwidth bounds, slicer, ...) are
//! measured in `chaos-harness/tests/net_proxy.rs`; these tests check the faults as a test
//! uses them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use chaos_harness::fault::net::Stream;
use chaos_harness::fault::{FaultContext, Inject};
use chaos_harness::fixture::python3;
use chaos_harness::fixture::snakepit::Execute;
use chaos_harness::load::{Call, Load, LoadReport, Outcome, Window};
use chaos_harness::observe::EventKind;
use chaos_harness::prelude::*;
use chaos_harness::sandbox::Sandbox;
use chaos_harness::scenario::{ScenarioError, ScenarioOutcome};
use chaos_harness::topology::{Link, Netns};
use chaos_proxy::{ApiServer, ProxyRegistry};
use snakepit_chaos::scenarios::pit;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MS: fn(u64) -> Duration = Duration::from_millis;
const SECS: fn(u64) -> Duration = Duration::from_secs;

// ---- helpers --------------------------------------------------------------------------------

/// An echo server on the test's runtime; ends with the runtime.
async fn echo_server() -> anyhow::Result<SocketAddr> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// One request: connect to `addr`, send 4 bytes, read the echo (5 s timeout).
async fn echo_once(addr: SocketAddr) -> Result<(), String> {
    let io = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"ping").await?;
        let mut b = [0u8; 4];
        s.read_exact(&mut b).await?;
        Ok::<_, std::io::Error>(b)
    };
    match tokio::time::timeout(SECS(5), io).await {
        Ok(Ok(b)) if &b == b"ping" => Ok(()),
        Ok(Ok(b)) => Err(format!("wrong echo {b:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no echo within 5 s".into()),
    }
}

fn echo_call(addr: SocketAddr) -> Call {
    Call::new(move |_| async move {
        match echo_once(addr).await {
            Ok(()) => Outcome::Ok,
            Err(e) if e.contains("refused") => Outcome::Refused(e),
            Err(e) => Outcome::Lost(e),
        }
    })
}

/// When the first event matching `pred` happened (scenario time).
fn at(out: &ScenarioOutcome, what: &str, pred: impl Fn(&EventKind) -> bool) -> anyhow::Result<Duration> {
    out.first(pred).map(|e| e.at).with_context(|| format!("no `{what}` event\n{out}"))
}

/// The phases of a scenario shaped `.. inject(f) .. wait(w) .. clear_faults() ..`: requests
/// that *ended* before the injection began; requests that *started and ended* while the fault
/// was confirmed in force (after its confirmation, before the wait that precedes the clear
/// ended, less a 5 ms margin); requests that started after the clear was confirmed. Requests
/// in flight at the injection or at the clear belong to no phase: a request's start is when
/// its task began, and under load its bytes may reach the link much later.
struct Phases {
    before: Duration,
    during: (Duration, Duration),
    after: (Duration, Duration),
}

fn phases(out: &ScenarioOutcome, wait: Duration) -> anyhow::Result<Phases> {
    let inject = at(out, "inject", |k| matches!(k, EventKind::FaultInjecting { .. }))?;
    let confirmed = at(out, "confirmed", |k| matches!(k, EventKind::FaultConfirmed { .. }))?;
    let wait_line = format!("wait {}", chaos_harness::params::format_duration(wait));
    let wait_at = out
        .events
        .iter()
        .find(|e| e.at >= confirmed && matches!(&e.kind, EventKind::StepStarted { what, .. } if *what == wait_line))
        .map(|e| e.at)
        .with_context(|| format!("no wait of {wait:?} after the confirmation\n{out}"))?;
    let cleared = at(out, "cleared", |k| matches!(k, EventKind::FaultCleared { .. }))?;
    Ok(Phases {
        before: inject,
        during: (confirmed, (wait_at + wait).saturating_sub(MS(5))),
        after: (cleared, SECS(3600)),
    })
}

fn report(out: &ScenarioOutcome) -> anyhow::Result<&LoadReport> {
    out.load_report.as_ref().with_context(|| format!("the scenario ran no load\n{out}"))
}

/// Requests started in `[from, to)`: (ok, failed).
fn counts(r: &LoadReport, (from, to): (Duration, Duration)) -> (u64, u64) {
    tally(r, Window::sent(from, to))
}

/// Requests started and ended within `[from, to)`: (ok, failed).
fn counts_within(r: &LoadReport, (from, to): (Duration, Duration)) -> (u64, u64) {
    tally(r, Window::within(from, to))
}

/// Requests that ended before `t`: (ok, failed).
fn counts_ended(r: &LoadReport, t: Duration) -> (u64, u64) {
    tally(r, Window::ended(Duration::ZERO, t))
}

/// (ok, failed) of the requests issued in `window`; a tick the generator never issued
/// ([`Outcome::Skipped`], e.g. one due just before the load stopped while the machine was busy)
/// is neither.
fn tally(r: &LoadReport, window: Window) -> (u64, u64) {
    let c = r.ok_failed(window);
    (c.ok, c.failed)
}

fn first_failure(r: &LoadReport, (from, to): (Duration, Duration)) -> String {
    r.first_failure(Window::sent(from, to))
        .map(|x| format!("#{} at +{} ms: {:?}", x.seq, x.sent.as_millis(), x.outcome))
        .unwrap_or_default()
}

/// Every request before and after the fault succeeded, every one during it failed.
fn only_during_fails(out: &ScenarioOutcome, wait: Duration) -> anyhow::Result<()> {
    let p = phases(out, wait)?;
    let r = report(out)?;
    let (b_ok, b_bad) = counts_ended(r, p.before);
    let (d_ok, d_bad) = counts_within(r, p.during);
    let (a_ok, a_bad) = counts(r, p.after);
    tracing::info!(b_ok, b_bad, d_ok, d_bad, a_ok, a_bad, "requests per phase (ok, failed)");
    ensure!(
        b_ok > 0 && b_bad == 0,
        "before the fault: {b_ok} ok, {b_bad} failed (first: {})\n{out}",
        first_failure(r, (Duration::ZERO, p.before))
    );
    let first_ok = r
        .records()
        .iter()
        .find(|x| x.sent >= p.during.0 && x.ended < p.during.1 && x.outcome.is_ok())
        .map(|x| format!("#{} started +{} us, took {} us", x.seq, x.sent.as_micros(), x.service_time().as_micros()))
        .unwrap_or_default();
    ensure!(d_bad > 0 && d_ok == 0, "while the fault was in force: {d_ok} ok ({first_ok}), {d_bad} failed\n{out}");
    ensure!(
        a_ok > 0 && a_bad == 0,
        "after the clear: {a_ok} ok, {a_bad} failed (first: {})\n{out}",
        first_failure(r, p.after)
    );
    Ok(())
}

fn p50(r: &LoadReport, from: Duration, to: Duration) -> anyhow::Result<Duration> {
    r.stats_between(from, to).p50.with_context(|| format!("no successful request between +{from:?} and +{to:?}"))
}

// ---- proxied links (no external programs) ---------------------------------------------------

#[chaos_test(tags = ["network"], timeout = "30s")]
async fn latency_on_a_link_slows_every_round_trip_until_cleared(cx: &mut Chaos) -> ChaosResult {
    let link = cx.link("echo", echo_server().await?.to_string()).await?;
    let wait = SECS(1);
    let out = cx
        .scenario("100 ms latency on an echo link")
        .load(Load::constant_rate(50).timeout(SECS(5)), echo_call(link.listen_addr()))
        .wait(MS(500))
        .inject(Fault::latency(&link, MS(100)))
        .wait(wait)
        .clear_faults()
        .wait(MS(500))
        .stop_load()
        .expect(Criterion::error_rate().at_most(0.0))
        .run()
        .await?;
    tracing::info!("{out}");
    ensure!(out.confirmations[0].detail.contains("applied to"), "confirmed by the counters: {out}");
    let p = phases(&out, wait)?;
    let r = report(&out)?;
    let (before, during, after) =
        (p50(r, Duration::ZERO, p.before)?, p50(r, p.during.0, p.during.1)?, p50(r, p.after.0, p.after.1)?);
    tracing::info!(?before, ?during, ?after, "p50 per phase");
    ensure!(
        during >= before + MS(100),
        "with 100 ms latency the p50 round trip went from {before:?} to only {during:?}"
    );
    ensure!(after + MS(80) < during, "after the clear the p50 is still {after:?} (during: {during:?})");
    Ok(())
}

#[chaos_test(tags = ["network"], timeout = "30s")]
async fn link_down_closes_and_refuses_connections_until_cleared(cx: &mut Chaos) -> ChaosResult {
    let link = cx.link("echo", echo_server().await?.to_string()).await?;
    // A connection open before the fault: link down must close it.
    let mut held = tokio::net::TcpStream::connect(link.listen_addr()).await?;
    held.write_all(b"ping").await?;
    let mut b = [0u8; 4];
    held.read_exact(&mut b).await?;
    let wait = MS(600);
    let out = cx
        .scenario("echo link down")
        .load(Load::constant_rate(100).timeout(SECS(5)), echo_call(link.listen_addr()))
        .wait(MS(300))
        .inject(Fault::link_down(&link))
        .expect(Criterion::tcp_connect(link.listen_addr()).fails_for(MS(200)))
        .wait(wait)
        .clear_faults()
        .expect(Criterion::tcp_connect(link.listen_addr()).succeeds_within(SECS(1)))
        .wait(MS(300))
        .stop_load()
        .run()
        .await?;
    tracing::info!("{out}");
    ensure!(out.confirmations[0].detail.contains("was refused"), "confirmed by a refused connect: {out}");
    // The held connection, plus any load request in flight at that moment.
    let closed: u64 = out.confirmations[0]
        .detail
        .split("; ")
        .find_map(|part| part.strip_suffix(" open connection(s) closed (0 left)"))
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("the confirmation reports the connections it closed: {out}"))?;
    ensure!(closed >= 1, "the held connection was closed: {out}");
    match tokio::time::timeout(SECS(2), held.read(&mut b)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        other => bail!("the connection held across link down was not closed: {other:?}"),
    }
    only_during_fails(&out, wait)
}

#[chaos_test(tags = ["network"], timeout = "30s")]
async fn reset_peer_resets_every_connection_until_cleared(cx: &mut Chaos) -> ChaosResult {
    let link = cx.link("echo", echo_server().await?.to_string()).await?;
    let wait = MS(600);
    let out = cx
        .scenario("reset_peer on an echo link")
        .load(Load::constant_rate(100).timeout(SECS(5)), echo_call(link.listen_addr()))
        .wait(MS(300))
        .inject(Fault::reset_peer(&link))
        .wait(wait)
        .clear_faults()
        .wait(MS(300))
        .stop_load()
        .run()
        .await?;
    tracing::info!("{out}");
    let cleared = &out.confirmations[1].detail;
    ensure!(!cleared.contains("caused 0 close"), "the toxic's counters show the resets it caused: {cleared}");
    only_during_fails(&out, wait)?;
    let r = report(&out)?;
    let p = phases(&out, wait)?;
    let reset = r
        .records()
        .iter()
        .filter(|x| x.sent >= p.during.0 && x.ended < p.during.1)
        .all(|x| matches!(&x.outcome, Outcome::Lost(e) if e.contains("reset") || e.contains("early eof")));
    ensure!(reset, "every failure during the fault is a reset: {}", first_failure(r, p.during));
    Ok(())
}

#[chaos_test(tags = ["network"], timeout = "30s")]
async fn every_toxic_fault_is_confirmed_by_the_proxy_counters(cx: &mut Chaos) -> ChaosResult {
    let link = cx.link("echo", echo_server().await?.to_string()).await?;
    let faults: Vec<(&str, Fault)> = vec![
        ("latency", Fault::latency(&link, MS(20)).jitter(MS(5)).stream(Stream::Upstream).into()),
        ("bandwidth", Fault::bandwidth(&link, 10).into()),
        ("timeout", Fault::timeout(&link, MS(50)).into()),
        ("slicer", Fault::slicer(&link, 1, 0, Duration::from_micros(10)).into()),
        ("limit_data", Fault::limit_data(&link, 2).into()),
        ("slow_close", Fault::slow_close(&link, MS(10)).into()),
        ("reset_peer", Fault::reset_peer_after(&link, MS(10)).toxicity(1.0).into()),
    ];
    for (kind, fault) in faults {
        let out = cx
            .scenario(&format!("{kind} on an echo link"))
            .load(Load::constant_rate(100).timeout(SECS(2)), echo_call(link.listen_addr()))
            .inject(fault)
            .wait(MS(100))
            .run()
            .await?;
        tracing::info!("{out}");
        let c = &out.confirmations;
        ensure!(c.len() == 2 && c[0].fault.starts_with(kind) && c[0].detail.contains("applied to"), "{kind}: {out}");
        ensure!(c[1].detail.contains("removed and no longer listed"), "{kind}: {out}");
    }
    let left = link.proxy().context("embedded")?.toxics();
    ensure!(left.is_empty(), "every toxic was removed: {left:?}");
    Ok(())
}

#[chaos_test(tags = ["network"], timeout = "30s")]
async fn a_toxic_on_an_idle_link_is_not_injected(cx: &mut Chaos) -> ChaosResult {
    let link = cx.link("idle", echo_server().await?.to_string()).await?;
    let err = cx
        .scenario("latency on a link nobody uses")
        .inject(Fault::latency(&link, MS(100)).confirm_within(MS(200)))
        .run()
        .await
        .err()
        .context("a toxic that touched no connection must not count as injected")?;
    let ScenarioError::NotInjected(out) = &err else { bail!("expected not injected, got {err}") };
    let why = out.not_injected.as_deref().unwrap_or_default();
    ensure!(why.contains("no connection went through link idle"), "{out}");
    ensure!(link.proxy().context("embedded")?.toxics().is_empty(), "the unconfirmed toxic was removed again");
    Ok(())
}

#[chaos_test(tags = ["network"], timeout = "30s")]
async fn external_toxiproxy_backend_takes_the_same_faults(cx: &mut Chaos) -> ChaosResult {
    // Our own Toxiproxy API server plays the external Toxiproxy.
    let registry = ProxyRegistry::new(cx.seed());
    let api = ApiServer::start("127.0.0.1:0", registry.clone()).await?;
    let url = format!("http://{}", api.local_addr());
    let upstream = echo_server().await?;
    let link = Link::builder("echo", upstream.to_string()).external(&url).start(cx.sandbox()).await?;
    ensure!(link.is_external() && link.proxy().is_none(), "{link:?}");
    let on_server = format!("chaos-{}-echo", cx.sandbox().run_id());
    ensure!(registry.names() == vec![on_server.clone()], "proxy created on the server: {:?}", registry.names());

    let sandbox = cx.sandbox().clone();
    let latency = Fault::latency(&link, MS(150));
    let active = latency.inject(FaultContext { sandbox: &sandbox, rng: cx.rng() }).await?;
    tracing::info!("{}", active.confirmation());
    ensure!(active.confirmation().detail.contains("listed by the external Toxiproxy"), "{}", active.confirmation());
    let t0 = Instant::now();
    echo_once(link.listen_addr()).await.map_err(anyhow::Error::msg)?;
    ensure!(t0.elapsed() >= MS(150), "the external proxy delayed the echo by only {:?}", t0.elapsed());
    let cleared = active.clear().await?;
    ensure!(registry.get(&on_server)?.toxics().is_empty(), "removed on the server: {cleared}");

    let wait = MS(400);
    let out = cx
        .scenario("external link down")
        .load(Load::constant_rate(100).timeout(SECS(5)), echo_call(link.listen_addr()))
        .wait(MS(200))
        .inject(Fault::link_down(&link))
        .wait(wait)
        .clear_faults()
        .wait(MS(200))
        .stop_load()
        .run()
        .await?;
    tracing::info!("{out}");
    only_during_fails(&out, wait)?;
    // The faults hold clones of the link; the proxy goes with the last one.
    drop((latency, out));
    drop(link);
    ensure!(registry.names().is_empty(), "dropping the link deleted its proxy on the server: {:?}", registry.names());
    Ok(())
}

// ---- network namespaces ---------------------------------------------------------------------

/// A TCP echo server on port 7000 and a UDP echo server on 7001, both on 0.0.0.0.
const ECHO_PY: &str = r#"
import socket, threading
def udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 7001))
    while True:
        d, a = u.recvfrom(2048)
        try: u.sendto(d, a)
        except OSError: pass
def conn(c):
    while True:
        d = c.recv(4096)
        if not d: break
        c.sendall(d)
threading.Thread(target=udp, daemon=True).start()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7000)); s.listen(64)
print("echo ready", flush=True)
while True:
    c, _ = s.accept(); threading.Thread(target=conn, args=(c,), daemon=True).start()
"#;

async fn echo_in(cx: &mut Chaos, ns: &Netns) -> anyhow::Result<chaos_harness::fixture::Process> {
    let tcp = format!("{}:7000", ns.addr());
    Ok(cx
        .start(ns.command(python3()).name("echo").args(["-c", ECHO_PY]).ready(Probe::tcp(&tcp)).stop_grace(MS(500)))
        .await?)
}

/// One UDP round trip to `addr`, waiting `wait` for the reply.
fn udp_call(addr: SocketAddr, wait: Duration) -> Call {
    Call::new(move |seq| async move {
        let io = async {
            let s = tokio::net::UdpSocket::bind("0.0.0.0:0").await?;
            let msg = seq.to_le_bytes();
            s.send_to(&msg, addr).await?;
            let mut b = [0u8; 8];
            let n = s.recv(&mut b).await?;
            Ok::<_, std::io::Error>(b[..n] == msg)
        };
        match tokio::time::timeout(wait, io).await {
            Ok(Ok(true)) => Outcome::Ok,
            Ok(Ok(false)) => Outcome::Lost("wrong reply".into()),
            Ok(Err(e)) => Outcome::Lost(e.to_string()),
            Err(_) => Outcome::Timeout,
        }
    })
}

#[chaos_test(tags = ["network"], timeout = "60s", requires = ["netns", "nft", "python3"])]
async fn partition_cuts_a_namespaced_server_and_heal_restores_it(cx: &mut Chaos) -> ChaosResult {
    let ns = Netns::create(cx.sandbox(), "echo").await?;
    let _srv = echo_in(cx, &ns).await?;
    let addr = SocketAddr::from((ns.addr(), 7000));
    let rules_before = ns.exec("nft", &["list", "ruleset"])?;
    // An established connection across the partition: stalls, then resumes after the heal.
    let mut held = tokio::net::TcpStream::connect(addr).await?;
    let mut b = [0u8; 4];
    held.write_all(b"one!").await?;
    held.read_exact(&mut b).await?;

    let sandbox = cx.sandbox().clone();
    let active = Fault::partition(&ns).inject(FaultContext { sandbox: &sandbox, rng: cx.rng() }).await?;
    tracing::info!("{}", active.confirmation());
    ensure!(active.confirmation().detail.contains("drops all traffic"), "{}", active.confirmation());
    held.write_all(b"two!").await?;
    ensure!(tokio::time::timeout(MS(500), held.read_exact(&mut b)).await.is_err(), "data crossed the partition");
    ensure!(echo_once(addr).await.is_err(), "a new connection crossed the partition");
    let healed = active.clear().await?;
    tracing::info!("{healed}");
    tokio::time::timeout(SECS(10), held.read_exact(&mut b))
        .await
        .context("the stalled connection did not resume after the heal")??;
    ensure!(&b == b"two!", "the held connection delivered {b:?}");
    ensure!(ns.exec("nft", &["list", "ruleset"])? == rules_before, "ruleset restored exactly");

    // The same through a scenario, judged from the outside.
    let out = cx
        .scenario("partition a namespaced echo server")
        .inject(Fault::partition(&ns))
        .expect(Criterion::tcp_connect(addr).fails_for(MS(500)))
        .clear_faults()
        .expect(Criterion::tcp_connect(addr).succeeds_within(SECS(3)))
        .run()
        .await?;
    tracing::info!("{out}");
    echo_once(addr).await.map_err(anyhow::Error::msg)?;
    ensure!(ns.exec("nft", &["list", "ruleset"])? == rules_before, "ruleset restored exactly");
    let links = ns.exec("ip", &["-o", "link", "show", "chaos0"])?;
    ensure!(links.contains("state UP"), "the veth is still up: {links}");
    Ok(())
}

#[chaos_test(tags = ["network"], timeout = "60s", requires = ["netns", "nft", "python3"])]
async fn packet_loss_drops_a_share_of_datagrams_until_cleared(cx: &mut Chaos) -> ChaosResult {
    let ns = Netns::create(cx.sandbox(), "udp").await?;
    let _srv = echo_in(cx, &ns).await?;
    let udp = SocketAddr::from((ns.addr(), 7001));
    let wait = SECS(2);
    let out = cx
        .scenario("30% packet loss on a namespaced UDP echo server")
        .load(Load::closed_loop(2).timeout(SECS(1)), udp_call(udp, MS(50)))
        .wait(MS(300))
        .inject(Fault::packet_loss(&ns, 30))
        .wait(wait)
        .clear_faults()
        .wait(MS(300))
        .stop_load()
        .run()
        .await?;
    tracing::info!("{out}");
    ensure!(out.confirmations[0].detail.contains("drops 30% of packets"), "{out}");
    let p = phases(&out, wait)?;
    let r = report(&out)?;
    let (b_ok, b_bad) = counts_ended(r, p.before);
    let (d_ok, d_bad) = counts_within(r, p.during);
    let (a_ok, a_bad) = counts(r, p.after);
    tracing::info!(b_ok, b_bad, d_ok, d_bad, a_ok, a_bad, "datagram round trips per phase (answered, lost)");
    ensure!(b_ok > 0 && b_bad == 0, "before: {b_ok} answered, {b_bad} lost");
    // 30% each way: about half of the round trips fail; both counts are far from 0 over ~2 s.
    ensure!(d_ok > 0 && d_bad > 0, "during: {d_ok} answered, {d_bad} lost");
    ensure!(a_ok > 0 && a_bad == 0, "after: {a_ok} answered, {a_bad} lost");
    ensure!(ns.exec("nft", &["list", "ruleset"])?.trim().is_empty(), "no rule left");
    Ok(())
}

#[chaos_test(tags = ["network"], timeout = "60s", requires = ["netns", "nft"])]
async fn a_partition_and_namespace_left_behind_are_undone_by_teardown(_cx: &mut Chaos) -> ChaosResult {
    // A sandbox of its own, torn down here as the runner would after a test that leaked both.
    let sandbox = Arc::new(Sandbox::new("network::leaked_partition")?);
    let ns = Netns::create(&sandbox, "leak").await?;
    let (name, veth) = (ns.name().to_string(), ns.host_interface().to_string());
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
    let active = Fault::partition(&ns).inject(FaultContext { sandbox: &sandbox, rng: &mut rng }).await?;
    let table = active.confirmation().detail.split_whitespace().nth(3).unwrap_or_default().to_string();
    ensure!(table.starts_with("chaos_part_"), "{}", active.confirmation());
    // Leak both handles: no clear, no drop. Only the journal knows.
    std::mem::forget(active);
    std::mem::forget(ns);
    let listed = std::process::Command::new("ip").args(["netns", "list"]).output()?;
    ensure!(String::from_utf8_lossy(&listed.stdout).contains(&name), "the namespace exists before teardown");

    let report = sandbox.teardown()?;
    tracing::info!("{report}");
    ensure!(report.undone.iter().any(|u| u.contains(&table)), "the nft table was undone from the journal: {report}");
    ensure!(report.undone.iter().any(|u| u.contains(&name)), "the namespace was undone from the journal: {report}");
    let listed = std::process::Command::new("ip").args(["netns", "list"]).output()?;
    ensure!(!String::from_utf8_lossy(&listed.stdout).contains(&name), "namespace {name} left behind");
    // The veth goes with the namespace (asynchronously, in the kernel's cleanup).
    let t0 = Instant::now();
    while std::path::Path::new("/sys/class/net").join(&veth).exists() {
        ensure!(t0.elapsed() < SECS(3), "veth {veth} left behind");
        tokio::time::sleep(MS(10)).await;
    }
    Ok(())
}

// ---- Snakepit's links -----------------------------------------------------------------------

#[chaos_test(tags = ["network", "snakepit"], requires = ["elixir", "cgroups"], timeout = "2m")]
async fn bridge_link_down_workers_self_terminate_and_pool_recovers(cx: &mut Chaos) -> ChaosResult {
    let pit = cx.start(pit(&[]).with_bridge_link().link_seed(cx.seed())).await?;
    let bridge = pit.bridge_link().context("started with_bridge_link")?;
    let out = cx
        .scenario("worker->BEAM link down, then restored")
        .inject(Fault::link_down(&bridge))
        .expect(Criterion::gone(pit.workers()).within(SECS(10)))
        .clear_faults()
        .expect(Criterion::healthy(&pit).within(SECS(30)))
        .run()
        .await?;
    tracing::info!("{out}");
    ensure!(pit.process().exit_status().is_none() && pit.respawns() == 0, "the BEAM stayed up throughout");
    Ok(())
}

#[chaos_test(tags = ["network", "snakepit"], requires = ["elixir", "cgroups"], timeout = "2m")]
async fn bridge_latency_500ms_slows_session_calls_without_errors(cx: &mut Chaos) -> ChaosResult {
    let pit = cx.start(pit(&[]).with_bridge_link().link_seed(cx.seed())).await?;
    let bridge = pit.bridge_link().context("started with_bridge_link")?;
    // session_put goes worker -> bridge -> BEAM: every call crosses the link.
    let call =
        pit.call(Execute::tool("session_put").session("net-latency").args(serde_json::json!({"key": "k", "value": 1})));
    let wait = SECS(3);
    let out = cx
        .scenario("500 ms latency on the worker->BEAM link")
        .load(Load::closed_loop(2).timeout(SECS(10)), call)
        .wait(SECS(2))
        .inject(Fault::latency(&bridge, MS(500)))
        .wait(wait)
        .clear_faults()
        .wait(SECS(1))
        .stop_load()
        .expect(Criterion::error_rate().at_most(0.0))
        .expect(Criterion::healthy(&pit).within(SECS(10)))
        .run()
        .await?;
    tracing::info!("{out}");
    let p = phases(&out, wait)?;
    let r = report(&out)?;
    let (before, during) = (p50(r, Duration::ZERO, p.before)?, p50(r, p.during.0, p.during.1)?);
    tracing::info!(?before, ?during, "p50 of session_put before and during the latency");
    ensure!(during >= before + MS(400), "500 ms on the bridge moved the p50 only from {before:?} to {during:?}");
    Ok(())
}

#[chaos_test(tags = ["network", "snakepit"], requires = ["elixir", "cgroups"], timeout = "2m")]
async fn api_link_reset_peer_fails_clients_but_not_the_pool(cx: &mut Chaos) -> ChaosResult {
    let pit = cx.start(pit(&[]).with_api_link().link_seed(cx.seed())).await?;
    let api = pit.api_link().context("started with_api_link")?;
    let call = pit.call_via_api_link(Execute::tool("echo").args(serde_json::json!({"x": 1}))).context("api link")?;
    let workers_before: Vec<i32> = pit.workers().resolve(cx.rng()).iter().map(|o| o.pid).collect();
    let wait = SECS(1);
    let out = cx
        .scenario("reset_peer on the client->API link")
        .load(Load::constant_rate(50).timeout(SECS(5)), call)
        .wait(SECS(1))
        .inject(Fault::reset_peer(&api))
        // The pool, seen through the direct client, does not notice.
        .expect(Criterion::healthy(&pit).within(SECS(5)))
        .wait(wait)
        .clear_faults()
        .wait(SECS(1))
        .stop_load()
        .run()
        .await?;
    tracing::info!("{out}");
    only_during_fails(&out, wait)?;
    let workers_after: Vec<i32> = pit.workers().resolve(cx.rng()).iter().map(|o| o.pid).collect();
    ensure!(
        workers_before.len() == 4 && workers_before == workers_after,
        "the workers were untouched: {workers_before:?} -> {workers_after:?}"
    );
    Ok(())
}
