//! API shapes a new user reaches for (the ergonomics issue's frictions): criterion builders
//! that read the same way, arguments of mixed types, a seed hook, `?` on string errors,
//! anyhow without a dependency of one's own, and `println!` family captured in a test body.
#![deny(warnings)]

use chaos_harness::fixture::{Command, FixtureHandle, Process, Stdin};
use chaos_harness::prelude::*;

#[allow(dead_code)]
fn shapes(p: &Process) {
    let d = Duration::from_secs(1);
    let _ = Criterion::no_orphans().of(p).within(d);
    let _ = Criterion::exits_within(d).of(p);
    let _ = Criterion::exits_within(d).of(p).within(d);
    let dir = std::path::PathBuf::from("/srv");
    let _ = Command::new("server")
        .args(chaos_harness::args!["--dir", dir, format!("--n={}", 3)])
        .stdin(Stdin::KeepOpen)
        .user("nobody")
        .seed_with("init-db", ["--datadir={data}"]);
    let _: usize = p.children().pids().len();
    let _ = p.target();
}

fn parse(s: &str) -> Result<u16, String> {
    s.parse().map_err(|e| format!("bad port {s:?}: {e}"))
}

#[chaos_test]
fn string_errors_anyhow_and_captured_prints() -> ChaosResult {
    let port = parse("80").or_fail()?;
    let _: chaos_harness::anyhow::Result<()> = Ok(());
    let x = 1;
    println!("captured {x} {}", port);
    println!();
    print!("a");
    eprintln!("b {x}");
    eprint!("c");
    Ok(())
}

#[chaos_test]
async fn prints_in_an_async_body(cx: &mut Chaos) {
    let seed = cx.seed();
    let inner = async move { println!("seed {seed}") };
    inner.await;
}

chaos_harness::main!();
