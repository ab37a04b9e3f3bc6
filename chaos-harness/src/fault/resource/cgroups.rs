//! Readers for a fixture's memory, CPU and pids cgroups, in both layouts: the cgroup v1
//! hierarchy of the controller if the fixture has one, else its cgroup2 directory when the
//! controller is enabled there. The faults use them to find the files they change; tests use
//! them to read usage, limits and event counters.

use std::path::PathBuf;

use super::read_ctl;
use crate::Error;
use crate::fixture::{FixtureHandle, Target};
use crate::sandbox::cgroup::CgroupRef;

/// v1 "no limit" values are `PAGE_COUNTER_MAX` pages (9223372036854771712 with 4 KiB pages);
/// anything this large means unlimited.
const V1_UNLIMITED: u64 = 1 << 62;

/// Finds the fixture's cgroup for a controller: the v1 hierarchy `v1`, else cgroup2 when it
/// has `v2_probe` (a file that exists only with the controller enabled).
fn find(target: &Target, v1: &str, v2_probe: &str) -> Result<CgroupRef, Error> {
    let scope = target.scope();
    if let Some(cg) = scope.cgroup(v1) {
        return Ok(cg.clone());
    }
    if let Some(cg) = scope.cgroup("")
        && cg.dir().join(v2_probe).exists()
    {
        return Ok(cg.clone());
    }
    let cause = if scope.cgroups().is_empty() {
        format!("it has no cgroups ({})", scope.guarantee())
    } else {
        format!(
            "there is no cgroup v1 `{v1}` hierarchy and the `{v1}` controller is not enabled on cgroup2 (no {v2_probe} in its cgroup)"
        )
    };
    Err(Error::Config {
        what: format!("the {v1} cgroup of fixture {}", target.name()),
        cause,
        fix: format!(
            "run as root with the `{v1}` controller mounted (cgroup v1) or enabled in the cgroup2 parent's cgroup.subtree_control"
        ),
    })
}

fn bad_format(path: &std::path::Path, text: &str) -> Error {
    Error::Config {
        what: format!("cgroup file {}", path.display()),
        cause: format!("unexpected content {text:?}"),
        fix: "this kernel's cgroup format is not supported; please report it".into(),
    }
}

fn parse_u64(text: &str, path: &std::path::Path) -> Result<u64, Error> {
    text.trim().parse().map_err(|_| bad_format(path, text))
}

/// cgroup2 `cpu.max`: `max 100000` or `10000 100000` -> (quota, period) in microseconds.
fn parse_cpu_max(text: &str) -> Option<(Option<u64>, u64)> {
    let mut it = text.split_whitespace();
    let quota = match it.next()? {
        "max" => None,
        q => Some(q.parse().ok()?),
    };
    Some((quota, it.next()?.parse().ok()?))
}

/// A `key value` line of a flat-keyed cgroup file (`memory.events`, `cpu.stat`, ...).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key)).then(|| it.next()?.parse().ok()).flatten()
    })
}

fn keyed_file(cg: &CgroupRef, file: &str, key: &str) -> Result<u64, Error> {
    let path = cg.dir().join(file);
    let text = read_ctl(&path)?;
    keyed(&text, key).ok_or_else(|| Error::Config {
        what: format!("cgroup file {}", path.display()),
        cause: format!("no `{key}` line in {text:?}"),
        fix: "this kernel is too old for this counter (v1 oom_kill needs Linux 4.13)".into(),
    })
}

/// The memory cgroup of a fixture (v1 `memory` hierarchy, or cgroup2 with `memory` enabled).
///
/// ```no_run
/// # fn f(p: &chaos_harness::fixture::Process) -> Result<(), chaos_harness::Error> {
/// use chaos_harness::fault::resource::MemoryCgroup;
/// let m = MemoryCgroup::of(p)?;
/// println!("{} uses {} bytes (limit {:?}), {} OOM kills so far",
///     m.dir().display(), m.usage_bytes()?, m.limit_bytes()?, m.oom_kills()?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MemoryCgroup {
    cg: CgroupRef,
}

impl MemoryCgroup {
    /// The fixture's memory cgroup, or an error naming why there is none and the fix.
    pub fn of(fixture: &(impl FixtureHandle + ?Sized)) -> Result<Self, Error> {
        Self::of_target(&fixture.target())
    }

    pub(crate) fn of_target(t: &Target) -> Result<Self, Error> {
        find(t, "memory", "memory.max").map(|cg| Self { cg })
    }

    /// The cgroup.
    ///
    /// ```no_run
    /// # fn f(m: &chaos_harness::fault::resource::MemoryCgroup) {
    /// assert!(m.cgroup().rel.starts_with("/chaos-harness/"));
    /// # }
    /// ```
    pub fn cgroup(&self) -> &CgroupRef {
        &self.cg
    }

    /// Its directory.
    ///
    /// ```no_run
    /// # fn f(m: &chaos_harness::fault::resource::MemoryCgroup) {
    /// assert!(m.dir().join("cgroup.procs").exists());
    /// # }
    /// ```
    pub fn dir(&self) -> PathBuf {
        self.cg.dir()
    }

    /// `true` on cgroup2.
    ///
    /// ```no_run
    /// # fn f(m: &chaos_harness::fault::resource::MemoryCgroup) {
    /// println!("{}", if m.is_v2() { "memory.max" } else { "memory.limit_in_bytes" });
    /// # }
    /// ```
    pub fn is_v2(&self) -> bool {
        self.cg.is_v2()
    }

    /// The limit file: `memory.limit_in_bytes` (v1) or `memory.max` (v2).
    ///
    /// ```no_run
    /// # fn f(m: &chaos_harness::fault::resource::MemoryCgroup) {
    /// assert!(m.dir().join(m.limit_file()).exists());
    /// # }
    /// ```
    pub fn limit_file(&self) -> &'static str {
        if self.is_v2() { "memory.max" } else { "memory.limit_in_bytes" }
    }

    /// The swap limit file, if the kernel has one: `memory.memsw.limit_in_bytes` (v1, memory
    /// plus swap) or `memory.swap.max` (v2, swap alone).
    ///
    /// ```no_run
    /// # fn f(m: &chaos_harness::fault::resource::MemoryCgroup) {
    /// if let Some(f) = m.swap_file() { println!("swap limited through {f}"); }
    /// # }
    /// ```
    pub fn swap_file(&self) -> Option<&'static str> {
        let f = if self.is_v2() { "memory.swap.max" } else { "memory.memsw.limit_in_bytes" };
        self.dir().join(f).exists().then_some(f)
    }

    /// Memory charged to the cgroup now (`memory.usage_in_bytes` / `memory.current`).
    ///
    /// ```no_run
    /// # fn f(m: &chaos_harness::fault::resource::MemoryCgroup) -> Result<(), chaos_harness::Error> {
    /// let used = m.usage_bytes()?;
    /// # Ok(()) }
    /// ```
    pub fn usage_bytes(&self) -> Result<u64, Error> {
        let path = self.dir().join(if self.is_v2() { "memory.current" } else { "memory.usage_in_bytes" });
        parse_u64(&read_ctl(&path)?, &path)
    }

    /// The working set: usage minus the inactive page cache (`memory.stat`
    /// `total_inactive_file` on v1, `inactive_file` on v2), which the kernel reclaims first.
    /// This is what memory-pressure monitors (the kubelet, the Snakepit reference target)
    /// compare with the limit.
    ///
    /// ```no_run
    /// # fn f(m: &chaos_harness::fault::resource::MemoryCgroup) -> Result<(), chaos_harness::Error> {
    /// assert!(m.working_set_bytes()? <= m.usage_bytes()?);
    /// # Ok(()) }
    /// ```
    pub fn working_set_bytes(&self) -> Result<u64, Error> {
        let key = if self.is_v2() { "inactive_file" } else { "total_inactive_file" };
        let inactive = keyed_file(&self.cg, "memory.stat", key)?;
        Ok(self.usage_bytes()?.saturating_sub(inactive))
    }

    /// The memory limit, `None` when unlimited.
    ///
    /// ```no_run
    /// # fn f(m: &chaos_harness::fault::resource::MemoryCgroup) -> Result<(), chaos_harness::Error> {
    /// if let Some(l) = m.limit_bytes()? { println!("limited to {l} bytes"); }
    /// # Ok(()) }
    /// ```
    pub fn limit_bytes(&self) -> Result<Option<u64>, Error> {
        let path = self.dir().join(self.limit_file());
        let text = read_ctl(&path)?;
        if text == "max" {
            return Ok(None);
        }
        let v = parse_u64(&text, &path)?;
        Ok((self.is_v2() || v < V1_UNLIMITED).then_some(v))
    }

    /// How many processes the kernel's OOM killer has killed in this cgroup (and, on v2, its
    /// descendants) since it was created: v1 `memory.oom_control` `oom_kill`, v2
    /// `memory.events` `oom_kill`.
    ///
    /// ```no_run
    /// # fn f(m: &chaos_harness::fault::resource::MemoryCgroup) -> Result<(), chaos_harness::Error> {
    /// let before = m.oom_kills()?;
    /// // ... allocate past the limit ...
    /// assert!(m.oom_kills()? > before);
    /// # Ok(()) }
    /// ```
    pub fn oom_kills(&self) -> Result<u64, Error> {
        if self.is_v2() {
            keyed_file(&self.cg, "memory.events", "oom_kill")
        } else {
            keyed_file(&self.cg, "memory.oom_control", "oom_kill")
        }
    }
}

/// The CPU cgroup of a fixture (v1 `cpu` hierarchy, or cgroup2 with `cpu` enabled).
///
/// ```no_run
/// # fn f(p: &chaos_harness::fixture::Process) -> Result<(), chaos_harness::Error> {
/// use chaos_harness::fault::resource::CpuCgroup;
/// let c = CpuCgroup::of(p)?;
/// let (quota, period) = c.quota_us()?;
/// println!("quota {quota:?} us per {period} us, throttled {} times", c.throttled()?.0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CpuCgroup {
    cg: CgroupRef,
}

impl CpuCgroup {
    /// The fixture's CPU cgroup, or an error naming why there is none and the fix.
    pub fn of(fixture: &(impl FixtureHandle + ?Sized)) -> Result<Self, Error> {
        Self::of_target(&fixture.target())
    }

    pub(crate) fn of_target(t: &Target) -> Result<Self, Error> {
        find(t, "cpu", "cpu.max").map(|cg| Self { cg })
    }

    /// The cgroup.
    ///
    /// ```no_run
    /// # fn f(c: &chaos_harness::fault::resource::CpuCgroup) {
    /// println!("{}", c.cgroup().dir().display());
    /// # }
    /// ```
    pub fn cgroup(&self) -> &CgroupRef {
        &self.cg
    }

    /// `(quota, period)` in microseconds; quota `None` = unlimited.
    ///
    /// ```no_run
    /// # fn f(c: &chaos_harness::fault::resource::CpuCgroup) -> Result<(), chaos_harness::Error> {
    /// assert_eq!(c.quota_us()?, (None, 100_000));
    /// # Ok(()) }
    /// ```
    pub fn quota_us(&self) -> Result<(Option<u64>, u64), Error> {
        let dir = self.cg.dir();
        if self.cg.is_v2() {
            let path = dir.join("cpu.max");
            let text = read_ctl(&path)?;
            parse_cpu_max(&text).ok_or_else(|| bad_format(&path, &text))
        } else {
            let qp = dir.join("cpu.cfs_quota_us");
            let q = read_ctl(&qp)?;
            let quota = if q.starts_with('-') { None } else { Some(parse_u64(&q, &qp)?) };
            let pp = dir.join("cpu.cfs_period_us");
            Ok((quota, parse_u64(&read_ctl(&pp)?, &pp)?))
        }
    }

    /// `(periods throttled, total throttled time in microseconds)` from `cpu.stat`.
    ///
    /// ```no_run
    /// # fn f(c: &chaos_harness::fault::resource::CpuCgroup) -> Result<(), chaos_harness::Error> {
    /// let (n, us) = c.throttled()?;
    /// # Ok(()) }
    /// ```
    pub fn throttled(&self) -> Result<(u64, u64), Error> {
        let n = keyed_file(&self.cg, "cpu.stat", "nr_throttled")?;
        let us = if self.cg.is_v2() {
            keyed_file(&self.cg, "cpu.stat", "throttled_usec")?
        } else {
            keyed_file(&self.cg, "cpu.stat", "throttled_time")? / 1000
        };
        Ok((n, us))
    }
}

/// The pids cgroup of a fixture (v1 `pids` hierarchy, or cgroup2 with `pids` enabled).
///
/// ```no_run
/// # fn f(p: &chaos_harness::fixture::Process) -> Result<(), chaos_harness::Error> {
/// use chaos_harness::fault::resource::PidsCgroup;
/// let c = PidsCgroup::of(p)?;
/// println!("{} of {:?} pids, {} forks refused", c.current()?, c.max()?, c.refused_forks()?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PidsCgroup {
    cg: CgroupRef,
}

impl PidsCgroup {
    /// The fixture's pids cgroup, or an error naming why there is none and the fix.
    pub fn of(fixture: &(impl FixtureHandle + ?Sized)) -> Result<Self, Error> {
        Self::of_target(&fixture.target())
    }

    pub(crate) fn of_target(t: &Target) -> Result<Self, Error> {
        find(t, "pids", "pids.max").map(|cg| Self { cg })
    }

    /// The cgroup.
    ///
    /// ```no_run
    /// # fn f(c: &chaos_harness::fault::resource::PidsCgroup) {
    /// println!("{}", c.cgroup().dir().display());
    /// # }
    /// ```
    pub fn cgroup(&self) -> &CgroupRef {
        &self.cg
    }

    /// `pids.max`; `None` = unlimited (`max`).
    ///
    /// ```no_run
    /// # fn f(c: &chaos_harness::fault::resource::PidsCgroup) -> Result<(), chaos_harness::Error> {
    /// assert_eq!(c.max()?, None);
    /// # Ok(()) }
    /// ```
    pub fn max(&self) -> Result<Option<u64>, Error> {
        let path = self.cg.dir().join("pids.max");
        let text = read_ctl(&path)?;
        if text == "max" { Ok(None) } else { parse_u64(&text, &path).map(Some) }
    }

    /// `pids.current`: processes and threads in the cgroup now.
    ///
    /// ```no_run
    /// # fn f(c: &chaos_harness::fault::resource::PidsCgroup) -> Result<(), chaos_harness::Error> {
    /// assert!(c.current()? >= 1);
    /// # Ok(()) }
    /// ```
    pub fn current(&self) -> Result<u64, Error> {
        let path = self.cg.dir().join("pids.current");
        parse_u64(&read_ctl(&path)?, &path)
    }

    /// Forks (and thread creations) refused because of `pids.max` since the cgroup was created
    /// (`pids.events` `max`).
    ///
    /// ```no_run
    /// # fn f(c: &chaos_harness::fault::resource::PidsCgroup) -> Result<(), chaos_harness::Error> {
    /// let refused = c.refused_forks()?;
    /// # Ok(()) }
    /// ```
    pub fn refused_forks(&self) -> Result<u64, Error> {
        keyed_file(&self.cg, "pids.events", "max")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_lines() {
        let t = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(t, "oom_kill"), Some(3));
        assert_eq!(keyed(t, "under_oom"), Some(0));
        assert_eq!(keyed(t, "nope"), None);
        assert_eq!(keyed("max 12", "max"), Some(12));
    }

    #[test]
    fn cpu_max_of_cgroup2() {
        assert_eq!(parse_cpu_max("max 100000"), Some((None, 100_000)));
        assert_eq!(parse_cpu_max("10000 100000\n"), Some((Some(10_000), 100_000)));
        assert_eq!(parse_cpu_max("10000"), None);
        assert_eq!(parse_cpu_max("x 1"), None);
    }
}
