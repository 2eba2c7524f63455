//! What every green thread is doing, and where: [`threads`], [`dump`], [`dump_json`].
//!
//! Every public blocking call of weft is `#[track_caller]`. When one of them parks, the green
//! thread stores three words: the caller's source location (`Location::caller()`, which the
//! compiler passes down the call chain for free), why it waits (a packed [`WaitReason`]) and
//! a coarse timestamp. Nothing is recorded when a call does not park. A dump then says, for
//! every green thread, the user's line it waits at, why, and for how long.
//!
//! # The text format (stable)
//!
//! ```text
//! weft dump: 3 green threads on 2 workers, 1 more not started yet
//!
//! green thread 12 'conn-7' [parked: channel recv (0x55e4c0d2a7b0), 2.31 s]
//!     waiting at src/server.rs:48:25
//!     spawned at src/server.rs:31:9
//!     home weft-worker-1, stack 256 KiB (8 KiB resident)
//!
//! green thread 4 [running on weft-worker-0]
//!     spawned at src/main.rs:10:5
//!     home weft-worker-0, stack 256 KiB (12 KiB resident)
//! ```
//!
//! One header line, then one block per green thread (by id), separated by blank lines: the
//! first line is `green thread ID ['NAME'] [STATE]`, where STATE is `running on WORKER`,
//! `runnable`, `parked: REASON, SECONDS s` or `blocked while unwinding: REASON, SECONDS s`;
//! then `waiting at FILE:LINE:COL` (parked and blocked only), `spawned at FILE:LINE:COL`, and
//! `home WORKER, stack SIZE (RESIDENT resident)`. [`dump_json`] has the same fields.
//!
//! `WEFT_DUMP_SIGNAL=1` prints the dump to stderr on `SIGQUIT` (Ctrl-\) and the process
//! carries on: the handler only sets a flag, and the monitor thread writes the dump.

use std::fmt::{self, Write as _};
use std::panic::Location;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::time::Duration;

use crate::runtime::scheduler::task::CoroutineId;
use crate::runtime::park;
use crate::runtime::scheduler::{self, registry, task::Task};
use crate::runtime::WaitReason;

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WaitReason::Park => f.write_str("park"),
            WaitReason::Sleep => f.write_str("sleep"),
            WaitReason::Join { id } => write!(f, "join of green thread {id}"),
            WaitReason::Scope => f.write_str("scope end"),
            WaitReason::Recv { channel } => write!(f, "channel recv ({channel:#x})"),
            WaitReason::Send { channel } => write!(f, "channel send ({channel:#x})"),
            WaitReason::Select => f.write_str("select"),
            WaitReason::Mutex { lock } => write!(f, "mutex ({lock:#x})"),
            WaitReason::RwLock { lock } => write!(f, "rwlock ({lock:#x})"),
            WaitReason::Condvar { condvar } => write!(f, "condvar ({condvar:#x})"),
            WaitReason::Semaphore { semaphore } => write!(f, "semaphore ({semaphore:#x})"),
            WaitReason::Read { fd } => write!(f, "read fd {fd}"),
            WaitReason::Write { fd } => write!(f, "write fd {fd}"),
            WaitReason::Accept { fd } => write!(f, "accept fd {fd}"),
            WaitReason::Connect { fd } => write!(f, "connect fd {fd}"),
            WaitReason::ChildExit { fd } => write!(f, "child exit (pidfd {fd})"),
            WaitReason::Offload => f.write_str("offload"),
            WaitReason::BlockOn => f.write_str("block_on"),
            WaitReason::Futex { addr } => write!(f, "futex ({addr:#x}: a std lock, condvar or once)"),
        }
    }
}

/// What a green thread is doing right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThreadState {
    /// Running on this worker.
    Running {
        /// The worker's index (`weft-worker-N`).
        worker: usize,
    },
    /// Queued to run.
    Runnable,
    /// Waiting (the worker runs others).
    Parked(WaitReason),
    /// Waiting while it unwinds from a panic or cancel, which blocks its worker's OS thread.
    BlockedUnwinding(WaitReason),
}

/// One green thread in a [`threads`] snapshot. See the [module docs](self) for the format.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ThreadInfo {
    /// Its id.
    pub id: CoroutineId,
    /// Its name, if it was given one.
    pub name: Option<String>,
    /// What it is doing.
    pub state: ThreadState,
    /// The source line it waits at (parked or blocked only): the caller of the weft call
    /// that parked.
    pub waiting_at: Option<&'static Location<'static>>,
    /// How long it has been waiting (parked or blocked only), to the monitor's clock
    /// (1–20 ms steps).
    pub waiting_for: Option<Duration>,
    /// Where it was spawned.
    pub spawned_at: &'static Location<'static>,
    /// The worker it stays on (`None` for a migratable green thread).
    pub home_worker: Option<usize>,
    /// Its usable stack size in bytes.
    pub stack_size: usize,
    /// Bytes of its stack resident in memory (`mincore`): its high-water mark, roughly
    /// (a pooled stack keeps the shallow pages its previous owners touched).
    pub stack_resident: usize,
}

/// A snapshot of every started green thread, ordered by id. Green threads that have not
/// started yet are not listed (see [`dump`] for their count). Takes each worker's list lock
/// briefly; the figures of one green thread are read without stopping it.
///
/// ```
/// use std::time::Duration;
///
/// weft::run(|| {
///     let sleeper = weft::Builder::new().name("napper").spawn(|| weft::sleep(Duration::from_secs(5))).unwrap();
///     weft::sleep(Duration::from_millis(20));
///     let me = weft::threads().into_iter().find(|t| t.name.as_deref() == Some("napper")).unwrap();
///     assert_eq!(me.state, weft::ThreadState::Parked(weft::WaitReason::Sleep));
///     assert_eq!(me.waiting_at.unwrap().file(), file!());
///     sleeper.cancel();
/// });
/// ```
pub fn threads() -> Vec<ThreadInfo> {
    let Some(runtime) = scheduler::try_runtime() else {
        return Vec::new();
    };
    let now = registry::now_ms();
    let mut infos = Vec::new();
    let mut stacks = Vec::new();
    for worker in runtime.workers.iter() {
        let running = worker.running.load(Acquire);
        worker.registry.for_each(|task| {
            let state = if std::ptr::eq(task, running) {
                ThreadState::Running {
                    worker: worker.index,
                }
            } else {
                match task.park_state.load(Acquire) {
                    park::PARKED => ThreadState::Parked(reason(task)),
                    park::BLOCKED => ThreadState::BlockedUnwinding(reason(task)),
                    _ => match running_elsewhere(runtime, task) {
                        Some(worker) => ThreadState::Running { worker },
                        None => ThreadState::Runnable,
                    },
                }
            };
            let waiting = matches!(
                state,
                ThreadState::Parked(_) | ThreadState::BlockedUnwinding(_)
            );
            let site = task.wait_site.load(Relaxed);
            // SAFETY: only `&'static Location`s are ever stored (or null).
            let site: Option<&'static Location<'static>> = unsafe { site.as_ref() };
            infos.push(ThreadInfo {
                id: task.id,
                name: task.name.as_deref().map(str::to_owned),
                state,
                waiting_at: site.filter(|_| waiting),
                waiting_for: waiting.then(|| {
                    Duration::from_millis(now.saturating_sub(task.wait_since.load(Relaxed)))
                }),
                spawned_at: task.spawned_at,
                home_worker: task.pinned_home(),
                stack_size: task.stack_size,
                // Filled in below, outside the list's lock (a syscall per stack).
                stack_resident: 0,
            });
            stacks.push((task.guard_range.1, task.stack_size));
        });
    }
    for (info, (low, size)) in infos.iter_mut().zip(stacks) {
        // The stack may have been reused meanwhile: a figure for that instant, not unsafe
        // (slots are never unmapped).
        info.stack_resident = crate::sys::resident_bytes(low, size);
    }
    infos.sort_by_key(|info| info.id);
    infos
}

fn reason(task: &Task) -> WaitReason {
    WaitReason::decode(task.wait_reason.load(Relaxed))
}

/// A migratable green thread may run on a worker other than the list it is in.
fn running_elsewhere(runtime: &scheduler::Runtime, task: &Task) -> Option<usize> {
    runtime
        .workers
        .iter()
        .find(|w| std::ptr::eq(w.running.load(Relaxed), task))
        .map(|w| w.index)
}

/// Green threads spawned but not started yet (approximate while things run).
fn not_started() -> u64 {
    let stats = crate::stats();
    let started: u64 = stats.per_worker.iter().map(|w| w.homed as u64).sum();
    stats.live.saturating_sub(started)
}

fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

/// The [`threads`] snapshot as text, in the shape of Go's goroutine dump (the format is in
/// the [module docs](self)).
pub fn dump() -> String {
    let threads = threads();
    let workers = scheduler::try_runtime().map_or(0, |r| r.workers.len());
    let mut out = format!(
        "weft dump: {} green threads on {workers} workers, {} more not started yet\n",
        threads.len(),
        not_started()
    );
    for t in &threads {
        let name = t
            .name
            .as_deref()
            .map(|n| format!(" '{n}'"))
            .unwrap_or_default();
        let secs = t.waiting_for.unwrap_or_default().as_secs_f64();
        let state = match t.state {
            ThreadState::Running { worker } => format!("running on weft-worker-{worker}"),
            ThreadState::Runnable => "runnable".to_owned(),
            ThreadState::Parked(reason) => format!("parked: {reason}, {secs:.2} s"),
            ThreadState::BlockedUnwinding(reason) => {
                format!("blocked while unwinding: {reason}, {secs:.2} s")
            }
        };
        let _ = writeln!(out, "\ngreen thread {}{name} [{state}]", t.id);
        if let Some(at) = t.waiting_at {
            let _ = writeln!(out, "    waiting at {at}");
        }
        let _ = writeln!(out, "    spawned at {}", t.spawned_at);
        let home = t.home_worker.map_or_else(
            || "none (migratable)".to_owned(),
            |w| format!("weft-worker-{w}"),
        );
        let _ = writeln!(
            out,
            "    home {home}, stack {} ({} resident)",
            size(t.stack_size),
            size(t.stack_resident)
        );
    }
    out
}

/// The [`threads`] snapshot as JSON: `{"workers": N, "not_started": N, "threads": [{"id",
/// "name", "state", "worker", "reason", "waiting_at", "waiting_for_ms", "spawned_at",
/// "home_worker", "stack_size", "stack_resident"}]}`, with `null` for what does not apply.
/// `state` is `"running"`, `"runnable"`, `"parked"` or `"blocked_unwinding"`, `reason` the
/// text of [`WaitReason`]'s `Display`, locations `"file:line:column"`.
pub fn dump_json() -> String {
    let threads = threads();
    let workers = scheduler::try_runtime().map_or(0, |r| r.workers.len());
    let mut out = format!(
        "{{\"workers\":{workers},\"not_started\":{},\"threads\":[",
        not_started()
    );
    for (i, t) in threads.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let (state, worker, reason) = match t.state {
            ThreadState::Running { worker } => ("running", Some(worker), None),
            ThreadState::Runnable => ("runnable", None, None),
            ThreadState::Parked(r) => ("parked", None, Some(r)),
            ThreadState::BlockedUnwinding(r) => ("blocked_unwinding", None, Some(r)),
        };
        let _ = write!(
            out,
            "{{\"id\":{},\"name\":{},\"state\":\"{state}\",\"worker\":{},\"reason\":{},\
             \"waiting_at\":{},\"waiting_for_ms\":{},\"spawned_at\":{},\"home_worker\":{},\
             \"stack_size\":{},\"stack_resident\":{}}}",
            t.id,
            json_opt_str(t.name.as_deref()),
            json_opt(worker),
            json_opt_str(reason.map(|r| r.to_string()).as_deref()),
            json_opt_str(t.waiting_at.map(|l| l.to_string()).as_deref()),
            json_opt(t.waiting_for.map(|d| d.as_millis())),
            json_str(&t.spawned_at.to_string()),
            json_opt(t.home_worker),
            t.stack_size,
            t.stack_resident,
        );
    }
    out.push_str("]}");
    out
}

fn json_opt<T: fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "null".to_owned(), |v| v.to_string())
}

fn json_opt_str(value: Option<&str>) -> String {
    value.map_or_else(|| "null".to_owned(), json_str)
}

fn json_str(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
