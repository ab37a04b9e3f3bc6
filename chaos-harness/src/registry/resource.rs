//! Resource registry entries: memory, CPU, disk, file descriptor and pid faults
//! (`chaos_harness::fault::resource`). Sizes are written as numbers of bytes or `"64MiB"`.
//!
//! ```
//! let e = chaos_harness::registry::fault("memory_limit").unwrap();
//! assert!(e.params.iter().any(|p| p.name == "bytes"));
//! ```

use super::{Bindings, FaultEntry, Param, ParamKind as K, need_str, param_err};
use crate::Error;
use crate::fault::Fault;
use crate::fault::resource::Cpus;
use crate::params::Params;

const FIX: Param = Param::required("target", K::Fixture, "the fixture (its cgroup)");

fn size(p: &Params, key: &str) -> Result<u64, Error> {
    p.bytes(key).map_err(param_err)?.ok_or_else(|| Error::Config {
        what: format!("parameter `{key}`"),
        cause: "it is missing".into(),
        fix: format!("add {key} = \"64MiB\""),
    })
}

fn memory_limit(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    let f = Fault::memory_limit(b.handle(need_str(p, "target")?)?, size(p, "bytes")?);
    Ok(f.swap(p.bool("swap").map_err(param_err)?.unwrap_or(true)).into())
}

fn memory_pressure(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    let mut f = Fault::memory_pressure(b.handle(need_str(p, "target")?)?, size(p, "bytes")?);
    if let Some(adj) = p.get("oom_score_adj").and_then(serde_json::Value::as_i64) {
        f = f.oom_score_adj(i32::try_from(adj).unwrap_or(0));
    }
    if let Some(d) = p.duration("inflate_timeout").map_err(param_err)? {
        f = f.inflate_timeout(d);
    }
    Ok(f.into())
}

fn cpu_quota(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    let cpus = p.f64("cpus").map_err(param_err)?.unwrap_or(1.0);
    let mut f = Fault::cpu_quota(b.handle(need_str(p, "target")?)?, cpus);
    if let Some(d) = p.duration("period").map_err(param_err)? {
        f = f.period(d);
    }
    Ok(f.into())
}

fn cpu_burn(p: &Params, _: &dyn Bindings) -> Result<Fault, Error> {
    let cpus = match p.u64("cpus").map_err(param_err)?.unwrap_or(0) {
        0 => Cpus::All,
        n => Cpus::Count(usize::try_from(n).unwrap_or(1)),
    };
    let mut f = Fault::cpu_burn(cpus);
    if let Some(d) = p.duration("start_timeout").map_err(param_err)? {
        f = f.start_timeout(d);
    }
    Ok(f.into())
}

fn disk_tmpfs(p: &Params, _: &dyn Bindings) -> Result<Fault, Error> {
    let mut f = Fault::disk_tmpfs(need_str(p, "dir")?, size(p, "size")?);
    f = f.copy_contents(p.bool("copy_contents").map_err(param_err)?.unwrap_or(false));
    if p.bool("outside_sandbox").map_err(param_err)?.unwrap_or(false) {
        f = f.outside_sandbox();
    }
    Ok(f.into())
}

fn disk_fill(p: &Params, _: &dyn Bindings) -> Result<Fault, Error> {
    let mut f = Fault::disk_fill(need_str(p, "dir")?, size(p, "leave_free")?);
    if let Some(m) = p.bytes("max_fill").map_err(param_err)? {
        f = f.max_fill(m);
    }
    Ok(f.into())
}

fn fd_limit(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    let sel = b.selection(need_str(p, "target")?)?;
    let soft = p.u64("soft").map_err(param_err)?.unwrap_or(0);
    let keep_hard = p.bool("keep_hard").map_err(param_err)?.unwrap_or(false);
    let hard = p.u64("hard").map_err(param_err)?;
    let mut f = Fault::fd_limit(sel, soft, hard.unwrap_or(soft));
    if keep_hard {
        f = f.keep_hard();
    }
    if let Some(l) = p.bool("lift_inherited").map_err(param_err)? {
        f = f.lift_inherited(l);
    }
    Ok(f.into())
}

fn pids_limit(p: &Params, b: &dyn Bindings) -> Result<Fault, Error> {
    let max = p.u64("max").map_err(param_err)?.unwrap_or(1);
    Ok(Fault::pids_limit(b.handle(need_str(p, "target")?)?, max).into())
}

inventory::submit! { FaultEntry {
    name: "memory_limit",
    summary: "limit the fixture's memory cgroup to `bytes` (swap too unless swap = false); confirmed by reading it back",
    params: &[FIX, Param::required("bytes", K::Size, "the limit (\"64MiB\")"), Param::optional("swap", K::Bool, "true", "limit swap as well")],
    build: memory_limit,
} }
inventory::submit! { FaultEntry {
    name: "memory_pressure",
    summary: "a balloon allocating `bytes` inside the fixture's memory cgroup until cleared",
    params: &[
        FIX,
        Param::required("bytes", K::Size, "how much the balloon holds"),
        Param::maybe("oom_score_adj", K::Number, "the balloon's oom_score_adj (default: tries -999)"),
        Param::optional("inflate_timeout", K::Duration, "10s", "how long it may take to allocate"),
    ],
    build: memory_pressure,
} }
inventory::submit! { FaultEntry {
    name: "cpu_quota",
    summary: "limit the fixture's cgroup to `cpus` CPUs (0.1 = 10 % of one core); confirmed by reading it back",
    params: &[FIX, Param::required("cpus", K::Number, "the fraction of one CPU"), Param::maybe("period", K::Duration, "the CFS period")],
    build: cpu_quota,
} }
inventory::submit! { FaultEntry {
    name: "cpu_burn",
    summary: "busy-looping processes saturating `cpus` CPUs (0: all); confirmed by their CPU time",
    params: &[
        Param::optional("cpus", K::Count, "0", "how many burners; 0: one per CPU"),
        Param::optional("start_timeout", K::Duration, "10s", "how long the burners may take to start"),
    ],
    build: cpu_burn,
} }
inventory::submit! { FaultEntry {
    name: "disk_tmpfs",
    summary: "mount a tmpfs of `size` over `dir` (inside the sandbox unless outside_sandbox = true); needs root",
    params: &[
        Param::required("dir", K::Text, "the directory (must exist)"),
        Param::required("size", K::Size, "the tmpfs size"),
        Param::optional("copy_contents", K::Bool, "false", "copy the directory's contents in"),
        Param::optional("outside_sandbox", K::Bool, "false", "allow a directory outside the sandbox"),
    ],
    build: disk_tmpfs,
} }
inventory::submit! { FaultEntry {
    name: "disk_fill",
    summary: "fill the filesystem of `dir` until only `leave_free` is free (at most `max_fill`, default 1GiB)",
    params: &[
        Param::required("dir", K::Text, "a directory on the filesystem"),
        Param::required("leave_free", K::Size, "what stays free"),
        Param::maybe("max_fill", K::Size, "the most the fill file may take"),
    ],
    build: disk_fill,
} }
inventory::submit! { FaultEntry {
    name: "fd_limit",
    summary: "lower RLIMIT_NOFILE of the selected processes to soft/hard; restored exactly on clear",
    params: &[
        Param::required("target", K::Selector, "which processes: <fixture>.<role>"),
        Param::required("soft", K::Count, "the soft limit"),
        Param::maybe("hard", K::Count, "the hard limit (default: = soft)"),
        Param::optional("keep_hard", K::Bool, "false", "lower only the soft limit"),
        Param::optional("lift_inherited", K::Bool, "true", "clear also lifts it from children that inherited it"),
    ],
    build: fd_limit,
} }
inventory::submit! { FaultEntry {
    name: "pids_limit",
    summary: "limit the fixture's cgroup to `max` processes and threads (pids.max)",
    params: &[FIX, Param::required("max", K::Count, "the limit")],
    build: pids_limit,
} }
