//! Every started green thread, for [`crate::threads`] and the watchdog: one list per worker,
//! and a coarse clock for "since when".
//!
//! A green thread enters the list of the worker that first runs it, and leaves it when it
//! finishes (before its task can be freed). Each list is behind a spin lock: the owning
//! worker takes it twice per green thread's life (enter, leave) and a migratable green
//! thread's last worker once; a dump takes it to read. Holding the lock keeps every listed
//! task alive, so a dump may read them. A task remembers its place (`registry_slot`, changed
//! only under the lock) so leaving is O(1) (`swap_remove`).
//!
//! Green threads that have not run yet are not listed (they are counted instead: spawned
//! minus started).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use super::task::Task;
use crate::runtime::spin::SpinLock;

/// One worker's started green threads. Aligned to its own cache lines (128 bytes: adjacent-
/// line prefetch pairs lines on x86): the owning worker writes it twice per green thread's
/// life, and other workers must not share those lines with fields they read often.
#[repr(align(128))]
pub(crate) struct Shard {
    tasks: SpinLock<Vec<TaskPtr>>,
    /// `tasks.len()`, stored under the lock after each change, so that placement (a load per
    /// fresh task) and stats can read it without the lock. Relaxed: an approximate figure
    /// is all they need, and the lock orders the stores.
    count: AtomicUsize,
}

/// A listed task. Dereferenced only under the shard's lock, which the task's removal needs,
/// so the task is alive.
#[derive(Clone, Copy)]
struct TaskPtr(*const Task);

// SAFETY: see `TaskPtr`: the pointer crosses threads only inside the lock's critical sections,
// where the task it points to is alive and `Sync`.
unsafe impl Send for TaskPtr {}

impl Shard {
    pub(crate) fn new() -> Shard {
        Shard {
            tasks: SpinLock::new(Vec::new()),
            count: AtomicUsize::new(0),
        }
    }

    /// Lists `task`, which has just started on this shard's worker.
    pub(crate) fn enter(&self, task: &Task, shard: usize) {
        let mut tasks = self.tasks.lock();
        // Relaxed: written and read only under this lock.
        task.registry_slot
            .store(((shard as u64) << 32) | tasks.len() as u64, Relaxed);
        tasks.push(TaskPtr(task));
        self.count.store(tasks.len(), Relaxed);
    }

    /// Unlists `task` (it has finished).
    pub(crate) fn leave(&self, task: &Task) {
        let mut tasks = self.tasks.lock();
        let index = (task.registry_slot.load(Relaxed) & u64::from(u32::MAX)) as usize;
        debug_assert!(std::ptr::eq(tasks[index].0, task));
        tasks.swap_remove(index);
        self.count.store(tasks.len(), Relaxed);
        if let Some(moved) = tasks.get(index) {
            // SAFETY: listed, and we hold the lock (see `TaskPtr`).
            let moved = unsafe { &*moved.0 };
            let slot = moved.registry_slot.load(Relaxed);
            moved
                .registry_slot
                .store((slot & !u64::from(u32::MAX)) | index as u64, Relaxed);
        }
    }

    /// How many green threads are listed (a Relaxed load: a moment ago, not under the lock).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.count.load(Relaxed)
    }

    /// Calls `f` for each listed task, under the lock (keep `f` short: the worker may wait).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Task)) {
        let tasks = self.tasks.lock();
        for task in tasks.iter() {
            // SAFETY: listed, and we hold the lock (see `TaskPtr`).
            f(unsafe { &*task.0 });
        }
    }
}

/// The shard a started task is listed in.
pub(crate) fn shard_of(task: &Task) -> usize {
    (task.registry_slot.load(Relaxed) >> 32) as usize
}

/// Milliseconds since the runtime's epoch, advanced by the monitor every interval (1–20 ms):
/// what a parking green thread stamps its wait with, for the price of a load.
static COARSE_MS: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Advances the coarse clock (the monitor, each interval).
pub(crate) fn tick_clock() {
    COARSE_MS.store(epoch().elapsed().as_millis() as u64, Relaxed);
}

/// The coarse clock's reading.
#[inline]
pub(crate) fn coarse_ms() -> u64 {
    COARSE_MS.load(Relaxed)
}

/// Milliseconds since the epoch, read now (for dumps).
pub(crate) fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}
