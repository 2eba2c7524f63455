//! Wait cells: how one party waits for any of several events, and how exactly one waker
//! completes the wait. Every channel and lock in weft queues [`Waiter`]s, and all of them
//! park through [`crate::runtime::park`], so the same code waits in a green thread or a plain thread.
//!
//! # The cell
//!
//! A [`Waiter`] lives on the waiting party's stack for the length of one wait. Queues hold
//! [`WaiterRef`]s to it (with a *token* naming the operation: the select arm, say), always
//! behind the queue's lock. The cell's `state` word:
//!
//! | state             | meaning                                                           |
//! |-------------------|-------------------------------------------------------------------|
//! | `WAITING`         | nobody has completed the wait                                     |
//! | `ABORTED`         | the owner gave up (deadline passed, or it retries); final         |
//! | `CLAIMED(token)`  | a waker won the wait for `token` and is still writing its result  |
//! | `DONE(token)`     | the waker is finished and never touches the cell again; final     |
//!
//! Transitions:
//!
//! 1. *claim* (a waker, holding the lock of a queue that holds a ref to the cell): CAS
//!    `WAITING → CLAIMED(token)`. At most one claim or abort ever succeeds. The winner
//!    removes the ref from its queue and moves the result (a value into or out of the owner's
//!    slot) still under the lock. After unlocking it wakes the owner (hands over its park
//!    token) and only then stores `DONE(token)` (Release); if the owner was parked, the
//!    waker queues it after that store, holding the scheduling reference the wake gave it.
//! 2. *abort* (the owner): CAS `WAITING → ABORTED`. On success no waker will ever complete
//!    the wait; the owner then removes its refs from every queue, under each queue's lock.
//!    On failure a waker claimed it first, and the owner waits for `DONE`.
//! 3. *wait* (the owner): run by the one blocking point ([`crate::runtime::blocking_point`]), which
//!    polls the state: `DONE` completes the wait; `CLAIMED` means the waker has woken the
//!    owner or is about to, and `DONE` is its next store, so the owner spins and yields
//!    (never parks: nobody would be left to unpark it) and never unwinds; `WAITING` parks.
//!    When the owner's deadline passes or an interrupt is pending, the blocking point
//!    *withdraws* the wait: the abort CAS, and only if it succeeds, the caller's unregister
//!    step (taking every ref out of every queue, under their locks). Then, and only then,
//!    may it unwind. If the abort fails, a waker claimed the wait: it completes, and the
//!    interrupt takes effect at the owner's next blocking point.
//!
//! Waking *before* `DONE` is what lets the waker use the owner's borrowed [`Parker`]
//! without taking a reference to its task: until `DONE` the owner cannot leave, so its task
//! and its stack are alive; after `DONE` the waker touches neither. (Waking after `DONE`
//! would need a reference of its own, two locked instructions per wake.)
//!
//! # Why the cell may live on the owner's stack
//!
//! The owner leaves (and its stack frame dies) only when the state is final *and* no queue
//! holds a ref: after `DONE` the claimer has stopped touching the cell and popped its ref,
//! and the owner unregisters every other ref under the queue locks, which excludes anyone
//! still reading them. After `ABORTED` the owner unregisters everything the same way. A
//! waker that reads a ref while holding its queue's lock therefore always sees a live cell.
//!
//! # Orderings
//!
//! Results travel under the queue lock and are published by `DONE`: the waker's Release
//! store pairs with the owner's Acquire load, so the owner sees everything the waker wrote
//! into its slot. The claim and abort CASes decide only *who* finishes the wait; they carry
//! no data (the lock orders the slot accesses before a claim), so they are Relaxed.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::Instant;

use crate::loom::sync::atomic::AtomicUsize;
use crate::runtime::blocking_point::{self, Ended, OnInterrupt, Progress, Site};
use crate::runtime::park::Parker;

const WAITING: usize = 0;
const ABORTED: usize = 1;
const TAG_MASK: usize = 0b11;
const TAG_CLAIMED: usize = 0b10;
const TAG_DONE: usize = 0b11;
const TOKEN_SHIFT: usize = 2;

/// The largest token a cell can carry.
pub(crate) const MAX_TOKEN: usize = usize::MAX >> TOKEN_SHIFT;

/// One party's wait; see the module docs. Must stay where it is while any queue holds a
/// [`WaiterRef`] to it, which [`Waiter::wait`] and the unregistering callers guarantee.
pub(crate) struct Waiter {
    state: AtomicUsize,
    parker: Parker,
    /// A waiter is pinned by the protocol and shared by raw pointer: keep it `!Unpin`-like
    /// in spirit and `!Send` in fact, so it cannot be moved to another thread mid-wait.
    _not_send: PhantomData<*const ()>,
}

impl Waiter {
    /// A fresh cell for the current green thread or plain thread.
    pub(crate) fn new() -> Waiter {
        Waiter {
            state: AtomicUsize::new(WAITING),
            parker: Parker::current(),
            _not_send: PhantomData,
        }
    }

    /// A reference for a queue. The caller must remove it from that queue before the waiter
    /// is dropped, unless a claimer popped it.
    pub(crate) fn as_ref(&self) -> WaiterRef {
        WaiterRef(NonNull::from(self))
    }

    /// Transition 2. `true`: nobody can complete the wait any more.
    pub(crate) fn abort(&self) -> bool {
        self.state
            .compare_exchange(WAITING, ABORTED, Relaxed, Relaxed)
            .is_ok()
    }

    /// Transition 3: blocks until a waker completes the wait, returning its token, or until
    /// `deadline` passes with no claim, returning `None`. When it gives up (the deadline, or
    /// a cancel or `timeout` boundary, which then unwinds) it first aborts the cell and, if
    /// that succeeds, runs `unregister`, which must take every ref to this waiter out of
    /// every queue: after that nothing can reach the cell (see [`crate::runtime::blocking_point`]).
    #[inline]
    pub(crate) fn wait(
        &self,
        site: Site,
        deadline: Option<Instant>,
        unregister: impl FnMut(),
    ) -> Option<usize> {
        self.wait_with(site, deadline, unregister, OnInterrupt::Unwind)
    }

    /// Like [`wait`](Self::wait), but deaf to cancels and `timeout` boundaries (only
    /// `deadline` ends it early): for waits foreign code started, which has no way to
    /// unwind and would only retry (the `hooks` futex wait: [`crate::runtime::address_wait`]). A pending interrupt takes
    /// effect at the green thread's next weft blocking point.
    #[cfg(any(feature = "hooks", loom))]
    pub(crate) fn wait_deaf(
        &self,
        site: Site,
        deadline: Option<Instant>,
        unregister: impl FnMut(),
    ) -> Option<usize> {
        self.wait_with(site, deadline, unregister, OnInterrupt::Ignore)
    }

    #[inline]
    fn wait_with(
        &self,
        site: Site,
        deadline: Option<Instant>,
        unregister: impl FnMut(),
        on_interrupt: OnInterrupt,
    ) -> Option<usize> {
        let mut wait = CellWait {
            waiter: self,
            unregister,
        };
        match blocking_point::block(&mut wait, site, deadline, on_interrupt) {
            Ended::Done(token) => Some(token),
            Ended::TimedOut => None,
        }
    }

    /// Like [`wait`](Self::wait) with no deadline, and deaf to interrupts: for waits that
    /// must not end before their waker is done (an `offload` whose closure borrows from the
    /// waiting stack).
    #[cfg_attr(loom, allow(dead_code))] // only `offload` uses it
    pub(crate) fn wait_uninterruptible(&self, site: Site) -> usize {
        let mut wait = CellWait {
            waiter: self,
            unregister: || {},
        };
        match blocking_point::block(&mut wait, site, None, OnInterrupt::Ignore) {
            Ended::Done(token) => token,
            Ended::TimedOut => unreachable!("an untimed, uninterruptible wait only completes"),
        }
    }
}

/// A cell's wait as the blocking point runs it.
struct CellWait<'a, U: FnMut()> {
    waiter: &'a Waiter,
    unregister: U,
}

impl<U: FnMut()> blocking_point::Wait for CellWait<'_, U> {
    type Output = usize;

    #[inline]
    fn poll(&mut self) -> Progress<usize> {
        // Acquire: pairs with the claimer's Release store of DONE (see the module docs).
        let state = self.waiter.state.load(Acquire);
        match state & TAG_MASK {
            TAG_DONE => Progress::Done(state >> TOKEN_SHIFT),
            // The claimer is between its claim and DONE, and has woken us or is about to.
            TAG_CLAIMED => Progress::Completing,
            _ => Progress::Waiting,
        }
    }

    fn withdraw(&mut self) -> bool {
        if !self.waiter.abort() {
            return false; // claimed: it completes
        }
        (self.unregister)();
        true
    }
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter")
            .field("state", &self.state.load(Relaxed))
            .finish()
    }
}

/// A queue's reference to a [`Waiter`] on some stack. Equality is identity.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct WaiterRef(NonNull<Waiter>);

// SAFETY: a `WaiterRef` is only dereferenced under the lock of the queue holding it, or by
// the claimer before it stores DONE, while the protocol in the module docs keeps the waiter
// alive; wakers only touch the `Waiter`'s atomic and wake through its `Parker`.
unsafe impl Send for WaiterRef {}
// SAFETY: as for `Send`: shared access only touches the atomic and the parker.
unsafe impl Sync for WaiterRef {}

impl WaiterRef {
    /// Transition 1: claims the wait for `token`. The returned [`Claimed`] finishes the wait
    /// when dropped; drop it after releasing the queue lock.
    ///
    /// # Safety
    ///
    /// The caller holds the lock of a queue from which it has just taken (or still holds)
    /// this ref, so the owner has not unregistered it and the waiter is alive; or the caller
    /// holds the only ref there is to a waiter whose owner waits without a deadline (so it
    /// can neither abort nor leave before DONE), as `offload`'s pool thread does.
    pub(crate) unsafe fn try_claim(self, token: usize) -> Option<Claimed> {
        debug_assert!(token <= MAX_TOKEN);
        // SAFETY: alive by the caller's contract.
        let waiter = unsafe { self.0.as_ref() };
        waiter
            .state
            .compare_exchange(
                WAITING,
                (token << TOKEN_SHIFT) | TAG_CLAIMED,
                Relaxed,
                Relaxed,
            )
            .ok()?;
        Some(Claimed {
            waiter: self.0,
            done: (token << TOKEN_SHIFT) | TAG_DONE,
        })
    }
}

/// A won claim: dropping it wakes the owner and then stores `DONE`.
pub(crate) struct Claimed {
    waiter: NonNull<Waiter>,
    done: usize,
}

impl Drop for Claimed {
    fn drop(&mut self) {
        // SAFETY: the owner cannot leave while its state is CLAIMED (it waits for DONE), so
        // the cell, its parker and the party it names are alive up to and including the
        // DONE store; we never touch them after it.
        let waiter = unsafe { self.waiter.as_ref() };
        // SAFETY: as above: the owner is still waiting.
        let woken = unsafe { waiter.parker.wake() };
        // Release: publishes the result written into the owner's slot.
        waiter.state.store(self.done, Release);
        // A parked owner can only run once this queues it, which is after the store.
        woken.schedule();
    }
}

impl std::fmt::Debug for Claimed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claimed").field("done", &self.done).finish()
    }
}

/// The deadline of `timeout` from now; `None` if it is too far away to express.
pub(crate) fn deadline_after(timeout: std::time::Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// A FIFO of waiters for a lock-like primitive, kept under that primitive's own lock. `K`
/// says what each waiter wants (a read or a write lock, say).
pub(crate) struct WaitQueue<K> {
    entries: VecDeque<(WaiterRef, K)>,
}

impl<K> WaitQueue<K> {
    pub(crate) const fn new() -> WaitQueue<K> {
        WaitQueue {
            entries: VecDeque::new(),
        }
    }

    pub(crate) fn push(&mut self, waiter: &Waiter, kind: K) {
        self.entries.push_back((waiter.as_ref(), kind));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Pops waiters from the front until one can be claimed (skipping those that gave up).
    /// Drop the returned claim after releasing the queue's lock.
    pub(crate) fn pop_claim(&mut self) -> Option<(K, Claimed)> {
        self.pop_claim_if(|_| true)
    }

    /// Like [`pop_claim`](Self::pop_claim), but claims the first waiter that has not given
    /// up only if `want` accepts its kind (otherwise leaves it queued and returns `None`).
    /// Waiters that gave up are dropped from the front on the way, so a reader behind an
    /// aborted writer is judged as the reader it is.
    pub(crate) fn pop_claim_if(&mut self, want: impl Fn(&K) -> bool) -> Option<(K, Claimed)> {
        while let Some((waiter, kind)) = self.entries.front() {
            // SAFETY: the caller holds the queue's lock (it has `&mut self`), and the ref is
            // still queued, so its owner has not unregistered it: the waiter is alive.
            let aborted = unsafe { waiter.0.as_ref() }.state.load(Relaxed) == ABORTED;
            if !aborted && !want(kind) {
                return None;
            }
            let (waiter, kind) = self.entries.pop_front().expect("front exists");
            if aborted {
                continue;
            }
            // SAFETY: as above; an abort since the load makes the claim fail, and the loop
            // moves on to the next waiter.
            if let Some(claimed) = unsafe { waiter.try_claim(0) } {
                return Some((kind, claimed));
            }
        }
        None
    }

    /// Claims the first waiter anywhere in the queue whose kind `want` accepts and that
    /// has not given up (for queues that hold several objects' waiters: the hooks' futex
    /// buckets in [`crate::runtime::address_wait`]). Drop the returned claim after releasing the queue's lock.
    #[cfg(any(feature = "hooks", loom))]
    pub(crate) fn claim_first_where(&mut self, want: impl Fn(&K) -> bool) -> Option<(K, Claimed)> {
        let mut at = 0;
        while at < self.entries.len() {
            if !want(&self.entries[at].1) {
                at += 1;
                continue;
            }
            let (waiter, kind) = self.entries.remove(at).expect("index in range");
            // SAFETY: the caller holds the queue's lock (it has `&mut self`), and the ref was
            // still queued, so its owner has not unregistered it: the waiter is alive. One
            // that gave up fails the claim and stays out of the queue (its own `remove`
            // then finds nothing).
            if let Some(claimed) = unsafe { waiter.try_claim(0) } {
                return Some((kind, claimed));
            }
        }
        None
    }

    /// Removes `waiter` (after its wait was aborted).
    pub(crate) fn remove(&mut self, waiter: &Waiter) {
        let me = waiter.as_ref();
        self.entries.retain(|(entry, _)| *entry != me);
    }
}
