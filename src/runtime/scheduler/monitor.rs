//! The monitor thread (Go's sysmon, in small): rescues stealable work stuck behind a busy
//! worker.
//!
//! Spawning from a worker wakes nobody when the new task is the only one queued there,
//! because that worker will usually run it next (see `Local::push_stealable`). If the running
//! green thread then computes for a long time without blocking, the queued task would wait.
//! The monitor looks at every worker each interval; a worker whose tick did not move since the
//! last look but whose deque holds tasks is stuck, and the monitor asks the idle policy to wake
//! one sleeper, which will steal the work. The injector is checked the same way.
//!
//! It also polls the reactor (timeout 0) when nobody has polled since its last look and no
//! worker sleeps in `epoll_wait`: every worker is then stuck in a long computation (or
//! blocked while unwinding), and IO completions and timers would otherwise wait for them.
//!
//! And it watches for a worker blocked by an unwinding green thread while other green threads
//! of that worker wait to run; past a grace period that is diagnosed as a deadlock (see
//! [`super::unwinding`]).
//!
//! It runs the blocked-worker watchdog ([`super::watchdog`]), advances the coarse clock
//! that parks are stamped with ([`super::registry`]), prints the `WEFT_SCHEDTRACE` line, and
//! writes a dump when `WEFT_DUMP_SIGNAL=1` and SIGQUIT arrived (the signal handler only sets
//! a flag; formatting happens here).
//!
//! The interval is 1 ms while anything runs and backs off to 20 ms when the runtime is idle,
//! so an idle process costs ~50 wake-ups a second.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::unwinding;
use super::watchdog;
use super::Runtime;
use crate::runtime::reactor;

const MIN_INTERVAL: Duration = Duration::from_millis(1);
const MAX_INTERVAL: Duration = Duration::from_millis(20);
/// Looks in a row at which a worker was awake but picked no task before its placed tasks
/// are freed for any worker (see "Placement" in the worker module).
const PLACED_RESCUE_LOOKS: u32 = 20;

pub(crate) fn run(runtime: &'static Runtime) -> ! {
    let mut last_ticks = vec![0u64; runtime.workers.len()];
    // Consecutive looks at which each worker was awake but had not picked a task.
    let mut stuck_looks = vec![0u32; runtime.workers.len()];
    let mut interval = MIN_INTERVAL;
    let mut last_polls = 0;
    let mut unwind_watches = vec![unwinding::Watch::default(); runtime.workers.len()];
    let abort_after = crate::runtime::config::deadlock_abort_after();
    let mut blocked_watches = vec![watchdog::Watch::new(Instant::now()); runtime.workers.len()];
    let schedtrace = crate::runtime::config::schedtrace();
    let mut next_trace = Instant::now();
    let dump_requested = Arc::new(AtomicBool::new(false));
    if crate::runtime::config::dump_signal() {
        // The handler only stores `true`; the dump is written below, on this thread.
        if let Err(e) = signal_hook::flag::register(libc::SIGQUIT, dump_requested.clone()) {
            log::warn!("weft: WEFT_DUMP_SIGNAL=1, but SIGQUIT could not be handled: {e}");
        }
    }
    loop {
        std::thread::sleep(interval);
        let now = Instant::now();
        super::registry::tick_clock();
        unwinding::check(runtime, &mut unwind_watches, now, abort_after);
        if let Some(threshold) = runtime.blocked_warning {
            watchdog::check(runtime, &mut blocked_watches, now, threshold);
        }
        if dump_requested.swap(false, Relaxed) {
            eprint!("{}", crate::dump());
        }
        if let Some(every) = schedtrace {
            if now >= next_trace {
                next_trace = now + every;
                eprintln!("{}", trace_line());
            }
        }
        if let Some(reactor) = reactor::try_get() {
            let polls = reactor.polls();
            if polls == last_polls && !reactor.has_blocking_poller() {
                reactor.poll_now();
            }
            last_polls = reactor.polls();
        }
        let mut active = false;
        for ((worker, last), looks) in runtime
            .workers
            .iter()
            .zip(last_ticks.iter_mut())
            .zip(stuck_looks.iter_mut())
        {
            // Relaxed: a stale tick or emptiness check only delays or adds one wake-up; the
            // wake itself goes through the idle protocol, which carries the ordering.
            let tick = worker.counters.tick.load(Relaxed);
            let stuck = tick == *last;
            active |= !stuck;
            *last = tick;
            if stuck && !worker.stealer.is_empty() {
                runtime.notify_one();
                active = true;
            }
            // Fresh tasks placed on a worker that is blocked while unwinding (it would never
            // start them: a deadlock if a destructor waits for one), or that has been awake
            // without picking a task for PLACED_RESCUE_LOOKS looks in a row (a long
            // computation): free them for anyone. Not after one look: with more workers than
            // CPUs, or a busy load generator beside them, the OS often leaves a worker off the
            // CPU for a few milliseconds. (A sleeping target was woken by the placement.)
            *looks = if stuck && !worker.sleeping.get() {
                *looks + 1
            } else {
                0
            };
            if !worker.placed.is_empty()
                && (*looks >= PLACED_RESCUE_LOOKS || worker.unwind_block.is_blocked())
            {
                loop {
                    match worker.placed.steal() {
                        crossbeam_deque::Steal::Success(task) => runtime.injector.push(task),
                        crossbeam_deque::Steal::Retry => {}
                        crossbeam_deque::Steal::Empty => break,
                    }
                }
                runtime.notify_one();
                active = true;
            }
        }
        if !runtime.injector.is_empty() {
            runtime.notify_one();
            active = true;
        }
        interval = if active {
            MIN_INTERVAL
        } else {
            (interval * 2).min(MAX_INTERVAL)
        };
    }
}

/// One `WEFT_SCHEDTRACE` line, in the spirit of Go's `schedtrace`.
fn trace_line() -> String {
    let stats = crate::stats();
    let mut line = format!(
        "weft schedtrace {}ms: workers={} live={} spawned={} switches={} steals={} \
         offloaded={} blocking_threads={} cancelled={} blocked_warnings={}",
        super::registry::now_ms(),
        stats.workers,
        stats.live,
        stats.spawned,
        stats.switches,
        stats.steals,
        stats.offloaded,
        stats.blocking_threads,
        stats.cancelled,
        stats.blocked_warnings,
    );
    for (i, w) in stats.per_worker.iter().enumerate() {
        line.push_str(&format!(
            " [w{i} homed={} queued={}{}]",
            w.homed,
            w.queued,
            if w.asleep { " asleep" } else { "" }
        ));
    }
    line
}
