//! The `hooks` feature: weft defines the libc entry points that block on sockets, pipes,
//! sleeps and name lookups, so that code weft does not wrap — `std::net`, `std::thread::sleep`,
//! third-party synchronous crates (`ureq`, `redis`, …) — parks the green thread instead of
//! blocking its worker.
//!
//! # How calls reach weft
//!
//! With the feature on, this module defines `read`, `write`, `readv`, `writev`, `recv`,
//! `recvfrom`, `recvmsg`, `send`, `sendto`, `sendmsg`, `connect`, `accept`, `accept4`,
//! `poll`, `nanosleep`, `clock_nanosleep`, `usleep`, `sleep`, `getaddrinfo`, `close`, `dup2`,
//! `dup3`, `wait4`, `waitpid`, `pthread_join`, `open`, `open64`, `openat`, `openat64` and
//! (on x86_64 and aarch64) `syscall` as `#[no_mangle]` C functions. The
//! linker binds every call in the program's own code (std and every crate included) to these
//! definitions instead of libc's, and exports those that shared libraries the program links
//! to (libssl, say) refer to, so their calls come here too. Calls libc makes internally reach
//! libc directly.
//!
//! # The rule every hooked call follows
//!
//! **A hooked call parks only when no per-OS-thread state can be held across it.** A green
//! thread that parks inside someone else's code leaves that code's per-thread state (a lock
//! owned by the OS thread, a re-entrant lock's count, a thread-local "in use" flag) where
//! the next green thread of the same worker walks into it: `println!` into a full pipe
//! parked while holding std's re-entrant stdout lock, and the next printer panicked with
//! "RefCell already borrowed"; SQLite parked a file write while holding a pthread mutex, and
//! the next green thread self-deadlocked the worker. Where weft cannot know that nothing is
//! held, the call does one of:
//!
//! 1. *runs in place*, blocking the worker (stdio, regular files, everything weft cannot
//!    wait on); the watchdog names a worker stuck so, with the syscall and the fix;
//! 2. *parks* where the wait is weft's own and nothing foreign is held across it by
//!    construction: sockets and pipes whose only per-thread state is the caller's buffer,
//!    sleeps, and `getaddrinfo` on the blocking pool (libc's resolver holds nothing of the
//!    calling thread's while it waits);
//! 3. *hands off* to an OS thread that runs nothing else (the blocking pool).
//!
//! # What a hooked call does
//!
//! The first thing each hook checks is one thread-local load: is a green thread running here,
//! and is it not unwinding? If not — a plain thread, a blocking-pool thread, a worker
//! between green threads, a signal handler on a plain thread, a thread starting or exiting —
//! the call goes straight to libc's own function (the *pass-through path*: an indirect call
//! through a table a load-time constructor fills with `dlsym(RTLD_NEXT)`, or a raw `syscall`
//! where the table is empty), so it is async-signal-safe and needs no initialisation; so is
//! every call in a forked child, whose `close`/`dup2`/`dup3` also leave the fd tables alone
//! (it shares the parent's epoll set). Otherwise, per fd (cached in a table indexed by fd,
//! reset by the hooked `close`, `dup2` and `dup3`):
//!
//! * fds weft itself registered (its sockets, `NonBlocking` fds; the reactor says which)
//!   pass straight through: weft already waits for them its own way;
//! * stdio (fds 0, 1 and 2) and regular files run in place (see the rule);
//! * a socket is tried with `MSG_DONTWAIT`; on `EAGAIN`, if the caller made the fd
//!   non-blocking itself (`O_NONBLOCK`, checked only then), the caller gets `EAGAIN` as it
//!   expects; otherwise the green thread parks on the reactor until the fd is ready, within
//!   the socket's `SO_RCVTIMEO`/`SO_SNDTIMEO` (past it, `EAGAIN`, which std reports as
//!   `WouldBlock`, as it does without weft). `connect` completes through writability and
//!   `SO_ERROR` (a Unix socket's full backlog, `EAGAIN`, is retried after short green
//!   sleeps, as a blocking connect waits); `accept` is tried with `O_NONBLOCK` set and
//!   restored;
//! * a pipe is tried with `preadv2`/`pwritev2` and `RWF_NOWAIT`, and parks the same way; a
//!   named FIFO refuses `RWF_NOWAIT` (so do pipes on kernels before about 6.4), so it is
//!   tried with `O_NONBLOCK` set around the call (a FIFO read passed through blocked the
//!   worker that its writer, a green thread, needed);
//! * blocking calls keep their whole contract: `write`, `writev`, `send`, `sendto` and
//!   `sendmsg` on a stream send everything (ancillary data with the first part only),
//!   `recv`/`recvfrom`/`recvmsg` with `MSG_WAITALL` receive everything (or up to end of
//!   file or an error); a cancel or a passed `weft::timeout` inside a hooked call never
//!   unwinds into the C caller: the call fails with `ECANCELED` or `ETIMEDOUT` (sleeps with
//!   `EINTR`), and the interrupt stays pending, so the green thread's next weft blocking
//!   point unwinds;
//! * anything else (terminals, devices, epoll fds) passes through;
//! * `poll` with a timeout waits on the reactor for a single fd, and in short sleeps of
//!   1–10 ms for several; the sleeps are `weft::sleep` (`clock_nanosleep` only for the
//!   clocks a sleep measures; any other goes to the kernel, which may say `EINVAL`);
//!   `getaddrinfo` runs on the pool;
//! * `wait4`/`waitpid` for one child (std's `Command::status` and `Child::wait`), without
//!   `WNOHANG`, parks on the child's pidfd and then reaps it, as `weft::process` does;
//! * `pthread_join` (std's `JoinHandle::join`) is handed to the blocking pool: its wait is
//!   a futex keyed by the joined thread, which only an OS thread can share;
//! * opening a FIFO (without `O_NONBLOCK`) waits for the other end, which may be a green
//!   thread of the same worker: a green thread's open of a FIFO (one `fstatat` tells) is
//!   handed to the blocking pool; every other open is the plain call;
//! * `syscall(SYS_futex, …)`, which std's `Mutex`, `RwLock`, `Condvar`, `Once`/`OnceLock`
//!   and `Barrier` wait with: a private wait on a word that is not the OS thread's own
//!   (std's `thread::park` word, or anything in the worker's stack or static TLS, such as
//!   parking_lot's per-thread parker) parks the green thread in an address-keyed table,
//!   and every wake, from any thread, releases those first (see [`futex`]). Every other
//!   system call made through `syscall` goes straight to the kernel.
//!
//! # weft's own calls
//!
//! weft's `sys` layer makes the calls the hooks replace as raw system calls
//! (`sys::raw_syscall`, the `syscall` instruction itself) when this feature is on, so they
//! never enter a hook; its own futex (a green thread's park word) always does. The std and socket2 calls inside `weft::net` do enter the hooks
//! (they are `recv`, `send` and friends in the same binary), and take the first branch
//! above: weft marks every fd it registers with the reactor. `getaddrinfo`, which is not a
//! syscall, is reached through `dlsym(RTLD_NEXT, "getaddrinfo")`: the next definition after
//! this one, libc's.
//!
//! # Limits
//!
//! fds above [`fds::MAX_FDS`] pass through. An fd closed behind weft's back (`close_range`,
//! a raw `close` syscall from C code, libc's internal closes) leaves a stale entry: if the
//! number is reused for a different kind of file, a call on it can fail, and a wait can hang
//! on the old file's registration. `accept` on a blocking listener toggles `O_NONBLOCK`
//! around the call, which another thread blocking in `accept` on the same listener can
//! observe. A signal handler that runs on a green thread goes through the green path (and can
//! take the registration map's lock); keep handlers to non-blocking writes, as `signal-hook`
//! does.

mod entry;
mod fds;
mod futex;
mod green;

/// Set in a forked child (by a `pthread_atfork` handler the load-time constructor
/// installs): the child has none of the parent's workers, so every call passes through.
pub(crate) static FORKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this is a forked child (see [`FORKED`]).
#[inline]
fn forked() -> bool {
    FORKED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether a hooked call on this thread should take the green path: a green thread is
/// running, it is not unwinding, and this is not a forked child. Async-signal-safe: a const
/// thread-local load and two atomic loads.
#[inline]
fn green() -> bool {
    !crate::runtime::scheduler::context::current_task().is_null()
        && !FORKED.load(std::sync::atomic::Ordering::Relaxed)
        && !std::thread::panicking()
}
