//! Scoped green threads: [`scope`] spawns green threads that may borrow from the caller's
//! stack, and joins them all before it returns — `std::thread::scope` for green threads.
//!
//! The scope counts running green threads. A green thread stops counting when its result
//! packet is dropped (by its handle, or by the green thread itself if the handle is gone), so
//! a result that borrows from the scope is dropped before the scope ends. `scope` waits for
//! the count to reach zero with the same park/unpark as everything else, so it parks a green
//! thread and blocks a plain one.

use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{
    AtomicBool, AtomicUsize, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::{Arc, Mutex};
use std::{fmt, thread};

use crate::runtime::blocking_point::{self, wait_site, OnInterrupt, Progress};
use crate::builder::Builder;
use crate::coroutine::Coroutine;
use crate::join::JoinInner;
use crate::runtime::park::Unparker;

/// What the scope and its green threads share.
pub(crate) struct ScopeData {
    num_running: AtomicUsize,
    a_thread_panicked: AtomicBool,
    main: Unparker,
    /// The scope's green threads that may still run, for [`Scope::cancel_all`], and whether
    /// it was called (then a green thread spawned later is cancelled at once).
    threads: Mutex<(Vec<Coroutine>, bool)>,
}

impl ScopeData {
    /// Records a green thread spawned in the scope (for `cancel_all`); cancels it at once if
    /// the scope was cancelled already. Finished green threads are dropped from the list as
    /// it doubles, so a long-lived scope keeps only the running ones.
    pub(crate) fn add_thread(&self, thread: Coroutine) {
        let mut threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        let (list, cancelled) = &mut *threads;
        if *cancelled {
            thread.cancel();
        }
        if list.len() >= 64 && list.len().is_power_of_two() {
            list.retain(|t| !t.is_finished());
        }
        list.push(thread);
    }

    pub(crate) fn increment_running(&self) {
        // Relaxed: the count is only read for "zero?" after the matching decrements, which
        // carry the ordering.
        if self.num_running.fetch_add(1, Relaxed) > usize::MAX / 2 {
            // Far beyond anything memory allows; overflow would end the scope too early.
            std::process::abort();
        }
    }

    pub(crate) fn decrement_running(&self, panicked: bool) {
        if panicked {
            // Relaxed: published by the Release decrement below.
            self.a_thread_panicked.store(true, Relaxed);
        }
        // Release pairs with the scope's Acquire load of zero: everything this green thread
        // did (including dropping its result) happens before `scope` returns.
        if self.num_running.fetch_sub(1, Release) == 1 {
            self.main.unpark();
        }
    }
}

/// A scope to spawn borrowing green threads in; see [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    data: Arc<ScopeData>,
    /// Invariant over 'scope, as in std, so the scope cannot be shrunk.
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// Creates a scope for spawning green threads that borrow local variables.
///
/// Every green thread spawned in the scope is joined before `scope` returns. If any of them
/// panicked and was not joined, `scope` panics after all have finished; if `f` panics, that
/// panic continues after all have finished.
///
/// ```
/// let mut numbers = vec![1, 2, 3];
/// let total = std::sync::atomic::AtomicU32::new(0);
/// weft::scope(|s| {
///     s.spawn(|| {
///         let sum: u32 = numbers.iter().sum();
///         total.fetch_add(sum, std::sync::atomic::Ordering::Relaxed);
///     });
///     s.spawn(|| total.fetch_add(10, std::sync::atomic::Ordering::Relaxed));
/// });
/// numbers.push(4); // the borrows ended with the scope
/// assert_eq!(total.into_inner(), 16);
/// ```
#[track_caller]
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        data: Arc::new(ScopeData {
            num_running: AtomicUsize::new(0),
            a_thread_panicked: AtomicBool::new(false),
            main: Unparker::current(),
            threads: Mutex::new((Vec::new(), false)),
        }),
        scope: PhantomData,
        env: PhantomData,
    };
    let result = panic::catch_unwind(AssertUnwindSafe(|| f(&scope)));
    // The green threads borrow from the caller's stack, so the caller may not unwind before
    // they have finished, cancelled or not. A cancel (or a passed `timeout` boundary) of the
    // caller cancels them all instead, waits for them, and then takes effect.
    let cancelled = matches!(&result, Err(payload) if payload.is::<crate::Cancelled>());
    if cancelled {
        scope.cancel_all();
    }
    // Never withdrawn: a cancel or a passed boundary of the caller cancels the green threads
    // once, and the wait goes on (committed) until they are all gone.
    struct Finish<'a> {
        data: &'a ScopeData,
        scope: &'a dyn Fn(),
        interrupted: bool,
    }
    impl blocking_point::Wait for Finish<'_> {
        type Output = ();
        fn poll(&mut self) -> Progress<()> {
            if self.data.num_running.load(Acquire) == 0 {
                Progress::Done(())
            } else {
                Progress::Waiting
            }
        }
        fn withdraw(&mut self) -> bool {
            if !self.interrupted {
                self.interrupted = true;
                (self.scope)();
            }
            false
        }
    }
    let cancel_all = || scope.cancel_all();
    let mut finish = Finish {
        data: &scope.data,
        scope: &cancel_all,
        interrupted: cancelled,
    };
    let on_interrupt = if cancelled {
        OnInterrupt::Ignore
    } else {
        OnInterrupt::Unwind
    };
    let site = wait_site!(crate::WaitReason::Scope);
    let _ = blocking_point::block(&mut finish, site, None, on_interrupt);
    if result.is_ok() && finish.interrupted {
        // Everything the green threads borrowed is free again: the interrupt takes effect.
        blocking_point::checkpoint();
    }
    match result {
        Err(payload) => panic::resume_unwind(payload),
        Ok(_) if scope.data.a_thread_panicked.load(Relaxed) => {
            panic!("a scoped green thread panicked")
        }
        Ok(value) => value,
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Spawns a green thread that may borrow anything that outlives the scope.
    ///
    /// # Panics
    /// If a stack cannot be had; use [`Builder::spawn_scoped`] to get the error instead.
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        Builder::new()
            .spawn_scoped(self, f)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Cancels every green thread of the scope that is still running (see
    /// [`Coroutine::cancel`]); the scope still waits for them to unwind and finish.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// weft::scope(|s| {
    ///     for _ in 0..3 {
    ///         s.spawn(|| weft::sleep(Duration::from_secs(3600)));
    ///     }
    ///     s.cancel_all(); // the scope ends now, not in an hour
    /// });
    /// ```
    pub fn cancel_all(&self) {
        let mut threads = self.data.threads.lock().unwrap_or_else(|p| p.into_inner());
        threads.1 = true;
        for thread in threads.0.iter() {
            thread.cancel();
        }
    }

    pub(crate) fn data(&self) -> &Arc<ScopeData> {
        &self.data
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("num_running", &self.data.num_running.load(Relaxed))
            .finish_non_exhaustive()
    }
}

/// A handle to join a green thread spawned in a [`Scope`].
pub struct ScopedJoinHandle<'scope, T>(pub(crate) JoinInner<'scope, T>);

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the green thread and returns its result (`Err` with the payload if it
    /// panicked).
    #[track_caller]
    pub fn join(self) -> thread::Result<T> {
        self.0.join()
    }

    /// Whether the green thread has finished, without blocking.
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }

    /// A handle to the green thread.
    pub fn coroutine(&self) -> Coroutine {
        self.0.coroutine.clone()
    }

    /// Cancels the green thread (see [`Coroutine::cancel`]).
    pub fn cancel(&self) {
        self.0.coroutine.cancel();
    }
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJoinHandle")
            .field("coroutine", &self.0.coroutine)
            .finish_non_exhaustive()
    }
}
