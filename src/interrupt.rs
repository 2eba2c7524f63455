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
//! interrupted until it does. Each blocking point checks on entry and every time it wakes;
//! waits registered in a queue (locks, channels, condvars, select) first take themselves out
//! of the queue (the same path as a timeout), and only then unwind, so no queue is left
//! pointing at a dead stack frame. Two waits finish first instead: `offload`, whose closure
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

use std::cell::Cell;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::scheduler::context;

/// The payload a cancelled green thread unwinds with: `join` returns `Err(payload)` and
/// `payload.downcast_ref::<Cancelled>()` is `Some`.
///
/// ```
/// use std::time::Duration;
///
/// let sleeper = weft::spawn(|| weft::sleep(Duration::from_secs(3600)));
/// sleeper.cancel();
/// let payload = sleeper.join().unwrap_err();
/// assert!(payload.is::<weft::Cancelled>());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the green thread was cancelled")
    }
}

impl std::error::Error for Cancelled {}

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

/// The unwind payload of a passed deadline: the id of the boundary that set it.
struct DeadlinePassed(u64);

/// The earliest deadline in force and the id of the boundary that set it.
type Boundary = Option<(Instant, u64)>;

thread_local! {
    /// Deadlines on plain threads (a green thread keeps its own, in its task).
    static PLAIN_BOUNDARY: Cell<Boundary> = const { Cell::new(None) };
}

static NEXT_BOUNDARY: AtomicU64 = AtomicU64::new(1);

fn boundary() -> Boundary {
    let task = context::current_task();
    // SAFETY: a non-null current task is alive while it runs, and we are it.
    match unsafe { task.as_ref() } {
        Some(task) => task.boundary.get(),
        None => PLAIN_BOUNDARY.with(Cell::get),
    }
}

fn set_boundary(value: Boundary) {
    let task = context::current_task();
    // SAFETY: as in `boundary`; only the running task touches its own boundary.
    match unsafe { task.as_ref() } {
        Some(task) => task.boundary.set(value),
        None => PLAIN_BOUNDARY.with(|b| b.set(value)),
    }
}

/// The deadline a wait must also respect (the earliest active boundary), if any.
#[inline]
pub(crate) fn wait_deadline() -> Option<Instant> {
    // Like `pending`: no interrupt while unwinding (a wait cut short there would only make
    // its caller spin or misreport), and none once the body has returned.
    if std::thread::panicking() || body_done() {
        return None;
    }
    boundary().map(|(at, _)| at)
}

/// Whether the current green thread's body has returned (its end-of-life cleanup runs;
/// interrupts are off from then on).
fn body_done() -> bool {
    let task = context::current_task();
    // SAFETY: a non-null current task is alive while it runs, and we are it.
    unsafe { task.as_ref() }.is_some_and(|task| task.body_done.get())
}

/// Marks the current green thread's body as returned: cancels and deadlines no longer
/// interrupt the cleanup that follows (coroutine-local destructors, dropping the result),
/// so it cannot be cut short halfway.
pub(crate) fn end_of_body() {
    let task = context::current_task();
    // SAFETY: as in `body_done`.
    if let Some(task) = unsafe { task.as_ref() } {
        task.body_done.set(true);
    }
}

/// `min` of two optional deadlines, `None` being "never".
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What interrupts the caller now, if anything.
enum Interrupt {
    Cancelled,
    DeadlinePassed(u64),
}

fn pending() -> Option<Interrupt> {
    // Never while unwinding: a second unwind from a destructor would abort the process.
    if std::thread::panicking() {
        return None;
    }
    let task = context::current_task();
    // SAFETY: a non-null current task is alive while it runs, and we are it.
    let boundary = match unsafe { task.as_ref() } {
        Some(task) => {
            if task.body_done.get() {
                return None;
            }
            if task.is_cancelled() {
                return Some(Interrupt::Cancelled);
            }
            task.boundary.get()
        }
        None => PLAIN_BOUNDARY.with(Cell::get),
    };
    match boundary {
        Some((at, id)) if Instant::now() >= at => Some(Interrupt::DeadlinePassed(id)),
        _ => None,
    }
}

/// Whether the caller should stop waiting (and call [`check`] once its wait is undone).
#[inline]
pub(crate) fn is_pending() -> bool {
    pending().is_some()
}

/// A blocking point: unwinds if the caller is cancelled or past its deadline. Call it only
/// where nothing on the stack is registered with a queue that would outlive the unwind.
#[inline]
pub(crate) fn check() {
    if let Some(interrupt) = pending() {
        raise(interrupt);
    }
}

/// Parks at a blocking point that has no deadline of its own: until unparked, or until the
/// caller's deadline boundary passes. Callers loop on their condition and [`check`].
pub(crate) fn park() {
    match wait_deadline() {
        Some(at) => crate::reactor::park_until(at),
        None => crate::park::park_current(),
    }
}

#[cold]
fn raise(interrupt: Interrupt) -> ! {
    // `resume_unwind` skips the panic hook: an interrupt is not an error to report.
    match interrupt {
        Interrupt::Cancelled => panic::resume_unwind(Box::new(Cancelled)),
        Interrupt::DeadlinePassed(id) => panic::resume_unwind(Box::new(DeadlinePassed(id))),
    }
}

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
    let task = context::current_task();
    // SAFETY: a non-null current task is alive while it runs, and we are it.
    unsafe { task.as_ref() }.is_some_and(|task| task.is_cancelled())
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
    let outer = boundary();
    let mine = match outer {
        Some((outer_at, _)) if outer_at <= at => outer,
        _ => Some((at, id)),
    };
    /// Restores the outer boundary however `body` ends.
    struct Restore(Boundary);
    impl Drop for Restore {
        fn drop(&mut self) {
            set_boundary(self.0);
        }
    }
    let restore = Restore(outer);
    set_boundary(mine);
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
