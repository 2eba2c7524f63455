//! Per-fd readiness state, in a slab whose entries never move or die.
//!
//! epoll hands back a 64-bit tag with every event. A pointer would dangle once the fd's owner
//! closes it, and a late event (already harvested by the poller when the close happened)
//! would then touch freed memory or another fd's state. So the tag is `generation << 32 |
//! index`. Entries live in pages that are allocated on demand and never freed; an index is
//! reused only after its generation has moved on, and the poller acts on an event only if
//! the generation still matches, checked under the entry's lock (which is also where a
//! release moves the generation). A late event for a closed or reused fd is thus dropped,
//! never delivered to the entry's next owner.
//!
//! The entry also holds the waiting protocol's steps ([`Entry::io`], [`Entry::io_stream`],
//! [`Entry::enqueue`] and [`Entry::deliver`]; the reactor's module docs give the argument),
//! written against a caller's wait, so that this file compiles alone under loom
//! (`runtime::reactor_model`) and its models check the protocol with a model socket.

use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::OnceLock;

use crate::loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use crate::loom::sync::{OsMutex, OsMutexGuard};

/// Who a readiness event wakes: under loom, a model thread.
#[cfg(loom)]
use crate::loom::thread::Thread as Unparker;
#[cfg(not(loom))]
use crate::runtime::park::Unparker;

/// Entries per page (a few under loom, whose objects are counted per model run).
#[cfg(not(loom))]
const PAGE_BITS: u32 = 12;
#[cfg(loom)]
const PAGE_BITS: u32 = 1;
const PAGE_LEN: usize = 1 << PAGE_BITS;
/// Pages at most: 4096 × 4096 = 16 Mi registered fds, far beyond any fd limit.
const MAX_PAGES: usize = 4096;

/// Read or write: the two directions an fd has separate waiters for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read = 0,
    Write = 1,
}

/// One registered fd's readiness state.
pub(crate) struct Entry {
    /// Changed only under `waiters`' lock, when the entry is released.
    generation: AtomicU32,
    /// Per direction, the number of readiness events seen so far. Bumped by the poller under
    /// `waiters`' lock; read without the lock by a waiter before it tries its syscall.
    seq: [AtomicU32; 2],
    /// Per direction, `DRAINED | seq` if a stream read (or write) came back short after the
    /// sequence was `seq`: the socket was drained (or its send buffer full) then, so until
    /// the sequence moves the next try can only say `EAGAIN` and may be skipped (see the
    /// reactor's module docs). 0: nothing known. Relaxed: a hint checked against `seq`.
    drained: [AtomicU64; 2],
    /// Set once an event reported `RDHUP`, `HUP` or `ERR` (end of file or an error, which stay
    /// ready without new edges) or `PRI` (urgent data, whose mark stops a read short with
    /// data still queued): skipping is off for good (until the entry is reused).
    closed: AtomicBool,
    waiters: OsMutex<Waiters>,
}

const DRAINED: u64 = 1 << 32;

/// Green threads parked on an entry, per direction, each with a key to find it again.
#[derive(Default)]
pub(crate) struct Waiters {
    lists: [Vec<(u64, Unparker)>; 2],
    next_key: u64,
}

impl Waiters {
    pub(crate) fn add(&mut self, dir: Direction, unparker: Unparker) -> u64 {
        let key = self.next_key;
        self.next_key = self.next_key.wrapping_add(1);
        self.lists[dir as usize].push((key, unparker));
        key
    }

    #[cfg_attr(loom, allow(dead_code))] // the models never withdraw
    pub(crate) fn remove(&mut self, dir: Direction, key: u64) {
        let list = &mut self.lists[dir as usize];
        if let Some(pos) = list.iter().position(|(k, _)| *k == key) {
            list.swap_remove(pos);
        }
    }
}

impl Entry {
    pub(crate) fn new() -> Entry {
        Entry {
            generation: AtomicU32::new(0),
            seq: [AtomicU32::new(0), AtomicU32::new(0)],
            drained: [AtomicU64::new(0), AtomicU64::new(0)],
            closed: AtomicBool::new(false),
            waiters: OsMutex::new(Waiters::default()),
        }
    }

    /// The readiness sequence of `dir`. Acquire pairs with the poller's Release bump; the
    /// value itself is all the waiter needs (the readiness lives in the kernel).
    pub(crate) fn seq(&self, dir: Direction) -> u32 {
        self.seq[dir as usize].load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether a short transfer was seen at sequence `seq` (and nothing since).
    pub(crate) fn drained_at(&self, dir: Direction, seq: u32) -> bool {
        // Acquire: pairs with the poller's Release store of `closed`, which precedes its
        // bump of `seq`; a reader that saw the bumped sequence therefore sees `closed` too.
        self.drained[dir as usize].load(Relaxed) == DRAINED | u64::from(seq)
            && !self.closed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Records a short transfer whose try began at sequence `seq` (or, `None`, a full one).
    pub(crate) fn set_drained(&self, dir: Direction, seq: Option<u32>) {
        let value = seq.map_or(0, |seq| DRAINED | u64::from(seq));
        let slot = &self.drained[dir as usize];
        // A plain load first: the common case (nothing changes) stays free of stores.
        if slot.load(Relaxed) != value {
            slot.store(value, Relaxed);
        }
    }

    pub(crate) fn lock(&self) -> OsMutexGuard<'_, Waiters> {
        // The lists stay consistent even if a holder panicked (only pushes and removals).
        self.waiters.lock()
    }

    /// Step 3 of the waiting protocol: queues the waiter that `unparker` makes in the list
    /// of `dir`, unless the sequence moved since `seen` (an edge came after the snapshot, so
    /// the caller tries again instead: `None`). Returns the key that withdraws it.
    pub(crate) fn enqueue(
        &self,
        dir: Direction,
        seen: u32,
        unparker: impl FnOnce() -> Unparker,
    ) -> Option<u64> {
        let mut waiters = self.lock();
        // Under the lock that `deliver` bumps under: a bump either came before this check,
        // or comes after the push below and finds the waiter in the list.
        if self.seq(dir) != seen {
            return None;
        }
        Some(waiters.add(dir, unparker()))
    }

    /// Whether a wait queued at `seen` is over: the poller bumped the sequence, and drained
    /// the waiter from the list in the same critical section (it never touches it again).
    pub(crate) fn moved(&self, dir: Direction, seen: u32) -> bool {
        self.seq(dir) != seen
    }

    /// Steps 1 and 2 of the waiting protocol, and the retries: runs `op` until it returns
    /// something other than `WouldBlock`. Between tries, `wait(seen)` waits until the
    /// sequence may have moved from `seen` (queueing with [`enqueue`](Self::enqueue)); an
    /// error from it (a timeout) is the result.
    #[inline]
    #[cfg_attr(loom, allow(dead_code))] // the models read streams
    pub(crate) fn io<R>(
        &self,
        dir: Direction,
        wait: impl FnMut(u32) -> io::Result<()>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let seen = self.seq(dir);
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            done => return done,
        }
        self.retry(dir, seen, wait, op).1
    }

    /// The waiting half of [`io`](Self::io) and [`io_stream`](Self::io_stream), once `dir`
    /// was found not ready at sequence `seen`. Returns the result with the sequence read
    /// before the try that produced it.
    #[inline]
    fn retry<R>(
        &self,
        dir: Direction,
        mut seen: u32,
        mut wait: impl FnMut(u32) -> io::Result<()>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> (u32, io::Result<R>) {
        loop {
            if let Err(e) = wait(seen) {
                return (seen, Err(e));
            }
            seen = self.seq(dir);
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return (seen, done),
            }
        }
    }

    /// [`io`](Self::io) for a stream read or write of `len` bytes, which skips the try that
    /// could only say `EAGAIN`: after a short transfer (0 < n < len) the socket was drained
    /// (or its send buffer full) at the sequence read *before* that try; while the sequence
    /// still has that value, no edge has come since, so the call waits at once (see
    /// "Skipping the try that can only fail" in the reactor's module docs). A transfer of 0
    /// (end of file) or of `len` marks nothing, and so does every transfer when `len` is
    /// `None` (a socket type on which a short read does not mean drained).
    #[inline]
    pub(crate) fn io_stream(
        &self,
        dir: Direction,
        len: Option<usize>,
        wait: impl FnMut(u32) -> io::Result<()>,
        mut op: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        let seen = self.seq(dir);
        let note = |seen: u32, result: io::Result<usize>| {
            if let (Ok(n), Some(len)) = (&result, len) {
                self.set_drained(dir, (*n > 0 && *n < len).then_some(seen));
            }
            result
        };
        if !self.drained_at(dir, seen) {
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return note(seen, done),
            }
        }
        let (seen, result) = self.retry(dir, seen, wait, op);
        note(seen, result)
    }

    /// Poller side: records readiness for the given directions and wakes their waiters, if
    /// the event belongs to the entry's current generation. Returns how many it woke.
    pub(crate) fn deliver(&self, generation: u32, read: bool, write: bool, closed: bool) -> usize {
        let mut waiters = self.lock();
        if self.generation.load(Relaxed) != generation {
            return 0; // a late event for an fd that has been closed since
        }
        if closed {
            // Release: before the sequence bumps below (see `drained_at`).
            self.closed
                .store(true, std::sync::atomic::Ordering::Release);
        }
        let mut woken = 0;
        for (dir, ready) in [(Direction::Read, read), (Direction::Write, write)] {
            if !ready {
                continue;
            }
            // Release: pairs with `seq`'s Acquire. Under the lock, so a waiter that checked
            // the sequence under the lock and then queued itself is in the list drained here.
            self.seq[dir as usize].fetch_add(1, std::sync::atomic::Ordering::Release);
            // Woken in place, then cleared: the list keeps its capacity, and this costs less
            // than a `drain` (whose guard measured ~40 instructions per echo round trip).
            let list = &mut waiters.lists[dir as usize];
            for (_, unparker) in list.iter() {
                unparker.unpark();
            }
            woken += list.len();
            list.clear();
        }
        woken
    }
}

/// Allocation state, behind one lock: registration happens once per fd, not per IO.
struct Free {
    indices: Vec<u32>,
    next_unused: u32,
}

pub(crate) struct Slab {
    pages: Box<[OnceLock<Box<[Entry]>>]>,
    free: OsMutex<Free>,
}

impl Slab {
    pub(crate) fn new() -> Slab {
        Slab {
            pages: (0..MAX_PAGES).map(|_| OnceLock::new()).collect(),
            free: OsMutex::new(Free {
                indices: Vec::new(),
                next_unused: 0,
            }),
        }
    }

    /// The entry at `index`, if its page exists.
    pub(crate) fn get(&self, index: u32) -> Option<&Entry> {
        let page = self.pages.get((index >> PAGE_BITS) as usize)?.get()?;
        page.get(index as usize & (PAGE_LEN - 1))
    }

    /// Takes a free entry; returns its index and current generation.
    pub(crate) fn allocate(&self) -> std::io::Result<(u32, u32)> {
        let mut free = self.free.lock();
        let index = match free.indices.pop() {
            Some(index) => index,
            None => {
                let index = free.next_unused;
                if index as usize >= MAX_PAGES * PAGE_LEN {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::OutOfMemory,
                        "weft: the reactor's registration table is full",
                    ));
                }
                self.pages[(index >> PAGE_BITS) as usize]
                    .get_or_init(|| (0..PAGE_LEN).map(|_| Entry::new()).collect());
                free.next_unused = index + 1;
                index
            }
        };
        drop(free);
        let entry = self.get(index).expect("allocated entries have pages");
        // Relaxed: the entry is ours alone now; the value was last written under its lock.
        Ok((index, entry.generation.load(Relaxed)))
    }

    /// Returns an entry: moves its generation on (so late events are dropped) and forgets any
    /// waiters (there can be none: a waiter borrows the owner of the registration).
    pub(crate) fn release(&self, index: u32) {
        if let Some(entry) = self.get(index) {
            let mut waiters = entry.lock();
            let next = entry.generation.load(Relaxed).wrapping_add(1);
            entry.generation.store(next, Relaxed);
            waiters.lists.iter_mut().for_each(Vec::clear);
            // A fresh start for the next fd: nothing drained, nothing closed.
            entry.drained.iter().for_each(|d| d.store(0, Relaxed));
            entry.closed.store(false, Relaxed);
        }
        let mut free = self.free.lock();
        free.indices.push(index);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Arc;

    #[test]
    fn a_late_event_for_a_released_entry_reaches_nobody() {
        let slab = Slab::new();
        let (index, old_generation) = slab.allocate().unwrap();
        slab.release(index);
        // The index is reused by the next registration, under a new generation.
        let (again, generation) = slab.allocate().unwrap();
        assert_eq!(again, index);
        assert_ne!(generation, old_generation);
        let entry = slab.get(index).unwrap();
        let woken = Arc::new(AtomicBool::new(false));
        let flag = woken.clone();
        let waiter = std::thread::spawn(move || {
            std::thread::park();
            flag.store(true, SeqCst);
        });
        let before = entry.seq(Direction::Read);
        entry
            .lock()
            .add(Direction::Read, Unparker::Thread(waiter.thread().clone()));
        // The stale event is dropped: no sequence bump, no wake-up, waiter still queued.
        assert_eq!(entry.deliver(old_generation, true, true, false), 0);
        assert_eq!(entry.seq(Direction::Read), before);
        assert!(!woken.load(SeqCst));
        // The current generation's event wakes the new owner's waiter.
        assert_eq!(entry.deliver(generation, true, false, false), 1);
        assert_eq!(entry.seq(Direction::Read), before.wrapping_add(1));
        waiter.join().unwrap();
        assert!(woken.load(SeqCst));
    }

    #[test]
    fn directions_are_independent() {
        let slab = Slab::new();
        let (index, generation) = slab.allocate().unwrap();
        let entry = slab.get(index).unwrap();
        let (r, w) = (entry.seq(Direction::Read), entry.seq(Direction::Write));
        entry.deliver(generation, false, true, false);
        assert_eq!(entry.seq(Direction::Read), r);
        assert_eq!(entry.seq(Direction::Write), w.wrapping_add(1));
    }
}

/// The readiness protocol under loom, with a model socket:
/// `RUSTFLAGS="--cfg loom" cargo test --release --lib loom_readiness`.
///
/// Each model runs the real [`Entry`] steps: the reader's [`Entry::io_stream`] (snapshot,
/// try, skip, retry) with [`Entry::enqueue`] and a park as its wait, and the poller's
/// [`Entry::deliver`]. A wake-up that the protocol loses leaves the reader parked for ever,
/// which loom reports as a deadlock.
#[cfg(all(test, loom))]
mod loom_models {
    use super::{Direction, Entry, Slab};
    use loom::sync::{Arc, Mutex};
    use loom::thread;
    use std::io;
    use std::sync::atomic::Ordering::Relaxed;

    const READ: Direction = Direction::Read;

    /// A stream socket as the kernel keeps it, under the socket's lock.
    #[derive(Default)]
    struct Kernel {
        /// Bytes in the receive queue.
        queued: usize,
        /// The peer's FIN has arrived: reads return 0 once the queue is empty.
        fin: bool,
        /// An edge is in epoll's ready list: set by every arrival (edge-triggered), cleared
        /// when the poller harvests it.
        edge: bool,
    }

    struct Socket {
        kernel: Mutex<Kernel>,
        entry: Entry,
    }

    impl Socket {
        fn new() -> Socket {
            Socket {
                kernel: Mutex::new(Kernel::default()),
                entry: Entry::new(),
            }
        }

        /// The peer sends `bytes`, then perhaps its FIN.
        fn arrive(&self, bytes: usize, fin: bool) {
            let mut kernel = self.kernel.lock().unwrap();
            kernel.queued += bytes;
            kernel.fin |= fin;
            kernel.edge = true;
        }

        /// The poller: one `epoll_wait` that harvests the pending edge, if any, and delivers
        /// it later (outside the socket's lock), with `RDHUP` once the FIN is in. As epoll
        /// does, it polls the socket when it harvests, and drops an edge whose readiness is
        /// gone (the data was read meanwhile): extra wake-ups could hide a lost one.
        fn poll(&self) {
            let (edge, rdhup) = {
                let mut kernel = self.kernel.lock().unwrap();
                let ready = kernel.queued > 0 || kernel.fin;
                (std::mem::take(&mut kernel.edge) && ready, kernel.fin)
            };
            if edge {
                self.entry.deliver(0, true, false, rdhup);
            }
        }

        /// `read(2)` of up to `len` bytes on the non-blocking socket.
        fn read(&self, len: usize) -> io::Result<usize> {
            let mut kernel = self.kernel.lock().unwrap();
            if kernel.queued > 0 {
                let n = kernel.queued.min(len);
                kernel.queued -= n;
                Ok(n)
            } else if kernel.fin {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            }
        }

        /// The green thread's wait (the reactor's `wait_for`), with a model thread for the
        /// green thread: queue unless the sequence moved, then park until it moves.
        fn wait(&self, seen: u32) -> io::Result<()> {
            if self.entry.enqueue(READ, seen, thread::current).is_some() {
                while !self.entry.moved(READ, seen) {
                    thread::park();
                }
            }
            Ok(())
        }

        /// A weft stream read of up to `len` bytes.
        fn read_stream(&self, len: usize) -> usize {
            self.entry
                .io_stream(READ, Some(len), |seen| self.wait(seen), || self.read(len))
                .unwrap()
        }
    }

    /// Two bytes arrive one at a time, each edge harvested after its arrival (or, `merged`,
    /// both edges in one harvest), while a reader reads 2-byte buffers: its first read may
    /// come back short (1 byte), and the skip of the next try must never wait for the edge
    /// of a byte that arrived after that read's snapshot and was harvested before the next
    /// one's. (Marking the short read with the sequence read *after* it, the earlier
    /// attempt, hangs here.)
    #[test]
    fn loom_readiness_a_short_read_never_skips_a_harvested_edge() {
        for merged in [false, true] {
            short_reads(merged);
        }
    }

    fn short_reads(merged: bool) {
        loom::model(move || {
            let socket = Arc::new(Socket::new());
            let peer = {
                let socket = socket.clone();
                thread::spawn(move || {
                    if merged {
                        socket.arrive(1, false);
                        socket.arrive(1, false);
                        socket.poll();
                    } else {
                        for _ in 0..2 {
                            socket.arrive(1, false);
                            socket.poll();
                        }
                    }
                })
            };
            let mut got = 0;
            while got < 2 {
                got += socket.read_stream(2);
            }
            assert_eq!(got, 2);
            peer.join().unwrap();
        });
    }

    /// A byte and then the FIN arrive, each harvested; the reader reads until end of file.
    /// If both edges were harvested before its snapshot, its short read of the byte marks
    /// the socket drained at a sequence that will never move again: only the `RDHUP` the
    /// poller saw turns the skip off, so the next read returns 0 instead of waiting for ever.
    #[test]
    fn loom_readiness_end_of_file_is_never_skipped() {
        loom::model(|| {
            let socket = Arc::new(Socket::new());
            let peer = {
                let socket = socket.clone();
                thread::spawn(move || {
                    socket.arrive(1, false);
                    socket.poll();
                    socket.arrive(0, true);
                    socket.poll();
                })
            };
            let mut got = 0;
            loop {
                match socket.read_stream(2) {
                    0 => break,
                    n => got += n,
                }
            }
            assert_eq!(got, 1);
            peer.join().unwrap();
        });
    }

    /// An fd's last event, already harvested by the poller, is delivered while its owner
    /// closes it and the slab entry is reused for the next fd, whose owner starts waiting.
    /// The stale event must reach nobody: not the new owner's waiter, sequence or `closed`
    /// flag (it carries `RDHUP`), and the old owner's drained mark is gone.
    #[test]
    fn loom_readiness_a_late_event_never_reaches_the_next_owner() {
        loom::model(|| {
            let slab = Arc::new(Slab::new());
            let (index, old) = slab.allocate().unwrap();
            slab.get(index).unwrap().set_drained(READ, Some(0));
            let poller = {
                let slab = slab.clone();
                thread::spawn(move || {
                    slab.get(index).unwrap().deliver(old, true, true, true);
                })
            };
            slab.release(index);
            let (again, generation) = slab.allocate().unwrap();
            assert_eq!(again, index);
            let entry = slab.get(index).unwrap();
            let seen = entry.seq(READ);
            assert!(
                !entry.drained_at(READ, seen),
                "the old owner's mark survived"
            );
            let key = entry.enqueue(READ, seen, thread::current);
            poller.join().unwrap();
            assert!(key.is_some());
            assert_eq!(entry.seq(READ), seen, "a stale event bumped the sequence");
            assert_eq!(
                entry.lock().lists[READ as usize].len(),
                1,
                "the waiter was drained"
            );
            assert!(
                !entry.closed.load(Relaxed),
                "a stale RDHUP turned skipping off"
            );
            // The new generation's own event does reach it.
            assert_eq!(entry.deliver(generation, true, false, false), 1);
        });
    }
}
