//! The one blocking point: every wait in weft, in a green thread or a plain thread, goes
//! through [`block`]. It is the only code that reads the interrupt state (a cancel, a
//! `timeout`/`deadline` boundary), the only code that records waits for dumps, and the
//! only code that arms the timer of a timed wait. Channels, locks, condvars, `select!`,
//! joins, scopes, sleeps, `offload`, `block_on`, reactor IO and the hooks describe their
//! wait through the small [`Wait`] trait and let this module run it.
//!
//! # The rule
//!
//! **An interrupt may unwind a wait only while nobody else can still reach that wait's
//! memory.** A wait that a waker has claimed (a value is being moved into it, a lock, a
//! permit or a notification is being handed to it) completes first; the interrupt stays
//! pending (a cancel flag stays set, a passed deadline stays passed) and takes effect at the
//! caller's next blocking point.
//!
//! # The protocol, in order
//!
//! [`block`] runs this loop; `wait` is the caller's [`Wait`]:
//!
//! 1. *Record* the wait (reason, the user's `Location`, since when) in the task record, for
//!    dumps. One pointer and two words stored, Relaxed; nothing on a plain thread.
//! 2. *Poll*: `wait.poll()` says `Done(value)` (return it), `Completing` (a waker claimed
//!    the wait and will finish it within a few instructions: spin, then yield to the
//!    worker *without* looking at interrupts, and poll again), or `Waiting`.
//! 3. *Interrupted or timed out?* Unless the wait is already committed (step 4), read the
//!    pending interrupt (cancel flag; boundary deadline against the clock) and the wait's
//!    own deadline. If either applies, call `wait.withdraw()`:
//!    - `true`: the wait is withdrawn, which by the trait's contract means no waker holds
//!      or can find a reference to it any more (the owner aborted its cell *and* took it
//!      out of every queue, under the queue locks). Only now is unwinding allowed: raise
//!      the interrupt, or return `TimedOut` for the wait's own deadline.
//!    - `false`: a waker got there first. The wait is *committed*: from now on no
//!      interrupt or deadline is looked at, and the loop goes back to step 2 until the
//!      waker's result arrives.
//! 4. *Park* until the earliest of the wait's own deadline and the boundary deadline
//!    (nothing timed once committed). A green thread that may switch parks through
//!    [`crate::runtime::park`] with one reactor timer armed for the whole wait (re-armed only if the
//!    deadline moves); a plain thread, or a green thread that may not switch (it is
//!    unwinding: see `scheduler::unwinding`), blocks its OS thread through
//!    `wait.block_thread`, and tells the monitor while it does. Then go to step 2.
//!
//! `withdraw` is the only path to an unwind, and it runs before the unwind: that is the
//! whole argument for the rule. Why each waker respects it:
//!
//! - **Wait cells** ([`crate::runtime::wait::Waiter`]: channels, `select!`, Mutex, RwLock,
//!   Semaphore, Condvar, `offload`). A waker claims the cell with a CAS under the queue's
//!   lock before it touches the owner's slot, and stores `DONE` after its last touch.
//!   `poll` reports `CLAIMED` as `Completing`; `withdraw` is the abort CAS (which fails once
//!   claimed) followed by unregistering from every queue under their locks. So a claimed
//!   cell is never withdrawn, and a withdrawn one is in no queue.
//!   - *Channel and select*: the value moved into or out of the slot arrives; a select
//!     unregisters its other arms in `withdraw` (not after the unwind).
//!   - *Mutex, RwLock, Semaphore*: the lock or permit handed over arrives with the claim and
//!     the caller gets its guard; the guard's drop passes it on if the caller then unwinds
//!     at its next blocking point. A withdrawal re-runs the hand-over for whoever is now at
//!     the front (a reader queued behind a writer that gave up).
//!   - *Condvar*: a claimed notification wakes the waiter, which then re-locks the mutex;
//!     an interrupt there passes the notification on to the next waiter.
//!   - *offload*: uninterruptible; the pool thread claims the cell after the closure
//!     returned, and the interrupt takes effect after the result is back.
//! - **Joins, scopes, `park`, `block_on`, sleep**: the waker reaches the owner only through
//!   a reference-counted handle (an `Unparker`), never through its stack, so `withdraw`
//!   always succeeds (a late unpark is a stale token, which callers tolerate). A scope's
//!   green threads borrow its stack, so a scope never withdraws: an interrupt cancels its
//!   green threads and the scope waits for them, committed.
//! - **Reactor IO**: the fd's waiter list holds an `Unparker`, and `withdraw` takes it out
//!   under the entry's lock, so it always succeeds.
//!
//! # What lives here
//!
//! The interrupt state is data in the task record (`cancelled`, `boundary`, `body_done`),
//! and on a plain thread a thread-local boundary; [`crate::interrupt`] keeps the public API
//! (`timeout`, `deadline`, `is_cancelled`) and [`crate::dump`] the formatting of wait
//! records. Neither is called from here.
//!
//! Under loom the same loop runs with loom's park, a timed park that expires after one
//! yield, and a per-thread interrupt word (a cancel or a passed deadline) that a model sets
//! from another thread, so the models explore a cancel or a deadline racing a claim.

use std::fmt;
use std::time::Instant;

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

/// The unwind payload of a passed deadline: the id of the boundary that set it (caught by
/// that boundary in [`crate::interrupt::deadline`]).
#[cfg_attr(loom, allow(dead_code))] // the id is read by `interrupt::deadline`
pub(crate) struct DeadlinePassed(pub(crate) u64);

/// The earliest deadline in force and the id of the boundary that set it.
#[cfg(not(loom))]
pub(crate) type Boundary = Option<(Instant, u64)>;

/// What interrupts a wait.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Interrupt {
    Cancelled,
    DeadlinePassed(u64),
}

/// What a wait reports each time the blocking point polls it.
pub(crate) enum Progress<T> {
    /// Complete: the result.
    Done(T),
    /// Nothing yet: park.
    Waiting,
    /// A waker claimed the wait and finishes it within a few instructions (it has woken the
    /// owner or is about to): pause briefly, without parking, and poll again.
    Completing,
}

/// A wait as the blocking point runs it; see the module docs for the contract.
pub(crate) trait Wait {
    type Output;

    /// Whether the wait has completed. Called before the first park and after every wake.
    fn poll(&mut self) -> Progress<Self::Output>;

    /// The owner gives up (its deadline passed, or an interrupt is pending). `true` only if
    /// no waker holds or can find a reference to the wait's memory any more: it is taken
    /// out of every queue. `false` if a waker claimed it first; the wait then completes.
    fn withdraw(&mut self) -> bool;

    /// A bound on each park that is not an expiry: the wait parks at most until then, and
    /// `poll` decides what waking means (`park_timeout`, whose timeout is a park bound and
    /// never a reason to skip the park).
    #[inline]
    fn park_bound(&self) -> Option<Instant> {
        None
    }

    /// Blocks the OS thread until woken or `until` (a plain thread, or a green thread that
    /// may not switch). The default parks the thread (the green thread's futex word, or std's
    /// thread token); reactor waits poll their fd instead.
    fn block_thread(&mut self, until: Option<Instant>) {
        platform::park_thread(until);
    }
}

/// How a wait treats interrupts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum OnInterrupt {
    /// Withdraw and unwind (every public blocking call).
    Unwind,
    /// Not looked at: waits that must finish whatever happens (`offload`, whose closure
    /// borrows the waiting stack; a scope whose green threads are being cancelled).
    Ignore,
}

/// How a wait ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ended<T> {
    Done(T),
    /// The wait's own deadline passed and it was withdrawn.
    TimedOut,
}

/// Runs `wait` through the protocol in the module docs. Out of line: the callers' fast
/// paths (a lock taken, a message ready) stay small, and a wait costs a park anyway.
#[inline(never)]
pub(crate) fn block<W: Wait>(
    wait: &mut W,
    site: Site,
    deadline: Option<Instant>,
    on_interrupt: OnInterrupt,
) -> Ended<W::Output> {
    let me = platform::Current::get();
    me.record(&site);
    let _inside = me.enter();
    let mut parking = platform::Parking::default();
    // Set once a withdraw failed: the wait completes whatever the clock or a cancel says.
    let mut committed = false;
    let mut timed_parks = 0u32;
    loop {
        // Step 2.
        match wait.poll() {
            Progress::Done(value) => return Ended::Done(value),
            Progress::Completing => {
                me.pause();
                continue;
            }
            Progress::Waiting => {}
        }
        // Step 3.
        let wake_at = if committed {
            None
        } else {
            let (interrupt, boundary) = match on_interrupt {
                OnInterrupt::Unwind => me.interrupts(),
                OnInterrupt::Ignore => (None, None),
            };
            let passed = deadline.is_some_and(|at| platform::expired(at, timed_parks));
            if interrupt.is_some() || passed {
                if wait.withdraw() {
                    drop(parking);
                    return match interrupt {
                        Some(interrupt) => raise(interrupt),
                        None => Ended::TimedOut,
                    };
                }
                committed = true;
                continue;
            }
            earliest(earliest(deadline, wait.park_bound()), boundary)
        };
        // Step 4.
        parking.park(&me, wait, &site, wake_at);
        timed_parks += u32::from(wake_at.is_some());
    }
}

/// A wait for a condition that a waker signals through an `Unparker` (a counted handle,
/// never the waiting stack), so withdrawing it always succeeds: joins, scopes, `block_on`,
/// `park`. `poll` returns the result once the condition holds.
#[cfg(not(loom))]
pub(crate) struct Until<F>(pub(crate) F);

#[cfg(not(loom))]
impl<T, F: FnMut() -> Option<T>> Wait for Until<F> {
    type Output = T;

    #[inline]
    fn poll(&mut self) -> Progress<T> {
        match (self.0)() {
            Some(value) => Progress::Done(value),
            None => Progress::Waiting,
        }
    }

    fn withdraw(&mut self) -> bool {
        true
    }
}

/// Parks once (until an unpark, a spurious wake-up or `until`): `weft::park`,
/// `park_timeout`. Always parks, even when `until` has passed (as std's
/// `park_timeout(ZERO)` consumes a token and a green thread lets others run), and is a
/// blocking point on entry and on wake-up: a cancel or a boundary that woke it unwinds.
pub(crate) fn park_once(site: Site, until: Option<Instant>) {
    struct Once {
        parked: bool,
        until: Option<Instant>,
    }
    impl Wait for Once {
        type Output = ();
        fn poll(&mut self) -> Progress<()> {
            if std::mem::replace(&mut self.parked, true) {
                Progress::Done(())
            } else {
                Progress::Waiting
            }
        }
        fn withdraw(&mut self) -> bool {
            true
        }
        fn park_bound(&self) -> Option<Instant> {
            self.until
        }
    }
    let mut once = Once {
        parked: false,
        until,
    };
    let _ = block(&mut once, site, None, OnInterrupt::Unwind);
    // Nothing is registered anywhere: the interrupt that woke it, if any, takes effect.
    checkpoint();
}

/// A sleep until `until`: `weft::sleep`, timer channels.
pub(crate) fn sleep_until(site: Site, until: Instant) {
    struct Sleep {
        until: Instant,
        parks: u32,
    }
    impl Wait for Sleep {
        type Output = ();
        fn poll(&mut self) -> Progress<()> {
            if platform::expired(self.until, self.parks) {
                Progress::Done(())
            } else {
                Progress::Waiting
            }
        }
        fn withdraw(&mut self) -> bool {
            true
        }
        fn block_thread(&mut self, until: Option<Instant>) {
            self.parks += 1;
            platform::sleep_thread(until);
        }
    }
    let mut sleep = Sleep { until, parks: 0 };
    // The sleep's end is its deadline: `TimedOut` and `Done` both mean it is over.
    let _ = block(&mut sleep, site, Some(until), OnInterrupt::Unwind);
}

/// A blocking point that does not wait: unwinds if the caller is cancelled or past its
/// deadline. Only where nothing on the stack is registered anywhere (the start of a green
/// thread's body, `yield_now`, after an `offload` or a scope completed).
#[inline(never)]
#[cfg_attr(loom, allow(dead_code))] // the loom build has no green threads
pub(crate) fn checkpoint() {
    if let (Some(interrupt), _) = platform::Current::get().interrupts() {
        raise(interrupt);
    }
}

#[cold]
fn raise(interrupt: Interrupt) -> ! {
    // `resume_unwind` skips the panic hook: an interrupt is not an error to report.
    match interrupt {
        Interrupt::Cancelled => std::panic::resume_unwind(Box::new(Cancelled)),
        Interrupt::DeadlinePassed(id) => std::panic::resume_unwind(Box::new(DeadlinePassed(id))),
    }
}

/// `min` of two optional deadlines, `None` being "never".
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Why and where a wait happens, for dumps: built by [`wait_site!`] in a `#[track_caller]`
/// function, so the location is the user's call. Nothing under loom.
#[derive(Clone, Copy)]
pub(crate) struct Site {
    #[cfg(not(loom))]
    reason: u64,
    #[cfg(not(loom))]
    location: &'static std::panic::Location<'static>,
}

#[cfg(not(loom))]
impl Site {
    #[inline]
    pub(crate) fn new(
        reason: crate::runtime::WaitReason,
        location: &'static std::panic::Location<'static>,
    ) -> Site {
        Site {
            reason: reason.encode(),
            location,
        }
    }
}

/// `wait_site!(WaitReason::…)`: the [`Site`] of a wait at the caller's location (the
/// enclosing function and its callers up to the public API are `#[track_caller]`). Under
/// loom the reason is not evaluated.
#[cfg(not(loom))]
macro_rules! wait_site {
    ($reason:expr) => {
        crate::runtime::blocking_point::Site::new($reason, ::std::panic::Location::caller())
    };
}
#[cfg(loom)]
macro_rules! wait_site {
    ($reason:expr) => {
        crate::runtime::blocking_point::Site {}
    };
}
pub(crate) use wait_site;

#[cfg(all(not(loom), feature = "hooks"))]
pub(crate) use platform::foreign_wait;
#[cfg(not(loom))]
pub(crate) use platform::{boundary, end_of_body, is_cancelled, set_boundary};

/// The blocking point on the runtime: green threads (the task record) and plain threads.
#[cfg(not(loom))]
mod platform {
    use std::cell::Cell;
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Instant;

    use super::{Boundary, Interrupt, Site, Wait};
    use crate::runtime::park::{self, Unparker};
    use crate::runtime::reactor::{self, timer::TimerKey, Reactor};
    use crate::runtime::scheduler::{context, registry, task::Task, unwinding::BlockGuard};

    thread_local! {
        /// Deadlines on plain threads (a green thread keeps its own, in its task).
        static PLAIN_BOUNDARY: Cell<Boundary> = const { Cell::new(None) };
    }

    /// The running green thread, or `None` on a plain thread.
    #[derive(Clone, Copy)]
    pub(super) struct Current(Option<&'static Task>);

    impl Current {
        #[inline]
        pub(super) fn get() -> Current {
            // SAFETY: a non-null current task is alive while it runs, and we are it; the
            // reference does not outlive this blocking call, which runs on the task.
            Current(unsafe { context::current_task().as_ref() })
        }

        #[inline]
        pub(super) fn record(&self, site: &Site) {
            if let Some(task) = self.0 {
                record_on(task, site);
            }
        }

        /// What interrupts the caller now, if anything, and the boundary deadline a wait
        /// must respect. Neither while unwinding (a second unwind from a destructor would
        /// abort, and a wait cut short there would only make its caller spin), nor once the
        /// body returned (its cleanup is not cut short).
        #[inline]
        pub(super) fn interrupts(&self) -> (Option<Interrupt>, Option<Instant>) {
            if std::thread::panicking() {
                return (None, None);
            }
            let boundary = match self.0 {
                Some(task) => {
                    if task.body_done.get() {
                        return (None, None);
                    }
                    if task.is_cancelled() {
                        return (Some(Interrupt::Cancelled), None);
                    }
                    task.boundary.get()
                }
                None => PLAIN_BOUNDARY.with(Cell::get),
            };
            match boundary {
                Some((at, id)) if Instant::now() >= at => {
                    (Some(Interrupt::DeadlinePassed(id)), Some(at))
                }
                Some((at, _)) => (None, Some(at)),
                None => (None, None),
            }
        }

        /// Marks the task as inside the blocking point until the guard drops (see
        /// `foreign_wait`).
        #[inline]
        pub(super) fn enter(&self) -> Inside {
            Inside(
                self.0
                    .map(|task| (task, task.in_blocking_point.replace(true))),
            )
        }

        /// A claimed wait completes within a few instructions: spin, then let the worker run
        /// others (the claimer may be a green thread of this worker, or preempted). No
        /// interrupt is looked at here.
        #[cold]
        pub(super) fn pause(&self) {
            for _ in 0..32 {
                std::hint::spin_loop();
            }
            match self.0 {
                Some(task) if !std::thread::panicking() => park::yield_running(task),
                _ => std::thread::yield_now(),
            }
        }
    }

    /// While alive, the task is inside the blocking point; dropping it (also on unwind)
    /// restores what was there.
    pub(super) struct Inside(Option<(&'static Task, bool)>);

    impl Drop for Inside {
        #[inline]
        fn drop(&mut self) {
            if let Some((task, before)) = self.0 {
                task.in_blocking_point.set(before);
            }
        }
    }

    /// Runs `wait`, a wait that foreign code started (the `hooks` futex wait: a std lock,
    /// say), if it may park the running green thread through the blocking point; `None`
    /// (without running it) if not: no green thread runs, or it is unwinding (a switch
    /// would hand its thread's panic count to the next green thread).
    ///
    /// Such a wait can start *inside* a blocking point (a future polled by `block_on` takes
    /// a contended std lock). Its parks may then consume the wake-up token meant for the
    /// outer wait, which has already decided to park: so after a nested wait the task posts
    /// itself a token, and the outer park returns at once and polls again (a spurious
    /// wake-up, which every blocking-point loop tolerates).
    #[cfg(feature = "hooks")]
    pub(crate) fn foreign_wait<T>(wait: impl FnOnce() -> T) -> Option<T> {
        let task = current()?;
        if std::thread::panicking() {
            return None;
        }
        let nested = task.in_blocking_point.get();
        let value = wait();
        if nested {
            park::unpark_task(task);
        }
        Some(value)
    }

    /// The timer a green thread's timed wait keeps armed across its parks.
    #[derive(Default)]
    pub(super) struct Parking {
        timer: Option<(&'static Reactor, TimerKey, Instant)>,
    }

    impl Parking {
        /// Step 4 of the protocol.
        #[inline]
        pub(super) fn park<W: Wait + ?Sized>(
            &mut self,
            me: &Current,
            wait: &mut W,
            site: &Site,
            until: Option<Instant>,
        ) {
            let Some(task) = me.0 else {
                return wait.block_thread(until);
            };
            if std::thread::panicking() {
                return block_os_thread(task, wait, site, until);
            }
            if let Some(until) = until {
                if !matches!(self.timer, Some((_, _, at)) if at == until) {
                    let Ok(reactor) = reactor::get() else {
                        // No reactor (fd limit): the timed wait blocks the worker instead.
                        return block_os_thread(task, wait, site, Some(until));
                    };
                    self.cancel();
                    let key = reactor.arm_timer(until, Unparker::current());
                    self.timer = Some((reactor, key, until));
                }
            }
            park::park_task(task);
        }

        fn cancel(&mut self) {
            if let Some((reactor, key, _)) = self.timer.take() {
                reactor.cancel_timer(key);
            }
        }
    }

    impl Drop for Parking {
        fn drop(&mut self) {
            self.cancel();
        }
    }

    /// A green thread that may not switch blocks its OS thread, and tells the monitor (a
    /// no-op unless it is unwinding; see `scheduler::unwinding`).
    #[cold]
    fn block_os_thread<W: Wait + ?Sized>(
        task: &Task,
        wait: &mut W,
        site: &Site,
        until: Option<Instant>,
    ) {
        let _block = BlockGuard::begin(task, describe(site), until.is_some());
        wait.block_thread(until);
    }

    fn describe(site: &Site) -> &'static str {
        crate::runtime::WaitReason::describe_encoded(site.reason)
    }

    /// The default `Wait::block_thread`.
    pub(super) fn park_thread(until: Option<Instant>) {
        if !context::current_task().is_null() {
            return park::park_os_thread_until(until);
        }
        match until {
            Some(until) => {
                std::thread::park_timeout(until.saturating_duration_since(Instant::now()))
            }
            None => std::thread::park(),
        }
    }

    #[inline]
    pub(super) fn expired(at: Instant, _timed_parks: u32) -> bool {
        Instant::now() >= at
    }

    /// A sleep's `block_thread`: a plain thread sleeps as `std::thread::sleep` does, leaving
    /// its std park token alone; a green thread that may not switch blocks on its park word.
    pub(super) fn sleep_thread(until: Option<Instant>) {
        if !context::current_task().is_null() {
            return park::park_os_thread_until(until);
        }
        if let Some(until) = until {
            std::thread::sleep(until.saturating_duration_since(Instant::now()));
        }
    }

    /// Stores a wait record in `task` (the running one): three relaxed stores, read by
    /// dumps as a snapshot in which each field is valid on its own.
    #[inline]
    fn record_on(task: &Task, site: &Site) {
        task.wait_site
            .store(site.location as *const _ as *mut _, Relaxed);
        task.wait_reason.store(site.reason, Relaxed);
        task.wait_since.store(registry::coarse_ms(), Relaxed);
    }

    fn current() -> Option<&'static Task> {
        Current::get().0
    }

    /// The boundary in force for the caller.
    pub(crate) fn boundary() -> Boundary {
        match current() {
            Some(task) => task.boundary.get(),
            None => PLAIN_BOUNDARY.with(Cell::get),
        }
    }

    /// Sets the boundary in force for the caller (only the running task touches its own).
    pub(crate) fn set_boundary(value: Boundary) {
        match current() {
            Some(task) => task.boundary.set(value),
            None => PLAIN_BOUNDARY.with(|b| b.set(value)),
        }
    }

    /// Whether the calling green thread has been cancelled.
    pub(crate) fn is_cancelled() -> bool {
        current().is_some_and(Task::is_cancelled)
    }

    /// Marks the current green thread's body as returned: interrupts no longer cut short
    /// the cleanup that follows (coroutine-local destructors, dropping the result).
    pub(crate) fn end_of_body() {
        if let Some(task) = current() {
            task.body_done.set(true);
        }
    }
}

/// The blocking point under loom: plain loom threads, loom's park, and an interrupt word
/// per thread that a model sets from another thread (see `set_interrupt_word`).
#[cfg(loom)]
mod platform {
    use std::time::Instant;

    use super::{Interrupt, Site, Wait};
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::Arc;

    /// The values of a model's interrupt word.
    pub(crate) const NONE: usize = 0;
    pub(crate) const CANCEL: usize = 1;
    pub(crate) const DEADLINE: usize = 2;

    loom::thread_local! {
        static WORD: std::cell::RefCell<Option<Arc<AtomicUsize>>> = std::cell::RefCell::new(None);
    }

    /// Makes the calling model thread interruptible through `word` (`None`: no longer):
    /// another thread stores `CANCEL` or `DEADLINE` in it. An interruptible thread's untimed
    /// park is a yield, so it may wake at any point and see the word, which is what the
    /// unpark of `Coroutine::cancel` (or a boundary's timer) makes possible. (A loom
    /// `unpark` cannot stand in for it: loom wakes a thread that is blocked on a loom mutex
    /// or join too, which std never does.) Clear the word before the model ends: loom drops
    /// thread-locals outside the model.
    #[cfg(test)]
    pub(crate) fn set_interrupt_word(word: Option<Arc<AtomicUsize>>) {
        WORD.with(|slot| *slot.borrow_mut() = word);
    }

    fn interruptible() -> bool {
        WORD.with(|slot| slot.borrow().is_some())
    }

    #[derive(Clone, Copy)]
    pub(super) struct Current;

    impl Current {
        pub(super) fn get() -> Current {
            Current
        }

        pub(super) fn record(&self, _site: &Site) {}

        pub(super) fn enter(&self) {}

        pub(super) fn interrupts(&self) -> (Option<Interrupt>, Option<Instant>) {
            if std::thread::panicking() {
                return (None, None);
            }
            let word = WORD.with(|slot| {
                slot.borrow()
                    .as_ref()
                    .map_or(NONE, |word| word.load(std::sync::atomic::Ordering::Acquire))
            });
            let interrupt = match word {
                CANCEL => Some(Interrupt::Cancelled),
                DEADLINE => Some(Interrupt::DeadlinePassed(0)),
                _ => None,
            };
            (interrupt, None)
        }

        pub(super) fn pause(&self) {
            loom::thread::yield_now();
        }
    }

    #[derive(Default)]
    pub(super) struct Parking;

    impl Parking {
        pub(super) fn park<W: Wait + ?Sized>(
            &mut self,
            _me: &Current,
            wait: &mut W,
            _site: &Site,
            until: Option<Instant>,
        ) {
            wait.block_thread(until);
        }
    }

    /// A timed park is a yield (there is no clock to wait for), so the models explore a
    /// waker racing an owner that gives up.
    pub(super) fn park_thread(until: Option<Instant>) {
        match until {
            Some(_) => loom::thread::yield_now(),
            None if interruptible() => loom::thread::yield_now(),
            None => loom::thread::park(),
        }
    }

    /// A deadline passes after one timed park.
    pub(super) fn expired(at: Instant, timed_parks: u32) -> bool {
        timed_parks > 0 || Instant::now() >= at
    }

    pub(super) fn sleep_thread(_until: Option<Instant>) {
        loom::thread::yield_now();
    }
}

/// Model checks of the rule (run: see `src/loom.rs`): an interrupt (a cancel, or a passed
/// `timeout` boundary) races a waker's claim of the same wait. In every interleaving the
/// interrupted party either completes the claimed wait (the value, lock or notification
/// arrives and nothing is lost) or withdraws before any claim (and the waker finds nobody),
/// and no waker touches a wait after its owner left (loom reports an access to a dropped
/// atomic, and a lock or message left behind fails the assertions).
#[cfg(all(test, loom))]
mod loom_tests {
    use std::any::Any;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::Ordering::Release;
    use std::time::Duration;

    use loom::sync::atomic::AtomicUsize;
    use loom::sync::Arc;

    use super::platform::{set_interrupt_word, CANCEL, DEADLINE};
    use super::{Cancelled, DeadlinePassed};
    use crate::chan::{bounded, SendTimeoutError};
    use crate::sync::{Condvar, Mutex, RwLock};

    fn model(bound: usize, body: impl Fn() + Send + Sync + 'static) {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(bound);
        model.check(body);
    }

    /// Runs `op` on the calling (main) model thread while another thread interrupts it with
    /// `kind`; returns `op`'s result, or the unwind payload of the interrupt.
    fn interrupted<T>(kind: usize, op: impl FnOnce() -> T) -> Result<T, Box<dyn Any + Send>> {
        let word = Arc::new(AtomicUsize::new(0));
        set_interrupt_word(Some(word.clone()));
        let interrupter = loom::thread::spawn(move || word.store(kind, Release));
        let outcome = catch_unwind(AssertUnwindSafe(op));
        set_interrupt_word(None);
        interrupter.join().unwrap();
        if let Err(payload) = &outcome {
            assert!(
                payload.is::<Cancelled>() || payload.is::<DeadlinePassed>(),
                "only the interrupt may unwind"
            );
        }
        outcome
    }

    fn rendezvous_against(kind: usize) {
        model(2, move || {
            let (tx, rx) = bounded::<u32>(0);
            let hour = Duration::from_secs(3600);
            // The sender hands its `Sender` back, so the channel stays connected throughout;
            // its timed wait expires after one yield, so it never waits for a receiver that
            // withdrew.
            let sender = loom::thread::spawn(move || match tx.send_timeout(7, hour) {
                Ok(()) => (true, tx),
                Err(SendTimeoutError::Timeout(7)) => (false, tx),
                Err(other) => panic!("unexpected {other:?}"),
            });
            let received = match interrupted(kind, || rx.recv()) {
                Ok(Ok(7)) => true,
                Ok(other) => panic!("unexpected {other:?}"),
                Err(_) => false,
            };
            let (sent, _tx) = sender.join().unwrap();
            assert_eq!(sent, received, "a message was lost or invented");
        });
    }

    #[test]
    fn loom_cancel_races_a_rendezvous_claim() {
        rendezvous_against(CANCEL);
    }

    #[test]
    fn loom_deadline_races_a_rendezvous_claim() {
        rendezvous_against(DEADLINE);
    }

    fn mutex_hand_off_against(kind: usize) {
        model(3, move || {
            let lock = Arc::new(Mutex::new(0));
            let holder = {
                let lock = lock.clone();
                loom::thread::spawn(move || *lock.lock().unwrap() += 1)
            };
            let took = interrupted(kind, || *lock.lock().unwrap() += 10).is_ok();
            holder.join().unwrap();
            let value = *lock.try_lock().expect("the lock was stranded");
            assert_eq!(value, 1 + if took { 10 } else { 0 });
        });
    }

    #[test]
    fn loom_cancel_races_a_mutex_hand_off() {
        mutex_hand_off_against(CANCEL);
    }

    #[test]
    fn loom_deadline_races_a_mutex_hand_off() {
        mutex_hand_off_against(DEADLINE);
    }

    fn notify_all_against(kind: usize) {
        model(2, move || {
            let pair = Arc::new((Mutex::new(false), Condvar::new()));
            let notifier = {
                let pair = pair.clone();
                loom::thread::spawn(move || {
                    *pair.0.lock().unwrap() = true;
                    pair.1.notify_all();
                })
            };
            let woke = interrupted(kind, || {
                let mut ready = pair.0.lock().unwrap();
                while !*ready {
                    ready = pair.1.wait(ready).unwrap();
                }
            })
            .is_ok();
            notifier.join().unwrap();
            let ready = *pair.0.try_lock().expect("the mutex was stranded");
            assert!(ready || !woke);
        });
    }

    /// A writer queued between two readers gives up: the reader behind it must join the
    /// reader that holds the lock, which waits for it (a spin that only that admission
    /// ends; without it loom reports the livelock).
    fn rwlock_admission_against(kind: usize) {
        model(2, move || {
            let lock = Arc::new(RwLock::new(()));
            let second_in = Arc::new(loom::sync::atomic::AtomicBool::new(false));
            let first = {
                let (lock, second_in) = (lock.clone(), second_in.clone());
                loom::thread::spawn(move || {
                    let _held = lock.read().unwrap();
                    while !second_in.load(std::sync::atomic::Ordering::Acquire) {
                        loom::thread::yield_now();
                    }
                })
            };
            let second = {
                let (lock, second_in) = (lock.clone(), second_in.clone());
                loom::thread::spawn(move || {
                    let _held = lock.read().unwrap();
                    second_in.store(true, Release);
                })
            };
            let _ = interrupted(kind, || drop(lock.write().unwrap()));
            first.join().unwrap();
            second.join().unwrap();
            drop(lock.try_write().expect("the lock was stranded"));
        });
    }

    #[test]
    fn loom_cancel_races_rwlock_admission() {
        rwlock_admission_against(CANCEL);
    }

    #[test]
    fn loom_cancel_races_notify_all() {
        notify_all_against(CANCEL);
    }

    #[test]
    fn loom_deadline_races_notify_all() {
        notify_all_against(DEADLINE);
    }
}
