//! Network family: put a Toxiproxy-compatible link in front of a TCP server, drive requests
//! through it, add 100 ms of latency, and judge the error rate and the latency per phase.
//! The server here is an in-process echo server; a real one is a fixture on `{port}`.
//!
//! ```sh
//! cargo run --example network_latency
//! ```
use std::net::SocketAddr;

use chaos_harness::load::{Call, Load, Outcome};
use chaos_harness::observe::Phase;
use chaos_harness::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A TCP echo server on a free loopback port.
async fn echo_server() -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = s.read(&mut buf).await {
                    if s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// One request through the link: connect, send, read the echo.
fn echo(addr: SocketAddr) -> Call {
    Call::new(move |_| async move {
        let io = async {
            let mut s = tokio::net::TcpStream::connect(addr).await?;
            s.write_all(b"ping").await?;
            let mut b = [0u8; 4];
            s.read_exact(&mut b).await?;
            Ok::<_, std::io::Error>(())
        };
        match tokio::time::timeout(Duration::from_secs(2), io).await {
            Ok(Ok(())) => Outcome::Ok,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Outcome::Refused(e.to_string()),
            Ok(Err(e)) => Outcome::Lost(e.to_string()),
            Err(_) => Outcome::Timeout,
        }
    })
}

#[chaos_test(tags = ["network"], timeout = "30s")]
async fn latency_on_a_link_is_seen_only_while_injected(cx: &mut Chaos) -> ChaosResult {
    let link = cx.link("echo", echo_server().await?.to_string()).await?;
    let out = cx
        .scenario("100 ms latency on the echo link")
        .load(Load::constant_rate(40), echo(link.listen_addr()))
        .wait(Duration::from_millis(500))
        .inject(Fault::latency(&link, Duration::from_millis(100)))
        .wait(Duration::from_secs(1))
        .clear_faults()
        .wait(Duration::from_millis(500))
        .stop_load()
        .expect(Criterion::error_rate().at_most(0.0))
        .expect(Criterion::latency().p50().during(Phase::Baseline).at_most(Duration::from_millis(50)))
        .run()
        .await?;
    println!("{out}");
    Ok(())
}

chaos_harness::main!();
