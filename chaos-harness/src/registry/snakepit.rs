//! Snakepit's registry entries: the `snakepit` fixture (the reference target or a mix
//! project), its roles, the `healthy` criterion and the `execute` call.

use std::str::FromStr;
use std::sync::Arc;

use super::{
    Bindings, CallEntry, CriterionEntry, FixtureEntry, Param, ParamKind as K, StartedFixture, need_duration, need_str,
    param_err, typed,
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
