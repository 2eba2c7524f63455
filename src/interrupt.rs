//! Cancellation and deadlines: [`JoinHandle::cancel`](crate::JoinHandle::cancel),
//! [`timeout`], [`deadline`], [`is_cancelled`].
//!
//! Both *interrupt* a green thread at a blocking point: the call unwinds, so every destructor
//! on the way runs, up to where the interrupt is caught — the green thread's base for a
//! cancel ([`join`](crate::JoinHandle::join) then returns `Err` with a [`Cancelled`]
//! payload), the `timeout`/`deadline` boundary for a deadline (which returns
//! `Err(`[`Elapsed`]`)`).
//!
//! # Blocking points
//!
//! Parking, IO, sleeping, channel sends and receives, `select!`, locks, condvars, joins,
//! `offload`, and `yield_now`. A green thread that computes without reaching one is not
//! interrupted until it does. All of them are one function (`crate::runtime::blocking_point`), which
//! checks on entry and every time it wakes; waits registered in a queue (locks, channels,
//! condvars, select) first take themselves out of the queue (the same path as a timeout),
//! and only then unwind, so no queue is left pointing at a dead stack frame. A wait that a
//! waker already claimed is never cut short: the message, lock, permit or notification
//! arrives, and the interrupt takes effect at the next blocking point. So an interrupt never
//! loses a message that a sender was told it delivered. Two waits finish first too:
//! `offload`, whose closure
//! may borrow from the green thread's stack, unwinds only after the closure returned; and a
//! [`scope`](crate::scope) cancels its green threads and waits for them, because they borrow
//! from it too.
//!
//! # What it costs
//!
//! A cancel is one flag store and an unpark. A check is a load of that flag and, only when a
//! deadline boundary is active, a clock read. No timer is armed for a deadline unless a
//! blocking call inside it actually waits; then the wait's own timer covers the deadline
//! too.
//!
//! # Destructors that block while a cancel unwinds
//!
//! A cancel unwinds as a panic does (std's machinery, with the panic hook silent), so the
//! rule for blocking while unwinding applies (see `scheduler::unwinding` and the README):
//! such a call is not interrupted again, and it blocks the worker's OS thread instead of
//! switching. If it waits for a green thread homed on the same worker (a lock that green
//! thread holds), that is a deadlock: weft's monitor names it after one second and aborts the
//! process after `WEFT_DEADLOCK_ABORT_MS` (default 10 s) rather than hang. Keep blocking calls
//! out of destructors, or give them a timeout (`try_lock`, `recv_timeout`). While unwinding,
//! deadlines do not shorten waits either.
//!
//! Once a green thread's body has returned, interrupts are off: its coroutine-local values
//! and (if nobody joins) its result are dropped without being cut short by a late cancel.
//!
//! # Nesting
//!
//! Deadlines nest: the earliest one applies, and when it passes, the boundary that set it
//! returns `Elapsed`; inner boundaries let that unwind pass through. A deadline that has
//! already passed fails at the first blocking point. Deadlines work on plain threads too (for
//! weft's blocking calls); cancellation targets green threads.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

pub use crate::runtime::blocking_point::Cancelled;
use crate::runtime::blocking_point::{self, Boundary, DeadlinePassed};

/// The error of [`timeout`] and [`deadline`] when the deadline passed first.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Debug for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Elapsed")
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, Elapsed(()))
    }
}

static NEXT_BOUNDARY: AtomicU64 = AtomicU64::new(1);

/// The `errno` a hooked C call reports when a cancel or a passed deadline interrupted it
/// (`ECANCELED`, `ETIMEDOUT`), or `None` for any other unwind. The interrupt stays pending:
/// the green thread's next weft blocking point raises it.
#[cfg(feature = "hooks")]
pub(crate) fn errno_of(payload: &(dyn std::any::Any + Send)) -> Option<i32> {
    if payload.is::<Cancelled>() {
        Some(libc::ECANCELED)
    } else if payload.is::<DeadlinePassed>() {
        Some(libc::ETIMEDOUT)
    } else {
        None
    }
}

/// Whether the calling green thread has been cancelled (its next blocking point unwinds).
/// Always `false` on a plain thread.
///
/// ```
/// weft::run(|| assert!(!weft::is_cancelled()));
/// ```
pub fn is_cancelled() -> bool {
    blocking_point::is_cancelled()
}

/// Runs `body` with a deadline `duration` from now: every blocking call inside it, at any
/// depth, is bounded by the deadline, and when it passes the call unwinds to here and
/// `timeout` returns `Err(Elapsed)`. Nothing is armed unless `body` blocks.
///
/// ```
/// use std::time::Duration;
///
/// weft::run(|| {
///     let (_tx, rx) = weft::chan::unbounded::<u32>();
///     // Nobody sends: the receive is interrupted after 10 ms.
///     assert_eq!(weft::timeout(Duration::from_millis(10), || rx.recv()), Err(weft::Elapsed::new()));
///     // Fast enough: the value comes through.
///     assert_eq!(weft::timeout(Duration::from_secs(5), || 6 * 7), Ok(42));
/// });
/// ```
pub fn timeout<T>(duration: Duration, body: impl FnOnce() -> T) -> Result<T, Elapsed> {
    match Instant::now().checked_add(duration) {
        Some(at) => deadline(at, body),
        // Further away than an Instant can express: no deadline.
        None => Ok(body()),
    }
}

/// Like [`timeout`], with an absolute deadline.
pub fn deadline<T>(at: Instant, body: impl FnOnce() -> T) -> Result<T, Elapsed> {
    let id = NEXT_BOUNDARY.fetch_add(1, Relaxed);
    let outer = blocking_point::boundary();
    let mine = match outer {
        Some((outer_at, _)) if outer_at <= at => outer,
        _ => Some((at, id)),
    };
    /// Restores the outer boundary however `body` ends.
    struct Restore(Boundary);
    impl Drop for Restore {
        fn drop(&mut self) {
            blocking_point::set_boundary(self.0);
        }
    }
    let restore = Restore(outer);
    blocking_point::set_boundary(mine);
    // AssertUnwindSafe: every unwind but our own deadline's is re-raised unchanged; ours
    // came from a blocking point inside `body`, whose state the caller gets no access to
    // except through what it chose to share, as with a panic caught by `catch_unwind`.
    let outcome = panic::catch_unwind(AssertUnwindSafe(body));
    drop(restore);
    match outcome {
        Ok(value) => Ok(value),
        Err(payload) => match payload.downcast::<DeadlinePassed>() {
            Ok(passed) if passed.0 == id => Err(Elapsed(())),
            Ok(passed) => panic::resume_unwind(passed),
            Err(other) => panic::resume_unwind(other),
        },
    }
}

impl Elapsed {
    /// The value `timeout` returns, for comparisons in tests and matches.
    pub const fn new() -> Elapsed {
        Elapsed(())
    }
}

impl Default for Elapsed {
    fn default() -> Elapsed {
        Elapsed::new()
    }
}
