//! A worker: one OS thread that runs green threads, and the loop that picks the next one.
//!
//! # Queues a worker owns
//!
//! * `deque` — crossbeam-deque FIFO of *stealable* tasks: not yet started, or migratable.
//!   Other workers steal half batches from its `Stealer`.
//! * `pinned` — a plain `VecDeque` of started sticky tasks whose home is this worker and that
//!   are runnable (they yielded, or were woken on this thread). Nobody else can see it, so
//!   nobody else can resume them.
//! * `inbox` — crossbeam `Injector` (an MPMC queue used as MPSC): started sticky tasks of this
//!   worker woken by *other* threads. Only this worker pops it; a push wakes the worker if it
//!   sleeps.
//! * `placed` — crossbeam `Injector`: fresh tasks another worker handed to this one at their
//!   first run (see "Placement"). This worker takes them one at a time, with its deque's;
//!   if it stays awake without picking anything for a monitor interval (a long computation,
//!   or a block while unwinding), the monitor moves them to the global injector, so they
//!   are never stranded.
//! * `yielded` — sticky tasks that called `yield_now`, each with the tick at which its turn
//!   comes again: the tick of the yield plus the number of tasks then runnable in `pinned`,
//!   `deque`, `placed`, the inbox and `yielded` itself. Every yielder thus leaves a pick for each task that was
//!   runnable, so yielders cannot take turns among themselves while other work waits. A yielder thus waits behind the work that was runnable when it yielded, as
//!   a goroutine does after `Gosched`, however fast it creates more (a loop that spawns two
//!   green threads and yields keeps a backlog of about two, not one that grows by one per
//!   iteration). The wait is bounded by that count, so a spawn storm cannot starve it.
//!
//! # Placement
//!
//! A started green thread never changes worker, so where it *first* runs decides the load
//! for its whole life. An accept loop's handlers would otherwise nearly all start on the
//! acceptor's worker (the acceptor spawns, then parks in `accept`, and its own worker picks
//! the fresh task up first), and one listener's connections would pile onto one worker
//! while the others idle. So at a fresh sticky task's first run (`Local::place`), a worker
//! that homes at least [`PLACEMENT_SLACK`] more green threads than a randomly chosen other
//! worker hands the task to that worker's `placed` queue instead (waking it if it sleeps);
//! the task is marked so that it is never handed on twice, and whoever starts it becomes
//! its home. Other workers do not steal from `placed` (an idle acceptor's worker would take
//! the tasks straight back), but placement is a hint, not a binding: if the target stays
//! awake without picking a task for a monitor interval (busy in a long computation, or
//! blocked while unwinding), the monitor moves its placed tasks to the global injector for
//! anyone to start. (An earlier version used the inbox, from which nothing is rescued: a
//! destructor that spawned and joined a helper could deadlock that way.)
//!
//! A worker's load is the registry's count of its started, unfinished green threads plus
//! the hand-offs to it that nobody has started yet (without those, a burst of hand-offs all
//! went to one worker before its count caught up), read with Relaxed loads. A worker that
//! homes few green threads pays two loads and never hands anything on; one that homes many
//! may hand on short-lived spawns too (it cannot tell them from long-lived ones at their
//! first run), for a queue push and perhaps a wake-up of the target. Over many spawns the
//! choice-of-two keeps every worker's count within a few times the slack of the others'.
//!
//! # Picking the next task (`next_task`), in order
//!
//! 1. Every [`GLOBAL_CHECK_INTERVAL`] (61) ticks, the global injector first, so a worker busy
//!    with its own work cannot starve tasks spawned from plain threads.
//! 2. The inbox is moved to the back of `pinned`.
//! 3. The oldest yielder, if its turn has come.
//! 4. `pinned` and `deque`, alternating which goes first by tick parity, so neither new
//!    spawns nor woken green threads can starve the other; each is FIFO.
//! 5. The global injector, then the oldest yielder even if its turn has not come (nothing
//!    else is runnable here).
//! 6. A timeout-0 poll of the reactor, if it exists and nobody else is polling: IO that
//!    completed may have made green threads runnable. (Busy workers also poll every
//!    [`GLOBAL_CHECK_INTERVAL`] ticks, with step 1.)
//! 7. Search: steal from the other workers (random start) for a bounded spin, looking at the
//!    worker's io_uring ring each round and polling epoll (timeout 0) each round, or every
//!    4th round for a worker with a ring, whose spin is also shorter (see `SPIN_ROUNDS_RING`).
//! 8. Sleep (see [`super::idle`] for the protocol that makes this safe), then start again.
//!    The first worker to sleep sleeps in `epoll_wait` as the reactor's blocking poller;
//!    the others sleep on their thread token. [`Worker::wake`] knows which is which.

use std::cell::{Cell, RefCell};

use crate::runtime::coop;
use std::collections::VecDeque;
use std::sync::atomic::{
    AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed, Ordering::Release,
    Ordering::SeqCst,
};
use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};

use corosensei::CoroutineResult;
use crossbeam_deque::{Injector, Steal, Stealer, Worker as Deque};

use super::context;
use super::registry;
use super::task::{Suspend, Task, NO_HOME};
use super::unwinding;
use super::idle::Asleep;
use super::Runtime;
use crate::runtime::scheduler::task::CoroutineId;
use crate::runtime::park;
use crate::runtime::reactor;
use crate::runtime::reactor::uring::Ring;
use crate::runtime::stack::pool::{self, LocalCache};
use crate::sys;

/// Ticks between forced looks at the global injector (Go's choice: a prime, so it does not
/// fall into step with periodic workloads).
const GLOBAL_CHECK_INTERVAL: u64 = 61;
/// Steal rounds a searching worker makes before it goes to sleep. Each round looks at every
/// queue; the first rounds spin, later ones yield the CPU. Calibrated to roughly 20–50 µs here,
/// about the cost of the wake-up it saves.
const SEARCH_ROUNDS: u32 = 32;
const SPIN_ROUNDS: u32 = 16;
/// The same for a worker with an io_uring ring, whose own completions wake it directly (no
/// other thread's poll and wake-up in between), so a shorter spin loses little: HTTP at 100
/// connections cost 8.09 µs of server CPU per request with 4 spin rounds against 8.44 with
/// 16, while one connection's echo latency held (212k against 214k round trips in 3 s); with
/// 1 or 0 spin rounds it fell to 142k (`benches/peers/sleeps.sh`, two alternating rounds).
const SEARCH_ROUNDS_RING: u32 = 8;
const SPIN_ROUNDS_RING: u32 = 4;
/// How many more green threads a worker must home than another before it hands a fresh
/// task to that other worker instead of starting it itself (see "Placement").
const PLACEMENT_SLACK: usize = 16;
/// Green-thread ids a worker reserves at once.
const ID_BATCH: u64 = 1024;

/// The part of a worker that other threads see.
pub(crate) struct Worker {
    pub(crate) index: usize,
    pub(crate) stealer: Stealer<Arc<Task>>,
    pub(crate) inbox: Injector<Arc<Task>>,
    /// Set from just before the worker re-checks its queues for the last time until it wakes.
    pub(crate) sleeping: Asleep,
    /// How a sleeping worker must be woken: [`WAKE_THREAD`] or [`WAKE_REACTOR`]. Written
    /// before `sleeping` and before registering as a sleeper (both SeqCst), so a notifier
    /// that saw either reads the mode of that sleep or of a later one.
    pub(crate) wake_mode: AtomicU8,
    pub(crate) thread: OnceLock<Thread>,
    /// The worker's kernel thread id, for the watchdog's look at what it is blocked in
    /// (0 until the worker starts).
    pub(crate) tid: std::sync::atomic::AtomicI32,
    pub(crate) counters: CacheLines<Counters>,
    /// Set while a green thread of this worker blocks it during an unwind (see
    /// [`super::unwinding`]); read by the monitor.
    pub(crate) unwind_block: unwinding::BlockSlot,
    /// The task being resumed, or null: for dumps and the watchdog. Release on store
    /// pairs with their Acquire loads (a dump then sees the task's own stores before it).
    pub(crate) running: CacheLines<AtomicPtr<Task>>,
    /// The green threads that first ran here and have not finished (see
    /// [`super::registry`]).
    pub(crate) registry: registry::Shard,
    /// Fresh green threads handed to this worker by placement (see "Placement"). Only this
    /// worker takes from it, with its fresh work; placement is a hint, never a binding, so
    /// when the target is blocked while unwinding, or has picked no task for a while, the
    /// monitor moves the queue into the global injector, and a busy or blocked target
    /// cannot strand them.
    pub(crate) placed: Injector<Arc<Task>>,
    /// How many green threads placement handed to this worker that nobody has started yet.
    /// Written by other workers, so on lines of its own. Relaxed: a load estimate, like the
    /// registry's count.
    pub(crate) placed_pending: CacheLines<AtomicUsize>,
    /// With an io_uring ring (the default backend): the eventfd the worker's ring polls while it
    /// sleeps; [`Worker::wake`] writes it in mode [`WAKE_RING`].
    pub(crate) ring_wake: OnceLock<std::os::fd::OwnedFd>,
}

/// Statistics a worker keeps about itself. Only the owning worker writes them (a load and a
/// store, not a read-modify-write, so no locked instruction on the hot path); anyone may read
/// them with Relaxed loads for approximate figures.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) tick: AtomicU64,
    pub(crate) switches: AtomicU64,
    pub(crate) steals: AtomicU64,
    pub(crate) spawned: AtomicU64,
    pub(crate) completed: AtomicU64,
    /// File reads served from the page cache on this worker (`weft::fs`'s fast path).
    pub(crate) fs_fast_path: AtomicU64,
    /// Fresh green threads this worker handed to a lighter one (see "Placement").
    pub(crate) placed_elsewhere: AtomicU64,
    /// Yields forced by an empty cooperative budget (see `runtime::coop`).
    pub(crate) budget_yields: AtomicU64,
    /// Waits of this worker's green threads that went through its io_uring ring.
    pub(crate) ring_waits: AtomicU64,
}

/// A value on cache lines of its own (128 bytes: x86's adjacent-line prefetch pairs lines).
/// For what a worker writes on every switch (its counters, its running task, its registry
/// shard): other workers read its stealer, inbox and flags in every steal round, and must
/// not miss in cache each time because those share a line with a counter. (The demo's
/// spawn-yield-join of 100,000 green threads moved from ~45 to ~70 ms when a field added to
/// the registry shifted the layout; see the Worker struct.)
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct CacheLines<T>(pub(crate) T);

impl<T> std::ops::Deref for CacheLines<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[inline]
pub(crate) fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed).wrapping_add(1), Relaxed);
}

/// The worker sleeps on its thread token (`thread::park`).
pub(crate) const WAKE_THREAD: u8 = 0;
/// The worker sleeps in `epoll_wait` as the reactor's blocking poller (in its io_uring ring,
/// with a poll on the epoll fd, if it has one: the reactor's eventfd wakes it either way).
pub(crate) const WAKE_REACTOR: u8 = 1;
/// The worker sleeps in its io_uring ring, which polls its `ring_wake` eventfd.
pub(crate) const WAKE_RING: u8 = 2;

impl Worker {
    pub(crate) fn new(index: usize, stealer: Stealer<Arc<Task>>) -> Worker {
        Worker {
            index,
            stealer,
            inbox: Injector::new(),
            sleeping: Asleep::new(),
            wake_mode: AtomicU8::new(WAKE_THREAD),
            thread: OnceLock::new(),
            tid: std::sync::atomic::AtomicI32::new(0),
            counters: CacheLines(Counters::default()),
            unwind_block: unwinding::BlockSlot::default(),
            running: CacheLines(AtomicPtr::new(std::ptr::null_mut())),
            registry: registry::Shard::new(),
            placed: Injector::new(),
            placed_pending: CacheLines(AtomicUsize::new(0)),
            ring_wake: OnceLock::new(),
        }
    }

    /// Queues a started sticky task woken by a thread other than this worker, and wakes the
    /// worker if it sleeps ([`Asleep`]: either the worker's last re-check in
    /// [`Local::sleep`] sees the task, or the pusher sees the flag).
    pub(crate) fn push_inbox(&self, task: Arc<Task>) {
        self.push_and_wake(&self.inbox, task);
    }

    /// Pushes `task` on one of this worker's shared queues, then wakes the worker if it
    /// sleeps (the pairing described at [`push_inbox`](Self::push_inbox)).
    fn push_and_wake(&self, queue: &Injector<Arc<Task>>, task: Arc<Task>) {
        queue.push(task);
        if self.sleeping.must_wake_after_push() {
            self.wake();
        }
    }

    /// Wakes the worker from its sleep, whichever way it sleeps. A wake that arrives after
    /// the worker woke on its own is harmless: its next sleep returns at once (thread token)
    /// or its next `epoll_wait` does (eventfd), and it re-checks its queues.
    pub(crate) fn wake(&self) {
        match self.wake_mode.load(SeqCst) {
            WAKE_REACTOR => {
                if let Some(reactor) = reactor::try_get() {
                    reactor.wake();
                    return;
                }
            }
            WAKE_RING => {
                if let Some(fd) = self.ring_wake.get() {
                    use std::os::fd::AsFd;
                    sys::fdio::eventfd_signal(fd.as_fd());
                    return;
                }
            }
            _ => {}
        }
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }
}

/// The part of a worker that only its own thread touches, reached through
/// [`context::local`]. Leaked at worker start: workers live as long as the process.
pub(crate) struct Local {
    pub(crate) runtime: &'static Runtime,
    pub(crate) shared: &'static Worker,
    deque: Deque<Arc<Task>>,
    pinned: RefCell<VecDeque<Arc<Task>>>,
    /// Sticky tasks that yielded, with the tick from which they may run again (see the
    /// module docs).
    yielded: RefCell<VecDeque<(Arc<Task>, u64)>>,
    /// The task being resumed, or null; read by `weft::current` and the overflow handler.
    pub(crate) current: Cell<*const Task>,
    pub(crate) stacks: RefCell<LocalCache>,
    tick: Cell<u64>,
    rng: Cell<u64>,
    searching: Cell<bool>,
    /// Ids reserved for green threads spawned on this worker: `next..end`.
    ids: Cell<(u64, u64)>,
    /// The worker's io_uring ring (unless `WEFT_IO=epoll` or it cannot be set up; see
    /// `reactor::uring`).
    pub(crate) ring: Option<Ring>,
}

/// Run on each worker's own OS thread before it publishes its `Thread` handle or runs any
/// green thread, if a feature set it (the `hooks` learn the thread's std park word and
/// stack range, whose futexes are keyed by the OS thread).
pub(crate) static WORKER_START: OnceLock<fn()> = OnceLock::new();

/// Runs worker `index` forever. Called on the worker's own OS thread.
pub(crate) fn run(runtime: &'static Runtime, index: usize, deque: Deque<Arc<Task>>) -> ! {
    // The overflow handler needs an alternate stack to run on; without one, an overflow would
    // be a silent SIGSEGV. Failure leaves only that diagnostic impaired.
    let _ = sys::ensure_sigaltstack();
    let shared = &runtime.workers[index];
    // The ring is set up on the worker's own thread: it is single-issuer, and this thread is
    // the issuer. Its wake-up eventfd belongs to the shared half, which lives for ever.
    let ring = if reactor::uring::wanted() {
        sys::fdio::eventfd().ok().and_then(|fd| {
            use std::os::fd::AsFd;
            let ring = Ring::new(fd.as_fd(), &shared.counters.ring_waits)?;
            // Kept for as long as the ring polls it (the life of the process); without a ring
            // nobody would, and the fd closes here.
            let _ = shared.ring_wake.set(fd);
            Some(ring)
        })
    } else {
        None
    };
    let local: &'static Local = Box::leak(Box::new(Local {
        runtime,
        shared,
        deque,
        pinned: RefCell::new(VecDeque::new()),
        yielded: RefCell::new(VecDeque::new()),
        current: Cell::new(std::ptr::null()),
        stacks: RefCell::new(LocalCache::new()),
        tick: Cell::new(0),
        rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1)),
        searching: Cell::new(false),
        ids: Cell::new((0, 0)),
        ring,
    }));
    context::set_local(local);
    if let Some(start) = WORKER_START.get() {
        start();
    }
    let _ = shared.thread.set(thread::current());
    // Relaxed: read by the monitor as a hint, after the worker has run for a while.
    shared.tid.store(sys::gettid(), std::sync::atomic::Ordering::Relaxed);
    // Scheduler state is inconsistent if scheduler code itself unwinds; user panics never
    // reach here (each green thread catches its own).
    let _abort_on_unwind = AbortOnUnwind;
    loop {
        let task = local.next_task();
        local.run_task(task);
    }
}

struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        sys::write_stderr_raw(b"weft: internal error: a worker unwound; aborting\n");
        std::process::abort();
    }
}

impl Local {
    /// Resumes `task` until it yields, parks or finishes, then files it accordingly.
    fn run_task(&self, task: Arc<Task>) {
        let Some(task) = self.place(task) else {
            return; // handed to a lighter worker
        };
        // SAFETY: we hold the task's scheduling reference (it came out of a queue), so nobody
        // else touches its coroutine until we hand that reference on.
        let coroutine = unsafe { &mut *task.coroutine.get() };
        let coroutine = coroutine
            .as_mut()
            .expect("weft: a finished green thread was queued");
        if !coroutine.started() {
            if !task.migratable {
                // The sticky rule: the first worker to run a task is its home for good.
                task.home.store(self.shared.index, Relaxed);
            }
            self.shared.registry.enter(&task, self.shared.index);
            let placed_on = task.placed_on.load(Relaxed);
            if placed_on != NO_HOME {
                self.runtime.workers[placed_on]
                    .placed_pending
                    .fetch_sub(1, Relaxed);
            }
        }
        self.current.set(Arc::as_ptr(&task));
        self.shared
            .running
            .store(Arc::as_ptr(&task) as *mut Task, Release);
        bump(&self.shared.counters.switches);
        coop::refill();
        // A yield reaches here only when something else could run: a lone yielder carries
        // on in place (`yield_in_place`, asked by the green thread before it switches).
        let result = coroutine.resume(());
        self.current.set(std::ptr::null());
        self.shared.running.store(std::ptr::null_mut(), Release);
        match result {
            // Still runnable: behind everything else that is runnable here.
            CoroutineResult::Yield(Suspend::Yield) => self.push_yielded(task),
            // Waiting: the park state takes the scheduling reference, unless an unpark
            // raced in during the switch, in which case the task runs again.
            CoroutineResult::Yield(Suspend::Park) => {
                if let Some(task) = park::commit_park(task) {
                    self.requeue(task);
                }
            }
            // Finished: the stack goes back to the pool and the scheduling reference dies.
            CoroutineResult::Return(()) => {
                // SAFETY: still the holder of the scheduling reference.
                let coroutine = unsafe { &mut *task.coroutine.get() }.take();
                if let Some(coroutine) = coroutine {
                    pool::release(coroutine.into_stack(), Some(&mut self.stacks.borrow_mut()));
                }
                // `completed` was counted, and the task unlisted from the registry, by the
                // task itself (`scheduler::note_completed`).
            }
        }
    }

    /// Placement at first run (see the module docs): returns the task if it is to run here,
    /// or hands a fresh sticky task to the `placed` queue of a random other worker that
    /// homes [`PLACEMENT_SLACK`] fewer green threads than this one, and returns `None`.
    ///
    /// The common cases cost two loads: a started task, or a worker that homes few green
    /// threads (which is every short-lived spawn-and-join loop).
    #[inline]
    fn place(&self, task: Arc<Task>) -> Option<Arc<Task>> {
        let mine = self.shared.registry.len();
        if mine < PLACEMENT_SLACK || task.migratable || task.placed_on.load(Relaxed) != NO_HOME {
            return Some(task);
        }
        // SAFETY: we hold the task's scheduling reference (see `run_task`).
        let started = unsafe { &*task.coroutine.get() }
            .as_ref()
            .is_some_and(|c| c.started());
        let workers = &self.runtime.workers;
        if started || workers.len() == 1 {
            return Some(task);
        }
        // One random other worker (not all of them: the choice of two, this one and that
        // one, already keeps the spread within a few times the slack).
        let mut other = self.next_random() as usize % (workers.len() - 1);
        if other >= self.shared.index {
            other += 1;
        }
        let target = &workers[other];
        let load = |w: &Worker| w.registry.len() + w.placed_pending.load(Relaxed);
        if load(target) + PLACEMENT_SLACK > load(self.shared) {
            return Some(task);
        }
        task.placed_on.store(other, Relaxed);
        bump(&self.shared.counters.placed_elsewhere);
        // Counted against the target until someone starts the task: a burst of hand-offs
        // must not all pick a worker whose homed count has not caught up yet.
        target.placed_pending.fetch_add(1, Relaxed);
        target.push_and_wake(&target.placed, task);
        None
    }

    /// Queues a runnable task that last ran here: pinned if sticky, stealable if migratable.
    fn requeue(&self, task: Arc<Task>) {
        if task.migratable {
            self.push_stealable(task);
        } else {
            self.pinned.borrow_mut().push_back(task);
        }
    }

    /// Queues a task that yielded: behind every task runnable here now (see the module docs).
    /// A migratable one goes to the back of the stealable deque instead, where idle workers
    /// can take it.
    fn push_yielded(&self, task: Arc<Task>) {
        if task.migratable {
            return self.push_stealable(task);
        }
        let mut yielded = self.yielded.borrow_mut();
        // Ahead of it: the runnable tasks, and the yielders queued before it (whose turns
        // come first and take picks too). Leaving out the yielders let two yielders take
        // turns for ever while a woken task waited in `pinned`; leaving out `placed` let a
        // lone yielder run for ever while fresh tasks another worker placed here waited (its
        // turn always came first, and the monitor rescues placed tasks only from a worker
        // whose tick stands still). The inbox is counted too: its tasks join `pinned` at the
        // next pick.
        let ahead = self.pinned.borrow().len()
            + self.deque.len()
            + self.shared.placed.len()
            + self.shared.inbox.len()
            + yielded.len();
        // The next pick has tick + 1; the tasks ahead take picks tick + 1 ..= tick + ahead.
        let turn = self.tick.get().wrapping_add(ahead as u64 + 1);
        yielded.push_back((task, turn));
    }

    /// The oldest yielder, if its turn has come by `tick` (or, with `any`, regardless).
    fn pop_yielded(&self, tick: u64, any: bool) -> Option<Arc<Task>> {
        let mut yielded = self.yielded.borrow_mut();
        match yielded.front() {
            // Wrapping difference: ticks wrap after 2^64, turns are near the current tick.
            Some(&(_, turn)) if any || tick.wrapping_sub(turn) as i64 >= 0 => {
                yielded.pop_front().map(|(task, _)| task)
            }
            _ => None,
        }
    }

    /// Queues a task woken on this worker's thread whose home is this worker.
    pub(crate) fn push_pinned(&self, task: Arc<Task>) {
        self.pinned.borrow_mut().push_back(task);
    }

    /// Queues a task any worker may run. A lone task wakes nobody: this worker reaches it as
    /// soon as the running green thread blocks or yields, sooner than a sleeping worker could
    /// wake (tens of µs). A backlog asks one more worker to help; the monitor thread covers a
    /// worker that stays busy with a lone task queued behind it.
    pub(crate) fn push_stealable(&self, task: Arc<Task>) {
        self.deque.push(task);
        if self.deque.len() > 1 {
            self.runtime.notify_one();
        }
    }

    fn advance_tick(&self) -> u64 {
        let tick = self.tick.get().wrapping_add(1);
        self.tick.set(tick);
        self.shared.counters.tick.store(tick, Relaxed);
        tick
    }

    /// A lone yield, decided by the yielding green thread itself on this worker's thread:
    /// if nothing else could run ([`nothing_else_runnable`](Self::nothing_else_runnable)),
    /// does the worker's bookkeeping for one pick and resume (the tick, which drives the
    /// periodic injector and reactor checks and the monitor's progress signal; the switch
    /// count, which the watchdog reads; a fresh cooperative budget) and returns `true`: the
    /// caller continues without switching out and back. The result is what `run_task`'s
    /// lone-yielder loop would have done, without the two stack switches.
    #[inline]
    pub(crate) fn yield_in_place(&self) -> bool {
        if !self.nothing_else_runnable() {
            return false;
        }
        self.advance_tick();
        bump(&self.shared.counters.switches);
        coop::refill();
        true
    }

    /// True when the next pick would find nothing but the task that just yielded: no local,
    /// pinned or inbox work, and the next tick is not one that looks at the injector first.
    ///
    /// Ordered so that a yield among other yielders (the common "no") fails on the first
    /// test: other yielders queue in `yielded`.
    fn nothing_else_runnable(&self) -> bool {
        self.yielded.borrow().is_empty()
            && self.pinned.borrow().is_empty()
            && self.deque.is_empty()
            && self.shared.inbox.is_empty()
            && self.shared.placed.is_empty()
            && !(self.tick.get().wrapping_add(1)).is_multiple_of(GLOBAL_CHECK_INTERVAL)
    }

    fn next_task(&self) -> Arc<Task> {
        loop {
            let tick = self.advance_tick();
            let task = self
                .find_runnable(tick)
                .or_else(|| self.poll_reactor())
                .or_else(|| self.search());
            if let Some(task) = task {
                if self.searching.get() {
                    self.stop_searching();
                }
                return task;
            }
            self.sleep();
        }
    }

    /// Steps 1–5 of the module docs.
    fn find_runnable(&self, tick: u64) -> Option<Arc<Task>> {
        if tick.is_multiple_of(GLOBAL_CHECK_INTERVAL) {
            // A busy worker's look at the reactor, so IO is not starved by computation.
            // Woken green threads land in this or other workers' queues.
            if let Some(reactor) = reactor::try_get() {
                reactor.poll_now();
            }
            if let Some(ring) = &self.ring {
                ring.turn();
            }
            if let Some(task) = self.pop_injector() {
                return Some(task);
            }
        }
        self.drain_inbox();
        if let Some(task) = self.pop_yielded(tick, false) {
            return Some(task);
        }
        let from_pinned = || self.pinned.borrow_mut().pop_front();
        // crossbeam's FIFO pop is a locked fetch_add even on an empty deque; two plain loads
        // first keep the common "nothing stealable here" case cheap.
        // Fresh tasks: those placed here first (one at a time, so that what is left stays
        // where the monitor can rescue it), then the deque.
        let from_deque = || {
            self.pop_placed().or_else(|| {
                if self.deque.is_empty() {
                    None
                } else {
                    self.deque.pop()
                }
            })
        };
        let local = if tick & 1 == 0 {
            from_pinned().or_else(from_deque)
        } else {
            from_deque().or_else(from_pinned)
        };
        local
            .or_else(|| self.pop_injector())
            .or_else(|| self.pop_yielded(tick, true))
    }

    /// Step 6, and each round of step 7: completed IO or due timers may have woken green
    /// threads; if the poll woke any, look again (they are queued here or in other workers'
    /// inboxes).
    fn poll_reactor(&self) -> Option<Arc<Task>> {
        self.poll_reactor_and(true)
    }

    /// [`poll_reactor`](Self::poll_reactor); with a ring, `epoll` says whether to poll epoll
    /// too (a search round of a worker with a ring looks at epoll only every 4th round: epoll
    /// then carries little, listeners, connects and the reactor's eventfd).
    fn poll_reactor_and(&self, epoll: bool) -> Option<Arc<Task>> {
        let mut woken = 0;
        if let Some(ring) = &self.ring {
            woken += ring.turn();
        }
        if epoll || self.ring.is_none() {
            woken += reactor::try_get().and_then(|r| r.poll_now()).unwrap_or(0);
        }
        if woken == 0 {
            return None;
        }
        self.find_runnable(self.advance_tick())
    }

    fn drain_inbox(&self) {
        if self.shared.inbox.is_empty() {
            return;
        }
        let mut pinned = self.pinned.borrow_mut();
        loop {
            match self.shared.inbox.steal() {
                Steal::Success(task) => pinned.push_back(task),
                Steal::Empty => return,
                Steal::Retry => continue,
            }
        }
    }

    /// One fresh task another worker placed here, if any.
    fn pop_placed(&self) -> Option<Arc<Task>> {
        if self.shared.placed.is_empty() {
            return None;
        }
        loop {
            match self.shared.placed.steal() {
                Steal::Success(task) => return Some(task),
                Steal::Empty => return None,
                Steal::Retry => continue,
            }
        }
    }

    fn pop_injector(&self) -> Option<Arc<Task>> {
        loop {
            match self.runtime.injector.steal_batch_and_pop(&self.deque) {
                Steal::Success(task) => return Some(task),
                Steal::Empty => return None,
                Steal::Retry => continue,
            }
        }
    }

    /// Step 7: spin on steals for a while; `None` means "go to sleep".
    ///
    /// This spins even when every other worker sleeps: work from plain threads (spawns,
    /// unparks) then finds an awake worker instead of paying a futex wake (a plain thread's
    /// spawn+join loop is 8 µs with the spin, 33 µs without). The reactor poll in each round
    /// keeps IO from waiting for the spin to end.
    fn search(&self) -> Option<Arc<Task>> {
        if !self.searching.get() {
            if !self.runtime.idle.try_start_searching() {
                return None;
            }
            self.searching.set(true);
        }
        let (search_rounds, spin_rounds) = match self.ring {
            Some(_) => (SEARCH_ROUNDS_RING, SPIN_ROUNDS_RING),
            None => (SEARCH_ROUNDS, SPIN_ROUNDS),
        };
        for round in 0..search_rounds {
            if let Some(task) = self.steal_round() {
                return Some(task);
            }
            // IO that completes while we spin must not wait for the spin to end (a request
            // on an idle server would otherwise wait out the whole search): one timeout-0
            // `epoll_wait` a round, unless another worker holds the poller role.
            if let Some(task) = self.poll_reactor_and(round % 4 == 0) {
                return Some(task);
            }
            if round < spin_rounds {
                for _ in 0..64 {
                    std::hint::spin_loop();
                }
            } else {
                thread::yield_now();
            }
        }
        None
    }

    /// One look at everything another thread may have filled: inbox, injector, other workers.
    fn steal_round(&self) -> Option<Arc<Task>> {
        self.drain_inbox();
        if let Some(task) = self.pinned.borrow_mut().pop_front() {
            return Some(task);
        }
        if let Some(task) = self.pop_placed() {
            return Some(task);
        }
        if let Some(task) = self.pop_injector() {
            return Some(task);
        }
        let workers = &self.runtime.workers;
        let start = self.next_random() as usize % workers.len();
        for offset in 0..workers.len() {
            let victim = &workers[(start + offset) % workers.len()];
            if victim.index == self.shared.index {
                continue;
            }
            loop {
                // crossbeam takes half the victim's queue (at most 32) and pops one of them.
                match victim.stealer.steal_batch_and_pop(&self.deque) {
                    Steal::Success(task) => {
                        bump(&self.shared.counters.steals);
                        return Some(task);
                    }
                    Steal::Empty => break,
                    Steal::Retry => continue,
                }
            }
        }
        None
    }

    fn stop_searching(&self) {
        self.searching.set(false);
        if self.runtime.idle.stop_searching() && !self.deque.is_empty() {
            // The last searcher found a batch: let one sleeper take part of it.
            self.runtime.notify_one();
        }
    }

    /// Step 8, the sleeper's half of the protocol in [`super::idle`].
    fn sleep(&self) {
        let idle = &self.runtime.idle;
        // The first sleeper becomes the reactor's blocking poller; the role is released
        // when `poller` drops, after the wait.
        let poller = reactor::try_get().and_then(|r| r.try_become_poller());
        let mode = match (&poller, &self.ring) {
            (Some(_), _) => WAKE_REACTOR,
            (None, Some(_)) => WAKE_RING,
            (None, None) => WAKE_THREAD,
        };
        self.shared.wake_mode.store(mode, SeqCst);
        self.shared.sleeping.set();
        idle.register_sleeper(self.shared.index, self.searching.replace(false));
        if !self.work_visible() {
            match (&poller, &self.ring) {
                // The eventfd is level-triggered, so a wake written between the check and
                // the `epoll_wait` still interrupts it.
                (Some(poller), None) => {
                    poller.block();
                }
                // The thread token keeps an unpark that lands between the check and here.
                (None, None) => thread::park(),
                // In the ring: its polls on the eventfds (the reactor's, through the epoll
                // fd, or the worker's own) see a wake written before the sleep, since a
                // poll reports a readiness that is already there.
                (Some(poller), Some(ring)) => {
                    poller.block_via(&|timeout| ring.sleep(true, timeout));
                }
                (None, Some(ring)) => ring.sleep(false, None),
            }
        }
        drop(poller);
        // Whether a notifier picked us (then we count as searching), a targeted inbox push
        // woke us, or the wake was spurious, the next loop iteration looks everywhere again.
        if idle.unregister_sleeper(self.shared.index) {
            self.searching.set(true);
        }
        self.shared.sleeping.clear();
    }

    /// Whether any queue this worker could take from holds work (the final re-check).
    fn work_visible(&self) -> bool {
        !self.shared.inbox.is_empty()
            || !self.shared.placed.is_empty()
            || !self.runtime.injector.is_empty()
            || self
                .runtime
                .workers
                .iter()
                .any(|w| w.index != self.shared.index && !w.stealer.is_empty())
    }

    /// Started tasks queued where only this worker's thread sees them (pinned and yielded).
    pub(crate) fn queued_here(&self) -> usize {
        self.pinned.borrow().len() + self.yielded.borrow().len()
    }

    /// A fresh green-thread id from this worker's reserved batch (no shared atomic per spawn).
    pub(crate) fn next_id(&self) -> CoroutineId {
        let (mut next, mut end) = self.ids.get();
        if next == end {
            (next, end) = CoroutineId::reserve(ID_BATCH);
        }
        self.ids.set((next + 1, end));
        CoroutineId::from_reserved(next)
    }

    fn next_random(&self) -> u64 {
        // xorshift64*: cheap, good enough to spread victims.
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
