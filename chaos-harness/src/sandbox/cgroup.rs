//! cgroup plumbing for both layouts: v1 hierarchies (one mount per controller, as on this
//! machine) and cgroup2 (the unified hierarchy, alone or beside v1 in the hybrid layout).
//!
//! Every function here works from paths alone, so the journal can undo a cgroup without the
//! in-memory state that created it (the reaper replays it after a crash).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::owner::PidFd;
use super::procfs;

/// Name of the directory, in every hierarchy, under which all harness cgroups live.
pub const PARENT: &str = "chaos-harness";

/// The v1 controllers the harness puts fixtures into, in preference order.
pub const V1_CONTROLLERS: &[&str] = &["pids", "freezer", "memory", "cpu", "cpuacct"];

/// One mounted cgroup hierarchy.
///
/// ```
/// for h in chaos_harness::sandbox::cgroup::hierarchies() {
///     assert!(h.mount.is_absolute());
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    /// The v1 controller this hierarchy is named after (`"pids"`), or `""` for cgroup2.
    pub controller: String,
    /// Where it is mounted (`/sys/fs/cgroup/pids`, `/sys/fs/cgroup/unified`, `/sys/fs/cgroup`).
    pub mount: PathBuf,
}

impl Hierarchy {
    /// `true` for the cgroup2 (unified) hierarchy.
    ///
    /// ```
    /// let h = chaos_harness::sandbox::cgroup::Hierarchy { controller: String::new(), mount: "/sys/fs/cgroup".into() };
    /// assert!(h.is_v2());
    /// ```
    pub fn is_v2(&self) -> bool {
        self.controller.is_empty()
    }
}

/// The mounted hierarchies the harness uses (detected once from `/proc/self/mounts`): the v1
/// hierarchies of [`V1_CONTROLLERS`] and the cgroup2 hierarchy, if mounted.
///
/// ```
/// let hs = chaos_harness::sandbox::cgroup::hierarchies();
/// assert!(hs.iter().filter(|h| h.is_v2()).count() <= 1);
/// ```
pub fn hierarchies() -> &'static [Hierarchy] {
    static H: OnceLock<Vec<Hierarchy>> = OnceLock::new();
    H.get_or_init(|| parse_mounts(&std::fs::read_to_string("/proc/self/mounts").unwrap_or_default()))
}

/// Parses `/proc/self/mounts` text into the hierarchies the harness uses.
///
/// ```
/// let hs = chaos_harness::sandbox::cgroup::parse_mounts(
///     "cgroup /sys/fs/cgroup/pids cgroup rw,pids 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n");
/// assert_eq!(hs.len(), 2);
/// assert_eq!(hs[0].controller, "");
/// assert_eq!(hs[1].controller, "pids");
/// ```
pub fn parse_mounts(text: &str) -> Vec<Hierarchy> {
    let mut v2 = None;
    let mut v1 = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        match f[2] {
            "cgroup2" if v2.is_none() => v2 = Some(Hierarchy { controller: String::new(), mount: PathBuf::from(f[1]) }),
            "cgroup" => {
                let opts: Vec<&str> = f[3].split(',').collect();
                if let Some(c) = V1_CONTROLLERS.iter().find(|c| opts.contains(c))
                    && !v1.iter().any(|h: &Hierarchy| h.mount == Path::new(f[1]))
                {
                    v1.push(Hierarchy { controller: (*c).to_string(), mount: PathBuf::from(f[1]) });
                }
            }
            _ => {}
        }
    }
    v1.sort_by_key(|h| V1_CONTROLLERS.iter().position(|c| *c == h.controller));
    v2.into_iter().chain(v1).collect()
}

/// One cgroup directory: the hierarchy and the path relative to its mount
/// (`/chaos-harness/<run-id>-<fixture>`). Serialized into the journal.
///
/// ```
/// use chaos_harness::sandbox::cgroup::CgroupRef;
/// let c = CgroupRef { controller: "pids".into(), mount: "/sys/fs/cgroup/pids".into(),
///     rel: "/chaos-harness/run-web".into() };
/// assert_eq!(c.dir(), std::path::Path::new("/sys/fs/cgroup/pids/chaos-harness/run-web"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupRef {
    /// v1 controller name, or `""` for cgroup2.
    pub controller: String,
    /// Mount point of the hierarchy.
    pub mount: PathBuf,
    /// Path inside the hierarchy, starting with `/` (as in `/proc/PID/cgroup`).
    pub rel: String,
}

impl CgroupRef {
    /// The directory in the cgroup filesystem.
    ///
    /// ```
    /// use chaos_harness::sandbox::cgroup::CgroupRef;
    /// let c = CgroupRef { controller: "".into(), mount: "/sys/fs/cgroup".into(), rel: "/a/b".into() };
    /// assert_eq!(c.dir(), std::path::Path::new("/sys/fs/cgroup/a/b"));
    /// ```
    pub fn dir(&self) -> PathBuf {
        self.mount.join(self.rel.trim_start_matches('/'))
    }

    /// `true` for a cgroup2 directory.
    ///
    /// ```
    /// use chaos_harness::sandbox::cgroup::CgroupRef;
    /// let c = CgroupRef { controller: "".into(), mount: "/sys/fs/cgroup".into(), rel: "/a".into() };
    /// assert!(c.is_v2());
    /// ```
    pub fn is_v2(&self) -> bool {
        self.controller.is_empty()
    }

    /// The live (non-zombie) pids in this cgroup, from `cgroup.procs`. Empty when the cgroup
    /// does not exist.
    ///
    /// ```
    /// use chaos_harness::sandbox::cgroup::CgroupRef;
    /// let c = CgroupRef { controller: "pids".into(), mount: "/nonexistent".into(), rel: "/x".into() };
    /// assert!(c.procs().is_empty());
    /// ```
    pub fn procs(&self) -> Vec<i32> {
        read_procs(&self.dir().join("cgroup.procs"))
    }

    /// Whether `pid` is in this cgroup right now (from `/proc/PID/cgroup`).
    ///
    /// ```
    /// use chaos_harness::sandbox::cgroup::CgroupRef;
    /// let c = CgroupRef { controller: "pids".into(), mount: "/sys/fs/cgroup/pids".into(), rel: "/chaos-harness/none".into() };
    /// assert!(!c.contains(std::process::id() as i32));
    /// ```
    pub fn contains(&self, pid: i32) -> bool {
        procfs::cgroup_path(pid, &self.controller).is_some_and(|p| p == self.rel)
    }
}

/// Reads a `cgroup.procs` file into pids (empty if missing).
///
/// ```
/// assert!(chaos_harness::sandbox::cgroup::read_procs("/nonexistent/cgroup.procs".as_ref()).is_empty());
/// ```
pub fn read_procs(path: &Path) -> Vec<i32> {
    std::fs::read_to_string(path).map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect()).unwrap_or_default()
}

/// Writes `value` to a control file (no trailing newline needed).
pub(crate) fn write_ctl(path: &Path, value: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

/// Makes sure `<mount>/chaos-harness` exists; on cgroup2 enables the available controllers for
/// its children. Returns whether this call created it.
pub(crate) fn ensure_parent(h: &Hierarchy) -> std::io::Result<bool> {
    let dir = h.mount.join(PARENT);
    let created = match std::fs::create_dir(&dir) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(e),
    };
    if h.is_v2() {
        // Best effort: delegate whatever controllers the parent has (pure cgroup2 layout).
        if let Ok(ctrls) = std::fs::read_to_string(dir.join("cgroup.controllers")) {
            let want: Vec<String> = ctrls.split_whitespace().map(|c| format!("+{c}")).collect();
            if !want.is_empty() {
                let _ = write_ctl(&dir.join("cgroup.subtree_control"), &want.join(" "));
            }
        }
    }
    Ok(created)
}

/// Removes `<mount>/chaos-harness` if it no longer has children (another run may still use
/// it: then the kernel refuses and this is a no-op).
pub(crate) fn remove_parent_if_unused(mount: &Path) {
    let dir = mount.join(PARENT);
    let has_children = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).any(|e| e.file_type().is_ok_and(|t| t.is_dir())))
        .unwrap_or(false);
    if !has_children {
        let _ = std::fs::remove_dir(&dir);
    }
}

/// Freezes (`true`) or thaws (`false`) a cgroup through its freezer: v1 `freezer.state`, v2
/// `cgroup.freeze`; returns once the state read back matches, or an error after `timeout`.
pub(crate) fn set_frozen(cg: &CgroupRef, frozen: bool, timeout: Duration) -> std::io::Result<()> {
    let dir = cg.dir();
    if cg.is_v2() {
        write_ctl(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
    } else {
        write_ctl(&dir.join("freezer.state"), if frozen { "FROZEN" } else { "THAWED" })?;
    }
    let deadline = Instant::now() + timeout;
    loop {
        if read_frozen(cg)? == frozen {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "freezer state of {} did not become {}",
                    dir.display(),
                    if frozen { "frozen" } else { "thawed" }
                ),
            ));
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Reads the freezer state back: `true` when fully frozen.
pub(crate) fn read_frozen(cg: &CgroupRef) -> std::io::Result<bool> {
    let dir = cg.dir();
    if cg.is_v2() {
        let ev = std::fs::read_to_string(dir.join("cgroup.events"))?;
        Ok(ev.lines().any(|l| l.trim() == "frozen 1"))
    } else {
        Ok(std::fs::read_to_string(dir.join("freezer.state"))?.trim() == "FROZEN")
    }
}

/// Kills every process in the given cgroups (one fixture's set, one per hierarchy) and waits
/// until they are all empty. Uses `cgroup.kill` where the kernel has it, otherwise repeated
/// SIGKILL sweeps through pidfds (each pid re-checked to still be in the cgroup after the pidfd
/// is opened, so a reused pid is never hit). Frozen cgroups are thawed so the kill lands.
/// Returns the pids still alive at `deadline`.
pub(crate) fn kill_all(cgs: &[CgroupRef], deadline: Instant) -> Result<(), Vec<i32>> {
    let me = std::process::id() as i32;
    let mut pause = Duration::from_micros(50);
    loop {
        let mut any = Vec::new();
        for cg in cgs {
            let dir = cg.dir();
            if !dir.exists() {
                continue;
            }
            // Thaw before kill: a frozen process keeps a pending SIGKILL until thawed, and on v1
            // the freezer is another hierarchy (the same name under the freezer mount).
            thaw_with_siblings(cg);
            if cg.is_v2() && dir.join("cgroup.kill").exists() {
                let _ = write_ctl(&dir.join("cgroup.kill"), "1");
            }
            for pid in cg.procs() {
                if pid <= 1 || pid == me {
                    continue;
                }
                if let Ok(fd) = PidFd::open(pid)
                    && cg.contains(pid)
                {
                    let _ = fd.send(libc::SIGKILL);
                }
                any.push(pid);
            }
            // A frozen process keeps its pending SIGKILL until thawed.
            let _ = thaw_quick(cg);
        }
        if any.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            any.sort_unstable();
            any.dedup();
            any.retain(|p| procfs::stat(*p).is_some_and(|s| !s.is_dead()));
            return if any.is_empty() { Ok(()) } else { Err(any) };
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// Thaws `cg` and the cgroups of the same name in the other freezing hierarchies (v1
/// `freezer`, cgroup2): the one fixture's set.
pub(crate) fn thaw_with_siblings(cg: &CgroupRef) {
    let _ = thaw_quick(cg);
    for h in hierarchies() {
        if (h.controller == "freezer" || h.is_v2()) && h.mount != cg.mount {
            let sib = CgroupRef { controller: h.controller.clone(), mount: h.mount.clone(), rel: cg.rel.clone() };
            if sib.dir().exists() {
                let _ = thaw_quick(&sib);
            }
        }
    }
}

fn thaw_quick(cg: &CgroupRef) -> std::io::Result<()> {
    let dir = cg.dir();
    if cg.is_v2() {
        if dir.join("cgroup.freeze").exists() && std::fs::read_to_string(dir.join("cgroup.freeze"))?.trim() == "1" {
            write_ctl(&dir.join("cgroup.freeze"), "0")?;
        }
    } else if cg.controller == "freezer" && std::fs::read_to_string(dir.join("freezer.state"))?.trim() != "THAWED" {
        write_ctl(&dir.join("freezer.state"), "THAWED")?;
    }
    Ok(())
}

/// Removes a cgroup directory after killing what is left in it. `Ok` when it is gone (or was
/// never there).
pub(crate) fn remove(cg: &CgroupRef, deadline: Instant) -> Result<(), String> {
    let dir = cg.dir();
    if !dir.exists() {
        return Ok(());
    }
    if let Err(left) = kill_all(std::slice::from_ref(cg), deadline) {
        return Err(format!("{} still holds pids {left:?}", dir.display()));
    }
    let mut pause = Duration::from_micros(100);
    loop {
        match std::fs::remove_dir(&dir) {
            Ok(()) => {
                // The shared parent goes with the last run that used it.
                remove_parent_if_unused(&cg.mount);
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                if Instant::now() > deadline {
                    return Err(format!("rmdir {}: {e}", dir.display()));
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(10));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hybrid_layout() {
        let text = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n\
            cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\n\
            cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0\n\
            cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n\
            cgroup /sys/fs/cgroup/devices cgroup rw,relatime,devices 0 0\n\
            cgroup /sys/fs/cgroup/freezer cgroup rw,relatime,freezer 0 0\n\
            cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0\n\
            cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0\n\
            cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";
        let hs = parse_mounts(text);
        let names: Vec<&str> = hs.iter().map(|h| h.controller.as_str()).collect();
        assert_eq!(names, ["", "pids", "freezer", "memory", "cpu", "cpuacct"]);
    }

    #[test]
    fn parses_comounted_and_pure_v2() {
        let hs = parse_mounts("cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n");
        assert_eq!(hs.len(), 1);
        assert_eq!(hs[0].controller, "cpu");
        let hs = parse_mounts("cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n");
        assert_eq!(hs, vec![Hierarchy { controller: String::new(), mount: "/sys/fs/cgroup".into() }]);
    }
}
