//! Futex waits keyed by address, parked green: how std's `Mutex`, `RwLock`, `Condvar`,
//! `Once`/`OnceLock`/`LazyLock` and `Barrier` stop pinning a worker.
//!
//! std (and `parking_lot`, and most Rust crates that block) wait with
//! `syscall(SYS_futex, …)`. With the `hooks` feature weft defines `syscall`; the hook sends
//! every call but `SYS_futex` straight to the kernel, and for the futex:
//!
//! * an untimed **wait** (`FUTEX_WAIT`, `FUTEX_WAIT_BITSET`, private forms) from a green
//!   thread that may park (see [`eligible`]) parks it in a weft queue instead of blocking
//!   the worker;
//! * every **wake** (`FUTEX_WAKE`, `FUTEX_WAKE_BITSET`), from any thread, first releases
//!   weft's waiters on that address, then asks the kernel for the rest of the count;
//! * `FUTEX_REQUEUE`, `FUTEX_CMP_REQUEUE` and `FUTEX_WAKE_OP` go to the kernel first, then
//!   wake *every* weft waiter on the words they name. A futex waiter must treat any return
//!   as possibly spurious and re-check its word (the futex contract; std and parking_lot
//!   loop), so waking more than asked is always correct, and weft never has to model the
//!   requeue; waking after the kernel's atomic operation means each re-check sees it;
//! * everything else (timed waits, priority-inheritance futexes, shared futexes, bad
//!   arguments, a wait that may not park) is the kernel's.
//!
//! The waits themselves, with the kernel's check-then-sleep atomicity, live in
//! [`crate::runtime::address_wait`] (its module docs give the protocol and the ordering
//! argument; `src/runtime/address_wait.rs` has its loom models). This module decides which
//! calls go there.
//!
//! # Waits that must not park
//!
//! Address-keying is only right where the word belongs to the *green* thread. Some futex
//! words belong to the OS thread, and two green threads of one worker would share them
//! and corrupt each other's state:
//!
//! * std's `thread::park` word (used by `std::sync::mpsc`, `thread::scope`, reqwest's
//!   blocking client): one per OS thread. A worker learns its own at start (a zero-length
//!   `park_timeout` whose futex call the hook records instead of making); two green
//!   threads parking on it at once lost an unpark (tests/hooks_futex.rs);
//! * any word in the worker's own stack or static TLS (parking_lot's per-thread parker
//!   lives in a thread-local).
//!
//! A per-thread object on the heap that a thread-local points to (the `Arc`'d parker of
//! tokio's multi-thread `block_on`, of the `parking` crate) is not recognised: scanning the
//! thread-locals for pointers near the word was tried, and a small thread-local `Box` made
//! its unrelated heap neighbours look per-thread, which deadlocked std locks.
//!
//! If a worker cannot learn these at start, none of its waits park. Those waits block the
//! worker as they always did, and the watchdog names it ("futex: std::thread::park / std
//! mpsc / a parking_lot lock …"). So do waits from a green thread that is unwinding.
//!
//! # Timed waits
//!
//! A wait with a timeout goes to the kernel: it ends by itself, so the worker is held for
//! at most the timeout. Parking it is what broke embedded runtimes: tokio's current-thread
//! `block_on` with a timer parks in a timed condvar wait while its per-thread "runtime
//! entered" flag is set, and the next green thread of the worker to call `block_on`
//! panicked ("Cannot start a runtime from within a runtime"). Untimed waits are the ones a
//! worker cannot survive in the kernel: a `Mutex`, `RwLock`, `Once` or `Condvar::wait`
//! whose holder or notifier is a green thread parked on the same worker never returns.
//!
//! # Inside the blocking point
//!
//! A wait can start inside weft's own blocking point (a future that `block_on` polls takes
//! a contended std lock). It parks like any other, and then posts the task a wake-up token,
//! since its parks may have consumed the one meant for the outer wait (see
//! `blocking_point::foreign_wait`).
//!
//! A cancel or a `weft::timeout` does not end a futex wait early: std would only call again
//! (it retries `EINTR`). The interrupt takes effect at the green thread's next weft
//! blocking point, as for a std lock on a plain thread.
//!
//! # Limits
//!
//! A green thread parked here may hold per-thread state that weft cannot see: a
//! thread-local `RefCell` borrow, a re-entrant lock owned by the OS thread (std's stdout
//! lock), a foreign runtime's "entered" flag around an untimed park (tokio's multi-thread
//! `Runtime::block_on` parks untimed while its future waits). The next green thread of the
//! worker that touches the same state panics or re-enters it (two green threads of one
//! worker in tokio's `block_on` at once: "Cannot start a runtime from within a runtime"). `WEFT_HOOKS_FUTEX=off`
//! turns this hook off for such a program; `weft::offload` runs such code on a thread of its
//! own. A signal handler that wakes a futex while its thread holds a bucket lock spins;
//! handlers should only write to a pipe (as `signal-hook` does).

use std::cell::Cell;
use std::sync::atomic::AtomicU32;
use std::sync::OnceLock;
use std::time::Duration;

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
    /// What this worker learnt at start; `None` (not a worker, or the probe failed): no
    /// futex wait on this thread parks green.
    static THREAD_WORDS: Cell<Option<ThreadWords>> = const { Cell::new(None) };
}

/// A worker's OS-thread-keyed memory (see the module docs).
#[derive(Clone, Copy)]
struct ThreadWords {
    /// std's `thread::park` word.
    park_word: usize,
    /// The thread's stack and static TLS (glibc puts both in one mapping).
    thread_range: (usize, usize),
}

/// Learns this worker's OS-thread-keyed futex words (see the module docs). Runs on the
/// worker's own thread before its `Thread` handle is published, so no unpark can be
/// pending on it; the loop still tolerates one. If anything cannot be learnt, futex waits
/// on this worker keep going to the kernel.
pub(super) fn learn_thread_words() {
    let mut thread_range = None;
    // SAFETY: a zeroed attribute object is what pthread_getattr_np initialises; it is
    // destroyed after use. The out-parameters are live locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) == 0 {
            let mut addr = std::ptr::null_mut();
            let mut size = 0;
            if libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0 && size > 0 {
                thread_range = Some((addr as usize, addr as usize + size));
            }
            libc::pthread_attr_destroy(&mut attr);
        }
    }
    PROBING.set(true);
    let mut park_word = 0;
    for _ in 0..3 {
        // Consumes a pending token on the first round if there is one; otherwise its
        // futex wait reaches the hook, which records the word and returns at once.
        std::thread::park_timeout(Duration::ZERO);
        if let Some(words) = THREAD_WORDS.get() {
            park_word = words.park_word;
            break;
        }
    }
    PROBING.set(false);
    let (Some(thread_range), true) = (thread_range, park_word != 0) else {
        THREAD_WORDS.set(None);
        return;
    };
    THREAD_WORDS.set(Some(ThreadWords {
        park_word,
        thread_range,
    }));
}

const CMD_MASK: c_int = !(libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME);

/// The hooked `syscall(SYS_futex, addr, op, val, timeout_or_val2, addr2, val3)`: `None`
/// sends the call to the kernel unchanged, `Some(res)` is the result (C convention).
pub(super) fn futex(args: [c_long; 6]) -> Option<c_long> {
    let addr = args[0] as usize;
    let op = args[1] as c_int;
    let cmd = op & CMD_MASK;
    if PROBING.get() && (cmd == libc::FUTEX_WAIT || cmd == libc::FUTEX_WAIT_BITSET) {
        THREAD_WORDS.set(Some(ThreadWords {
            park_word: addr,
            thread_range: (0, 0),
        }));
        super::green::set_errno(libc::ETIMEDOUT);
        return Some(-1);
    }
    let waits = WAITS.get()?;
    let realtime = op & libc::FUTEX_CLOCK_REALTIME != 0;
    match cmd {
        // FUTEX_CLOCK_REALTIME is for FUTEX_WAIT_BITSET only: the kernel says ENOSYS.
        libc::FUTEX_WAIT | libc::FUTEX_WAKE if realtime => None,
        libc::FUTEX_WAIT | libc::FUTEX_WAIT_BITSET => {
            let bitset = if cmd == libc::FUTEX_WAIT {
                u32::MAX
            } else {
                args[5] as u32
            };
            // A timed wait goes to the kernel (see "Timed waits" in the module docs).
            if args[3] != 0 || !eligible(addr, op, bitset) {
                return None;
            }
            blocking_point::foreign_wait(|| wait(waits, addr, args[2] as u32, bitset))
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
        libc::FUTEX_REQUEUE | libc::FUTEX_CMP_REQUEUE | libc::FUTEX_WAKE_OP => {
            // The kernel's atomic operation first, then every weft waiter on the words it
            // names: woken after the change, each re-checks and sees it.
            // SAFETY: the caller's futex call, unchanged.
            let kernel = unsafe { crate::sys::raw_syscall(libc::SYS_futex, args) };
            waits.wake(addr, usize::MAX, u32::MAX);
            waits.wake(args[4] as usize, usize::MAX, u32::MAX);
            Some(kernel)
        }
        _ => None,
    }
}

/// Whether a wait may park the running green thread (see the module docs); the blocking
/// point has the last word ([`blocking_point::foreign_wait`]).
fn eligible(addr: usize, op: c_int, bitset: u32) -> bool {
    if op & libc::FUTEX_PRIVATE_FLAG == 0 || bitset == 0 || addr == 0 || !addr.is_multiple_of(4) {
        // Shared futexes can be woken from another process, straight through the kernel;
        // the rest is the kernel's to refuse.
        return false;
    }
    if !super::green() {
        return false;
    }
    let Some(words) = THREAD_WORDS.get() else {
        return false;
    };
    let (lo, hi) = words.thread_range;
    addr != words.park_word && !(lo..hi).contains(&addr)
}

/// Parks the green thread while `*addr == expected`, until a wake.
fn wait(waits: &AddressWaits, addr: usize, expected: u32, bitset: u32) -> c_long {
    // SAFETY: `addr` is a non-null, aligned futex word by the caller's contract (the kernel
    // would read it too), live for the call; the table only loads it, atomically, as the
    // kernel does.
    let word = unsafe { &*(addr as *const AtomicU32) };
    let site = wait_site!(crate::runtime::WaitReason::Futex { addr });
    let errno = match waits.wait(word, expected, bitset, site, None) {
        Waited::Woken => return 0,
        Waited::Changed => libc::EAGAIN,
        Waited::TimedOut => libc::ETIMEDOUT,
    };
    super::green::set_errno(errno);
    -1
}
