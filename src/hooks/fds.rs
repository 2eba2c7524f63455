//! What the hooks know about each fd: its kind (cached after one `fstat`) and, for fds a
//! green thread had to wait on, their reactor registration.

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};

use crate::reactor::Registration;

/// fds at or above this pass through (the table stays small: one byte per fd).
pub(crate) const MAX_FDS: usize = 1 << 16;

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

fn table() -> &'static [AtomicU8] {
    static TABLE: OnceLock<Box<[AtomicU8]>> = OnceLock::new();
    TABLE.get_or_init(|| (0..MAX_FDS).map(|_| AtomicU8::new(UNKNOWN)).collect())
}

/// Registrations made for hooked fds (only when a green thread had to wait on one).
fn registrations() -> &'static Mutex<HashMap<RawFd, Arc<Registration>>> {
    static REGS: OnceLock<Mutex<HashMap<RawFd, Arc<Registration>>>> = OnceLock::new();
    REGS.get_or_init(|| Mutex::new(HashMap::new()))
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

/// Marks an fd weft registered itself: the hooks pass it through.
pub(crate) fn mark_weft_owned(fd: RawFd) {
    if let Some(slot) = slot(fd) {
        slot.store(WEFT, Relaxed);
    }
}

/// Forgets what is known about `fd` (it is being closed, or replaced by `dup2`/`dup3`),
/// deregistering it from the reactor first if a hook registered it.
pub(crate) fn unmark(fd: RawFd) {
    let Some(slot) = slot(fd) else { return };
    if slot.swap(UNKNOWN, Relaxed) == UNKNOWN {
        return;
    }
    forget(fd);
}

/// Drops the hooks' registration of `fd`, taking the fd out of epoll now: a green thread
/// still holding the registration must not `epoll_del` the number later, when it may name
/// another file (weft's own socket, say).
pub(crate) fn forget(fd: RawFd) {
    let registration = registrations()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&fd);
    if let Some(registration) = registration {
        registration.remove_now();
    }
}

/// Clears the weft-owned mark of `fd` (its registration went).
pub(crate) fn unmark_weft_owned(fd: RawFd) {
    if let Some(slot) = slot(fd) {
        let _ = slot.compare_exchange(WEFT, UNKNOWN, Relaxed, Relaxed);
    }
}

/// Overrides the cached kind of `fd` (a pipe without `RWF_NOWAIT` becomes pass-through).
pub(crate) fn set_kind(fd: RawFd, kind: u8) {
    if let Some(slot) = slot(fd) {
        slot.store(kind, Relaxed);
    }
}

/// The reactor registration of a hooked fd, if a green thread waited on it before.
pub(crate) fn existing_registration(fd: RawFd) -> Option<Arc<Registration>> {
    registrations()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&fd)
        .cloned()
}

/// The reactor registration of a hooked fd, made on first need.
pub(crate) fn registration(fd: RawFd) -> std::io::Result<Arc<Registration>> {
    let mut regs = registrations().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(existing) = regs.get(&fd) {
        return Ok(existing.clone());
    }
    let fresh = Arc::new(Registration::new_foreign(fd)?);
    regs.insert(fd, fresh.clone());
    Ok(fresh)
}
