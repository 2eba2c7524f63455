//! A green thread as the scheduler sees it: its coroutine, its park state and its home.
//!
//! # Ownership: the scheduling reference
//!
//! A `Task` is shared through `Arc`. Exactly one of those references is the *scheduling
//! reference*: it is in a run queue, or held by the worker running the task, or — while the
//! task is parked — owned by the park state itself (leaked with `mem::forget` when the worker
//! commits the park, reclaimed by whoever unparks it; see [`crate::runtime::park`]). Only the holder of
//! the scheduling reference touches the coroutine, which is how [`Task::coroutine`] is used
//! without a lock. The scheduling reference is dropped only when the coroutine has finished,
//! so a suspended coroutine is never dropped: corosensei would force-unwind it on whatever
//! thread dropped it, breaking the sticky rule below. A green thread parked forever with no
//! one left to unpark it is leaked, as a goroutine blocked forever is in Go.
//!
//! # Home
//!
//! A task may run on any worker until it first runs. The worker that first resumes it records
//! itself as `home`, and from then on the task is only ever queued where only that worker
//! pops it (its pinned queue or its inbox), unless the task is `migratable`. See the crate
//! docs for why this makes `spawn` safe.

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::num::NonZeroU64;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, Ordering::Relaxed};
use std::time::Instant;

use corosensei::{Coroutine as Coro, Yielder};

use crate::runtime::stack::GuardedStack;

/// Why a green thread handed control back to its worker.
pub(crate) enum Suspend {
    /// Still runnable: queue it behind the others.
    Yield,
    /// Waiting for `unpark`: commit the park (see [`crate::runtime::park`]).
    Park,
}

/// The coroutine type every green thread runs as.
pub(crate) type TaskCoroutine = Coro<(), Suspend, (), GuardedStack>;
pub(crate) type TaskYielder = Yielder<(), Suspend>;

/// `home` before the task first runs.
pub(crate) const NO_HOME: usize = usize::MAX;

pub(crate) struct Task {
    pub(crate) id: CoroutineId,
    pub(crate) name: Option<Box<str>>,
    /// Park token and parked flag; the state machine is documented in [`crate::runtime::park`].
    pub(crate) park_state: AtomicU32,
    /// Index of the worker that first ran the task, or [`NO_HOME`].
    ///
    /// Written once, by that worker, before the first resume; read by unparkers only after they
    /// took the task out of `PARKED` with an acquiring CAS that pairs with the worker's
    /// releasing commit of the park, which follows the write. Relaxed accesses are therefore
    /// enough: the happens-before comes from `park_state`.
    pub(crate) home: AtomicUsize,
    /// Opted into migration by `unsafe Builder::migratable`.
    pub(crate) migratable: bool,
    /// The worker a placement handed it to at its first run ([`NO_HOME`] if none; see
    /// "Placement" in the worker module): it is not handed on again, and whoever starts it
    /// takes it off that worker's pending count. Relaxed: written and read only by the
    /// holder of the scheduling reference, which the queue hand-off passes on with its own
    /// ordering.
    pub(crate) placed_on: AtomicUsize,
    /// The stack's guard range and usable size, copied here so the overflow handler can read
    /// them without touching the coroutine.
    pub(crate) guard_range: (usize, usize),
    pub(crate) stack_size: usize,
    /// The coroutine; `None` once finished. Accessed only by the holder of the scheduling
    /// reference.
    pub(crate) coroutine: UnsafeCell<Option<TaskCoroutine>>,
    /// The coroutine's yielder, recorded by the task itself when it first runs; lives on the
    /// task's own stack. Read only by code running on that task.
    pub(crate) yielder: Cell<*const TaskYielder>,
    /// Set once by a cancel (any thread, Release); read at the task's blocking points
    /// (Acquire). See [`crate::interrupt`].
    pub(crate) cancelled: AtomicBool,
    /// The earliest `timeout`/`deadline` boundary in force and its id. Read and written only
    /// by the task itself, while it runs.
    pub(crate) boundary: Cell<Option<(Instant, u64)>>,
    /// Set by the task when its body has returned: interrupts are off for its cleanup.
    pub(crate) body_done: Cell<bool>,
    /// Set while the task runs inside the blocking point (between a wait's start and its
    /// end, parks included): a wait that code there starts (a contended std lock in a
    /// future that `block_on` polls, reaching the `hooks` futex wait) re-posts the park
    /// token it may have consumed. Read and written only by the task itself.
    pub(crate) in_blocking_point: Cell<bool>,
    /// Set once the task has finished (counted complete), for lists that prune finished
    /// tasks (Relaxed: a hint; a stale `false` keeps an entry one round longer).
    pub(crate) finished: AtomicBool,
    /// Coroutine-local values ([`crate::local`]); touched only by the task itself.
    pub(crate) locals: UnsafeCell<LocalValues>,
    /// Where it was spawned (the caller of `spawn`, `go!`, `Builder::spawn`, `Scope::spawn`).
    pub(crate) spawned_at: &'static Location<'static>,
    /// Its last park: where (a `&'static Location`), why (a packed `WaitReason`) and when
    /// (the registry's coarse clock). Written by the task as it parks, read by dumps;
    /// Relaxed, each a snapshot valid on its own (see [`crate::dump`]).
    pub(crate) wait_site: AtomicPtr<Location<'static>>,
    pub(crate) wait_reason: AtomicU64,
    pub(crate) wait_since: AtomicU64,
    /// Its place in its worker's registry list (shard << 32 | index), changed only under
    /// that list's lock (see [`super::registry`]).
    pub(crate) registry_slot: AtomicU64,
}

// SAFETY: the fields that are not thread-safe by themselves are `coroutine`, `yielder`,
// `boundary`, `body_done` and `locals`; all but the first are touched only by the task
// itself while it runs.
// `locals` may hold `!Send` values: like the rest of the task's stack, they change OS thread
// only under the sticky rule's exceptions (before first run there are none; a migratable
// task's spawner promised).
// `coroutine` is touched only by the holder of the scheduling reference (see the module
// docs), and every hand-off of that reference between threads goes through a queue or the
// park state with release/acquire ordering. `yielder` is written and read only by the task
// while it runs, which is on one thread at a time for the same reason. A coroutine whose stack
// may hold `!Send` values moves between threads only before it first runs (its stack then
// holds only the `Send` closure) or when the spawner promised migration safety via the
// `unsafe` `Builder::migratable`.
unsafe impl Send for Task {}
// SAFETY: as above; shared access from other threads only reads immutable fields or uses the
// atomics.
unsafe impl Sync for Task {}

impl Task {
    pub(crate) fn new(
        id: CoroutineId,
        name: Option<Box<str>>,
        migratable: bool,
        coroutine: TaskCoroutine,
        guard_range: (usize, usize),
        stack_size: usize,
        spawned_at: &'static Location<'static>,
    ) -> Task {
        Task {
            id,
            name,
            park_state: AtomicU32::new(crate::runtime::park::EMPTY),
            home: AtomicUsize::new(NO_HOME),
            migratable,
            placed_on: AtomicUsize::new(NO_HOME),
            guard_range,
            stack_size,
            coroutine: UnsafeCell::new(Some(coroutine)),
            yielder: Cell::new(std::ptr::null()),
            cancelled: AtomicBool::new(false),
            boundary: Cell::new(None),
            locals: UnsafeCell::new(LocalValues::new()),
            body_done: Cell::new(false),
            in_blocking_point: Cell::new(false),
            finished: AtomicBool::new(false),
            spawned_at,
            wait_site: AtomicPtr::new(std::ptr::null_mut()),
            wait_reason: AtomicU64::new(0),
            wait_since: AtomicU64::new(0),
            registry_slot: AtomicU64::new(0),
        }
    }

    /// Whether a cancel was requested.
    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        // Acquire: pairs with `cancel`'s Release, so whatever the canceller did first is
        // visible to the unwinding task.
        self.cancelled.load(Ordering::Acquire)
    }

    /// Requests the cancel and wakes the task if it is parked; `true` the first time.
    pub(crate) fn cancel(&self) -> bool {
        // Release: see `is_cancelled`. A swap, so only the first cancel counts.
        let first = !self.cancelled.swap(true, Ordering::AcqRel);
        // The token wakes a parked task, or makes its next park return at once; either way
        // it reaches a blocking point's check.
        crate::runtime::park::unpark_task(self);
        first
    }

    /// The worker this task must resume on, if it has started and is not migratable.
    pub(crate) fn pinned_home(&self) -> Option<usize> {
        if self.migratable {
            return None;
        }
        match self.home.load(Ordering::Relaxed) {
            NO_HOME => None,
            home => Some(home),
        }
    }
}

/// A green thread's unique id. Ids are never reused within a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CoroutineId(NonZeroU64);

/// The next unreserved id. Ids are handed out one at a time to plain threads and in batches
/// to workers, so ids grow over time but are not in spawn order across threads.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl CoroutineId {
    /// A fresh id, for spawns from plain threads.
    pub(crate) fn next() -> CoroutineId {
        CoroutineId::from_reserved(CoroutineId::reserve(1).0)
    }

    /// Reserves `count` consecutive ids: returns `start..end`.
    pub(crate) fn reserve(count: u64) -> (u64, u64) {
        // Relaxed: uniqueness needs only the atomicity of the increment.
        let start = NEXT_ID.fetch_add(count, Relaxed);
        (start, start + count)
    }

    /// Wraps an id taken from a reserved range.
    pub(crate) fn from_reserved(id: u64) -> CoroutineId {
        CoroutineId(NonZeroU64::new(id).expect("weft: coroutine ids exhausted"))
    }

    /// The id as a number (ids start at 1).
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for CoroutineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A green thread's coroutine-local values, by key index (the `coroutine_local!` API in
/// `crate::local` reads and writes them; only the green thread itself touches them).
pub(crate) struct LocalValues {
    pub(crate) slots: Vec<Option<Box<dyn std::any::Any>>>,
    /// Set at the green thread's final teardown: no value may be created after it.
    pub(crate) closed: bool,
}

impl LocalValues {
    pub(crate) const fn new() -> LocalValues {
        LocalValues {
            slots: Vec::new(),
            closed: false,
        }
    }
}
