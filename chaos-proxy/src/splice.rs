//! Zero-copy forwarding with `splice(2)` through a pipe, for link directions that have no
//! active toxic: the kernel moves the bytes from one socket to the other without copying them
//! through user space. Linux only; elsewhere (or if a pipe cannot be made) the pump copies.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Pipe capacity asked for (the default is 64 KiB); pages are only used while data is in it.
const PIPE_SIZE: libc::c_int = 1 << 20;

/// A non-blocking pipe used as the splice buffer of one link direction.
#[derive(Debug)]
pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    pub(crate) fn new() -> io::Result<Pipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // Best effort: a bigger pipe means fewer syscalls per megabyte.
        // SAFETY: fcntl on an fd we own; failure is harmless (the pipe keeps its size).
        unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) };
        // SAFETY: as above.
        let size = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) };
        let capacity = usize::try_from(size).ok().filter(|&s| s > 0).unwrap_or(64 * 1024);
        Ok(Pipe { read, write, capacity })
    }

    /// Move up to the pipe's capacity from socket `from` into the pipe. `Ok(0)` is EOF.
    pub(crate) fn fill_from(&self, from: RawFd) -> io::Result<usize> {
        splice(from, self.write.as_raw_fd(), self.capacity)
    }

    /// Move up to `len` bytes from the pipe to socket `to`.
    pub(crate) fn drain_to(&self, to: RawFd, len: usize) -> io::Result<usize> {
        splice(self.read.as_raw_fd(), to, len)
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: plain syscall on open fds with null offsets (both are sockets or pipes).
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}
