//! The shared state of one channel: a buffer and two queues of waiting parties, under one
//! lock (Go's `hchan` shape).
//!
//! # Invariants (all under `inner`'s lock)
//!
//! * A live (`WAITING`) receiver is queued only while the buffer is empty: a sender first
//!   hands its value to a queued receiver and only buffers it when none can be claimed.
//! * A live sender is queued only while the buffer is full (for a rendezvous channel, always
//!   full): a receiver that takes from the buffer refills it from the first claimable sender.
//! * Entries whose waiter was claimed elsewhere or aborted may linger until an operation
//!   trips over them (its claim fails, and it drops them) or their owner unregisters.
//! * `disconnected` is set once, when the last sender or the last receiver goes, and then
//!   every queued party is claimed: a receiver wakes with an empty slot and re-checks; a
//!   sender wakes with its value still in its slot and returns it in the error.
//!
//! Values move between a sender's and a receiver's slot under the lock; the claim protocol
//! of [`crate::runtime::wait`] publishes them to the woken owner.

use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::{AcqRel, Relaxed};

use crate::loom::sync::atomic::AtomicUsize;
use crate::loom::sync::{SpinGuard, SpinLock};
use crate::runtime::wait::{Claimed, Waiter, WaiterRef};

/// A queued party: who waits, for which operation, and where its value is (or goes).
pub(crate) struct Entry<T> {
    waiter: WaiterRef,
    token: usize,
    /// A receiver's slot starts `None` and a claimer fills it; a sender's slot holds its
    /// value and a claimer takes it. Lives beside the waiter, under the same protocol.
    slot: NonNull<Option<T>>,
}

// SAFETY: an entry is only dereferenced under the channel lock while the owner keeps the
// waiter and slot alive (see `crate::runtime::wait`); moving the `T` inside between threads needs
// `T: Send`.
unsafe impl<T: Send> Send for Entry<T> {}

pub(crate) struct Inner<T> {
    buffer: VecDeque<T>,
    receivers: VecDeque<Entry<T>>,
    senders: VecDeque<Entry<T>>,
    disconnected: bool,
}

/// Why an operation could not complete now.
pub(crate) enum Stuck {
    /// Empty (receive) or full (send); waiting may help.
    Wait,
    /// The other side is gone for good.
    Disconnected,
}

pub(crate) struct Channel<T> {
    inner: SpinLock<Inner<T>>,
    /// `None`: unbounded. `Some(0)`: rendezvous.
    cap: Option<usize>,
    pub(crate) senders: AtomicUsize,
    pub(crate) receivers: AtomicUsize,
}

impl<T> Channel<T> {
    pub(crate) fn new(cap: Option<usize>) -> Channel<T> {
        // Pre-size small buffers; a huge capacity grows on demand instead of up front.
        let initial = cap.unwrap_or(0).min(1024);
        Channel {
            inner: SpinLock::new(Inner {
                buffer: VecDeque::with_capacity(initial),
                receivers: VecDeque::new(),
                senders: VecDeque::new(),
                disconnected: false,
            }),
            cap,
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
        }
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.cap
    }

    /// The channel's one lock (a [`crate::runtime::spin::SpinLock`]): never held across a park or
    /// user code; values are only moved under it, and `T`'s destructors run after unlocking.
    #[inline]
    fn lock(&self) -> SpinGuard<'_, Inner<T>> {
        self.inner.lock()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().buffer.len()
    }

    pub(crate) fn is_disconnected(&self) -> bool {
        self.lock().disconnected
    }

    /// Called when the last sender or receiver is dropped. When it was the last receiver,
    /// the buffered messages are dropped too, as std's channels do: nobody can receive
    /// them any more, and a message that owns a resource (a reply `Sender`, a connection)
    /// must not be held until the last sender goes. Queued senders are woken and get their
    /// own values back in the error.
    pub(crate) fn disconnect(&self, receivers_gone: bool) {
        let mut woken = Vec::new();
        let unreceivable = {
            let mut guard = self.lock();
            let inner = &mut *guard;
            inner.disconnected = true;
            for entry in inner.receivers.drain(..).chain(inner.senders.drain(..)) {
                // SAFETY: we hold the lock and just took the entry from its queue.
                if let Some(claimed) = unsafe { entry.waiter.try_claim(entry.token) } {
                    woken.push(claimed);
                }
            }
            if receivers_gone {
                std::mem::take(&mut inner.buffer)
            } else {
                VecDeque::new()
            }
        };
        // Dropping the claims stores DONE and unparks, outside the lock; the messages' own
        // destructors run outside it too.
        drop(woken);
        drop(unreceivable);
    }

    /// Sends without waiting. On success, the returned claim (if any) must be dropped by the
    /// caller to wake the receiver that took the value.
    pub(crate) fn try_send(&self, value: T) -> Result<Option<Claimed>, (T, Stuck)> {
        let mut inner = self.lock();
        inner.try_send(value, self.cap)
    }

    /// Receives without waiting.
    pub(crate) fn try_recv(&self) -> Result<(T, Option<Claimed>), Stuck> {
        let mut inner = self.lock();
        inner.try_recv()
    }

    /// One blocking send: tries, and if it must wait, queues `waiter` with `slot` holding
    /// the value, under the same lock acquisition (so no wake-up can fall in between).
    /// Returns `Ok(None)` when it queued.
    ///
    /// # Safety
    ///
    /// `slot` and `waiter` stay put until the wait is final and the entry unregistered (see
    /// `crate::runtime::wait`).
    pub(crate) unsafe fn send_or_queue(
        &self,
        slot: &mut Option<T>,
        waiter: &Waiter,
    ) -> Result<Option<Option<Claimed>>, Stuck> {
        let mut inner = self.lock();
        let value = slot.take().expect("send slot holds the value");
        match inner.try_send(value, self.cap) {
            Ok(claimed) => Ok(Some(claimed)),
            Err((value, Stuck::Wait)) => {
                *slot = Some(value);
                inner.senders.push_back(Entry {
                    waiter: waiter.as_ref(),
                    token: 0,
                    slot: NonNull::from(slot),
                });
                Ok(None)
            }
            Err((value, Stuck::Disconnected)) => {
                *slot = Some(value);
                Err(Stuck::Disconnected)
            }
        }
    }

    /// One blocking receive: the receiving twin of [`Channel::send_or_queue`].
    ///
    /// # Safety
    ///
    /// As for `send_or_queue`.
    pub(crate) unsafe fn recv_or_queue(
        &self,
        slot: &mut Option<T>,
        waiter: &Waiter,
    ) -> Result<Option<(T, Option<Claimed>)>, Stuck> {
        let mut inner = self.lock();
        match inner.try_recv() {
            Ok(got) => Ok(Some(got)),
            Err(Stuck::Wait) => {
                inner.receivers.push_back(Entry {
                    waiter: waiter.as_ref(),
                    token: 0,
                    slot: NonNull::from(slot),
                });
                Ok(None)
            }
            Err(Stuck::Disconnected) => Err(Stuck::Disconnected),
        }
    }

    /// Queues a select arm without trying the operation (a select completes operations only
    /// in its try pass; see `select.rs`). Returns `true` if the operation looks ready now,
    /// in which case the select aborts its wait and retries.
    ///
    /// # Safety
    ///
    /// As for `send_or_queue`.
    pub(crate) unsafe fn register(
        &self,
        sending: bool,
        slot: NonNull<Option<T>>,
        waiter: &Waiter,
        token: usize,
    ) -> bool {
        let me = waiter.as_ref();
        let mut inner = self.lock();
        let entry = Entry {
            waiter: me,
            token,
            slot,
        };
        if sending {
            inner.senders.push_back(entry);
            inner.disconnected
                || self.cap.is_some_and(|cap| inner.buffer.len() < cap)
                || self.cap.is_none()
                || inner.receivers.iter().any(|e| e.waiter != me)
        } else {
            inner.receivers.push_back(entry);
            inner.disconnected
                || !inner.buffer.is_empty()
                || inner.senders.iter().any(|e| e.waiter != me)
        }
    }

    /// Removes every entry of `waiter` from both queues (after an abort, or for the arms a
    /// select did not choose).
    pub(crate) fn unregister(&self, waiter: &Waiter) {
        let me = waiter.as_ref();
        let mut inner = self.lock();
        inner.receivers.retain(|e| e.waiter != me);
        inner.senders.retain(|e| e.waiter != me);
    }

    /// Increments a handle count (clone of a `Sender` or `Receiver`).
    pub(crate) fn acquire(count: &AtomicUsize) {
        // Relaxed: a new handle is made from an existing one, which keeps the count above
        // zero; nothing is published by the increment (as in `Arc::clone`).
        count.fetch_add(1, Relaxed);
    }

    /// Decrements a handle count; `true` if this was the last handle of its side.
    pub(crate) fn release(count: &AtomicUsize) -> bool {
        // AcqRel: the last releaser must see every other handle's accesses before it
        // disconnects (as in `Arc`'s drop), and publishes its own.
        count.fetch_sub(1, AcqRel) == 1
    }
}

impl<T> Inner<T> {
    /// Pops queued parties from `queue` until one can be claimed.
    fn claim_first(queue: &mut VecDeque<Entry<T>>) -> Option<(Entry<T>, Claimed)> {
        while let Some(entry) = queue.pop_front() {
            // SAFETY: we hold the channel lock and just took the entry from its queue, so its
            // owner has not unregistered it and it is alive.
            if let Some(claimed) = unsafe { entry.waiter.try_claim(entry.token) } {
                return Some((entry, claimed));
            }
            // Claimed by another arm of its select, or aborted: its owner no longer needs it.
        }
        None
    }

    fn try_send(&mut self, value: T, cap: Option<usize>) -> Result<Option<Claimed>, (T, Stuck)> {
        if self.disconnected {
            return Err((value, Stuck::Disconnected));
        }
        if let Some((entry, claimed)) = Self::claim_first(&mut self.receivers) {
            // SAFETY: the claim makes us the only writer of the receiver's slot until DONE,
            // and the slot is alive as long as the waiter (see `crate::runtime::wait`).
            unsafe { *entry.slot.as_ptr() = Some(value) };
            return Ok(Some(claimed));
        }
        if cap.is_none_or(|cap| self.buffer.len() < cap) {
            self.buffer.push_back(value);
            return Ok(None);
        }
        Err((value, Stuck::Wait))
    }

    fn try_recv(&mut self) -> Result<(T, Option<Claimed>), Stuck> {
        if let Some(value) = self.buffer.pop_front() {
            // Room now: the first waiting sender's value moves into the buffer, in order.
            let claimed = Self::claim_first(&mut self.senders).map(|(entry, claimed)| {
                // SAFETY: claimed, so we are the only one touching the sender's slot.
                let moved = unsafe { (*entry.slot.as_ptr()).take() };
                self.buffer
                    .push_back(moved.expect("a queued sender's slot holds its value"));
                claimed
            });
            return Ok((value, claimed));
        }
        if let Some((entry, claimed)) = Self::claim_first(&mut self.senders) {
            // Rendezvous: take the value straight from the sender.
            // SAFETY: as above.
            let value = unsafe { (*entry.slot.as_ptr()).take() };
            return Ok((
                value.expect("a queued sender's slot holds its value"),
                Some(claimed),
            ));
        }
        Err(if self.disconnected {
            Stuck::Disconnected
        } else {
            Stuck::Wait
        })
    }
}

/// Model checks of the wait queue (run: see `src/loom.rs`). Parties are plain (loom) threads
/// and timed waits time out after one yield, so loom explores a waker claiming a wait while
/// its owner aborts it. The invariant: a message is received exactly when its send
/// succeeded, and nobody is left parked.
#[cfg(all(test, loom))]
mod loom_tests {
    use std::time::Duration;

    use crate::chan::{bounded, RecvTimeoutError, SendTimeoutError};

    #[test]
    fn loom_rendezvous_hands_over() {
        loom::model(|| {
            let (tx, rx) = bounded::<u32>(0);
            let sender = loom::thread::spawn(move || tx.send(7).is_ok());
            assert_eq!(rx.recv(), Ok(7));
            assert!(sender.join().unwrap());
        });
    }

    #[test]
    fn loom_timeouts_race_the_handover() {
        loom::model(|| {
            let (tx, rx) = bounded::<u32>(0);
            let hour = Duration::from_secs(3600);
            // The sender hands its `Sender` back, so the channel stays connected throughout.
            let sender = loom::thread::spawn(move || match tx.send_timeout(1, hour) {
                Ok(()) => (true, tx),
                Err(SendTimeoutError::Timeout(1)) => (false, tx),
                Err(other) => panic!("unexpected {other:?}"),
            });
            let received = match rx.recv_timeout(hour) {
                Ok(1) => true,
                Err(RecvTimeoutError::Timeout) => false,
                other => panic!("unexpected {other:?}"),
            };
            let (sent, _tx) = sender.join().unwrap();
            assert_eq!(sent, received, "a message was lost or invented");
        });
    }

    #[test]
    fn loom_disconnect_wakes_a_parked_receiver() {
        loom::model(|| {
            let (tx, rx) = bounded::<u32>(1);
            let sender = loom::thread::spawn(move || {
                tx.send(1).unwrap();
                drop(tx);
            });
            assert_eq!(rx.recv(), Ok(1));
            assert!(rx.recv().is_err());
            sender.join().unwrap();
        });
    }

    /// A select over two channels races one sender with a timeout (the other channel stays
    /// quiet): the select wins the message exactly when the send succeeded.
    #[test]
    fn loom_select_races_a_timed_send() {
        loom::model(|| {
            let (tx_a, rx_a) = bounded::<u32>(0);
            let (_tx_b, rx_b) = bounded::<u32>(0);
            let hour = Duration::from_secs(3600);
            let a = loom::thread::spawn(move || (tx_a.send_timeout(1, hour).is_ok(), tx_a));
            let got = crate::select! {
                recv(rx_a) -> msg => msg.ok(),
                recv(rx_b) -> msg => msg.ok(),
                default(hour) => None,
            };
            let (sent, _tx_a) = a.join().unwrap();
            assert_eq!(sent, got == Some(1));
        });
    }

    /// Two senders race for one select: it completes exactly one arm, and the other message
    /// is still there for a plain receive.
    #[test]
    fn loom_select_completes_exactly_one_arm() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(2);
        model.check(|| {
            let (tx_a, rx_a) = bounded::<u32>(0);
            let (tx_b, rx_b) = bounded::<u32>(0);
            let a = loom::thread::spawn(move || tx_a.send(1).unwrap());
            let b = loom::thread::spawn(move || tx_b.send(2).unwrap());
            let first = crate::select! {
                recv(rx_a) -> msg => msg.unwrap(),
                recv(rx_b) -> msg => msg.unwrap(),
            };
            let second = if first == 1 { rx_b.recv() } else { rx_a.recv() };
            assert_eq!(first + second.unwrap(), 3);
            a.join().unwrap();
            b.join().unwrap();
        });
    }
}
