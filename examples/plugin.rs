//! Plugins: a criterion of your own, registered by name, used from a scenario file exactly
//! like a built-in one (and from the builder). `port_closed` passes once nothing accepts
//! connections on `addr`, polling until `within`.
//!
//! ```sh
//! cargo run --example plugin                   # as root (cgroups)
//! ```
use chaos_harness::criteria::{Criterion, Judge, JudgeContext, Verdict};
use chaos_harness::params::{Described, Params};
use chaos_harness::prelude::*;
use chaos_harness::registry::{Bindings, CriterionEntry, Param, ParamKind, need_str, param_err};
use chaos_harness::scenario::file::{self, Options};
use chaos_harness::{BoxFuture, Error};

/// The criterion: nothing accepts a TCP connection on `addr` within `within`.
#[derive(Debug, Clone)]
struct PortClosed {
    addr: String,
    within: Duration,
}

impl Judge for PortClosed {
    fn describe(&self) -> String {
        format!("port {} closed within {:?}", self.addr, self.within)
    }

    fn described(&self) -> Option<Described> {
        Some(Described::new("port_closed", Params::new().with("addr", self.addr.as_str())))
    }

    fn judge<'a>(&'a self, cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let deadline = cx.window_start + self.within;
            let detail = loop {
                match tokio::net::TcpStream::connect(&self.addr).await {
                    Err(e) => break Some(format!("connect: {e}")),
                    Ok(_) if std::time::Instant::now() >= deadline => break None,
                    Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            };
            Verdict {
                criterion: self.describe(),
                passed: detail.is_some(),
                detail: detail.unwrap_or_else(|| format!("{} still accepts connections", self.addr)),
            }
        })
    }
}

fn build_port_closed(p: &Params, _: &dyn Bindings) -> Result<Criterion, Error> {
    let within = p.duration("within").map_err(param_err)?.unwrap_or(Duration::from_secs(5));
    Ok(PortClosed { addr: need_str(p, "addr")?.to_string(), within }.into())
}

chaos_harness::inventory::submit! { CriterionEntry {
    name: "port_closed",
    summary: "example plugin: nothing accepts TCP connections on addr",
    params: &[
        Param::required("addr", ParamKind::Text, "host:port"),
        Param::optional("within", ParamKind::Duration, "5s", "how long to wait for it to close"),
    ],
    build: build_port_closed,
} }

/// A scenario file using the plugin's criterion by name, next to a built-in fault.
const SCENARIO: &str = r#"
name = "SIGKILL closes the port"
timeout = "60s"

[target.web]
command = ["python3", "-m", "http.server", "${PORT}", "--bind", "127.0.0.1"]
ready = { tcp = "127.0.0.1:${PORT}" }

[[step]]
inject = "kill"
target = "web.main"
signal = "SIGKILL"

[[expect]]
criterion = "port_closed"
addr = "127.0.0.1:${PORT}"
within = "5s"
"#;

#[chaos_test(tags = ["plugin"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn a_registered_criterion_works_from_a_scenario_file(cx: &mut Chaos) -> ChaosResult {
    let mut opts = Options::default();
    opts.vars.insert("PORT".into(), chaos_harness::fixture::free_port()?.to_string());
    let scenarios = file::parse_str("plugin.chaos.toml", SCENARIO, &opts).map_err(|e| anyhow::anyhow!("{e}"))?;
    for s in scenarios {
        let outcome = cx.run_spec(&s.spec).await?.map_err(|e| anyhow::anyhow!("{e}"))?;
        ensure!(outcome.to_string().contains("port 127.0.0.1:"), "the plugin's verdict is in the outcome: {outcome}");
        println!("{outcome}");
    }
    Ok(())
}

chaos_harness::main!();
