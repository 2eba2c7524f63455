//! Blocking while a green thread unwinds: why it blocks its worker, and how a deadlock that
//! follows is diagnosed instead of hanging silently.
//!
//! # The rule
//!
//! std counts panics per OS thread (`std::thread::panicking` reads a thread-local of the OS
//! thread). A green thread that unwinds from a panic and then switches away would leave that
//! count raised for every other green thread of its worker: their lock guards would poison
//! locks they never panicked with, their own `panicking()` checks would lie, and a panic of
//! theirs would count as a double panic. std offers no stable way to set the count aside and
//! restore it, and moving the other green threads to another OS thread would break the
//! soundness rule (started green threads never change OS thread). So a destructor that
//! blocks while its green thread unwinds blocks the **worker's OS thread** instead: park
//! waits on a futex, timed waits on a futex with a timeout, IO in `poll(2)`. Every wake path
//! wakes it promptly (the futex is the task's own park word).
//!
//! # The hazard, and what weft does about it
//!
//! While the worker is blocked, the green threads whose home it is cannot run. If one of
//! them is the one that would end the wait (it holds the lock the destructor wants, say),
//! nothing ever will: a deadlock. The green threads it has not started yet are stolen by
//! other workers as usual, so only started ones are stuck.
//!
//! weft cannot resolve that case (see above), so it makes sure it is never silent. The
//! blocked green thread registers the block on its worker ([`BlockRecord`]) with its id,
//! name, whether the wait has a deadline, how many of the worker's own tasks were queued
//! behind it, and a backtrace of the blocking call. The monitor thread looks at every
//! worker each interval ([`check`]). An untimed block during which green threads homed on
//! that worker are runnable, and cannot run, for [`DEADLOCK_GRACE`] is declared a deadlock:
//! the monitor writes a diagnosis to stderr naming the green thread, the worker, how many
//! green threads wait behind it and the backtrace of the wait, then aborts the process, as
//! Go's "all goroutines are asleep - deadlock!" ends a Go program. A timed block ends by
//! itself and is never reported; a block with nothing stuck behind it costs throughput only.
//!
//! The grace period makes one false alarm possible: a destructor blocked for longer than
//! that on a wait that a *different* worker or a plain thread will end, while green threads
//! of its own worker are runnable. Those green threads are then stalled for that long
//! anyway, which a server cannot afford either. Keep blocking calls out of destructors that
//! can run during a panic; where one is needed, give it a timeout.

use std::backtrace::Backtrace;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::context;
use super::task::Task;
use super::Runtime;
use crate::coroutine::CoroutineId;

/// How long green threads homed on a worker may be stuck behind an untimed block of an
/// unwinding green thread before the monitor declares a deadlock.
pub(crate) const DEADLOCK_GRACE: Duration = Duration::from_secs(1);

/// What a green thread blocking its worker while unwinding tells the monitor.
pub(crate) struct BlockRecord {
    /// Distinguishes successive blocks on one worker.
    episode: u64,
    id: CoroutineId,
    name: Option<Box<str>>,
    what: &'static str,
    since: Instant,
    timed: bool,
    /// Tasks of this worker queued locally (pinned and yielded) when the block began; they
    /// cannot run until it ends. Only the worker's own thread can see those queues.
    queued_here: usize,
    backtrace: Backtrace,
}

/// The per-worker slot for a [`BlockRecord`].
#[derive(Default)]
pub(crate) struct BlockSlot(Mutex<Option<BlockRecord>>);

impl BlockSlot {
    fn lock(&self) -> MutexGuard<'_, Option<BlockRecord>> {
        // Only whole records are stored, so a poisoned slot is still consistent.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

static EPISODES: AtomicU64 = AtomicU64::new(0);

/// Registers the current green thread's block with its worker for as long as it lives.
/// Does nothing on a plain thread, or when the green thread is not unwinding.
pub(crate) struct BlockGuard {
    slot: Option<&'static BlockSlot>,
}

impl BlockGuard {
    /// `task` is the running green thread; `what` says what it waits for.
    #[cold]
    pub(crate) fn begin(task: &Task, what: &'static str, timed: bool) -> BlockGuard {
        let Some(local) = context::local() else {
            return BlockGuard { slot: None };
        };
        if !std::thread::panicking() {
            return BlockGuard { slot: None };
        }
        let slot = &local.shared.unwind_block;
        *slot.lock() = Some(BlockRecord {
            // Relaxed: only distinctness matters.
            episode: EPISODES.fetch_add(1, Relaxed),
            id: task.id,
            name: task.name.clone(),
            what,
            since: Instant::now(),
            timed,
            queued_here: local.queued_here(),
            backtrace: Backtrace::force_capture(),
        });
        BlockGuard { slot: Some(slot) }
    }
}

impl Drop for BlockGuard {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            *slot.lock() = None;
        }
    }
}

/// What the monitor remembers per worker between looks: the block episode it watches and
/// since when green threads have been stuck behind it.
#[derive(Clone, Copy, Default)]
pub(crate) struct Watch {
    episode: Option<u64>,
    stuck_since: Option<Instant>,
}

/// The monitor's look at every worker (see the module docs). Aborts the process with a
/// diagnosis when a deadlock is certain enough; returns otherwise.
pub(crate) fn check(runtime: &Runtime, watches: &mut [Watch], now: Instant) {
    for (worker, watch) in runtime.workers.iter().zip(watches.iter_mut()) {
        let slot = worker.unwind_block.lock();
        let Some(block) = slot.as_ref().filter(|b| !b.timed) else {
            *watch = Watch::default();
            continue;
        };
        if watch.episode != Some(block.episode) {
            *watch = Watch {
                episode: Some(block.episode),
                stuck_since: None,
            };
        }
        let stuck = block.queued_here + worker.inbox.len();
        if stuck == 0 {
            watch.stuck_since = None;
            continue;
        }
        let since = *watch.stuck_since.get_or_insert(now);
        if now.duration_since(since) >= DEADLOCK_GRACE {
            let report = diagnosis(worker.index, block, stuck, now);
            drop(slot);
            eprint!("{report}");
            std::process::abort();
        }
    }
}

fn diagnosis(worker: usize, block: &BlockRecord, stuck: usize, now: Instant) -> String {
    let name = match &block.name {
        Some(name) => format!(" '{name}'"),
        None => String::new(),
    };
    let blocked_for = now.duration_since(block.since).as_secs_f64();
    format!(
        "weft: deadlock: green thread {id}{name} is unwinding from a panic, and a destructor \
         has blocked its worker (weft-worker-{worker}) for {blocked_for:.1} s waiting for \
         {what}, with no deadline. {stuck} green thread(s) homed on weft-worker-{worker} are \
         runnable but cannot run until that wait ends, and the wait is most likely theirs to \
         end. A green thread cannot switch while it unwinds (std counts panics per OS \
         thread), so weft cannot resolve this; aborting.\n\
         Fix: do not block in a destructor that can run during a panic, or give the wait a \
         timeout (e.g. Mutex::try_lock, recv_timeout).\n\
         The blocked call:\n{backtrace}\n",
        id = block.id,
        what = block.what,
        backtrace = block.backtrace,
    )
}
