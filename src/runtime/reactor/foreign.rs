//! What the `hooks` feature asks the reactor about fds: which ones weft owns (their calls
//! pass straight through the hooks), and the registrations of fds weft does not own, made
//! when a green thread had to wait on one inside a hooked call.
//!
//! The reactor keeps both, so it never has to tell the hooks anything: registering an fd as
//! weft's first drops a foreign registration of that fd (epoll would say `EEXIST`) and marks
//! the fd owned; dropping weft's registration unmarks it. The hooks only ask.

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use crate::runtime::os_lock::OsMutex;

use super::Registration;

/// fds at or above this are never reported owned (the table stays small: a byte per fd);
/// the hooks pass such fds through.
pub(crate) const MAX_FDS: usize = 1 << 16;

fn owned_table() -> &'static [AtomicBool] {
    static TABLE: OnceLock<Box<[AtomicBool]>> = OnceLock::new();
    TABLE.get_or_init(|| (0..MAX_FDS).map(|_| AtomicBool::new(false)).collect())
}

fn owned_slot(fd: RawFd) -> Option<&'static AtomicBool> {
    usize::try_from(fd)
        .ok()
        .filter(|&fd| fd < MAX_FDS)
        .map(|fd| &owned_table()[fd])
}

/// Whether `fd` is registered by weft itself (a `weft::net` socket, a child's pipe…).
/// Relaxed: the owner sets it before the fd is handed to anyone, and clears it before the
/// fd closes; a hooked call racing a close of its own fd is the caller's bug either way.
pub(crate) fn is_weft_owned(fd: RawFd) -> bool {
    owned_slot(fd).is_some_and(|slot| slot.load(Relaxed))
}

pub(super) fn set_weft_owned(fd: RawFd, owned: bool) {
    if let Some(slot) = owned_slot(fd) {
        slot.store(owned, Relaxed);
    }
}

/// Registrations made for fds weft does not own.
fn registrations() -> &'static OsMutex<HashMap<RawFd, Arc<Registration>>> {
    static REGS: OnceLock<OsMutex<HashMap<RawFd, Arc<Registration>>>> = OnceLock::new();
    REGS.get_or_init(|| OsMutex::new(HashMap::new()))
}

/// The registration of a foreign fd, if a green thread waited on it before.
pub(crate) fn existing(fd: RawFd) -> Option<Arc<Registration>> {
    registrations()
        .lock()
        .get(&fd)
        .cloned()
}

/// The registration of a foreign fd, made on first need.
pub(crate) fn register(fd: RawFd) -> io::Result<Arc<Registration>> {
    let mut regs = registrations().lock();
    if let Some(existing) = regs.get(&fd) {
        return Ok(existing.clone());
    }
    let fresh = Arc::new(Registration::new_foreign(fd)?);
    regs.insert(fd, fresh.clone());
    Ok(fresh)
}

/// Drops the foreign registration of `fd`, taking the fd out of epoll now: a green thread
/// still holding the registration must not `epoll_del` the number later, when it may name
/// another file (weft's own socket, say).
pub(crate) fn forget(fd: RawFd) {
    let registration = registrations()
        .lock()
        .remove(&fd);
    if let Some(registration) = registration {
        registration.remove_now();
    }
}
