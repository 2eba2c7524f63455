//! `Once` and `LazyLock`, shaped like std's, on [`OnceLock`]: a caller that finds another
//! running the initialiser parks (a green thread switches; a plain thread sleeps).

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::Deref;
use std::sync::atomic::Ordering::{Acquire, Release};

use super::{const_unless_loom, OnceLock};
use crate::loom::sync::atomic::AtomicBool;

/// Runs a piece of initialisation once, as [`std::sync::Once`].
///
/// ```
/// static START: weft::sync::Once = weft::sync::Once::new();
/// # weft::run(|| {
/// let handles: Vec<_> = (0..4).map(|_| weft::go!(|| START.call_once(|| println!("once")))).collect();
/// for h in handles { h.join().unwrap(); }
/// assert!(START.is_completed());
/// # });
/// ```
pub struct Once {
    done: OnceLock<()>,
    poisoned: AtomicBool,
}

impl Once {
    const_unless_loom! {
        /// A `Once` that has not run.
        pub fn new() -> Once {
            Once {
                done: OnceLock::new(),
                poisoned: AtomicBool::new(false),
            }
        }
    }

    /// Runs `f` if no call has completed yet; every other caller waits until it has.
    ///
    /// # Panics
    ///
    /// If `f` panics, the `Once` is poisoned and every later `call_once` panics, as std's.
    #[track_caller]
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        if self.done.get().is_some() {
            return;
        }
        self.check_poison();
        self.done.get_or_init(|| {
            // Checked again under the cell's lock: a caller that waited behind a panicking
            // initialiser must not run its own.
            self.check_poison();
            let _poison = PoisonOnUnwind(&self.poisoned);
            f();
        });
    }

    /// Runs `f` if no call has completed yet, even if an earlier one panicked (which
    /// [`OnceState::is_poisoned`] reports). If `f` returns, the `Once` is completed and no
    /// longer poisoned. Other callers wait meanwhile, as for [`call_once`](Once::call_once).
    ///
    /// ```
    /// use weft::sync::Once;
    /// static INIT: Once = Once::new();
    /// # weft::run(|| {
    /// let _ = weft::go!(|| INIT.call_once(|| panic!("first try fails"))).join();
    /// INIT.call_once_force(|state| assert!(state.is_poisoned()));
    /// assert!(INIT.is_completed());
    /// # });
    /// ```
    #[track_caller]
    pub fn call_once_force<F: FnOnce(&OnceState)>(&self, f: F) {
        if self.done.get().is_some() {
            return;
        }
        self.done.get_or_init(|| {
            let _poison = PoisonOnUnwind(&self.poisoned);
            let state = OnceState {
                // Acquire: pairs with the Release of the panicking call.
                poisoned: self.poisoned.load(Acquire),
            };
            f(&state);
            self.poisoned.store(false, Release);
        });
    }

    /// Parks until a call has completed.
    ///
    /// # Panics
    ///
    /// If the `Once` is or becomes poisoned (an initialiser panicked), as std's; use
    /// [`wait_force`](Once::wait_force) to keep waiting for a later `call_once_force`.
    #[track_caller]
    pub fn wait(&self) {
        if self
            .done
            .wait_until(|| self.poisoned.load(Acquire))
            .is_none()
        {
            panic!("Once instance has previously been poisoned");
        }
    }

    /// Parks until a call has completed, ignoring poison.
    #[track_caller]
    pub fn wait_force(&self) {
        self.done.wait_until(|| false);
    }

    /// Whether a `call_once` has completed.
    pub fn is_completed(&self) -> bool {
        self.done.get().is_some()
    }

    #[track_caller]
    fn check_poison(&self) {
        if self.poisoned.load(Acquire) {
            panic!("Once instance has previously been poisoned");
        }
    }
}

/// Poisons a `Once` if its initialiser unwinds.
struct PoisonOnUnwind<'a>(&'a AtomicBool);

impl Drop for PoisonOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Release: read by the Acquire loads of `check_poison`, `call_once_force` and
            // `wait` (the cell's notify on unwinding wakes the waiters that must look).
            self.0.store(true, Release);
        }
    }
}

/// What [`Once::call_once_force`] tells its closure, as [`std::sync::OnceState`].
#[derive(Debug)]
pub struct OnceState {
    poisoned: bool,
}

impl OnceState {
    /// Whether an earlier initialiser panicked.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }
}

impl Default for Once {
    fn default() -> Once {
        Once::new()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("completed", &self.is_completed())
            .finish_non_exhaustive()
    }
}

/// A value initialised on first access, as [`std::sync::LazyLock`].
///
/// ```
/// use std::collections::HashMap;
/// static TABLE: weft::sync::LazyLock<HashMap<u32, &str>> =
///     weft::sync::LazyLock::new(|| HashMap::from([(1, "one")]));
/// # weft::run(|| {
/// assert_eq!(weft::go!(|| TABLE[&1]).join().unwrap(), "one");
/// # });
/// ```
pub struct LazyLock<T, F = fn() -> T> {
    cell: OnceLock<T>,
    init: UnsafeCell<Option<F>>,
}

// SAFETY: `init` is taken once, by the one caller that runs the cell's initialiser (under the
// cell's lock), so `F` moves to that thread (`F: Send`); the value is shared as `&T` and may
// be dropped on any thread, as for `OnceLock<T>`.
unsafe impl<T: Sync + Send, F: Send> Sync for LazyLock<T, F> {}

// As std's: a panicking initialiser poisons the lock, which later accesses report.
impl<T: std::panic::UnwindSafe, F: std::panic::UnwindSafe> std::panic::UnwindSafe
    for LazyLock<T, F>
{
}
impl<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe, F: std::panic::UnwindSafe>
    std::panic::RefUnwindSafe for LazyLock<T, F>
{
}
impl std::panic::UnwindSafe for Once {}
impl std::panic::RefUnwindSafe for Once {}

impl<T, F: FnOnce() -> T> LazyLock<T, F> {
    const_unless_loom! {
        /// A lazy value that `f` will compute.
        pub fn new(f: F) -> LazyLock<T, F> {
            LazyLock {
                cell: OnceLock::new(),
                init: UnsafeCell::new(Some(f)),
            }
        }
    }

    /// The value, computing it on first access; other callers wait meanwhile.
    ///
    /// # Panics
    ///
    /// If the initialiser panicked before, as std's.
    #[track_caller]
    pub fn force(this: &LazyLock<T, F>) -> &T {
        this.cell.get_or_init(|| {
            // SAFETY: the cell runs this closure for one caller at a time, under its lock,
            // and nothing else touches `init`.
            let f = unsafe { (*this.init.get()).take() };
            match f {
                Some(f) => f(),
                None => panic!("LazyLock instance has previously been poisoned"),
            }
        })
    }
}

impl<T, F: FnOnce() -> T> LazyLock<T, F> {
    /// The value through a unique borrow, computing it first if needed.
    ///
    /// # Panics
    ///
    /// If the initialiser panicked before, as std's.
    #[track_caller]
    pub fn force_mut(this: &mut LazyLock<T, F>) -> &mut T {
        if this.cell.get_mut().is_none() {
            match this.init.get_mut().take() {
                Some(f) => {
                    let _ = this.cell.set(f());
                }
                None => panic!("LazyLock instance has previously been poisoned"),
            }
        }
        this.cell.get_mut().expect("just set")
    }
}

impl<T, F> LazyLock<T, F> {
    /// The value through a unique borrow, if it has been computed.
    pub fn get_mut(this: &mut LazyLock<T, F>) -> Option<&mut T> {
        this.cell.get_mut()
    }

    /// The value, if it has been computed; never runs the initialiser.
    pub fn get(this: &LazyLock<T, F>) -> Option<&T> {
        this.cell.get()
    }
}

impl<T, F: FnOnce() -> T> Deref for LazyLock<T, F> {
    type Target = T;

    fn deref(&self) -> &T {
        LazyLock::force(self)
    }
}

impl<T: Default> Default for LazyLock<T> {
    fn default() -> LazyLock<T> {
        LazyLock::new(T::default)
    }
}

impl<T: fmt::Debug, F> fmt::Debug for LazyLock<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cell.get() {
            Some(value) => f.debug_tuple("LazyLock").field(value).finish(),
            None => f.write_str("LazyLock(<uninit>)"),
        }
    }
}
