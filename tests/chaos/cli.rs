//! The `chaos` CLI end to end: output paths checked before anything runs, Ctrl-C writes a
//! partial report, `list --format json`, `doctor` with a capability forced missing.

use std::io::{BufRead, BufReader};
use std::process::{Command as Std, Stdio};
use std::time::Instant;

use anyhow::{Context, ensure};
use chaos_harness::prelude::*;

/// The `chaos` binary with the outer run's `CHAOS_*` settings removed.
fn chaos() -> Std {
    let mut cmd = Std::new(env!("CARGO_BIN_EXE_chaos"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CHAOS_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("NO_COLOR", "1").current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

#[chaos_test(tags = ["cli"], timeout = "1m")]
async fn run_with_an_unwritable_report_exits_2_before_running(_cx: &mut Chaos) -> ChaosResult {
    let t0 = Instant::now();
    let out = chaos().args(["run", "--report", "/dev/null/x"]).output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.code() == Some(2), "exit {:?}, want 2:\n{err}", out.status.code());
    ensure!(err.contains("/dev/null/x") && err.contains("--report DIR"), "names the path and the fix: {err}");
    ensure!(!err.contains("scenario run(s)"), "nothing may run: {err}");
    // Nothing ran: a scenario starts a BEAM, which alone takes seconds.
    ensure!(t0.elapsed() < Duration::from_secs(5), "took {:?}", t0.elapsed());
    Ok(())
}

#[chaos_test(tags = ["cli"], timeout = "1m")]
async fn list_and_doctor_as_json_and_text(_cx: &mut Chaos) -> ChaosResult {
    let out = chaos().args(["list", "--format", "json"]).output()?;
    ensure!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("list --format json")?;
    ensure!(v.as_array().is_some_and(|a| a.iter().any(|s| s["name"] == "beam-sigkill")), "{v}");
    // A PATH without elixir: doctor names it, with the fix, and exits 1.
    let out = chaos().arg("doctor").env("PATH", "/nonexistent-bin").output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.code() == Some(1), "exit {:?}:\n{text}", out.status.code());
    let line = text.lines().find(|l| l.contains("elixir")).unwrap_or_default();
    ensure!(line.starts_with("MISSING") && line.contains("/nonexistent-bin"), "{text}");
    ensure!(text.contains("fix: apt-get install elixir"), "{text}");
    let out = chaos().args(["doctor", "--format", "json"]).env("PATH", "/nonexistent-bin").output()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("doctor --format json")?;
    ensure!(v["ready"] == false, "{v}");
    Ok(())
}

#[chaos_test(tags = ["cli", "snakepit"], requires = ["root", "elixir", "cgroups"], timeout = "4m")]
async fn sigint_during_run_writes_a_partial_report(cx: &mut Chaos) -> ChaosResult {
    let dir = cx.sandbox().temp_dir().join("report");
    let mut child = chaos()
        .args(["-v", "run", "--only", "beam-sigkill", "--only", "worker-sigkill", "--report"])
        .arg(&dir)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    let pid = child.id() as i32;
    let stderr = child.stderr.take().context("stderr")?;
    // Wait (in a thread: the reads block) until the first scenario finished and the second
    // reached its fault phase, then interrupt.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = String::new();
    let t0 = Instant::now();
    let mut first_done = false;
    loop {
        let line = rx.recv_timeout(Duration::from_secs(120)).with_context(|| format!("no progress:\n{seen}"))?;
        seen += &line;
        seen.push('\n');
        first_done |= line.contains("[   1/2] beam-sigkill");
        if first_done && line.contains("worker-sigkill") && line.contains("phase fault") {
            break;
        }
        ensure!(t0.elapsed() < Duration::from_secs(150), "no fault phase:\n{seen}");
    }
    // SAFETY: kill(2) on our own child's pid.
    ensure!(unsafe { libc::kill(pid, libc::SIGINT) } == 0, "kill: {}", std::io::Error::last_os_error());
    let status = child.wait()?;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
        seen += &line;
        seen.push('\n');
    }
    ensure!(status.code() == Some(130), "exit {status}, want 130:\n{seen}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("report.json"))?)?;
    ensure!(report["interrupted"].as_str().is_some_and(|s| s.starts_with("SIGINT after")), "{report}");
    let tests = report["tests"].as_array().context("tests")?;
    ensure!(tests.len() == 2, "{report}");
    ensure!(tests[0]["name"] == "beam-sigkill" && tests[0]["interrupted"].is_null(), "{report}");
    ensure!(tests[1]["name"] == "worker-sigkill" && tests[1]["interrupted"] == true, "{report}");
    ensure!(tests[1]["status"]["message"].as_str().is_some_and(|m| m.contains("interrupted by SIGINT")), "{report}");
    ensure!(dir.join("report.html").exists() && dir.join("junit.xml").exists(), "the other files too");
    Ok(())
}

#[chaos_test(tags = ["cli", "snakepit"], requires = ["root", "elixir", "cgroups"], timeout = "5m")]
async fn parallel_crash_cycles_run_side_by_side_and_leave_nothing(cx: &mut Chaos) -> ChaosResult {
    let dir = cx.sandbox().temp_dir().join("report");
    let child = chaos()
        .args(["-v", "run", "--only", "beam-sigkill", "--cycles", "3", "--jobs", "2", "--format", "json", "--report"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let out = child.wait_with_output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "exit {:?}:\n{err}", out.status.code());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| format!("stdout; {err}"))?;
    ensure!(v["passed"] == 3 && v["failed"] == 0, "{v}");
    // Side by side: a second cycle started before the first one finished.
    let lines: Vec<&str> = err.lines().collect();
    let first_done = lines.iter().position(|l| l.contains("[   1/3]")).context("a finished line")?;
    let started = lines[..first_done].iter().filter(|l| l.contains("::beam-sigkill]: started")).count();
    ensure!(started >= 2, "{started} run(s) started before the first finished:\n{err}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("report.json"))?)?;
    let names: Vec<&str> =
        report["tests"].as_array().context("tests")?.iter().filter_map(|t| t["name"].as_str()).collect();
    ensure!(
        names == ["cycle0001::beam-sigkill", "cycle0002::beam-sigkill", "cycle0003::beam-sigkill"],
        "every cycle once, in order: {names:?}"
    );
    // Every run's sandbox is gone: no cgroup, temp dir or marked process of the CLI's runs.
    let left = crate::util::leftovers_of(pid);
    ensure!(left.is_empty(), "left behind: {left:?}");
    Ok(())
}

#[chaos_test(tags = ["cli", "snakepit"], requires = ["root", "elixir", "cgroups"], timeout = "4m")]
async fn a_failing_run_names_the_violated_criterion_in_json_and_junit(cx: &mut Chaos) -> ChaosResult {
    let dir = cx.sandbox().temp_dir().join("report");
    let out = chaos()
        .args(["-q", "run", "--only", "beam-sigkill", "--defect", "no_heartbeat", "--format", "json", "--report"])
        .arg(&dir)
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.code() == Some(1), "exit {:?}, want 1:\n{err}", out.status.code());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| format!("stdout; {err}"))?;
    ensure!(v["failed"] == 1 && v["passed"] == 0, "{v}");
    let message = v["scenarios"][0]["message"].as_str().context("message")?.to_string();
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("report.json"))?)?;
    let verdicts = report["tests"][0]["scenario"]["verdicts"].as_array().context("verdicts")?;
    let violated = verdicts.iter().find(|v| v["passed"] == false).context("a violated criterion")?;
    let criterion = violated["criterion"].as_str().context("criterion")?;
    ensure!(message.contains(criterion), "the message names `{criterion}`: {message}");
    let junit = std::fs::read_to_string(dir.join("junit.xml"))?;
    let failure = junit.lines().find(|l| l.contains("<failure")).context("a <failure>")?;
    let failure = [("&apos;", "'"), ("&quot;", "\""), ("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&")]
        .iter()
        .fold(failure.to_string(), |s, (from, to)| s.replace(from, to));
    ensure!(failure.contains(criterion), "JUnit <failure message> names `{criterion}`: {failure}");
    ensure!(junit.contains("name=\"defects\"") || report["defects"][0] == "no_heartbeat", "{report}");
    Ok(())
}

#[chaos_test(tags = ["cli", "snakepit"], requires = ["root", "elixir", "cgroups"], timeout = "5m")]
async fn report_compare_of_two_real_runs_names_the_scenario_and_the_changed_measurement(cx: &mut Chaos) -> ChaosResult {
    // Two saved runs of the same scenario against the reference target: one healthy, one with
    // a defect that breaks it.
    let (good, bad) = (cx.sandbox().temp_dir().join("good"), cx.sandbox().temp_dir().join("bad"));
    for (dir, defect) in [(&good, None), (&bad, Some("no_heartbeat"))] {
        let mut cmd = chaos();
        cmd.args(["-q", "run", "--only", "beam-sigkill", "--report"]).arg(dir);
        if let Some(d) = defect {
            cmd.args(["--defect", d]);
        }
        let out = cmd.output()?;
        let want = if defect.is_some() { 1 } else { 0 };
        ensure!(
            out.status.code() == Some(want),
            "run with defect {defect:?}: exit {:?}, want {want}:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(bad.join("report.json"))?)?;
    let verdicts = report["tests"][0]["scenario"]["verdicts"].as_array().context("verdicts")?;
    let violated = verdicts.iter().find(|v| v["passed"] == false).context("a violated criterion")?;
    let criterion = violated["criterion"].as_str().context("criterion")?.to_string();

    let out = chaos().args(["report", "--compare"]).arg(&good).arg(&bad).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr));
    ensure!(text.lines().any(|l| l == "beam-sigkill: verdict passed -> failed"), "the verdict change:\n{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("beam-sigkill: criterion `{criterion}` held (")))
        .with_context(|| format!("the criterion `{criterion}` that changed:\n{text}"))?;
    ensure!(line.contains("-> violated ("), "{line}");
    // The same runs the other way round, as JSON: the scenario and the measurement by field.
    let out = chaos().args(["report", "--format", "json", "--compare"]).arg(&bad).arg(&good).output()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("report --compare --format json")?;
    let changes = v.as_array().context("an array of changes")?;
    ensure!(
        changes.iter().any(|c| c["scenario"] == "beam-sigkill"
            && c["measurement"] == format!("criterion `{criterion}`")
            && c["new"].as_str().is_some_and(|n| n.starts_with("held"))),
        "{v}"
    );
    // A run compared with itself changes nothing.
    let out = chaos().args(["report", "--compare"]).arg(&good).arg(&good).output()?;
    ensure!(String::from_utf8_lossy(&out.stdout) == "no scenario or measurement changed\n", "self-compare");
    Ok(())
}

/// `chaos run --retries N` (and `CHAOS_RETRIES`): a scenario that fails on its first attempt
/// and passes on the second is reported FLAKY on the progress line, with a `flakyFailure` in
/// junit.xml and in history.jsonl's `flaky`, never silently green; without retries the same
/// scenario fails the run.
#[chaos_test(tags = ["cli", "ergonomics"], timeout = "3m", requires = ["root", "cgroups"])]
async fn run_retries_report_a_flaky_scenario(cx: &mut Chaos) -> ChaosResult {
    let dir = cx.sandbox().temp_dir().to_path_buf();
    let marker = dir.join("attempted");
    // First attempt: the program keeps running, so `exits_within` fails; it leaves a marker,
    // and on the next attempt it exits at once and the scenario passes.
    let file = dir.join("flaky.chaos.toml");
    std::fs::write(
        &file,
        format!(
            r#"name = "flaky-once"
timeout = "30s"

[target.svc]
command = ["sh", "-c", "if [ -e {m} ]; then exit 0; fi; touch {m}; exec sleep 60"]

[[step]]
wait = "100ms"

[[expect]]
criterion = "exits_within"
target = "svc"
eventually = "1s"
"#,
            m = marker.display()
        ),
    )?;
    let run = |report: &str, retries: Option<&str>, env: Option<&str>| -> anyhow::Result<(Option<i32>, String)> {
        let _ = std::fs::remove_file(&marker);
        let mut cmd = chaos();
        cmd.args(["run", "--report"]).arg(dir.join(report)).arg(&file);
        if let Some(n) = retries {
            cmd.args(["--retries", n]);
        }
        if let Some(n) = env {
            cmd.env("CHAOS_RETRIES", n);
        }
        let out = cmd.output()?;
        Ok((
            out.status.code(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        ))
    };
    for (report, retries, env) in [("flag", Some("1"), None), ("env", None, Some("1"))] {
        let (code, out) = run(report, retries, env)?;
        ensure!(code == Some(0), "{report}: exit {code:?}:\n{out}");
        ensure!(out.contains("failed (attempt 1 of 2), retrying"), "{report}:\n{out}");
        ensure!(out.contains("ok, FLAKY (failed 1 time(s) first)"), "{report}:\n{out}");
        ensure!(out.contains("1 passed (1 FLAKY), 0 failed"), "{report}:\n{out}");
        let junit = std::fs::read_to_string(dir.join(report).join("junit.xml"))?;
        ensure!(junit.matches("<flakyFailure").count() == 1 && !junit.contains("<failure"), "{report}:\n{junit}");
        let history = std::fs::read_to_string(dir.join(report).join("history.jsonl"))?;
        ensure!(history.contains(r#""flaky":["flaky"]"#), "{report}:\n{history}");
    }
    let (code, out) = run("none", None, None)?;
    ensure!(code != Some(0) && out.contains("FAILED"), "without retries it fails: exit {code:?}:\n{out}");
    let (code, out) = run("bad", None, Some("many"))?;
    ensure!(code == Some(2) && out.contains("CHAOS_RETRIES: `many`"), "exit {code:?}:\n{out}");
    Ok(())
}

/// A crash-cycle run killed outright (SIGKILL: no handler, no partial report) resumes with
/// `--resume`: the runs recorded in the journal are kept and not run again, the rest run, and
/// report.json holds every cycle once with per-scenario pass counts and a Wilson interval; a
/// file's `repeat` counts as runs of its own.
#[chaos_test(tags = ["cli"], requires = ["cgroups"], timeout = "2m")]
async fn a_killed_cycle_run_resumes_where_it_stopped(cx: &mut Chaos) -> ChaosResult {
    let dir = cx.sandbox().temp_dir().to_path_buf();
    let file = dir.join("tick.chaos.toml");
    std::fs::write(
        &file,
        "repeat = 2\n[target.s]\ncommand = [\"sleep\", \"60\"]\n[[step]]\nwait = \"300ms\"\n[[step]]\nexpect = \"process_count\"\ntarget = \"s.main\"\nreaches = 1\n",
    )?;
    let report = dir.join("report");
    let journal = report.join("cycles.jsonl");
    let args = |resume: bool| {
        let mut c = chaos();
        c.args(["-q", "run", "--cycles", "5", "--report"]).arg(&report).arg(&file);
        if resume {
            c.arg("--resume");
        }
        c
    };
    // 5 cycles x repeat 2 = 10 runs; kill the run once 3 are in the journal.
    let mut child = args(false).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    let t0 = Instant::now();
    let lines = |p: &std::path::Path| std::fs::read_to_string(p).map(|t| t.lines().count()).unwrap_or(0);
    while lines(&journal) < 3 {
        ensure!(t0.elapsed() < Duration::from_secs(60), "the journal never reached 3 runs");
        ensure!(child.try_wait()?.is_none(), "the run ended before it was killed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill()?;
    child.wait()?;
    let before: Vec<serde_json::Value> =
        std::fs::read_to_string(&journal)?.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    ensure!(before.len() >= 3 && before.len() < 10, "{} runs journaled before the kill", before.len());
    let out = args(true).output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "resume failed:\n{err}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(report.join("report.json"))?)?;
    let names: Vec<&str> = v["tests"].as_array().context("tests")?.iter().filter_map(|t| t["name"].as_str()).collect();
    let want: Vec<String> = (1..=10).map(|k| format!("cycle{k:04}::tick")).collect();
    let mut sorted = names.clone();
    sorted.sort();
    ensure!(sorted == want, "every run exactly once: {names:?}");
    // The journaled runs were kept as they were (same seed), not run again.
    for b in &before {
        let t = v["tests"].as_array().into_iter().flatten().find(|t| t["name"] == b["name"]).context("kept")?;
        ensure!(t["seed"] == b["seed"] && t["duration"] == b["duration"], "{} was run again: {t} vs {b}", b["name"]);
    }
    let s = &v["statistics"][0];
    ensure!(s["scenario"] == "tick" && s["runs"] == 10 && s["passed"] == 10, "{s}");
    let (lo, hi) = (s["wilson_low"].as_f64().unwrap_or(0.0), s["wilson_high"].as_f64().unwrap_or(0.0));
    ensure!((0.69..0.73).contains(&lo) && hi == 1.0, "Wilson 95% of 10/10 is 0.72-1.0: {s}");
    ensure!(
        s["ready_ms_median"].as_u64().is_some() && s["mean_run_s"].as_f64().is_some(),
        "start-to-ready measured: {s}"
    );
    let c = &s["criteria"][0];
    ensure!(
        c["judged"] == 10 && c["held"] == 10 && c["worst_run"].as_str().is_some_and(|r| r.ends_with("::tick")),
        "{c}"
    );
    // --resume without a journal says so.
    let out = chaos().args(["run", "--resume", "--report"]).arg(dir.join("empty")).arg(&file).output()?;
    ensure!(out.status.code() == Some(2) && String::from_utf8_lossy(&out.stderr).contains("no journal"), "{out:?}");
    Ok(())
}
