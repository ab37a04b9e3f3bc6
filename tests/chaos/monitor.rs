//! The resource monitor (tag `monitor`): real Python children sampled every 100 ms from their
//! cgroup and `/proc`; a child that grows its RSS and opens fds is caught by `rss` and `fds`,
//! a steady one passes both; the series land in the outcome per role; the criteria work by
//! name from a scenario spec.

use std::time::Duration;

use anyhow::{bail, ensure};
use chaos_harness::fixture::{Process, python3};
use chaos_harness::observe::{EventKind, MonitorSeries};
use chaos_harness::prelude::*;
use chaos_harness::scenario::{ScenarioError, ScenarioOutcome, ScenarioSpec};

use crate::util::{members, prefork};

const MIB: u64 = 1 << 20;

/// Every 100 ms: 2 MiB more resident memory (pages touched) and one more open fd.
const LEAKY: &str = "import sys, time
held, files = [], []
print('ready', flush=True)
while True:
    held.append(b'x' * (2 << 20))
    files.append(open('/dev/null'))
    time.sleep(0.1)
";

/// 8 MiB and 5 fds, taken before it says ready, then nothing more.
const STEADY: &str = "import sys, time
held = b'x' * (8 << 20)
files = [open('/dev/null') for _ in range(5)]
print('ready', flush=True)
while True:
    time.sleep(0.1)
";

async fn child(cx: &mut Chaos, name: &str, program: &str) -> anyhow::Result<Process> {
    Ok(cx
        .start(
            Command::new(python3())
                .name(name)
                .args(["-c", program])
                .ready(Probe::log_line("^ready"))
                .stop_grace(Duration::from_millis(200)),
        )
        .await?)
}

/// Runs `wait 2s`, then RSS at most 40 MiB and no fd growth after 500 ms, on `p`'s main process.
async fn judge_child(cx: &mut Chaos, p: &Process) -> Result<ScenarioOutcome, ScenarioError> {
    cx.scenario("resource monitor")
        .wait(Duration::from_secs(2))
        .expect(Criterion::rss().of(p.main()).at_most(40 * MIB))
        .expect(Criterion::fds().of(p.main()).no_growth_after(Duration::from_millis(500)))
        .run()
        .await
}

fn series<'a>(o: &'a ScenarioOutcome, expr: &str) -> anyhow::Result<&'a MonitorSeries> {
    match o.monitor_of(expr) {
        Some(s) if s.samples.len() >= 10 => Ok(s),
        Some(s) => bail!("{expr}: only {} samples in a 2 s scenario", s.samples.len()),
        None => bail!("no series {expr}; have {:?}", o.monitor.iter().map(MonitorSeries::expr).collect::<Vec<_>>()),
    }
}

#[chaos_test(tags = ["monitor", "resources"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn monitor_criteria_catch_a_child_that_leaks_memory_and_fds(cx: &mut Chaos) -> ChaosResult {
    let p = child(cx, "leaky", LEAKY).await?;
    let out = match judge_child(cx, &p).await {
        Err(ScenarioError::CriteriaFailed(out)) => out,
        Ok(out) => bail!("a leaking child passed:\n{out}"),
        Err(e) => bail!("expected failed criteria, got {e}"),
    };
    ensure!(out.verdicts.len() == 2, "{out}");
    let (rss, fds) = (&out.verdicts[0], &out.verdicts[1]);
    ensure!(!rss.passed && rss.criterion.starts_with("RSS of leaky.main"), "rss verdict: {rss}");
    ensure!(!fds.passed && fds.criterion.starts_with("open fds of leaky.main"), "fds verdict: {fds}");
    // The series show the growth the criteria judged.
    let s = series(&out, "leaky.main")?;
    let (first, last) = (&s.samples[0], s.samples.last().expect("samples"));
    ensure!(last.rss_bytes >= first.rss_bytes + 20 * MIB, "RSS {} -> {}", first.rss_bytes, last.rss_bytes);
    ensure!(last.fds >= first.fds + 10, "fds {} -> {}", first.fds, last.fds);
    ensure!(s.samples.iter().all(|x| x.processes == 1 && x.threads >= 1), "{s:?}");
    // Python's own start-up alone takes more than a clock tick of CPU.
    ensure!(last.cpu_us > 0 && last.cpu_us >= first.cpu_us, "CPU {} -> {} us", first.cpu_us, last.cpu_us);
    ensure!(s.samples.windows(2).all(|w| w[0].at < w[1].at), "samples out of order");
    // Live consumers saw it on the stream too.
    let live = out.events.iter().filter(|e| matches!(&e.kind, EventKind::MonitorSample { role, .. } if role == "main"));
    ensure!(live.count() >= 2, "too few MonitorSample events:\n{out}");
    Ok(())
}

#[chaos_test(tags = ["monitor", "resources"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn monitor_criteria_pass_a_steady_child(cx: &mut Chaos) -> ChaosResult {
    let p = child(cx, "steady", STEADY).await?;
    let out = judge_child(cx, &p).await.map_err(|e| anyhow::anyhow!("a steady child failed:\n{e}"))?;
    ensure!(out.verdicts.iter().all(|v| v.passed) && out.verdicts.len() == 2, "{out}");
    let s = series(&out, "steady.main")?;
    // It holds its 8 MiB and its 5 extra fds (with stdin/stdout/stderr) at every sample.
    ensure!(s.samples.iter().all(|x| x.rss_bytes >= 8 * MIB && x.fds >= 8), "{s:?}");
    let fds: std::collections::BTreeSet<u64> = s.samples.iter().map(|x| x.fds).collect();
    ensure!(fds.len() == 1, "a steady child's fd count changed: {fds:?}");
    Ok(())
}

#[chaos_test(tags = ["monitor", "process"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn monitor_samples_each_role_of_a_fixture(cx: &mut Chaos) -> ChaosResult {
    let p = cx.start(prefork(3, "exit")?).await?;
    members(&p, 4).await?;
    let out = cx
        .scenario("roles")
        .wait(Duration::from_millis(600))
        .expect(Criterion::rss().of(p.children()).at_most(1 << 30))
        .run()
        .await?;
    let count = |expr: &str| -> anyhow::Result<Vec<u64>> {
        let s = out.monitor_of(expr).ok_or_else(|| anyhow::anyhow!("no series {expr}:\n{out}"))?;
        ensure!(!s.samples.is_empty(), "{expr} has no sample");
        Ok(s.samples.iter().map(|x| x.processes).collect())
    };
    // The fixture whole and its main process by default; the children because a criterion
    // asked for them.
    ensure!(count("prefork.all")?.iter().all(|n| *n == 4), "all: {:?}", count("prefork.all")?);
    ensure!(count("prefork.main")?.iter().all(|n| *n == 1), "main: {:?}", count("prefork.main")?);
    ensure!(count("prefork.children")?.iter().all(|n| *n == 3), "children: {:?}", count("prefork.children")?);
    let all = out.monitor_of("prefork.all").and_then(MonitorSeries::last).expect("checked");
    let parts: u64 = ["prefork.main", "prefork.children"]
        .iter()
        .filter_map(|e| out.monitor_of(e).and_then(MonitorSeries::last))
        .map(|x| x.fds)
        .sum();
    ensure!(all.fds == parts && all.fds > 0 && all.threads >= 4, "all {all:?}, main + children fds {parts}");
    Ok(())
}

#[chaos_test(tags = ["monitor", "model"], timeout = "60s", requires = ["cgroups", "python3"])]
async fn rss_and_fds_criteria_work_by_name_in_a_spec(cx: &mut Chaos) -> ChaosResult {
    let spec = |name: &str, program: &str| -> anyhow::Result<ScenarioSpec> {
        Ok(serde_json::from_value(serde_json::json!({
            "name": name,
            "targets": { "app": {
                "kind": "command", "program": python3(), "args": ["-c", program], "ready_log_line": "^ready"
            } },
            "steps": [
                { "action": "wait", "duration": "2s" },
                { "action": "expect", "criterion": "rss", "target": "app.main", "at_most": "40MiB" },
                { "action": "expect", "criterion": "fds", "target": "app.main", "no_growth_after": "500ms" }
            ]
        }))?)
    };
    let steady = cx.run_spec(&spec("steady by name", STEADY)?).await?;
    let steady = steady.map_err(|e| anyhow::anyhow!("the steady child failed:\n{e}"))?;
    ensure!(steady.verdicts.len() == 2 && steady.passed(), "{steady}");
    let mut fresh = Chaos::standalone("monitor::by_name_leaky", cx.seed())?;
    let leaky = fresh.run_spec(&spec("leaky by name", LEAKY)?).await?;
    fresh.sandbox().teardown()?;
    let Err(ScenarioError::CriteriaFailed(out)) = leaky else { bail!("the leaky child was not caught: {leaky:?}") };
    ensure!(out.verdicts.len() == 2 && out.verdicts.iter().all(|v| !v.passed), "{out}");
    Ok(())
}
