//! End-to-end tests of the runner itself: they drive the `selftest` target of
//! `fixtures/selftest-suite` (tests with known outcomes) under `cargo test`, `cargo nextest run`
//! and directly, and check counts, listing, selection, JUnit, timeouts and teardown.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, bail, ensure};
use chaos_harness::prelude::*;

/// Tests every run of the selftest target must report (soak excluded, elixir hidden).
const PASSING: &[&str] = &[
    "basic::passes",
    "basic::sync_without_context",
    "custom::renamed_test",
    "generated::param_1",
    "generated::param_2",
    "generated::sync_fluent",
    "selection::net_and_process",
    "selection::net_probe",
    "selection::process_probe",
];
const FAILING: &[&str] =
    &["basic::error_chain", "basic::fails_with_hostile_output", "basic::panics", "basic::times_out_holding_a_child"];
const IGNORED: &[&str] = &["basic::ignored_by_author", "basic::needs_elixir"];

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map(PathBuf::from).unwrap_or_else(|| "cargo".into())
}

/// A command with the outer run's harness and nextest settings removed, so the nested run is
/// configured only by what the test sets.
fn clean(mut cmd: Command) -> Command {
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("CHAOS_") || k.starts_with("NEXTEST") || k == "RUST_LOG" {
            cmd.env_remove(&key);
        }
    }
    // Hide elixir so `basic::needs_elixir` is ignored for a known reason.
    cmd.env("CHAOS_ELIXIR", "/nonexistent/elixir");
    cmd.current_dir(workspace_root());
    cmd
}

/// Builds the selftest binary once per run and returns its path.
fn selftest_binary() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Mutex<Option<PathBuf>>> = OnceLock::new();
    let mut slot = BUILT.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = &*slot {
        return Ok(path.clone());
    }
    let mut cmd = clean(Command::new(cargo()));
    cmd.args(["test", "-p", "selftest-suite", "--test", "selftest", "--no-run", "--message-format=json"]);
    let out = cmd.output().context("running cargo to build the selftest target")?;
    ensure!(out.status.success(), "building selftest failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let path = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("executable").and_then(|e| e.as_str()).map(PathBuf::from))
        .next_back()
        .context("cargo reported no executable for the selftest target")?;
    *slot = Some(path.clone());
    Ok(path)
}

fn run_selftest(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Output> {
    let mut cmd = clean(Command::new(selftest_binary()?));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().context("running the selftest binary")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn listed(out: &Output) -> BTreeSet<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(": test").map(|(name, _)| name.to_string()))
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Extracts `(passed, failed, ignored)` from libtest's `test result:` line.
fn libtest_counts(output: &str) -> anyhow::Result<(u32, u32, u32)> {
    let line = output.lines().find(|l| l.starts_with("test result:")).context("no `test result:` line")?;
    let num = |label: &str| -> anyhow::Result<u32> {
        let idx = line.find(label).with_context(|| format!("no `{label}` in `{line}`"))?;
        let digits: String = line[..idx].trim_end().chars().rev().take_while(|c| c.is_ascii_digit()).collect();
        Ok(digits.chars().rev().collect::<String>().parse()?)
    };
    Ok((num(" passed")?, num(" failed")?, num(" ignored")?))
}

/// Extracts `(passed, failed, skipped)` from nextest's `Summary` line.
fn nextest_counts(output: &str) -> anyhow::Result<(u32, u32, u32)> {
    let line = output.lines().find(|l| l.trim_start().starts_with("Summary")).context("no nextest Summary line")?;
    let num = |label: &str| -> u32 {
        line.find(label)
            .map(|idx| {
                let d: String = line[..idx].trim_end().chars().rev().take_while(|c| c.is_ascii_digit()).collect();
                d.chars().rev().collect::<String>().parse().unwrap_or(0)
            })
            .unwrap_or(0)
    };
    Ok((num(" passed"), num(" failed") + num(" timed out"), num(" skipped")))
}

#[chaos_test(tags = ["runner", "e2e"], timeout = "10m")]
fn cargo_test_and_nextest_agree() -> ChaosResult {
    let expected = (PASSING.len() as u32, FAILING.len() as u32, IGNORED.len() as u32);

    let mut cmd = clean(Command::new(cargo()));
    cmd.args(["test", "-p", "selftest-suite", "--test", "selftest"]);
    let out = cmd.output()?;
    let all = text(&out);
    ensure!(out.status.code() == Some(101), "cargo test should fail with 101 (tests failed):\n{all}");
    ensure!(libtest_counts(&all)? == expected, "cargo test counts {:?} != {expected:?}:\n{all}", libtest_counts(&all)?);

    let mut cmd = clean(Command::new(cargo()));
    cmd.args(["nextest", "run", "-p", "selftest-suite", "--test", "selftest", "--no-fail-fast"]);
    let out = cmd.output()?;
    let all = text(&out);
    ensure!(!out.status.success(), "nextest should report the failures:\n{all}");
    ensure!(nextest_counts(&all)? == expected, "nextest counts {:?} != {expected:?}:\n{all}", nextest_counts(&all)?);
    Ok(())
}

#[chaos_test(tags = ["runner", "e2e"], timeout = "5m")]
fn list_agrees_with_nextest_and_shows_tags() -> ChaosResult {
    let terse = run_selftest(&["--list", "--format", "terse"], &[])?;
    let names = listed(&terse);
    let every: BTreeSet<String> = PASSING.iter().chain(FAILING).chain(IGNORED).map(|s| s.to_string()).collect();
    ensure!(names == every, "--list {names:?} != {every:?}");
    ensure!(!String::from_utf8_lossy(&terse.stdout).contains("# tags"), "terse listing must stay parseable");

    let ignored = listed(&run_selftest(&["--list", "--format", "terse", "--ignored"], &[])?);
    ensure!(ignored == set(IGNORED), "--list --ignored {ignored:?}");

    let human = String::from_utf8_lossy(&run_selftest(&["--list"], &[])?.stdout).into_owned();
    ensure!(human.contains("selection::net_and_process: test  # tags: net, process"), "tags not shown:\n{human}");

    let mut cmd = clean(Command::new(cargo()));
    cmd.args(["nextest", "list", "-p", "selftest-suite", "--test", "selftest", "--message-format", "json"]);
    let out = cmd.output()?;
    ensure!(out.status.success(), "nextest list failed:\n{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let mut from_nextest = BTreeSet::new();
    for suite in v["rust-suites"].as_object().context("rust-suites")?.values() {
        for (name, case) in suite["testcases"].as_object().context("testcases")? {
            ensure!(
                case["ignored"].as_bool() == Some(IGNORED.contains(&name.as_str())),
                "nextest sees wrong ignored flag for {name}"
            );
            from_nextest.insert(name.clone());
        }
    }
    ensure!(from_nextest == every, "nextest list {from_nextest:?} != {every:?}");
    Ok(())
}

#[chaos_test(tags = ["runner", "e2e"], timeout = "5m")]
fn name_filter_and_tags_select_subsets() -> ChaosResult {
    // (arguments, environment, the tests expected to be selected)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (&["selection::"], &[], &["selection::net_and_process", "selection::net_probe", "selection::process_probe"]),
        (&["selection::net_probe", "--exact"], &[], &["selection::net_probe"]),
        (
            &[],
            &[("CHAOS_TAGS", "net")],
            &["custom::renamed_test", "selection::net_and_process", "selection::net_probe"],
        ),
        (&[], &[("CHAOS_TAGS", "net,!process")], &["custom::renamed_test", "selection::net_probe"]),
        (&["--tag", "process", "--skip-tag", "net"], &[], &["selection::process_probe"]),
        (&[], &[("CHAOS_TAGS", "soak")], &["selection::long_soak"]),
        (&[], &[("CHAOS_TAGS", "generated,!smoke")], &["generated::sync_fluent"]),
    ];
    for (args, env, expected) in cases {
        let mut list_args = vec!["--list", "--format", "terse"];
        list_args.extend_from_slice(args);
        let got = listed(&run_selftest(&list_args, env)?);
        ensure!(got == set(expected), "args {args:?} env {env:?}: listed {got:?}, expected {expected:?}");
        // The run selects the same tests as the listing.
        let out = run_selftest(args, env)?;
        let (p, f, i) = libtest_counts(&text(&out))?;
        ensure!(p + f + i == expected.len() as u32, "args {args:?} env {env:?}: ran {p}+{f}+{i}:\n{}", text(&out));
    }

    // CHAOS_TAGS applies in both nextest phases.
    let mut cmd = clean(Command::new(cargo()));
    cmd.args(["nextest", "run", "-p", "selftest-suite", "--test", "selftest"]).env("CHAOS_TAGS", "net");
    let out = cmd.output()?;
    let all = text(&out);
    ensure!(out.status.success(), "nextest with CHAOS_TAGS=net should pass:\n{all}");
    ensure!(nextest_counts(&all)? == (3, 0, 0), "nextest CHAOS_TAGS=net: {:?}\n{all}", nextest_counts(&all)?);

    // `--exact` on a name that matches nothing is never a success under nextest.
    let mut cmd = clean(Command::new(cargo()));
    cmd.args(["nextest", "run", "-p", "selftest-suite", "--test", "selftest", "--exact", "no::such_test"]);
    let out = cmd.output()?;
    ensure!(!out.status.success(), "nextest --exact no::such_test reported success:\n{}", text(&out));
    // And the binary itself refuses when nextest asks for a test it does not have.
    let out = run_selftest(&["--exact", "no::such_test"], &[("NEXTEST", "1")])?;
    ensure!(out.status.code() == Some(4), "binary under NEXTEST=1 should exit 4:\n{}", text(&out));
    Ok(())
}

#[chaos_test(tags = ["runner", "e2e"], timeout = "5m")]
fn junit_parses_and_counts_match(cx: &mut Chaos) -> ChaosResult {
    let path = cx.sandbox().temp_dir().join("junit.xml");
    let path_str = path.to_string_lossy().into_owned();
    let out = run_selftest(&["--junit", &path_str], &[])?;
    ensure!(out.status.code() == Some(101), "expected failures:\n{}", text(&out));
    let xml = std::fs::read_to_string(&path).context("reading the JUnit file")?;
    ensure!(!xml.contains('\x1b') && !xml.contains('\x07'), "ANSI/control characters left in JUnit");

    let xmllint = |args: &[&str]| -> anyhow::Result<String> {
        let out = Command::new("xmllint")
            .args(args)
            .arg(&path)
            .output()
            .context("running xmllint (install it with `apt-get install libxml2-utils`; .ci/run does)")?;
        ensure!(out.status.success(), "xmllint {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    xmllint(&["--noout"])?;
    let count = |xpath: &str| -> anyhow::Result<u32> { Ok(xmllint(&["--xpath", xpath])?.parse()?) };
    let all = PASSING.len() + FAILING.len() + IGNORED.len();
    ensure!(count("count(//testsuite)")? == 1, "one testsuite per binary");
    ensure!(count("count(//testcase)")? == all as u32, "testcase count");
    ensure!(count("count(//testcase/failure)")? == FAILING.len() as u32, "failure count");
    ensure!(count("count(//testcase/skipped)")? == IGNORED.len() as u32, "skipped count");
    ensure!(
        count("count(//testcase/properties/property[@name='seed'])")? == (PASSING.len() + FAILING.len()) as u32,
        "seeds"
    );
    let timeout_msg =
        xmllint(&["--xpath", "string(//testcase[@name='basic::times_out_holding_a_child']/failure/@message)"])?;
    ensure!(timeout_msg == "timed out after 2s", "timeout message: {timeout_msg:?}");
    let skipped = xmllint(&["--xpath", "string(//testcase[@name='basic::needs_elixir']/skipped/@message)"])?;
    ensure!(skipped.starts_with("requires elixir: "), "skip reason: {skipped:?}");
    let hostile =
        xmllint(&["--xpath", "string(//testcase[@name='basic::fails_with_hostile_output']/failure/@message)"])?;
    ensure!(hostile.contains("expected failure ]]> bold"), "hostile message: {hostile:?}");
    let file = xmllint(&["--xpath", "string(//testcase[@name='basic::passes']/@file)"])?;
    ensure!(file.ends_with("basic.rs"), "file attribute: {file:?}");
    let tags = xmllint(&[
        "--xpath",
        "string(//testcase[@name='selection::net_and_process']/properties/property[@name='tags']/@value)",
    ])?;
    ensure!(tags == "net,process", "tags property: {tags:?}");
    Ok(())
}

#[chaos_test(tags = ["runner", "e2e"], timeout = "5m")]
fn failures_show_panic_chain_seed_and_capability_reasons() -> ChaosResult {
    let out = run_selftest(&["basic::"], &[])?;
    let all = text(&out);
    for needle in [
        "test panicked at fixtures/selftest-suite/tests/selftest/basic.rs:",
        "the vector should hold one element",
        "restarting the pool",
        "writing the session table",
        "disk on fire",
        "timed out after 2s",
    ] {
        ensure!(all.contains(needle), "output lacks {needle:?}:\n{all}");
    }
    // The seed is printed and replayable.
    let seed_line = all.lines().find(|l| l.starts_with("seed: ")).context("no seed line")?;
    let seed: u64 = seed_line["seed: ".len()..].split_whitespace().next().context("seed")?.parse()?;
    let replay = run_selftest(&["basic::passes", "--exact", "--nocapture"], &[("CHAOS_SEED", &seed.to_string())])?;
    ensure!(text(&replay).contains(&format!("seed={seed}")), "replay did not use the seed:\n{}", text(&replay));

    // Missing capability: ignored with the reason, or failed under CHAOS_REQUIRE_ALL=1.
    let out = run_selftest(&["basic::needs_elixir", "--exact", "--include-ignored"], &[])?;
    ensure!(text(&out).contains("requires elixir: "), "no reason shown:\n{}", text(&out));
    ensure!(out.status.success(), "an ignored test is not a failure");
    let out = run_selftest(&["basic::needs_elixir", "--exact"], &[("CHAOS_REQUIRE_ALL", "1")])?;
    ensure!(out.status.code() == Some(101), "CHAOS_REQUIRE_ALL=1 must fail it:\n{}", text(&out));
    ensure!(text(&out).contains("requires elixir: "), "{}", text(&out));

    // Duplicate names are refused at start with both locations.
    let out = run_selftest(&["--list"], &[("SELFTEST_DUPLICATE", "1")])?;
    let all = text(&out);
    ensure!(out.status.code() == Some(3), "duplicates must exit 3:\n{all}");
    ensure!(all.contains("basic.rs:") && all.contains("main.rs:"), "both locations:\n{all}");
    Ok(())
}

#[chaos_test(tags = ["runner", "e2e"], timeout = "5m")]
fn bad_arguments_exit_2_with_the_fix() -> ChaosResult {
    let out = run_selftest(&["--list"], &[("CHAOS_TAGS", "net,pro cess")])?;
    ensure!(out.status.code() == Some(2), "{}", text(&out));
    ensure!(text(&out).contains("net,process,!soak"), "{}", text(&out));
    let out = run_selftest(&["--definitely-not-a-flag"], &[])?;
    ensure!(out.status.code() == Some(2), "{}", text(&out));
    Ok(())
}

#[chaos_test(tags = ["runner", "e2e"], timeout = "5m", requires = ["cgroups"])]
fn timeout_holding_a_child_leaves_no_process(cx: &mut Chaos) -> ChaosResult {
    let pid_file = cx.sandbox().temp_dir().join("child.pid");
    let pid_file_str = pid_file.to_string_lossy().into_owned();
    let mut cmd = clean(Command::new(selftest_binary()?));
    cmd.args(["basic::times_out_holding_a_child", "--exact"]).env("SELFTEST_PID_FILE", &pid_file_str);
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = cmd.spawn()?;
    let harness_pid = child.id();
    let out = child.wait_with_output()?;
    ensure!(out.status.code() == Some(101), "the test should time out:\n{}", text(&out));
    ensure!(text(&out).contains("timed out after 2s"), "{}", text(&out));
    let pid = read_pid(&pid_file)?;
    // The binary has exited: its runner tore down the sandbox before reporting.
    ensure!(!pid_alive(pid), "child {pid} of the timed-out test is still alive");
    // Run ids are `<secs>-<harness pid>-<n>`: nothing of that harness may remain.
    let marker = format!("-{harness_pid}-");
    for root in ["/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/freezer", "/sys/fs/cgroup/unified"] {
        let parent = Path::new(root).join("chaos-harness");
        let left: Vec<String> = std::fs::read_dir(&parent)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        ensure!(
            !left.iter().any(|n| n.contains(&marker)),
            "cgroups of the timed-out test left in {}: {left:?}",
            parent.display()
        );
    }
    let temps: Vec<String> = std::fs::read_dir(std::env::temp_dir())?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("chaos-harness-") && n.contains(&marker))
        .collect();
    ensure!(temps.is_empty(), "temp dirs of the timed-out test left: {temps:?}");
    Ok(())
}

/// Whether `pid` is alive (a zombie counts as dead).
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

fn read_pid(path: &Path) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    match text.trim().parse() {
        Ok(pid) => Ok(pid),
        Err(_) => bail!("{} holds {text:?}, not a pid", path.display()),
    }
}
