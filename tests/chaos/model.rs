//! The scenario as a value (tag `model`): a builder scenario written as a spec, through JSON and
//! back, runs to the same verdicts; a spec's plan resolves every parameter; criteria after one
//! fault are judged concurrently from its confirmation; phases and the report come from typed
//! events.

use std::time::Duration;

use anyhow::{Context, ensure};
use chaos_harness::BoxFuture;
use chaos_harness::Chaos;
use chaos_harness::criteria::{Judge, JudgeContext, Verdict};
use chaos_harness::load::{Call, Load, Outcome};
use chaos_harness::observe::{EventKind, Phase};
use chaos_harness::prelude::*;
use chaos_harness::scenario::{ScenarioError, ScenarioOutcome, ScenarioSpec};

use crate::util::{members, prefork};

fn verdicts(o: &ScenarioOutcome) -> Vec<(String, bool)> {
    o.verdicts.iter().map(|v| (v.criterion.clone(), v.passed)).collect()
}

fn outcome_of(r: Result<ScenarioOutcome, ScenarioError>) -> ScenarioOutcome {
    match r {
        Ok(o) => o,
        Err(e) => e.outcome().clone(),
    }
}

/// Builds `kill the master` for a prefork server in `mode`, runs it, and runs its spec (after
/// a JSON round trip) in a fresh context: both verdict lists must be equal.
async fn round_trip(cx: &mut Chaos, mode: &str) -> anyhow::Result<(ScenarioOutcome, ScenarioOutcome)> {
    let p = cx.start(prefork(2, mode)?).await?;
    members(&p, 3).await?;
    let scenario = cx
        .scenario(&format!("master SIGKILL, workers {mode}"))
        .inject(Fault::kill(p.main()))
        .expect(Criterion::no_orphans().of(&p).within(Duration::from_secs(3)))
        .expect(Criterion::gone(p.children()).within(Duration::from_secs(3)));
    let spec = scenario.spec()?;
    let json = serde_json::to_string_pretty(&spec)?;
    let back: ScenarioSpec = serde_json::from_str(&json)?;
    ensure!(back == spec, "the spec did not survive JSON:\n{json}");
    ensure!(spec.targets.contains_key("prefork") && spec.steps.len() == 3, "{json}");
    let built = outcome_of(scenario.run().await);
    let mut fresh = Chaos::standalone(&format!("model::round_trip_{mode}"), cx.seed())?;
    let from_spec = outcome_of(fresh.run_spec(&back).await?);
    fresh.sandbox().teardown()?;
    ensure!(verdicts(&built) == verdicts(&from_spec), "builder:\n{built}\nspec:\n{from_spec}");
    Ok((built, from_spec))
}

#[chaos_test(tags = ["model", "process"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn builder_spec_round_trips_through_json_to_the_same_verdicts(cx: &mut Chaos) -> ChaosResult {
    // Workers that exit with their master: both forms pass.
    let (a, b) = round_trip(cx, "exit").await?;
    ensure!(a.passed() && b.passed(), "{a}\n{b}");
    // Workers that stay: both forms fail on no_orphans, the same way.
    let (a, b) = round_trip(cx, "stay").await?;
    ensure!(!a.passed() && !b.passed() && !a.verdicts[0].passed, "{a}\n{b}");
    Ok(())
}

#[chaos_test(tags = ["model"], timeout = "10s")]
fn spec_plan_lists_steps_with_resolved_parameters() -> ChaosResult {
    let spec: ScenarioSpec = serde_json::from_value(serde_json::json!({
        "name": "plan",
        "targets": { "web": { "kind": "command", "program": "sleep", "args": ["60"] } },
        "steps": [
            { "action": "inject", "fault": "kill", "target": "web.main", "signal": "SIGTERM" },
            { "action": "wait", "duration": "2s", "at": "1s" },
            { "action": "parallel", "steps": [
                { "action": "expect", "criterion": "exits_within", "target": "web", "within": "1s" },
                { "action": "expect", "criterion": "gone", "target": "web.children" }
            ] }
        ]
    }))?;
    let plan = spec.plan().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let text = plan.join("\n");
    ensure!(text.contains(r#"inject kill {"confirm_timeout":"5s","signal":"SIGTERM","target":"web.main"}"#), "{text}");
    ensure!(text.contains("at +1s: wait 2s"), "{text}");
    ensure!(text.contains(r#"expect gone {"target":"web.children","within":"5s"}"#), "{text}");
    // Every problem at once: an unknown fault with the nearest name, a selector naming a
    // target the spec does not define, a parameter that does not exist.
    let bad: ScenarioSpec = serde_json::from_value(serde_json::json!({
        "name": "bad",
        "targets": { "web": { "kind": "command", "program": "sleep" } },
        "steps": [
            { "action": "inject", "fault": "kil", "target": "web.main" },
            { "action": "inject", "fault": "pause", "target": "wbe.main" },
            { "action": "expect", "criterion": "no_orphans", "target": "web", "whithin": "1s" }
        ]
    }))?;
    let errors = bad.validate().err().context("a bad spec must not validate")?;
    let text = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
    ensure!(errors.len() == 3, "{text}");
    ensure!(text.contains("step 0: unknown fault `kil`; did you mean `kill`?"), "{text}");
    ensure!(text.contains("step 1: `wbe` is not a target of this scenario; did you mean `web`?"), "{text}");
    ensure!(text.contains("has no parameter `whithin`; did you mean `within`?"), "{text}");
    Ok(())
}

#[chaos_test(tags = ["model", "process"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn criteria_after_one_fault_are_judged_concurrently_from_its_confirmation(cx: &mut Chaos) -> ChaosResult {
    let p = cx.start(prefork(2, "stay")?).await?;
    members(&p, 3).await?;
    // Two criteria that cannot hold, each with a 2 s window, after one SIGTERM: judged one
    // after the other they would end 4 s after the confirmation; together, 2 s.
    let window = Duration::from_secs(2);
    let out = outcome_of(
        cx.scenario("two windows after one fault")
            .inject(Fault::signal(p.children(), Signal::SIGSTOP))
            .expect(Criterion::process_count(p.all()).reaches(99).within(window))
            .expect(Criterion::gone(p.children()).within(window))
            .clear_faults()
            .run()
            .await,
    );
    let confirmed = out.first(|k| matches!(k, EventKind::FaultConfirmed { .. })).context("confirmed")?.at;
    let last_verdict = out
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::CriterionVerdict { .. }))
        .map(|e| e.at)
        .max()
        .context("verdicts")?;
    ensure!(out.verdicts.len() == 2 && out.verdicts.iter().all(|v| !v.passed), "{out}");
    ensure!(
        last_verdict - confirmed < window * 2 - Duration::from_millis(500),
        "the second window did not open at the confirmation: verdicts {:?} after it\n{out}",
        last_verdict - confirmed
    );
    Ok(())
}

#[chaos_test(tags = ["model", "process"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn phases_and_the_report_come_from_typed_events(cx: &mut Chaos) -> ChaosResult {
    let p = cx.start(prefork(2, "stay")?).await?;
    members(&p, 3).await?;
    let out = cx
        .scenario("pause, wait, resume")
        .wait(Duration::from_millis(200))
        .inject(Fault::pause(p.children()))
        .wait(Duration::from_millis(300))
        .clear_faults()
        .wait(Duration::from_millis(200))
        .run()
        .await?;
    let phases: Vec<Phase> = out.phases.iter().map(|s| s.phase.clone()).collect();
    ensure!(phases == [Phase::Baseline, Phase::Fault, Phase::Recovery], "{phases:?}\n{out}");
    let fault = &out.phases[1];
    ensure!(fault.to - fault.from >= Duration::from_millis(300), "the fault phase spans the wait: {fault:?}");
    let report = chaos_harness::report::scenario::scenario_report(&out);
    let kinds: Vec<&str> = report.events.iter().map(|e| e.kind.as_str()).collect();
    for kind in ["phase", "fault", "clear", "step"] {
        ensure!(kinds.contains(&kind), "no {kind} row in {kinds:?}");
    }
    // The outcome (typed events and all) survives JSON.
    let back: ScenarioOutcome = serde_json::from_str(&serde_json::to_string(&out)?)?;
    ensure!(back.events == out.events && back.phases == out.phases);
    Ok(())
}

#[chaos_test(tags = ["model"], timeout = "30s")]
async fn a_scenario_timeout_stops_the_steps_and_fails(cx: &mut Chaos) -> ChaosResult {
    let err = cx
        .scenario("too long")
        .timeout(Duration::from_millis(300))
        .wait(Duration::from_secs(20))
        .run()
        .await
        .err()
        .context("a scenario past its timeout must fail")?;
    let ScenarioError::AbortedByGuard(out) = &err else { anyhow::bail!("expected a stop, got {err}") };
    ensure!(out.aborted_by_guard.as_deref().is_some_and(|g| g.contains("longer than its timeout of 300ms")), "{out}");
    Ok(())
}

/// A criterion whose preparation takes a while, as a baseline snapshot of many processes does.
struct SlowToPrepare;

impl Judge for SlowToPrepare {
    fn describe(&self) -> String {
        "nothing (prepares for 150 ms)".into()
    }

    fn prepare(&self, _cx: &JudgeContext) {
        std::thread::sleep(Duration::from_millis(150));
    }

    fn judge<'a>(&'a self, _cx: &'a JudgeContext) -> BoxFuture<'a, Verdict> {
        Box::pin(async move { Verdict { criterion: self.describe(), passed: true, detail: "prepared".into() } })
    }
}

/// A load's records and the scenario's events share one clock: a request cannot be sent before
/// the load started nor end after it stopped, however long the scenario took to get to the
/// load. (Records counted from the load's own start were early on the scenario clock, which
/// put a request that ended just after an injection "before" it.)
#[chaos_test(tags = ["model"], timeout = "20s")]
async fn load_records_share_the_scenario_clock(cx: &mut Chaos) -> ChaosResult {
    let call = Call::new(|_| async {
        tokio::time::sleep(Duration::from_millis(2)).await;
        Outcome::Ok
    });
    let out = cx
        .scenario("one clock")
        .load(Load::constant_rate(200), call)
        .wait(Duration::from_millis(300))
        .expect(Criterion::new(SlowToPrepare))
        .stop_load()
        .run()
        .await?;
    let started = out.first(|k| matches!(k, EventKind::LoadStarted { .. })).context("no LoadStarted")?.at;
    let stopped = out.first(|k| matches!(k, EventKind::LoadStopped { .. })).context("no LoadStopped")?.at;
    ensure!(started >= Duration::from_millis(150), "the criterion prepared before the load started: {out}");
    let report = out.load_report.as_ref().context("no load report")?;
    let issued: Vec<_> = report.records().iter().filter(|r| r.outcome != Outcome::Skipped).collect();
    ensure!(issued.len() > 10 && issued.len() == report.records().len(), "the load ran, on schedule: {out}");
    for r in issued {
        ensure!(r.sent >= started, "request #{} sent at {:?}, before the load started at {started:?}", r.seq, r.sent);
        ensure!(r.ended <= stopped, "request #{} ended at {:?}, after the load stopped at {stopped:?}", r.seq, r.ended);
        ensure!(r.intended >= started, "request #{} due at {:?}, before the load started", r.seq, r.intended);
    }
    Ok(())
}
