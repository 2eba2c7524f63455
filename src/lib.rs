//! weft: stackful green threads for Rust.
//!
//! Every green thread runs on its own guarded, pooled stack and switches with `corosensei`.
//! An M:N pool of worker threads runs them, stealing work from each other. Code in a green
//! thread is plain synchronous Rust: a call that would block parks the green thread instead,
//! and the worker runs others meanwhile.
//!
//! ```
//! let handles: Vec<_> = (0..4)
//!     .map(|i| weft::go!(move || {
//!         weft::yield_now();
//!         i * 10
//!     }))
//!     .collect();
//! let results: Vec<i32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
//! assert_eq!(results, [0, 10, 20, 30]);
//! ```
//!
//! # The soundness rule: green threads stay home
//!
//! Moving a suspended stack to another OS thread is unsound in general. The compiler may keep
//! a thread-local's address in a register across a call, and `!Send` values (an `Rc` shared
//! with a thread-local, a re-entrant lock's guard) may sit on the stack across a blocking
//! call; after a move both would refer to the old thread. So:
//!
//! **A green thread may be stolen by any worker until it first runs; once started, it always
//! resumes on that worker, its home.** Until it runs, its stack holds only the closure, which
//! is `Send`; afterwards it never changes thread. That is why [`spawn`] is safe with only a
//! `Send` bound. A started green thread woken from elsewhere is queued in its home worker's
//! inbox. [`Builder::migratable`] (`unsafe`) opts one green thread into full migration.
//!
//! The runtime's own thread-local is only read through non-inlined accessors, so no
//! thread-local address survives a switch even in the runtime's code (`asm-notes/` shows the
//! generated code).
//!
//! If a destructor blocks while a green thread is unwinding from a panic, the call blocks the
//! OS thread instead of switching: std counts panics per OS thread, and a switch mid-unwind
//! would make the other green threads on that worker appear to be panicking. The call still
//! wakes promptly, but the worker's started green threads wait meanwhile; when they are what
//! the destructor waits for, that is a deadlock, which weft diagnoses by name after a second
//! and ends with an abort after `WEFT_DEADLOCK_ABORT_MS` rather than hang (see the README's
//! "Blocking while unwinding"). Keep blocking
//! calls out of destructors that can run during a panic, or give them a timeout.
//!
//! # Limits
//!
//! * Use [`net`], [`fs`], [`process`], [`io::NonBlocking`], [`sleep`], [`chan`] and [`sync`]
//!   for IO and waiting: they park the green thread (on the reactor, a wait queue, or while
//!   the blocking pool does the work). A green thread that blocks in a call weft does not
//!   wrap (`std::fs`, a third-party crate's socket), or computes for long, blocks its worker
//!   (its queued but not-yet-started green threads are stolen by other workers); wrap such a
//!   call in [`offload`].
//! * Each green thread costs about one 4 KiB page when idle. Stacks are carved from large
//!   mappings with `MADV_GUARD_INSTALL` guards (Linux ≥ 6.13), so `vm.max_map_count` does not
//!   bound the number of green threads; on older kernels the `mprotect` fallback costs two
//!   mappings per stack, about 32,000 green threads at the default limit. Exhausting it is an
//!   error that names the limit, never a crash.
//!
//! # Configuration
//!
//! [`Config`] in code, or `WEFT_WORKERS` and `WEFT_STACK_SIZE` in the environment, before the
//! first spawn. `WEFT_GUARD_PAGES=mprotect` forces the guard-page fallback (for testing).

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs, missing_debug_implementations)]

/// Items of the full runtime, left out of the loom build (which model-checks only the park
/// layer, the wait cells, the blocking point, the channels and the locks; see `src/loom.rs`).
/// Every `cfg(loom)` split of the crate root is here.
macro_rules! cfg_runtime {
    ($($item:item)*) => {
        $(
            #[cfg(not(loom))]
            $item
        )*
    };
}

// The core: task record, park, the one blocking point, wait cells, scheduler, reactor,
// stacks, configuration (see `src/runtime/mod.rs`). Nothing in it names a feature module.
mod runtime;

// Features, each in its own room, on top of the core.
pub mod chan;
mod loom;
pub mod sync;
cfg_runtime! {
    mod block_on;
    mod blocking;
    mod builder;
    mod coroutine;
    mod dump;
    pub mod fs;
    mod interrupt;
    pub mod io;
    mod join;
    mod local;
    pub mod net;
    pub mod process;
    mod scope;
    pub mod signal;
    mod stats;
    mod sys;
    mod time;

    // The runtime's public API; the loom build has only `chan` and `sync`.
    pub use block_on::block_on;
    pub use blocking::offload;
    pub use builder::{spawn, Builder};
    pub use coroutine::{current, is_coroutine, park, yield_now, Coroutine, CoroutineId};
    pub use dump::{dump, dump_json, threads, ThreadInfo, ThreadState};
    pub use interrupt::{deadline, is_cancelled, timeout, Cancelled, Elapsed};
    pub use join::JoinHandle;
    pub use local::LocalKey;
    pub use runtime::config::{Config, ConfigError, MAX_WORKERS};
    pub use runtime::stack::{DEFAULT_STACK_SIZE, MAX_STACK_SIZE, MIN_STACK_SIZE};
    pub use runtime::WaitReason;
    pub use scope::{scope, Scope, ScopedJoinHandle};
    pub use stats::{stats, Stats, WorkerStats};
    pub use time::{park_timeout, sleep, sleep_until};
}
#[cfg(all(feature = "hooks", not(loom)))]
mod hooks;

/// Spawns a green thread, like Go's `go` statement: `weft::go!(closure)` is
/// [`weft::spawn(closure)`](spawn) and returns its [`JoinHandle`].
///
/// ```
/// let handle = weft::go!(|| "hello from a green thread");
/// assert_eq!(handle.join().unwrap(), "hello from a green thread");
/// ```
#[macro_export]
macro_rules! go {
    ($closure:expr $(,)?) => {
        $crate::spawn($closure)
    };
}

cfg_runtime! {
    /// Runs `f` as a green thread and blocks the calling thread until it returns; re-raises its
    /// panic. Meant for `main` and for tests: code inside can use every blocking-looking API.
    ///
    /// ```
    /// let n = weft::run(|| {
    ///     assert!(weft::is_coroutine());
    ///     weft::spawn(|| 21).join().unwrap() * 2
    /// });
    /// assert_eq!(n, 42);
    /// ```
    pub fn run<F, T>(f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        scope(|s| match s.spawn(f).join() {
            Ok(value) => value,
            Err(payload) => std::panic::resume_unwind(payload),
        })
    }

    // Compile-time guarantees of the public contract: handles cross threads freely.
    const _: () = {
        const fn send_sync<T: Send + Sync>() {}
        send_sync::<Coroutine>();
        send_sync::<CoroutineId>();
        send_sync::<JoinHandle<u32>>();
        send_sync::<Config>();
        send_sync::<net::TcpStream>();
        send_sync::<net::TcpListener>();
        send_sync::<net::UdpSocket>();
        send_sync::<net::unix::UnixStream>();
        send_sync::<chan::Sender<u32>>();
        send_sync::<chan::Receiver<u32>>();
        send_sync::<sync::Mutex<u32>>();
        send_sync::<sync::RwLock<u32>>();
        send_sync::<sync::Condvar>();
        send_sync::<sync::Semaphore>();
        send_sync::<sync::Barrier>();
        send_sync::<sync::WaitGroup>();
        send_sync::<sync::OnceLock<u32>>();
    };
}
