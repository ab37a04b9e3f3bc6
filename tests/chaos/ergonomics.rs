//! Writing a chaos test for any real program (tag `ergonomics`): the `Command` fixture runs as
//! another user, with stdin, a private home, a free port and readiness probes for pre-forking
//! servers. Each test fails without the feature it names.

use std::collections::BTreeSet;

use anyhow::{Context, ensure};
use chaos_harness::fixture::{Stdin, free_port, python3};
use chaos_harness::prelude::*;

use crate::util::{programs, wait_for_log};

/// `.user("www-data")`: the program runs with www-data's uid, gid and supplementary groups,
/// and can write its data dir and home (owned by it), which root created in the sandbox.
#[chaos_test(tags = ["ergonomics", "process"], timeout = "30s", requires = ["root", "cgroups", "python3"])]
async fn command_runs_as_another_user(cx: &mut Chaos) -> ChaosResult {
    let script = "import os,sys\n\
        open(os.path.join(sys.argv[1], 'owned'), 'w').write('x')\n\
        open(os.path.expanduser('~/.rc'), 'w').write('x')\n\
        print('ids', os.getuid(), os.getgid(), sorted(os.getgroups()), flush=True)\n\
        import time; time.sleep(60)";
    let p = cx
        .start(
            Command::new(python3())
                .name("asuser")
                .args(["-c", script, "{data}"])
                .user("www-data")
                .ready(Probe::log_line("^ids ")),
        )
        .await?;
    let www = nix::unistd::User::from_name("www-data")?.context("no user www-data on this machine")?;
    let cname = std::ffi::CString::new("www-data")?;
    let groups: BTreeSet<u32> = nix::unistd::getgrouplist(&cname, www.gid)?.into_iter().map(|g| g.as_raw()).collect();
    let log = std::fs::read_to_string(p.stdout_log())?;
    let want_groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    let want = format!("ids {} {} [{}]", www.uid, www.gid, want_groups.join(", "));
    ensure!(log.lines().any(|l| l == want), "want {want:?} in the log, got:\n{log}");
    use std::os::unix::fs::MetadataExt;
    let owned = std::fs::metadata(p.data_dir().join("owned"))?;
    ensure!(owned.uid() == www.uid.as_raw(), "the file in the data dir is owned by {}", owned.uid());
    ensure!(p.home_dir().join(".rc").exists(), "the program's ~/.rc is not in its private home");
    Ok(())
}

/// `.user("no-such-user")` fails at start, naming the user and the fix.
#[chaos_test(tags = ["ergonomics", "process"], timeout = "30s", requires = ["cgroups"])]
async fn command_user_unknown_is_a_clear_error(cx: &mut Chaos) -> ChaosResult {
    let err = cx.start(Command::new("sleep").arg("60").user("chaos-no-such-user")).await.unwrap_err().to_string();
    ensure!(err.contains("chaos-no-such-user") && err.contains("adduser"), "{err}");
    Ok(())
}

/// `.stdin(Stdin::Piped)`: the test writes a line the program reads; `Stdin::KeepOpen`: `cat`
/// stays connected and idle (with the default /dev/null it would exit at once and fail the
/// readiness probe); `Stdin::File`: the program reads the file.
#[chaos_test(tags = ["ergonomics", "process"], timeout = "30s", requires = ["cgroups", "python3"])]
async fn command_stdin_piped_file_and_keep_open(cx: &mut Chaos) -> ChaosResult {
    let echo = cx
        .start(
            Command::new(python3())
                .name("echo")
                .args(["-u", "-c", "import sys\nprint('ready')\nfor l in sys.stdin: print('got', l.strip())"])
                .stdin(Stdin::Piped)
                .ready(Probe::log_line("^ready")),
        )
        .await?;
    echo.write_stdin(b"hello\n")?;
    wait_for_log(echo.stdout_log(), "got hello").await?;
    echo.close_stdin();
    let exit = tokio::time::timeout(Duration::from_secs(10), echo.wait()).await?;
    ensure!(exit.code == Some(0), "EOF should end the program: {exit}");

    let idle = cx.start(Command::new("cat").name("idle-client").stdin(Stdin::KeepOpen).ready(Probe::idle())).await?;
    ensure!(idle.exit_status().is_none(), "cat with a kept-open stdin exited");
    let err = cx.start(Command::new("cat").name("null-client").ready(Probe::idle())).await.unwrap_err();
    ensure!(err.to_string().contains("exited first"), "cat with /dev/null on stdin should exit: {err}");

    let input = cx.sandbox().temp_dir().join("input.txt");
    std::fs::write(&input, "line from a file\n")?;
    let cat = cx.start(Command::new("cat").name("file-client").stdin(Stdin::File(input))).await?;
    tokio::time::timeout(Duration::from_secs(10), cat.wait()).await?;
    ensure!(std::fs::read_to_string(cat.stdout_log())? == "line from a file\n");
    Ok(())
}

/// A private HOME and XDG dirs in the sandbox by default: a program's `~/.<program>/` control
/// file is written there and removed with the sandbox; `.inherit_home()` passes the real HOME.
#[chaos_test(tags = ["ergonomics", "process"], timeout = "30s", requires = ["cgroups", "python3"])]
async fn command_gets_a_private_home(cx: &mut Chaos) -> ChaosResult {
    let script = "import os\n\
        d = os.path.expanduser('~/.chaosprog'); os.makedirs(d, exist_ok=True)\n\
        open(os.path.join(d, 'ctl'), 'w').write('x')\n\
        print('home', os.environ['HOME'])\n\
        for k in ['XDG_CONFIG_HOME','XDG_DATA_HOME','XDG_CACHE_HOME','XDG_STATE_HOME','XDG_RUNTIME_DIR']: print(k, os.environ[k])\n\
        print('done', flush=True)";
    let p =
        cx.start(Command::new(python3()).name("homey").args(["-c", script]).ready(Probe::log_line("^done"))).await?;
    let log = std::fs::read_to_string(p.stdout_log())?;
    let sandbox = cx.sandbox().temp_dir().to_path_buf();
    ensure!(p.home_dir().starts_with(&sandbox), "home {} is outside the sandbox", p.home_dir().display());
    ensure!(log.contains(&format!("home {}", p.home_dir().display())), "{log}");
    for line in log.lines().filter(|l| l.starts_with("XDG_")) {
        let (_, path) = line.split_once(' ').unwrap_or_default();
        ensure!(path.starts_with(&*sandbox.to_string_lossy()), "{line} is outside the sandbox");
    }
    ensure!(p.home_dir().join(".chaosprog/ctl").exists());

    let real = std::env::var("HOME").unwrap_or_default();
    let q = cx
        .start(
            Command::new(python3())
                .name("realhome")
                .args(["-c", "import os; print('home', os.environ.get('HOME'), flush=True)"])
                .inherit_home()
                .ready(Probe::log_line("^home")),
        )
        .await?;
    let log = std::fs::read_to_string(q.stdout_log())?;
    ensure!(log.trim() == format!("home {real}"), "inherit_home should pass HOME={real}: {log}");
    Ok(())
}

/// `{port}` in the arguments is replaced by a free port, the same one the readiness probe
/// dials and `Process::port()` returns; `free_port()` gives another.
#[chaos_test(tags = ["ergonomics", "process"], timeout = "30s", requires = ["cgroups", "python3"])]
async fn command_port_placeholder_reaches_the_probe(cx: &mut Chaos) -> ChaosResult {
    let web = cx
        .start(
            Command::new(python3())
                .name("web")
                .args(["-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", "{data}"])
                .ready(Probe::http("127.0.0.1:{port}", "/")),
        )
        .await?;
    let port = web.port().context("{port} was used, so a port must be allocated")?;
    std::net::TcpStream::connect(("127.0.0.1", port)).context("the server listens on the allocated port")?;
    let other = free_port()?;
    ensure!(other != port || std::net::TcpListener::bind(("127.0.0.1", other)).is_ok());
    Ok(())
}

/// Readiness for pre-forking servers: `Probe::processes(n)` waits for the workers,
/// `Probe::idle()` for all of them to sleep, and `Probe::custom` sees the members; a bad regex
/// in `Probe::log_line` (which, like every probe constructor, returns a `Probe`) fails the
/// start naming the pattern.
#[chaos_test(tags = ["ergonomics", "process"], timeout = "30s", requires = ["cgroups", "python3"])]
async fn probes_for_preforking_servers(cx: &mut Chaos) -> ChaosResult {
    let p = cx
        .start(
            Command::new(python3())
                .name("prefork")
                .arg(programs().join("prefork.py"))
                .args(["--workers", "3"])
                .ready(Probe::processes(4))
                .ready(Probe::idle())
                .ready(Probe::custom("members seen", |cx| async move { cx.members().len() == 4 })),
        )
        .await?;
    ensure!(p.scope().members().len() == 4, "{} members", p.scope().members().len());
    let log = std::fs::read_to_string(p.stdout_log())?;
    ensure!(log.matches(" started").count() == 3, "all workers started before ready:\n{log}");

    let err = cx.start(Command::new("sleep").name("badprobe").arg("60").ready(Probe::log_line("(unclosed"))).await;
    let err = err.unwrap_err().to_string();
    ensure!(err.contains("(unclosed") && err.contains("regular expression"), "{err}");
    Ok(())
}

/// Builds `fixtures/server-acceptance`'s `runner-features` binary and runs it with `args`/`env`.
fn runner_features(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<(Option<i32>, String)> {
    acceptance_binary("runner-features", args, env)
}

/// Builds the test target `target` of `fixtures/server-acceptance` and runs it with `args`/`env`.
fn acceptance_binary(target: &str, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<(Option<i32>, String)> {
    use std::process::Command as Std;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let clean = |mut c: Std| {
        for (k, _) in std::env::vars() {
            if k.starts_with("CHAOS_") || k.starts_with("NEXTEST") {
                c.env_remove(k);
            }
        }
        c.current_dir(root);
        c
    };
    let out = clean(Std::new(cargo))
        .args(["test", "-p", "server-acceptance", "--test", target, "--no-run", "--message-format=json"])
        .output()?;
    ensure!(out.status.success(), "build failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let exe = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split("\"executable\":\"").nth(1).and_then(|r| r.split('"').next()).map(String::from))
        .next_back()
        .context("cargo named no executable")?;
    let mut cmd = clean(Std::new(exe));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output()?;
    Ok((out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))))
}

/// `CHAOS_TAGS` with a tag no test has fails with exit 2 naming it (it used to run 0 tests and
/// pass); tests left out by tags are counted as filtered out.
#[chaos_test(tags = ["ergonomics", "runner"], timeout = "10m")]
fn unknown_tag_fails_and_tag_filtered_tests_count_as_filtered_out() -> ChaosResult {
    let (code, out) = runner_features(&[], &[("CHAOS_TAGS", "serial-chek")])?;
    ensure!(code == Some(2), "exit {code:?}:\n{out}");
    ensure!(out.contains("`serial-chek`") && out.contains("serial-check"), "{out}");
    let (code, out) = runner_features(&[], &[("CHAOS_TAGS", "serial-chek"), ("CHAOS_ALLOW_NO_TESTS", "1")])?;
    ensure!(code == Some(0), "CHAOS_ALLOW_NO_TESTS=1 accepts it: exit {code:?}:\n{out}");
    let (code, out) = runner_features(&[], &[("CHAOS_TAGS", "serial-check")])?;
    ensure!(code == Some(0), "exit {code:?}:\n{out}");
    ensure!(out.contains("3 passed; 0 failed; 0 ignored; 0 measured; 4 filtered out"), "{out}");
    let (_, out) = runner_features(&["--exact", "parallel_a"], &[("CHAOS_TAGS", "retry")])?;
    ensure!(out.contains("0 passed; 0 failed; 0 ignored; 0 measured; 7 filtered out"), "{out}");
    Ok(())
}

/// `requires = ["bin:mariadbd", ..]`: with mariadb missing (PATH without it) the acceptance
/// test is ignored with the install hint, and `CHAOS_REQUIRE_ALL=1` makes that a failure.
#[chaos_test(tags = ["ergonomics", "runner"], timeout = "10m")]
fn missing_server_is_ignored_with_a_hint_or_fails_under_require_all() -> ChaosResult {
    let name = "mariadb_sigkill_is_recovered_by_innodb_on_restart";
    let (code, out) = acceptance_binary("servers", &["--exact", name], &[("PATH", "/nonexistent")])?;
    ensure!(code == Some(0), "exit {code:?}:\n{out}");
    ensure!(out.contains("1 ignored") && out.contains("apt-get install mariadb-server"), "{out}");
    let (code, out) =
        acceptance_binary("servers", &["--exact", name], &[("PATH", "/nonexistent"), ("CHAOS_REQUIRE_ALL", "1")])?;
    ensure!(code == Some(101), "exit {code:?}:\n{out}");
    ensure!(out.contains("apt-get install mariadb-server") && out.contains("1 failed"), "{out}");
    Ok(())
}

/// A timeout in the middle of a scenario names the scenario and phase, shows the timeline so
/// far and the fixture's log tail, like other failures (it used to say only `timed out after
/// 2s`); what the body printed with `println!` is captured: shown with the failure, hidden for
/// a passing test unless `--nocapture`.
#[chaos_test(tags = ["ergonomics", "runner"], timeout = "10m", requires = ["root", "cgroups"])]
fn timeout_shows_timeline_and_logs_and_println_is_captured() -> ChaosResult {
    let (code, out) = runner_features(&[], &[("CHAOS_TAGS", "timeout")])?;
    ensure!(code == Some(101), "exit {code:?}:\n{out}");
    for needle in [
        "timed out after 3s during scenario \"slow scenario\" (phase stuck)",
        "---- timeline so far ----",
        "inject #0 SIGSTOP to main process of talker",
        "step 2: wait 1m",
        "---- talker.stdout.log (last 1 lines) ----\nfixture-log-line",
        "printed by the body before the scenario",
    ] {
        ensure!(out.contains(needle), "{needle:?} missing:\n{out}");
    }
    ensure!(!out.contains("monitor talker"), "monitor samples are left out of the timeline:\n{out}");
    ensure!(!out.contains("quiet unless --nocapture") && !out.contains("stderr too"), "{out}");
    let (code, out) = runner_features(&["--nocapture", "--exact", "prints_and_passes"], &[])?;
    ensure!(code == Some(0), "exit {code:?}:\n{out}");
    ensure!(out.contains("quiet unless --nocapture") && out.contains("stderr too"), "{out}");
    Ok(())
}

/// `retries = N`: a test that fails and then passes is reported FLAKY; one that keeps failing
/// fails with the count of attempts. `serial`: no other test runs during it, even with 3
/// test threads.
#[chaos_test(tags = ["ergonomics", "runner"], timeout = "10m")]
fn retries_report_flaky_and_serial_runs_alone() -> ChaosResult {
    let junit = std::env::temp_dir().join(format!("chaos-ergo-junit-{}.xml", std::process::id()));
    let junit_arg = junit.to_string_lossy().into_owned();
    let (code, out) = runner_features(&["--junit", &junit_arg], &[("CHAOS_TAGS", "retry")])?;
    let xml = std::fs::read_to_string(&junit);
    let _ = std::fs::remove_file(&junit);
    let xml = xml?;
    // As nextest writes them: the flaky pass has a flakyFailure, the failure its rerunFailure.
    ensure!(xml.matches("<flakyFailure").count() == 1 && xml.contains("transient failure on attempt 1"), "{xml}");
    ensure!(xml.matches("<rerunFailure").count() == 1 && xml.matches("<failure").count() == 1, "{xml}");
    ensure!(
        out.contains("FLAKY: 1 test(s) passed only after a retry:\n    fails_once (failed 1 time(s) first)"),
        "{out}"
    );
    ensure!(code == Some(101), "always_fails fails the run: exit {code:?}:\n{out}");
    ensure!(out.contains("FLAKY: fails_once failed 1 time(s) before passing on attempt 2"), "{out}");
    ensure!(out.contains("test fails_once ... ok") || out.contains("test fails_once   ... ok"), "{out}");
    ensure!(out.contains("failed on all 2 attempts"), "{out}");
    for _ in 0..3 {
        let (code, out) = runner_features(&["--test-threads", "3"], &[("CHAOS_TAGS", "serial-check")])?;
        ensure!(code == Some(0), "exit {code:?}:\n{out}");
    }
    Ok(())
}

/// `.seed_data(dir)` copies a directory into the fixture's data dir at start;
/// `checkpoint_data()` / `restore_data()` undo what a scenario did to it (files changed,
/// added, removed), with ownership kept for `.user(..)`.
#[chaos_test(tags = ["ergonomics", "process"], timeout = "30s", requires = ["root", "cgroups"])]
async fn data_dir_seed_checkpoint_restore(cx: &mut Chaos) -> ChaosResult {
    let seed = cx.sandbox().temp_dir().join("seed");
    std::fs::create_dir_all(seed.join("sub"))?;
    std::fs::write(seed.join("sub/table"), "v1")?;
    let p = cx.start(Command::new("sleep").name("db").arg("60").user("www-data").seed_data(&seed)).await?;
    let table = p.data_dir().join("sub/table");
    ensure!(std::fs::read_to_string(&table)? == "v1", "seeded");
    use std::os::unix::fs::MetadataExt;
    ensure!(std::fs::metadata(&table)?.uid() == 33, "seeded files belong to the fixture's user");
    p.checkpoint_data()?;
    std::fs::write(&table, "corrupt")?;
    std::fs::write(p.data_dir().join("junk"), "x")?;
    p.restore_data()?;
    ensure!(std::fs::read_to_string(&table)? == "v1", "restored");
    ensure!(!p.data_dir().join("junk").exists(), "files added after the checkpoint are removed");
    ensure!(std::fs::metadata(&table)?.uid() == 33, "ownership kept");
    Ok(())
}

/// `.restore_data(&p)` on a scenario: the data dir is checkpointed when it starts and, when it
/// ends, the program is stopped, the data restored and the program started again; so a
/// scenario that corrupts the data (here the program's SIGTERM handler overwrites its table
/// and adds a file) does not leak into the next one. The data was seeded by a
/// `seed_with` hook that ran once, as the fixture's user.
#[chaos_test(tags = ["ergonomics", "process"], timeout = "60s", requires = ["root", "cgroups"])]
async fn a_scenario_that_corrupts_data_leaves_it_restored_for_the_next(cx: &mut Chaos) -> ChaosResult {
    let db = cx
        .start(
            Command::new("sh")
                .name("db")
                .user("www-data")
                .seed_with("sh", ["-c", "echo v1 > {data}/table; echo seeded >> {data}/seed.log"])
                .args([
                    "-c",
                    "trap 'echo corrupt > {data}/table; touch {data}/junk; echo corrupted; exit 1' TERM; \
                     echo started; while :; do sleep 0.1; done",
                ])
                .ready(Probe::log_line("started")),
        )
        .await?;
    let table = db.data_dir().join("table");
    use std::os::unix::fs::MetadataExt;
    ensure!(std::fs::metadata(&table)?.uid() == 33, "the seed hook ran as www-data");
    for round in 1..=2 {
        let pid = db.pid().context("db runs")?;
        cx.scenario(&format!("corrupting SIGTERM {round}"))
            .restore_data(&db)
            .inject(Fault::kill(db.main()).signal(Signal::SIGTERM))
            .expect(Criterion::exits_within(Duration::from_secs(5)).of(&db))
            .run()
            .await?;
        let log = std::fs::read_to_string(db.stdout_log())?;
        ensure!(log.matches("corrupted").count() >= round, "the scenario corrupted the data:\n{log}");
        ensure!(std::fs::read_to_string(&table)? == "v1\n", "round {round}: the next scenario sees the data restored");
        ensure!(!db.data_dir().join("junk").exists(), "round {round}: files the scenario added are removed");
        ensure!(std::fs::metadata(&table)?.uid() == 33, "ownership kept");
        ensure!(db.pid().is_some_and(|p| p != pid) && db.exit_status().is_none(), "db runs again");
    }
    ensure!(std::fs::read_to_string(db.data_dir().join("seed.log"))? == "seeded\n", "the seed hook ran once");
    Ok(())
}

/// Tests whose faults touch the whole machine (CPU burn on every CPU): they must run alone.
const MACHINE_WIDE: &[&str] = &[
    "resources::cpu_burn_runs_in_its_own_fixture_and_stops_at_once",
    "resources::faults_never_cleared_are_undone_by_teardown_from_the_journal",
    "resources::snakepit_cpu_saturated_requests_continue_slower",
];

/// The shipped `.config/nextest.toml` has a `ci` profile writing JUnit and retrying (flaky
/// reported), and puts the machine-wide tests in a one-at-a-time `machine-wide` group (its
/// filters match them); on the libtest path the same tests are `#[chaos_test(serial)]`.
#[chaos_test(tags = ["ergonomics", "runner"])]
fn nextest_config_and_serial_cover_machine_wide_tests() -> ChaosResult {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".config/nextest.toml");
    let config: toml::Table = std::fs::read_to_string(&path)?.parse()?;
    let get = |keys: &[&str]| -> Option<toml::Value> {
        let mut v = toml::Value::Table(config.clone());
        for k in keys {
            v = v.get(k)?.clone();
        }
        Some(v)
    };
    ensure!(get(&["profile", "ci", "junit", "path"]).is_some(), "the ci profile writes JUnit");
    ensure!(get(&["profile", "ci", "retries"]).and_then(|v| v.as_integer()).unwrap_or(0) >= 1, "ci retries");
    ensure!(
        get(&["test-groups", "machine-wide", "max-threads"]).and_then(|v| v.as_integer()) == Some(1),
        "machine-wide runs one test at a time"
    );
    let find = regex::Regex::new(r"test\(/([^/]+)/\)")?;
    for profile in ["default", "ci"] {
        let overrides = get(&["profile", profile, "overrides"]).context("overrides")?;
        let filters: Vec<regex::Regex> = overrides
            .as_array()
            .context("overrides is an array")?
            .iter()
            .filter(|o| o.get("test-group").and_then(|g| g.as_str()) == Some("machine-wide"))
            .filter_map(|o| o.get("filter").and_then(|f| f.as_str()).map(str::to_string))
            .flat_map(|f| find.captures_iter(&f).map(|c| c[1].to_string()).collect::<Vec<_>>())
            .map(|r| regex::Regex::new(&r))
            .collect::<Result<_, _>>()?;
        for name in MACHINE_WIDE {
            ensure!(filters.iter().any(|r| r.is_match(name)), "{profile}: {name} is not in the machine-wide group");
        }
    }
    for name in MACHINE_WIDE {
        let (module, function) = name.rsplit_once("::").context("module::name")?;
        let d = chaos_harness::inventory::iter::<chaos_harness::__private::TestDescriptor>
            .into_iter()
            .find(|d| d.name == function && d.module_path.ends_with(module))
            .with_context(|| format!("{name} is a test of this suite"))?;
        ensure!(d.serial, "{name} must be #[chaos_test(serial)] on the libtest path");
    }
    Ok(())
}

/// Reads a scenario file's text (no process environment) and returns its one spec.
fn spec_from_file_text(
    name: &str,
    text: &str,
    vars: &[(&str, String)],
) -> anyhow::Result<chaos_harness::scenario::ScenarioSpec> {
    use chaos_harness::scenario::file::{Options, parse_str};
    let mut opts = Options { no_process_env: true, ..Options::default() };
    opts.vars.extend(vars.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let mut loaded = parse_str(name, text, &opts).map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(loaded.len() == 1, "{name}: {} scenarios", loaded.len());
    Ok(loaded.remove(0).spec)
}

/// The main pid of the fixture `name` that a bound spec started.
fn main_pid_of(cx: &Chaos, name: &str) -> anyhow::Result<i32> {
    let t = cx.fixtures().into_iter().find(|t| t.name() == name).context("the fixture was not started")?;
    Ok(t.main().context("the fixture has no main process")?.pid)
}

/// A scenario file's command target with `user = "nobody"`: the program the file starts runs
/// with nobody's real and effective uid, read from /proc (the key was refused before).
#[chaos_test(tags = ["ergonomics", "process", "files"], timeout = "30s", requires = ["root", "cgroups"])]
async fn file_command_target_runs_as_nobody(cx: &mut Chaos) -> ChaosResult {
    let spec = spec_from_file_text(
        "as-nobody.chaos.toml",
        "[target.app]\ncommand = [\"sleep\", \"60\"]\nuser = \"nobody\"\n\n[[step]]\nwait = \"10ms\"\n",
        &[],
    )?;
    if let Err(e) = cx.run_spec(&spec).await? {
        anyhow::bail!("{e}");
    }
    let pid = main_pid_of(cx, "app")?;
    let nobody = nix::unistd::User::from_name("nobody")?.context("no user nobody on this machine")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let uids: Vec<u32> = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .context("no Uid: line")?
        .split_whitespace()
        .filter_map(|u| u.parse().ok())
        .collect();
    let want = nobody.uid.as_raw();
    ensure!(uids.len() == 4 && uids.iter().all(|u| *u == want), "uids of pid {pid}: {uids:?}, want all {want}");
    Ok(())
}

/// A scenario file's command target with `netns = "zone"` (a `netns` target of the same file)
/// runs in that namespace: its `/proc/PID/ns/net` differs from the harness's, and it cannot
/// reach a port listening on the host's loopback, which the same program outside reaches.
/// With `user = "nobody"` too: the namespace is entered before the uid is dropped.
#[chaos_test(tags = ["ergonomics", "network", "files"], timeout = "30s", requires = ["root", "cgroups", "netns", "python3"])]
async fn file_command_target_runs_in_a_netns(cx: &mut Chaos) -> ChaosResult {
    let host = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = host.local_addr()?.port();
    let probe = "import socket,sys,time\n\
        try:\n    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2).close(); print('connect ok', flush=True)\n\
        except OSError as e:\n    print('connect failed', e, flush=True)\n\
        time.sleep(60)";
    let text = format!(
        "[target.zone]\nkind = \"netns\"\n\n\
         [target.inside]\ncommand = [\"python3\", \"-c\", {probe:?}, \"${{HOST_PORT}}\"]\nnetns = \"zone\"\nuser = \"nobody\"\nready = {{ log_line = \"^connect \" }}\n\n\
         [target.outside]\ncommand = [\"python3\", \"-c\", {probe:?}, \"${{HOST_PORT}}\"]\nready = {{ log_line = \"^connect \" }}\n\n\
         [[step]]\nwait = \"10ms\"\n"
    );
    let spec = spec_from_file_text("in-netns.chaos.toml", &text, &[("HOST_PORT", port.to_string())])?;
    if let Err(e) = cx.run_spec(&spec).await? {
        anyhow::bail!("{e}");
    }
    let logs = cx.sandbox().temp_dir().join("logs");
    let inside = std::fs::read_to_string(logs.join("inside.stdout.log"))?;
    let outside = std::fs::read_to_string(logs.join("outside.stdout.log"))?;
    ensure!(outside.starts_with("connect ok"), "outside the namespace: {outside:?}");
    ensure!(inside.starts_with("connect failed"), "inside the namespace: {inside:?}");
    let ns_of = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/net"));
    let (inside_pid, outside_pid) = (main_pid_of(cx, "inside")?, main_pid_of(cx, "outside")?);
    ensure!(ns_of(&inside_pid.to_string())? != ns_of("self")?, "pid {inside_pid} is in the harness's namespace");
    ensure!(ns_of(&outside_pid.to_string())? == ns_of("self")?, "the control left the harness's namespace");
    drop(host);
    Ok(())
}

/// Friction 11: the workspace builds dependencies with an optimisation level of its own, so a
/// user crate sharing this `target/` without it rebuilds them all. The guide and the README
/// must say so with the exact setting the workspace uses (this fails when one changes without
/// the other).
#[chaos_test(tags = ["ergonomics", "docs"], timeout = "10s")]
fn the_dependency_opt_level_is_documented_as_the_workspace_sets_it() -> ChaosResult {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest: toml::Value = toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml"))?)?;
    let level = manifest
        .get("profile")
        .and_then(|p| p.get("dev"))
        .and_then(|d| d.get("package"))
        .and_then(|p| p.get("*"))
        .and_then(|s| s.get("opt-level"))
        .and_then(toml::Value::as_integer);
    let guide = std::fs::read_to_string(root.join("docs/guide.md"))?;
    let readme = std::fs::read_to_string(root.join("README.md"))?;
    match level {
        Some(n) => {
            let block = format!("[profile.dev.package.\"*\"]\nopt-level = {n}");
            ensure!(guide.contains(&block), "docs/guide.md must show the workspace's setting:\n{block}");
            ensure!(readme.contains("opt-level"), "README.md must mention the dependency opt-level");
        }
        None => ensure!(
            !guide.contains("[profile.dev.package.\"*\"]"),
            "the workspace no longer sets a dependency opt-level: drop the advice from docs/guide.md"
        ),
    }
    Ok(())
}
