//! The one blocking mechanism: park the current thread of execution, unpark it from anywhere.
//!
//! Every primitive in weft that waits (join, scope, and the channels, locks and IO of later
//! layers) is written against [`park_task`] and [`Unparker`]. They work the same for a
//! green thread, which suspends to its worker, and a plain OS thread, which blocks in
//! `std::thread::park`. Semantics follow `std::thread::park`: each thread has one token; an
//! unpark sets it, a park consumes it or waits for it, so an unpark that arrives before the
//! park is not lost. Spurious returns are allowed (callers re-check their condition), though
//! the green-thread side never produces one itself.
//!
//! # The green-thread state machine (`Task::park_state`)
//!
//! | state      | meaning                                                                    |
//! |------------|----------------------------------------------------------------------------|
//! | `EMPTY`    | no token; the task runs, is queued, or is suspending to park               |
//! | `NOTIFIED` | a token is waiting to be consumed by the task                              |
//! | `PARKED`   | suspended and committed by its worker; the scheduling reference is owned   |
//! |            | by this state and whoever leaves it must queue the task                    |
//! | `BLOCKED`  | parked while panicking: the task's OS thread waits on a futex on this word |
//!
//! Transitions, each by exactly one party:
//!
//! 1. *park, fast*: the task CASes `NOTIFIED → EMPTY` (Acquire) and returns.
//! 2. *park, slow*: the task suspends with `Suspend::Park`. Only after the switch, with the
//!    task's registers saved and its stack idle, does the worker CAS `EMPTY → PARKED`
//!    (Release: publishes the saved context to whoever reads `PARKED`) and forget its
//!    scheduling reference. If the CAS finds `NOTIFIED`, an unpark raced in during the
//!    switch; the worker re-queues the task instead. Committing *after* the switch is what
//!    makes it impossible for another thread to resume a task that is still running.
//! 3. *unpark*: one CAS. From `PARKED` it moves straight to `EMPTY`: the unparker consumes
//!    the token on the task's behalf and now owns the forgotten scheduling reference, so it
//!    queues the task (its home's inbox if pinned). From `EMPTY`/`NOTIFIED` it sets
//!    `NOTIFIED`: the token waits for the task. From `BLOCKED` it sets `NOTIFIED` and wakes
//!    the futex. (AcqRel: Release publishes the unparker's writes; Acquire pairs with the
//!    commit's Release.)
//! 4. *resume after a park*: a task resumed by an unparker finds `EMPTY` and has nothing to
//!    do. One the worker re-queued because its commit found `NOTIFIED` consumes that token
//!    (`NOTIFIED → EMPTY`, Acquire). Any later unpark leaves a token behind, which at worst
//!    makes the next park return early (callers re-check their condition, as with std). A
//!    park therefore costs two locked instructions in all: the commit and the unpark.
//!
//! # Blocking the OS thread: `BLOCKED`
//!
//! Two cases make a green thread wait without switching: a destructor that blocks while its
//! green thread unwinds (`std::thread::panicking()`: std keeps its panic count in a
//! thread-local of the OS thread, so switching mid-unwind would make every green thread on
//! that worker look like it is panicking; see [`crate::runtime::scheduler::unwinding`]), and a timed
//! wait when the reactor that holds the timers cannot be created (fd limit). The task CASes
//! `EMPTY → BLOCKED` and waits on a futex on its own park word, with the deadline as the
//! futex timeout if it has one. An unpark finds `BLOCKED`, stores `NOTIFIED` and wakes the
//! futex, so the wait ends as promptly as a switched-out park would; a deadline that passes
//! first CASes `BLOCKED → EMPTY` (failing only if an unpark won, whose token is then
//! consumed). The worker is blocked meanwhile: while unwinding, that can strand the green
//! threads homed on it, which the monitor diagnoses (see the `unwinding` module).

#[cfg(not(loom))]
use std::mem;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
#[cfg(not(loom))]
use std::sync::Arc;

use crate::loom::sync::atomic::AtomicU32;
#[cfg(not(loom))]
use crate::runtime::scheduler::{self, context, task::Suspend, task::Task};
#[cfg(not(loom))]
use crate::sys;

pub(crate) const EMPTY: u32 = 0;
pub(crate) const NOTIFIED: u32 = 1;
pub(crate) const PARKED: u32 = 2;
#[cfg_attr(loom, allow(dead_code))] // only the scheduler build blocks OS threads
pub(crate) const BLOCKED: u32 = 3;

/// Transition 1: consumes a pending token without a switch; `true` if there was one.
#[inline]
pub(crate) fn take_token(state: &AtomicU32) -> bool {
    // A plain load first: parking with no token waiting (the usual case) then costs no
    // locked instruction here. A token that lands after the load is not missed: the
    // worker's commit CAS finds it and re-queues the task.
    // Acquire on the CAS: pairs with the unparker's AcqRel swap, so what it wrote before
    // unparking is visible once the token is consumed.
    state.load(Relaxed) == NOTIFIED
        && state
            .compare_exchange(NOTIFIED, EMPTY, Acquire, Relaxed)
            .is_ok()
}

/// Transition 2, worker side, after the switch: `true` if the task is now `PARKED` (the
/// state owns the scheduling reference), `false` if a token raced in and the task must run.
#[inline]
pub(crate) fn commit(state: &AtomicU32) -> bool {
    // Release: publishes the task's saved context to the unparker that takes it out of PARKED.
    state
        .compare_exchange(EMPTY, PARKED, Release, Relaxed)
        .is_ok()
}

/// Transition 3: hands over the token and returns the previous state, which tells the
/// caller what else it owes (queue the task if `PARKED`, wake the futex if `BLOCKED`).
#[inline]
pub(crate) fn notify(state: &AtomicU32) -> u32 {
    // AcqRel: Release publishes the unparker's writes to the task; Acquire pairs with
    // `commit`'s Release when the previous state is PARKED. A RMW even when the token is
    // already set, so that this unparker's own writes are published too.
    let mut current = state.load(Relaxed);
    loop {
        let next = if current == PARKED { EMPTY } else { NOTIFIED };
        match state.compare_exchange_weak(current, next, AcqRel, Relaxed) {
            Ok(previous) => return previous,
            Err(actual) => current = actual,
        }
    }
}

/// Transition 4: a task resumed after its park consumes a token left by a racing unpark.
/// A plain load when there is none (the usual case: its unparker already consumed it).
#[inline]
pub(crate) fn consume_token(state: &AtomicU32) {
    // Acquire: pairs with the Release half of `notify` (the usual case gets its ordering
    // from the queue the task came back through, which its unparker pushed it into).
    if state.load(Acquire) == NOTIFIED {
        state.swap(EMPTY, Acquire);
    }
}

/// A handle that wakes one green thread or OS thread from [`park_task`]. (Not in the
/// loom build: the modelled protocols wake through a borrowed [`Parker`].)
#[cfg(not(loom))]
#[derive(Clone)]
pub(crate) enum Unparker {
    Green(Arc<Task>),
    Thread(crate::loom::thread::Thread),
}

#[cfg(not(loom))]
impl Unparker {
    /// The unparker of whoever is running now.
    pub(crate) fn current() -> Unparker {
        if let Some(task) = current_task() {
            return Unparker::Green(task);
        }
        Unparker::Thread(crate::loom::thread::current())
    }

    pub(crate) fn unpark(&self) {
        match self {
            Unparker::Green(task) => unpark_task(task),
            Unparker::Thread(thread) => thread.unpark(),
        }
    }
}

/// Who is running now, *borrowed*: for a green thread, its task without a new reference.
/// A waiting party keeps one in its wait cell and a waker wakes it through that (see
/// [`Parker::wake`]), so a wait touches no reference count at all.
pub(crate) enum Parker {
    #[cfg(not(loom))]
    Green(std::ptr::NonNull<Task>),
    Thread(crate::loom::thread::Thread),
}

impl Parker {
    pub(crate) fn current() -> Parker {
        #[cfg(not(loom))]
        if let Some(task) = std::ptr::NonNull::new(context::current_task() as *mut Task) {
            return Parker::Green(task);
        }
        Parker::Thread(crate::loom::thread::current())
    }

    /// Transition 3 for the party this was taken from, without taking a reference: a green
    /// thread's token is handed over in place, a thread is unparked. What is left to do (queue
    /// a task that was parked) is in the returned [`Woken`], which holds no borrow of the
    /// party, so the caller may let the party go before finishing the wake.
    ///
    /// # Safety
    ///
    /// The party this was taken from is still waiting and cannot stop waiting until the
    /// caller lets it (see [`crate::runtime::wait`]), so its task and thread handle are alive.
    pub(crate) unsafe fn wake(&self) -> Woken {
        match self {
            #[cfg(not(loom))]
            // SAFETY: alive by the caller's contract.
            Parker::Green(task) => Woken(wake_task(unsafe { task.as_ref() })),
            Parker::Thread(thread) => {
                thread.unpark();
                Woken(
                    #[cfg(not(loom))]
                    None,
                )
            }
        }
    }
}

/// The second half of a wake: the scheduling reference of a task that was parked, which
/// must be queued. Under loom there are no tasks.
#[must_use = "a woken task must be scheduled"]
pub(crate) struct Woken(#[cfg(not(loom))] Option<Arc<Task>>);

impl Woken {
    pub(crate) fn schedule(self) {
        #[cfg(not(loom))]
        if let Some(task) = self.0 {
            scheduler::schedule_woken(task);
        }
    }
}

/// The running green thread, as a new reference, or `None` on a plain thread.
#[cfg(not(loom))]
pub(crate) fn current_task() -> Option<Arc<Task>> {
    let ptr = context::current_task();
    if ptr.is_null() {
        return None;
    }
    // SAFETY: a non-null current task is alive: its worker holds the scheduling reference
    // while it runs, so bumping the count and adopting the new reference is sound.
    unsafe {
        Arc::increment_strong_count(ptr);
        Some(Arc::from_raw(ptr))
    }
}

/// Parks the running green thread `task` (switching to its worker) until its token is
/// available, then consumes it. Only the blocking point (`crate::runtime::blocking_point`)
/// calls it, having checked that the task may switch (it is not unwinding); it applies
/// interrupts and deadlines around it.
#[cfg(not(loom))]
#[inline]
pub(crate) fn park_task(task: &Task) {
    debug_assert!(std::ptr::eq(task, context::current_task()));
    debug_assert!(!std::thread::panicking());
    if take_token(&task.park_state) {
        return;
    }
    // Transition 2: the worker commits the park after the switch (see `commit_park`).
    suspend(task, Suspend::Park);
    consume_token(&task.park_state);
}

/// A yield of the running green thread `task`: in place when nothing else on its worker
/// could run (`Local::yield_in_place`), otherwise a switch to the worker, which queues it
/// behind the runnable work. The caller has checked that the thread is not unwinding.
#[cfg(not(loom))]
pub(crate) fn yield_running(task: &Task) {
    if context::local().is_some_and(|local| local.yield_in_place()) {
        return;
    }
    suspend(task, Suspend::Yield);
}

/// Hands control to the worker with `why`; returns when the task is resumed.
#[cfg(not(loom))]
pub(crate) fn suspend(task: &Task, why: Suspend) {
    let yielder = task.yielder.get();
    // SAFETY: `yielder` was recorded by this task when it started and lives on its stack,
    // below every frame that can reach this point; only the running task suspends itself.
    unsafe { (*yielder).suspend(why) };
}

/// Worker side of transition 2, run after the task suspended with `Suspend::Park`. Returns
/// the scheduling reference back if the task must run again at once (an unpark raced in).
#[cfg(not(loom))]
pub(crate) fn commit_park(task: Arc<Task>) -> Option<Arc<Task>> {
    if commit(&task.park_state) {
        // The park state now owns the scheduling reference; `unpark_task` reclaims it.
        mem::forget(task);
        None
    } else {
        // NOTIFIED: the token arrived during the switch; the task consumes it on resume.
        Some(task)
    }
}

/// Transition 3.
#[cfg(not(loom))]
pub(crate) fn unpark_task(task: &Task) {
    if let Some(task) = wake_task(task) {
        scheduler::schedule_woken(task);
    }
}

/// Transition 3 without queueing: returns the scheduling reference if the task was parked.
#[cfg(not(loom))]
fn wake_task(task: &Task) -> Option<Arc<Task>> {
    match notify(&task.park_state) {
        // SAFETY: we took the task out of PARKED, so the reference the worker forgot in
        // `commit_park` is ours now, and no one else can claim it.
        PARKED => Some(unsafe { Arc::from_raw(task) }),
        BLOCKED => {
            sys::futex_wake_all(&task.park_state);
            None
        }
        _ => None,
    }
}

/// Parks the current green thread, blocking its OS thread instead of switching (see
/// "Blocking the OS thread" in the module docs), until unparked or `deadline` passes.
/// Only green threads call it (a plain thread has no park word; callers check first).
#[cfg(not(loom))]
pub(crate) fn park_os_thread_until(deadline: Option<std::time::Instant>) {
    let task = context::current_task();
    debug_assert!(!task.is_null(), "only green threads have a park word");
    // SAFETY: the current task is alive while it runs, and we are it.
    if let Some(task) = unsafe { task.as_ref() } {
        if !take_token(&task.park_state) {
            park_blocking_os_thread(task, deadline);
        }
    }
}

#[cold]
#[cfg(not(loom))]
fn park_blocking_os_thread(task: &Task, deadline: Option<std::time::Instant>) {
    // The blocking point (`crate::runtime::blocking_point`) tells the monitor about an unwinding
    // green thread blocked here, with what it waits for.
    // Acquire on both paths: pairs with the unparker's AcqRel, whichever state it saw.
    if task
        .park_state
        .compare_exchange(EMPTY, BLOCKED, Acquire, Acquire)
        .is_ok()
    {
        while task.park_state.load(Acquire) == BLOCKED {
            let Some(deadline) = deadline else {
                sys::futex_wait(&task.park_state, BLOCKED);
                continue;
            };
            let now = std::time::Instant::now();
            if now >= deadline {
                // Give up the wait, unless an unpark has just moved the state on.
                if task
                    .park_state
                    .compare_exchange(BLOCKED, EMPTY, Acquire, Acquire)
                    .is_ok()
                {
                    return;
                }
                break;
            }
            sys::futex_wait_timeout(&task.park_state, BLOCKED, deadline - now);
        }
    }
    // Either the CAS saw NOTIFIED, or an unpark moved BLOCKED to NOTIFIED: consume it.
    consume_token(&task.park_state);
}

/// Model checks of the green-thread park transitions (run: see `src/loom.rs`). The task's
/// side runs on the model's main thread: the fast path, and the worker's commit after the
/// switch (same OS thread); unparkers run on other threads. In every interleaving the task
/// must be resumed exactly once: by its own fast path, by the worker when the commit finds
/// a token, or by the unparker that took it out of `PARKED`.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::Arc;

    fn park_against(unparkers: usize) {
        loom::model(move || {
            let state = Arc::new(AtomicU32::new(EMPTY));
            let resumes = Arc::new(AtomicUsize::new(0));
            let threads: Vec<_> = (0..unparkers)
                .map(|_| {
                    let (state, resumes) = (state.clone(), resumes.clone());
                    loom::thread::spawn(move || {
                        if notify(&state) == PARKED {
                            // This unparker owns the scheduling reference: it queues the task.
                            resumes.fetch_add(1, Relaxed);
                        }
                    })
                })
                .collect();
            if take_token(&state) || !commit(&state) {
                // Ran on without parking, or the worker re-queued it at once.
                resumes.fetch_add(1, Relaxed);
            }
            for thread in threads {
                thread.join().unwrap();
            }
            assert_eq!(resumes.load(Relaxed), 1);
            // Resumed tasks consume the token; nothing is left over for the next park
            // except a token from an unpark that came after the one that woke it.
            consume_token(&state);
            assert_eq!(state.load(Relaxed), EMPTY);
        });
    }

    #[test]
    fn loom_park_races_one_unpark() {
        park_against(1);
    }

    #[test]
    fn loom_park_races_two_unparks() {
        park_against(2);
    }
}
