//! The Snakepit contract suite: what the harness relies on, checked against the reference
//! target, or against any other implementation with `CHAOS_SNAKEPIT_MIX_PROJECT=/path/to/app`
//! (see `chaos_harness::fixture::snakepit` for what such an application must serve).

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, ensure};
use chaos_harness::fixture::snakepit::{ClientError, Execute, Snakepit};
use chaos_harness::prelude::*;
use serde_json::json;

fn target() -> Snakepit {
    Snakepit::from_env()
}

fn reason(r: Result<impl std::fmt::Debug, ClientError>) -> anyhow::Result<(String, String)> {
    match r {
        Err(ClientError::Api { category, reason, .. }) => Ok((category, reason)),
        other => anyhow::bail!("expected an error reply, got {other:?}"),
    }
}

#[chaos_test(tags = ["contract", "snakepit"], requires = ["elixir", "cgroups"], timeout = "1m")]
async fn health_execute_and_workers(cx: &mut Chaos) -> ChaosResult {
    let pit = cx.start(target().pool_size(2)).await?;
    let c = pit.client();
    let h = c.health().await?;
    ensure!(h.status == "ok" && h.ready == 2 && h.size == 2 && h.busy == 0 && h.queue == 0, "health {h:?}");
    let r = c.execute(&Execute::tool("echo").args(json!({"x": [1, "two"]}))).await?;
    ensure!(r.result == json!({"x": [1, "two"]}), "echo returned {:?}", r.result);
    ensure!(r.python_pid > 0 && r.worker_id.starts_with("worker_"), "{r:?}");
    let workers = c.workers().await?;
    ensure!(workers.len() == 2, "workers {workers:?}");
    let api: BTreeSet<i32> = workers.iter().filter_map(|w| w.python_pid).collect();
    let seen: BTreeSet<i32> = pit.workers().resolve(cx.rng()).iter().map(|p| p.pid).collect();
    ensure!(api == seen, "/workers says {api:?}, the fixture's cgroup holds workers {seen:?}");
    ensure!(api.contains(&r.python_pid), "the echo ran on an unknown pid {}", r.python_pid);
    let stats = c.stats().await?;
    ensure!(stats.get("run_id").and_then(|v| v.as_str()) == pit.run_id().as_deref(), "stats run_id: {stats}");
    let (cat, why) = reason(c.execute(&Execute::tool("no_such_tool")).await)?;
    ensure!((cat.as_str(), why.as_str()) == ("python", "tool_not_found"), "{cat}/{why}");
    Ok(())
}

#[chaos_test(tags = ["contract", "snakepit"], requires = ["elixir", "cgroups"], timeout = "1m")]
async fn saturation_is_rejected_at_once(cx: &mut Chaos) -> ChaosResult {
    let pit = cx.start(target().pool_size(1).queue(0, Duration::from_secs(5))).await?;
    let busy = {
        let c = pit.client().clone();
        tokio::spawn(async move { c.execute(&Execute::tool("sleep").args(json!({"ms": 1500}))).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = std::time::Instant::now();
    let (cat, why) = reason(pit.client().execute(&Execute::tool("echo")).await)?;
    ensure!((cat.as_str(), why.as_str()) == ("pool", "pool_saturated"), "{cat}/{why}");
    ensure!(t0.elapsed() < Duration::from_secs(1), "pool_saturated must be immediate, took {:?}", t0.elapsed());
    busy.await?.context("the request holding the worker")?;
    Ok(())
}

#[chaos_test(tags = ["contract", "snakepit"], requires = ["elixir", "cgroups"], timeout = "1m")]
async fn queue_timeout_is_reported(cx: &mut Chaos) -> ChaosResult {
    let pit = cx.start(target().pool_size(1).queue(10, Duration::from_millis(300))).await?;
    let busy = {
        let c = pit.client().clone();
        tokio::spawn(async move { c.execute(&Execute::tool("sleep").args(json!({"ms": 1500}))).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (cat, why) = reason(pit.client().execute(&Execute::tool("echo")).await)?;
    ensure!((cat.as_str(), why.as_str()) == ("timeout", "queue_timeout"), "{cat}/{why}");
    busy.await?.context("the request holding the worker")?;
    Ok(())
}

#[chaos_test(tags = ["contract", "snakepit"], requires = ["elixir", "cgroups"], timeout = "1m")]
async fn not_initialized_before_the_first_worker(cx: &mut Chaos) -> ChaosResult {
    let pit =
        cx.start(target().pool_size(1).wait_for_pool(false).env("SNAKEPIT_REF_WORKER_START_DELAY_MS", "2000")).await?;
    let (cat, why) = reason(pit.client().execute(&Execute::tool("echo")).await)?;
    ensure!((cat.as_str(), why.as_str()) == ("pool", "pool_not_initialized"), "{cat}/{why}");
    pit.wait_pool_ready(Duration::from_secs(20)).await?;
    pit.client().execute(&Execute::tool("echo")).await?;
    Ok(())
}

#[chaos_test(tags = ["contract", "snakepit"], requires = ["elixir", "cgroups"], timeout = "1m")]
async fn sessions_and_affinity(cx: &mut Chaos) -> ChaosResult {
    let pit = cx.start(target().pool_size(2)).await?;
    let c = pit.client();
    let first = c.execute(&Execute::tool("echo").session("s-affinity")).await?;
    for _ in 0..5 {
        let again = c.execute(&Execute::tool("echo").session("s-affinity")).await?;
        ensure!(again.worker_id == first.worker_id, "affinity: {} then {}", first.worker_id, again.worker_id);
    }
    c.execute(&Execute::tool("session_put").args(json!({"key": "k", "value": 42})).session("s-data")).await?;
    let got = c.execute(&Execute::tool("session_get").args(json!({"key": "k"})).session("s-data")).await?;
    ensure!(got.result["value"] == json!(42), "session_get: {:?}", got.result);
    c.session_put("s-http", json!({"a": 1})).await?;
    let s = c.session_get("s-http").await?;
    ensure!(s["data"] == json!({"a": 1}), "GET /sessions: {s}");
    c.session_delete("s-http").await?;
    let (cat, why) = reason(c.session_get("s-http").await)?;
    ensure!((cat.as_str(), why.as_str()) == ("session", "session_not_found"), "{cat}/{why}");
    Ok(())
}

#[chaos_test(tags = ["contract", "snakepit"], requires = ["elixir", "cgroups"], timeout = "1m")]
async fn telemetry_names_and_fields(cx: &mut Chaos) -> ChaosResult {
    let pit = cx.start(target().pool_size(2)).await?;
    pit.client().execute(&Execute::tool("echo")).await?;
    let t = pit.telemetry();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let wanted = [
        "snakepit.pool.init_complete",
        "snakepit.pool.worker.spawned",
        "snakepit.pool.worker_ready",
        "snakepit.request.executed",
    ];
    while wanted.iter().any(|w| t.named(w).is_empty()) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let names = t.names();
    for w in wanted {
        ensure!(names.contains(w), "telemetry lacks {w}; saw {names:?}");
    }
    let spawned = t.named("snakepit.pool.worker.spawned");
    ensure!(spawned.len() == 2, "two workers spawned, telemetry says {}", spawned.len());
    ensure!(
        spawned.iter().all(|e| e.meta_str("worker_id").is_some() && e.metadata["python_pid"].as_i64().is_some()),
        "{spawned:?}"
    );
    let executed = t.named("snakepit.request.executed");
    ensure!(
        executed
            .iter()
            .any(|e| e.metadata["success"] == json!(true) && e.measurements["duration_us"].as_u64().is_some()),
        "{executed:?}"
    );
    ensure!(t.malformed_lines() == 0, "{} malformed telemetry lines", t.malformed_lines());
    Ok(())
}
