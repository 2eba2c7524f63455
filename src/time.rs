//! Sleeping and timed parking: [`sleep`], [`sleep_until`], [`park_timeout`].
//!
//! In a green thread these arm a reactor timer and park, so the worker runs other green
//! threads meanwhile; on a plain thread they are `std::thread::sleep` and
//! `std::thread::park_timeout`. Timers fire from the reactor's poll, whose timeout is rounded
//! up to whole milliseconds, so a sleep lasts at least as long as asked (never less) and
//! usually up to a millisecond more.

use std::time::{Duration, Instant};

use crate::runtime::blocking_point::{self, wait_site};

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
    // A stale unpark token or a spurious wake-up ends a park early; the clock decides when
    // the sleep is over. A plain thread sleeps as std's sleep does (its park token left
    // alone), cut short by a `timeout` boundary around it.
    blocking_point::sleep_until(wait_site!(crate::WaitReason::Sleep), deadline);
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
    // Further away than an Instant can express: an untimed park.
    let deadline = Instant::now().checked_add(timeout);
    blocking_point::park_once(wait_site!(crate::WaitReason::Park), deadline);
}
