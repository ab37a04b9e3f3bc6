//! The built-in registry entries: the `command` fixture, process faults, and the process,
//! load, resource (OOM kills, monitored RSS and fds) and network criteria. (Snakepit's are in
//! `snakepit.rs`.)

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::{
    Bindings, CriterionEntry, FaultEntry, FixtureEntry, Param, ParamKind as K, StartedFixture, need_duration, need_str,
    param_err,
};
use crate::BoxFuture;
use crate::Error;
use crate::criteria::Criterion;
use crate::fault::Fault;
use crate::fixture::{Command, Fixture, Probe};
use crate::params::Params;
use crate::sandbox::Sandbox;

const TARGET_SEL: Param = Param::required("target", K::Selector, "which processes: <fixture>.<role>, e.g. web.main");
const TARGET_FIX: Param = Param::required("target", K::Fixture, "the fixture's name");

fn signal(p: &Params) -> Result<Signal, Error> {
    let s = need_str(p, "signal")?;
    Signal::from_str(s).map_err(|_| Error::Config {
        what: format!("signal `{s}`"),
        cause: "not a signal name".into(),
        fix: "write it like \"SIGKILL\", \"SIGTERM\", \"SIGSTOP\"".into(),
    })
}

fn kill(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    let mut f = Fault::kill(b.selection(need_str(p, "target")?)?).signal(signal(p)?);
    if let Some(c) = p.bool("confirm_exit").map_err(param_err)? {
        f = f.confirm_exit(c);
    }
    Ok(f.confirm_timeout(need_duration(p, "confirm_timeout")?).into())
}

fn kill_tree(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    Ok(Fault::kill_tree(b.handle(need_str(p, "target")?)?).into())
}

fn pause(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    Ok(Fault::pause(b.selection(need_str(p, "target")?)?).into())
}

fn freeze(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    Ok(Fault::freeze(b.handle(need_str(p, "target")?)?).into())
}

fn crash_loop(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    let f = Fault::crash_loop(b.selection(need_str(p, "target")?)?);
    Ok(f.every(need_duration(p, "every")?).lasting(need_duration(p, "lasting")?).into())
}

fn restart(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    Ok(Fault::restart(b.handle(need_str(p, "target")?)?).into())
}

inventory::submit! { FaultEntry {
    name: "kill",
    summary: "send a signal (SIGKILL by default) to the selected processes; confirmed by their exit (SIGKILL) or delivery",
    params: &[
        TARGET_SEL,
        Param::optional("signal", K::Signal, "SIGKILL", "the signal"),
        Param::maybe("confirm_exit", K::Bool, "confirm only once every target exited (default: only for SIGKILL)"),
        Param::optional("confirm_timeout", K::Duration, "5s", "how long to wait for the confirmation"),
    ],
    build: kill,
} }
inventory::submit! { FaultEntry {
    name: "kill_tree",
    summary: "SIGKILL every process of a fixture at once; confirmed when its cgroup is empty",
    params: &[TARGET_FIX, Param::optional("confirm_timeout", K::Duration, "5s", "how long to wait for the confirmation")],
    build: kill_tree,
} }
inventory::submit! { FaultEntry {
    name: "pause",
    summary: "SIGSTOP the selected processes until cleared (SIGCONT); confirmed by state T",
    params: &[TARGET_SEL],
    build: pause,
} }
inventory::submit! { FaultEntry {
    name: "freeze",
    summary: "freeze a fixture's cgroup until cleared; confirmed by reading the freezer state back",
    params: &[TARGET_FIX],
    build: freeze,
} }
inventory::submit! { FaultEntry {
    name: "crash_loop",
    summary: "SIGKILL the selection every `every` for `lasting`, each kill confirmed",
    params: &[
        TARGET_SEL,
        Param::optional("every", K::Duration, "500ms", "period between kills"),
        Param::optional("lasting", K::Duration, "5s", "how long the loop runs"),
    ],
    build: crash_loop,
} }
inventory::submit! { FaultEntry {
    name: "restart",
    summary: "stop the fixture and start it again on the same data; confirmed by a new ready main pid",
    params: &[TARGET_FIX],
    build: restart,
} }

fn within(p: &Params) -> Result<Duration, Error> {
    need_duration(p, "within")
}

const WITHIN_5S: Param =
    Param::optional("within", K::Duration, "5s", "how long it may take, from the fault's confirmation");

fn no_orphans(p: &Params, b: &dyn Bindings) -> Result<Criterion, Error> {
    Ok(Criterion::no_orphans().of(b.handle(need_str(p, "target")?)?).within(within(p)?).into())
}

fn gone(p: &Params, b: &dyn Bindings) -> Result<Criterion, Error> {
    Ok(Criterion::gone(b.selection(need_str(p, "target")?)?).within(within(p)?).into())
}

fn process_count(p: &Params, b: &dyn Bindings) -> Result<Criterion, Error> {
    let sel = b.selection(need_str(p, "target")?)?;
    let c = match (p.u64("reaches").map_err(param_err)?, p.u64("at_least").map_err(param_err)?) {
        (Some(n), None) => Criterion::process_count(sel).reaches(n as usize),
        (None, Some(n)) => Criterion::process_count(sel).at_least(n as usize),
        _ => {
            return Err(Error::Config {
                what: "criterion process_count".into(),
                cause: "it needs exactly one of `reaches` and `at_least`".into(),
                fix: "write reaches = 4 (exactly) or at_least = 4".into(),
            });
        }
    };
    Ok(c.within(within(p)?).into())
}

fn exits_within(p: &Params, b: &dyn Bindings) -> Result<Criterion, Error> {
    Ok(Criterion::exits_within(within(p)?).of(b.handle(need_str(p, "target")?)?).into())
}

fn respawned(p: &Params, b: &dyn Bindings) -> Result<Criterion, Error> {
    Ok(Criterion::respawned(b.selection(need_str(p, "target")?)?).within(within(p)?).into())
}

fn no_lost_requests(_: &Params, _: &dyn Bindings) -> Result<Criterion, Error> {
    Ok(Criterion::no_lost_requests().into())
}

fn error_rate(p: &Params, _: &dyn Bindings) -> Result<Criterion, Error> {
    let max = p.f64("at_most").map_err(param_err)?.unwrap_or(0.0);
    Ok(Criterion::error_rate().at_most(max).into())
}

fn oom_kills(p: &Params, b: &dyn Bindings) -> Result<Criterion, Error> {
    let mut c = Criterion::oom_kills(b.handle(need_str(p, "target")?)?);
    if let Some(n) = p.u64("at_least").map_err(param_err)? {
        c = c.at_least(n);
    }
    if let Some(n) = p.u64("at_most").map_err(param_err)? {
        c = c.at_most(n);
    }
    Ok(c.within(p.duration("within").map_err(param_err)?.unwrap_or(Duration::ZERO)).into())
}

fn rss(p: &Params, b: &dyn Bindings) -> Result<Criterion, Error> {
    let sel = b.selection(need_str(p, "target")?)?;
    let limit = p.bytes("at_most").map_err(param_err)?.ok_or_else(|| Error::Config {
        what: "parameter `at_most` of criterion rss".into(),
        cause: "it is missing".into(),
        fix: "add at_most = \"64MiB\"".into(),
    })?;
    Ok(Criterion::rss().of(sel).at_most(limit).into())
}

fn fds(p: &Params, b: &dyn Bindings) -> Result<Criterion, Error> {
    let sel = b.selection(need_str(p, "target")?)?;
    let tolerance = p.u64("tolerance").map_err(param_err)?.unwrap_or(0);
    Ok(Criterion::fds().of(sel).no_growth_after(need_duration(p, "no_growth_after")?).tolerance(tolerance).into())
}

fn tcp_connect(p: &Params, _: &dyn Bindings) -> Result<Criterion, Error> {
    let addr = need_str(p, "addr")?;
    let addr = addr.parse().map_err(|e| Error::Config {
        what: format!("address `{addr}`"),
        cause: format!("{e}"),
        fix: "write it as IP:PORT, e.g. 127.0.0.1:8080".into(),
    })?;
    let c = Criterion::tcp_connect(addr);
    let c = match (p.duration("succeeds_within").map_err(param_err)?, p.duration("fails_for").map_err(param_err)?) {
        (Some(d), None) => c.succeeds_within(d),
        (None, Some(d)) => c.fails_for(d),
        (None, None) => c,
        (Some(_), Some(_)) => {
            return Err(Error::Config {
                what: "criterion tcp_connect".into(),
                cause: "`succeeds_within` and `fails_for` exclude each other".into(),
                fix: "keep one of them".into(),
            });
        }
    };
    Ok(c.into())
}

inventory::submit! { CriterionEntry {
    name: "no_orphans",
    summary: "after the fixture's main process died, every process it owned is gone within `within`",
    params: &[TARGET_FIX, WITHIN_5S],
    build: no_orphans,
} }
inventory::submit! { CriterionEntry {
    name: "gone",
    summary: "the processes the selection held at the scenario's start are gone within `within`",
    params: &[TARGET_SEL, WITHIN_5S],
    build: gone,
} }
inventory::submit! { CriterionEntry {
    name: "process_count",
    summary: "the selection's live process count reaches (or is at least) n within `within`",
    params: &[
        TARGET_SEL,
        Param::maybe("reaches", K::Count, "exactly this many"),
        Param::maybe("at_least", K::Count, "at least this many"),
        WITHIN_5S,
    ],
    build: process_count,
} }
inventory::submit! { CriterionEntry {
    name: "exits_within",
    summary: "the fixture's main process exits within `within`",
    params: &[TARGET_FIX, Param::required("within", K::Duration, "how long it may take")],
    build: exits_within,
} }
inventory::submit! { CriterionEntry {
    name: "respawned",
    summary: "processes of the selection that died are replaced by new pids within `within`",
    params: &[TARGET_SEL, WITHIN_5S],
    build: respawned,
} }
inventory::submit! { CriterionEntry {
    name: "no_lost_requests",
    summary: "every request of the scenario's load got a reply (success or structured error)",
    params: &[],
    build: no_lost_requests,
} }
inventory::submit! { CriterionEntry {
    name: "error_rate",
    summary: "the load's error rate (errors and lost over all requests) is at most `at_most`",
    params: &[Param::optional("at_most", K::Number, "0", "the largest allowed fraction, 0..1")],
    build: error_rate,
} }
inventory::submit! { CriterionEntry {
    name: "oom_kills",
    summary: "OOM kills in the fixture's memory cgroup since the scenario started",
    params: &[
        TARGET_FIX,
        Param::maybe("at_least", K::Count, "at least this many"),
        Param::maybe("at_most", K::Count, "at most this many"),
        Param::optional("within", K::Duration, "0s", "how long to wait for them"),
    ],
    build: oom_kills,
} }
inventory::submit! { CriterionEntry {
    name: "rss",
    summary: "the resident memory of the selection (summed over its processes, sampled every 100 ms) never exceeds `at_most`",
    params: &[TARGET_SEL, Param::required("at_most", K::Size, "the largest RSS allowed: bytes or \"64MiB\"")],
    build: rss,
} }
inventory::submit! { CriterionEntry {
    name: "fds",
    summary: "the open fds of the selection (summed, sampled every 100 ms) do not grow after `no_growth_after` from the scenario's start",
    params: &[
        TARGET_SEL,
        Param::required("no_growth_after", K::Duration, "the warm-up: the first sample from then on is the reference"),
        Param::optional("tolerance", K::Count, "0", "how many fds more than the reference are still no growth"),
    ],
    build: fds,
} }
inventory::submit! { CriterionEntry {
    name: "tcp_connect",
    summary: "a TCP connect to `addr` succeeds within a time, or fails for a whole time",
    params: &[
        Param::required("addr", K::Text, "IP:PORT"),
        Param::maybe("succeeds_within", K::Duration, "a connect is accepted within this (default 5s)"),
        Param::maybe("fails_for", K::Duration, "no connect is accepted during this"),
    ],
    build: tcp_connect,
} }

/// Starts a `command` fixture from spec parameters.
fn start_command(
    name: String,
    p: &Params,
    sandbox: Arc<Sandbox>,
) -> Result<BoxFuture<'static, Result<StartedFixture, Error>>, Error> {
    let mut c = Command::new(need_str(p, "program")?).name(name);
    c = c.args(p.strings("args").map_err(param_err)?.unwrap_or_default());
    if let Some(serde_json::Value::Object(env)) = p.get("env") {
        for (k, v) in env {
            let v = v.as_str().ok_or_else(|| Error::Config {
                what: format!("env.{k}"),
                cause: "an environment value must be a string".into(),
                fix: format!("write {k} = \"...\""),
            })?;
            c = c.env(k, v);
        }
    }
    if let Some(cwd) = p.str("cwd").map_err(param_err)? {
        c = c.cwd(cwd);
    }
    if let Some(user) = p.str("user").map_err(param_err)? {
        c = c.user(user);
    }
    if let Some(ns) = p.str("netns").map_err(param_err)? {
        if !ns.starts_with('/') {
            return Err(Error::Config {
                what: format!("netns `{ns}` of a command target"),
                cause: "it names no running namespace (a spec resolves a netns target's name to its file when binding; this one was not resolved)".into(),
                fix: "name a target of kind \"netns\" of the same scenario, or give the namespace file /run/netns/NAME".into(),
            });
        }
        c = c.netns(ns);
    }
    if let Some(a) = p.str("ready_tcp").map_err(param_err)? {
        c = c.ready(Probe::tcp(a));
    }
    if let Some(url) = p.str("ready_http").map_err(param_err)? {
        let (addr, path) = url.split_once('/').map_or((url, "/".to_string()), |(a, r)| (a, format!("/{r}")));
        c = c.ready(Probe::http(addr, path));
    }
    if let Some(re) = p.str("ready_log_line").map_err(param_err)? {
        let probe = Probe::log_line(re);
        probe.validate()?;
        c = c.ready(probe);
    }
    if let Some(f) = p.str("ready_file").map_err(param_err)? {
        c = c.ready(Probe::file_exists(f));
    }
    c = c.ready_timeout(need_duration(p, "ready_timeout")?);
    Ok(Box::pin(async move { c.start(sandbox).await.map(StartedFixture::new) }))
}

inventory::submit! { FixtureEntry {
    name: "command",
    summary: "any program, started in its own cgroup, ready when its probes pass",
    params: &[
        Param::maybe("name", K::Text, "the fixture's name (defaults to the target's key)"),
        Param::required("program", K::Text, "the program (on PATH or a path)"),
        Param::optional("args", K::Texts, "[]", "its arguments"),
        Param::maybe("env", K::Table, "extra environment variables"),
        Param::maybe("cwd", K::Text, "working directory"),
        Param::maybe("user", K::Text, "run as this user (a name from the user database; needs root)"),
        Param::maybe("netns", K::Text, "run inside this network namespace: a target of kind netns, or /run/netns/NAME (needs root)"),
        Param::maybe("ready_tcp", K::Text, "ready when a TCP connect to IP:PORT succeeds"),
        Param::maybe("ready_http", K::Text, "ready when GET IP:PORT/PATH answers 200"),
        Param::maybe("ready_log_line", K::Text, "ready when a log line matches this regex"),
        Param::maybe("ready_file", K::Text, "ready when this file exists"),
        Param::optional("ready_timeout", K::Duration, "10s", "how long readiness may take"),
    ],
    roles: &[],
    start: start_command,
} }
