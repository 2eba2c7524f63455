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
//! worker each interval ([`check`]). When an untimed block of one green thread keeps green
//! threads homed on that worker runnable but unable to run:
//!
//! * after [`DEADLOCK_WARN`] (1 s) the monitor writes a diagnosis to stderr, once per
//!   incident: the green thread, the worker, how many green threads wait behind it, and the
//!   backtrace of the wait;
//! * after `WEFT_DEADLOCK_ABORT_MS` (default 10,000 ms; 0 never aborts) it declares the
//!   deadlock, writes the diagnosis again and aborts the process, as Go's "all goroutines
//!   are asleep - deadlock!" ends a Go program.
//!
//! A timed block ends by itself and is never reported; a block with nothing stuck behind it
//! costs throughput only. The two steps keep a false alarm cheap: a destructor blocked for
//! more than a second on a wait that a *different* worker or a plain thread will end is
//! reported but not killed, unless it lasts the whole abort period, by which time the green
//! threads of its worker have been frozen that long. Keep blocking calls out of destructors
//! that can run during a panic; where one is needed, give it a timeout.

use std::backtrace::Backtrace;
use crate::runtime::os_lock::{OsMutex, OsMutexGuard};
use std::time::{Duration, Instant};

use super::context;
use super::task::Task;
use super::Runtime;
use crate::runtime::scheduler::task::CoroutineId;

/// How long green threads homed on a worker may be stuck behind an untimed block of an
/// unwinding green thread before the monitor reports a likely deadlock.
pub(crate) const DEADLOCK_WARN: Duration = Duration::from_secs(1);

/// What a green thread blocking its worker while unwinding tells the monitor.
pub(crate) struct BlockRecord {
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
pub(crate) struct BlockSlot(OsMutex<Option<BlockRecord>>);

impl BlockSlot {
    fn lock(&self) -> OsMutexGuard<'_, Option<BlockRecord>> {
        // Only whole records are stored, so a poisoned slot is still consistent.
        self.0.lock()
    }

    /// Whether a green thread of this worker blocks it now, while unwinding.
    pub(crate) fn is_blocked(&self) -> bool {
        self.lock().is_some()
    }
}

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

/// What the monitor remembers per worker between looks: the unwinding green thread it
/// watches (by id, so that the same green thread blocking again after a spurious wake-up
/// is the same incident), since when green threads have been stuck behind it, and whether
/// that incident was reported.
#[derive(Clone, Copy, Default)]
pub(crate) struct Watch {
    task: Option<CoroutineId>,
    stuck_since: Option<Instant>,
    warned: bool,
}

/// The monitor's look at every worker (see the module docs): reports a likely deadlock,
/// and aborts the process once `abort_after` has passed (never, if `None`).
pub(crate) fn check(
    runtime: &Runtime,
    watches: &mut [Watch],
    now: Instant,
    abort_after: Option<Duration>,
) {
    for (worker, watch) in runtime.workers.iter().zip(watches.iter_mut()) {
        let slot = worker.unwind_block.lock();
        let Some(block) = slot.as_ref().filter(|b| !b.timed) else {
            *watch = Watch::default();
            continue;
        };
        if watch.task != Some(block.id) {
            *watch = Watch {
                task: Some(block.id),
                ..Watch::default()
            };
        }
        // Everything only this worker will run while it is blocked: its started green
        // threads (queued locally when the block began, or woken into its inbox since). With
        // one worker, fresh ones too (a destructor that spawns a helper and joins it): its
        // deque, its placed queue and the global injector have nobody else to run them.
        // With more workers, fresh work is stolen (and a blocked worker's placed queue is
        // freed by the monitor), so it is not stuck, however busy the others are.
        let alone = runtime.workers.len() == 1;
        let fresh = if alone {
            worker.stealer.len() + worker.placed.len() + runtime.injector.len()
        } else {
            0
        };
        let stuck = block.queued_here + worker.inbox.len() + fresh;
        if stuck == 0 {
            // Whatever was stuck got to run: a new stall is a new incident.
            watch.stuck_since = None;
            watch.warned = false;
            continue;
        }
        let stalled = now.duration_since(*watch.stuck_since.get_or_insert(now));
        if abort_after.is_some_and(|limit| stalled >= limit) {
            let report = diagnosis("deadlock", worker.index, block, stuck, stalled);
            drop(slot);
            eprintln!("{report}weft: aborting.");
            std::process::abort();
        }
        if stalled >= DEADLOCK_WARN && !watch.warned {
            watch.warned = true;
            let abort = match abort_after {
                Some(limit) => format!(
                    "weft will abort the process if this lasts {:.1} s \
                     (WEFT_DEADLOCK_ABORT_MS).\n",
                    limit.as_secs_f64()
                ),
                None => "WEFT_DEADLOCK_ABORT_MS=0: weft will not abort.\n".to_owned(),
            };
            eprint!(
                "{}{abort}",
                diagnosis("likely deadlock", worker.index, block, stuck, stalled)
            );
        }
    }
}

fn diagnosis(
    headline: &str,
    worker: usize,
    block: &BlockRecord,
    stuck: usize,
    stalled: Duration,
) -> String {
    let name = match &block.name {
        Some(name) => format!(" '{name}'"),
        None => String::new(),
    };
    let blocked_for = block.since.elapsed().as_secs_f64();
    let stalled = stalled.as_secs_f64();
    format!(
        "weft: {headline}: green thread {id}{name} is unwinding from a panic, and a destructor \
         has blocked its worker (weft-worker-{worker}) for {blocked_for:.1} s waiting for \
         {what}, with no deadline. {stuck} green thread(s) homed on weft-worker-{worker} have \
         been runnable for {stalled:.1} s but cannot run until that wait ends, and the wait is \
         most likely theirs to end. A green thread cannot switch while it unwinds (std counts \
         panics per OS thread), so weft cannot resolve this.\n\
         Fix: do not block in a destructor that can run during a panic, or give the wait a \
         timeout (e.g. Mutex::try_lock, recv_timeout).\n\
         The blocked call:\n{backtrace}\n",
        id = block.id,
        what = block.what,
        backtrace = block.backtrace,
    )
}
