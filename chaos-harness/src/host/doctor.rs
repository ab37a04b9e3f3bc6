//! `chaos doctor`'s probes: every capability the harness uses, what was found, and the command
//! that fixes a missing one. Probes read the environment they are given ([`ProbeEnv`]), so a test
//! can force one missing (a `PATH` without elixir) without touching the process.
//!
//! ```
//! use chaos_harness::host::doctor::{ProbeEnv, probe_all};
//! let env = ProbeEnv { path: "/nonexistent".into(), ..ProbeEnv::from_process() };
//! let probes = probe_all(&env);
//! let elixir = probes.iter().find(|p| p.name == "elixir").unwrap();
//! if std::env::var_os("CHAOS_ELIXIR").is_none() {
//!     assert!(!elixir.ok && elixir.fix.as_deref().unwrap().contains("apt-get install elixir"));
//! }
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The v1 controllers the harness uses (memory and pids limits, cpu weight, the freezer).
pub const V1_CONTROLLERS: &[&str] = &["memory", "cpu", "pids", "freezer", "cpuset", "blkio"];

/// What a probe looks at: `PATH`, the overrides, and the cgroup mount.
///
/// ```
/// let env = chaos_harness::host::doctor::ProbeEnv::from_process();
/// assert_eq!(env.cgroup_root, std::path::PathBuf::from("/sys/fs/cgroup"));
/// ```
#[derive(Debug, Clone)]
pub struct ProbeEnv {
    /// The `PATH` to search for executables.
    pub path: OsString,
    /// `CHAOS_ELIXIR`, if set.
    pub chaos_elixir: Option<OsString>,
    /// `CHAOS_PYTHON`, if set.
    pub chaos_python: Option<OsString>,
    /// Where cgroups are mounted (`/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
}

impl ProbeEnv {
    /// The environment of this process.
    pub fn from_process() -> Self {
        Self {
            path: std::env::var_os("PATH").unwrap_or_default(),
            chaos_elixir: std::env::var_os("CHAOS_ELIXIR"),
            chaos_python: std::env::var_os("CHAOS_PYTHON"),
            cgroup_root: "/sys/fs/cgroup".into(),
        }
    }

    /// Finds an executable on this `PATH` (then `/usr/sbin`, `/sbin`).
    pub fn which(&self, program: &str) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        std::env::split_paths(&self.path)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|dir| dir.join(program))
            .find(|p| p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false))
    }
}

/// One capability: found or not, what was seen, and the fix.
///
/// ```
/// let p = chaos_harness::host::doctor::Probe::ok("root", true, "uid 0");
/// assert!(p.ok && p.fix.is_none());
/// ```
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Probe {
    /// The capability (`root`, `cgroup-v1`, `elixir`, ...).
    pub name: &'static str,
    /// Whether it is available.
    pub ok: bool,
    /// Whether scenarios need it (a missing optional one only limits what can run).
    pub required: bool,
    /// What was found (or not).
    pub found: String,
    /// The command or setting that fixes it, when missing.
    pub fix: Option<String>,
}

impl Probe {
    /// An available capability.
    pub fn ok(name: &'static str, required: bool, found: impl Into<String>) -> Self {
        Self { name, ok: true, required, found: found.into(), fix: None }
    }

    /// A missing capability with its fix.
    pub fn missing(name: &'static str, required: bool, found: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { name, ok: false, required, found: found.into(), fix: Some(fix.into()) }
    }
}

/// Probes every capability, in a fixed order.
pub fn probe_all(env: &ProbeEnv) -> Vec<Probe> {
    let root = nix::unistd::geteuid().is_root();
    let mut out = vec![if root {
        Probe::ok("root", true, "running as root (uid 0)")
    } else {
        Probe::missing(
            "root",
            true,
            format!("running as uid {}", nix::unistd::geteuid()),
            "run as root: sudo -E chaos ...",
        )
    }];
    let v1: Vec<&str> =
        V1_CONTROLLERS.iter().copied().filter(|c| env.cgroup_root.join(c).join("cgroup.procs").exists()).collect();
    let v2_root = if env.cgroup_root.join("unified/cgroup.procs").exists() {
        env.cgroup_root.join("unified")
    } else {
        env.cgroup_root.clone()
    };
    let v2 = std::fs::read_to_string(v2_root.join("cgroup.controllers")).ok();
    out.push(if v1.is_empty() {
        Probe::ok("cgroup-v1", false, "not mounted (fine when cgroup2 has the controllers)")
    } else {
        Probe::ok("cgroup-v1", false, format!("controllers: {}", v1.join(" ")))
    });
    out.push(match &v2 {
        Some(c) if c.trim().is_empty() => {
            Probe::ok("cgroup-v2", false, format!("mounted at {} without controllers", v2_root.display()))
        }
        Some(c) => Probe::ok("cgroup-v2", false, format!("{}: {}", v2_root.display(), c.trim())),
        None => Probe::ok("cgroup-v2", false, "not mounted"),
    });
    let v2_has = |c: &str| v2.as_deref().is_some_and(|s| s.split_whitespace().any(|x| x == c));
    let limits = ["memory", "pids", "cpu"].iter().all(|c| v1.contains(c) || v2_has(c));
    out.push(if limits {
        Probe::ok("cgroups", true, "memory, pids and cpu controllers available")
    } else {
        Probe::missing(
            "cgroups",
            true,
            "the memory, pids and cpu controllers are not all mounted (v1) or enabled (v2)",
            "mount the v1 controllers, or enable them in cgroup2: echo '+memory +pids +cpu' > /sys/fs/cgroup/cgroup.subtree_control",
        )
    });
    out.push(if v1.contains(&"freezer") || v2.is_some() {
        Probe::ok(
            "freezer",
            true,
            if v1.contains(&"freezer") { "v1 freezer controller" } else { "cgroup2 cgroup.freeze" },
        )
    } else {
        Probe::missing(
            "freezer",
            true,
            "neither the v1 freezer nor cgroup2 is mounted",
            "mount -t cgroup2 none /sys/fs/cgroup",
        )
    });
    out.push(match (Path::new("/proc/self/ns/net").exists(), env.which("ip")) {
        (true, Some(ip)) => Probe::ok("netns", false, format!("network namespaces; {}", ip.display())),
        (false, _) => {
            Probe::missing("netns", false, "the kernel has no network namespaces", "use a kernel with CONFIG_NET_NS")
        }
        (true, None) => Probe::missing("netns", false, "`ip` not found on PATH", "apt-get install iproute2"),
    });
    out.push(match env.which("nft") {
        Some(p) => Probe::ok("nft", false, p.display().to_string()),
        None => Probe::missing("nft", false, "`nft` not found on PATH", "apt-get install nftables"),
    });
    let tmpfs = std::fs::read_to_string("/proc/filesystems").is_ok_and(|s| s.lines().any(|l| l.ends_with("tmpfs")));
    out.push(match (tmpfs, root) {
        (true, true) => Probe::ok("tmpfs", false, "tmpfs supported; can mount as root"),
        (true, false) => Probe::missing("tmpfs", false, "tmpfs supported but mounting needs root", "run as root"),
        (false, _) => {
            Probe::missing("tmpfs", false, "tmpfs not in /proc/filesystems", "use a kernel with CONFIG_TMPFS")
        }
    });
    out.push(match &env.chaos_elixir {
        Some(p) if Path::new(p).is_file() => {
            Probe::ok("elixir", true, format!("CHAOS_ELIXIR={}", Path::new(p).display()))
        }
        Some(p) => Probe::missing(
            "elixir",
            true,
            format!("CHAOS_ELIXIR={} is not a file", Path::new(p).display()),
            "point CHAOS_ELIXIR at the elixir executable, or unset it",
        ),
        None => match env.which("elixir") {
            Some(p) => Probe::ok("elixir", true, p.display().to_string()),
            None => Probe::missing(
                "elixir",
                true,
                format!("elixir not found on PATH ({})", env.path.to_string_lossy()),
                "apt-get install elixir erlang-dev, or set CHAOS_ELIXIR=/path/to/elixir",
            ),
        },
    });
    let system_python = Path::new("/usr/bin/python3");
    out.push(match (&env.chaos_python, system_python.is_file(), env.which("python3")) {
        (Some(p), _, _) => Probe::ok("python", true, format!("CHAOS_PYTHON={}", Path::new(p).display())),
        (None, true, _) => Probe::ok("python", true, system_python.display().to_string()),
        (None, false, Some(p)) => Probe::ok("python", true, p.display().to_string()),
        (None, false, None) => Probe::missing(
            "python",
            true,
            "python3 not found",
            "apt-get install python3, or set CHAOS_PYTHON=/path/to/python3",
        ),
    });
    out.push(match env.which("toxiproxy-server") {
        Some(p) => Probe::ok("toxiproxy", false, p.display().to_string()),
        None => Probe::missing(
            "toxiproxy",
            false,
            "no toxiproxy-server on PATH (the embedded proxy is used; only CHAOS_TOXIPROXY=external needs it)",
            "install toxiproxy-server from its release, or keep the embedded proxy",
        ),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_without_elixir_reports_it_missing_with_the_fix() {
        let env = ProbeEnv { path: "/nonexistent".into(), chaos_elixir: None, ..ProbeEnv::from_process() };
        let probes = probe_all(&env);
        let elixir = probes.iter().find(|p| p.name == "elixir").unwrap();
        assert!(!elixir.ok && elixir.required);
        assert!(elixir.found.contains("/nonexistent"), "{elixir:?}");
        assert!(elixir.fix.as_deref().unwrap().contains("apt-get install elixir"));
    }

    #[test]
    fn every_capability_is_probed_once() {
        let probes = probe_all(&ProbeEnv::from_process());
        let names: Vec<&str> = probes.iter().map(|p| p.name).collect();
        for want in [
            "root",
            "cgroup-v1",
            "cgroup-v2",
            "cgroups",
            "freezer",
            "netns",
            "nft",
            "tmpfs",
            "elixir",
            "python",
            "toxiproxy",
        ] {
            assert_eq!(names.iter().filter(|n| **n == want).count(), 1, "{want} in {names:?}");
        }
        // Every missing probe says how to fix it.
        assert!(probes.iter().filter(|p| !p.ok).all(|p| p.fix.as_deref().is_some_and(|f| !f.is_empty())));
    }
}
