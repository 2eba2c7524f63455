//! What the hooks know about each fd: its kind (cached after one `fstat`; whether weft
//! owns it, and the registrations of fds a green thread had to wait on, are the reactor's
//! to say: see `runtime::reactor::foreign`).

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use crate::runtime::reactor::{foreign, Registration};

/// fds at or above this pass through (the table stays small: one byte per fd).
pub(crate) use crate::runtime::reactor::foreign::MAX_FDS;

/// Not looked at yet (or closed since).
pub(crate) const UNKNOWN: u8 = 0;
/// Registered by weft itself: pass through.
pub(crate) const WEFT: u8 = 1;
pub(crate) const SOCKET: u8 = 2;
/// A pipe or FIFO.
pub(crate) const PIPE: u8 = 3;
pub(crate) const REGULAR: u8 = 4;
/// Anything else (terminal, device, epoll, eventfd…): pass through.
pub(crate) const OTHER: u8 = 5;
/// A pipe or FIFO that refuses `RWF_NOWAIT` (named FIFOs do): tried with `O_NONBLOCK`
/// set around the call instead.
pub(crate) const FIFO: u8 = 6;

fn table() -> &'static [AtomicU8] {
    static TABLE: OnceLock<Box<[AtomicU8]>> = OnceLock::new();
    TABLE.get_or_init(|| (0..MAX_FDS).map(|_| AtomicU8::new(UNKNOWN)).collect())
}

/// Builds the lazily made tables a hooked call reads, before `main` (single-threaded): a
/// first-use race on them later would be a futex wait inside a hooked call.
pub(crate) fn prepare() {
    let _ = table();
    let _ = foreign::is_weft_owned(0);
    let _ = foreign::existing(-1);
    let _ = crate::sys::page_size();
}

fn slot(fd: RawFd) -> Option<&'static AtomicU8> {
    usize::try_from(fd)
        .ok()
        .filter(|&fd| fd < MAX_FDS)
        .map(|fd| &table()[fd])
}

/// The fd's kind, classifying it (one `fstat`) on first use. Relaxed: a cache each entry
/// of which is valid on its own; a stale read costs one reclassification.
pub(crate) fn kind(fd: RawFd) -> u8 {
    // Asked of the reactor first: it knows which fds weft registered.
    if foreign::is_weft_owned(fd) {
        return WEFT;
    }
    let Some(slot) = slot(fd) else { return OTHER };
    match slot.load(Relaxed) {
        UNKNOWN => {
            let kind = classify(fd);
            // Only over UNKNOWN: a concurrent mark (weft's, or a close's reset) wins.
            let _ = slot.compare_exchange(UNKNOWN, kind, Relaxed, Relaxed);
            kind
        }
        kind => kind,
    }
}

fn classify(fd: RawFd) -> u8 {
    // SAFETY: a zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes the struct it is given.
    if unsafe { libc::syscall(libc::SYS_fstat, fd, &mut st as *mut libc::stat) } != 0 {
        return OTHER;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFSOCK => SOCKET,
        libc::S_IFIFO => PIPE,
        libc::S_IFREG => REGULAR,
        _ => OTHER,
    }
}

/// Forgets what is known about `fd` (it is being closed, or replaced by `dup2`/`dup3`),
/// deregistering it from the reactor first if a hook registered it.
pub(crate) fn unmark(fd: RawFd) {
    let Some(slot) = slot(fd) else { return };
    if slot.swap(UNKNOWN, Relaxed) == UNKNOWN {
        return;
    }
    foreign::forget(fd);
}

/// Overrides the cached kind of `fd` (a pipe without `RWF_NOWAIT` becomes pass-through).
pub(crate) fn set_kind(fd: RawFd, kind: u8) {
    if let Some(slot) = slot(fd) {
        slot.store(kind, Relaxed);
    }
}

/// The reactor registration of a hooked fd, if a green thread waited on it before.
pub(crate) fn existing_registration(fd: RawFd) -> Option<Arc<Registration>> {
    foreign::existing(fd)
}

/// The reactor registration of a hooked fd, made on first need.
pub(crate) fn registration(fd: RawFd) -> std::io::Result<Arc<Registration>> {
    foreign::register(fd)
}
