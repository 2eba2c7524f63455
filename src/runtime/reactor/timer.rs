//! Timers: a binary heap of deadlines over a slab of slots, so insert is O(log n) and cancel
//! is O(1).
//!
//! Most timers are cancelled before they fire (an IO timeout whose IO completed), so a cancel
//! only empties the timer's slot and bumps the slot's generation; the heap entry, which
//! names the slot *and* the generation it was made for, is skipped when it surfaces. When
//! stale heap entries outnumber live timers, the heap is rebuilt without them, so memory
//! stays proportional to the live timers whatever the cancel rate.
//!
//! Timers fire from whoever polls the reactor (see [`super::Reactor::poll`]); firing unparks
//! the green thread that set the timer. The green thread re-checks its own condition, so a
//! timer that fires just as it was cancelled costs at most a spurious wake-up.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::runtime::park::Unparker;

/// Identifies one armed timer: a slot and the generation it was armed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    slot: u32,
    generation: u32,
}

struct Slot {
    generation: u32,
    waiter: Option<Unparker>,
}

pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    /// The deadline the blocked poller sleeps towards: `Some(None)` while it sleeps with no
    /// deadline, `None` while no poller is blocked. An earlier new timer must wake it.
    pub(crate) blocked_until: Option<Option<Instant>>,
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            blocked_until: None,
        }
    }

    /// Arms a timer; returns its key and whether the blocked poller must be woken to shorten
    /// its sleep.
    pub(crate) fn insert(&mut self, deadline: Instant, waiter: Unparker) -> (TimerKey, bool) {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    waiter: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let entry = &mut self.slots[slot as usize];
        entry.waiter = Some(waiter);
        let key = TimerKey {
            slot,
            generation: entry.generation,
        };
        self.heap.push(Reverse((deadline, slot, key.generation)));
        self.live += 1;
        let wake = match self.blocked_until {
            Some(None) => true,
            Some(Some(until)) => deadline < until,
            None => false,
        };
        if wake {
            // The poller will recompute; one wake per sleep is enough.
            self.blocked_until = Some(Some(deadline));
        }
        (key, wake)
    }

    /// Disarms a timer if it has not fired; a no-op otherwise.
    pub(crate) fn cancel(&mut self, key: TimerKey) {
        let slot = &mut self.slots[key.slot as usize];
        if slot.generation == key.generation && slot.waiter.is_some() {
            self.vacate(key.slot);
            if self.heap.len() > 64 && self.heap.len() > 2 * self.live {
                self.compact();
            }
        }
    }

    fn vacate(&mut self, slot: u32) -> Option<Unparker> {
        let entry = &mut self.slots[slot as usize];
        let waiter = entry.waiter.take();
        entry.generation = entry.generation.wrapping_add(1);
        self.free.push(slot);
        self.live -= 1;
        waiter
    }

    fn is_live(&self, slot: u32, generation: u32) -> bool {
        let entry = &self.slots[slot as usize];
        entry.generation == generation && entry.waiter.is_some()
    }

    fn compact(&mut self) {
        let heap = std::mem::take(&mut self.heap);
        self.heap = heap
            .into_iter()
            .filter(|Reverse((_, slot, generation))| self.is_live(*slot, *generation))
            .collect();
    }

    /// The earliest live deadline, dropping stale heap entries on the way.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&Reverse((deadline, slot, generation))) = self.heap.peek() {
            if self.is_live(slot, generation) {
                return Some(deadline);
            }
            self.heap.pop();
        }
        None
    }

    /// Removes every timer due at `now` and pushes its waiter onto `due`.
    pub(crate) fn take_expired(&mut self, now: Instant, due: &mut Vec<Unparker>) {
        while let Some(&Reverse((deadline, slot, generation))) = self.heap.peek() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            if self.is_live(slot, generation) {
                if let Some(waiter) = self.vacate(slot) {
                    due.push(waiter);
                }
            }
        }
    }

    #[cfg(test)]
    fn heap_len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn waiter() -> Unparker {
        Unparker::Thread(std::thread::current())
    }

    #[test]
    fn fires_in_deadline_order_and_skips_cancelled() {
        let mut timers = Timers::new();
        let now = Instant::now();
        let (_a, _) = timers.insert(now + Duration::from_millis(30), waiter());
        let (b, _) = timers.insert(now + Duration::from_millis(10), waiter());
        let (_c, _) = timers.insert(now + Duration::from_millis(20), waiter());
        timers.cancel(b);
        assert_eq!(
            timers.next_deadline(),
            Some(now + Duration::from_millis(20))
        );
        let mut due = Vec::new();
        timers.take_expired(now + Duration::from_millis(25), &mut due);
        assert_eq!(due.len(), 1);
        assert_eq!(
            timers.next_deadline(),
            Some(now + Duration::from_millis(30))
        );
        timers.take_expired(now + Duration::from_millis(30), &mut due);
        assert_eq!(due.len(), 2);
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn cancelled_timers_do_not_accumulate() {
        let mut timers = Timers::new();
        let far = Instant::now() + Duration::from_secs(3600);
        for _ in 0..100_000 {
            let (key, _) = timers.insert(far, waiter());
            timers.cancel(key);
        }
        assert!(
            timers.heap_len() <= 130,
            "heap kept {} stale entries",
            timers.heap_len()
        );
        assert_eq!(timers.live, 0);
    }

    #[test]
    fn a_stale_key_cannot_cancel_the_slots_next_timer() {
        let mut timers = Timers::new();
        let now = Instant::now();
        let (old, _) = timers.insert(now, waiter());
        let mut due = Vec::new();
        timers.take_expired(now, &mut due);
        let (_new, _) = timers.insert(now + Duration::from_secs(1), waiter());
        timers.cancel(old); // same slot, older generation
        assert_eq!(timers.next_deadline(), Some(now + Duration::from_secs(1)));
    }

    #[test]
    fn an_earlier_timer_wakes_the_blocked_poller() {
        let mut timers = Timers::new();
        let now = Instant::now();
        assert!(!timers.insert(now, waiter()).1, "no poller blocked");
        timers.blocked_until = Some(Some(now + Duration::from_secs(1)));
        assert!(!timers.insert(now + Duration::from_secs(2), waiter()).1);
        assert!(timers.insert(now + Duration::from_millis(1), waiter()).1);
        timers.blocked_until = Some(None);
        assert!(timers.insert(now + Duration::from_secs(5), waiter()).1);
    }
}
