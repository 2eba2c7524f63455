//! The M:N scheduler: worker threads, their queues, and how a green thread gets onto one.
//!
//! * [`worker`] — the per-worker queues and the loop that picks and resumes tasks;
//! * [`idle`] — searching/sleeping bookkeeping and the targeted wake-up policy;
//! * [`monitor`] — a background thread that rescues work stranded behind a busy worker;
//! * [`panic_hook`] — panic messages that name the green thread;
//! * [`task`] — what a green thread is to the scheduler;
//! * [`registry`] — every started green thread, for dumps; [`watchdog`] — warns about a
//!   worker stuck in one green thread;
//! * [`context`] — the runtime's one thread-local and its switch-safe accessors;
//! * [`unwinding`] — a green thread that blocks its worker while it unwinds, and the
//!   deadlock diagnosis that follows when that strands the worker's other green threads.
//!
//! The runtime starts lazily, on the first spawn, with the settings from [`crate::Config`]
//! and the environment, and lives for the rest of the process (as Go's does).
//!
//! # Starting, all or nothing
//!
//! [`start`] builds the runtime, then creates its worker and monitor threads. Each new thread
//! first waits at a gate (`Runtime::gate`, a futex word) before it touches anything. Only
//! when every thread exists does the starter open the gate and publish the runtime in
//! [`RUNTIME`]; if creating one fails (out of threads, memory or address space), it closes
//! the gate, the threads created so far exit, and the spawn that asked gets the error. No
//! half-started runtime is ever visible, so the next spawn simply tries again, and
//! `stats()` never counts workers that do not exist.
//!
//! # Where a runnable task goes
//!
//! | task                               | queued by a worker thread        | queued by another thread |
//! |------------------------------------|----------------------------------|--------------------------|
//! | new (never ran)                    | that worker's deque (stealable)  | global injector          |
//! | started, sticky, woken / yielded   | home's `pinned` if it is home,   | home's inbox + wake home |
//! |                                    | else home's inbox                |                          |
//! | started, migratable                | that worker's deque (stealable)  | global injector          |
//! | new, handed on by placement at its | the target's `placed` queue      | —                        |
//! | first run (see the worker module)  | (stealable) + wake the target    |                          |

pub(crate) mod context;
pub(crate) mod idle;
pub(crate) mod monitor;
pub(crate) mod panic_hook;
pub(crate) mod registry;
pub(crate) mod task;
pub(crate) mod unwinding;
pub(crate) mod watchdog;
pub(crate) mod worker;

use std::io;
use std::sync::atomic::{
    AtomicU32, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::{Arc, OnceLock};

use crate::runtime::os_lock::OsMutex;

use crossbeam_deque::{Injector, Worker as Deque};

use crate::runtime::config::{self, Settings};
use crate::runtime::scheduler::task::CoroutineId;
use crate::runtime::stack::{overflow, pool, SizeClass};
use idle::Idle;
use task::{Task, TaskCoroutine, TaskYielder};
use worker::Worker;

pub(crate) struct Runtime {
    pub(crate) workers: Box<[Worker]>,
    pub(crate) injector: Injector<Arc<Task>>,
    pub(crate) idle: Idle,
    pub(crate) default_class: SizeClass,
    /// The blocking pool's thread maximum (the pool starts on the first `offload`).
    pub(crate) max_blocking_threads: usize,
    /// The watchdog's threshold (`None`: off).
    pub(crate) blocked_warning: Option<std::time::Duration>,
    /// Green threads spawned from plain threads (worker spawns count per worker).
    pub(crate) spawned_outside: AtomicU64,
    /// The start gate: [`GATE_CLOSED`] until every thread exists, then [`GATE_OPEN`], or
    /// [`GATE_FAILED`] if the start was abandoned (see the module docs).
    gate: AtomicU32,
}

const GATE_CLOSED: u32 = 0;
const GATE_OPEN: u32 = 1;
const GATE_FAILED: u32 = 2;

/// The running runtime, once a start has fully succeeded.
static RUNTIME: OnceLock<&'static Runtime> = OnceLock::new();
/// Serialises starts, so that two first spawns do not both build a runtime.
static STARTING: OsMutex<()> = OsMutex::new(());

/// The runtime, started on first use. Fails only if its threads cannot be created; the next
/// call tries again.
#[inline]
pub(crate) fn runtime() -> io::Result<&'static Runtime> {
    match RUNTIME.get() {
        Some(runtime) => Ok(runtime),
        None => start(),
    }
}

/// The runtime if it has started; never starts it.
pub(crate) fn try_runtime() -> Option<&'static Runtime> {
    RUNTIME.get().copied()
}

/// The runtime, for code that runs because a green thread exists (so it has started).
fn started() -> &'static Runtime {
    try_runtime().expect("weft: a green thread exists, so the runtime has started")
}

#[cold]
fn start() -> io::Result<&'static Runtime> {
    let _serial = STARTING.lock();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let settings: Settings = config::settings_for_start();
    pool::read_guard_setting()?;
    let local_queues: Vec<Deque<Arc<Task>>> =
        (0..settings.workers).map(|_| Deque::new_fifo()).collect();
    let workers = local_queues
        .iter()
        .enumerate()
        .map(|(i, q)| Worker::new(i, q.stealer()));
    // Leaked: the threads hold `&'static` references. A failed start leaks one small
    // allocation, once per failure.
    let runtime: &'static Runtime = Box::leak(Box::new(Runtime {
        workers: workers.collect(),
        injector: Injector::new(),
        idle: Idle::new(settings.workers),
        default_class: settings.stack_class,
        max_blocking_threads: settings.max_blocking_threads,
        blocked_warning: settings.blocked_warning,
        spawned_outside: AtomicU64::new(0),
        gate: AtomicU32::new(GATE_CLOSED),
    }));
    overflow::install_handler();
    let mut threads = Vec::with_capacity(settings.workers + 1);
    let mut failure = None;
    for (index, deque) in local_queues.into_iter().enumerate() {
        let spawned = std::thread::Builder::new()
            .name(format!("weft-worker-{index}"))
            .spawn(move || {
                if runtime.pass_gate() {
                    worker::run(runtime, index, deque)
                }
            });
        match spawned {
            Ok(thread) => threads.push(thread),
            Err(e) => {
                failure = Some((
                    e.kind(),
                    format!(
                        "cannot start worker thread {index} of {}: {e} ({})",
                        settings.workers,
                        crate::sys::thread_limits()
                    ),
                ));
                break;
            }
        }
    }
    if failure.is_none() {
        let spawned = std::thread::Builder::new()
            .name("weft-monitor".into())
            .spawn(move || {
                if runtime.pass_gate() {
                    monitor::run(runtime)
                }
            });
        match spawned {
            Ok(thread) => threads.push(thread),
            Err(e) => {
                let why = format!(
                    "cannot start the monitor thread: {e} ({})",
                    crate::sys::thread_limits()
                );
                failure = Some((e.kind(), why));
            }
        }
    }
    if let Some((kind, why)) = failure {
        // Release: nothing to publish, but pairs with `pass_gate`'s Acquire like the open.
        runtime.gate.store(GATE_FAILED, Release);
        crate::sys::futex_wake_all(&runtime.gate);
        for thread in threads {
            let _ = thread.join();
        }
        config::start_failed();
        return Err(io::Error::new(
            kind,
            format!(
                "weft: the runtime could not start: {why}; nothing was started, and the next \
                 spawn tries again"
            ),
        ));
    }
    panic_hook::install();
    // Release: the threads read the runtime's fields after passing the gate (Acquire).
    runtime.gate.store(GATE_OPEN, Release);
    crate::sys::futex_wake_all(&runtime.gate);
    let _ = RUNTIME.set(runtime);
    Ok(runtime)
}

impl Runtime {
    /// Waits at the start gate; `true` if the start succeeded and the thread should run.
    fn pass_gate(&self) -> bool {
        loop {
            // Acquire: pairs with the starter's Release store of the final gate state.
            match self.gate.load(Acquire) {
                GATE_CLOSED => crate::sys::futex_wait(&self.gate, GATE_CLOSED),
                state => return state == GATE_OPEN,
            }
        }
    }

    /// Wakes one sleeping worker if the idle policy says someone should look for work.
    pub(crate) fn notify_one(&self) {
        if let Some(index) = self.idle.notify_one() {
            self.workers[index].wake();
        }
    }

    fn push_injector(&self, task: Arc<Task>) {
        self.injector.push(task);
        self.notify_one();
    }
}

/// What a spawn asks for, after the public builder has validated its inputs.
pub(crate) struct SpawnOptions {
    pub(crate) name: Option<Box<str>>,
    pub(crate) stack_size: Option<usize>,
    pub(crate) migratable: bool,
}

/// Creates a green thread running `body` and queues it. `#[track_caller]`: the caller's
/// caller chain up to the user's spawn call is recorded as the spawn site.
///
/// # Safety
/// Everything `body` borrows must stay valid until the green thread has finished running
/// (`'static` data trivially does; `scope` waits for its green threads).
#[track_caller]
pub(crate) unsafe fn spawn<F>(body: F, options: SpawnOptions) -> io::Result<Arc<Task>>
where
    F: FnOnce() + Send,
{
    let runtime = runtime()?;
    let class = match options.stack_size {
        Some(size) => SizeClass::for_size(size)?,
        None => runtime.default_class,
    };
    let local = context::local();
    let stack = match local {
        Some(local) => pool::allocate(class, Some(&mut local.stacks.borrow_mut()))?,
        None => pool::allocate(class, None)?,
    };
    let guard_range = stack.guard_range();
    let stack_size = stack.usable_size();
    let entry = move |yielder: &TaskYielder, ()| {
        // The worker set `current` to this task before resuming it for the first time.
        let task = context::current_task();
        // SAFETY: the running task is alive (its worker holds the scheduling reference), and
        // `yielder` lives on this stack for as long as the task can suspend.
        unsafe { (*task).yielder.set(yielder) };
        body();
    };
    // SAFETY: the caller guarantees `body`'s borrows outlive the green thread, which is the
    // contract of `with_stack_unchecked`; the coroutine is never dropped before it finishes
    // (see `task`'s ownership rules), so no borrow is used after it ends.
    let coroutine = unsafe { TaskCoroutine::with_stack_unchecked(stack, entry) };
    let id = match local {
        Some(local) => local.next_id(),
        None => CoroutineId::next(),
    };
    let task = Arc::new(Task::new(
        id,
        options.name,
        options.migratable,
        coroutine,
        guard_range,
        stack_size,
        std::panic::Location::caller(),
    ));
    match local {
        Some(local) => {
            worker::bump(&local.shared.counters.spawned);
            local.push_stealable(Arc::clone(&task));
        }
        None => {
            // Relaxed: a statistics counter; nothing is published through it.
            runtime.spawned_outside.fetch_add(1, Relaxed);
            runtime.push_injector(Arc::clone(&task));
        }
    }
    Ok(task)
}

/// Counts the running green thread as finished, on its worker's counter, and unlists it
/// from the registry. Called by the task itself just before its result becomes visible, so
/// that `stats()` and dumps read after a `join` no longer count it.
pub(crate) fn note_completed() {
    if let Some(local) = context::local() {
        worker::bump(&local.shared.counters.completed);
        // SAFETY: the current task is alive while it runs, and we are it.
        if let Some(task) = unsafe { context::current_task().as_ref() } {
            let shard = registry::shard_of(task);
            local.runtime.workers[shard].registry.leave(task);
            task.finished.store(true, Relaxed);
        }
    }
}

/// Counts a yield forced by an empty cooperative budget, on the running worker.
pub(crate) fn note_budget_yield() {
    if let Some(local) = context::local() {
        worker::bump(&local.shared.counters.budget_yields);
    }
}

/// Queues a task that an unpark took out of `PARKED` (see the table in the module docs).
pub(crate) fn schedule_woken(task: Arc<Task>) {
    let local = context::local();
    match (task.pinned_home(), local) {
        (Some(home), Some(local)) if home == local.shared.index => local.push_pinned(task),
        (Some(home), _) => started().workers[home].push_inbox(task),
        (None, Some(local)) => local.push_stealable(task),
        (None, None) => started().push_injector(task),
    }
}
