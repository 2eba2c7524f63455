//! The core of weft: everything a green thread is and everything that waits.
//!
//! | module | owns |
//! |---|---|
//! | [`scheduler`] | the task record (`task.rs`), the running task (`context.rs`), workers and their queues, idle/search, the monitor, unwinding and its deadlock diagnosis, the blocked-worker watchdog, the registry of live green threads |
//! | [`park`] | the one park/unpark state machine, for green threads and OS threads |
//! | [`blocking_point`] | the one blocking point: wait records, deadlines, cancellation, parking, and the rule that a claimed wait completes before an interrupt unwinds |
//! | [`coop`] | the cooperative budget: a green thread that never waits yields now and then |
//! | [`wait`] | wait cells (one claim wins) and FIFO wait queues, which channels and locks build on |
//! | `address_wait` | waits keyed by a word's address, with the futex contract (the `hooks` feature's futex waits) |
//! | [`reactor`] | epoll, per-fd readiness, timers |
//! | [`stack`] | guarded, pooled stacks and overflow reports |
//! | [`config`] | `Config`, the `WEFT_*` variables and every default |
//! | [`spin`] | the spin lock behind the wait queues |
//! | [`os_lock`] | the futex lock of weft's own longer sections, which never parks a green thread |
//!
//! The features (`chan`, `sync`, `net`, `io`, `fs`, `process`, `signal`, `time`,
//! `blocking`, `hooks`, `local`, the cancellation API, and the dump and stats views) stand
//! above it and use it; nothing here names them. `tests/layering.rs` keeps that true: it
//! fails when a file under `src/runtime/` names a feature module, except for the few
//! exceptions it lists with their reasons. `sys` is the ground floor both stand on.

// Only the `hooks` feature's futex waits use it (and the loom models check it).
#[cfg(any(feature = "hooks", loom))]
pub(crate) mod address_wait;
pub(crate) mod blocking_point;
pub(crate) mod coop;
pub(crate) mod park;
pub(crate) mod wait;
// The workers' idle protocol, alone, for its loom model (the scheduler is left out of the
// loom build).
#[cfg(loom)]
#[path = "scheduler/idle.rs"]
pub(crate) mod idle_model;
// The reactor's per-fd state and readiness protocol, alone, for its loom models.
#[cfg(loom)]
#[path = "reactor/slab.rs"]
pub(crate) mod reactor_model;
cfg_runtime! {
    pub(crate) mod config;
    pub(crate) mod os_lock;
    pub(crate) mod reactor;
    pub(crate) mod scheduler;
    pub(crate) mod spin;
    pub(crate) mod stack;
    mod wait_reason;

    pub use wait_reason::WaitReason;
}
