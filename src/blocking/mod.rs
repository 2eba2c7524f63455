//! Go's syscall-thread trick: [`offload`] runs a blocking call on a pool of blocking threads
//! while the calling green thread parks, so its worker keeps running the others.
//!
//! epoll can wait for sockets, pipes and timers, but not for everything a synchronous
//! program blocks on: regular files are always "ready", `getaddrinfo` has no non-blocking
//! form, and plenty of libraries make blocking calls of their own. Go runs such calls on
//! another OS thread so that the goroutines of the blocked one carry on; weft does the same
//! with an elastic pool ([`pool`]): up to `Config::max_blocking_threads` threads (default
//! 512, `WEFT_MAX_BLOCKING_THREADS`), made on demand, retired after 10 s idle. Past the
//! maximum, calls queue in FIFO order; they never fail and never deadlock the workers.
//!
//! `weft::fs`, host-name resolution in `weft::net` and `weft::process` use it; so can you,
//! for any blocking call weft does not wrap.
//!
//! # The hand-off
//!
//! `offload(f)` puts a *frame* on the caller's own stack: the closure, a slot for its
//! result and a [wait cell](crate::runtime::wait). It queues a two-word job pointing at that frame
//! and waits on the cell. A pool thread runs the closure (catching a panic), writes the
//! result into the slot, then completes the cell: it wakes the caller through its home
//! worker's inbox (a targeted wake, as the reactor does) and stores `DONE` (Release). The
//! caller reads `DONE` (Acquire), takes the result, and returns or re-raises the panic.
//! A round trip costs two cross-thread wakes (tens of µs here), so use it for calls that
//! really block, not for ones that merely might.
//!
//! # Why `f` may borrow from the caller
//!
//! `f` needs `Send` but not `'static`, as with `std::thread::scope`: the frame lives in the
//! caller's stack frame, and the caller does not leave `offload` until the cell says `DONE`.
//! The pool thread stops touching the frame with that very store, and it moved the closure
//! out before running it; so every borrow `f` holds ends before the caller can return. The
//! wait cannot end any other way: it has no deadline, spurious wake-ups re-check the cell,
//! and a parked green thread is never dropped or unwound by weft (a green thread parked for
//! ever is leaked, not freed). Cancellation keeps this: the wait is uninterruptible at the
//! blocking point (`crate::runtime::blocking_point`, `OnInterrupt::Ignore`), so a cancelled green
//! thread in `offload` waits for `f` to return and unwinds only after that.
//!
//! # Where it does not hand off
//!
//! On a plain thread (the pool's own threads included), `offload(f)` simply calls `f`: the
//! thread may block. So does a green thread that is unwinding from a panic, which must not
//! switch (see `scheduler::unwinding`).
//!
//! # What still blocks a worker
//!
//! A blocking call that does not go through weft: `std::fs`, `std::thread::sleep`, a
//! third-party crate's own socket or file IO. Wrap such calls in `offload`, or use the weft
//! equivalents (`weft::fs`, `weft::sleep`, `weft::net`).

pub(crate) mod pool;

use std::cell::UnsafeCell;
use std::panic::{self, AssertUnwindSafe};
use std::thread;

use crate::runtime::scheduler::{self, context};
use crate::runtime::wait::Waiter;

/// Runs `f` on a blocking thread while the calling green thread parks; returns what `f`
/// returned, and re-raises its panic if it panicked. On a plain thread it just calls `f`.
///
/// Use it for blocking calls that weft does not wrap, so that the other green threads of
/// the caller's worker keep running. `f` may borrow from the caller.
///
/// ```
/// use std::time::Duration;
///
/// let config = String::from("settings");
/// let len = weft::run(|| {
///     // A blocking call outside weft: on a worker it would stop every green thread there.
///     weft::offload(|| {
///         std::thread::sleep(Duration::from_millis(10));
///         config.len() // borrowed from the caller's stack
///     })
/// });
/// assert_eq!(len, 8);
/// ```
#[track_caller]
pub fn offload<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let value = offload_then(f);
    // A cancel or a deadline that came while `f` ran takes effect now that it is done.
    crate::runtime::blocking_point::checkpoint();
    value
}

/// [`offload`] without the interrupt check after `f` returned: for callers that must hand
/// `f`'s result on whatever happens (the hooks' `getaddrinfo`, whose result owns memory).
#[track_caller]
pub(crate) fn offload_then<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    if context::current_task().is_null() || thread::panicking() {
        return f();
    }
    let pool = pool::get(|| {
        scheduler::try_runtime().map_or(crate::runtime::config::DEFAULT_MAX_BLOCKING_THREADS, |r| {
            r.max_blocking_threads
        })
    });
    let frame = Frame {
        f: UnsafeCell::new(Some(f)),
        result: UnsafeCell::new(None),
        done: Waiter::new(),
    };
    // A blocking point: a green thread already cancelled does not start the call.
    crate::runtime::blocking_point::checkpoint();
    let site = crate::runtime::blocking_point::wait_site!(crate::WaitReason::Offload);
    pool.submit(pool::Job {
        run: Frame::<F, T>::run,
        data: (&frame as *const Frame<F, T>).cast(),
    });
    // No deadline and deaf to interrupts: returns only once the pool thread has stored DONE
    // (see the module docs).
    frame.done.wait_uninterruptible(site);
    // SAFETY: DONE was read with Acquire, pairing with the pool thread's Release; the pool
    // thread wrote the result before it and never touches the frame again.
    let result = unsafe { (*frame.result.get()).take() };
    match result.expect("weft: an offloaded call completed without a result") {
        Ok(value) => value,
        Err(payload) => panic::resume_unwind(payload),
    }
}

/// What `offload` keeps on the caller's stack for one call.
struct Frame<F, T> {
    f: UnsafeCell<Option<F>>,
    result: UnsafeCell<Option<thread::Result<T>>>,
    done: Waiter,
}

impl<F: FnOnce() -> T, T> Frame<F, T> {
    /// Runs on a pool thread.
    ///
    /// # Safety
    /// `data` points to a live `Frame<F, T>` whose owner waits on `done` without a deadline,
    /// and this is the only job made for it.
    unsafe fn run(data: *const ()) {
        // SAFETY: by the contract, the frame is alive until we complete `done`, and we are
        // the only one touching `f` and `result` until then (the owner only waits).
        let frame = unsafe { &*data.cast::<Frame<F, T>>() };
        // SAFETY: as above; taken once.
        let f = unsafe { (*frame.f.get()).take() }.expect("weft: an offload job ran twice");
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        // SAFETY: as above; published by the DONE store in the claim's drop.
        unsafe { *frame.result.get() = Some(result) };
        // SAFETY: the owner cannot abort (no deadline) and we hold the only ref, so the
        // waiter is alive and unclaimed.
        let claimed = unsafe { frame.done.as_ref().try_claim(0) };
        // Wakes the owner, then stores DONE; after this the frame may be gone.
        drop(claimed.expect("weft: an offload was completed twice"));
    }
}
