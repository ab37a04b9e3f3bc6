//! The Snakepit chaos suite (issue [reference]): process faults against the reference target,
//! each against the healthy target (the meta-tests proving each scenario catches its defect are
//! the detection matrix, `detection.rs`).
//!
//! The scenarios themselves live in `snakepit_chaos::scenarios` (shared with `chaos run`); the
//! freeze scenario keeps the target's default heartbeat, as the 40 s freeze is sized for it.

use std::time::Duration;

use crate::util::{caught_by, passed};
use anyhow::{Context, ensure};
use chaos_harness::criteria::Criterion;
use chaos_harness::fixture::snakepit::{AdminAction, Snakepit};
use chaos_harness::load::Load;
use chaos_harness::prelude::*;
use chaos_harness::scenario::ScenarioError;
use snakepit_chaos::scenarios::{beam_sigkill, beam_sigkill_under_load_then_restart, pit, worker_sigkill_under_load};

const SECS: fn(u64) -> Duration = Duration::from_secs;

// ---- the suite ------------------------------------------------------------------------------

#[chaos_test(tags = ["process", "snakepit"], requires = ["elixir", "cgroups"], timeout = "2m")]
async fn beam_sigkill_all_workers_gone_within_5s(cx: &mut Chaos) -> ChaosResult {
    passed(beam_sigkill(cx, &[]).await)
}

#[chaos_test(tags = ["process", "snakepit"], requires = ["elixir", "cgroups"], timeout = "2m")]
async fn beam_sigkill_under_load_no_orphans_and_recovers_after_restart(cx: &mut Chaos) -> ChaosResult {
    passed(beam_sigkill_under_load_then_restart(cx, &[]).await)
}

#[chaos_test(tags = ["process", "snakepit"], requires = ["elixir", "cgroups"], timeout = "4m")]
async fn five_beam_crashes_in_sequence_clean_up_each_time(cx: &mut Chaos) -> ChaosResult {
    let pit = cx.start(pit(&[]).supervised(Duration::from_millis(300))).await?;
    for round in 1..=5 {
        let run_id = pit.run_id().context("no run id")?;
        let outcome = cx
            .scenario(&format!("BEAM crash {round} of 5 (run {run_id})"))
            .inject(Fault::kill(pit.beam()).signal(Signal::SIGKILL))
            .expect(Criterion::gone(pit.workers()).within(SECS(5)))
            .expect(Criterion::healthy(&pit).within(SECS(30)))
            .run()
            .await?;
        tracing::info!("{outcome}");
        ensure!(pit.run_id().as_deref() != Some(run_id.as_str()), "round {round}: the BEAM was not restarted");
        // Every worker alive now belongs to the new run: nothing of the old one survived.
        let old = pit.workers_of_run(&run_id).resolve(cx.rng());
        ensure!(old.is_empty(), "round {round}: workers of run {run_id} survived: {old:?}");
    }
    ensure!(pit.respawns() == 5, "expected 5 restarts, saw {}", pit.respawns());
    Ok(())
}

#[chaos_test(tags = ["process", "snakepit"], requires = ["elixir", "cgroups"], timeout = "2m")]
async fn worker_sigkill_replaced_within_5s_no_request_lost(cx: &mut Chaos) -> ChaosResult {
    passed(worker_sigkill_under_load(cx, &[]).await)
}

#[chaos_test(tags = ["process", "snakepit"], requires = ["elixir", "cgroups"], timeout = "3m")]
async fn beam_frozen_40s_workers_self_terminate_and_beam_recovers(cx: &mut Chaos) -> ChaosResult {
    // Default heartbeat (2 s interval, 10 s timeout, 3 misses): workers leave ~35 s into a freeze.
    let pit = cx.start(Snakepit::reference().pool_size(4)).await?;
    let outcome = cx
        .scenario("BEAM frozen (SIGSTOP) for up to 40 s")
        .inject(Fault::pause(pit.beam()))
        .expect(Criterion::gone(pit.workers()).within(SECS(40)))
        .clear_faults()
        .expect(Criterion::healthy(&pit).within(SECS(30)))
        .run()
        .await?;
    tracing::info!("{outcome}");
    Ok(())
}

#[chaos_test(tags = ["process", "snakepit"], requires = ["elixir", "cgroups"], timeout = "2m")]
async fn sigterm_is_an_orderly_stop_with_every_worker_gone(cx: &mut Chaos) -> ChaosResult {
    let pit = cx.start(pit(&[])).await?;
    let outcome = cx
        .scenario("BEAM SIGTERM")
        .inject(Fault::kill(pit.beam()).signal(Signal::SIGTERM))
        .expect(Criterion::exits_within(SECS(10)).of(&pit))
        .expect(Criterion::no_orphans().of(&pit).within(SECS(1)))
        .run()
        .await?;
    tracing::info!("{outcome}");
    let exit = tokio::time::timeout(SECS(5), pit.process().wait()).await.context("the BEAM was not reaped")?;
    ensure!(exit.code == Some(0), "an orderly stop exits 0; the BEAM {exit}");
    Ok(())
}

// ---- honest measurement: the built-in restart scenario's report.json -----------------------

/// `chaos run --only beam-sigkill-restart`, then its report.json: the outage shows as refused
/// connections (not lost), the clients' back-off bounds the request rate while the BEAM is
/// down, and only the requests in flight at the BEAM's death may be lost or time out (at most
/// the load's 4 clients).
#[chaos_test(tags = ["process", "snakepit", "load"], requires = ["elixir", "cgroups"], timeout = "3m")]
async fn restart_scenario_report_counts_refused_as_refused_and_lost_only_in_flight(cx: &mut Chaos) -> ChaosResult {
    let dir = cx.sandbox().temp_dir().join("report");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args(["run", "--only", "beam-sigkill-restart", "--report"])
        .arg(&dir)
        .output()
        .await?;
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    ensure!(out.status.success(), "chaos run failed:\n{log}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("report.json"))?)?;
    let phases = json["tests"][0]["scenario"]["phases"].as_array().cloned().context("no phases in report.json")?;
    let n = |p: &serde_json::Value, k: &str| p[k].as_u64().unwrap_or(0);
    let fault = phases.iter().find(|p| p["phase"] == "fault").context("no fault phase in report.json")?;
    let unanswered: u64 = phases.iter().map(|p| n(p, "lost") + n(p, "timeouts")).sum();
    let refused: u64 = phases.iter().map(|p| n(p, "refused")).sum();
    let rate = fault["issued_per_s"].as_f64().unwrap_or(f64::MAX);
    tracing::info!(%fault, unanswered, refused, "restart scenario, from report.json");
    ensure!(refused > 0, "the outage shows no refused request: {phases:#?}\n{log}");
    ensure!(unanswered <= 4, "{unanswered} requests lost or timed out, more than the 4 in flight: {phases:#?}");
    // 4 clients backing off 10 ms doubling to 1 s: a few dozen requests per second at most
    // (a busy loop on refusals made ~6000/s).
    ensure!(rate < 200.0, "{rate:.0} requests/s issued during the fault: {fault:#}");
    impact_makes_sense(&json["tests"][0]["scenario"]["impact"])
}

/// The performance impact analysis of a BEAM kill, from report.json: throughput falls in the
/// fault phase (ratio to the baseline below 1, as its own figures say) with errors, the
/// baseline has latency figures, and the BEAM's resources were sampled (resident memory, CPU
/// used to serve the baseline's load).
fn impact_makes_sense(impact: &serde_json::Value) -> ChaosResult {
    let phases = impact["phases"].as_array().context("no impact phases in report.json")?;
    let phase = |name: &str| phases.iter().find(|p| p["phase"] == name).with_context(|| format!("no {name} impact"));
    let (base, fault) = (phase("baseline")?, phase("fault")?);
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let (bt, ft) = (f(&base["load"]["throughput"]), f(&fault["load"]["throughput"]));
    tracing::info!(%impact, "impact from report.json");
    ensure!(bt > 0.0 && base["load"]["p50_us"].as_u64().is_some(), "baseline without throughput or latency: {base:#}");
    ensure!(ft < bt, "throughput in the fault ({ft:.1}/s) is not below the baseline's ({bt:.1}/s): {impact:#}");
    let ratio = f(&fault["load"]["throughput_ratio"]);
    ensure!((ratio - ft / bt).abs() < 1e-6 && ratio < 1.0, "fault throughput ratio {ratio} vs {ft}/{bt}");
    ensure!(f(&fault["load"]["error_rate"]) > 0.0, "a BEAM kill without errors in the fault phase: {fault:#}");
    let beam = base["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["series"].as_str().is_some_and(|s| s.ends_with(".beam"))))
        .with_context(|| format!("the BEAM's series (<fixture>.beam) is not in the baseline's resources: {base:#}"))?;
    ensure!(beam["rss_mean_bytes"].as_u64().unwrap_or(0) > 1 << 20, "BEAM RSS under 1 MiB: {beam:#}");
    ensure!(f(&beam["cpu_cores"]) > 0.0, "the BEAM used no CPU serving the baseline's load: {beam:#}");
    let fault_beam = fault["resources"].as_array().and_then(|r| r.iter().find(|r| r["series"] == beam["series"]));
    ensure!(
        fault_beam.is_some_and(|b| b["rss_mean_delta_bytes"].is_i64()),
        "no RSS delta of {} in the fault phase: {fault:#}",
        beam["series"]
    );
    Ok(())
}

#[chaos_test(tags = ["load", "snakepit"], requires = ["elixir", "cgroups"], timeout = "2m")]
async fn pool_saturation_refuses_excess_with_backpressure(cx: &mut Chaos) -> ChaosResult {
    passed(snakepit_chaos::scenarios::pool_saturation_backpressure(cx, &[]).await)
}

#[chaos_test(tags = ["process", "snakepit"], requires = ["elixir", "cgroups"], timeout = "2m")]
async fn telemetry_keeps_flowing_through_a_worker_restart(cx: &mut Chaos) -> ChaosResult {
    passed(snakepit_chaos::scenarios::telemetry_through_worker_restart(cx, &[]).await)
}

// ---- pool integrity and sessions: the reference target's defects of issue 18 ---------------

#[chaos_test(tags = ["process", "snakepit", "sessions"], requires = ["elixir", "cgroups"], timeout = "2m")]
async fn worker_crash_keeps_sessions_and_leaves_no_ghost(cx: &mut Chaos) -> ChaosResult {
    passed(snakepit_chaos::scenarios::worker_crash_keeps_sessions(cx, &[]).await)
}

#[chaos_test(tags = ["process", "snakepit"], requires = ["elixir", "cgroups"], timeout = "2m")]
async fn abandoned_requests_free_their_workers(cx: &mut Chaos) -> ChaosResult {
    passed(snakepit_chaos::scenarios::abandoned_requests_free_their_workers(cx, &[]).await)
}

#[chaos_test(tags = ["process", "snakepit"], requires = ["elixir", "cgroups"], timeout = "2m")]
async fn pool_crash_leaves_one_generation_and_truthful_health(cx: &mut Chaos) -> ChaosResult {
    passed(snakepit_chaos::scenarios::pool_crash(cx, &[]).await)
}

#[chaos_test(tags = ["process", "snakepit"], requires = ["elixir", "cgroups"], timeout = "2m")]
async fn worker_elixir_kill_leaves_no_orphaned_python(cx: &mut Chaos) -> ChaosResult {
    passed(snakepit_chaos::scenarios::worker_elixir_kill_leaves_no_orphan(cx, &[]).await)
}

#[chaos_test(tags = ["process", "snakepit", "sessions"], requires = ["elixir", "cgroups"], timeout = "2m")]
async fn session_store_restart_keeps_sessions(cx: &mut Chaos) -> ChaosResult {
    passed(snakepit_chaos::scenarios::session_store_restart_keeps_sessions(cx, &[]).await)
}

#[chaos_test(tags = ["process", "snakepit", "sessions"], requires = ["elixir", "cgroups"], timeout = "2m")]
async fn sessions_survive_a_store_restart_and_expire_at_their_ttl(cx: &mut Chaos) -> ChaosResult {
    passed(snakepit_chaos::scenarios::sessions_expire_at_ttl(cx, &[]).await)
}

/// The expiry half of the TTL criterion can fail: judged with a TTL shorter than the target's
/// (1 s against 2 s), the sessions read just after the supposed deadline are still there.
#[chaos_test(tags = ["meta", "snakepit", "sessions"], requires = ["elixir", "cgroups"], timeout = "2m")]
async fn sessions_kept_past_their_ttl_are_caught(cx: &mut Chaos) -> ChaosResult {
    let pit = cx.start(pit(&[]).session_ttl(snakepit_chaos::scenarios::SESSION_TTL)).await?;
    let v = cx
        .scenario("sessions judged against a TTL shorter than the target's")
        .load(Load::constant_rate(50).timeout(SECS(5)), pit.session_writes())
        .wait(SECS(1))
        .inject(Fault::snakepit_admin(&pit, AdminAction::RestartSessionStore))
        .stop_load()
        .expect(Criterion::sessions_survive_or_expire(&pit, SECS(1)))
        .run()
        .await;
    let detail = match &v {
        Err(ScenarioError::CriteriaFailed(o)) => o.failure_summary().unwrap_or_default(),
        _ => String::new(),
    };
    caught_by(Ok(v), "expire at their TTL")?;
    ensure!(detail.contains("did not expire at their TTL"), "caught, but not as sessions kept too long: {detail}");
    Ok(())
}
