//! Process family: start any program as a fixture, SIGKILL it, and judge that it is gone and
//! left no process behind. The program gets a free port (`{port}`) and is ready when it answers
//! HTTP; it lives in its own cgroup, so everything it starts is found and removed.
//!
//! ```sh
//! cargo run --example process_kill             # as root (cgroups)
//! cargo run --example process_kill -- --list
//! ```
use chaos_harness::prelude::*;

#[chaos_test(tags = ["process"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn http_server_sigkill_leaves_nothing(cx: &mut Chaos) -> ChaosResult {
    let web = cx
        .start(
            Command::new("python3")
                .args(["-m", "http.server", "{port}", "--bind", "127.0.0.1"])
                .ready(Probe::http("127.0.0.1:{port}", "/")),
        )
        .await?;
    let out = cx
        .scenario("http.server SIGKILL")
        .inject(Fault::kill(web.main()).signal(Signal::SIGKILL))
        .expect(Criterion::exits_within(Duration::from_secs(5)).of(&web))
        .expect(Criterion::no_orphans().of(&web).within(Duration::from_secs(5)))
        .run()
        .await?;
    println!("{out}");
    Ok(())
}

chaos_harness::main!();
