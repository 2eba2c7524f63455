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
//! The interval is 1 ms while anything runs and backs off to 20 ms when the runtime is idle,
//! so an idle process costs ~50 wake-ups a second.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::unwinding;
use super::Runtime;
use crate::reactor;

const MIN_INTERVAL: Duration = Duration::from_millis(1);
const MAX_INTERVAL: Duration = Duration::from_millis(20);

pub(crate) fn run(runtime: &'static Runtime) -> ! {
    let mut last_ticks = vec![0u64; runtime.workers.len()];
    let mut interval = MIN_INTERVAL;
    let mut last_polls = 0;
    let mut unwind_watches = vec![unwinding::Watch::default(); runtime.workers.len()];
    let abort_after = crate::config::deadlock_abort_after();
    loop {
        std::thread::sleep(interval);
        unwinding::check(runtime, &mut unwind_watches, Instant::now(), abort_after);
        if let Some(reactor) = reactor::try_get() {
            let polls = reactor.polls();
            if polls == last_polls && !reactor.has_blocking_poller() {
                reactor.poll_now();
            }
            last_polls = reactor.polls();
        }
        let mut active = false;
        for (worker, last) in runtime.workers.iter().zip(last_ticks.iter_mut()) {
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
