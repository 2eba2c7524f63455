//! Go's channels, with Rust's ownership: multi-producer, multi-consumer, and blocking in the
//! way every weft API blocks — a green thread parks and its worker runs others; a plain
//! thread blocks. Both kinds mix freely on one channel.
//!
//! ```
//! use weft::chan;
//!
//! let (tx, rx) = chan::bounded(16);
//! let producers: Vec<_> = (0..4)
//!     .map(|p| {
//!         let tx = tx.clone();
//!         weft::go!(move || for i in 0..100 {
//!             tx.send(p * 100 + i).unwrap();
//!         })
//!     })
//!     .collect();
//! drop(tx); // the receiver sees disconnection once the producers are done
//! let sum: u64 = rx.iter().sum();
//! assert_eq!(sum, (0..400).sum());
//! for p in producers {
//!     p.join().unwrap();
//! }
//! ```
//!
//! # Flavours
//!
//! * [`unbounded()`]: `send` never waits.
//! * [`bounded(cap)`](bounded): `send` waits while `cap` messages are buffered.
//! * `bounded(0)`: a rendezvous (Go's unbuffered channel). `send` waits until a receiver
//!   takes the message.
//! * [`after`] and [`tick`]: receivers that deliver the time once, or periodically, for
//!   timeouts inside [`select!`](crate::select).
//!
//! # Ordering and fairness
//!
//! Messages from one sender arrive in the order sent. Waiting senders and receivers are
//! served first come, first served, and a receiver that takes from a full buffer moves the
//! longest-waiting sender's message in behind the others.
//!
//! # Disconnection
//!
//! When every [`Sender`] is gone, receivers drain what is buffered and then get an error.
//! When every [`Receiver`] is gone, a send returns its message inside the error, so nothing
//! is lost silently; messages still buffered at that point are dropped with the channel.
//!
//! # Errors
//!
//! [`SendError`], [`TrySendError`], [`RecvError`], [`TryRecvError`] and [`RecvTimeoutError`]
//! are std's own (`std::sync::mpsc`), so code moving from std keeps its error handling;
//! [`SendTimeoutError`] is weft's, as std's is unstable.

mod channel;
mod error;
#[doc(hidden)]
pub mod select;
mod timer;

use crate::runtime::coop;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::channel::{Channel, Stuck};
use self::timer::Timer;
use crate::runtime::blocking_point::{self, wait_site};
use crate::runtime::wait::{self, Waiter};

pub use self::error::SendTimeoutError;
pub use std::sync::mpsc::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};

/// Creates a channel that buffers any number of messages.
///
/// ```
/// let (tx, rx) = weft::chan::unbounded();
/// tx.send("never waits").unwrap();
/// assert_eq!(rx.recv(), Ok("never waits"));
/// ```
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    new(None)
}

/// Creates a channel that buffers up to `cap` messages; `bounded(0)` is a rendezvous channel,
/// where each send waits for a receiver to take the message.
///
/// ```
/// let (tx, rx) = weft::chan::bounded(0);
/// let sender = weft::go!(move || tx.send(7).unwrap()); // waits for the receive below
/// assert_eq!(rx.recv(), Ok(7));
/// sender.join().unwrap();
/// ```
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    new(Some(cap))
}

fn new<T>(cap: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Channel::new(cap));
    (
        Sender { chan: chan.clone() },
        Receiver {
            flavor: Flavor::Chan(chan),
        },
    )
}

/// A receiver that gets one message, the time of delivery, once `duration` has passed.
/// Further receives wait forever (or until their timeout), as with Go's `time.After`.
///
/// ```
/// use std::time::Duration;
/// use weft::chan;
///
/// let (_tx, rx) = chan::unbounded::<u32>();
/// let timeout = chan::after(Duration::from_millis(5));
/// let got = weft::select! {
///     recv(rx) -> msg => msg.ok(),
///     recv(timeout) -> _ => None,
/// };
/// assert_eq!(got, None);
/// ```
pub fn after(duration: Duration) -> Receiver<Instant> {
    Receiver {
        flavor: Flavor::Timer(
            Arc::new(Timer::once(Instant::now().checked_add(duration))),
            identity,
        ),
    }
}

/// A receiver that gets the time every `period`, first after one `period`. Ticks a slow
/// receiver misses are skipped rather than queued (Go's ticker does the same); a zero
/// period is always ready.
///
/// ```
/// use std::time::Duration;
///
/// let ticks = weft::chan::tick(Duration::from_millis(1));
/// let first = ticks.recv().unwrap();
/// let second = ticks.recv().unwrap();
/// assert!(second > first);
/// ```
pub fn tick(period: Duration) -> Receiver<Instant> {
    Receiver {
        flavor: Flavor::Timer(
            Arc::new(Timer::ticker(Instant::now().checked_add(period), period)),
            identity,
        ),
    }
}

fn identity(instant: Instant) -> Instant {
    instant
}

/// The sending half of a channel. Clone it for more producers.
pub struct Sender<T> {
    chan: Arc<Channel<T>>,
}

/// The receiving half of a channel. Clone it for more consumers; each message goes to
/// exactly one of them.
pub struct Receiver<T> {
    flavor: Flavor<T>,
}

enum Flavor<T> {
    Chan(Arc<Channel<T>>),
    /// [`after`] and [`tick`]; the function makes the message from the delivery time (it is
    /// the identity: only `Receiver<Instant>` is ever built with this flavour).
    Timer(Arc<Timer>, fn(Instant) -> T),
}

impl<T> Sender<T> {
    /// Sends `value`, waiting while the channel is full (for a rendezvous channel: until a
    /// receiver takes it). Fails, returning `value`, if every receiver is gone.
    ///
    /// ```
    /// let (tx, rx) = weft::chan::bounded(1);
    /// tx.send(1).unwrap();
    /// drop(rx);
    /// assert_eq!(tx.send(2).unwrap_err().0, 2);
    /// ```
    #[track_caller]
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.send_until(value, None).map_err(|err| match err {
            SendTimeoutError::Disconnected(value) | SendTimeoutError::Timeout(value) => {
                SendError(value)
            }
        })
    }

    /// Sends `value` if that needs no waiting.
    ///
    /// ```
    /// use weft::chan::{self, TrySendError};
    ///
    /// let (tx, _rx) = chan::bounded(1);
    /// tx.try_send(1).unwrap();
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// ```
    #[inline]
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        coop::spend();
        self.try_send_now(value)
    }

    fn try_send_now(&self, value: T) -> Result<(), TrySendError<T>> {
        match self.chan.try_send(value) {
            Ok(claimed) => {
                drop(claimed);
                Ok(())
            }
            Err((value, Stuck::Wait)) => Err(TrySendError::Full(value)),
            Err((value, Stuck::Disconnected)) => Err(TrySendError::Disconnected(value)),
        }
    }

    /// Sends `value`, waiting at most `timeout` for room; on failure the error holds `value`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use weft::chan::{self, SendTimeoutError};
    ///
    /// let (tx, _rx) = chan::bounded(0);
    /// let err = tx.send_timeout("nobody listens", Duration::from_millis(2)).unwrap_err();
    /// assert_eq!(err, SendTimeoutError::Timeout("nobody listens"));
    /// ```
    #[track_caller]
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_until(value, wait::deadline_after(timeout))
    }

    /// Sends `value`, waiting until `deadline` at the latest.
    #[track_caller]
    pub fn send_deadline(&self, value: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.send_until(value, Some(deadline))
    }

    #[track_caller]
    fn send_until(&self, value: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        coop::spend();
        let value = match self.try_send_now(value) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Disconnected(value)) => {
                return Err(SendTimeoutError::Disconnected(value))
            }
            Err(TrySendError::Full(value)) => value,
        };
        send_wait(&self.chan, value, deadline)
    }

    /// Whether every receiver is gone.
    pub fn is_disconnected(&self) -> bool {
        self.chan.is_disconnected()
    }

    /// The number of buffered messages.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether no message is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer's capacity: `None` for an unbounded channel, `Some(0)` for a rendezvous.
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    /// Whether both handles belong to the same channel.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

/// The slow path of a send: queue, park, and sort out how the wait ended.
#[cold]
#[track_caller]
fn send_wait<T>(
    chan: &Channel<T>,
    value: T,
    deadline: Option<Instant>,
) -> Result<(), SendTimeoutError<T>> {
    if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
        return Err(SendTimeoutError::Timeout(value));
    }
    let waiter = Waiter::new();
    let site = wait_site!(crate::WaitReason::Send {
        channel: chan as *const Channel<T> as usize
    });
    let mut slot = Some(value);
    // SAFETY: `slot` and `waiter` stay in this frame until the wait is final and, if it was
    // aborted, the entry is unregistered below.
    match unsafe { chan.send_or_queue(&mut slot, &waiter) } {
        Ok(Some(claimed)) => {
            drop(claimed);
            return Ok(());
        }
        Ok(None) => {}
        Err(_) => return Err(SendTimeoutError::Disconnected(take(&mut slot))),
    }
    // A cancel or a passed `timeout` boundary unwinds from inside, once the wait is out of
    // the queues; a claimed wait completes first.
    match waiter.wait(site, deadline, || chan.unregister(&waiter)) {
        // A receiver took the value; or the receivers went away and it is still ours.
        Some(_) => match slot.take() {
            None => Ok(()),
            Some(value) => Err(SendTimeoutError::Disconnected(value)),
        },
        None => Err(SendTimeoutError::Timeout(take(&mut slot))),
    }
}

fn take<T>(slot: &mut Option<T>) -> T {
    slot.take()
        .expect("an unclaimed sender still holds its value")
}

impl<T> Receiver<T> {
    /// Receives a message, waiting until one arrives; fails once the channel is empty and
    /// every sender is gone.
    ///
    /// ```
    /// let (tx, rx) = weft::chan::unbounded();
    /// tx.send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.recv(), Ok(1)); // buffered messages come first
    /// assert!(rx.recv().is_err());
    /// ```
    #[track_caller]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_until(None).map_err(|_| RecvError)
    }

    /// Receives a message if one is ready.
    #[inline]
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        coop::spend();
        self.try_recv_now()
    }

    /// [`try_recv`](Self::try_recv) without spending the cooperative budget, for callers
    /// that spent it already (`select!` spends once per call, not per arm).
    #[inline]
    pub(crate) fn try_recv_now(&self) -> Result<T, TryRecvError> {
        match &self.flavor {
            Flavor::Chan(chan) => match chan.try_recv() {
                Ok((value, claimed)) => {
                    drop(claimed);
                    Ok(value)
                }
                Err(Stuck::Wait) => Err(TryRecvError::Empty),
                Err(Stuck::Disconnected) => Err(TryRecvError::Disconnected),
            },
            Flavor::Timer(timer, make) => timer.try_fire().map(make).ok_or(TryRecvError::Empty),
        }
    }

    /// Receives a message, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use weft::chan::{self, RecvTimeoutError};
    ///
    /// let (_tx, rx) = chan::unbounded::<()>();
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(2)), Err(RecvTimeoutError::Timeout));
    /// ```
    #[track_caller]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(wait::deadline_after(timeout))
    }

    /// Receives a message, waiting until `deadline` at the latest.
    #[track_caller]
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(deadline))
    }

    #[track_caller]
    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        coop::spend();
        match &self.flavor {
            Flavor::Chan(chan) => recv_chan(chan, deadline),
            Flavor::Timer(timer, make) => loop {
                if let Some(at) = timer.try_fire() {
                    return Ok(make(at));
                }
                let wake = match (timer.deadline(), deadline) {
                    (Some(due), Some(limit)) => due.min(limit),
                    (Some(due), None) => due,
                    (None, Some(limit)) => limit,
                    // A one-shot timer that already delivered: nothing will ever come.
                    (None, None) => {
                        blocking_point::park_once(wait_site!(crate::WaitReason::Sleep), None);
                        continue;
                    }
                };
                if deadline.is_some_and(|limit| Instant::now() >= limit) {
                    return Err(RecvTimeoutError::Timeout);
                }
                blocking_point::sleep_until(wait_site!(crate::WaitReason::Sleep), wake);
            },
        }
    }

    /// A blocking iterator over messages; it ends when the channel is empty and every sender
    /// is gone.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the messages ready now; it never waits.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// Whether every sender is gone (never, for [`after`] and [`tick`]). Messages may still
    /// be buffered.
    pub fn is_disconnected(&self) -> bool {
        match &self.flavor {
            Flavor::Chan(chan) => chan.is_disconnected(),
            Flavor::Timer(..) => false,
        }
    }

    /// The number of buffered messages (for a timer: 1 if a delivery is due).
    pub fn len(&self) -> usize {
        match &self.flavor {
            Flavor::Chan(chan) => chan.len(),
            Flavor::Timer(timer, _) => {
                usize::from(timer.deadline().is_some_and(|at| Instant::now() >= at))
            }
        }
    }

    /// Whether no message is ready.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer's capacity: `None` for an unbounded channel, `Some(0)` for a rendezvous,
    /// `Some(1)` for a timer.
    pub fn capacity(&self) -> Option<usize> {
        match &self.flavor {
            Flavor::Chan(chan) => chan.capacity(),
            Flavor::Timer(..) => Some(1),
        }
    }

    /// Whether both handles belong to the same channel.
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        match (&self.flavor, &other.flavor) {
            (Flavor::Chan(a), Flavor::Chan(b)) => Arc::ptr_eq(a, b),
            (Flavor::Timer(a, _), Flavor::Timer(b, _)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// A receive: take a message, or queue and park, in one lock acquisition. (Unlike a send,
/// a receive has no separate try first: a green thread's wait cell costs next to nothing,
/// and a receive that must wait, as in every ping-pong, saves a lock round trip.)
#[track_caller]
fn recv_chan<T>(chan: &Channel<T>, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
    loop {
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return match chan.try_recv() {
                Ok((value, claimed)) => {
                    drop(claimed);
                    Ok(value)
                }
                Err(Stuck::Wait) => Err(RecvTimeoutError::Timeout),
                Err(Stuck::Disconnected) => Err(RecvTimeoutError::Disconnected),
            };
        }
        let waiter = Waiter::new();
        let site = wait_site!(crate::WaitReason::Recv {
            channel: chan as *const Channel<T> as usize
        });
        let mut slot = None;
        // SAFETY: `slot` and `waiter` stay in this frame until the wait is final and, if it
        // was aborted, the entry is unregistered below.
        match unsafe { chan.recv_or_queue(&mut slot, &waiter) } {
            Ok(Some((value, claimed))) => {
                drop(claimed);
                return Ok(value);
            }
            Ok(None) => {}
            Err(_) => return Err(RecvTimeoutError::Disconnected),
        }
        match waiter.wait(site, deadline, || chan.unregister(&waiter)) {
            Some(_) => {
                if let Some(value) = slot.take() {
                    return Ok(value);
                }
                // Woken by disconnection with nothing for us: the next turn drains the
                // buffer, if anything is left, and then reports the disconnection.
            }
            None => return Err(RecvTimeoutError::Timeout),
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Channel::<T>::acquire(&self.chan.senders);
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if Channel::<T>::release(&self.chan.senders) {
            self.chan.disconnect(false);
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        let flavor = match &self.flavor {
            Flavor::Chan(chan) => {
                Channel::<T>::acquire(&chan.receivers);
                Flavor::Chan(chan.clone())
            }
            Flavor::Timer(timer, make) => Flavor::Timer(timer.clone(), *make),
        };
        Receiver { flavor }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if let Flavor::Chan(chan) = &self.flavor {
            if Channel::<T>::release(&chan.receivers) {
                chan.disconnect(true);
            }
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

/// The iterator of [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    #[track_caller]
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// The iterator of [`Receiver::try_iter`].
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// The owning iterator of a [`Receiver`].
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    #[track_caller]
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}
