//! Snakepit's registry entries: the `snakepit` fixture (the reference target or a mix
//! project), its roles, its criteria (healthy, sessions, pool integrity), the admin
//! and abandoned-request faults, and the `execute` and `session_write` calls.

use std::str::FromStr;
use std::sync::Arc;

use super::{
    Bindings, CallEntry, CriterionEntry, FaultEntry, FixtureEntry, Param, ParamKind as K, StartedFixture,
    need_duration, need_str, param_err, typed,
};
use crate::BoxFuture;
use crate::Error;
use crate::criteria::Criterion;
use crate::fixture::Fixture;
use crate::fixture::snakepit::client::Execute;
use crate::fixture::snakepit::{Defect, SNAKEPIT_ROLES, Snakepit, SnakepitHandle};
use crate::load::Call;
use crate::params::Params;
use crate::sandbox::Sandbox;

fn start_snakepit(
    name: String,
    p: &Params,
    sandbox: Arc<Sandbox>,
) -> Result<BoxFuture<'static, Result<StartedFixture, Error>>, Error> {
    let mut s = match p.str("mix_project").map_err(param_err)? {
        Some(dir) => Snakepit::mix_project(dir),
        None => Snakepit::reference(),
    };
    s = s.name(name);
    if let Some(n) = p.u64("pool_size").map_err(param_err)? {
        s = s.pool_size(u32::try_from(n).unwrap_or(u32::MAX));
    }
    for d in p.strings("defects").map_err(param_err)?.unwrap_or_default() {
        let defect = Defect::from_str(&d).map_err(|e| Error::Config {
            what: format!("defect `{d}`"),
            cause: e.to_string(),
            fix: crate::error::did_you_mean(&d, &Defect::ALL.map(|x| x.name())),
        })?;
        s = s.defect(defect);
    }
    if let Some(serde_json::Value::Object(env)) = p.get("env") {
        for (k, v) in env {
            s = s.env(k, v.as_str().unwrap_or_default());
        }
    }
    if let Some(d) = p.duration("supervised").map_err(param_err)? {
        s = s.supervised(d);
    }
    if p.bool("bridge_link").map_err(param_err)?.unwrap_or(false) {
        s = s.with_bridge_link();
    }
    if p.bool("api_link").map_err(param_err)?.unwrap_or(false) {
        s = s.with_api_link();
    }
    s = s.ready_timeout(need_duration(p, "ready_timeout")?);
    s = s.wait_for_pool(p.bool("wait_for_pool").map_err(param_err)?.unwrap_or(true));
    Ok(Box::pin(async move { s.start(sandbox).await.map(StartedFixture::new) }))
}

inventory::submit! { FixtureEntry {
    name: "snakepit",
    summary: "a BEAM supervising a pool of Python workers: the reference target, or a mix project",
    params: &[
        Param::maybe("name", K::Text, "the fixture's name (defaults to the target's key)"),
        Param::maybe("mix_project", K::Text, "a mix project dir serving the contract (default: the reference target)"),
        Param::optional("pool_size", K::Count, "4", "number of Python workers"),
        Param::maybe("defects", K::Texts, "reference-target defects to switch on (no_heartbeat, ...)"),
        Param::maybe("env", K::Table, "extra environment for the BEAM"),
        Param::maybe("supervised", K::Duration, "restart the BEAM this long after it dies"),
        Param::optional("bridge_link", K::Bool, "false", "route worker->BEAM traffic through a proxy link"),
        Param::optional("api_link", K::Bool, "false", "route API traffic through a proxy link"),
        Param::optional("ready_timeout", K::Duration, "30s", "how long the pool may take to be ready"),
        Param::optional("wait_for_pool", K::Bool, "true", "wait for every worker to be ready"),
    ],
    roles: SNAKEPIT_ROLES,
    start: start_snakepit,
} }

fn healthy(p: &Params, b: &dyn Bindings) -> Result<Criterion, Error> {
    let pit: &SnakepitHandle = typed(b, need_str(p, "target")?, "snakepit")?;
    Ok(Criterion::healthy(pit).within(need_duration(p, "within")?).into())
}

inventory::submit! { CriterionEntry {
    name: "healthy",
    summary: "the pool is fully functional: /health ok with every worker ready, and an echo succeeds",
    params: &[
        Param::required("target", K::Fixture, "the snakepit fixture"),
        Param::optional("within", K::Duration, "30s", "how long it may take"),
    ],
    build: healthy,
} }

fn execute(p: &Params, b: &dyn Bindings) -> Result<Call, Error> {
    let pit: &SnakepitHandle = typed(b, need_str(p, "target")?, "snakepit")?;
    let mut req = Execute::tool(need_str(p, "tool")?);
    if let Some(args) = p.get("args") {
        req = req.args(args.clone());
    }
    Ok(pit.call(req))
}

inventory::submit! { CallEntry {
    name: "execute",
    summary: "POST /execute of a tool on a snakepit (echo, sleep, compute, ...)",
    params: &[
        Param::required("target", K::Fixture, "the snakepit fixture"),
        Param::required("tool", K::Text, "the tool: echo, sleep, compute, alloc, ..."),
        Param::maybe("args", K::Table, "the tool's args object"),
    ],
    build: execute,
} }

// ---- admin faults, abandoned requests, the session load, and the pool-integrity criteria ---

fn pit<'a>(p: &Params, b: &'a dyn Bindings) -> Result<&'a SnakepitHandle, Error> {
    typed(b, need_str(p, "target")?, "snakepit")
}

fn snakepit_admin(p: &Params, b: &dyn Bindings) -> Result<crate::fault::Fault, Error> {
    use crate::fixture::snakepit::AdminAction;
    let action = match need_str(p, "action")? {
        "crash_pool" => AdminAction::CrashPool,
        "kill_worker_process" => {
            AdminAction::KillWorkerProcess(p.str("worker_id").map_err(param_err)?.map(str::to_string))
        }
        "restart_session_store" => AdminAction::RestartSessionStore,
        other => {
            return Err(Error::Config {
                what: format!("admin action `{other}`"),
                cause: "not an action of the target's admin API".into(),
                fix: crate::error::did_you_mean(other, &["crash_pool", "kill_worker_process", "restart_session_store"]),
            });
        }
    };
    Ok(crate::fault::Fault::snakepit_admin(pit(p, b)?, action).into())
}

inventory::submit! { FaultEntry {
    name: "snakepit_admin",
    summary: "an internal fault through the target's admin API (crash_pool, kill_worker_process, restart_session_store); confirmed by its reply",
    params: &[
        Param::required("target", K::Fixture, "the snakepit fixture"),
        Param::required("action", K::Text, "crash_pool | kill_worker_process | restart_session_store"),
        Param::maybe("worker_id", K::Text, "kill_worker_process: which worker (default: the lowest id)"),
    ],
    build: snakepit_admin,
} }

fn abandon_requests(p: &Params, b: &dyn Bindings) -> Result<crate::fault::Fault, Error> {
    let n = p.u64("count").map_err(param_err)?.unwrap_or(2);
    Ok(crate::fault::Fault::abandon_requests(pit(p, b)?, u32::try_from(n).unwrap_or(u32::MAX))
        .holding(need_duration(p, "hold")?)
        .into())
}

inventory::submit! { FaultEntry {
    name: "abandon_requests",
    summary: "clients send /execute of `sleep` and disconnect while it runs; confirmed by the pool counting them busy and no reply before the disconnect",
    params: &[
        Param::required("target", K::Fixture, "the snakepit fixture"),
        Param::optional("count", K::Count, "2", "how many clients disconnect"),
        Param::optional("hold", K::Duration, "300ms", "how long each abandoned request runs on its worker"),
    ],
    build: abandon_requests,
} }

fn session_write(p: &Params, b: &dyn Bindings) -> Result<Call, Error> {
    Ok(pit(p, b)?.session_writes())
}

inventory::submit! { CallEntry {
    name: "session_write",
    summary: "POST /execute of session_put in a fresh session per request, recording acknowledged writes for sessions_survive",
    params: &[Param::required("target", K::Fixture, "the snakepit fixture")],
    build: session_write,
} }

const PIT: Param = Param::required("target", K::Fixture, "the snakepit fixture");
const WITHIN: Param = Param::optional("within", K::Duration, "5s", "how long it may take, from the step before");

fn sessions_survive(p: &Params, b: &dyn Bindings) -> Result<Criterion, Error> {
    Ok(Criterion::sessions_survive(pit(p, b)?).within(need_duration(p, "within")?).into())
}
fn sessions_survive_or_expire(p: &Params, b: &dyn Bindings) -> Result<Criterion, Error> {
    let c = Criterion::sessions_survive_or_expire(pit(p, b)?, need_duration(p, "ttl")?);
    Ok(match p.duration("tolerance").map_err(param_err)? {
        Some(t) => c.tolerance(t),
        None => c,
    }
    .into())
}
fn session_affinity(p: &Params, b: &dyn Bindings) -> Result<Criterion, Error> {
    let n = p.u64("sample").map_err(param_err)?.unwrap_or(20);
    Ok(Criterion::session_affinity(pit(p, b)?)
        .sample(usize::try_from(n).unwrap_or(usize::MAX))
        .within(need_duration(p, "within")?)
        .into())
}
fn pool_recovers_capacity(p: &Params, b: &dyn Bindings) -> Result<Criterion, Error> {
    Ok(Criterion::pool_recovers_capacity(pit(p, b)?).within(need_duration(p, "within")?).into())
}
fn no_ghost_workers(p: &Params, b: &dyn Bindings) -> Result<Criterion, Error> {
    Ok(Criterion::no_ghost_workers(pit(p, b)?).within(need_duration(p, "within")?).into())
}
fn generation_not_leaked(p: &Params, b: &dyn Bindings) -> Result<Criterion, Error> {
    Ok(Criterion::generation_not_leaked(pit(p, b)?).within(need_duration(p, "within")?).into())
}
fn no_orphaned_workers(p: &Params, b: &dyn Bindings) -> Result<Criterion, Error> {
    Ok(Criterion::no_orphaned_workers(pit(p, b)?).within(need_duration(p, "within")?).into())
}
fn health_truthful(p: &Params, b: &dyn Bindings) -> Result<Criterion, Error> {
    Ok(Criterion::health_truthful(pit(p, b)?).over(need_duration(p, "over")?).into())
}

inventory::submit! { CriterionEntry {
    name: "sessions_survive",
    summary: "every session the session_write load got acknowledged before the first fault reads back with its value",
    params: &[PIT, WITHIN],
    build: sessions_survive,
} }
inventory::submit! { CriterionEntry {
    name: "sessions_survive_or_expire",
    summary: "every session the session_write load got acknowledged before the first fault reads back until its TTL and is gone after it",
    params: &[
        PIT,
        Param::required("ttl", K::Duration, "the target's session TTL (env SNAKEPIT_REF_SESSION_TTL_S, whole seconds)"),
        Param::optional("tolerance", K::Duration, "250ms", "how far before and after its deadline a session is read"),
    ],
    build: sessions_survive_or_expire,
} }
inventory::submit! { CriterionEntry {
    name: "session_affinity",
    summary: "with the pool idle, a request in each session the session_write load wrote is served by the session's last worker",
    params: &[
        PIT,
        Param::optional("sample", K::Count, "20", "how many sessions to check"),
        Param::optional("within", K::Duration, "5s", "how long to wait for every worker to be ready first"),
    ],
    build: session_affinity,
} }
inventory::submit! { CriterionEntry {
    name: "pool_recovers_capacity",
    summary: "no worker stays busy: /health busy 0, empty queue, none busy in /workers (judge it with no load running)",
    params: &[PIT, WITHIN],
    build: pool_recovers_capacity,
} }
inventory::submit! { CriterionEntry {
    name: "no_ghost_workers",
    summary: "every routable worker id has a live Python process and 2n+1 sequential echo requests all succeed",
    params: &[PIT, WITHIN],
    build: no_ghost_workers,
} }
inventory::submit! { CriterionEntry {
    name: "generation_not_leaked",
    summary: "the Python worker process count returns to the pool size, every one listed by the pool as routable",
    params: &[PIT, WITHIN],
    build: generation_not_leaked,
} }
inventory::submit! { CriterionEntry {
    name: "no_orphaned_workers",
    summary: "every live Python worker process is one the pool lists in /workers",
    params: &[PIT, WITHIN],
    build: no_orphaned_workers,
} }
inventory::submit! { CriterionEntry {
    name: "health_truthful",
    summary: "/health's ready and status agree with the pool's /workers, sampled every 5 ms",
    params: &[PIT, Param::optional("over", K::Duration, "2s", "how long to sample")],
    build: health_truthful,
} }

#[cfg(test)]
mod tests {
    use super::super::{self as registry, Bindings};
    use crate::params::Params;

    /// No fixture is running: lookups by name fail.
    struct Nothing;
    impl Bindings for Nothing {
        fn handle(&self, name: &str) -> Result<&dyn crate::fixture::FixtureHandle, crate::Error> {
            Err(crate::Error::Config { what: format!("target `{name}`"), cause: "not running".into(), fix: "-".into() })
        }
        fn typed(&self, name: &str) -> Result<&(dyn std::any::Any + Send + Sync), crate::Error> {
            Err(crate::Error::Config { what: format!("target `{name}`"), cause: "not running".into(), fix: "-".into() })
        }
        fn names(&self) -> Vec<String> {
            Vec::new()
        }
    }

    #[test]
    fn pool_integrity_criteria_are_registered_with_their_parameters() {
        for name in [
            "sessions_survive",
            "session_affinity",
            "pool_recovers_capacity",
            "no_ghost_workers",
            "generation_not_leaked",
            "no_orphaned_workers",
            "health_truthful",
        ] {
            let e = registry::criterion(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(e.params.iter().any(|p| p.name == "target" && p.required), "{name} takes a target");
        }
        let e = registry::criterion("health_truthful").unwrap();
        let p = registry::validate("criterion", e.name, e.params, &Params::new().with("target", "pit")).unwrap();
        assert_eq!(p.duration("over").unwrap(), Some(std::time::Duration::from_secs(2)));
        assert!(registry::call("session_write").is_ok());
    }

    #[test]
    fn admin_fault_names_the_nearest_action() {
        let p = Params::new().with("target", "pit").with("action", "crash_pol");
        let e = registry::build_fault("snakepit_admin", &p, &Nothing).unwrap_err().to_string();
        assert!(e.contains("did you mean `crash_pool`"), "{e}");
        let p = Params::new().with("target", "pit").with("count", 2).with("hold", "300ms");
        let e = registry::build_fault("abandon_requests", &p, &Nothing).unwrap_err().to_string();
        assert!(e.contains("`pit`"), "a missing target is named: {e}");
    }
}
