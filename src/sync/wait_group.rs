//! [`WaitGroup`], Go's `sync.WaitGroup`, built on [`Mutex`](super::Mutex) and
//! [`Condvar`](super::Condvar).

use std::fmt;

use super::{const_unless_loom, Condvar, Mutex};

/// Waits for a set of tasks to finish: [`add`](WaitGroup::add) before starting them, each
/// calls [`done`](WaitGroup::done), and [`wait`](WaitGroup::wait) parks until the count is
/// back to zero. Share it by reference (scoped green threads) or in an `Arc`.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use weft::sync::WaitGroup;
///
/// let wg = WaitGroup::new();
/// let finished = AtomicUsize::new(0);
/// weft::scope(|s| {
///     for _ in 0..10 {
///         wg.add(1);
///         s.spawn(|| {
///             finished.fetch_add(1, Ordering::Relaxed);
///             wg.done();
///         });
///     }
///     wg.wait();
///     assert_eq!(finished.load(Ordering::Relaxed), 10);
/// });
/// ```
pub struct WaitGroup {
    count: Mutex<usize>,
    zero: Condvar,
}

impl WaitGroup {
    const_unless_loom! {
        /// A wait group with a count of zero.
        pub fn new() -> WaitGroup {
            WaitGroup {
                count: Mutex::new(0),
                zero: Condvar::new(),
            }
        }
    }

    /// Adds `n` to the count.
    ///
    /// # Panics
    ///
    /// If the count overflows.
    pub fn add(&self, n: usize) {
        let mut count = self.count.lock().unwrap_or_else(|p| p.into_inner());
        *count = count
            .checked_add(n)
            .expect("WaitGroup::add: the count overflowed");
    }

    /// Takes one off the count, waking the waiters when it reaches zero.
    ///
    /// # Panics
    ///
    /// If the count is already zero (more `done`s than `add`s), as Go's does.
    pub fn done(&self) {
        let mut count = self.count.lock().unwrap_or_else(|p| p.into_inner());
        *count = count
            .checked_sub(1)
            .expect("WaitGroup::done called more times than add");
        if *count == 0 {
            drop(count);
            self.zero.notify_all();
        }
    }

    /// Parks until the count is zero (returns at once if it is).
    #[track_caller]
    pub fn wait(&self) {
        let count = self.count.lock().unwrap_or_else(|p| p.into_inner());
        let _zero = self
            .zero
            .wait_while(count, |count| *count > 0)
            .unwrap_or_else(|p| p.into_inner());
    }

    /// The current count.
    pub fn count(&self) -> usize {
        *self.count.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for WaitGroup {
    fn default() -> Self {
        WaitGroup::new()
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .finish()
    }
}
