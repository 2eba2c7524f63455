//! Handles to green threads and the calls a green thread makes about itself:
//! [`current`], [`is_coroutine`], [`yield_now`], [`park`].

use std::fmt;
use std::sync::Arc;

use crate::runtime::park;
pub use crate::runtime::scheduler::task::CoroutineId;
use crate::runtime::scheduler::{context, task::Suspend, task::Task};

/// A handle to a green thread: its id, its name, and a way to [`unpark`](Coroutine::unpark)
/// it. Cheap to clone; keeping one alive does not keep the green thread running.
#[derive(Clone)]
pub struct Coroutine {
    task: Arc<Task>,
}

impl Coroutine {
    pub(crate) fn from_task(task: Arc<Task>) -> Coroutine {
        Coroutine { task }
    }

    /// The green thread's id.
    pub fn id(&self) -> CoroutineId {
        self.task.id
    }

    /// The name given with [`Builder::name`](crate::Builder::name), if any.
    pub fn name(&self) -> Option<&str> {
        self.task.name.as_deref()
    }

    /// Whether the green thread's body has returned (it is finishing or finished).
    pub(crate) fn is_finished(&self) -> bool {
        self.task
            .finished
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether this is the green thread that calls it.
    pub(crate) fn is_current(&self) -> bool {
        std::ptr::eq(context::current_task(), Arc::as_ptr(&self.task))
    }

    /// Cancels the green thread: it unwinds from its current or next blocking point (park,
    /// IO, sleep, channel, select, lock, condvar, join, `offload` once its closure returned,
    /// `yield_now`), running its destructors, and its `join` returns `Err` with a
    /// [`Cancelled`](crate::Cancelled) payload. A no-op on a finished green thread;
    /// cancelling twice is cancelling once. See [`crate::interrupt`] for the details,
    /// including destructors that block.
    pub fn cancel(&self) {
        if self.task.cancel() {
            crate::stats::note_cancelled();
        }
    }

    /// Makes the green thread's token available: if it is blocked in [`park`], it wakes;
    /// otherwise its next `park` returns at once. Callable from any thread.
    pub fn unpark(&self) {
        park::unpark_task(&self.task);
    }
}

impl fmt::Debug for Coroutine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coroutine")
            .field("id", &self.id())
            .field("name", &self.name())
            .finish()
    }
}

/// The green thread that calls it.
///
/// # Panics
/// When called outside a green thread; see [`is_coroutine`].
///
/// ```
/// let name = weft::Builder::new()
///     .name("worker-7")
///     .spawn(|| weft::current().name().map(str::to_owned))
///     .unwrap()
///     .join()
///     .unwrap();
/// assert_eq!(name.as_deref(), Some("worker-7"));
/// ```
pub fn current() -> Coroutine {
    match park::current_task() {
        Some(task) => Coroutine::from_task(task),
        None => panic!("weft::current() called outside a green thread; check weft::is_coroutine()"),
    }
}

/// Whether the caller runs in a green thread (as opposed to a plain OS thread).
pub fn is_coroutine() -> bool {
    !context::current_task().is_null()
}

/// Lets the other runnable green threads on this worker run, then continues. Outside a green
/// thread, this is `std::thread::yield_now`.
///
/// ```
/// let handle = weft::spawn(|| {
///     for _ in 0..3 {
///         weft::yield_now();
///     }
///     "done"
/// });
/// assert_eq!(handle.join().unwrap(), "done");
/// ```
pub fn yield_now() {
    // One look at the thread-local for both the worker and the running task.
    let Some(local) = context::local() else {
        return std::thread::yield_now();
    };
    let task = local.current.get();
    if task.is_null() {
        return std::thread::yield_now();
    }
    if std::thread::panicking() {
        // A switch mid-unwind would corrupt std's per-OS-thread panic count (see `park`).
        return;
    }
    // SAFETY: the running task is alive while it runs, and we are it.
    let task = unsafe { &*task };
    // A blocking point for cancellation and deadlines (nothing is registered anywhere):
    // two plain loads when neither applies.
    if task.is_cancelled() || task.boundary.get().is_some() {
        crate::runtime::blocking_point::checkpoint();
    }
    // Nothing else could run: carry on here, with the worker's bookkeeping done, instead
    // of switching to the worker only to be resumed at once.
    if local.yield_in_place() {
        return;
    }
    switch_out(task);
}

/// The switch of a yield, out of line: the switch clobbers every callee-saved register, and
/// keeping it out of `yield_now` spares the in-place path their saves and restores.
#[inline(never)]
fn switch_out(task: &crate::runtime::scheduler::task::Task) {
    park::suspend(task, Suspend::Yield);
}

/// Blocks the calling green thread until its token is made available by
/// [`Coroutine::unpark`], then consumes the token. If the token is already there, returns at
/// once: an unpark that arrives before the park is not lost. Outside a green thread, this is
/// `std::thread::park` (unparked with `std::thread::Thread::unpark`).
///
/// As with std, callers should re-check their condition in a loop.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let ready = Arc::new(AtomicBool::new(false));
/// let flag = ready.clone();
/// let waiter = weft::spawn(move || {
///     while !flag.load(Ordering::Acquire) {
///         weft::park();
///     }
/// });
/// ready.store(true, Ordering::Release);
/// waiter.coroutine().unpark();
/// waiter.join().unwrap();
/// ```
#[track_caller]
pub fn park() {
    // On a plain thread this is std's park (std's token), bounded by a `timeout` boundary.
    crate::runtime::blocking_point::park_once(
        crate::runtime::blocking_point::wait_site!(crate::WaitReason::Park),
        None,
    );
}
