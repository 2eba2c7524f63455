//! The elastic pool of blocking threads behind [`crate::offload`].
//!
//! # Shape
//!
//! One FIFO of jobs under a lock, and up to `max` OS threads that run them. Threads are made
//! on demand and retire after [`IDLE_RETIRE`] without work. A job is two words (a function
//! and a pointer to the caller's stack frame, see [`super`]), so a submission allocates
//! nothing but the queue slot.
//!
//! # Who takes a job (no job is stranded)
//!
//! A thread with nothing to do first *spins* for [`SPIN`], watching `queued`, then *sleeps*
//! in `park_timeout` with an [`IdleSlot`] on the idle list. A submitter, holding the lock:
//!
//! 1. pushes the job;
//! 2. if more threads spin than jobs are queued, leaves it at that: a spinner finds it,
//!    because a spinner stops spinning only under the lock, in the same critical section
//!    as it takes a job or lies down to sleep (so `spinning` never counts a thread that is
//!    already busy or asleep);
//! 3. else wakes the most recently idle sleeper (the warmest), taking its slot off the list
//!    so that no other submitter counts on it;
//! 4. else starts a new thread if fewer than `max` exist;
//! 5. else leaves the job queued: every thread is busy, and each takes the next job when it
//!    finishes its current one (FIFO, never refused).
//!
//! If no thread exists and none can be created (the process is out of threads or memory),
//! the submitter runs the queued jobs itself, blocking its worker: slow, but it never
//! deadlocks and never fails a call that has no error to return.
//!
//! A sleeper whose timeout passes retires only if its slot is still on the list (under the
//! lock); a slot taken by a submitter means a job is coming its way.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long an idle thread watches the queue before it sleeps: about the cost of the wake
/// it saves a burst of calls (a cross-CPU wake is ~20 µs on the VMs weft is measured on).
const SPIN: Duration = Duration::from_micros(50);
/// How long a thread sleeps without work before it retires.
pub(crate) const IDLE_RETIRE: Duration = Duration::from_secs(10);

/// A unit of work: `run(data)`. See [`super`] for what `data` points to and why running it
/// on another thread is sound.
pub(crate) struct Job {
    pub(crate) run: unsafe fn(*const ()),
    pub(crate) data: *const (),
}

// SAFETY: a job is created by `offload` for a `Send` closure and result, and `data` points
// into the frame of a caller that stays parked until the job has finished with it.
unsafe impl Send for Job {}

struct IdleSlot {
    thread: Thread,
    woken: AtomicBool,
}

struct State {
    jobs: VecDeque<Job>,
    /// Sleeping threads, most recently idle last.
    idle: Vec<Arc<IdleSlot>>,
    spinning: usize,
    alive: usize,
}

pub(crate) struct Pool {
    state: Mutex<State>,
    /// Jobs queued, readable without the lock by spinners.
    queued: AtomicUsize,
    max: usize,
    /// [`IDLE_RETIRE`], except in tests.
    retire_after: Duration,
    /// For `stats()`: threads alive, and jobs ever submitted.
    alive: AtomicUsize,
    submitted: AtomicU64,
}

static POOL: OnceLock<Pool> = OnceLock::new();

/// The pool, created on first use with at most `max` threads.
pub(crate) fn get(max: impl FnOnce() -> usize) -> &'static Pool {
    POOL.get_or_init(|| Pool::new(max(), IDLE_RETIRE))
}

/// `(jobs submitted, threads alive)`, or zeros before the pool exists.
pub(crate) fn counters() -> (u64, usize) {
    POOL.get().map_or((0, 0), |pool| {
        // Relaxed: statistics.
        (pool.submitted.load(Relaxed), pool.alive.load(Relaxed))
    })
}

impl Pool {
    fn new(max: usize, retire_after: Duration) -> Pool {
        Pool {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                idle: Vec::new(),
                spinning: 0,
                alive: 0,
            }),
            queued: AtomicUsize::new(0),
            max: max.max(1),
            retire_after,
            alive: AtomicUsize::new(0),
            submitted: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent (pushes, pops, counters).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job` and makes sure a thread will run it (the steps in the module docs).
    pub(crate) fn submit(&'static self, job: Job) {
        // Relaxed: statistics.
        self.submitted.fetch_add(1, Relaxed);
        let mut state = self.lock();
        state.jobs.push_back(job);
        // Relaxed: a hint for spinners, who confirm under the lock.
        self.queued.fetch_add(1, Relaxed);
        if state.jobs.len() <= state.spinning {
            return;
        }
        if let Some(slot) = state.idle.pop() {
            drop(state);
            // Release: pairs with the sleeper's Acquire load; the job itself is in the
            // locked queue.
            slot.woken.store(true, Release);
            slot.thread.unpark();
            return;
        }
        if state.alive >= self.max {
            return; // queued behind busy threads
        }
        state.alive += 1;
        self.alive.store(state.alive, Relaxed);
        drop(state);
        let started = thread::Builder::new()
            .name("weft-blocking".into())
            .spawn(move || self.thread_main());
        if started.is_err() {
            let mut state = self.lock();
            state.alive -= 1;
            self.alive.store(state.alive, Relaxed);
            if state.alive == 0 {
                // No thread can run the jobs: run them here rather than strand them.
                while let Some(job) = self.pop(&mut state) {
                    drop(state);
                    run(job);
                    state = self.lock();
                }
            }
        }
    }

    fn pop(&self, state: &mut State) -> Option<Job> {
        let job = state.jobs.pop_front()?;
        self.queued.fetch_sub(1, Relaxed);
        Some(job)
    }

    fn thread_main(&'static self) {
        loop {
            let mut state = self.lock();
            if let Some(job) = self.pop(&mut state) {
                drop(state);
                run(job);
                continue;
            }
            state.spinning += 1;
            drop(state);
            match self.spin() {
                Ok(job) => run(job),
                Err(state) => {
                    if !self.sleep(state) {
                        return; // retired
                    }
                }
            }
        }
    }

    /// Watches the queue for [`SPIN`]. Takes a job if one shows up, or else returns the
    /// lock, held: either way it stops counting as spinning in that same critical section.
    fn spin(&self) -> Result<Job, MutexGuard<'_, State>> {
        let start = Instant::now();
        loop {
            let give_up = start.elapsed() >= SPIN;
            if give_up || self.queued.load(Relaxed) > 0 {
                let mut state = self.lock();
                let job = self.pop(&mut state);
                if job.is_some() || give_up {
                    state.spinning -= 1;
                    return job.ok_or(state);
                }
            }
            for _ in 0..64 {
                std::hint::spin_loop();
            }
        }
    }

    /// Sleeps on the idle list until a submitter wakes this thread (`true`) or the retire
    /// timeout passes with nothing to do (`false`, and the thread is no longer counted).
    fn sleep(&self, mut state: MutexGuard<'_, State>) -> bool {
        let slot = Arc::new(IdleSlot {
            thread: thread::current(),
            woken: AtomicBool::new(false),
        });
        state.idle.push(slot.clone());
        drop(state);
        let deadline = Instant::now() + self.retire_after;
        loop {
            // Acquire: pairs with the submitter's Release store.
            if slot.woken.load(Acquire) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                let mut state = self.lock();
                match state.idle.iter().position(|s| Arc::ptr_eq(s, &slot)) {
                    Some(pos) => {
                        state.idle.remove(pos);
                        state.alive -= 1;
                        self.alive.store(state.alive, Relaxed);
                        return false;
                    }
                    // A submitter took the slot just now: its wake is on the way.
                    None => return true,
                }
            }
            thread::park_timeout(deadline - now);
        }
    }
}

fn run(job: Job) {
    // SAFETY: `offload` made the job and keeps its frame alive until the job completes it.
    unsafe { (job.run)(job.data) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    static RAN: AtomicU32 = AtomicU32::new(0);

    unsafe fn count(_: *const ()) {
        RAN.fetch_add(1, SeqCst);
        thread::sleep(Duration::from_millis(20));
    }

    #[test]
    fn grows_to_its_maximum_queues_the_rest_and_retires_when_idle() {
        let pool: &'static Pool = Box::leak(Box::new(Pool::new(2, Duration::from_millis(100))));
        for _ in 0..6 {
            pool.submit(Job {
                run: count,
                data: std::ptr::null(),
            });
        }
        assert!(pool.alive.load(SeqCst) <= 2, "never more than the maximum");
        let start = Instant::now();
        while RAN.load(SeqCst) < 6 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "queued jobs never ran"
            );
            thread::sleep(Duration::from_millis(5));
        }
        // Idle for the retire time (plus the spin): every thread leaves.
        while pool.alive.load(SeqCst) > 0 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "idle threads never retired"
            );
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(pool.submitted.load(SeqCst), 6);
    }
}
