//! Where stacks come from and where they go back to.
//!
//! Two tiers, per size class:
//!
//! 1. a worker's [`LocalCache`]: a plain `Vec` of free slots, touched only by its worker, so a
//!    spawn on a worker that recently finished a green thread takes a warm stack with no
//!    atomic operation at all;
//! 2. the global [`ClassPool`] behind a mutex: free slots overflowing from caches, plus a bump
//!    pointer into the newest region for slots never used before.
//!
//! A cache that runs dry refills with a batch from the global pool, and one that grows past
//! [`LOCAL_MAX`] hands half back, so stacks freed on one worker and needed on another travel
//! in batches rather than one lock round-trip each.
//!
//! Regions are never unmapped: a slot, once carved, keeps its guard and only cycles between the
//! tiers. Its committed pages are given back on release when it was used deeply (see
//! [`release`]).

use std::io;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use crate::runtime::os_lock::{OsMutex, OsMutexGuard};

use super::{guard_size, GuardedStack, SizeClass, NUM_CLASSES};
use crate::sys;

/// A worker keeps at most this many free stacks per class before handing half back.
const LOCAL_MAX: usize = 64;
/// Slots moved from the global pool into an empty cache at once.
const REFILL_BATCH: usize = 16;
/// Target size of one region mapping. Only address space: pages commit when touched.
const REGION_BYTES: usize = 1 << 30;
/// How far below the top of a stack the "was it used deeply?" probe word sits.
const PROBE_DEPTH: usize = 32 * 1024;

/// Free slots of every class kept by one worker. Not shared: the owning worker alone uses it.
pub(crate) struct LocalCache {
    free: [Vec<usize>; NUM_CLASSES],
}

impl LocalCache {
    pub(crate) const fn new() -> LocalCache {
        LocalCache {
            free: [const { Vec::new() }; NUM_CLASSES],
        }
    }
}

/// The global tier of one size class.
struct ClassPool {
    /// Start addresses (guard page) of free, already guarded slots.
    free: Vec<usize>,
    /// Next never-used slot in the newest region, and the end of that region.
    next: usize,
    end: usize,
    /// Never-used slots in `[next, guarded)` already have their guards (installed in a
    /// batch, see `carve`).
    guarded: usize,
}

static GLOBAL: [OsMutex<ClassPool>; NUM_CLASSES] = [const {
    OsMutex::new(ClassPool {
        free: Vec::new(),
        next: 0,
        end: 0,
        guarded: 0,
    })
}; NUM_CLASSES];

/// Takes a stack of `class`, from the worker's cache when given one.
pub(crate) fn allocate(
    class: SizeClass,
    cache: Option<&mut LocalCache>,
) -> io::Result<GuardedStack> {
    let slot = match cache {
        Some(cache) => {
            let local = &mut cache.free[class.index()];
            match local.pop() {
                Some(slot) => slot,
                None => {
                    let mut global = lock(class);
                    let take = global.free.len().min(REFILL_BATCH);
                    let from = global.free.len() - take;
                    local.extend(global.free.drain(from..));
                    match local.pop() {
                        Some(slot) => slot,
                        None => carve(&mut global, class)?,
                    }
                }
            }
        }
        None => {
            let mut global = lock(class);
            match global.free.pop() {
                Some(slot) => slot,
                None => carve(&mut global, class)?,
            }
        }
    };
    // SAFETY: the slot came from the free lists or was just carved; either way it is a slot of
    // `class` with its guard installed, and popping it made us its only owner.
    Ok(unsafe { GuardedStack::from_slot(slot, class) })
}

/// Returns a stack whose green thread has finished. Pages below the probe depth are given
/// back first if the stack was used that deeply, so a pooled stack keeps at most
/// [`PROBE_DEPTH`] bytes resident.
pub(crate) fn release(stack: GuardedStack, cache: Option<&mut LocalCache>) {
    let class = stack.class;
    let slot = stack.guard_low;
    scrub(&stack);
    drop(stack); // deregisters from Valgrind
    match cache {
        Some(cache) => {
            let local = &mut cache.free[class.index()];
            local.push(slot);
            if local.len() > LOCAL_MAX {
                let mut global = lock(class);
                global.free.extend(local.drain(LOCAL_MAX / 2..));
            }
        }
        None => lock(class).free.push(slot),
    }
}

fn lock(class: SizeClass) -> OsMutexGuard<'static, ClassPool> {
    // The pool's invariants hold between statements (pushes and pops of plain integers), so a
    // panic elsewhere while the lock was held leaves it usable.
    GLOBAL[class.index()]
        .lock()
}

/// Carves a never-used slot, mapping a new region when the current one is full. Its guard
/// is installed with those of the next [`GUARD_BATCH`] − 1 slots, in one `process_madvise`
/// call where the kernel allows it (see [`install_guards`]).
fn carve(pool: &mut ClassPool, class: SizeClass) -> io::Result<usize> {
    let stride = class.stride();
    if pool.next == pool.end {
        let slots = (REGION_BYTES / stride).max(1);
        let len = slots * stride;
        let base = sys::map_reserve(len).map_err(|e| sys::stack_map_error("map memory", e))?;
        pool.next = base as usize;
        pool.end = base as usize + len;
        pool.guarded = pool.next;
    }
    if pool.next == pool.guarded {
        let count = ((pool.end - pool.next) / stride).min(GUARD_BATCH);
        pool.guarded = pool.next + install_guards(pool.next, stride, count)? * stride;
    }
    let slot = pool.next;
    pool.next += stride;
    Ok(slot)
}

/// How many never-used slots get their guards in one system call. Measured (a C probe on this
/// VM, 100,000 guards of 4 KiB, 68 KiB apart): `madvise` one by one 1.27 µs per guard,
/// `process_madvise` in batches of 1,024 0.58–0.82 µs. 64 takes most of that gain while a
/// pool rarely holds more than a few unused guarded slots.
const GUARD_BATCH: usize = sys::GUARD_BATCH_MAX;

/// Installs the guards of `count` (≥ 1) slots, `stride` bytes apart from `first`; returns
/// how many, from the front, have one (at least one on success).
///
/// In `madvise` mode, all in one `process_madvise(MADV_GUARD_INSTALL)` through a pidfd of
/// this process. A kernel that refuses (before 6.13 `process_madvise` took only a few
/// advice values; seccomp may forbid it) switches batching off for good, and the guards go
/// one `madvise` at a time, as in `mprotect` mode and while the mode is undecided.
fn install_guards(first: usize, stride: usize, count: usize) -> io::Result<usize> {
    let mode = GUARD_MODE.load(Ordering::Relaxed);
    if mode == MODE_MADVISE && count > 1 && BATCHING.load(Ordering::Relaxed) {
        let tried = self_pidfd().and_then(|pidfd| {
            // SAFETY: the `count` slots from `first` are never-used slots of a region this
            // pool mapped, and `self_pidfd` is this process's (re-opened after a fork).
            unsafe { sys::guard_install_strided(pidfd, first, stride, count, guard_size()) }
        });
        match tried {
            Ok(done) if done > 0 => return Ok(done),
            // Refused, or no progress: one at a time from now on.
            _ => BATCHING.store(false, Ordering::Relaxed),
        }
    }
    install_guard(first as *mut u8)?;
    Ok(1)
}

/// Whether [`install_guards`] still tries `process_madvise`. Relaxed: a stale `true` costs
/// one more refused call.
static BATCHING: AtomicBool = AtomicBool::new(true);

/// A pidfd of this process and the pid it was opened for: after a `fork` the inherited fd
/// names the parent, so a changed pid re-opens it.
static SELF_PIDFD: OsMutex<Option<(u32, std::os::fd::OwnedFd)>> = OsMutex::new(None);

fn self_pidfd() -> io::Result<std::os::fd::RawFd> {
    use std::os::fd::AsRawFd;
    let pid = std::process::id();
    let mut cached = SELF_PIDFD.lock();
    match &*cached {
        Some((opened_for, fd)) if *opened_for == pid => Ok(fd.as_raw_fd()),
        _ => {
            let fd = sys::file::pidfd_open(pid)?;
            let raw = fd.as_raw_fd();
            *cached = Some((pid, fd));
            Ok(raw)
        }
    }
}

/// Gives back the deep pages of a stack that was used past [`PROBE_DEPTH`].
///
/// The probe is a word `PROBE_DEPTH` below the top. A fresh or discarded page reads as zero
/// (reading an untouched anonymous page maps the shared zero page and commits nothing), so a
/// non-zero word means frames reached that deep. A deep stack whose probe word happens to be
/// zero merely keeps its pages until a later use writes there: memory, not correctness.
fn scrub(stack: &GuardedStack) {
    let usable_low = stack.guard_low + guard_size();
    let depth = PROBE_DEPTH.min(stack.usable_size() / 2);
    let probe = stack.top() - depth;
    // SAFETY: `probe` is word aligned (top and depth are page multiples) and inside the usable
    // range of a stack we own, whose coroutine has finished; volatile so the read is real.
    let word = unsafe { ptr::read_volatile(probe as *const usize) };
    if word != 0 {
        let page = sys::page_size();
        let high = (probe & !(page - 1)) + page;
        // SAFETY: [usable_low, high) lies inside the slot's usable stack, which holds no live
        // data. Failure only means the pages stay resident.
        let _ = unsafe { sys::discard(usable_low as *mut u8, high - usable_low) };
    }
}

// ---- guard installation ------------------------------------------------------------------

const MODE_UNDECIDED: u8 = 0;
const MODE_MADVISE: u8 = 1;
const MODE_MPROTECT: u8 = 2;

/// How guards are installed. Starts undecided; `WEFT_GUARD_PAGES`, read at runtime start,
/// may force it; otherwise the first install settles it by trying `MADV_GUARD_INSTALL` and
/// falling back on `EINVAL`. Relaxed is enough: every value is a valid, idempotent choice, and a racing
/// first install merely probes twice.
static GUARD_MODE: AtomicU8 = AtomicU8::new(MODE_UNDECIDED);

/// Which guard mechanism stacks use, for [`crate::Stats`]: `"madvise"`, `"mprotect"`, or
/// `"undecided"` before the first stack is carved.
pub(crate) fn guard_mode_name() -> &'static str {
    match GUARD_MODE.load(Ordering::Relaxed) {
        MODE_MADVISE => "madvise",
        MODE_MPROTECT => "mprotect",
        _ => "undecided",
    }
}

fn install_guard(slot: *mut u8) -> io::Result<()> {
    let len = guard_size();
    // `WEFT_GUARD_PAGES` was settled at start (`read_guard_setting`): undecided is `auto`.
    install_guard_with(slot, len, GUARD_MODE.load(Ordering::Relaxed))
}

/// Settles `WEFT_GUARD_PAGES` before any stack is carved (at runtime start): the first
/// carve then reads no environment under the pool's lock, where a green thread's stack cache
/// is borrowed (std's environment lock is one a hooked futex wait could park on).
pub(crate) fn read_guard_setting() -> io::Result<()> {
    if GUARD_MODE.load(Ordering::Relaxed) == MODE_UNDECIDED {
        let forced = forced_guard_mode()?;
        if forced != MODE_UNDECIDED {
            GUARD_MODE.store(forced, Ordering::Relaxed);
        }
    }
    Ok(())
}

fn install_guard_with(slot: *mut u8, len: usize, mode: u8) -> io::Result<()> {
    if mode != MODE_MPROTECT {
        // SAFETY: `slot` starts a never-used slot inside a region this pool mapped.
        match unsafe { sys::guard_install(slot, len) } {
            Ok(()) => {
                GUARD_MODE.store(MODE_MADVISE, Ordering::Relaxed);
                return Ok(());
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && mode == MODE_UNDECIDED => {
                GUARD_MODE.store(MODE_MPROTECT, Ordering::Relaxed);
            }
            Err(e) => return Err(sys::stack_map_error("install a guard page", e)),
        }
    }
    // SAFETY: as above.
    unsafe { sys::protect_none(slot, len) }
        .map_err(|e| sys::stack_map_error("install a guard page (mprotect)", e))
}

/// Reads `WEFT_GUARD_PAGES` (`auto`, `madvise` or `mprotect`); unset means `auto`.
fn forced_guard_mode() -> io::Result<u8> {
    match std::env::var("WEFT_GUARD_PAGES") {
        Err(std::env::VarError::NotPresent) => Ok(MODE_UNDECIDED),
        Ok(v) if v == "auto" => Ok(MODE_UNDECIDED),
        Ok(v) if v == "madvise" => Ok(MODE_MADVISE),
        Ok(v) if v == "mprotect" => Ok(MODE_MPROTECT),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "weft: invalid WEFT_GUARD_PAGES={:?}: expected auto, madvise or mprotect",
                other.unwrap_or_else(|e| format!("{e}"))
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_stacks_are_reused_and_deep_pages_discarded() {
        let class = SizeClass::for_size(64 * 1024).unwrap();
        let mut cache = LocalCache::new();
        let stack = allocate(class, Some(&mut cache)).unwrap();
        let slot = stack.guard_low;
        let usable_low = slot + guard_size();
        // Dirty the whole stack, as a deep recursion would.
        // SAFETY: the usable range belongs to the stack we own.
        unsafe { ptr::write_bytes(usable_low as *mut u8, 0xAB, class.usable()) };
        release(stack, Some(&mut cache));
        let again = allocate(class, Some(&mut cache)).unwrap();
        assert_eq!(again.guard_low, slot, "the cache hands back the warm slot");
        // SAFETY: as above; the deep part was discarded and reads as zero again.
        let deep = unsafe { ptr::read_volatile(usable_low as *const u8) };
        assert_eq!(deep, 0, "deep pages were given back");
        // The top pages were kept (above the probe depth).
        // SAFETY: as above.
        let top = unsafe { ptr::read_volatile((again.top() - 8) as *const u8) };
        assert_eq!(top, 0xAB, "shallow pages stay committed");
        release(again, Some(&mut cache));
    }

    #[test]
    fn overflowing_cache_spills_to_global() {
        let class = SizeClass::for_size(super::super::MIN_STACK_SIZE).unwrap();
        let mut cache = LocalCache::new();
        let stacks: Vec<_> = (0..LOCAL_MAX + 1)
            .map(|_| allocate(class, Some(&mut cache)).unwrap())
            .collect();
        for s in stacks {
            release(s, Some(&mut cache));
        }
        assert!(cache.free[class.index()].len() <= LOCAL_MAX);
        assert!(lock(class).free.len() >= LOCAL_MAX / 2);
    }
}
