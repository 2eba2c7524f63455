//! Futex waits keyed by address, parked green: how std's `Mutex`, `RwLock`, `Condvar`,
//! `Once`/`OnceLock`/`LazyLock` and `Barrier` stop pinning a worker.
//!
//! std (and `parking_lot`, and most Rust crates that block) wait with
//! `syscall(SYS_futex, …)`. With the `hooks` feature weft defines `syscall`; the hook sends
//! every call but `SYS_futex` straight to the kernel, and for the futex:
//!
//! * a **wait** (`FUTEX_WAIT`, `FUTEX_WAIT_BITSET`, private forms) from a green thread that
//!   may park (see [`eligible`]) parks it in a weft queue instead of blocking the worker;
//! * every **wake** (`FUTEX_WAKE`, `FUTEX_WAKE_BITSET`), from any thread, first releases
//!   weft's waiters on that address, then asks the kernel for the rest of the count;
//! * `FUTEX_REQUEUE`, `FUTEX_CMP_REQUEUE` and `FUTEX_WAKE_OP` wake *every* weft waiter on
//!   the addresses they name, then go to the kernel. A futex waiter must treat any return as
//!   possibly spurious and re-check its word (the futex contract; std and parking_lot loop),
//!   so waking more than asked is always correct, and weft never has to model the requeue;
//! * everything else (priority-inheritance futexes, shared futexes, bad arguments, a wait
//!   that may not park) is the kernel's.
//!
//! The waits themselves, with the kernel's check-then-sleep atomicity, live in
//! [`crate::runtime::address_wait`] (its module docs give the protocol and the ordering
//! argument; `src/runtime/address_wait.rs` has its loom models). This module decides which
//! calls go there.
//!
//! # Waits that must not park
//!
//! Address-keying is only right where the address belongs to the *green* thread. Some
//! futex words belong to the OS thread, and two green threads of one worker would share
//! them and corrupt each other's state:
//!
//! * std's `thread::park` word (used by `std::sync::mpsc`, `thread::scope`, reqwest's
//!   blocking client): one per OS thread. A worker learns its own at start (a zero-length
//!   `park_timeout` whose futex call the hook records instead of making);
//! * any word in the worker's own stack or static thread-local storage (parking_lot's
//!   per-thread parker lives in a thread-local).
//!
//! Those waits block the worker as they always did; the watchdog names such a worker
//! ("futex: std::thread::park / std mpsc / a parking_lot lock …"). So do waits from a green
//! thread that is unwinding, or that is inside weft's own blocking point (a weft-internal
//! std lock, contended while a wait is being set up, must not park the task twice).
//!
//! A cancel or a `weft::timeout` does not end a futex wait early: std would only call again
//! (it retries `EINTR`). The interrupt takes effect at the green thread's next weft
//! blocking point, as for a std lock on a plain thread. The futex's own timeout is kept.

use std::cell::Cell;
use std::sync::atomic::AtomicU32;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libc::{c_int, c_long};

use crate::runtime::address_wait::{AddressWaits, Waited};
use crate::runtime::blocking_point::{self, wait_site};

/// The process's table, made by the load-time constructor (before any thread but the
/// first exists): a lazy initialisation here could itself wait on a futex.
static WAITS: OnceLock<AddressWaits> = OnceLock::new();

/// Makes the table; called once, before `main`. `WEFT_HOOKS_FUTEX=off` (or `0`) leaves it
/// out, and every futex call then goes to the kernel as without the hook: the way out for a
/// program whose code holds per-thread state (a thread-local `RefCell` borrow, say) while
/// it waits for a contended std lock, which a second green thread of the worker would find.
pub(super) fn init() {
    match std::env::var_os("WEFT_HOOKS_FUTEX") {
        None => {}
        Some(value) if value == "on" || value == "1" => {}
        Some(value) if value == "off" || value == "0" => return,
        Some(value) => {
            let message = format!(
                "weft: WEFT_HOOKS_FUTEX must be on or off (1 or 0), not {value:?}; keeping on\n"
            );
            crate::sys::write_stderr_raw(message.as_bytes());
        }
    }
    let _ = WAITS.set(AddressWaits::new());
}

thread_local! {
    /// Set while a worker learns its std park word: the hook records the address instead
    /// of waiting.
    static PROBING: Cell<bool> = const { Cell::new(false) };
    /// This worker's std `thread::park` word (0: not learnt, or not a worker).
    static PARK_WORD: Cell<usize> = const { Cell::new(0) };
    /// This worker's stack and static TLS: `lo..hi`.
    static THREAD_RANGE: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// Learns this worker's OS-thread-keyed futex words (see the module docs). Runs on the
/// worker's own thread before its `Thread` handle is published, so no unpark can be
/// pending on it; the loop still tolerates one.
pub(super) fn learn_thread_words() {
    // SAFETY: a zeroed attribute object is what pthread_getattr_np initialises; it is
    // destroyed after use. The out-parameters are live locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) == 0 {
            let mut addr = std::ptr::null_mut();
            let mut size = 0;
            if libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0 {
                THREAD_RANGE.set((addr as usize, addr as usize + size));
            }
            libc::pthread_attr_destroy(&mut attr);
        }
    }
    PROBING.set(true);
    for _ in 0..3 {
        // Consumes a pending token on the first round if there is one; otherwise its
        // futex wait reaches the hook, which records the word and returns at once.
        std::thread::park_timeout(Duration::ZERO);
        if PARK_WORD.get() != 0 {
            break;
        }
    }
    PROBING.set(false);
}

const CMD_MASK: c_int = !(libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME);

/// The hooked `syscall(SYS_futex, addr, op, val, timeout_or_val2, addr2, val3)`: `None`
/// sends the call to the kernel unchanged, `Some(res)` is the result (C convention).
pub(super) fn futex(args: [c_long; 6]) -> Option<c_long> {
    let addr = args[0] as usize;
    let op = args[1] as c_int;
    let cmd = op & CMD_MASK;
    let waits = WAITS.get()?;
    if PROBING.get() && (cmd == libc::FUTEX_WAIT || cmd == libc::FUTEX_WAIT_BITSET) {
        PARK_WORD.set(addr);
        super::green::set_errno(libc::ETIMEDOUT);
        return Some(-1);
    }
    match cmd {
        libc::FUTEX_WAIT | libc::FUTEX_WAIT_BITSET => {
            let bitset = if cmd == libc::FUTEX_WAIT {
                u32::MAX
            } else {
                args[5] as u32
            };
            if !eligible(addr, op, bitset) {
                return None;
            }
            let deadline = match deadline(op, args[3] as *const libc::timespec) {
                Ok(deadline) => deadline,
                Err(()) => return None, // the kernel says EINVAL
            };
            Some(wait(waits, addr, args[2] as u32, bitset, deadline))
        }
        libc::FUTEX_WAKE | libc::FUTEX_WAKE_BITSET => {
            let bitset = if cmd == libc::FUTEX_WAKE {
                u32::MAX
            } else {
                args[5] as u32
            };
            let count = args[2] as c_int;
            if count <= 0 || bitset == 0 {
                return None;
            }
            let woken = waits.wake(addr, count as usize, bitset);
            if woken == count as usize {
                return Some(woken as c_long);
            }
            let mut rest = args;
            rest[2] = (count as usize - woken) as c_long;
            // SAFETY: the caller's futex call, with a smaller count.
            let kernel = unsafe { crate::sys::raw_syscall(libc::SYS_futex, rest) };
            Some(match kernel {
                // An error from the kernel (EFAULT, say) after weft woke some: they count.
                ..0 if woken > 0 => woken as c_long,
                ..0 => kernel,
                _ => kernel + woken as c_long,
            })
        }
        libc::FUTEX_REQUEUE | libc::FUTEX_CMP_REQUEUE => {
            waits.wake(addr, usize::MAX, u32::MAX);
            None
        }
        libc::FUTEX_WAKE_OP => {
            waits.wake(addr, usize::MAX, u32::MAX);
            waits.wake(args[4] as usize, usize::MAX, u32::MAX);
            None
        }
        _ => None,
    }
}

/// Whether a wait may park the running green thread (see the module docs).
fn eligible(addr: usize, op: c_int, bitset: u32) -> bool {
    if op & libc::FUTEX_PRIVATE_FLAG == 0 || bitset == 0 || addr == 0 || addr % 4 != 0 {
        // Shared futexes can be woken from another process, straight through the kernel;
        // the rest is the kernel's to refuse.
        return false;
    }
    if !super::green() || !blocking_point::may_park_foreign_wait() {
        return false;
    }
    let (lo, hi) = THREAD_RANGE.get();
    addr != PARK_WORD.get() && !(lo..hi).contains(&addr)
}

/// The wait's deadline: `FUTEX_WAIT` takes a relative timeout, `FUTEX_WAIT_BITSET` an
/// absolute one on `CLOCK_MONOTONIC` (or `CLOCK_REALTIME` with that flag). `Err` for a
/// timespec the kernel would refuse.
fn deadline(op: c_int, ts: *const libc::timespec) -> Result<Option<Instant>, ()> {
    if ts.is_null() {
        return Ok(None);
    }
    // SAFETY: a non-null timeout points to a timespec by the futex contract.
    let ts = unsafe { ts.read() };
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(());
    }
    let given = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    let remaining = if op & CMD_MASK == libc::FUTEX_WAIT {
        given
    } else {
        let clock = if op & libc::FUTEX_CLOCK_REALTIME != 0 {
            libc::CLOCK_REALTIME
        } else {
            libc::CLOCK_MONOTONIC
        };
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec it is given.
        unsafe { libc::clock_gettime(clock, &mut now) };
        given.saturating_sub(Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
    };
    Ok(Instant::now().checked_add(remaining))
}

/// Parks the green thread while `*addr == expected`, until a wake or the deadline.
fn wait(
    waits: &AddressWaits,
    addr: usize,
    expected: u32,
    bitset: u32,
    deadline: Option<Instant>,
) -> c_long {
    // SAFETY: `addr` is a non-null, aligned futex word by the caller's contract (the kernel
    // would read it too), live for the call; the table only loads it, atomically, as the
    // kernel does.
    let word = unsafe { &*(addr as *const AtomicU32) };
    let site = wait_site!(crate::runtime::WaitReason::Futex { addr });
    let errno = match waits.wait(word, expected, bitset, site, deadline) {
        Waited::Woken => return 0,
        Waited::Changed => libc::EAGAIN,
        Waited::TimedOut => libc::ETIMEDOUT,
    };
    super::green::set_errno(errno);
    -1
}
