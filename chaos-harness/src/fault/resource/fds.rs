//! The file-descriptor fault: `RLIMIT_NOFILE` lowered with `prlimit` on the selected processes.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Journaled, bad_config, not_injected, undo_all};
use crate::Error;
use crate::fault::{ActiveFault, Confirmation, FaultContext, Inject};
use crate::fixture::{BoxFuture, Selection};
use crate::sandbox::{Effect, OwnedPid, Sandbox, owner, procfs};

/// A process's `RLIMIT_NOFILE` (`u64::MAX` = unlimited).
///
/// ```
/// use chaos_harness::fault::resource::NoFileLimit;
/// let l = NoFileLimit { soft: 1024, hard: u64::MAX };
/// assert_eq!(l.to_string(), "1024/unlimited");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoFileLimit {
    /// The soft limit: opening a descriptor numbered at or above it fails with `EMFILE`.
    pub soft: u64,
    /// The hard limit: the ceiling for the soft limit.
    pub hard: u64,
}

/// One limit value: a number, or `unlimited` for `RLIM_INFINITY`.
fn value(n: u64) -> String {
    if n == u64::MAX { "unlimited".to_string() } else { n.to_string() }
}

impl std::fmt::Display for NoFileLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", value(self.soft), value(self.hard))
    }
}

/// Parses the `Max open files` line of a `/proc/PID/limits` text.
fn parse_limits(text: &str) -> Option<NoFileLimit> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let f: Vec<&str> = line["Max open files".len()..].split_whitespace().collect();
    let v = |s: &str| if s == "unlimited" { Some(u64::MAX) } else { s.parse().ok() };
    Some(NoFileLimit { soft: v(f.first()?)?, hard: v(f.get(1)?)? })
}

/// Reads a process's `RLIMIT_NOFILE` from `/proc/PID/limits` (the kernel's own report, as
/// opposed to the `prlimit` call that set it); `None` if the process is gone.
///
/// ```
/// let l = chaos_harness::fault::resource::read_nofile(std::process::id() as i32).unwrap();
/// assert!(l.soft <= l.hard);
/// ```
pub fn read_nofile(pid: i32) -> Option<NoFileLimit> {
    parse_limits(&std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?)
}

/// Whether the harness has `CAP_SYS_RESOURCE` (from `/proc/self/status` `CapEff`): needed to
/// raise a hard limit, so to undo a lowered one.
///
/// ```
/// let _ = chaos_harness::fault::resource::has_cap_sys_resource();
/// ```
pub fn has_cap_sys_resource() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("CapEff:").map(|v| v.trim().to_string())))
        .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}

/// `prlimit(pid, RLIMIT_NOFILE, new, &old)` on exactly the process `(pid, start_time)`,
/// through the pidfd-checked sequence of [`owner::prlimit_checked`]: returns the limits before
/// the call; `ESRCH` when that process is gone.
fn prlimit(pid: i32, start_time: u64, new: Option<NoFileLimit>) -> std::io::Result<NoFileLimit> {
    let new = new.map(|n| owner::Limit { soft: n.soft, hard: n.hard });
    match owner::prlimit_checked(pid, start_time, libc::RLIMIT_NOFILE as i32, new)? {
        Some(l) => Ok(NoFileLimit { soft: l.soft, hard: l.hard }),
        None => Err(std::io::Error::from_raw_os_error(libc::ESRCH)),
    }
}

/// Lowered `RLIMIT_NOFILE` on the selected processes (see
/// [`Fault::fd_limit`](crate::fault::Fault::fd_limit)).
///
/// Lowering a hard limit can only be undone with `CAP_SYS_RESOURCE`; without it (see
/// [`has_cap_sys_resource`]) such a fault is refused before anything changes, with the fix:
/// keep each process's hard limit with [`FdLimit::keep_hard`].
///
/// ```no_run
/// # use chaos_harness::fault::{Fault, Inject};
/// # use chaos_harness::fixture::{FixtureHandle, Process};
/// # fn f(p: &Process) {
/// let f = Fault::fd_limit(p.main(), 64, 64).lift_inherited(false);
/// assert!(f.describe().starts_with("RLIMIT_NOFILE 64/64"));
/// let soft_only = Fault::fd_limit(p.main(), 64, 64).keep_hard();
/// assert!(soft_only.describe().starts_with("RLIMIT_NOFILE 64/(unchanged)"));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct FdLimit {
    sel: Selection,
    soft: u64,
    hard: Option<u64>,
    lift_inherited: bool,
}

impl FdLimit {
    pub(crate) fn new(sel: Selection, soft: u64, hard: u64) -> Self {
        Self { sel, soft, hard: Some(hard), lift_inherited: true }
    }

    /// Leaves every process's hard limit as it is and lowers only the soft limit (which must
    /// not exceed it). This is all that can be undone without `CAP_SYS_RESOURCE`.
    ///
    /// ```no_run
    /// # use chaos_harness::fault::Fault;
    /// # fn f(p: &chaos_harness::fixture::Process) {
    /// let f = Fault::fd_limit(p, 32, 0).keep_hard();
    /// # }
    /// ```
    pub fn keep_hard(mut self) -> Self {
        self.hard = None;
        self
    }

    /// Whether clearing also lifts the limit from processes of the fixture that were spawned
    /// by a target during the fault and inherited it (default `true`): they get the value
    /// restored on their nearest target ancestor.
    ///
    /// ```no_run
    /// # use chaos_harness::fault::Fault;
    /// # fn f(p: &chaos_harness::fixture::Process) {
    /// let f = Fault::fd_limit(p, 64, 64).lift_inherited(false);
    /// # }
    /// ```
    pub fn lift_inherited(mut self, yes: bool) -> Self {
        self.lift_inherited = yes;
        self
    }

    fn hard_text(&self) -> String {
        self.hard.map(value).unwrap_or_else(|| "(unchanged)".into())
    }
}

/// One process whose limit the fault changed.
#[derive(Debug, Clone)]
struct Changed {
    owned: OwnedPid,
    previous: NoFileLimit,
    applied: NoFileLimit,
    journaled: Journaled,
}

struct FdLimitActive {
    confirmation: Confirmation,
    changed: Vec<Changed>,
    sel: Selection,
    lift_inherited: bool,
    sandbox: Arc<Sandbox>,
}

/// The limit to apply to a process whose limit is `previous`, refused when it could not be
/// undone or would be refused by the kernel.
fn plan_one(
    name: &str,
    o: &OwnedPid,
    previous: NoFileLimit,
    soft: u64,
    hard: Option<u64>,
) -> Result<NoFileLimit, Error> {
    let hard = hard.unwrap_or(previous.hard);
    if soft > hard {
        return Err(not_injected(
            name,
            format!("soft limit {soft} is above pid {}'s hard limit {hard}", o.pid),
            "give a soft limit at most the hard limit",
        ));
    }
    if hard != previous.hard && !has_cap_sys_resource() {
        let (what, fix) = if hard < previous.hard {
            (
                "lowering",
                "keep the hard limit (.keep_hard()), or give the harness CAP_SYS_RESOURCE, which undoing it needs",
            )
        } else {
            ("raising", "give a hard limit at most the current one, or give the harness CAP_SYS_RESOURCE")
        };
        return Err(not_injected(
            name,
            format!(
                "{what} pid {}'s hard limit from {} to {} needs CAP_SYS_RESOURCE (to undo it, when lowering), which the harness lacks",
                o.pid,
                value(previous.hard),
                value(hard)
            ),
            fix,
        ));
    }
    Ok(NoFileLimit { soft, hard })
}

fn set_one(sandbox: &Sandbox, name: &str, o: &OwnedPid, soft: u64, hard: Option<u64>) -> Result<Changed, Error> {
    let previous = prlimit(o.pid, o.start_time, None)
        .map_err(|e| not_injected(name, format!("reading the limits of pid {}: {e}", o.pid), "run as root"))?;
    let limit = plan_one(name, o, previous, soft, hard)?;
    let effect = Effect::Rlimit {
        pid: o.pid,
        start_time: o.start_time,
        resource: libc::RLIMIT_NOFILE as i32,
        soft: previous.soft,
        hard: previous.hard,
    };
    let ((), seq) = sandbox.record(effect.clone(), || {
        // The pid must still be the process we selected (start time) right before the call.
        if o.is_gone() {
            return Err(not_injected(
                name,
                format!("{o} exited before its limit was changed"),
                "inject while the target runs",
            ));
        }
        let before = prlimit(o.pid, o.start_time, Some(limit)).map_err(|e| {
            let fix = if e.raw_os_error() == Some(libc::EPERM) {
                "raising a hard limit needs root (CAP_SYS_RESOURCE)"
            } else {
                "check the values"
            };
            not_injected(name, format!("prlimit on pid {}: {e}", o.pid), fix)
        })?;
        if before != previous {
            // Changed by someone else between our read and our write: put theirs back.
            let _ = prlimit(o.pid, o.start_time, Some(before));
            return Err(not_injected(
                name,
                format!("the limit of pid {} changed while being set ({previous} -> {before})", o.pid),
                "retry",
            ));
        }
        Ok(())
    })?;
    let changed = Changed { owned: o.clone(), previous, applied: limit, journaled: Journaled { effect, seq } };
    let now = read_nofile(o.pid);
    if o.is_gone() || now != Some(limit) {
        let _ = changed.journaled.undo(sandbox);
        return Err(not_injected(
            name,
            format!(
                "/proc/{}/limits reads {} after setting {limit}",
                o.pid,
                now.map(|n| n.to_string()).unwrap_or_else(|| "nothing (process gone)".into())
            ),
            "the process may have exited or changed its own limit",
        ));
    }
    Ok(changed)
}

impl Inject for FdLimit {
    fn describe(&self) -> String {
        format!("RLIMIT_NOFILE {}/{} on {}", value(self.soft), self.hard_text(), self.sel)
    }

    fn described(&self) -> Option<crate::params::Described> {
        use crate::params::{Described, Params};
        let mut p = Params::new().with("target", self.sel.expr()).with("soft", self.soft);
        p = match self.hard {
            Some(h) => p.with("hard", h),
            None => p.with("keep_hard", true),
        };
        if !self.lift_inherited {
            p = p.with("lift_inherited", false);
        }
        Some(Described::new("fd_limit", p))
    }

    fn inject<'a>(&'a self, cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            if let Some(hard) = self.hard
                && self.soft > hard
            {
                return Err(bad_config(
                    format!("{name}: soft/hard"),
                    format!("soft {} is above hard {hard}", self.soft),
                    "give soft <= hard",
                ));
            }
            let targets = self.sel.resolve(cx.rng);
            if targets.is_empty() {
                return Err(not_injected(
                    &name,
                    "the selector matched no live process",
                    "check the fixture is running and the selector",
                ));
            }
            // Refuse before changing anything when any target's change could not be undone.
            for o in &targets {
                if let Ok(previous) = prlimit(o.pid, o.start_time, None) {
                    plan_one(&name, o, previous, self.soft, self.hard)?;
                }
            }
            let sandbox = cx.sandbox.clone();
            let mut changed: Vec<Changed> = Vec::new();
            for o in &targets {
                match set_one(&sandbox, &name, o, self.soft, self.hard) {
                    Ok(c) => changed.push(c),
                    Err(e) => {
                        let j: Vec<Journaled> = changed.iter().map(|c| c.journaled.clone()).collect();
                        let _ = undo_all(&sandbox, &j);
                        return Err(e);
                    }
                }
            }
            let detail = changed
                .iter()
                .map(|c| format!("pid {}: {} -> {}", c.owned.pid, c.previous, c.applied))
                .collect::<Vec<_>>()
                .join(", ");
            let confirmation = Confirmation::new(
                &name,
                format!("{detail} (read back from /proc/PID/limits)"),
                changed.iter().map(|c| c.owned.pid).collect(),
            );
            Ok(Box::new(FdLimitActive {
                confirmation,
                changed,
                sel: self.sel.clone(),
                lift_inherited: self.lift_inherited,
                sandbox,
            }) as Box<dyn ActiveFault>)
        })
    }
}

/// The nearest ancestor of `pid` (walking parents) among `targets`, by pid and start time.
fn target_ancestor(
    pid: i32,
    targets: &BTreeMap<(i32, u64), (NoFileLimit, NoFileLimit)>,
) -> Option<((i32, u64), (NoFileLimit, NoFileLimit))> {
    let mut p = procfs::stat(pid)?.ppid;
    for _ in 0..64 {
        if p <= 1 {
            return None;
        }
        let s = procfs::stat(p)?;
        if let Some(prev) = targets.get(&(p, s.start_time)) {
            return Some(((p, s.start_time), *prev));
        }
        p = s.ppid;
    }
    None
}

impl ActiveFault for FdLimitActive {
    fn confirmation(&self) -> &Confirmation {
        &self.confirmation
    }

    fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, Error>> {
        Box::pin(async move {
            let name = format!("restore RLIMIT_NOFILE on {}", self.sel);
            let mut problems = Vec::new();
            let mut done = Vec::new();
            for c in self.changed.iter().rev() {
                if let Err(e) = c.journaled.undo(&self.sandbox) {
                    problems.push(format!("pid {}: {e}", c.owned.pid));
                    continue;
                }
                if c.owned.is_gone() {
                    done.push(format!("pid {} exited meanwhile", c.owned.pid));
                    continue;
                }
                match read_nofile(c.owned.pid) {
                    Some(now) if now == c.previous => done.push(format!("pid {}: {} (read back)", c.owned.pid, now)),
                    other => problems.push(format!(
                        "pid {}: /proc limits read {other:?} after restoring {}",
                        c.owned.pid, c.previous
                    )),
                }
            }
            // Descendants spawned during the fault inherited the lowered limit.
            let targets: BTreeMap<(i32, u64), (NoFileLimit, NoFileLimit)> =
                self.changed.iter().map(|c| ((c.owned.pid, c.owned.start_time), (c.previous, c.applied))).collect();
            let applied: Vec<NoFileLimit> = self.changed.iter().map(|c| c.applied).collect();
            let mut lifted = Vec::new();
            let mut kept = Vec::new();
            for m in self.sel.target().scope().members() {
                let now = read_nofile(m.pid);
                if targets.contains_key(&(m.pid, m.start_time)) || !now.is_some_and(|n| applied.contains(&n)) {
                    continue;
                }
                match target_ancestor(m.pid, &targets) {
                    Some((_, (prev, lowered))) if self.lift_inherited && now == Some(lowered) => {
                        // Lifting an inherited limit is the undo of this fault, not a new effect.
                        let r = prlimit(m.pid, m.start_time, Some(prev));
                        if r.is_ok() && !m.is_gone() && read_nofile(m.pid) == Some(prev) {
                            lifted.push(m.pid);
                        } else if !m.is_gone() {
                            problems.push(format!(
                                "descendant pid {}: could not lift the inherited limit to {prev}",
                                m.pid
                            ));
                        }
                    }
                    _ => kept.push(m.pid),
                }
            }
            if !problems.is_empty() {
                return Err(not_injected(&name, problems.join("; "), "teardown retries the undo from the journal"));
            }
            let mut detail = done.join(", ");
            if !lifted.is_empty() {
                detail.push_str(&format!("; lifted from descendants {lifted:?} that inherited it"));
            }
            if !kept.is_empty() {
                detail.push_str(&format!("; processes {kept:?} still have the fault's limit (not descendants of a target, or lift_inherited(false))"));
            }
            Ok(Confirmation::new(name, detail, self.changed.iter().map(|c| c.owned.pid).collect()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             95435                95435                processes \n\
                    Max open files            1024                 524288               files     \n\
                    Max locked memory         8388608              8388608              bytes     \n";
        assert_eq!(parse_limits(text), Some(NoFileLimit { soft: 1024, hard: 524288 }));
        let unl = "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_limits(unl), Some(NoFileLimit { soft: u64::MAX, hard: u64::MAX }));
        assert_eq!(parse_limits("garbage"), None);
    }

    #[test]
    fn prlimit_reads_what_proc_reports() {
        let me = std::process::id() as i32;
        assert_eq!(prlimit(me, procfs::start_time(me).unwrap(), None).ok(), read_nofile(me));
    }
}
