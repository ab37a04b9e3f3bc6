//! Scenario files: load a reviewed `*.chaos.toml` (the shipped `http-kill` scenario), give it
//! a free port through a variable, and run it as a test. `chaos run FILE` and
//! `cargo test --test scenario_files` do the same for every file of a directory.
//!
//! ```sh
//! cargo run --example scenario_file            # as root (cgroups)
//! ```
use chaos_harness::prelude::*;
use chaos_harness::scenario::file::{self, Options};

#[chaos_test(tags = ["files"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn the_shipped_http_kill_file_passes(cx: &mut Chaos) -> ChaosResult {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios/generic/http-kill.chaos.toml");
    let mut opts = Options::default();
    opts.vars.insert("HTTP_KILL_PORT".into(), chaos_harness::fixture::free_port()?.to_string());
    // Every problem of a file at once, each with file:line:column and the nearest valid key.
    let scenarios = file::load(&path, &opts).map_err(|e| anyhow::anyhow!("{e}"))?;
    for s in scenarios {
        let outcome = cx.run_spec(&s.spec).await?.map_err(|e| anyhow::anyhow!("{e}"))?;
        println!("{outcome}");
    }
    Ok(())
}

chaos_harness::main!();
