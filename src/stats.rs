//! [`stats`]: cheap counters describing what the runtime has done.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::runtime::scheduler;

use crate::runtime::stack::pool;

/// One worker's figures in [`Stats::per_worker`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Started green threads whose home this worker is (and migratable ones that first ran
    /// here), not finished.
    pub homed: usize,
    /// Runnable green threads queued for it where other threads can see them: its inbox
    /// (woken by other threads), its stealable queue and the fresh green threads placement
    /// handed to it (both not started yet). Its private queues of green threads it woke or
    /// that yielded are not counted.
    pub queued: usize,
    /// Whether it is asleep (no work; one sleeper waits in `epoll_wait`).
    pub asleep: bool,
}

/// A snapshot of the runtime's counters, from [`stats`].
///
/// Counters are read one by one without stopping the workers, so while green threads run the
/// figures are approximate relative to each other (each one is exact as of some instant).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Green threads spawned since the runtime started.
    pub spawned: u64,
    /// Green threads spawned and not yet finished (running, runnable or parked).
    pub live: u64,
    /// Times a worker resumed a green thread (each resume is one switch in and one out).
    pub switches: u64,
    /// Successful steals of work from another worker's queue.
    pub steals: u64,
    /// Fresh green threads a worker handed to a worker that homed fewer at their first run,
    /// to spread long-lived green threads (see "Placement" in the README).
    pub placed_elsewhere: u64,
    /// Worker threads; 0 before the runtime has started.
    pub workers: usize,
    /// Green threads cancelled (first cancel of each).
    pub cancelled: u64,
    /// Warnings the watchdog logged about a worker stuck in one green thread.
    pub blocked_warnings: u64,
    /// Per-worker figures, by worker index.
    pub per_worker: Vec<WorkerStats>,
    /// Calls sent to the blocking pool (by [`offload`](crate::offload), `weft::fs`, host-name
    /// lookups and process waits without a pidfd).
    pub offloaded: u64,
    /// Threads of the blocking pool alive now.
    pub blocking_threads: usize,
    /// File reads served from the page cache on a worker, without the blocking pool.
    pub fs_fast_path: u64,
    /// Yields forced by the cooperative budget: a green thread completed many weft
    /// operations in a row without waiting, and let the others of its worker run.
    pub budget_yields: u64,
    /// Waits of green threads on their worker's io_uring ring: a receive that found no data,
    /// or a send, submitted and parked on (0 with `WEFT_IO=epoll`).
    pub ring_waits: u64,
    /// How stack guard pages are installed: `"madvise"` (`MADV_GUARD_INSTALL`, no VMA per
    /// stack), `"mprotect"` (fallback, two VMAs per stack), or `"undecided"` before the first
    /// stack exists.
    pub guard_pages: &'static str,
    /// How sockets wait: `"io_uring"` (the default: the workers' green threads receive and
    /// send through a ring per worker, see the README), `"epoll"` (`WEFT_IO=epoll`, or
    /// before any worker has started), or `"epoll (io_uring could not be set up)"`.
    pub io_backend: &'static str,
}

/// Cancels requested so far (a statistic; cancels are rare, so one shared counter).
static CANCELLED: AtomicU64 = AtomicU64::new(0);

pub(crate) fn note_cancelled() {
    CANCELLED.fetch_add(1, Relaxed);
}

/// Reads the runtime's counters. Does not start the runtime.
///
/// ```
/// weft::spawn(|| ()).join().unwrap();
/// let stats = weft::stats();
/// assert!(stats.spawned >= 1);
/// assert!(stats.workers >= 1);
/// ```
pub fn stats() -> Stats {
    let (offloaded, blocking_threads) = crate::blocking::pool::counters();
    let cancelled = CANCELLED.load(Relaxed);
    let blocked_warnings = crate::runtime::scheduler::watchdog::warnings();
    let Some(runtime) = scheduler::try_runtime() else {
        return Stats {
            guard_pages: pool::guard_mode_name(),
            io_backend: crate::runtime::reactor::uring::backend_name(),
            offloaded,
            blocking_threads,
            cancelled,
            blocked_warnings,
            ..Stats::default()
        };
    };
    let mut stats = Stats {
        workers: runtime.workers.len(),
        guard_pages: pool::guard_mode_name(),
        io_backend: crate::runtime::reactor::uring::backend_name(),
        offloaded,
        blocking_threads,
        cancelled,
        blocked_warnings,
        ..Stats::default()
    };
    // Completions first: a green thread counted complete was spawned earlier, so reading the
    // spawn counters afterwards keeps `live` from going negative in practice (saturating
    // anyway, since the counters are independent Relaxed loads).
    let mut completed = 0u64;
    for worker in runtime.workers.iter() {
        completed += worker.counters.completed.load(Relaxed);
    }
    stats.spawned = runtime.spawned_outside.load(Relaxed);
    for worker in runtime.workers.iter() {
        stats.spawned += worker.counters.spawned.load(Relaxed);
        stats.switches += worker.counters.switches.load(Relaxed);
        stats.steals += worker.counters.steals.load(Relaxed);
        stats.placed_elsewhere += worker.counters.placed_elsewhere.load(Relaxed);
        stats.fs_fast_path += worker.counters.fs_fast_path.load(Relaxed);
        stats.budget_yields += worker.counters.budget_yields.load(Relaxed);
        stats.ring_waits += worker.counters.ring_waits.load(Relaxed);
        stats.per_worker.push(WorkerStats {
            homed: worker.registry.len(),
            queued: worker.inbox.len() + worker.stealer.len() + worker.placed.len(),
            asleep: worker.sleeping.get(),
        });
    }
    stats.live = stats.spawned.saturating_sub(completed);
    stats
}
