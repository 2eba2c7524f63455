//! The reactor: one edge-triggered epoll instance, the timers, and the protocol that parks a
//! green thread until its fd is ready.
//!
//! # Registration
//!
//! Every fd weft wraps is registered once, when wrapped, for `IN | OUT | RDHUP` edge-triggered,
//! and deregistered before it is closed ([`Registration`]'s `Drop`; owners declare the
//! registration before the fd so it drops first). Its state is a slab [`Entry`] with a
//! readiness sequence and a waiter list per direction (see [`slab`] for why epoll's tag is an
//! index plus a generation, never a pointer).
//!
//! # Waiting without losing a wake-up
//!
//! A green thread doing IO in direction `d`:
//!
//! 1. reads `seq[d]` (the number of readiness edges the poller has recorded),
//! 2. tries the syscall; anything but `EAGAIN` is the answer,
//! 3. locks the entry; if `seq[d]` moved since (1), an edge arrived after the snapshot, so it
//!    unlocks and goes back to (1); otherwise it adds itself to the waiters of `d`, unlocks,
//! 4. parks until `seq[d]` moves (or its deadline passes).
//!
//! The poller, for an event on the entry, locks it, bumps `seq[d]` and drains and unparks the
//! waiters of `d`. Edge-triggered epoll reports every transition to ready *after* the
//! syscall in (2) saw `EAGAIN`, so such an edge either bumps the sequence before (3) checks it
//! or finds the waiter in the list. Because a bump drains the list under the same lock, a
//! waiter that sees its sequence move knows it was removed; only a timed-out waiter removes
//! itself.
//!
//! # Skipping the try that can only fail ([`Registration::io_stream`])
//!
//! A read that returns fewer bytes than asked (and more than 0) on a stream socket emptied
//! its receive queue; a short write filled its send buffer. Trying again before a new edge
//! can only say `EAGAIN`, one wasted syscall per message (tokio skips it the same way). The
//! rule that makes skipping safe: remember the sequence read **before** the short try, and
//! skip the next try only while the sequence still has exactly that value. Any data that
//! arrives after the queue was emptied raises an edge that bumps the sequence (if the poller
//! harvests it while the data is still queued; if someone read the data first, there is
//! nothing to wake for). A snapshot taken later, at the start of the next call, could
//! already include that edge, and skipping on it would wait for an edge that has come and
//! gone: the hang an earlier attempt ran into.
//!
//! Two readinesses persist without new edges, and turn skipping off: end of file and socket
//! errors. A short read can return the last bytes before a FIN whose edge was harvested
//! *before* the read (the next read returns 0 at once, and no edge will ever come again), so
//! once the poller has seen `RDHUP` or `ERR` on an entry it never skips again; and a return
//! of 0 marks nothing, so reading again after the end returns 0 again at once. (`HUP` alone
//! is not counted: an unconnected TCP socket reports it, and weft registers a socket before
//! it connects; a connection's lasting `HUP` always comes with `RDHUP` or `ERR`.)
//!
//! A short read must mean "drained", and only TCP promises that. A TCP read stops short with
//! data still queued in one case, at the mark of urgent data, which the peer announces with
//! `PRI`: seen once, it turns skipping off like `RDHUP` (by the argument above, its edge is
//! either harvested before the short read, or it bumps the sequence after it). A Unix stream
//! read also stops at the boundary of a message that carries descriptors or comes from
//! another sender's credentials, with no announcement, so Unix streams never skip. A short
//! TCP write means the send buffer is full, and the `OUT` edge comes when it drains.
//!
//! What this assumes, and does not check: that a `TcpStream` is plain TCP. One converted
//! from a `std::net::TcpStream` that wraps some other stream socket, or a TCP socket with
//! kernel TLS (`TCP_ULP "tls"`, whose reads stop before a record of another type), or one
//! whose urgent byte is read out of band with `MSG_OOB` before the poller reports it, can
//! see a short read with data still queued; its next read would then wait for the peer's
//! next bytes. Use `weft::io::NonBlocking` for such sockets: it never skips.
//!
//! # Who polls
//!
//! One thread at a time holds the poll token ([`Reactor::poller`]):
//!
//! * a worker with nothing to run takes it as the *blocking* poller and sleeps in
//!   `epoll_wait` with a timeout bounded by the next timer; other idle workers sleep on their
//!   thread token. New work for the blocking poller writes the eventfd (see
//!   [`Reactor::wake`]), and so does a new timer earlier than its timeout;
//! * a busy worker polls with timeout 0 every 61 ticks, and when its queues run dry, so IO
//!   completes even while every worker computes;
//! * the monitor thread polls with timeout 0 when nobody has polled for a while (a worker
//!   stuck in a long computation, or blocked while unwinding).
//!
//! Whoever polls also fires due timers. A non-blocking poll holds the token for one
//! `epoll_wait(0)`; a worker that wants to block waits that out rather than give up the
//! role, so while any worker sleeps, one of them sleeps in `epoll_wait`.
//!
//! # The io_uring backend
//!
//! By default (unless `WEFT_IO=epoll`), stream reads and writes of sticky green threads go on
//! their worker's own ring instead ([`uring`]); such a socket is registered here only when
//! some other wait on it needs readiness (`io::Source` registers late). A worker with a ring
//! sleeps in its ring, and as the blocking poller it polls the epoll fd from there
//! ([`PollerGuard::block_via`]), so both kinds of event wake it.
//!
//! # Plain threads
//!
//! Outside a green thread (and in a green thread that is unwinding from a panic, which must
//! not switch), waiting is `poll(2)` on the fd itself, so the same types work everywhere. An
//! unwinding green thread that waits this way tells the monitor, which diagnoses the
//! deadlock that follows if the wait strands its worker's other green threads (see
//! `scheduler::unwinding`).

#[cfg(feature = "hooks")]
pub(crate) mod foreign;
pub(crate) mod slab;
pub(crate) mod timer;
pub(crate) mod uring;

use std::cell::UnsafeCell;
use std::io;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::*};
use std::sync::OnceLock;

use crate::runtime::os_lock::{OsMutex, OsMutexGuard};
use std::time::{Duration, Instant};

use crate::runtime::blocking_point::{self, Ended, OnInterrupt, Progress};
use crate::runtime::park::Unparker;
use crate::runtime::scheduler::context;
use crate::sys;
pub(crate) use slab::Direction;
use slab::{Entry, Slab};
use timer::{TimerKey, Timers};

/// epoll tag of the eventfd (no slab index reaches `u32::MAX` in the low half with this
/// generation, because slab indices stay below 2^24).
const WAKER: u64 = u64::MAX;
/// Events harvested per `epoll_wait`.
const EVENTS: usize = 1024;

/// Poll-token states.
const FREE: u8 = 0;
const POLLING: u8 = 1;
const BLOCKING: u8 = 2;

pub(crate) struct Reactor {
    epoll: OwnedFd,
    waker: OwnedFd,
    /// True while an eventfd signal is written and not yet drained: further wakes are free.
    wake_pending: AtomicBool,
    slab: Slab,
    timers: OsMutex<Timers>,
    /// The poll token: FREE, POLLING (a timeout-0 poll) or BLOCKING (a worker asleep in it).
    poller: AtomicU8,
    /// Used only by the token holder.
    events: UnsafeCell<Vec<libc::epoll_event>>,
    due: UnsafeCell<Vec<Unparker>>,
    /// Completed polls, for the monitor's "has anyone polled lately" check.
    polls: AtomicU64,
}

// SAFETY: the `UnsafeCell` fields are touched only by the holder of the poll token, which
// is acquired with Acquire and released with Release (see `poll_now`, `PollerGuard`), so
// successive holders are ordered; every other field is Sync on its own.
unsafe impl Sync for Reactor {}

static REACTOR: OnceLock<Reactor> = OnceLock::new();
static INIT: OsMutex<()> = OsMutex::new(());

/// The reactor, created on first use. Creation needs two fds (epoll and eventfd), so it can
/// fail with the process's fd limit reached.
pub(crate) fn get() -> io::Result<&'static Reactor> {
    if let Some(reactor) = REACTOR.get() {
        return Ok(reactor);
    }
    let _init = INIT.lock();
    if let Some(reactor) = REACTOR.get() {
        return Ok(reactor);
    }
    let mut fresh = Some(Reactor::new()?);
    Ok(REACTOR.get_or_init(|| fresh.take().expect("initialised once")))
}

/// The reactor if something has created it; never creates it.
pub(crate) fn try_get() -> Option<&'static Reactor> {
    REACTOR.get()
}

/// Whether a wait on this thread should park a green thread (true) or block the OS thread.
fn waits_green() -> bool {
    !context::current_task().is_null() && !std::thread::panicking()
}

impl Reactor {
    fn new() -> io::Result<Reactor> {
        let epoll = sys::fdio::epoll_create()?;
        let waker = sys::fdio::eventfd()?;
        // Level-triggered: the eventfd stays readable until the poller drains it, so a wake
        // written just before the poller blocks is still seen.
        sys::fdio::epoll_add(epoll.as_fd(), raw(&waker), libc::EPOLLIN as u32, WAKER)?;
        Ok(Reactor {
            epoll,
            waker,
            wake_pending: AtomicBool::new(false),
            slab: Slab::new(),
            timers: OsMutex::new(Timers::new()),
            poller: AtomicU8::new(FREE),
            events: UnsafeCell::new(vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS]),
            due: UnsafeCell::new(Vec::new()),
            polls: AtomicU64::new(0),
        })
    }

    fn timers(&self) -> OsMutexGuard<'_, Timers> {
        // Heap and slot updates leave the structure consistent at every await-free step.
        self.timers.lock()
    }

    /// Interrupts the blocking poller, if any. Cheap when a signal is already pending.
    pub(crate) fn wake(&self) {
        // AcqRel: a wake that finds `true` relies on the pending signal (or on the poller
        // being awake between its drain and its reset, after which it re-checks its queues).
        if !self.wake_pending.swap(true, AcqRel) {
            sys::fdio::eventfd_signal(self.waker.as_fd());
        }
    }

    /// A timeout-0 poll, if nobody else is polling. Returns the number of green threads it
    /// woke, or `None` if the token was taken.
    pub(crate) fn poll_now(&self) -> Option<usize> {
        // Acquire/Release on the token order the uses of `events` and `due` by its holders.
        if self
            .poller
            .compare_exchange(FREE, POLLING, Acquire, Relaxed)
            .is_err()
        {
            return None;
        }
        // SAFETY: we hold the token.
        let woken = unsafe { self.poll_locked(false) };
        self.poller.store(FREE, Release);
        Some(woken)
    }

    /// For a worker about to sleep: the blocking-poller role, or `None` if another worker
    /// already has it. A timeout-0 poll in progress is waited out (it lasts one syscall).
    pub(crate) fn try_become_poller(&'static self) -> Option<PollerGuard> {
        loop {
            match self
                .poller
                .compare_exchange(FREE, BLOCKING, Acquire, Relaxed)
            {
                Ok(_) => return Some(PollerGuard { reactor: self }),
                Err(BLOCKING) => return None,
                Err(_) => std::thread::yield_now(),
            }
        }
    }

    /// Whether a worker is (about to be) asleep in `epoll_wait`.
    pub(crate) fn has_blocking_poller(&self) -> bool {
        self.poller.load(Relaxed) == BLOCKING
    }

    /// Completed polls so far (for the monitor).
    pub(crate) fn polls(&self) -> u64 {
        self.polls.load(Relaxed)
    }

    /// One `epoll_wait`, then delivery of its events and of due timers.
    ///
    /// # Safety
    /// The caller holds the poll token.
    unsafe fn poll_locked(&self, blocking: bool) -> usize {
        // SAFETY: the caller's contract.
        unsafe { self.poll_locked_via(blocking, None) }
    }

    /// [`poll_locked`](Self::poll_locked); a blocking poll with `sleep` sleeps through it
    /// (given the timeout of the next timer) and then harvests with a timeout-0 `epoll_wait`.
    /// A worker with an io_uring ring sleeps in its ring this way, with a poll on the epoll
    /// fd (see `uring`).
    ///
    /// # Safety
    /// The caller holds the poll token.
    unsafe fn poll_locked_via(
        &self,
        blocking: bool,
        sleep: Option<&dyn Fn(Option<Duration>)>,
    ) -> usize {
        let timeout = if blocking {
            let mut timers = self.timers();
            let next = timers.next_deadline();
            // Under the timers lock, so an earlier timer armed from now on wakes us.
            timers.blocked_until = Some(next);
            next.map(|deadline| deadline.saturating_duration_since(Instant::now()))
        } else {
            Some(Duration::ZERO)
        };
        // SAFETY: the token holder has exclusive use of the buffers (caller's contract).
        let (events, due) = unsafe { (&mut *self.events.get(), &mut *self.due.get()) };
        // Errors other than EINTR (which reads as 0) cannot happen with a valid epoll fd and
        // buffer; treating one as "no events" keeps the worker running.
        let timeout = match sleep {
            Some(sleep) if blocking => {
                sleep(timeout);
                Some(Duration::ZERO)
            }
            _ => timeout,
        };
        let n = sys::fdio::epoll_wait(self.epoll.as_fd(), events, timeout).unwrap_or(0);
        if blocking {
            self.timers().blocked_until = None;
        }
        let mut woken = 0;
        for event in &events[..n] {
            let (flags, data) = (event.events, event.u64);
            if data == WAKER {
                sys::fdio::eventfd_drain(self.waker.as_fd());
                // After the drain: a wake that lands between the two finds `true` and skips
                // its signal, which is fine because this thread is awake and re-checks.
                self.wake_pending.store(false, Release);
                continue;
            }
            let read = flags
                & (libc::EPOLLIN
                    | libc::EPOLLPRI
                    | libc::EPOLLRDHUP
                    | libc::EPOLLHUP
                    | libc::EPOLLERR) as u32
                != 0;
            let write = flags & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0;
            // End of file or an error: readiness that persists without further edges; or
            // urgent data, at whose mark a TCP read stops short with data still queued. Not
            // HUP alone: a TCP socket reports it before `connect` (registration comes
            // first), and every lasting HUP of a connection comes with RDHUP or ERR.
            let closed = flags & (libc::EPOLLRDHUP | libc::EPOLLERR | libc::EPOLLPRI) as u32 != 0;
            if let Some(entry) = self.slab.get(data as u32) {
                woken += entry.deliver((data >> 32) as u32, read, write, closed);
            }
        }
        self.timers().take_expired(Instant::now(), due);
        woken += due.len();
        for waiter in due.drain(..) {
            waiter.unpark();
        }
        // Relaxed: a progress counter read by the monitor as a heuristic.
        self.polls.fetch_add(1, Relaxed);
        woken
    }

    /// Arms a timer that unparks `waiter` at `deadline`.
    pub(crate) fn arm_timer(&self, deadline: Instant, waiter: Unparker) -> TimerKey {
        let (key, wake) = self.timers().insert(deadline, waiter);
        if wake {
            self.wake();
        }
        key
    }

    pub(crate) fn cancel_timer(&self, key: TimerKey) {
        self.timers().cancel(key);
    }
}

/// The blocking-poller role; released on drop.
pub(crate) struct PollerGuard {
    reactor: &'static Reactor,
}

impl PollerGuard {
    /// Sleeps in `epoll_wait` until an fd event, a due timer or a [`Reactor::wake`].
    pub(crate) fn block(&self) -> usize {
        // SAFETY: the guard is the token.
        unsafe { self.reactor.poll_locked(true) }
    }

    /// [`block`](Self::block), sleeping through `sleep(timeout)` instead of in `epoll_wait`
    /// (a worker with an io_uring ring sleeps in its ring, which polls the epoll fd).
    pub(crate) fn block_via(&self, sleep: &dyn Fn(Option<Duration>)) -> usize {
        // SAFETY: the guard is the token.
        unsafe { self.reactor.poll_locked_via(true, Some(sleep)) }
    }
}

impl Drop for PollerGuard {
    fn drop(&mut self) {
        self.reactor.poller.store(FREE, Release);
    }
}

fn raw(fd: &OwnedFd) -> RawFd {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

/// An fd's registration with the reactor, and the waiting protocol of the module docs.
pub(crate) struct Registration {
    reactor: &'static Reactor,
    index: u32,
    fd: RawFd,
    /// Set once the fd was taken out of epoll early (the hooks' `close`, which must not
    /// leave an `epoll_del` for later: by then the number may name another file).
    removed: AtomicBool,
    /// Made by [`Registration::new`] for an fd weft owns (see [`foreign`]).
    #[cfg(feature = "hooks")]
    weft_owned: bool,
}

impl Registration {
    /// Registers `fd` (which must already be non-blocking) for edge-triggered readiness.
    /// The caller must drop the registration before closing `fd`. With the `hooks` feature,
    /// marks the fd as weft's own (see [`foreign`]), so the hooks pass its calls through.
    pub(crate) fn new(fd: RawFd) -> io::Result<Registration> {
        // A registration the hooks made for this fd (a std socket that waited in a green
        // thread before being handed to weft) goes first, or epoll would say EEXIST.
        #[cfg(feature = "hooks")]
        foreign::forget(fd);
        #[allow(unused_mut)] // only the hooks build marks ownership
        let mut registration = Registration::new_foreign(fd)?;
        #[cfg(feature = "hooks")]
        {
            foreign::set_weft_owned(fd, true);
            registration.weft_owned = true;
        }
        Ok(registration)
    }

    /// Registers an fd weft does not own (one the hooks wait on, left in blocking mode).
    pub(crate) fn new_foreign(fd: RawFd) -> io::Result<Registration> {
        let reactor = get()?;
        let (index, generation) = reactor.slab.allocate()?;
        let data = (u64::from(generation) << 32) | u64::from(index);
        // `EPOLLPRI` (TCP urgent data) only to turn skipping off; see the module docs.
        let interest =
            (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLPRI | libc::EPOLLET)
                as u32;
        if let Err(err) = sys::fdio::epoll_add(reactor.epoll.as_fd(), fd, interest, data) {
            reactor.slab.release(index);
            return Err(if err.raw_os_error() == Some(libc::EPERM) {
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!(
                        "weft: fd {fd} does not support readiness polling ({err}); regular \
                         files and directories are always ready, so use blocking IO for them"
                    ),
                )
            } else {
                err
            });
        }
        Ok(Registration {
            reactor,
            index,
            fd,
            removed: AtomicBool::new(false),
            #[cfg(feature = "hooks")]
            weft_owned: false,
        })
    }

    fn entry(&self) -> &Entry {
        self.reactor
            .slab
            .get(self.index)
            .expect("a live registration's entry exists")
    }

    /// Runs `op` until it returns something other than `WouldBlock`, waiting for readiness in
    /// `dir` between tries. `timeout` is asked for only when the first try would block; when
    /// it passes, the result is an `ErrorKind::TimedOut` error saying `what` timed out.
    #[track_caller]
    #[inline]
    pub(crate) fn io<R>(
        &self,
        dir: Direction,
        timeout: impl FnOnce() -> io::Result<Option<Duration>>,
        what: &'static str,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let wait = self.waiter(dir, timeout, what, std::panic::Location::caller());
        self.entry().io(dir, wait, op)
    }

    /// [`io`](Self::io) for a stream read or write of `len` bytes, which skips the try that
    /// could only say `EAGAIN` after a short transfer ([`Entry::io_stream`]).
    #[track_caller]
    #[inline]
    pub(crate) fn io_stream(
        &self,
        dir: Direction,
        timeout: impl FnOnce() -> io::Result<Option<Duration>>,
        what: &'static str,
        len: Option<usize>,
        op: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        let wait = self.waiter(dir, timeout, what, std::panic::Location::caller());
        self.entry().io_stream(dir, len, wait, op)
    }

    /// The wait between tries of [`io`](Self::io): asks for `timeout` at its first call (the
    /// first try would have blocked), then waits with the deadline it gives.
    fn waiter<'a>(
        &'a self,
        dir: Direction,
        timeout: impl FnOnce() -> io::Result<Option<Duration>> + 'a,
        what: &'static str,
        caller: &'static std::panic::Location<'static>,
    ) -> impl FnMut(u32) -> io::Result<()> + 'a {
        let mut timeout = Some(timeout);
        let mut deadline = None;
        move |seen| {
            if let Some(timeout) = timeout.take() {
                deadline = timeout()?.map(|t| Instant::now() + t);
            }
            if self.wait_at(dir, seen, deadline, what, caller) {
                Ok(())
            } else {
                Err(timed_out(what))
            }
        }
    }

    /// The readiness sequence of `dir`, to pass to [`wait`](Self::wait) after a try.
    pub(crate) fn seq(&self, dir: Direction) -> u32 {
        self.entry().seq(dir)
    }

    /// Waits until `dir` may have become ready since the sequence was `seen`. Returns false
    /// if `deadline` passed first. May return true spuriously; callers retry their syscall.
    #[track_caller]
    pub(crate) fn wait(&self, dir: Direction, seen: u32, deadline: Option<Instant>) -> bool {
        let what = match dir {
            Direction::Read => "read",
            Direction::Write => "write",
        };
        self.wait_for(dir, seen, deadline, what)
    }

    /// [`wait`](Self::wait), saying what the wait is for (`"accept"`, `"connect"`, `"wait"`
    /// for a child, or a read or write) so that dumps can tell. Runs through the one
    /// blocking point: a green thread queues in the fd's waiter list and parks; a plain
    /// thread (or a green thread that may not switch) polls the fd.
    #[track_caller]
    pub(crate) fn wait_for(
        &self,
        dir: Direction,
        seen: u32,
        deadline: Option<Instant>,
        what: &'static str,
    ) -> bool {
        self.wait_at(dir, seen, deadline, what, std::panic::Location::caller())
    }

    /// [`wait_for`](Self::wait_for), with the user's call site passed in (the waits of
    /// [`io`](Self::io) come through a closure, which cannot be `#[track_caller]`).
    fn wait_at(
        &self,
        dir: Direction,
        seen: u32,
        deadline: Option<Instant>,
        what: &'static str,
        caller: &'static std::panic::Location<'static>,
    ) -> bool {
        let fd = self.fd;
        let reason = match (what, dir) {
            ("accept", _) => crate::runtime::WaitReason::Accept { fd },
            ("connect", _) => crate::runtime::WaitReason::Connect { fd },
            ("wait", _) => crate::runtime::WaitReason::ChildExit { fd },
            (_, Direction::Read) => crate::runtime::WaitReason::Read { fd },
            (_, Direction::Write) => crate::runtime::WaitReason::Write { fd },
        };
        let site = blocking_point::Site::new(reason, caller);
        let ended = if waits_green() {
            let entry = self.entry();
            let Some(key) = entry.enqueue(dir, seen, Unparker::current) else {
                return true;
            };
            let mut wait = Readiness {
                entry,
                dir,
                seen,
                key,
            };
            blocking_point::block(&mut wait, site, deadline, OnInterrupt::Unwind)
        } else {
            let events = match dir {
                Direction::Read => libc::POLLIN | libc::POLLPRI | libc::POLLRDHUP,
                Direction::Write => libc::POLLOUT,
            };
            let mut wait = PollFd {
                fd,
                events,
                ready: false,
            };
            blocking_point::block(&mut wait, site, deadline, OnInterrupt::Unwind)
        };
        ended == Ended::Done(())
    }
}

/// A green thread's wait for readiness: queued in the entry's waiter list, which holds a
/// counted `Unparker`, never the waiting stack; so withdrawing always succeeds.
struct Readiness<'a> {
    entry: &'a Entry,
    dir: Direction,
    seen: u32,
    key: u64,
}

impl blocking_point::Wait for Readiness<'_> {
    type Output = ();

    fn poll(&mut self) -> Progress<()> {
        // Changed: the poller drained us from the list (and will not touch the key again).
        if self.entry.moved(self.dir, self.seen) {
            Progress::Done(())
        } else {
            Progress::Waiting
        }
    }

    fn withdraw(&mut self) -> bool {
        self.entry.lock().remove(self.dir, self.key);
        true
    }
}

/// The plain-thread wait: `poll(2)` on the fd, bounded by the blocking point's deadline.
struct PollFd {
    fd: RawFd,
    events: libc::c_short,
    ready: bool,
}

impl blocking_point::Wait for PollFd {
    type Output = ();

    fn poll(&mut self) -> Progress<()> {
        if self.ready {
            Progress::Done(())
        } else {
            Progress::Waiting
        }
    }

    fn withdraw(&mut self) -> bool {
        true
    }

    fn block_thread(&mut self, until: Option<Instant>) {
        let timeout = until.map(|until| until.saturating_duration_since(Instant::now()));
        // An error here (EBADF cannot happen on a live registration; ENOMEM) is reported as
        // "maybe ready": the caller's next syscall surfaces the real state.
        self.ready = sys::fdio::poll_fd(self.fd, self.events, timeout).unwrap_or(true);
    }
}

impl Registration {
    /// Takes the fd out of epoll now (the hooks' `close`); the drop then skips it.
    #[cfg(feature = "hooks")]
    pub(crate) fn remove_now(&self) {
        // Relaxed: the caller serialises this with the drop (its own lock, then the Arc).
        if !self.removed.swap(true, Relaxed) {
            let _ = sys::fdio::epoll_del(self.reactor.epoll.as_fd(), self.fd);
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Before the fd closes (owners declare the registration first). An error means the fd
        // is already gone from the set, which is what we want anyway.
        if !self.removed.load(Relaxed) {
            let _ = sys::fdio::epoll_del(self.reactor.epoll.as_fd(), self.fd);
        }
        // The fd is no longer weft's (into_std, or about to close): hooks treat it afresh.
        #[cfg(feature = "hooks")]
        if self.weft_owned {
            foreign::set_weft_owned(self.fd, false);
        }
        self.reactor.slab.release(self.index);
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("fd", &self.fd)
            .field("index", &self.index)
            .finish()
    }
}

/// The error every timed-out wait returns: `TimedOut`, never `WouldBlock`.
pub(crate) fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("weft: {what} timed out"))
}
