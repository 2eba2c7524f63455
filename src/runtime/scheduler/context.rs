//! The runtime's thread-local worker pointer, and the accessors that read it. (The other
//! runtime thread-local, the cooperative budget in `coop.rs`, is atomic and may be inlined;
//! its module docs say why.)
//!
//! # Why the accessors are `#[inline(never)]`
//!
//! LLVM assumes a function runs on one thread from entry to exit, so it may compute the
//! address of a thread-local once and reuse it after an opaque call. A green-thread switch is
//! such a call, and for a migratable green thread the code after it may run on another OS
//! thread: a cached address would then point at the *previous* thread's variable. Every read
//! of [`LOCAL`] therefore happens inside a non-inlined function that loads the cell's value
//! (a memory read, so calls on either side of a switch — an `asm!` block that clobbers memory —
//! cannot be merged). No caller ever holds a TLS address, only the `&'static Local` it points
//! to, which belongs to the worker and stays valid for the life of the process.
//! `asm-notes/thread-locals.md` shows the generated code.
//!
//! For sticky green threads (the default) the OS thread never changes, so this matters for the
//! runtime's own state only when a green thread is migratable; the accessors are written so
//! both cases are correct.

use std::cell::Cell;
use std::ptr;

use super::task::Task;
use super::worker::Local;

thread_local! {
    /// The worker-local state of the worker running on this OS thread; null on other threads.
    /// Const-initialised with no destructor, so an access is a plain TLS load that cannot
    /// allocate or fail — which also makes it usable from the overflow signal handler.
    static LOCAL: Cell<*const Local> = const { Cell::new(ptr::null()) };
}

/// Installs the worker-local state for the calling worker thread (once, at thread start).
pub(crate) fn set_local(local: &'static Local) {
    LOCAL.with(|cell| cell.set(local));
}

/// The worker this OS thread runs, or `None` on a plain thread.
#[inline(never)]
pub(crate) fn local() -> Option<&'static Local> {
    let ptr = LOCAL.with(|cell| cell.get());
    // SAFETY: non-null values are `&'static Local` installed by `set_local`.
    unsafe { ptr.as_ref() }
}

/// The green thread running on this OS thread, or null on a plain thread or between tasks.
#[inline(never)]
pub(crate) fn current_task() -> *const Task {
    let local = LOCAL.with(|cell| cell.get());
    // SAFETY: non-null values are `&'static Local` installed by `set_local`.
    match unsafe { local.as_ref() } {
        Some(local) => local.current.get(),
        None => ptr::null(),
    }
}

/// For the overflow signal handler: the guard range, stack size, id and name of the green
/// thread running on this thread, if any. Async-signal-safe: reads a const thread-local and
/// immutable task fields, allocates nothing, takes no lock.
pub(crate) fn running_guard() -> Option<(&'static Task, (usize, usize))> {
    let local = LOCAL.try_with(|cell| cell.get()).ok()?;
    // SAFETY: see `local`.
    let local = unsafe { local.as_ref() }?;
    // SAFETY: `current` is non-null only while the worker holds the task's scheduling
    // reference (it is running), so the task is alive; it stays alive while the fault handler
    // runs because the faulting task cannot finish meanwhile. 'static is a local fiction: the
    // handler aborts before returning when it uses the task.
    let task: &'static Task = unsafe { local.current.get().as_ref() }?;
    Some((task, task.guard_range))
}
