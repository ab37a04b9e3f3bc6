//! Scenario files (`*.chaos.toml`): good files read into the same spec model (plan, JSON round
//! trip, templates), and a table of bad files, each checked for the exact file:line:column
//! and the suggestion in its message. None may panic.

use chaos_harness::scenario::ScenarioSpec;
use chaos_harness::scenario::file::{self, FileErrors, Options};

fn opts() -> Options {
    let mut o = Options { no_process_env: true, ..Options::default() };
    o.vars.insert("PORT".into(), "8765".into());
    o
}

const WEB: &str = "[target.web]\ncommand = [\"sleep\", \"60\"]\n";

#[test]
fn a_good_file_reads_into_a_spec_that_plans_and_round_trips() {
    let src = r#"
name = "kill sleep"
tags = ["process", "generic"]
timeout = "30s"
repeat = 2

[target.web]
command = ["python3", "-m", "http.server", "${PORT}", "--bind", "127.0.0.1"]
env = { PYTHONUNBUFFERED = "1" }
ready = { tcp = "127.0.0.1:${PORT}" }
ready_timeout = "15s"

[[step]]
wait = "500ms"

[[step]]
name = "the kill"
inject = "kill"
target = "web.main"
signal = "SIGTERM"

[[step]]
parallel = [{ wait = "1s" }, { expect = "gone", target = "web.main", within = "2s" }]

[[expect]]
criterion = "exits_within"
target = "web"
eventually = "5s"

[[expect]]
criterion = "process_count"
target = "web.all"
reaches = 0
phase = "fault"

[[guard]]
kind = "mem_available_below"
percent = 5
"#;
    let loaded = file::parse_str("kill.chaos.toml", src, &opts()).unwrap();
    assert_eq!(loaded.len(), 1);
    let l = &loaded[0];
    assert_eq!((l.test_name.as_str(), l.repeat), ("kill", 2));
    let spec = &l.spec;
    assert_eq!(spec.name, "kill sleep");
    assert_eq!(spec.tags, ["process", "generic"]);
    let web = &spec.targets["web"];
    assert_eq!(web.kind, "command");
    assert_eq!(web.params.str("program").unwrap(), Some("python3"));
    assert_eq!(web.params.strings("args").unwrap().unwrap()[2], "8765");
    assert_eq!(web.params.str("ready_tcp").unwrap(), Some("127.0.0.1:8765"));
    let plan = spec.plan().unwrap();
    assert!(plan[1].starts_with("wait 500ms"), "{plan:#?}");
    assert!(plan[2].starts_with("inject kill"), "{plan:#?}");
    // phase = "fault": right after the inject; the recovery one after the last step.
    assert!(plan[3].starts_with("expect process_count"), "{plan:#?}");
    assert!(plan[4].starts_with("in parallel: wait 1s; expect gone"), "{plan:#?}");
    assert!(plan[5].starts_with(r#"expect exits_within {"target":"web","within":"5s"}"#), "{plan:#?}");
    let json = serde_json::to_string(spec).unwrap();
    let back: ScenarioSpec = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, spec);
}

#[test]
fn a_template_yields_one_scenario_per_combination_each_with_its_name() {
    let src = "[params]\nsig = [\"SIGTERM\", \"SIGKILL\"]\nn = [1, 2]\n\n[target.web]\ncommand = [\"sleep\", \"60\"]\n\n[[step]]\ninject = \"kill\"\ntarget = \"web.main\"\nsignal = \"${sig}\"\n\n[[step]]\nwait = \"${n}s\"\n";
    let loaded = file::parse_str("t.chaos.toml", src, &opts()).unwrap();
    let names: Vec<&str> = loaded.iter().map(|l| l.test_name.as_str()).collect();
    assert_eq!(names, ["t[n=1,sig=SIGTERM]", "t[n=1,sig=SIGKILL]", "t[n=2,sig=SIGTERM]", "t[n=2,sig=SIGKILL]"]);
    assert!(loaded[1].spec.plan().unwrap()[1].contains("\"signal\":\"SIGKILL\""));
    assert!(loaded[3].spec.plan().unwrap()[2].starts_with("wait 2s"));
}

#[test]
fn sizes_rates_links_and_resource_faults_read() {
    let src = r#"
[target.pit]
kind = "snakepit"
pool_size = 2
bridge_link = true

[target.db]
kind = "link"
upstream = "127.0.0.1:5432"

[load]
kind = "constant_rate"
rate = "50/s"
call = { kind = "execute", target = "pit", tool = "echo" }

[[step]]
inject = "latency"
target = "pit.bridge"
latency = "200ms"

[[step]]
inject = "limit_data"
target = "db"
bytes = "64KiB"

[[step]]
inject = "memory_limit"
target = "pit"
bytes = "256MiB"
"#;
    let l = file::parse_str("n.chaos.toml", src, &opts()).unwrap();
    let spec = &l[0].spec;
    assert_eq!(spec.load.as_ref().unwrap().params.u64("rate").unwrap(), Some(50));
    let plan = spec.plan().unwrap();
    assert!(plan.iter().any(|p| p.contains(r#""bytes":"64KiB""#)), "{plan:#?}");
    assert!(plan.iter().any(|p| p.starts_with("inject memory_limit")), "{plan:#?}");
}

fn errors(name: &str, src: &str) -> FileErrors {
    match file::parse_str(name, src, &opts()) {
        Ok(l) => panic!("{name}: expected errors, read {} scenario(s)", l.len()),
        Err(e) => e,
    }
}

/// (case, file text, expected `file:line:column: message` first line, text the error must contain)
fn bad_cases() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let w = WEB;
    vec![
        ("unknown top key", format!("nmae = \"x\"\n{w}"), "t.chaos.toml:1:1: unknown key `nmae`", "did you mean `name`?"),
        ("unknown fault", format!("{w}[[step]]\ninject = \"kil\"\ntarget = \"web.main\"\n"), "t.chaos.toml:4:10: unknown fault `kil`, did you mean `kill`?", "expected one of:"),
        ("unknown criterion", format!("{w}[[step]]\nexpect = \"no_orphan\"\ntarget = \"web\"\n"), "t.chaos.toml:4:10: unknown criterion `no_orphan`, did you mean `no_orphans`?", "expected one of:"),
        ("unknown parameter", format!("{w}[[step]]\ninject = \"kill\"\ntarget = \"web.main\"\nsignl = \"SIGTERM\"\n"), "t.chaos.toml:6:1: fault `kill` has no parameter `signl`", "did you mean `signal`?"),
        ("bad duration", format!("{w}[[step]]\nwait = \"5 parsecs\"\n"), "t.chaos.toml:4:8: `step[0].wait`: \"5 parsecs\" is not a duration", "\"500ms\""),
        ("duration as a number", format!("timeout = 5\n{w}"), "t.chaos.toml:1:11: `timeout`: expected a duration string, found 5", "write timeout = \"5s\""),
        ("selector naming a missing target", format!("{w}[[step]]\ninject = \"pause\"\ntarget = \"wbe.main\"\n"), "t.chaos.toml:5:10: `wbe` is not a target of this scenario", "did you mean `web`?"),
        ("duplicate step names", format!("{w}[[step]]\nname = \"a\"\nwait = \"1s\"\n[[step]]\nname = \"a\"\nwait = \"1s\"\n"), "t.chaos.toml:7:8: duplicate step name `a` (first used at 4:8)", "its own name"),
        ("unknown target kind", "[target.pit]\nkind = \"snakepitt\"\n".into(), "t.chaos.toml:2:8: unknown target kind `snakepitt`, did you mean `snakepit`?", "command"),
        ("unknown command key", "[target.web]\ncommand = [\"sleep\", \"1\"]\ncwdd = \"/tmp\"\n".into(), "t.chaos.toml:3:1: unknown key `cwdd` in a command target", "did you mean `cwd`?"),
        ("unknown readiness probe", "[target.web]\ncommand = [\"sleep\", \"1\"]\nready = { tpc = \"127.0.0.1:1\" }\n".into(), "t.chaos.toml:3:11: unknown readiness probe `tpc`", "did you mean `tcp`?"),
        ("missing ${VAR}", "[target.web]\ncommand = [\"sleep\", \"${NOPE_SECONDS}\"]\n".into(), "t.chaos.toml:2:21: `${NOPE_SECONDS}` is not set", "${NOPE_SECONDS:-default}"),
        ("unknown ${param} near a param", "[params]\nport = [1, 2]\n[target.web]\ncommand = [\"sleep\", \"${prot}\"]\n".into(), "t.chaos.toml:4:21: `${prot}` is not set", "did you mean `port`?"),
        ("unknown phase", format!("{w}[[step]]\ninject = \"kill\"\ntarget = \"web.main\"\n[[expect]]\ncriterion = \"gone\"\ntarget = \"web.main\"\nphase = \"basline\"\n"), "t.chaos.toml:9:9: unknown phase `basline`, did you mean `baseline`?", "baseline, fault or recovery"),
        ("two actions in a step", format!("{w}[[step]]\ninject = \"kill\"\nwait = \"1s\"\ntarget = \"web.main\"\n"), "t.chaos.toml:5:1: a step has one action, this one has inject and wait", "split it"),
        ("misspelt action", format!("{w}[[step]]\ninjct = \"kill\"\n"), "t.chaos.toml:4:1: unknown key `injct`; a step needs an action", "did you mean `inject`?"),
        ("unknown guard", format!("{w}[[guard]]\nkind = \"mem_available_bellow\"\n"), "t.chaos.toml:4:8: unknown guard `mem_available_bellow`, did you mean `mem_available_below`?", "load_average_above"),
        ("invalid TOML", "name = \n".into(), "t.chaos.toml:1:8: invalid TOML", "TOML syntax"),
        ("tags not a list", format!("tags = \"slow\"\n{w}"), "t.chaos.toml:1:8: `tags`: expected a list of strings", "tags = [\"process\", \"slow\"]"),
        ("repeat zero", format!("repeat = 0\n{w}"), "t.chaos.toml:1:10: `repeat`: expected a whole number from 1 to 10000", "repeat = 3"),
        ("unknown load kind", "[target.pit]\nkind = \"snakepit\"\n[load]\nkind = \"constant_rat\"\nrate = 5\ncall = { kind = \"execute\", target = \"pit\", tool = \"echo\" }\n".into(), "t.chaos.toml:4:8: unknown load kind `constant_rat`, did you mean `constant_rate`?", "closed_loop"),
        ("bad rate", "[target.pit]\nkind = \"snakepit\"\n[load]\nrate = \"fast\"\ncall = { kind = \"execute\", target = \"pit\", tool = \"echo\" }\n".into(), "t.chaos.toml:4:8: `load.rate`: expected a rate like \"200/s\", found \"fast\"", "rate = \"200/s\""),
        ("unknown call", "[target.pit]\nkind = \"snakepit\"\n[load]\nrate = 5\ncall = { kind = \"execut\", target = \"pit\", tool = \"echo\" }\n".into(), "t.chaos.toml:5:17: unknown call `execut`, did you mean `execute`?", "expected one of"),
        ("wrong parameter type", format!("{w}[[step]]\ninject = \"kill\"\ntarget = \"web.main\"\nsignal = 9\n"), "t.chaos.toml:6:10: `signal`: expected a string, found the number 9", "signal = \""),
        ("missing required parameter", format!("{w}[[step]]\ninject = \"kill\"\n"), "t.chaos.toml:3:1: fault `kill` needs parameter `target`", "add target = ..."),
        ("extra key in a wait step", format!("{w}[[step]]\nwait = \"1s\"\ntarget = \"web\"\n"), "t.chaos.toml:5:1: unknown key `target` in a `wait` step", "expected one of: wait"),
        ("eventually on a criterion without within", format!("{w}[[expect]]\ncriterion = \"error_rate\"\neventually = \"5s\"\n"), "t.chaos.toml:5:1: criterion `error_rate` has no `within`, so `eventually` does not apply", "at_most"),
        ("bad size", format!("{w}[[step]]\ninject = \"memory_limit\"\ntarget = \"web\"\nbytes = \"64 furlongs\"\n"), "t.chaos.toml:6:9: `bytes`: expected a size like \"64MiB\"", "MiB"),
        ("empty template list", format!("[params]\nn = []\n{w}"), "t.chaos.toml:2:5: `params.n` is an empty list", "at least one value"),
        ("target without command or kind", "[target.web]\ncwd = \"/tmp\"\n".into(), "t.chaos.toml:1:1: target `web` has neither `command` nor `kind`", "command = ["),
        ("steps instead of step", format!("{w}[[steps]]\nwait = \"1s\"\n"), "t.chaos.toml:3:3: unknown key `steps`", "did you mean `step`?"),
        ("profile in a scenario file", format!("{w}[profile.ci]\ntimeout = \"1s\"\n"), "t.chaos.toml:3:2: unknown key `profile`", "chaos.toml"),
        ("unknown snakepit parameter", "[target.pit]\nkind = \"snakepit\"\npool_sise = 2\n".into(), "t.chaos.toml:3:1: fixture `snakepit` has no parameter `pool_sise`", "did you mean `pool_size`?"),
        ("too many template combinations", "[params]\na = [1, 2, 3, 4, 5, 6, 7, 8]\nb = [1, 2, 3, 4, 5, 6, 7, 8]\nc = [1, 2, 3, 4, 5, 6, 7, 8]\n".into(), "t.chaos.toml:4:5: [params] yields more than 256 combinations", "fewer values"),
        ("netns naming a missing target", "[target.zone]\nkind = \"netns\"\n[target.web]\ncommand = [\"sleep\", \"1\"]\nnetns = \"zome\"\n".into(), "t.chaos.toml:5:9: `zome` is not a target of this scenario", "did you mean `zone`?"),
        ("netns naming a command target", "[target.db]\ncommand = [\"sleep\", \"1\"]\n[target.web]\ncommand = [\"sleep\", \"1\"]\nnetns = \"db\"\n".into(), "t.chaos.toml:5:9: `db` is a target of kind `command`, not a network namespace", "kind = \"netns\""),
        ("user not a string", "[target.web]\ncommand = [\"sleep\", \"1\"]\nuser = 65534\n".into(), "t.chaos.toml:3:8: `target.web.user`: expected a string, found integer", "user = \"65534\""),
        ("link without upstream", "[target.db]\nkind = \"link\"\n".into(), "t.chaos.toml:1:1: fixture `link` needs parameter `upstream`", "add upstream = ..."),
    ]
}

#[test]
fn bad_files_name_file_line_column_and_the_nearest_valid_name() {
    let cases = bad_cases();
    assert!(cases.len() >= 25);
    let mut failures = Vec::new();
    for (case, src, first, contains) in cases {
        let e =
            std::panic::catch_unwind(|| errors("t.chaos.toml", &src)).unwrap_or_else(|_| panic!("{case}: panicked"));
        let text = e.0[0].to_string();
        let line1 = text.lines().next().unwrap_or_default();
        if !line1.starts_with(first) || !text.contains(contains) {
            failures.push(format!("{case}:\n  expected {first:?} ... {contains:?}\n  got {text:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn several_errors_are_reported_at_once() {
    let src =
        format!("nmae = \"x\"\n{WEB}[[step]]\ninject = \"kil\"\ntarget = \"web.main\"\n[[step]]\nwait = \"soon\"\n");
    let e = errors("t.chaos.toml", &src);
    let firsts: Vec<String> = e.0.iter().map(|x| format!("{}:{}", x.line, x.column)).collect();
    assert_eq!(firsts, ["1:1", "5:10", "8:8"], "{e}");
}

#[test]
fn extends_merges_a_base_and_detects_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.chaos.toml");
    std::fs::write(&base, format!("tags = [\"base\"]\ntimeout = \"10s\"\n{WEB}")).unwrap();
    let child = dir.path().join("child.chaos.toml");
    std::fs::write(
        &child,
        "extends = \"base.chaos.toml\"\ntimeout = \"20s\"\n[[step]]\ninject = \"kill\"\ntarget = \"web.main\"\n",
    )
    .unwrap();
    let l = file::load(&child, &opts()).unwrap();
    assert_eq!(l[0].spec.tags, ["base"]);
    assert_eq!(l[0].spec.timeout, Some(std::time::Duration::from_secs(20)));
    assert!(l[0].spec.targets.contains_key("web"));

    let a = dir.path().join("a.chaos.toml");
    let b = dir.path().join("b.chaos.toml");
    std::fs::write(&a, "extends = \"b.chaos.toml\"\n").unwrap();
    std::fs::write(&b, "\nextends = \"a.chaos.toml\"\n").unwrap();
    let e = file::load(&a, &opts()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("b.chaos.toml:2:11: `extends` forms a cycle"), "{text}");
}

#[test]
fn garbage_never_panics() {
    let samples = [
        "",
        "=",
        "[[step]]",
        "[[step]]\nparallel = 1",
        "[[step]]\nparallel = [1, \"x\"]",
        "[target]\nx = 1",
        "target = 1",
        "step = 3",
        "[load]\ncall = 1",
        "[[expect]]",
        "[[guard]]\nkind = 1",
        "[params]\na = [[1]]",
        "name = \"${\"",
        "[target.a]\ncommand = []",
        "[target.a]\ncommand = [1]\nenv = 1\nready = 2",
    ];
    for s in samples {
        let r = std::panic::catch_unwind(|| file::parse_str("g.chaos.toml", s, &opts()));
        assert!(r.is_ok(), "panicked on {s:?}");
    }
}

/// `[scenario.ID]`: one file holds several scenarios; each is the file's keys with its own
/// over them (targets merge, tags add up, steps replace), named `stem::ID`.
#[test]
fn a_file_with_scenario_tables_holds_several_scenarios() {
    let src = r#"
tags = ["family"]
timeout = "30s"

[target.web]
command = ["sleep", "60"]

[[step]]
wait = "1s"

[scenario.first]
tags = ["fast"]

[scenario.second]
name = "the second"
tags = ["slow"]
timeout = "2m"

[scenario.second.target.db]
command = ["sleep", "61"]

[[scenario.second.step]]
inject = "kill"
target = "db.main"
"#;
    let loaded = file::parse_str("fam.chaos.toml", src, &opts()).unwrap();
    let names: Vec<&str> = loaded.iter().map(|l| l.test_name.as_str()).collect();
    assert_eq!(names, ["fam::first", "fam::second"]);
    let (a, b) = (&loaded[0].spec, &loaded[1].spec);
    assert_eq!((a.name.as_str(), b.name.as_str()), ("fam::first", "the second"));
    assert_eq!(a.tags, ["family", "fast"]);
    assert_eq!(b.tags, ["family", "slow"]);
    assert_eq!(a.timeout, Some(std::time::Duration::from_secs(30)));
    assert_eq!(b.timeout, Some(std::time::Duration::from_secs(120)));
    assert_eq!(a.targets.keys().collect::<Vec<_>>(), ["web"]);
    assert_eq!(b.targets.keys().collect::<Vec<_>>(), ["db", "web"]);
    assert!(a.plan().unwrap().iter().any(|s| s.starts_with("wait 1s")), "inherits the file's steps");
    assert!(b.plan().unwrap().iter().any(|s| s.starts_with("inject kill")), "{:?}", b.plan());
    assert!(!b.plan().unwrap().iter().any(|s| s.starts_with("wait 1s")), "its own steps replace the file's");

    // `params` inside a scenario table, and a bad fault name inside one, are errors at their place.
    let bad = "[target.web]\ncommand = [\"sleep\", \"60\"]\n[scenario.x]\nparams = { a = [1] }\n[[scenario.x.step]]\ninject = \"kil\"\ntarget = \"web.main\"\n";
    let errors = file::parse_str("bad.chaos.toml", bad, &opts()).unwrap_err().0;
    let text: Vec<String> = errors.iter().map(|e| format!("{}:{} {}", e.line, e.column, e.message)).collect();
    assert!(text.iter().any(|t| t.starts_with("4:1 `params` belongs at the top")), "{text:?}");
    assert!(text.iter().any(|t| t.starts_with("6:10 unknown fault `kil`")), "{text:?}");
}

/// `kind = "ramp"`: an open loop from `from` to `to` per second over `over`, read into the spec
/// and built into the load the engine runs (its description round-trips); `to` and `over` are
/// required.
#[test]
fn a_ramp_load_reads_and_builds() {
    let src = format!(
        "{WEB}[load]\nkind = \"ramp\"\nfrom = \"5/s\"\nto = 80\nover = \"40s\"\ntimeout = \"5s\"\ncall = {{ kind = \"execute\", target = \"web\", tool = \"echo\" }}\n[[step]]\nwait = \"1s\"\n"
    );
    let spec = match file::parse_str("r.chaos.toml", &src, &opts()) {
        Ok(mut l) => l.remove(0).spec,
        // `execute` wants a snakepit target; the load shape is what this test is about.
        Err(e) => panic!("{e}"),
    };
    let l = spec.load.as_ref().unwrap();
    assert_eq!(l.kind, "ramp");
    assert_eq!((l.params.u64("from").unwrap(), l.params.u64("to").unwrap()), (Some(5), Some(80)));
    assert_eq!(l.params.duration("over").unwrap(), Some(std::time::Duration::from_secs(40)));
    let load = chaos_harness::load::Load::from_described(&chaos_harness::params::Described::new(
        l.kind.clone(),
        l.params.clone(),
    ))
    .unwrap();
    let d = load.described();
    assert_eq!((d.kind.as_str(), d.params.u64("to").unwrap()), ("ramp", Some(80)));
    let bad = src.replace("over = \"40s\"\n", "");
    let errors = file::parse_str("r.chaos.toml", &bad, &opts()).unwrap_err().0;
    assert!(errors.iter().any(|e| e.message == "a ramp load needs `over`"), "{errors:?}");
}
