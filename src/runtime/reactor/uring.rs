//! The io_uring backend (the default; `WEFT_IO=epoll` turns it off): one ring per worker, on
//! which the worker's own green threads receive and send on stream sockets with their own
//! buffers.
//!
//! # Why one ring per worker
//!
//! A started (sticky) green thread never leaves its worker, so everything it submits is
//! submitted from that worker's OS thread and completes on that worker's ring. The ring is
//! therefore set up *single-issuer* with the kernel's task work *deferred* to the worker's own
//! `io_uring_enter` (`IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN`), the shape
//! that measured cheapest on this kernel (the io_uring floor in `benches/peers`: 0.90–0.97×
//! the epoll floor's CPU per request, where a plain ring cost 1.05–1.09×). Nothing about a
//! ring is shared: its queues and every operation record are touched by one OS thread only,
//! so the ring needs no atomics and no locks.
//!
//! # An operation's life
//!
//! A read on a `TcpStream` or `UnixStream` in a sticky green thread ([`recv`]):
//!
//! 1. tries `recv` at once, unless the last read on the socket came back short (the receive
//!    queue was drained then, and a try would most likely say `EAGAIN`); a result other than
//!    `EAGAIN` is the answer;
//! 2. otherwise puts a `RECV` for the caller's buffer on the worker's submission queue, with
//!    the address of an [`Op`] record on its own stack as the `user_data`, and parks through
//!    the blocking point;
//! 3. the worker submits everything queued and reaps completions in one `io_uring_enter` when
//!    its run queues are empty, every 61 ticks while busy, in each round of its search spin,
//!    and when it sleeps (in that same call: a worker with a ring sleeps in its ring);
//! 4. a completion writes its result into the `Op` and wakes the green thread (a push on its
//!    worker's own queue: same thread, no wake-up call).
//!
//! A write goes to the ring at once (see [`send`] for why it does not try `send` first).
//!
//! # The claimed-wait rule, for a buffer the kernel holds
//!
//! While an operation is in flight the kernel holds a pointer into the waiting stack (the
//! buffer, and the `Op` through `user_data`). The blocking point's rule (an interrupt unwinds
//! a wait only once nothing else can reach its memory) therefore means: **the frame never
//! returns before the operation's completion is reaped.** `poll` reports `Done` only with the
//! completion in hand. `withdraw` (a cancel, a passed deadline or `SO_RCVTIMEO`) submits
//! `ASYNC_CANCEL` for the operation and then reaps, on this same thread, until the operation's
//! own completion has arrived. If that completion is `-ECANCELED`, nothing was transferred and
//! the wait is withdrawn; if the operation finished first, bytes were received or sent, the
//! wait is *committed* and the caller gets them (the interrupt takes effect at its next
//! blocking point). A cancel therefore never loses a received byte, and never lets the kernel
//! write into a dead frame.
//!
//! # Sleeping
//!
//! A worker with a ring sleeps in `io_uring_enter`, so that its own completions wake it:
//! - its wake-up eventfd has a multishot `POLL_ADD` on the ring; [`super::super::scheduler`]'s
//!   `Worker::wake` writes the eventfd;
//! - if the worker is also the reactor's blocking poller (epoll still serves listeners,
//!   connects, other fds and plain threads, and its eventfd carries the reactor's wakes), a
//!   one-shot `POLL_ADD` on the epoll fd wakes it for epoll events, and the sleep is bounded
//!   by the next timer; the worker then harvests epoll with a timeout-0 wait.
//!
//! # Where it is not used
//!
//! Plain threads, migratable green threads (they may resume on another worker, whose ring is
//! not the one their operation is on), a green thread that is unwinding (it may not switch),
//! sockets in std's non-blocking mode, vectored IO, and every other kind of wait: those use
//! the reactor's readiness path. If a worker's ring cannot be set up (an old kernel, seccomp,
//! `kernel.io_uring_disabled`), that worker uses epoll; `stats().io_backend` says what runs.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use crate::runtime::blocking_point::{self, OnInterrupt, Progress, Site};
use crate::runtime::park::Parker;
use crate::runtime::scheduler::context;
use crate::sys;

/// `user_data` of the wake-up eventfd's poll.
const WAKE: u64 = 1;
/// `user_data` of the poll on the reactor's epoll fd.
const EPOLL: u64 = 2;
/// `user_data` of `ASYNC_CANCEL` requests (their own completions carry nothing we need).
const CANCEL: u64 = 3;

/// Submission queue entries per ring; the completion queue is larger, since every green
/// thread of the worker may have one operation in flight.
const SQ_ENTRIES: u32 = 256;
const CQ_ENTRIES: u32 = 4096;

/// Which backend the process asked for (`WEFT_IO`), and which runs.
const UNDECIDED: u8 = 0;
const EPOLL_ONLY: u8 = 1;
/// The default: rings where they can be set up, epoll silently elsewhere.
const URING: u8 = 2;
/// `WEFT_IO=uring`: as `URING`, but a ring that cannot be set up is reported on stderr.
const URING_ASKED: u8 = 3;
/// A ring could not be set up: that worker (and so far every one that tried) uses epoll.
const URING_FAILED: u8 = 4;
static BACKEND: AtomicU8 = AtomicU8::new(UNDECIDED);

/// Whether the workers should set up rings: yes unless `WEFT_IO=epoll` (an unset or empty
/// `WEFT_IO` means the default, the ring; an invalid value is reported once on stderr and
/// means the default too).
pub(crate) fn wanted() -> bool {
    // Relaxed: a value computed the same way by every thread; a race computes it twice.
    match BACKEND.load(Relaxed) {
        UNDECIDED => {}
        state => return state != EPOLL_ONLY,
    }
    let state = match std::env::var("WEFT_IO").as_deref() {
        Ok("uring") | Ok("io_uring") => URING_ASKED,
        Ok("epoll") => EPOLL_ONLY,
        Ok("") | Err(_) => URING,
        Ok(other) => {
            sys::write_stderr_raw(
                format!("weft: WEFT_IO={other:?} is not `epoll` or `uring`; using the default (uring)\n")
                    .as_bytes(),
            );
            URING
        }
    };
    let _ = BACKEND.compare_exchange(UNDECIDED, state, Relaxed, Relaxed);
    state != EPOLL_ONLY
}

/// What `stats().io_backend` reports.
pub(crate) fn backend_name() -> &'static str {
    match BACKEND.load(Relaxed) {
        URING | URING_ASKED => "io_uring",
        URING_FAILED => "epoll (io_uring could not be set up)",
        _ => "epoll",
    }
}

/// An operation in flight: lives on the waiting green thread's stack, and its address is the
/// `user_data` of its submission.
struct Op {
    /// The completion's result, once reaped.
    result: Cell<Option<i32>>,
    /// The waiting green thread (borrowed: it cannot stop waiting before the completion).
    parker: Parker,
    /// Set while the owner itself reaps for its cancel: the completion must not wake it.
    withdrawing: Cell<bool>,
}

/// One worker's ring. Touched only by its worker's OS thread (see the module docs).
pub(crate) struct Ring {
    ring: RefCell<IoUring>,
    /// The worker's wake-up eventfd (owned by the shared `Worker`, which outlives this).
    wake_fd: RawFd,
    wake_armed: Cell<bool>,
    /// Whether a one-shot poll on the reactor's epoll fd is armed on this ring (armed by the
    /// blocking poller's sleep; cleared by its completion).
    epoll_armed: Cell<bool>,
    /// The worker's count of waits through the ring, for `stats()` (written only here).
    waits: &'static AtomicU64,
}

impl Ring {
    /// Sets up the calling worker's ring, or says why it cannot be (the worker then uses
    /// epoll, and `stats()` says so).
    pub(crate) fn new(wake_fd: BorrowedFd<'_>, waits: &'static AtomicU64) -> Option<Ring> {
        let built = IoUring::builder()
            // A forked child must not reach the parent's queues through the shared mapping
            // (it would touch nothing and fault, rather than corrupt the parent's ring).
            .dontfork()
            .setup_single_issuer()
            .setup_coop_taskrun()
            .setup_taskrun_flag()
            .setup_defer_taskrun()
            .setup_cqsize(CQ_ENTRIES)
            .build(SQ_ENTRIES);
        match built {
            Ok(ring) => Some(Ring {
                ring: RefCell::new(ring),
                wake_fd: wake_fd.as_raw_fd(),
                wake_armed: Cell::new(false),
                epoll_armed: Cell::new(false),
                waits,
            }),
            Err(err) => {
                // Said only when asked for by name: by default the fallback is silent.
                if BACKEND.swap(URING_FAILED, Relaxed) == URING_ASKED {
                    sys::write_stderr_raw(
                        format!("weft: WEFT_IO=uring, but io_uring cannot be set up ({err}); using epoll\n")
                            .as_bytes(),
                    );
                }
                None
            }
        }
    }

    /// Queues `entry`, making room by submitting if the submission queue is full.
    fn push(&self, entry: &squeue::Entry) {
        loop {
            {
                let mut ring = self.ring.borrow_mut();
                // SAFETY: every entry we queue points at memory that stays valid until its
                // completion is reaped (an `Op` and a buffer on a waiting frame, or nothing).
                if unsafe { ring.submission().push(entry) }.is_ok() {
                    return;
                }
            }
            // Full: hand the queue to the kernel (it copies the entries), without waiting, and
            // take the completions off theirs, so that the kernel has room to post more.
            let _ = self.enter(0, None);
            self.reap();
        }
    }

    /// Whether an `io_uring_enter` has anything to do: entries to submit, completions whose
    /// task work the kernel deferred to us (it raises `IORING_SQ_TASKRUN` when it queues
    /// some: the ring is set up with `IORING_SETUP_TASKRUN_FLAG`), or completions that
    /// overflowed the queue. Memory loads only, so the worker loop can ask it often.
    #[inline]
    fn needs_enter(&self) -> bool {
        let mut ring = self.ring.borrow_mut();
        let sq = ring.submission();
        !sq.is_empty() || sq.taskrun() || sq.cq_overflow()
    }

    /// Arms a one-shot poll on the reactor's epoll fd, unless one is armed: for the blocking
    /// poller's sleep, which must wake for epoll events. Arming checks the readiness that is
    /// already there, so an event that arrived before the sleep is not missed. Only the
    /// blocking poller arms it: a multishot poll on every ring would wake every sleeping
    /// worker for every epoll event (each reactor wake, each accept).
    fn arm_epoll(&self) {
        if self.epoll_armed.get() {
            return;
        }
        let Some(reactor) = super::try_get() else {
            return;
        };
        let poll = opcode::PollAdd::new(types::Fd(super::raw(&reactor.epoll)), libc::POLLIN as u32)
            .build()
            .user_data(EPOLL);
        self.push(&poll);
        self.epoll_armed.set(true);
    }

    /// One `io_uring_enter` that submits what is queued, runs the deferred completions and
    /// waits for `min` of them (at most until `timeout`).
    fn enter(&self, min: u32, timeout: Option<Duration>) -> io::Result<usize> {
        let ring = self.ring.borrow();
        let submitter = ring.submitter();
        let result = match timeout {
            Some(timeout) if min > 0 => {
                let ts = types::Timespec::from(timeout);
                let args = types::SubmitArgs::new().timespec(&ts);
                submitter.submit_with_args(min as usize, &args)
            }
            _ => {
                let queued = ring_sq_len(&ring);
                // SAFETY: a plain enter with no argument; GETEVENTS runs the deferred work
                // even when not waiting.
                unsafe {
                    submitter.enter::<libc::sigset_t>(
                        queued,
                        min,
                        io_uring::EnterFlags::GETEVENTS.bits(),
                        None,
                    )
                }
            }
        };
        match result {
            Ok(n) => Ok(n),
            // A timeout or a signal: the caller reaps whatever is there.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME) | Some(libc::EINTR)) => Ok(0),
            // EBUSY: the completion queue is full (overflow); EAGAIN: the kernel could not
            // allocate a request now; EBADR: a completion was dropped for want of memory
            // (reported once). Reaping makes room; the caller tries again.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EBUSY) | Some(libc::EAGAIN) | Some(libc::EBADR)
                ) =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// Submits and reaps without waiting; returns the green threads woken. For the worker
    /// loop: when its queues are empty, every 61 ticks, and in each search round.
    pub(crate) fn turn(&self) -> usize {
        if self.needs_enter() {
            let _ = self.enter(0, None);
        }
        self.reap()
    }

    /// Sleeps in the ring until a completion, a wake-up of the worker, or (as the reactor's
    /// blocking poller, `poller`) an epoll event or `timeout`.
    pub(crate) fn sleep(&self, poller: bool, timeout: Option<Duration>) {
        if !self.wake_armed.get() {
            let poll = opcode::PollAdd::new(types::Fd(self.wake_fd), libc::POLLIN as u32)
                .multi(true)
                .build()
                .user_data(WAKE);
            self.push(&poll);
            self.wake_armed.set(true);
        }
        if poller {
            self.arm_epoll();
        }
        // Completions already reaped would not wake us: only sleep with the queue empty.
        if self.reap() > 0 {
            return;
        }
        let _ = self.enter(1, timeout.filter(|_| poller));
        self.reap();
    }

    /// Takes every completion off the queue and hands each to its owner. Returns the green
    /// threads woken.
    fn reap(&self) -> usize {
        let mut woken = 0;
        loop {
            // Copied out in batches, so that no borrow of the ring is held while waking.
            let mut batch = [(0u64, 0i32, 0u32); 32];
            let mut n = 0;
            {
                let mut ring = self.ring.borrow_mut();
                for cqe in ring.completion() {
                    batch[n] = (cqe.user_data(), cqe.result(), cqe.flags());
                    n += 1;
                    if n == batch.len() {
                        break;
                    }
                }
            }
            for &(user_data, result, flags) in &batch[..n] {
                woken += self.complete(user_data, result, flags);
            }
            if n < batch.len() {
                return woken;
            }
        }
    }

    fn complete(&self, user_data: u64, result: i32, flags: u32) -> usize {
        match user_data {
            WAKE => {
                // SAFETY: the worker's eventfd, open for the life of the process.
                sys::fdio::eventfd_drain(unsafe { BorrowedFd::borrow_raw(self.wake_fd) });
                if !cqueue::more(flags) {
                    self.wake_armed.set(false);
                }
                0
            }
            EPOLL => {
                self.epoll_armed.set(false);
                0
            }
            CANCEL => 0,
            op => {
                // SAFETY: `op` is the address of an `Op` whose owner does not leave its
                // frame before this completion is reaped (module docs), and it is reaped
                // exactly once, here, on the owner's OS thread.
                let op = unsafe { &*(op as *const Op) };
                op.result.set(Some(result));
                if op.withdrawing.get() {
                    return 0;
                }
                // SAFETY: the owner is still parked (it stops waiting only once it sees the
                // result, and it cannot run before we return to the worker loop: same thread).
                unsafe { op.parker.wake() }.schedule();
                1
            }
        }
    }
}

fn ring_sq_len(ring: &IoUring) -> u32 {
    // SAFETY: reading the shared submission queue's length; we are its only user.
    unsafe { ring.submission_shared().len() as u32 }
}

/// The calling green thread's ring, if it may use one: a sticky green thread, not unwinding,
/// on a worker that has a ring.
#[inline]
pub(crate) fn current() -> Option<&'static Ring> {
    let local = context::local()?;
    let ring = local.ring.as_ref()?;
    let task = local.current.get();
    // SAFETY: a non-null current task is alive while it runs (its worker holds it).
    if task.is_null() || unsafe { (*task).migratable } || std::thread::panicking() {
        return None;
    }
    Some(ring)
}

/// A wait for one operation's completion, as the blocking point runs it.
struct Completion<'a> {
    ring: &'a Ring,
    op: &'a Op,
}

impl blocking_point::Wait for Completion<'_> {
    type Output = i32;

    /// A wait that may not switch (the timer of a timed wait cannot be armed) blocks in the
    /// ring itself: only this thread can reap the completion.
    fn block_thread(&mut self, until: Option<Instant>) {
        let timeout = until.map(|until| until.saturating_duration_since(Instant::now()));
        let _ = self.ring.enter(1, timeout.or(Some(Duration::from_secs(3600))));
        self.ring.reap();
    }

    fn poll(&mut self) -> Progress<i32> {
        match self.op.result.get() {
            Some(result) => Progress::Done(result),
            None => Progress::Waiting,
        }
    }

    fn withdraw(&mut self) -> bool {
        let op = self.op;
        op.withdrawing.set(true);
        let cancel = opcode::AsyncCancel::new(op as *const Op as u64)
            .build()
            .user_data(CANCEL);
        self.ring.push(&cancel);
        // Reap, on this thread, until the operation's own completion is here: only then does
        // the kernel hold no pointer into this frame.
        while op.result.get().is_none() {
            if self.ring.enter(1, None).is_err() {
                // Cannot happen with a live ring; spinning on it would hang, so re-reap and
                // let the loop try again after a pause.
                std::thread::yield_now();
            }
            self.ring.reap();
        }
        // Withdrawn only if nothing was transferred; otherwise the result is the caller's.
        // A cancelled operation ends with ECANCELED; one the kernel had handed to its worker
        // threads ends with EINTR, or with EAGAIN if the socket's own timeout ran out there.
        matches!(
            op.result.get(),
            Some(r) if r == -libc::ECANCELED || r == -libc::EINTR || r == -libc::EAGAIN
        )
    }
}

/// Submits `entry` (whose `user_data` this sets) and parks until its completion, or until
/// `deadline` (then `Err(TimedOut)` if the operation could be cancelled before it finished).
/// Interrupts (a cancel, a `deadline` boundary) unwind the same way, after the cancel.
fn submit_and_wait(
    ring: &Ring,
    entry: squeue::Entry,
    site: Site,
    deadline: Option<Instant>,
    on_interrupt: OnInterrupt,
) -> Option<i32> {
    let op = Op {
        result: Cell::new(None),
        parker: Parker::current(),
        withdrawing: Cell::new(false),
    };
    ring.push(&entry.user_data(&op as *const Op as u64));
    crate::runtime::scheduler::worker::bump(ring.waits);
    let mut wait = Completion { ring, op: &op };
    match blocking_point::block(&mut wait, site, deadline, on_interrupt) {
        blocking_point::Ended::Done(result) => Some(result),
        blocking_point::Ended::TimedOut => None,
    }
}

fn to_result(result: i32) -> io::Result<usize> {
    if result < 0 {
        Err(io::Error::from_raw_os_error(-result))
    } else {
        Ok(result as usize)
    }
}

/// A stream read of `buf` in a green thread that has a ring (see the module docs): `try_first`
/// says whether to try `recv` before submitting. `Ok(None)` means the kernel refused the
/// operation as would-block (the caller falls back to readiness).
pub(crate) fn recv(
    ring: &Ring,
    fd: RawFd,
    buf: &mut [u8],
    try_first: bool,
    site: Site,
    deadline: Option<Instant>,
) -> io::Result<Option<usize>> {
    if try_first {
        // SAFETY: `buf` is a live, writable buffer of `buf.len()` bytes.
        // MSG_DONTWAIT: the `hooks` pass such a call straight through.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n >= 0 {
            return Ok(Some(n as usize));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::WouldBlock {
            return Err(err);
        }
    }
    let len = buf.len().min(u32::MAX as usize) as u32;
    let entry = opcode::Recv::new(types::Fd(fd), buf.as_mut_ptr(), len).build();
    finish(
        submit_and_wait(ring, entry, site, deadline, OnInterrupt::Unwind),
        "read",
    )
}

/// A stream write of `buf`, on the ring: unlike a read, it does not try `send` first. The
/// worker hands every write of a scheduling round to the kernel in the same `io_uring_enter`
/// that reaps, which measured cheaper than a `send` syscall per write: echo at 100
/// connections 6.86 against 6.98 µs of CPU per round trip, HTTP at 1,000 connections 7.49
/// against 8.20 µs (`benches/peers/sleeps.sh`, medians of three alternating rounds).
pub(crate) fn send(
    ring: &Ring,
    fd: RawFd,
    buf: &[u8],
    site: Site,
    deadline: Option<Instant>,
) -> io::Result<Option<usize>> {
    let len = buf.len().min(u32::MAX as usize) as u32;
    let entry = opcode::Send::new(types::Fd(fd), buf.as_ptr(), len)
        .flags(libc::MSG_NOSIGNAL)
        .build();
    finish(
        submit_and_wait(ring, entry, site, deadline, OnInterrupt::Unwind),
        "write",
    )
}

fn finish(result: Option<i32>, what: &str) -> io::Result<Option<usize>> {
    match result {
        None => Err(super::timed_out(what)),
        Some(r) if r == -libc::EAGAIN => Ok(None),
        Some(r) => to_result(r).map(Some),
    }
}

/// A read of a file at `offset` (-1: at the file position, which it advances) into `buf`,
/// on the ring: for a read the page cache could not serve at once (`weft::fs::File` tries
/// `RWF_NOWAIT` first). The kernel reads the pages in and completes on this worker's ring;
/// the blocking pool would cost two cross-thread wakes. Cold 4 KiB reads measured 32.8 µs
/// against 39.1 µs through the pool with one reader, and 8.3 against 20.3 µs each with 16
/// readers at once (std on a plain thread: 28 µs; `benches/fs.rs`, `cold_read_4k`).
///
/// `on_interrupt` is `Unwind` for a call's first wait, and `Ignore` for a wait that
/// completes a short read (see `weft::fs::File`), whose first bytes are already the
/// caller's. `Ok(None)`: the kernel would not wait for this file (`EAGAIN`: a file opened
/// `O_NONBLOCK`); the caller uses the pool.
pub(crate) fn read_file(
    ring: &Ring,
    fd: RawFd,
    buf: &mut [u8],
    offset: i64,
    site: Site,
    on_interrupt: OnInterrupt,
) -> io::Result<Option<usize>> {
    let len = buf.len().min(u32::MAX as usize) as u32;
    let entry = opcode::Read::new(types::Fd(fd), buf.as_mut_ptr(), len)
        .offset(offset as u64)
        .build();
    finish(submit_and_wait(ring, entry, site, None, on_interrupt), "read")
}

/// A write of `buf` to a file at `offset` (-1: at the file position), on the ring: as
/// [`read_file`], for a write that `RWF_NOWAIT` refused (ext4 refuses writes that allocate
/// blocks). Against the pool, 4 KiB appends measured 4.9 against 33 µs each with 16 writers
/// at once, and 11.3 against 6.0–7.0 µs with a single writer, whose pool thread is still
/// spinning when the next write comes (`benches/fs.rs`, `write_4k`): the ring is kept for
/// its behaviour under load.
pub(crate) fn write_file(
    ring: &Ring,
    fd: RawFd,
    buf: &[u8],
    offset: i64,
    site: Site,
) -> io::Result<Option<usize>> {
    let len = buf.len().min(u32::MAX as usize) as u32;
    let entry = opcode::Write::new(types::Fd(fd), buf.as_ptr(), len)
        .offset(offset as u64)
        .build();
    finish(
        submit_and_wait(ring, entry, site, None, OnInterrupt::Unwind),
        "write",
    )
}
