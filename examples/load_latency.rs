//! Load family: drive an open-loop HTTP load (latency measured from each request's intended
//! send time), freeze the server for a second, and judge latency per phase, lost requests and
//! recovery against the baseline phase.
//!
//! ```sh
//! cargo run --example load_latency             # as root (cgroup freezer)
//! ```
use std::net::SocketAddr;

use chaos_harness::load::{Call, Load, Outcome};
use chaos_harness::observe::Phase;
use chaos_harness::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET /` over HTTP/1.0: `Ok` on status 200, `Error` on another status, `Refused` when the
/// connection was refused (nothing reached the server).
fn get(addr: SocketAddr) -> Call {
    Call::new(move |_| async move {
        let io = async {
            let mut s = tokio::net::TcpStream::connect(addr).await?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
            let mut reply = Vec::new();
            s.read_to_end(&mut reply).await?;
            Ok::<_, std::io::Error>(reply)
        };
        match tokio::time::timeout(Duration::from_secs(5), io).await {
            Ok(Ok(r)) if r.starts_with(b"HTTP/1.0 200") => Outcome::Ok,
            Ok(Ok(r)) => Outcome::Error {
                category: "http".into(),
                reason: String::from_utf8_lossy(&r[..r.len().min(16)]).into_owned(),
            },
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Outcome::Refused(e.to_string()),
            Ok(Err(e)) => Outcome::Lost(e.to_string()),
            Err(_) => Outcome::Timeout,
        }
    })
}

#[chaos_test(tags = ["load"], timeout = "60s", requires = ["cgroups", "freezer", "python3"])]
async fn a_frozen_server_queues_requests_and_recovers(cx: &mut Chaos) -> ChaosResult {
    let web = cx
        .start(
            Command::new("python3")
                .args(["-m", "http.server", "{port}", "--bind", "127.0.0.1"])
                .ready(Probe::http("127.0.0.1:{port}", "/")),
        )
        .await?;
    let addr: SocketAddr = format!("127.0.0.1:{}", web.port().context("{port} was used")?).parse()?;
    let out = cx
        .scenario("freeze http.server for 1 s under 20 requests/s")
        .load(Load::constant_rate(20), get(addr))
        .wait(Duration::from_secs(1))
        .inject(Fault::freeze(&web))
        .wait(Duration::from_secs(1))
        .clear_faults()
        .wait(Duration::from_secs(2))
        .stop_load()
        .expect(Criterion::no_lost_requests())
        .expect(Criterion::latency().p99().during(Phase::Baseline).at_most(Duration::from_millis(500)))
        // Requests sent during the freeze wait for the thaw and end after it, so they are
        // reported in the recovery phase (phases report requests by end time); their latency
        // counts from the intended send time, so it includes the second they waited.
        .expect(Criterion::latency().max().during(Phase::Recovery).at_most(Duration::from_secs(4)))
        .expect(Criterion::recovers_within(Duration::from_secs(3)))
        .run()
        .await?;
    println!("{out}");
    // The requests that waited through the freeze, counted from their intended send time.
    let load = out.load_report.as_ref().context("the scenario ran a load")?;
    let waited =
        load.records().iter().filter(|r| r.ended.saturating_sub(r.intended) >= Duration::from_millis(500)).count();
    ensure!(waited >= 10, "about 20 requests were due during the 1 s freeze; {waited} waited 0.5 s or more");
    Ok(())
}

chaos_harness::main!();
