//! The cooperative budget: a green thread that keeps completing weft operations without
//! ever waiting lets the other green threads of its worker run now and then.
//!
//! Under the sticky rule a started green thread never leaves its worker, so a loop that
//! never parks (unbounded sends, a `try_recv` spin, a spawn burst, socket reads that always
//! find data) would otherwise starve everything homed on that worker for as long as it runs,
//! and nothing could steal those green threads away. The producer case also grows memory
//! without bound: its receiver never runs.
//!
//! # Protocol
//!
//! * The worker *refills* the budget ([`BUDGET`] units) before every resume of a green
//!   thread ([`refill`]), so a green thread that parks or yields gets a fresh budget.
//! * Every weft operation that may complete without parking *spends* one unit ([`spend`])
//!   at its entry, before it does anything: channel sends and receives and their `try_`
//!   forms (an empty `try_recv` too), one per `select!` call (not per arm), lock and
//!   semaphore acquisitions, socket and pipe IO, `weft::fs` reads and writes (served from
//!   the page cache without switching), `spawn`. An operation that then parks
//!   wasted its unit, harmlessly: the worker refills on resume.
//! * When the budget is empty, the operation first yields to the worker, then runs. At the
//!   entry the operation holds nothing yet (no lock just taken, no wait registered). The
//!   yield is a plain switch, not a blocking point: it never cancels, unwinds or times out
//!   anything. The yielder queues behind everything runnable, as `yield_now` (in place when
//!   nothing else could run).
//! * `Debug` of `Mutex` and `RwLock` does not spend: formatting must never switch (a logger
//!   may hold a std lock while it formats).
//! * Calls that the `hooks` feature makes green (std's sockets, C libraries) do not spend:
//!   they run inside foreign code, which may hold per-OS-thread state at any call, so a hook
//!   switches only where the hooks module's rule allows a park. A std-socket loop that
//!   never waits is therefore not interrupted; `weft::net` is.
//! * No yield while unwinding (a switch mid-unwind would corrupt std's per-thread panic
//!   count), inside a blocking point's nested wait, or on a plain thread; the budget just
//!   refills.
//!
//! # Where the budget lives, and why it may be inlined
//!
//! In a const-initialised thread-local `AtomicU32`, accessed with a Relaxed load and a
//! Relaxed store (plain `mov`s, no locked instruction), inlined into every operation:
//! four instructions and a predicted branch. `context.rs` explains why weft's other
//! thread-local is only read inside non-inlined functions: after inlining, LLVM may reuse a
//! thread-local's address across a green-thread switch, and a *migratable* green thread
//! may resume on another OS thread. Here that is harmless by construction: the stale address
//! is another worker's counter (workers never exit, so it stays valid), and every access to
//! it is atomic, so the worst case is a budget that runs out a little early or late on
//! either worker: the unit that empties a counter refills that same counter, so none is
//! left at 0 to wrap around. No data race, no dangling access. Sticky green threads (the default)
//! never change OS thread, so for them the address is never stale.
//!
//! What this means for code holding an OS-thread-owned resource (a `std::sync::Mutex`
//! guard, a C library's lock) across a weft call: that call may now let another green
//! thread of the worker run, as a weft call that waits always could. Hold such resources
//! across no weft call, or use weft's locks (which park).

#[cfg(not(loom))]
mod imp {
    use std::sync::atomic::AtomicU32;
    use std::sync::atomic::Ordering::Relaxed;

    use crate::runtime::park;
    use crate::runtime::scheduler::context;

    /// How many operations a green thread completes between forced yields. At 128 the
    /// forced yield amortises to under one instruction per operation (see
    /// `asm-notes/switch-path.md`); tokio uses the same figure.
    pub(crate) const BUDGET: u32 = 128;

    thread_local! {
        /// Units left. Const-initialised, no destructor: a plain TLS access. Plain threads
        /// start (and refill) at `u32::MAX`, so they reach the cold path once in 2^32 calls.
        /// Atomic only so that a stale address (see the module docs) is harmless; Relaxed
        /// throughout, as it orders nothing.
        static LEFT: AtomicU32 = const { AtomicU32::new(u32::MAX) };
    }

    /// Called by the worker before it resumes a green thread, on the worker's own stack.
    #[inline]
    pub(crate) fn refill() {
        LEFT.with(|left| left.store(BUDGET, Relaxed));
    }

    /// Spends one unit; on the last one, lets the worker's other green threads run.
    #[inline]
    pub(crate) fn spend() {
        // A load and a store rather than `fetch_sub`: a locked instruction would cost more
        // than the rest of a cheap operation, and only this thread writes its counter (up to
        // the stale case, where a lost decrement is fine). The last unit refills through the
        // same reference: in the stale case that is the counter that ran out, so no counter
        // is ever left at 0 to wrap to `u32::MAX` (which would switch the budget off).
        let empty = LEFT.with(|left| {
            let now = left.load(Relaxed).wrapping_sub(1);
            if now == 0 {
                left.store(BUDGET, Relaxed);
                return true;
            }
            left.store(now, Relaxed);
            false
        });
        if empty {
            exhausted();
        }
    }

    #[cold]
    #[inline(never)]
    fn exhausted() {
        // `spend` refilled the counter; the worker refills again when it resumes a yielder.
        let task = context::current_task();
        if task.is_null() || std::thread::panicking() {
            if task.is_null() {
                LEFT.with(|left| left.store(u32::MAX, Relaxed));
            }
            return;
        }
        // SAFETY: the running task is alive while it runs, and we are it.
        let task = unsafe { &*task };
        if task.in_blocking_point.get() {
            return;
        }
        crate::runtime::scheduler::note_budget_yield();
        park::yield_running(task);
    }
}

#[cfg(loom)]
mod imp {
    /// Loom's threads are OS-thread models: there is nothing to yield to.
    #[inline]
    pub(crate) fn spend() {}
}

pub(crate) use imp::*;
