//! Waits keyed by the address of a 32-bit word, with the kernel futex's contract: a wait
//! sleeps only while the word still holds the expected value, and a wake on that address
//! releases up to a count of sleepers. The `hooks` feature parks green threads here for the
//! futex waits std's locks make (see `hooks/futex.rs`); nothing else uses it.
//!
//! # The table
//!
//! [`BUCKETS`] spin-locked [`WaitQueue`]s, the bucket chosen by hashing the address. Each
//! entry is a [`Waiter`] on the waiting green thread's stack, keyed by address, bitset and
//! an arrival ticket (a wake releases only waiters that arrived before it started);
//! the cell protocol of [`crate::runtime::wait`] decides who completes each wait, so a wake
//! racing the waiter's deadline is either delivered or never happened, and a waiter that
//! gives up leaves no entry behind.
//!
//! # Check-then-sleep atomicity
//!
//! The kernel compares the word with the expected value and queues the waiter atomically
//! with respect to wakes on that word. The bucket lock keeps that guarantee here: the waiter
//! loads the word and queues itself under it, and a waker takes the same lock to dequeue. A
//! waker that changed the word before its wake either finds the waiter queued (the waiter's
//! section came first) or the waiter finds the new value and does not sleep (the waker's
//! store happens before its unlock, which happens before the waiter's lock).
//!
//! # The empty-table shortcut
//!
//! Most wakes in a process find nobody here, so a wake skips the buckets when the
//! table-wide count of waiters is 0. That pair of accesses is a store-buffering (Dekker)
//! pattern, ordered by two SeqCst fences: the waiter increments the count, fences, then
//! loads the word; the waker has stored the word (its caller did), fences, then loads the
//! count. The fences are totally ordered: if the waker's comes first, the waiter's load of
//! the word sees the waker's store and it does not sleep; if the waiter's comes first, the
//! waker's load of the count sees the increment and it searches the bucket.

use std::time::Instant;

use crate::loom::sync::atomic::{fence, AtomicU32, AtomicUsize};
use crate::loom::sync::SpinLock;
use crate::runtime::blocking_point::Site;
use crate::runtime::wait::{WaitQueue, Waiter};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

/// How many buckets the table has.
const BUCKETS: usize = 64;

/// A queued wait: which word, which bits of a bitset wake reach it, and its place in the
/// bucket's arrival order.
#[derive(Clone, Copy, Debug)]
struct Key {
    addr: usize,
    bitset: u32,
    ticket: u64,
}

/// One bucket: its waiters, and the next arrival's ticket.
struct Bucket {
    queue: WaitQueue<Key>,
    next_ticket: u64,
}

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    /// A wake released it.
    Woken,
    /// The word did not hold the expected value: it never slept.
    Changed,
    /// The deadline passed first.
    TimedOut,
}

/// The table; see the module docs.
pub(crate) struct AddressWaits {
    buckets: Box<[SpinLock<Bucket>]>,
    /// Waiters in (or entering) a wait, table-wide.
    waiters: AtomicUsize,
}

impl AddressWaits {
    pub(crate) fn new() -> AddressWaits {
        AddressWaits {
            buckets: (0..BUCKETS)
                .map(|_| {
                    SpinLock::new(Bucket {
                        queue: WaitQueue::new(),
                        next_ticket: 0,
                    })
                })
                .collect(),
            waiters: AtomicUsize::new(0),
        }
    }

    fn bucket(&self, addr: usize) -> &SpinLock<Bucket> {
        // Fibonacci hashing of the word's index.
        let hash = ((addr >> 2) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58;
        &self.buckets[hash as usize % BUCKETS]
    }

    /// Waits while `word` holds `expected`, until a wake whose bitset meets `bitset` or until
    /// `deadline`. Deaf to cancels and `timeout` boundaries (see [`Waiter::wait_deaf`]): the
    /// callers are futex users, which could only call again.
    pub(crate) fn wait(
        &self,
        word: &AtomicU32,
        expected: u32,
        bitset: u32,
        site: Site,
        deadline: Option<Instant>,
    ) -> Waited {
        struct Counted<'a>(&'a AtomicUsize);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Relaxed);
            }
        }
        let addr = word as *const AtomicU32 as usize;
        let bucket = self.bucket(addr);
        let waiter = Waiter::new();
        self.waiters.fetch_add(1, Relaxed);
        let _counted = Counted(&self.waiters);
        // SeqCst: the waiter's fence of the empty-table shortcut (module docs).
        fence(SeqCst);
        {
            let mut bucket = bucket.lock();
            if word.load(Relaxed) != expected {
                return Waited::Changed;
            }
            let ticket = bucket.next_ticket;
            bucket.next_ticket += 1;
            bucket.queue.push(
                &waiter,
                Key {
                    addr,
                    bitset,
                    ticket,
                },
            );
        }
        match waiter.wait_deaf(site, deadline, || bucket.lock().queue.remove(&waiter)) {
            Some(_) => Waited::Woken,
            None => Waited::TimedOut,
        }
    }

    /// Releases up to `count` waiters on `addr` whose bitset meets `bitset`, oldest first,
    /// among those queued when it starts (as the kernel does: a woken waiter that waits
    /// again is not woken twice, so a wake of every waiter ends); returns how many.
    pub(crate) fn wake(&self, addr: usize, count: usize, bitset: u32) -> usize {
        // SeqCst: the waker's fence of the empty-table shortcut (module docs).
        fence(SeqCst);
        if self.waiters.load(Relaxed) == 0 {
            return 0;
        }
        let bucket = self.bucket(addr);
        let mut woken = 0;
        let mut before = None;
        while woken < count {
            let claimed = {
                let mut bucket = bucket.lock();
                let before = *before.get_or_insert(bucket.next_ticket);
                bucket.queue.claim_first_where(|key| {
                    key.addr == addr && key.bitset & bitset != 0 && key.ticket < before
                })
            };
            // The guard is gone: the claim wakes its owner outside the lock.
            match claimed {
                Some((_, claim)) => drop(claim),
                None => break,
            }
            woken += 1;
        }
        woken
    }

    /// Whether no wait is queued on `addr` (for the models' checks).
    #[cfg(all(test, loom))]
    fn is_empty_at(&self, addr: usize) -> bool {
        self.bucket(addr).lock().queue.is_empty()
    }
}

#[cfg(all(test, loom))]
mod tests {
    use super::*;
    use crate::runtime::blocking_point::wait_site;
    use loom::sync::atomic::Ordering::{Acquire, Release};
    use loom::sync::Arc;

    fn model(bound: usize, body: impl Fn() + Send + Sync + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(bound);
        builder.check(body);
    }

    fn addr_of(word: &AtomicU32) -> usize {
        word as *const AtomicU32 as usize
    }

    /// A futex user's wait loop: sleep while the word is 0.
    fn wait_for_one(waits: &AddressWaits, word: &AtomicU32, deadline: Option<Instant>) -> bool {
        while word.load(Acquire) == 0 {
            let site = wait_site!(crate::runtime::WaitReason::Park);
            if waits.wait(word, 0, u32::MAX, site, deadline) == Waited::TimedOut {
                return word.load(Acquire) != 0;
            }
        }
        true
    }

    #[test]
    fn loom_address_wake_is_never_lost() {
        // Store-then-wake against check-then-sleep, through the empty-table shortcut: the
        // waiter always sees the store or receives the wake (a lost one deadlocks the model).
        model(3, || {
            let waits = Arc::new(AddressWaits::new());
            let word = Arc::new(AtomicU32::new(0));
            let waker = {
                let (waits, word) = (waits.clone(), word.clone());
                loom::thread::spawn(move || {
                    word.store(1, Release);
                    waits.wake(addr_of(&word), 1, u32::MAX);
                })
            };
            assert!(wait_for_one(&waits, &word, None));
            waker.join().unwrap();
            assert!(waits.is_empty_at(addr_of(&word)));
        });
    }

    #[test]
    fn loom_address_wake_races_a_deadline() {
        // A timed wait that gives up as the wake arrives leaves no entry behind, and the
        // wake's count says whether it released anyone.
        model(3, || {
            let waits = Arc::new(AddressWaits::new());
            let word = Arc::new(AtomicU32::new(0));
            let waker = {
                let (waits, word) = (waits.clone(), word.clone());
                loom::thread::spawn(move || {
                    word.store(1, Release);
                    waits.wake(addr_of(&word), 1, u32::MAX)
                })
            };
            let _ = wait_for_one(&waits, &word, Some(Instant::now()));
            let woken = waker.join().unwrap();
            assert!(woken <= 1);
            assert!(waits.is_empty_at(addr_of(&word)));
            assert_eq!(waits.waiters.load(Relaxed), 0);
        });
    }
}
