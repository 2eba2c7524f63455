//! The blocked-worker watchdog: a worker that has run one green thread without a switch for
//! longer than `Config::blocked_warning` (default 100 ms, `WEFT_BLOCKED_WARN_MS`, 0 turns it
//! off) gets one warning through the `log` facade per incident, naming the green thread, its
//! spawn site, how long it has run and how many green threads wait behind it, with a hint.
//!
//! The usual cause is a blocking call that bypasses weft (`std::fs`, `std::thread::sleep`,
//! a crate's own socket) or a long computation; both stall every green thread homed on
//! that worker. Meanwhile the monitor already asks idle workers to steal the stuck worker's
//! not-yet-started green threads (see [`super::monitor`]).

use std::time::{Duration, Instant};

use super::task::Task;
use super::Runtime;

/// What the monitor remembers per worker: the green thread it saw running, the worker's
/// switch count then, since when, and whether that incident was reported.
#[derive(Clone, Copy)]
pub(crate) struct Watch {
    task: *const Task,
    switches: u64,
    since: Instant,
    warned: bool,
}

// SAFETY: `task` is only compared, never dereferenced (names are read through the registry,
// under its lock).
unsafe impl Send for Watch {}

impl Watch {
    pub(crate) fn new(now: Instant) -> Watch {
        Watch {
            task: std::ptr::null(),
            switches: 0,
            since: now,
            warned: false,
        }
    }
}

/// Watchdog warnings so far (read by `weft::stats`). Relaxed: a statistic.
static WARNINGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Watchdog warnings so far.
pub(crate) fn warnings() -> u64 {
    WARNINGS.load(std::sync::atomic::Ordering::Relaxed)
}

/// One look at every worker; warns about those stuck in one green thread for `threshold`.
pub(crate) fn check(runtime: &Runtime, watches: &mut [Watch], now: Instant, threshold: Duration) {
    use std::sync::atomic::Ordering::{Acquire, Relaxed};
    for (worker, watch) in runtime.workers.iter().zip(watches.iter_mut()) {
        let running = worker.running.load(Acquire) as *const Task;
        let switches = worker.counters.switches.load(Relaxed);
        if running.is_null() || running != watch.task || switches != watch.switches {
            *watch = Watch {
                task: running,
                switches,
                since: now,
                warned: false,
            };
            continue;
        }
        let ran = now.duration_since(watch.since);
        if watch.warned || ran < threshold {
            continue;
        }
        watch.warned = true;
        WARNINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Name it through the registry: listed means alive, while the lock is held.
        let mut described = None;
        for shard in runtime.workers.iter() {
            shard.registry.for_each(|task| {
                if std::ptr::eq(task, running) {
                    let name = task
                        .name
                        .as_deref()
                        .map(|n| format!(" '{n}'"))
                        .unwrap_or_default();
                    described = Some(format!(
                        "green thread {}{name} (spawned at {})",
                        task.id, task.spawned_at
                    ));
                }
            });
        }
        let Some(who) = described else { continue }; // it finished meanwhile
                                                     // What piled up for it meanwhile: woken by others, and spawned but not started.
        let behind = worker.inbox.len() + worker.stealer.len() + worker.placed.len();
        log::warn!(
            "weft: {who} has run on weft-worker-{} for {} ms without a switch; {behind} green \
             thread(s) wait behind it on that worker. A call that blocks outside weft \
             (std::fs, std::thread::sleep, a library's own socket) or a long computation stalls \
             the worker: wrap it in weft::offload(|| ...), or use weft::fs, weft::net and \
             weft::sleep.",
            worker.index,
            ran.as_millis(),
        );
    }
}
