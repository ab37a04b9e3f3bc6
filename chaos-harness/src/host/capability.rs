//! Capabilities a test can require (`requires = ["root", "cgroups", ...]`), each checked
//! before the body runs. A missing one makes the test ignored with the reason, or failed under
//! `CHAOS_REQUIRE_ALL=1`.
//!
//! Besides the fixed names, `bin:PROGRAM` requires an executable on PATH (with an install hint
//! for the programs we know the Debian package of), and `custom:NAME` runs a check registered
//! with [`capability!`](crate::capability):
//!
//! ```
//! fn has_big_disk() -> Result<(), String> { Ok(()) }
//! chaos_harness::capability!("big-disk", has_big_disk);
//! assert!(chaos_harness::host::capability::check("custom:big-disk").is_ok());
//! assert!(chaos_harness::host::capability::check("bin:sh").is_ok());
//! let why = chaos_harness::host::capability::check("bin:haproxy-not-here").unwrap_err();
//! assert!(why.contains("not found on PATH"), "{why}");
//! ```

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Every capability name `requires` accepts (the macro checks the same list at compile time).
pub use super::names::CAPABILITY_NAMES;

/// Checks one capability; `Err` carries the reason and the fix, e.g.
/// `requires root: running as uid 1000; run the suite as root (sudo -E cargo test)`.
///
/// ```
/// use chaos_harness::host::capability::check;
/// assert!(check("warp-drive").unwrap_err().contains("unknown capability"));
/// ```
pub fn check(name: &str) -> Result<(), String> {
    let result = match name {
        "root" => root(),
        "cgroups" => root().and_then(|()| cgroups()),
        "freezer" => root().and_then(|()| freezer()),
        "netns" => root().and_then(|()| netns()),
        "nft" => root().and_then(|()| nft()),
        "elixir" => elixir().map(|_| ()),
        "python3" => python3().map(|_| ()),
        "tmpfs" => root(),
        other if other.starts_with("bin:") => bin(&other["bin:".len()..]),
        other if other.starts_with("custom:") => custom(&other["custom:".len()..]),
        other => {
            return Err(format!("unknown capability `{other}`; valid names: {}", CAPABILITY_NAMES.join(", ")));
        }
    };
    result.map_err(|why| format!("requires {name}: {why}"))
}

/// A capability check registered with [`capability!`](crate::capability), required as
/// `requires = ["custom:NAME"]`.
#[derive(Debug)]
pub struct CustomCapability {
    /// The name after `custom:`.
    pub name: &'static str,
    /// The check: `Err` says what is missing and how to get it.
    pub check: fn() -> Result<(), String>,
}

inventory::collect!(CustomCapability);

/// Registers a custom capability check: `capability!("name", function)`, then
/// `#[chaos_test(requires = ["custom:name"])]`.
///
/// ```
/// fn redis_up() -> Result<(), String> {
///     std::net::TcpStream::connect("127.0.0.1:1").map(drop).map_err(|e| format!("no redis on :1 ({e}); start it"))
/// }
/// chaos_harness::capability!("redis", redis_up);
/// let why = chaos_harness::host::capability::check("custom:redis").unwrap_err();
/// assert!(why.starts_with("requires custom:redis: no redis"), "{why}");
/// ```
#[macro_export]
macro_rules! capability {
    ($name:expr, $check:path) => {
        $crate::__private::inventory::submit! {
            $crate::host::capability::CustomCapability { name: $name, check: $check }
        }
    };
}

fn custom(name: &str) -> Result<(), String> {
    let found = inventory::iter::<CustomCapability>.into_iter().find(|c| c.name == name);
    match found {
        Some(c) => (c.check)(),
        None => {
            let known: Vec<&str> = inventory::iter::<CustomCapability>.into_iter().map(|c| c.name).collect();
            Err(format!(
                "no custom capability named `{name}` is registered (known: {}); register it with \
                 chaos_harness::capability!(\"{name}\", check_fn)",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ))
        }
    }
}

/// Debian packages of programs tests commonly require, for the install hint of `bin:`.
const PACKAGES: &[(&str, &str)] = &[
    ("apache2", "apache2"),
    ("apachectl", "apache2"),
    ("haproxy", "haproxy"),
    ("mariadbd", "mariadb-server"),
    ("mysqld", "mariadb-server"),
    ("mariadb-install-db", "mariadb-server"),
    ("mariadb", "mariadb-client"),
    ("mysql", "mariadb-client"),
    ("nginx", "nginx"),
    ("redis-server", "redis-server"),
    ("postgres", "postgresql"),
    ("memcached", "memcached"),
    ("elixir", "elixir"),
    ("erl", "erlang-base"),
    ("python3", "python3"),
    ("nft", "nftables"),
    ("ip", "iproute2"),
    ("xmllint", "libxml2-utils"),
];

fn bin(program: &str) -> Result<(), String> {
    if which(program).is_some() {
        return Ok(());
    }
    let hint = match PACKAGES.iter().find(|(p, _)| *p == program) {
        Some((_, pkg)) => format!("install it with `apt-get install {pkg}`"),
        None => format!("install the package that provides it (`apt-file search bin/{program}` names it)"),
    };
    Err(format!("`{program}` not found on PATH (nor in /usr/sbin, /sbin); {hint}"))
}

/// Checks all of `names`, returning every missing one's reason joined by `; `.
pub fn check_all<S: AsRef<str>>(names: &[S]) -> Result<(), String> {
    let missing: Vec<String> = names.iter().filter_map(|n| check(n.as_ref()).err()).collect();
    if missing.is_empty() { Ok(()) } else { Err(missing.join("; ")) }
}

fn root() -> Result<(), String> {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        Ok(())
    } else {
        Err(format!("running as uid {uid}; run the suite as root (for example `sudo -E cargo test`)"))
    }
}

fn cgroups() -> Result<(), String> {
    let v1 = Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists()
        || Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists();
    let v2 = std::fs::read_to_string(cgroup2_root().join("cgroup.controllers")).is_ok();
    if v1 || v2 {
        Ok(())
    } else {
        Err("no cgroup hierarchy is mounted under /sys/fs/cgroup; mount cgroup2 or the v1 controllers".into())
    }
}

/// The cgroup2 mount point: `/sys/fs/cgroup/unified` in the hybrid layout, else `/sys/fs/cgroup`.
pub fn cgroup2_root() -> PathBuf {
    let hybrid = Path::new("/sys/fs/cgroup/unified");
    if hybrid.join("cgroup.procs").exists() { hybrid.into() } else { "/sys/fs/cgroup".into() }
}

fn freezer() -> Result<(), String> {
    if Path::new("/sys/fs/cgroup/freezer/cgroup.procs").exists() || cgroup2_root().join("cgroup.procs").exists() {
        Ok(())
    } else {
        Err("no freezer: neither the v1 freezer controller nor cgroup2 is mounted".into())
    }
}

fn netns() -> Result<(), String> {
    if !Path::new("/proc/self/ns/net").exists() {
        return Err("the kernel has no network namespaces".into());
    }
    which("ip").map(|_| ()).ok_or_else(|| "`ip` not found on PATH: apt-get install iproute2".into())
}

fn nft() -> Result<(), String> {
    which("nft").map(|_| ()).ok_or_else(|| "`nft` not found on PATH: apt-get install nftables".into())
}

/// The `elixir` executable: `CHAOS_ELIXIR` or `elixir` on PATH.
pub fn elixir() -> Result<PathBuf, String> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| match std::env::var_os("CHAOS_ELIXIR") {
            Some(p) if Path::new(&p).is_file() => Ok(PathBuf::from(p)),
            Some(p) => Err(format!(
                "CHAOS_ELIXIR={} is not a file; point it at the elixir executable",
                Path::new(&p).display()
            )),
            None => which("elixir").ok_or_else(|| {
                "elixir not found on PATH: install it with `apt-get install elixir`, or set CHAOS_ELIXIR".into()
            }),
        })
        .clone()
}

/// The real Python 3 interpreter (not a pyenv shim, which costs ~90 ms per start):
/// `CHAOS_PYTHON`, else `/usr/bin/python3`, else `python3` on PATH.
pub fn python3() -> Result<PathBuf, String> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("CHAOS_PYTHON") {
                return Ok(PathBuf::from(p));
            }
            let system = Path::new("/usr/bin/python3");
            if system.is_file() {
                return Ok(system.into());
            }
            which("python3").ok_or_else(|| {
                "python3 not found: install it with `apt-get install python3`, or set CHAOS_PYTHON".into()
            })
        })
        .clone()
}

/// Finds an executable on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|p| p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_checkable() {
        for name in CAPABILITY_NAMES {
            // Either available or a reason that names the capability; never "unknown".
            if let Err(why) = check(name) {
                assert!(why.starts_with(&format!("requires {name}: ")), "{why}");
                assert!(!why.contains("unknown capability"), "{why}");
            }
        }
    }

    #[test]
    fn root_reason_names_the_uid() {
        if !nix::unistd::geteuid().is_root() {
            assert!(check("root").unwrap_err().contains("running as uid"));
        } else {
            assert!(check("root").is_ok());
        }
    }

    #[test]
    fn bin_and_custom() {
        assert!(check("bin:sh").is_ok());
        let why = check("bin:haproxy-chaos-missing").unwrap_err();
        assert!(why.starts_with("requires bin:haproxy-chaos-missing: ") && why.contains("apt-file"), "{why}");
        let why = check("custom:never-registered").unwrap_err();
        assert!(why.contains("capability!"), "{why}");
        assert!(bin("haproxy").is_ok() || bin("haproxy").unwrap_err().contains("apt-get install haproxy"));
    }

    #[test]
    fn check_all_joins_reasons() {
        let e = check_all(&["nope", "also-nope"]).unwrap_err();
        assert!(e.contains("`nope`") && e.contains("`also-nope`"), "{e}");
        assert!(check_all::<&str>(&[]).is_ok());
    }
}
