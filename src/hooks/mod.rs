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
//! `dup3`, `pread`, `pwrite`, `pread64` and `pwrite64` as `#[no_mangle]` C functions. The
//! linker binds every call in the program's own code (std and every crate included) to these
//! definitions instead of libc's. Calls libc makes internally, and calls from other shared
//! libraries, still reach libc directly.
//!
//! # What a hooked call does
//!
//! The first thing each hook checks is one thread-local load: is a green thread running here,
//! and is it not unwinding? If not — a plain thread, a blocking-pool thread, a worker
//! between green threads, a signal handler on a plain thread, a thread starting or exiting —
//! the call goes straight to the kernel (the *pass-through path*), with a raw `syscall`, so
//! it is async-signal-safe and needs no initialisation. Otherwise, per fd (cached in a table
//! indexed by fd, reset by the hooked `close`, `dup2` and `dup3`):
//!
//! * fds weft itself registered (its sockets, `NonBlocking` fds) pass straight through:
//!   weft already waits for them its own way;
//! * a socket is tried with `MSG_DONTWAIT`; on `EAGAIN`, if the caller made the fd
//!   non-blocking itself (`O_NONBLOCK`, checked only then), the caller gets `EAGAIN` as it
//!   expects; otherwise the green thread parks on the reactor until the fd is ready, within
//!   the socket's `SO_RCVTIMEO`/`SO_SNDTIMEO` (past it, `EAGAIN`, which std reports as
//!   `WouldBlock`, as it does without weft). `connect` completes through writability and
//!   `SO_ERROR`; `accept` is tried with `O_NONBLOCK` set and restored;
//! * a pipe or FIFO is tried with `preadv2`/`pwritev2` and `RWF_NOWAIT`, and parks the same
//!   way;
//! * a regular file is read or written with `RWF_NOWAIT` on the worker (a page-cache hit
//!   costs one syscall), and a miss goes to the blocking pool (see `weft::fs`);
//! * anything else (terminals, devices, epoll fds) passes through;
//! * `poll` with a timeout waits on the reactor for a single fd, and in short sleeps of
//!   1–10 ms for several; the sleeps are `weft::sleep`; `getaddrinfo` runs on the pool.
//!
//! # weft's own calls
//!
//! weft's `sys` layer makes its syscalls with `libc::syscall` when this feature is on, so
//! they never enter a hook. The std and socket2 calls inside `weft::net` do enter the hooks
//! (they are `recv`, `send` and friends in the same binary), and take the first branch
//! above: weft marks every fd it registers with the reactor. `getaddrinfo`, which is not a
//! syscall, is reached through `dlsym(RTLD_NEXT, "getaddrinfo")`: the next definition after
//! this one, libc's.
//!
//! # Limits
//!
//! fds above [`fds::MAX_FDS`] pass through. An fd closed behind weft's back (a raw `close`
//! syscall from C code) may leave a stale entry; a reused number is then re-registered when
//! it first has to wait (an `EPOLL_CTL_MOD` that fails with `ENOENT` tells). A signal handler
//! that runs on a green thread and does a blocking write could park inside the handler; keep
//! handlers to non-blocking writes (as `signal-hook` does).

mod entry;
mod fds;
mod green;

pub(crate) use fds::mark_weft_owned;

/// Whether a hooked call on this thread should take the green path: a green thread is
/// running and it is not unwinding. Async-signal-safe: a const thread-local load.
#[inline]
fn green() -> bool {
    !crate::scheduler::context::current_task().is_null() && !std::thread::panicking()
}
