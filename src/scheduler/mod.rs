//! The M:N scheduler: worker threads, their queues, and how a green thread gets onto one.
//!
//! * [`worker`] — the per-worker queues and the loop that picks and resumes tasks;
//! * [`idle`] — searching/sleeping bookkeeping and the targeted wake-up policy;
//! * [`monitor`] — a background thread that rescues work stranded behind a busy worker;
//! * [`task`] — what a green thread is to the scheduler;
//! * [`context`] — the runtime's one thread-local and its switch-safe accessors.
//!
//! The runtime starts lazily, on the first spawn, with the settings from [`crate::Config`]
//! and the environment, and lives for the rest of the process (as Go's does).
//!
//! # Where a runnable task goes
//!
//! | task                               | queued by a worker thread        | queued by another thread |
//! |------------------------------------|----------------------------------|--------------------------|
//! | new (never ran)                    | that worker's deque (stealable)  | global injector          |
//! | started, sticky, woken / yielded   | home's `pinned` if it is home,   | home's inbox + wake home |
//! |                                    | else home's inbox                |                          |
//! | started, migratable                | that worker's deque (stealable)  | global injector          |

pub(crate) mod context;
pub(crate) mod idle;
pub(crate) mod monitor;
pub(crate) mod task;
pub(crate) mod worker;

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use crossbeam_deque::{Injector, Worker as Deque};

use crate::config::{self, Settings};
use crate::coroutine::CoroutineId;
use crate::stack::{overflow, pool, SizeClass};
use idle::Idle;
use task::{Task, TaskCoroutine, TaskYielder};
use worker::Worker;

pub(crate) struct Runtime {
    pub(crate) workers: Box<[Worker]>,
    pub(crate) injector: Injector<Arc<Task>>,
    pub(crate) idle: Idle,
    pub(crate) default_class: SizeClass,
    /// Green threads spawned from plain threads (worker spawns count per worker).
    pub(crate) spawned_outside: AtomicU64,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The runtime, started on first use.
#[inline]
pub(crate) fn runtime() -> &'static Runtime {
    match RUNTIME.get() {
        Some(runtime) => runtime,
        None => start(),
    }
}

/// The runtime if it has started; never starts it.
pub(crate) fn try_runtime() -> Option<&'static Runtime> {
    RUNTIME.get()
}

#[cold]
fn start() -> &'static Runtime {
    let settings: Settings = config::settings_for_start();
    let mut deques = None;
    let runtime = RUNTIME.get_or_init(|| {
        let local_queues: Vec<Deque<Arc<Task>>> =
            (0..settings.workers).map(|_| Deque::new_fifo()).collect();
        let workers = local_queues
            .iter()
            .enumerate()
            .map(|(i, q)| Worker::new(i, q.stealer()));
        let runtime = Runtime {
            workers: workers.collect(),
            injector: Injector::new(),
            idle: Idle::new(settings.workers),
            default_class: settings.stack_class,
            spawned_outside: AtomicU64::new(0),
        };
        deques = Some(local_queues);
        runtime
    });
    // Only the thread whose closure built the runtime starts its threads.
    if let Some(deques) = deques {
        overflow::install_handler();
        for (index, deque) in deques.into_iter().enumerate() {
            std::thread::Builder::new()
                .name(format!("weft-worker-{index}"))
                .spawn(move || worker::run(runtime, index, deque))
                .unwrap_or_else(|e| panic!("weft: cannot start worker thread {index}: {e}"));
        }
        std::thread::Builder::new()
            .name("weft-monitor".into())
            .spawn(move || monitor::run(runtime))
            .unwrap_or_else(|e| panic!("weft: cannot start the monitor thread: {e}"));
    }
    runtime
}

impl Runtime {
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

/// Creates a green thread running `body` and queues it.
///
/// # Safety
/// Everything `body` borrows must stay valid until the green thread has finished running
/// (`'static` data trivially does; `scope` waits for its green threads).
pub(crate) unsafe fn spawn<F>(body: F, options: SpawnOptions) -> io::Result<Arc<Task>>
where
    F: FnOnce() + Send,
{
    let runtime = runtime();
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

/// Queues a task that an unpark took out of `PARKED` (see the table in the module docs).
pub(crate) fn schedule_woken(task: Arc<Task>) {
    let local = context::local();
    match (task.pinned_home(), local) {
        (Some(home), Some(local)) if home == local.shared.index => local.push_pinned(task),
        (Some(home), _) => runtime().workers[home].push_inbox(task),
        (None, Some(local)) => local.push_stealable(task),
        (None, None) => runtime().push_injector(task),
    }
}
