//! The blocked-worker watchdog: a worker that has run one green thread without a switch for
//! longer than `Config::blocked_warning` (default 100 ms, `WEFT_BLOCKED_WARN_MS`, 0 turns it
//! off) gets one warning per incident, naming the green thread, its spawn site, how long it
//! has run, how many green threads wait behind it, and what the worker is doing: the
//! syscall it is blocked in (read from `/proc/self/task/TID/syscall`) with the call that
//! most likely made it and the fix, or that it is computing. The warning goes through `log`
//! when the program installed a logger that takes warnings, and to stderr otherwise (a
//! hang must never be invisible), written by a reporter thread so the monitor never blocks.
//!
//! The usual cause is a blocking call that bypasses weft (`std::fs`, `std::thread::sleep`,
//! a crate's own socket) or a long computation; both stall every green thread homed on
//! that worker. Meanwhile the monitor already asks idle workers to steal the stuck worker's
//! not-yet-started green threads (see [`super::monitor`]).

use std::io::Write as _;
use std::sync::{mpsc, OnceLock};

use crate::runtime::os_lock::OsMutex;
use std::time::{Duration, Instant};

use super::task::Task;
use super::Runtime;
use crate::sys;

/// What the monitor remembers per worker: the green thread it saw running, the worker's
/// switch count then, since when, and whether that incident was reported.
#[derive(Clone, Copy)]
pub(crate) struct Watch {
    task: *const Task,
    switches: u64,
    since: Instant,
    warned: bool,
}

// SAFETY: `task` is only compared, never dereferenced (names are read through the registry,
// under its lock).
unsafe impl Send for Watch {}

impl Watch {
    pub(crate) fn new(now: Instant) -> Watch {
        Watch {
            task: std::ptr::null(),
            switches: 0,
            since: now,
            warned: false,
        }
    }
}

/// Watchdog warnings so far (read by `weft::stats`). Relaxed: a statistic.
static WARNINGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Watchdog warnings so far.
pub(crate) fn warnings() -> u64 {
    WARNINGS.load(std::sync::atomic::Ordering::Relaxed)
}

/// One look at every worker; warns about those stuck in one green thread for `threshold`.
pub(crate) fn check(runtime: &Runtime, watches: &mut [Watch], now: Instant, threshold: Duration) {
    use std::sync::atomic::Ordering::{Acquire, Relaxed};
    for (worker, watch) in runtime.workers.iter().zip(watches.iter_mut()) {
        let running = worker.running.load(Acquire) as *const Task;
        let switches = worker.counters.switches.load(Relaxed);
        if running.is_null() || running != watch.task || switches != watch.switches {
            *watch = Watch {
                task: running,
                switches,
                since: now,
                warned: false,
            };
            continue;
        }
        let ran = now.duration_since(watch.since);
        if watch.warned || ran < threshold {
            continue;
        }
        watch.warned = true;
        WARNINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Name it through the registry: listed means alive, while the lock is held.
        let mut described = None;
        for shard in runtime.workers.iter() {
            shard.registry.for_each(|task| {
                if std::ptr::eq(task, running) {
                    let name = task
                        .name
                        .as_deref()
                        .map(|n| format!(" '{n}'"))
                        .unwrap_or_default();
                    described = Some(format!(
                        "green thread {}{name} (spawned at {})",
                        task.id, task.spawned_at
                    ));
                }
            });
        }
        let Some(who) = described else { continue }; // it finished meanwhile
        // What piled up for it meanwhile: woken by others, and spawned but not started.
        let behind = worker.inbox.len() + worker.stealer.len() + worker.placed.len();
        let doing = match sys::thread_syscall(worker.tid.load(Relaxed)) {
            Some(sys::ThreadState::Syscall(nr)) => {
                let (name, cause) = blocked_in(nr);
                format!("It is blocked in the syscall {name}: {cause}")
            }
            Some(sys::ThreadState::Blocked) => "It is blocked outside a syscall: a page fault \
                                                 on a slow file mapping, or the process is \
                                                 stopped."
                .to_owned(),
            Some(sys::ThreadState::Running) => "It is running code, not waiting: a long computation or a busy loop \
                           (call weft::yield_now() in the loop, or run it in \
                           weft::offload(|| ...))."
                .to_owned(),
            None => "A call that blocks outside weft (std::fs, std::thread::sleep, a library's \
                     own socket) or a long computation stalls the worker: wrap it in \
                     weft::offload(|| ...), or use weft::fs, weft::net and weft::sleep."
                .to_owned(),
        };
        let warning = format!(
            "weft: {who} has run on weft-worker-{} for {} ms without a switch; {behind} green \
             thread(s) wait behind it on that worker. {doing}",
            worker.index,
            ran.as_millis(),
        );
        report(warning);
    }
}

/// Hands a warning to the reporter thread, which sends it through `log` when the program
/// installed a logger that takes warnings, and to stderr otherwise: a hang is never
/// invisible, and never reported twice. The monitor never writes itself: a green thread
/// stuck writing to a full stderr pipe (stdio runs in place) would stall the monitor, and
/// with it the reactor polling, work rescue and the unwinding diagnosis.
fn report(warning: String) {
    static REPORTER: OnceLock<OsMutex<Option<mpsc::Sender<String>>>> = OnceLock::new();
    let reporter = REPORTER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<String>();
        let started = std::thread::Builder::new()
            .name("weft-reporter".into())
            .spawn(move || {
                for warning in rx {
                    if log::max_level() >= log::LevelFilter::Warn {
                        log::warn!("{warning}");
                    } else {
                        // A closed stderr is no reason to die: `writeln!`, not `eprintln!`.
                        let _ = writeln!(std::io::stderr(), "{warning}");
                    }
                }
            });
        OsMutex::new(started.ok().map(|_| tx))
    });
    let reporter = reporter.lock();
    match reporter.as_ref() {
        Some(tx) => {
            let _ = tx.send(warning);
        }
        // No thread could be started (a thread limit): the raw write cannot block on a lock.
        None => sys::write_stderr_raw(format!("{warning}\n").as_bytes()),
    }
}

/// The name of syscall `nr`, and what a green thread blocked in it most likely called, with
/// the fix. Numbers are the target's own (`libc::SYS_*`).
fn blocked_in(nr: libc::c_long) -> (String, &'static str) {
    use libc::*;
    const SLEEP: &str = "std::thread::sleep or another timed sleep outside weft; use \
                         weft::sleep.";
    const NET: &str = "a socket that weft does not own (std::net, or a library's own \
                       client); use weft::net, the `hooks` feature, or weft::offload(|| ...).";
    const FILE: &str = "file IO outside weft (std::fs, a library writing or syncing a file); \
                        use weft::fs or weft::offload(|| ...).";
    let known: &[(c_long, &str, &'static str)] = &[
        (
            SYS_futex,
            "futex",
            "std::thread::park, std::sync::mpsc, a std or parking_lot lock or condvar held \
             by someone else, a OnceLock being initialised elsewhere, or a thread join, in a \
             green thread; use weft::chan and weft::sync, or weft::offload(|| ...) for a \
             library that waits like this.",
        ),
        (SYS_nanosleep, "nanosleep", SLEEP),
        (SYS_clock_nanosleep, "clock_nanosleep", SLEEP),
        (
            SYS_epoll_pwait,
            "epoll_pwait",
            "an event loop outside weft, most often a runtime embedded in a library; call it \
             through weft::offload(|| ...).",
        ),
        (SYS_ppoll, "ppoll", NET),
        (SYS_pselect6, "pselect6", NET),
        (SYS_read, "read", "a blocking read outside weft (a pipe, a terminal, a socket or a \
                           file weft does not own); use weft::net, weft::fs or \
                           weft::offload(|| ...)."),
        (SYS_write, "write", "a blocking write outside weft (a full pipe, such as stdout \
                             under a log collector, or a socket weft does not own); use \
                             weft::offload(|| ...) or weft's own types."),
        (SYS_readv, "readv", NET),
        (SYS_writev, "writev", NET),
        (SYS_recvfrom, "recvfrom", NET),
        (SYS_recvmsg, "recvmsg", NET),
        (SYS_sendto, "sendto", NET),
        (SYS_sendmsg, "sendmsg", NET),
        (SYS_accept, "accept", NET),
        (SYS_accept4, "accept4", NET),
        (SYS_connect, "connect", NET),
        (SYS_pread64, "pread64", FILE),
        (SYS_pwrite64, "pwrite64", FILE),
        (SYS_fsync, "fsync", FILE),
        (SYS_fdatasync, "fdatasync", FILE),
        (SYS_flock, "flock", FILE),
        (SYS_fcntl, "fcntl", "a file lock (F_SETLKW) held elsewhere; use \
                              weft::offload(|| ...)."),
        (SYS_openat, "openat", "opening a FIFO whose other end is not open yet (or a slow \
                                file system); use weft::offload(|| ...)."),
        (SYS_wait4, "wait4", "waiting for a child process outside weft \
                              (std::process::Command::status or wait); use weft::process."),
        (SYS_waitid, "waitid", "waiting for a child process outside weft; use \
                                weft::process."),
    ];
    // Calls only some targets have (aarch64 has only the `p` forms).
    #[cfg(target_arch = "x86_64")]
    let legacy: &[(c_long, &str, &'static str)] = &[
        (
            SYS_epoll_wait,
            "epoll_wait",
            "an event loop outside weft, most often a runtime embedded in a library (tokio's \
             block_on inside a synchronous client such as postgres or reqwest::blocking); \
             call it through weft::offload(|| ...).",
        ),
        (SYS_poll, "poll", NET),
        (SYS_select, "select", NET),
    ];
    #[cfg(not(target_arch = "x86_64"))]
    let legacy: &[(c_long, &str, &'static str)] = &[];
    match known
        .iter()
        .chain(legacy)
        .find(|(number, _, _)| *number == nr)
    {
        Some((_, name, cause)) => ((*name).to_owned(), cause),
        None => (
            format!("number {nr}"),
            "a blocking call outside weft; wrap it in weft::offload(|| ...).",
        ),
    }
}
