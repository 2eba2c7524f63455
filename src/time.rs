//! Sleeping and timed parking: [`sleep`], [`sleep_until`], [`park_timeout`].
//!
//! In a green thread these arm a reactor timer and park, so the worker runs other green
//! threads meanwhile; on a plain thread they are `std::thread::sleep` and
//! `std::thread::park_timeout`. Timers fire from the reactor's poll, whose timeout is rounded
//! up to whole milliseconds, so a sleep lasts at least as long as asked (never less) and
//! usually up to a millisecond more.

use std::time::{Duration, Instant};

use crate::reactor;

/// Puts the current green thread (or plain thread) to sleep for at least `duration`.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// weft::run(|| {
///     let start = Instant::now();
///     weft::sleep(Duration::from_millis(5));
///     assert!(start.elapsed() >= Duration::from_millis(5));
/// });
/// ```
#[track_caller]
pub fn sleep(duration: Duration) {
    match Instant::now().checked_add(duration) {
        Some(deadline) => sleep_until(deadline),
        // Further away than an Instant can express: sleep "forever", a year at a time.
        None => loop {
            sleep(Duration::from_secs(365 * 24 * 3600));
        },
    }
}

/// Puts the current green thread (or plain thread) to sleep until `deadline`; returns at
/// once if it has passed. Never returns before `deadline`.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let deadline = Instant::now() + Duration::from_millis(3);
/// weft::run(move || weft::sleep_until(deadline));
/// assert!(Instant::now() >= deadline);
/// ```
#[track_caller]
pub fn sleep_until(deadline: Instant) {
    if !crate::is_coroutine() {
        // A plain thread: std's sleep, cut short by a `timeout` boundary around it.
        let until = crate::interrupt::earliest(Some(deadline), crate::interrupt::wait_deadline())
            .unwrap_or(deadline);
        let now = Instant::now();
        if until > now {
            std::thread::sleep(until - now);
        }
        crate::interrupt::check();
        return;
    }
    // A stale unpark token or a spurious wake-up returns early from the park; the clock
    // decides when the sleep is over. Each turn is a blocking point (cancel, `timeout`).
    crate::interrupt::check();
    crate::dump::note_wait(crate::WaitReason::Sleep, std::panic::Location::caller());
    while Instant::now() < deadline {
        reactor::park_until(
            crate::interrupt::earliest(Some(deadline), crate::interrupt::wait_deadline())
                .unwrap_or(deadline),
        );
        crate::interrupt::check();
    }
}

/// Blocks the current green thread until it is unparked or `timeout` passes, like
/// [`std::thread::park_timeout`]; consumes the unpark token if one is available. As with std,
/// it may also return spuriously, so callers loop on their own condition. On a plain thread
/// it is `std::thread::park_timeout`.
///
/// ```
/// use std::time::Duration;
///
/// weft::run(|| {
///     // Nobody unparks us: returns after the timeout.
///     weft::park_timeout(Duration::from_millis(2));
///     // The token makes the next park return at once.
///     weft::current().unpark();
///     weft::park_timeout(Duration::from_secs(3600));
/// });
/// ```
#[track_caller]
pub fn park_timeout(timeout: Duration) {
    if !crate::is_coroutine() {
        let bounded = match crate::interrupt::wait_deadline() {
            Some(at) => timeout.min(at.saturating_duration_since(Instant::now())),
            None => timeout,
        };
        std::thread::park_timeout(bounded);
        crate::interrupt::check();
        return;
    }
    crate::interrupt::check();
    crate::dump::note_wait(crate::WaitReason::Park, std::panic::Location::caller());
    match Instant::now().checked_add(timeout) {
        Some(deadline) => {
            let bounded =
                crate::interrupt::earliest(Some(deadline), crate::interrupt::wait_deadline());
            reactor::park_until(bounded.unwrap_or(deadline));
            crate::interrupt::check();
        }
        None => crate::park(),
    }
}
