//! Joining: the packet a green thread leaves its result in, and [`JoinHandle`].
//!
//! # The packet protocol
//!
//! `state` is a status in its low bits, which moves forward only (`RUNNING → JOINING → DONE`
//! or `RUNNING → DONE`), plus a `POLLED` flag:
//!
//! * The joiner stores its [`Unparker`] in `waiter`, then CASes the status `RUNNING →
//!   JOINING`, keeping `POLLED` (Release: publishes `waiter`). If it finds `DONE`, the
//!   result is already there. Otherwise it parks until it reads `DONE` (Acquire).
//! * A poller (`JoinHandle` as a `Future`) stores its `Waker` in `future_waker` under that
//!   slot's lock, then sets `POLLED` with a `fetch_or` (AcqRel). If that finds `DONE`, the
//!   result is ready now; otherwise the green thread will see `POLLED`.
//! * The green thread stores its result, then swaps in `DONE` (AcqRel: the release publishes
//!   the result to the joiner's or poller's acquire; the acquire makes a `waiter` written
//!   before `JOINING`, and a waker stored before `POLLED`, visible). If the swap returned
//!   `JOINING`, it unparks the waiter; if it returned `POLLED`, it wakes the stored waker.
//!   A completion nobody polled takes no lock.
//!
//! Each `UnsafeCell` has one writer at a time: `waiter` is written only before `JOINING` and
//! read only after it; `result` is written only before `DONE` and taken only after it.

use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering::AcqRel, Ordering::Acquire, Ordering::Release};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread;

use crate::runtime::blocking_point::{self, wait_site, OnInterrupt, Until};
use crate::coroutine::Coroutine;
use crate::runtime::park::Unparker;
use crate::scope::ScopeData;

const RUNNING: u8 = 0;
const JOINING: u8 = 1;
const DONE: u8 = 2;
/// The status bits of `state`.
const STATUS: u8 = 0b11;
/// Set once a `JoinHandle` was polled as a future: completion must wake `future_waker`.
const POLLED: u8 = 0b100;

pub(crate) struct Packet<'scope, T> {
    state: AtomicU8,
    waiter: UnsafeCell<Option<Unparker>>,
    /// The waker of the last poll, when the handle is awaited as a future.
    future_waker: crate::runtime::spin::SpinLock<Option<Waker>>,
    result: UnsafeCell<Option<thread::Result<T>>>,
    /// For scoped green threads: the scope counts this packet as a running thread until the
    /// packet (and so the result, which may borrow from the scope) is dropped.
    scope: Option<Arc<ScopeData>>,
    _marker: PhantomData<Option<&'scope ScopeData>>,
}

// SAFETY: the cells are accessed under the protocol in the module docs, which gives each a
// single writer at a time with release/acquire hand-offs; the result moves between threads,
// hence `T: Send`.
unsafe impl<T: Send> Sync for Packet<'_, T> {}

impl<'scope, T> Packet<'scope, T> {
    pub(crate) fn new(scope: Option<Arc<ScopeData>>) -> Packet<'scope, T> {
        Packet {
            state: AtomicU8::new(RUNNING),
            waiter: UnsafeCell::new(None),
            future_waker: crate::runtime::spin::SpinLock::new(None),
            result: UnsafeCell::new(None),
            scope,
            _marker: PhantomData,
        }
    }

    /// Called once, by the green thread, with its outcome.
    pub(crate) fn complete(&self, result: thread::Result<T>) {
        // SAFETY: before DONE only the green thread touches `result`.
        unsafe { *self.result.get() = Some(result) };
        let previous = self.state.swap(DONE, AcqRel);
        if previous & STATUS == JOINING {
            // SAFETY: the joiner wrote `waiter` before its releasing CAS to JOINING, which our
            // acquiring swap observed; it will not touch it again.
            if let Some(waiter) = unsafe { (*self.waiter.get()).take() } {
                waiter.unpark();
            }
        }
        if previous & POLLED != 0 {
            // Taken under the lock, woken after it: `wake` runs the executor's code.
            let waker = self.future_waker.lock().take();
            if let Some(waker) = waker {
                // A user's waker that panics must not unwind into the runtime (the green
                // thread is finishing, and a worker that unwinds aborts the process): the
                // panic hook has reported it, and the wake is lost as the waker chose.
                if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| waker.wake())) {
                    // Its destructor is user code too, and could panic again.
                    std::mem::forget(payload);
                }
            }
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state.load(Acquire) & STATUS == DONE
    }

    /// Blocks until the result is there, then takes it. Called at most once (by `join`).
    /// `id` is the green thread's, for dumps.
    #[track_caller]
    pub(crate) fn wait_and_take(&self, id: u64) -> thread::Result<T> {
        if !self.is_done() {
            // SAFETY: before JOINING only the (single) joiner touches `waiter`.
            unsafe { *self.waiter.get() = Some(Unparker::current()) };
            let mut current = self.state.load(Acquire);
            while current & STATUS == RUNNING {
                match self.state.compare_exchange(
                    current,
                    (current & POLLED) | JOINING,
                    Release,
                    Acquire,
                ) {
                    Ok(_) => {
                        // The green thread reaches us only through the counted `waiter`: an
                        // interrupt may unwind at any time (leaving a stale unpark behind).
                        let mut done = Until(|| self.is_done().then_some(()));
                        let site = wait_site!(crate::WaitReason::Join { id });
                        let _ = blocking_point::block(&mut done, site, None, OnInterrupt::Unwind);
                        break;
                    }
                    Err(actual) => current = actual,
                }
            }
        }
        self.take()
    }

    /// The result, once `DONE` has been observed with Acquire.
    fn take(&self) -> thread::Result<T> {
        // SAFETY: DONE was observed with Acquire, so the result is written and ours to take;
        // only the one handle takes it.
        unsafe { (*self.result.get()).take() }
            .expect("weft: a join handle was polled or joined after it returned its result")
    }

    /// One poll of the handle as a future (see the module docs).
    fn poll(&self, cx: &mut Context<'_>) -> Poll<thread::Result<T>> {
        if self.is_done() {
            return Poll::Ready(self.take());
        }
        // The previous waker is dropped after the lock is released (it is the executor's).
        let previous = self.future_waker.lock().replace(cx.waker().clone());
        drop(previous);
        if self.state.fetch_or(POLLED, AcqRel) & STATUS == DONE {
            return Poll::Ready(self.take());
        }
        Poll::Pending
    }
}

impl<T> Drop for Packet<'_, T> {
    fn drop(&mut self) {
        // Drop the result (which may borrow from a scope) before telling the scope we are
        // gone, so the scope cannot end while it is still in use.
        let result = self.result.get_mut().take();
        // A cancelled green thread did what it was told: that is not a panic to report.
        let mut panicked =
            matches!(&result, Some(Err(payload)) if !payload.is::<crate::Cancelled>());
        // A result that nobody took (the handle was dropped) is dropped here, on the green
        // thread as it finishes or wherever the last handle goes. If its destructor panics,
        // that panic gets a green thread's usual handling: the hook has reported it, it is
        // contained, and a scope counts it as a panic. Unwinding on would skip the scope's
        // count (the scope would wait for ever) or, on a worker, abort the process.
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(result))) {
            panicked = true;
            // Its own destructor could panic too; a leaked payload is harmless.
            std::mem::forget(payload);
        }
        if let Some(scope) = &self.scope {
            scope.decrement_running(panicked);
        }
    }
}

/// What both join handles hold: the green thread's handle and its result packet.
pub(crate) struct JoinInner<'scope, T> {
    pub(crate) coroutine: Coroutine,
    pub(crate) packet: Arc<Packet<'scope, T>>,
}

impl<T> JoinInner<'_, T> {
    #[track_caller]
    pub(crate) fn join(self) -> thread::Result<T> {
        if self.coroutine.is_current() {
            // std panics here too (pthread_join's EDEADLK): waiting would never end.
            panic!(
                "weft: green thread {} tried to join itself, which would wait for ever \
                 (deadlock)",
                self.coroutine.id()
            );
        }
        self.packet.wait_and_take(self.coroutine.id().as_u64())
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.packet.is_done()
    }
}

/// An owned permission to join a green thread (wait for it to finish and take its result).
///
/// Dropping the handle detaches the green thread: it keeps running, and its result is
/// dropped when it finishes.
pub struct JoinHandle<T>(pub(crate) JoinInner<'static, T>);

impl<T> JoinHandle<T> {
    /// Waits for the green thread to finish and returns its result. If the green thread
    /// panicked, returns `Err` with the panic payload, as `std::thread::JoinHandle::join`
    /// does. Parks a green-thread caller; blocks a plain-thread caller.
    #[track_caller]
    pub fn join(self) -> thread::Result<T> {
        self.0.join()
    }

    /// Whether the green thread has finished (its result is ready), without blocking.
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }

    /// A handle to the green thread (its id, name, and `unpark`).
    pub fn coroutine(&self) -> Coroutine {
        self.0.coroutine.clone()
    }

    /// Cancels the green thread (see [`Coroutine::cancel`]): it unwinds from its next
    /// blocking point, and `join` returns `Err` with a [`Cancelled`](crate::Cancelled)
    /// payload.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let worker = weft::spawn(|| loop {
    ///     weft::sleep(Duration::from_millis(1));
    /// });
    /// worker.cancel();
    /// assert!(worker.join().unwrap_err().is::<weft::Cancelled>());
    /// ```
    pub fn cancel(&self) {
        self.0.coroutine.cancel();
    }
}

/// Awaiting a `JoinHandle` waits for the green thread from async code: the output is what
/// [`join`](JoinHandle::join) returns. Any executor can drive it (the green thread's
/// completion wakes the task's `Waker`). Poll it to completion or join it, not both.
///
/// ```
/// let handle = weft::spawn(|| 6 * 7);
/// assert_eq!(weft::block_on(handle).unwrap(), 42);
/// ```
impl<T> Future for JoinHandle<T> {
    type Output = thread::Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<thread::Result<T>> {
        self.get_mut().0.packet.poll(cx)
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("coroutine", &self.0.coroutine)
            .finish_non_exhaustive()
    }
}
