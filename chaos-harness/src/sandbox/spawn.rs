//! Spawning a fixture program straight into its cgroup2 cgroup with `clone3(CLONE_INTO_CGROUP)`.
//!
//! Moving a process into a cgroup by writing `cgroup.procs` takes the kernel's global
//! thread-group lock for writing, which waits for an RCU grace period: 8-28 ms per spawn on a
//! 2-core VM, most of a chaos test's fixed cost. `clone3` with `CLONE_INTO_CGROUP` (Linux 5.7)
//! creates the child *inside* the cgroup, under the read side of that lock: no grace period,
//! and no moment at which the child exists outside its cgroup.
//!
//! The child runs only async-signal-safe system calls on data prepared before the clone (like
//! `std::process::Command`'s `pre_exec` path; privilege changes as raw system calls, since
//! glibc's fork handlers do not run after a raw `clone3`): reset the signal mask and SIGPIPE, wire stdio,
//! `setpgid`, write `0` into extra `cgroup.procs` files (v1 hierarchies a fault already asked
//! for), `setns`, drop privileges, `chdir`, `execve`. An exec failure travels back through a
//! close-on-exec pipe as the errno. Where the kernel refuses `clone3` (`ENOSYS`, `EINVAL`,
//! `E2BIG`) [`spawn_into_cgroup`] returns `Ok(None)` and the caller falls back to
//! `std::process::Command` with `cgroup.procs` writes.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Where the child's stdin comes from.
#[derive(Debug)]
pub(crate) enum ChildStdin {
    /// An open file (`/dev/null` or a file given by the test).
    File(OwnedFd),
    /// A new pipe; the write end is returned in [`Spawned::stdin`].
    Pipe,
}

/// Everything the child needs, prepared before the clone.
#[derive(Debug)]
pub(crate) struct SpawnPlan {
    /// The program, as given (searched in `PATH` when it has no `/`).
    pub program: OsString,
    /// Arguments after the program name.
    pub args: Vec<OsString>,
    /// The complete environment of the child.
    pub env: Vec<(OsString, OsString)>,
    /// Working directory of the child.
    pub cwd: Option<PathBuf>,
    /// Standard input.
    pub stdin: ChildStdin,
    /// Standard output (a log file).
    pub stdout: OwnedFd,
    /// Standard error (a log file).
    pub stderr: OwnedFd,
    /// The cgroup2 directory the child is created in.
    pub cgroup: OwnedFd,
    /// Further `cgroup.procs` files (v1) the child writes `0` into before `exec`.
    pub procs: Vec<RawFd>,
    /// A network namespace to enter (`setns`).
    pub netns: Option<RawFd>,
    /// uid, gid and supplementary groups to switch to.
    pub ids: Option<(u32, u32, Vec<libc::gid_t>)>,
}

/// A started child.
#[derive(Debug)]
pub(crate) struct Spawned {
    /// Its pid.
    pub pid: i32,
    /// The write end of its stdin pipe ([`ChildStdin::Pipe`]).
    pub stdin: Option<std::process::ChildStdin>,
}

static UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// `struct clone_args` (version 2, with `cgroup`), see clone3(2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

fn cstring(s: &OsStr) -> std::io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{} contains a NUL byte", s.to_string_lossy()))
    })
}

/// The paths `execvp` would try for `program`, in order: itself when it contains `/`, else
/// `program` in each directory of `path` (the child's `PATH`). The child tries them after
/// dropping privileges, so one it may not enter (`/root/...` for another user) is skipped as
/// `execvp` skips it.
fn candidates(program: &OsStr, path: Option<&OsStr>) -> std::io::Result<Vec<CString>> {
    if program.as_bytes().contains(&b'/') {
        return Ok(vec![cstring(program)?]);
    }
    let path = path.map(OsStr::to_os_string).unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let dirs: Vec<PathBuf> =
        std::env::split_paths(&path).map(|d| if d.as_os_str().is_empty() { ".".into() } else { d }).collect();
    let v = dirs.iter().map(|d| cstring(d.join(program).as_os_str())).collect::<std::io::Result<Vec<_>>>()?;
    // Nothing of that name anywhere (as root, who can see everything): say so before forking.
    if !dirs.iter().any(|d| d.join(program).exists()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} not found in PATH", program.to_string_lossy()),
        ));
    }
    Ok(v)
}

/// A duplicate of `fd` numbered 3 or above (close-on-exec), so the child's `dup2` onto 0-2
/// never overwrites another source.
fn above_stdio(fd: OwnedFd) -> std::io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: fcntl on an fd we own; the result is a new fd we take ownership of.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `n` is a fresh fd returned by fcntl.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both are fresh fds from pipe2.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Starts the plan's program inside its cgroup2 cgroup. `Ok(None)` when this kernel has no
/// `clone3(CLONE_INTO_CGROUP)` (the caller falls back to `cgroup.procs` writes).
pub(crate) fn spawn_into_cgroup(plan: SpawnPlan) -> std::io::Result<Option<Spawned>> {
    if UNSUPPORTED.load(Ordering::Relaxed) {
        return Ok(None);
    }
    let path_env = plan.env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_os_str());
    let progs_c = candidates(&plan.program, path_env)?;
    let progs: Vec<*const libc::c_char> = progs_c.iter().map(|c| c.as_ptr()).collect();
    let mut argv_c = vec![cstring(&plan.program)?];
    for a in &plan.args {
        argv_c.push(cstring(a)?);
    }
    let mut argv: Vec<*const libc::c_char> = argv_c.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut env_c = Vec::with_capacity(plan.env.len());
    for (k, v) in &plan.env {
        let mut kv = k.as_bytes().to_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        env_c.push(CString::new(kv).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} contains a NUL byte", k.to_string_lossy()),
            )
        })?);
    }
    let mut envp: Vec<*const libc::c_char> = env_c.iter().map(|c| c.as_ptr()).collect();
    envp.push(std::ptr::null());
    let cwd = plan.cwd.as_deref().map(|d| cstring(d.as_os_str())).transpose()?;
    let (stdin_src, stdin_parent) = match plan.stdin {
        ChildStdin::File(f) => (above_stdio(f)?, None),
        ChildStdin::Pipe => {
            let (r, w) = pipe()?;
            (above_stdio(r)?, Some(w))
        }
    };
    let stdout = above_stdio(plan.stdout)?;
    let stderr = above_stdio(plan.stderr)?;
    let (err_r, err_w) = pipe()?;
    let (fd_in, fd_out, fd_err, fd_report) =
        (stdin_src.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd(), err_w.as_raw_fd());
    let procs = plan.procs.clone();
    let netns = plan.netns;
    let ids = plan.ids.clone();
    let mut args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: plan.cgroup.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM is fork(2) into a cgroup. In the child only
    // async-signal-safe system calls run, on memory prepared above (no allocation, no locks),
    // ending in execve or _exit.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, &mut args as *mut CloneArgs, std::mem::size_of::<CloneArgs>()) };
    if ret == 0 {
        // Child.
        // SAFETY: see above.
        unsafe {
            let fail = |fd: RawFd| -> ! {
                let errno = *libc::__errno_location();
                let b = errno.to_ne_bytes();
                libc::write(fd, b.as_ptr().cast(), b.len());
                libc::_exit(127)
            };
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            for (src, dst) in [(fd_in, 0), (fd_out, 1), (fd_err, 2)] {
                if libc::dup2(src, dst) < 0 {
                    fail(fd_report);
                }
            }
            if libc::setpgid(0, 0) != 0 {
                fail(fd_report);
            }
            for &fd in &procs {
                if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    fail(fd_report);
                }
            }
            if let Some(fd) = netns
                && libc::setns(fd, libc::CLONE_NEWNET) != 0
            {
                fail(fd_report);
            }
            // Raw system calls: glibc's setgroups/setgid/setuid broadcast to every thread it
            // believes exists, and after a raw clone3 it still counts the parent's threads (its
            // fork handlers did not run), so the wrappers would wait forever.
            if let Some((uid, gid, groups)) = &ids
                && (libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) != 0
                    || libc::syscall(libc::SYS_setgid, *gid) != 0
                    || libc::syscall(libc::SYS_setuid, *uid) != 0)
            {
                fail(fd_report);
            }
            if let Some(d) = &cwd
                && libc::chdir(d.as_ptr()) != 0
            {
                fail(fd_report);
            }
            // execvp's search: skip what is missing or may not be entered, stop at other errors.
            let mut denied = false;
            let mut last = libc::ENOENT;
            for &prog in &progs {
                libc::execve(prog, argv.as_ptr(), envp.as_ptr());
                last = *libc::__errno_location();
                match last {
                    libc::EACCES => denied = true,
                    libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                    _ => break,
                }
            }
            *libc::__errno_location() = if denied && last == libc::ENOENT { libc::EACCES } else { last };
            fail(fd_report)
        }
    }
    if ret < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOSYS) | Some(libc::EINVAL) | Some(libc::E2BIG) | Some(libc::EOPNOTSUPP) => {
                UNSUPPORTED.store(true, Ordering::Relaxed);
                Ok(None)
            }
            _ => Err(e),
        };
    }
    let pid = ret as i32;
    drop(err_w);
    drop((stdin_src, stdout, stderr));
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reading into our own buffer from a pipe we own.
        let n = unsafe { libc::read(err_r.as_raw_fd(), buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    if got == buf.len() {
        let _ = wait(pid);
        return Err(std::io::Error::from_raw_os_error(i32::from_ne_bytes(buf)));
    }
    Ok(Some(Spawned { pid, stdin: stdin_parent.map(std::process::ChildStdin::from) }))
}

/// Waits for the child `pid` to exit and reaps it.
pub(crate) fn wait(pid: i32) -> std::io::Result<std::process::ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(std::process::ExitStatus::from_raw(status));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Opens a cgroup directory for `CLONE_INTO_CGROUP`.
pub(crate) fn open_cgroup_dir(dir: &Path) -> std::io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC).open(dir)?;
    Ok(f.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_execvp() {
        assert_eq!(candidates("./x".as_ref(), None).unwrap(), [CString::new("./x").unwrap()]);
        let sh = candidates("sh".as_ref(), Some("/nonexistent:/bin".as_ref())).unwrap();
        assert_eq!(sh, [CString::new("/nonexistent/sh").unwrap(), CString::new("/bin/sh").unwrap()]);
        let e = candidates("no-such-program-xyz".as_ref(), Some("/bin".as_ref())).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }
}
