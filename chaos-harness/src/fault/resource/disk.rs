//! Disk faults: a size-limited tmpfs over a directory, and a fill file leaving N bytes free.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{GIB, Journaled, KIB, MIB, bad_config, bytes, not_injected, sandbox_of, statvfs};
use crate::BoxFuture;
use crate::Error;
use crate::fault::{ActiveFault, Confirmation, FaultContext, Inject};
use crate::sandbox::{Effect, Sandbox, procfs};

/// The source name of every tmpfs the harness mounts (shown in `/proc/mounts`).
const TMPFS_SOURCE: &str = "chaos-tmpfs";

/// One line of `/proc/self/mounts`, with the octal escapes (`\040` for a space) decoded.
///
/// ```
/// let root = chaos_harness::fault::resource::mounts_at("/".as_ref());
/// assert!(!root.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// What is mounted (`tmpfs`, `/dev/vda`, `chaos-tmpfs`).
    pub source: String,
    /// Where.
    pub target: PathBuf,
    /// The filesystem type.
    pub fstype: String,
    /// The mount options (`rw,nosuid,nodev,relatime,size=1024k`).
    pub options: String,
}

fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = u32::from(b[i + 1] - b'0') * 64 + u32::from(b[i + 2] - b'0') * 8 + u32::from(b[i + 3] - b'0');
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_mounts(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() >= 4).then(|| MountEntry {
                source: unescape(f[0]),
                target: PathBuf::from(unescape(f[1])),
                fstype: unescape(f[2]),
                options: f[3].to_string(),
            })
        })
        .collect()
}

/// Every mount whose mount point is exactly `path` (oldest first; the last one is visible),
/// from `/proc/self/mounts`.
///
/// ```
/// assert!(chaos_harness::fault::resource::mounts_at("/no/such/dir".as_ref()).is_empty());
/// ```
pub fn mounts_at(path: &Path) -> Vec<MountEntry> {
    let text = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    parse_mounts(&text).into_iter().filter(|m| m.target == path).collect()
}

fn io_err(what: String, path: &Path, source: std::io::Error, fix: &str) -> Error {
    Error::Io { what, path: path.to_path_buf(), source, fix: fix.into() }
}

/// Resolves `dir` (must exist and be a directory) and checks it is inside the sandbox temp
/// dir unless `outside` is allowed.
fn resolve_dir(name: &str, dir: &Path, sandbox: &Sandbox, outside: bool) -> Result<PathBuf, Error> {
    let real = std::fs::canonicalize(dir)
        .map_err(|e| io_err(format!("{name}: resolving the directory"), dir, e, "create the directory first"))?;
    if !real.is_dir() {
        return Err(bad_config(
            format!("{name}: directory"),
            format!("{} is not a directory", real.display()),
            "give a directory",
        ));
    }
    let sandbox_dir = std::fs::canonicalize(sandbox.temp_dir()).unwrap_or_else(|_| sandbox.temp_dir().to_path_buf());
    if real == Path::new("/") || (!outside && !real.starts_with(&sandbox_dir)) {
        return Err(not_injected(
            name,
            format!("{} is outside the sandbox temp dir {}", real.display(), sandbox_dir.display()),
            "give the fixture a data dir under cx.sandbox().temp_dir(), or allow it explicitly with .outside_sandbox()",
        ));
    }
    Ok(real)
}

/// Copies a directory tree (regular files, directories, symlinks).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<usize> {
    let mut n = 0;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let t = e.file_type()?;
        if t.is_dir() {
            std::fs::create_dir(&dst)?;
            std::fs::set_permissions(&dst, e.metadata()?.permissions())?;
            n += 1 + copy_tree(&src, &dst)?;
        } else if t.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
            n += 1;
        } else if t.is_file() {
            std::fs::copy(&src, &dst)?;
            n += 1;
        }
    }
    Ok(n)
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// A size-limited tmpfs over a directory (see
/// [`Fault::disk_tmpfs`](crate::fault::Fault::disk_tmpfs)).
///
/// ```no_run
/// # use chaos_harness::fault::{Fault, Inject, resource::MIB};
/// let f = Fault::disk_tmpfs("/tmp/chaos-harness-x/data", 8 * MIB);
/// assert_eq!(f.describe(), "tmpfs of 8 MiB over /tmp/chaos-harness-x/data");
/// ```
#[derive(Debug, Clone)]
pub struct DiskTmpfs {
    dir: PathBuf,
    size: u64,
    copy_contents: bool,
    outside_sandbox: bool,
}

impl DiskTmpfs {
    pub(crate) fn new(dir: PathBuf, size: u64) -> Self {
        Self { dir, size, copy_contents: false, outside_sandbox: false }
    }

    /// Copies the directory's current contents into the tmpfs (default `false`: they are
    /// hidden while it is mounted). Either way they are untouched and visible again after the
    /// undo; whatever the fixture writes meanwhile is discarded with the tmpfs.
    ///
    /// ```no_run
    /// # use chaos_harness::fault::{Fault, resource::MIB};
    /// let f = Fault::disk_tmpfs("/tmp/chaos-harness-x/data", 8 * MIB).copy_contents(true);
    /// ```
    pub fn copy_contents(mut self, yes: bool) -> Self {
        self.copy_contents = yes;
        self
    }

    /// Allows a directory outside the sandbox temp dir (default: refused, so a typo cannot
    /// hide a system directory).
    ///
    /// ```no_run
    /// # use chaos_harness::fault::{Fault, resource::MIB};
    /// let f = Fault::disk_tmpfs("/srv/app/data", 8 * MIB).outside_sandbox();
    /// ```
    pub fn outside_sandbox(mut self) -> Self {
        self.outside_sandbox = true;
        self
    }
}

struct DiskTmpfsActive {
    confirmation: Confirmation,
    dir: PathBuf,
    before: Vec<String>,
    journaled: Journaled,
    sandbox: Arc<Sandbox>,
}

impl Inject for DiskTmpfs {
    fn describe(&self) -> String {
        format!("tmpfs of {} over {}", bytes(self.size), self.dir.display())
    }

    fn described(&self) -> Option<crate::params::Described> {
        use crate::params::{Described, Params};
        let mut p = Params::new().with("dir", self.dir.display().to_string()).with("size", self.size);
        if self.copy_contents {
            p = p.with("copy_contents", true);
        }
        if self.outside_sandbox {
            p = p.with("outside_sandbox", true);
        }
        Some(Described::new("disk_tmpfs", p))
    }

    fn inject<'a>(&'a self, cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            let name = self.describe();
            let page = procfs::page_size();
            if self.size < page {
                return Err(bad_config(
                    format!("{name}: size"),
                    format!("{} bytes is less than a page", self.size),
                    "give at least one page",
                ));
            }
            if !nix::unistd::geteuid().is_root() {
                return Err(not_injected(
                    &name,
                    "mounting needs root",
                    "run the suite as root (tests: requires = [\"tmpfs\"])",
                ));
            }
            let sandbox = sandbox_of(&cx);
            let dir = resolve_dir(&name, &self.dir, &sandbox, self.outside_sandbox)?;
            if let Some(m) = mounts_at(&dir).last() {
                return Err(not_injected(
                    &name,
                    format!("{} is already a mount point ({} {})", dir.display(), m.fstype, m.source),
                    "mount over a subdirectory instead (a second mount on the same point makes the undo ambiguous)",
                ));
            }
            let meta =
                std::fs::metadata(&dir).map_err(|e| io_err(format!("{name}: stat"), &dir, e, "check the directory"))?;
            let before = entries(&dir);
            // Opened before the mount: /proc/self/fd/N still reaches the covered directory.
            let covered = if self.copy_contents {
                Some(
                    std::fs::File::open(&dir)
                        .map_err(|e| io_err(format!("{name}: opening"), &dir, e, "check permissions"))?,
                )
            } else {
                None
            };
            let opts =
                format!("size={},mode={:o},uid={},gid={}", self.size, meta.mode() & 0o7777, meta.uid(), meta.gid());
            let ((), seq) = sandbox.record(Effect::Mount { target: dir.clone() }, || {
                nix::mount::mount(
                    Some(TMPFS_SOURCE),
                    &dir,
                    Some("tmpfs"),
                    nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
                    Some(opts.as_str()),
                )
                .map_err(|e| {
                    not_injected(
                        &name,
                        format!("mount -t tmpfs -o {opts} on {}: {e}", dir.display()),
                        "run as root, outside a read-only mount namespace",
                    )
                })
            })?;
            let journaled = Journaled { effect: Effect::Mount { target: dir.clone() }, seq };
            let fail = |cause: String| {
                let _ = journaled.undo(&sandbox);
                not_injected(&name, cause, "check /proc/self/mounts and the kernel log")
            };
            let shown = mounts_at(&dir);
            let Some(m) = shown.last().filter(|m| m.fstype == "tmpfs" && m.source == TMPFS_SOURCE) else {
                return Err(fail(format!("/proc/self/mounts shows {shown:?} on {}", dir.display())));
            };
            let want = self.size.div_ceil(page) * page;
            let (total, free, _) = statvfs(&dir)?;
            if total != want {
                return Err(fail(format!("statvfs of {} reports {total} bytes, want {want}", dir.display())));
            }
            let copied = match covered {
                Some(f) => {
                    let from = PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()));
                    match copy_tree(&from, &dir) {
                        Ok(n) => format!("; {n} entries copied in"),
                        Err(e) => {
                            return Err(fail(format!(
                                "copying the contents into the tmpfs: {e} (is it larger than {}?)",
                                bytes(self.size)
                            )));
                        }
                    }
                }
                None if before.is_empty() => String::new(),
                None => format!("; {} existing entries hidden until the undo", before.len()),
            };
            let confirmation = Confirmation::new(
                &name,
                format!(
                    "/proc/self/mounts: {} {} {} {}; statvfs: {} total, {} free{copied}",
                    m.source,
                    m.target.display(),
                    m.fstype,
                    m.options,
                    bytes(total),
                    bytes(free)
                ),
                vec![],
            );
            Ok(Box::new(DiskTmpfsActive { confirmation, dir, before, journaled, sandbox }) as Box<dyn ActiveFault>)
        })
    }
}

impl ActiveFault for DiskTmpfsActive {
    fn confirmation(&self) -> &Confirmation {
        &self.confirmation
    }

    fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, Error>> {
        Box::pin(async move {
            let name = format!("unmount the tmpfs on {}", self.dir.display());
            if let Err(e) = self.journaled.undo(&self.sandbox) {
                return Err(not_injected(&name, e, "teardown retries the unmount from the journal"));
            }
            let left = mounts_at(&self.dir);
            if !left.is_empty() {
                return Err(not_injected(
                    &name,
                    format!("/proc/self/mounts still shows {left:?}"),
                    "teardown retries the unmount",
                ));
            }
            let now = entries(&self.dir);
            if now != self.before {
                return Err(not_injected(
                    &name,
                    format!(
                        "{} lists {now:?} after the unmount, {:?} before the mount",
                        self.dir.display(),
                        self.before
                    ),
                    "something wrote to the directory under the mount",
                ));
            }
            Ok(Confirmation::new(
                name,
                format!(
                    "no mount on {} in /proc/self/mounts; its {} original entries are visible again",
                    self.dir.display(),
                    now.len()
                ),
                vec![],
            ))
        })
    }
}

/// A fill file leaving N bytes free (see [`Fault::disk_fill`](crate::fault::Fault::disk_fill)).
///
/// ```no_run
/// # use chaos_harness::fault::{Fault, Inject, resource::{GIB, KIB}};
/// let f = Fault::disk_fill("/tmp/chaos-harness-x/data", 64 * KIB).max_fill(2 * GIB);
/// assert_eq!(f.describe(), "fill the filesystem of /tmp/chaos-harness-x/data to 64 KiB free");
/// ```
#[derive(Debug, Clone)]
pub struct DiskFill {
    dir: PathBuf,
    leave_free: u64,
    max_fill: u64,
}

impl DiskFill {
    pub(crate) fn new(dir: PathBuf, leave_free: u64) -> Self {
        Self { dir, leave_free, max_fill: GIB }
    }

    /// The most the fill file may take (default 1 GiB); the fault is refused rather than
    /// writing more. Raise it knowingly: filling a shared disk starves everything on it.
    ///
    /// ```no_run
    /// # use chaos_harness::fault::{Fault, resource::GIB};
    /// let f = Fault::disk_fill("/var/lib/app", 0).max_fill(20 * GIB);
    /// ```
    pub fn max_fill(mut self, bytes: u64) -> Self {
        self.max_fill = bytes;
        self
    }
}

struct DiskFillActive {
    confirmation: Confirmation,
    file: Option<(PathBuf, Journaled)>,
    dir: PathBuf,
    sandbox: Arc<Sandbox>,
}

/// Allocates `len` bytes in `f`: `fallocate` in chunks (halving a chunk on `ENOSPC` down to a
/// page, so the fill gets as close as the filesystem allows), or zeros written where the
/// filesystem has no `fallocate`. Returns the bytes allocated.
fn allocate(f: &mut std::fs::File, len: u64) -> std::io::Result<u64> {
    let page = procfs::page_size();
    let mut off = 0u64;
    let mut chunk = 64 * MIB;
    while off < len {
        let n = chunk.min(len - off);
        // SAFETY: plain syscall on an owned, open descriptor.
        let r = unsafe { libc::fallocate(f.as_raw_fd(), 0, off as libc::off_t, n as libc::off_t) };
        if r == 0 {
            off += n;
            continue;
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOSPC) if chunk > page => chunk /= 2,
            Some(libc::ENOSPC) => break,
            Some(libc::EOPNOTSUPP) => return write_zeros(f, off, len),
            _ => return Err(e),
        }
    }
    f.sync_all()?;
    Ok(off)
}

fn write_zeros(f: &mut std::fs::File, mut off: u64, len: u64) -> std::io::Result<u64> {
    let buf = vec![0u8; MIB as usize];
    while off < len {
        let n = (len - off).min(MIB) as usize;
        match f.write(&buf[..n]) {
            Ok(w) => off += w as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => return Err(e),
        }
    }
    let _ = f.sync_all();
    Ok(off)
}

impl Inject for DiskFill {
    fn describe(&self) -> String {
        format!("fill the filesystem of {} to {} free", self.dir.display(), bytes(self.leave_free))
    }

    fn described(&self) -> Option<crate::params::Described> {
        use crate::params::{Described, Params};
        let mut p = Params::new().with("dir", self.dir.display().to_string()).with("leave_free", self.leave_free);
        if self.max_fill != GIB {
            p = p.with("max_fill", self.max_fill);
        }
        Some(Described::new("disk_fill", p))
    }

    fn inject<'a>(&'a self, cx: FaultContext<'a>) -> BoxFuture<'a, Result<Box<dyn ActiveFault>, Error>> {
        Box::pin(async move {
            static N: AtomicU64 = AtomicU64::new(0);
            let name = self.describe();
            let sandbox = sandbox_of(&cx);
            let dir = std::fs::canonicalize(&self.dir).map_err(|e| {
                io_err(format!("{name}: resolving the directory"), &self.dir, e, "create the directory first")
            })?;
            let (_, free, _) = statvfs(&dir)?;
            if free <= self.leave_free {
                let confirmation =
                    Confirmation::new(&name, format!("already only {} free: no fill file needed", bytes(free)), vec![]);
                return Ok(Box::new(DiskFillActive { confirmation, file: None, dir, sandbox }) as Box<dyn ActiveFault>);
            }
            let fill = free - self.leave_free;
            if fill > self.max_fill {
                return Err(not_injected(
                    &name,
                    format!("{} would have to be written (more than max_fill {})", bytes(fill), bytes(self.max_fill)),
                    "put a size-limited tmpfs under the directory first (Fault::disk_tmpfs), or raise .max_fill() knowingly",
                ));
            }
            let path = dir.join(format!("chaos-fill-{}-{}", sandbox.run_id(), N.fetch_add(1, Ordering::Relaxed)));
            let effect = Effect::File { path: path.clone() };
            let (written, seq) = sandbox.record(effect.clone(), || {
                let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&path).map_err(|e| {
                    io_err(format!("{name}: creating the fill file"), &path, e, "check the directory is writable")
                })?;
                allocate(&mut f, fill).map_err(|e| {
                    io_err(format!("{name}: allocating {}", bytes(fill)), &path, e, "check the filesystem")
                })
            })?;
            let journaled = Journaled { effect, seq };
            let (_, after, _) = statvfs(&dir)?;
            // Filesystems round to blocks and need metadata: allow a little slack.
            let slack = (64 * KIB).max(self.leave_free / 100);
            if after > self.leave_free + slack {
                let _ = journaled.undo(&sandbox);
                return Err(not_injected(
                    &name,
                    format!(
                        "{} free after writing {} (want at most {})",
                        bytes(after),
                        bytes(written),
                        bytes(self.leave_free)
                    ),
                    "something freed space meanwhile, or the filesystem compresses/deduplicates (fill a tmpfs instead)",
                ));
            }
            let confirmation = Confirmation::new(
                &name,
                format!(
                    "fill file {} of {}; statvfs: {} free (asked for at most {})",
                    path.display(),
                    bytes(written),
                    bytes(after),
                    bytes(self.leave_free)
                ),
                vec![],
            );
            Ok(Box::new(DiskFillActive { confirmation, file: Some((path, journaled)), dir, sandbox })
                as Box<dyn ActiveFault>)
        })
    }
}

impl ActiveFault for DiskFillActive {
    fn confirmation(&self) -> &Confirmation {
        &self.confirmation
    }

    fn clear(self: Box<Self>) -> BoxFuture<'static, Result<Confirmation, Error>> {
        Box::pin(async move {
            let name = format!("remove the fill file in {}", self.dir.display());
            let Some((path, journaled)) = &self.file else {
                return Ok(Confirmation::new(name, "no fill file was needed", vec![]));
            };
            if let Err(e) = journaled.undo(&self.sandbox) {
                return Err(not_injected(&name, e, "teardown retries the removal from the journal"));
            }
            if path.exists() {
                return Err(not_injected(
                    &name,
                    format!("{} still exists", path.display()),
                    "teardown retries the removal",
                ));
            }
            let free = statvfs(&self.dir).map(|(_, f, _)| bytes(f)).unwrap_or_else(|e| e.to_string());
            Ok(Confirmation::new(name, format!("{} removed (gone); statvfs: {free} free", path.display()), vec![]))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_unescapes_mounts() {
        let m = parse_mounts("chaos-tmpfs /tmp/a\\040b tmpfs rw,nosuid,size=1024k 0 0\nproc /proc proc rw 0 0\n");
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].target, Path::new("/tmp/a b"));
        assert_eq!(m[0].options, "rw,nosuid,size=1024k");
        assert_eq!(unescape("a\\011b\\134"), "a\tb\\");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }
}
