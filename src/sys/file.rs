//! Regular-file and process syscalls: `preadv2`/`pwritev2` with `RWF_NOWAIT` (the page-cache
//! fast path of `weft::fs`), and `pidfd_open` (a child's exit as a readable fd).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// What a `RWF_NOWAIT` call can say besides data.
pub(crate) enum NoWait {
    /// The call would have to wait for the disk (or a lock): do it on a blocking thread.
    WouldBlock,
    /// The file system (or the kernel) does not do `RWF_NOWAIT` for this file and call.
    Unsupported,
}

/// Maps the errors of a `RWF_NOWAIT` call: `Err(Ok(NoWait))` means "not done, go slow",
/// `Err(Err(e))` is the call's real error.
fn nowait_result(res: io::Result<isize>) -> Result<usize, Result<NoWait, io::Error>> {
    match res {
        Ok(n) => Ok(n as usize),
        Err(e) => Err(match e.raw_os_error() {
            Some(libc::EAGAIN) => Ok(NoWait::WouldBlock),
            // EOPNOTSUPP: the file system has no NOWAIT for this call (ext4's buffered
            // writes); EINVAL: a kernel older than 4.14 does not know the flag; ENOSYS: no
            // preadv2/pwritev2 at all (older kernels, some sandboxes); EPERM: a seccomp
            // filter refused the call. The plain call on the pool will say what is true.
            Some(libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS | libc::EPERM) => {
                Ok(NoWait::Unsupported)
            }
            _ => Err(e),
        }),
    }
}

/// `preadv2(fd, buf, offset, RWF_NOWAIT)`: reads only what the page cache holds. `offset`
/// -1 reads at, and advances, the file position.
pub(crate) fn read_nowait(
    fd: RawFd,
    buf: &mut [u8],
    offset: i64,
) -> Result<usize, Result<NoWait, io::Error>> {
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: one iovec describing a live, writable buffer.
    nowait_result(syscall!(retry_eintr preadv2(fd, &iov, 1, offset, libc::RWF_NOWAIT)))
}

/// `pwritev2(fd, buf, offset, RWF_NOWAIT)`: writes only if it need not wait. `offset` -1
/// writes at, and advances, the file position (or appends, for `O_APPEND`).
pub(crate) fn write_nowait(
    fd: RawFd,
    buf: &[u8],
    offset: i64,
) -> Result<usize, Result<NoWait, io::Error>> {
    let iov = libc::iovec {
        iov_base: buf.as_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: one iovec describing a live buffer, which the kernel only reads.
    nowait_result(syscall!(retry_eintr pwritev2(fd, &iov, 1, offset, libc::RWF_NOWAIT)))
}

/// `pidfd_open(pid, 0)` (Linux ≥ 5.3): an fd that becomes readable when the process exits.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: a plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd, and nothing else owns it. It is close-on-exec
    // by definition.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
