//! Runtime configuration: [`Config`] in code, `WEFT_*` variables in the environment.
//!
//! Precedence, per setting: a value given to [`Config::apply`] wins; otherwise the environment
//! variable; otherwise the default. Settings are read once, when the runtime starts (on the
//! first spawn), and cannot change afterwards.
//!
//! | setting    | `Config` method | variable          | default                          |
//! |------------|-----------------|-------------------|----------------------------------|
//! | workers    | `workers(n)`    | `WEFT_WORKERS`    | `std::thread::available_parallelism` |
//! | stack size | `stack_size(b)` | `WEFT_STACK_SIZE` | 256 KiB                          |
//! | blocking threads | `max_blocking_threads(n)` | `WEFT_MAX_BLOCKING_THREADS` | 512 |
//! | watchdog | `blocked_warning(d)` | `WEFT_BLOCKED_WARN_MS` | 100 ms (0: off) |
//!
//! Read by the monitor at start, environment only: `WEFT_DEADLOCK_ABORT_MS` (see
//! `scheduler::unwinding`), `WEFT_SCHEDTRACE=ms` (one line of scheduler figures to stderr
//! every `ms`), `WEFT_DUMP_SIGNAL=1` (SIGQUIT prints [`crate::dump`] to stderr).
//!
//! Read by each worker at start, environment only: `WEFT_IO=epoll|uring`, the IO backend
//! (default: uring, falling back to epoll silently where a ring cannot be set up; see
//! `reactor::uring`); an unknown value is reported on stderr and means the default.
//!
//! `WEFT_STACK_SIZE` takes bytes, optionally with a binary suffix: `65536`, `64K`, `1M`, `1G`.
//! An invalid variable stops the program at start with a message naming it: running with a
//! configuration other than the one asked for would be a silent surprise.

use std::fmt;
use crate::runtime::os_lock::{OsMutex, OsMutexGuard};
use std::time::Duration;

use crate::runtime::stack::{SizeClass, DEFAULT_STACK_SIZE, MAX_STACK_SIZE};

/// Most worker threads a runtime may have.
pub const MAX_WORKERS: usize = 1024;

/// Default threshold of the blocked-worker watchdog.
const DEFAULT_BLOCKED_WARNING: Duration = Duration::from_millis(100);

/// Default most threads of the blocking pool behind [`offload`](crate::offload).
pub(crate) const DEFAULT_MAX_BLOCKING_THREADS: usize = 512;
/// Largest accepted [`Config::max_blocking_threads`]: far above any useful pool, low enough
/// to catch a typo.
const MAX_BLOCKING_THREADS_LIMIT: usize = 100_000;

/// Settings for the global runtime, applied before it starts.
///
/// ```
/// weft::Config::new().workers(2).stack_size(128 * 1024).apply().unwrap();
/// let answer = weft::run(|| 6 * 7);
/// assert_eq!(answer, 42);
/// // The runtime is running now, so the configuration is fixed.
/// assert_eq!(weft::Config::new().workers(4).apply(), Err(weft::ConfigError::AlreadyStarted));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Config {
    workers: Option<usize>,
    stack_size: Option<usize>,
    max_blocking_threads: Option<usize>,
    blocked_warning: Option<Duration>,
}

/// Why [`Config::apply`] refused a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The runtime has already started (something spawned a green thread), so its settings
    /// are fixed.
    AlreadyStarted,
    /// The worker count is 0 or above [`MAX_WORKERS`].
    InvalidWorkers(usize),
    /// The stack size is above the 1 GiB maximum.
    InvalidStackSize(usize),
    /// The blocking-thread maximum is 0 or above 100,000.
    InvalidBlockingThreads(usize),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::AlreadyStarted => f.write_str(
                "weft: the runtime has already started; configure it before the first spawn",
            ),
            ConfigError::InvalidWorkers(n) => {
                write!(
                    f,
                    "weft: invalid worker count {n}: expected 1 to {MAX_WORKERS}"
                )
            }
            ConfigError::InvalidStackSize(n) => write!(
                f,
                "weft: invalid stack size {n} bytes: the maximum is {MAX_STACK_SIZE} bytes (1 GiB)"
            ),
            ConfigError::InvalidBlockingThreads(n) => write!(
                f,
                "weft: invalid blocking-thread maximum {n}: expected 1 to \
                 {MAX_BLOCKING_THREADS_LIMIT}"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// An empty configuration: every setting from the environment or its default.
    pub fn new() -> Config {
        Config::default()
    }

    /// Number of worker threads (1 to [`MAX_WORKERS`]).
    pub fn workers(mut self, n: usize) -> Config {
        self.workers = Some(n);
        self
    }

    /// Default usable stack size of a green thread, in bytes. Rounded up to the next power of
    /// two, at least 64 KiB; above 1 GiB is an error.
    pub fn stack_size(mut self, bytes: usize) -> Config {
        self.stack_size = Some(bytes);
        self
    }

    /// Most threads the blocking pool behind [`offload`](crate::offload) may run at once
    /// (1 to 100,000; default 512). Calls beyond that queue; they never fail.
    pub fn max_blocking_threads(mut self, n: usize) -> Config {
        self.max_blocking_threads = Some(n);
        self
    }

    /// How long a worker may run one green thread without a switch before the watchdog
    /// warns (through `log` when a logger takes warnings, on stderr otherwise), naming it and the
    /// syscall the worker is blocked in; `Duration::ZERO` turns the watchdog
    /// off. Default 100 ms.
    pub fn blocked_warning(mut self, threshold: Duration) -> Config {
        self.blocked_warning = Some(threshold);
        self
    }

    /// Validates the settings and records them for the runtime's start. Settings not given
    /// here keep their earlier applied value, or come from the environment.
    pub fn apply(self) -> Result<(), ConfigError> {
        if let Some(n) = self.workers {
            if n == 0 || n > MAX_WORKERS {
                return Err(ConfigError::InvalidWorkers(n));
            }
        }
        if let Some(bytes) = self.stack_size {
            if bytes > MAX_STACK_SIZE {
                return Err(ConfigError::InvalidStackSize(bytes));
            }
        }
        if let Some(n) = self.max_blocking_threads {
            if n == 0 || n > MAX_BLOCKING_THREADS_LIMIT {
                return Err(ConfigError::InvalidBlockingThreads(n));
            }
        }
        let mut state = lock();
        if state.started {
            return Err(ConfigError::AlreadyStarted);
        }
        state.applied.workers = self.workers.or(state.applied.workers);
        state.applied.stack_size = self.stack_size.or(state.applied.stack_size);
        state.applied.max_blocking_threads = self
            .max_blocking_threads
            .or(state.applied.max_blocking_threads);
        state.applied.blocked_warning = self.blocked_warning.or(state.applied.blocked_warning);
        Ok(())
    }
}

struct State {
    applied: Config,
    started: bool,
}

static STATE: OsMutex<State> = OsMutex::new(State {
    applied: Config {
        workers: None,
        stack_size: None,
        max_blocking_threads: None,
        blocked_warning: None,
    },
    started: false,
});

fn lock() -> OsMutexGuard<'static, State> {
    STATE.lock()
}

/// The settings the runtime starts with.
pub(crate) struct Settings {
    pub(crate) workers: usize,
    pub(crate) stack_class: SizeClass,
    pub(crate) max_blocking_threads: usize,
    pub(crate) blocked_warning: Option<Duration>,
}

/// Undoes the mark of [`settings_for_start`] after a start that failed: nothing started, so
/// the settings may still change before the next try.
pub(crate) fn start_failed() {
    lock().started = false;
}

/// Marks the runtime as started and resolves its settings. An invalid environment variable
/// stops the process here with a message that names it.
pub(crate) fn settings_for_start() -> Settings {
    let mut state = lock();
    state.started = true;
    let workers = state.applied.workers.unwrap_or_else(|| {
        env_setting("WEFT_WORKERS", parse_workers).unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS))
        })
    });
    let stack_size = state.applied.stack_size.unwrap_or_else(|| {
        env_setting("WEFT_STACK_SIZE", parse_stack_size).unwrap_or(DEFAULT_STACK_SIZE)
    });
    let stack_class =
        SizeClass::for_size(stack_size).expect("stack sizes are validated before they get here");
    let max_blocking_threads = state.applied.max_blocking_threads.unwrap_or_else(|| {
        env_setting("WEFT_MAX_BLOCKING_THREADS", parse_blocking_threads)
            .unwrap_or(DEFAULT_MAX_BLOCKING_THREADS)
    });
    let blocked_warning = state
        .applied
        .blocked_warning
        .or_else(|| {
            env_setting("WEFT_BLOCKED_WARN_MS", parse_millis)
                .map(|ms| Duration::from_millis(ms as u64))
        })
        .unwrap_or(DEFAULT_BLOCKED_WARNING);
    Settings {
        workers,
        stack_class,
        max_blocking_threads,
        blocked_warning: (!blocked_warning.is_zero()).then_some(blocked_warning),
    }
}

/// Default of `WEFT_DEADLOCK_ABORT_MS`: how long before the monitor aborts the process.
pub(crate) const DEFAULT_DEADLOCK_ABORT: Duration = Duration::from_secs(10);

/// `WEFT_DEADLOCK_ABORT_MS`: how long a worker may stay stuck behind an unwinding green
/// thread's blocked destructor before the monitor aborts (see `scheduler::unwinding`);
/// `None` for 0, which never aborts.
pub(crate) fn deadlock_abort_after() -> Option<Duration> {
    let default = DEFAULT_DEADLOCK_ABORT;
    let ms = env_setting("WEFT_DEADLOCK_ABORT_MS", parse_millis)
        .map_or(default.as_millis() as u64, |ms| ms as u64);
    (ms > 0).then(|| Duration::from_millis(ms))
}

fn env_setting(name: &str, parse: fn(&str) -> Result<usize, String>) -> Option<usize> {
    let value = std::env::var_os(name)?;
    let parsed = value
        .to_str()
        .ok_or_else(|| "it is not valid UTF-8".to_owned())
        .and_then(|s| parse(s.trim()));
    match parsed {
        Ok(v) => Some(v),
        Err(why) => {
            eprintln!("weft: invalid {name}={value:?}: {why}");
            std::process::exit(2);
        }
    }
}

fn parse_workers(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_WORKERS).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from 1 to {MAX_WORKERS}")),
    }
}

fn parse_millis(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .map_err(|_| "expected a whole number of milliseconds".to_owned())
}

/// `WEFT_SCHEDTRACE`: the interval of the scheduler trace, if asked for.
pub(crate) fn schedtrace() -> Option<Duration> {
    env_setting("WEFT_SCHEDTRACE", parse_millis)
        .filter(|&ms| ms > 0)
        .map(|ms| Duration::from_millis(ms as u64))
}

/// `WEFT_DUMP_SIGNAL=1`: print a dump on SIGQUIT.
pub(crate) fn dump_signal() -> bool {
    env_setting("WEFT_DUMP_SIGNAL", |s| match s {
        "0" | "1" => Ok(usize::from(s == "1")),
        _ => Err("expected 0 or 1".to_owned()),
    }) == Some(1)
}

fn parse_blocking_threads(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_BLOCKING_THREADS_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a whole number from 1 to {MAX_BLOCKING_THREADS_LIMIT}"
        )),
    }
}

fn parse_stack_size(s: &str) -> Result<usize, String> {
    let expected = || "expected bytes, optionally with a K, M or G suffix, at most 1G".to_owned();
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let unit = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(expected()),
            };
            (&s[..i], unit)
        }
        _ => (s, 1),
    };
    let n: usize = digits.parse().map_err(|_| expected())?;
    match n.checked_mul(unit) {
        Some(bytes) if bytes <= MAX_STACK_SIZE => Ok(bytes),
        _ => Err(expected()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stack_sizes_with_suffixes() {
        assert_eq!(parse_stack_size("65536"), Ok(65536));
        assert_eq!(parse_stack_size("64K"), Ok(64 << 10));
        assert_eq!(parse_stack_size("1m"), Ok(1 << 20));
        assert_eq!(parse_stack_size("1G"), Ok(1 << 30));
        assert!(parse_stack_size("2G").is_err());
        assert!(parse_stack_size("12Q").is_err());
        assert!(parse_stack_size("").is_err());
        assert!(parse_stack_size("-1").is_err());
    }

    #[test]
    fn parses_worker_counts() {
        assert_eq!(parse_workers("3"), Ok(3));
        assert!(parse_workers("0").is_err());
        assert!(parse_workers("many").is_err());
        assert!(parse_workers("1025").is_err());
    }

    #[test]
    fn parses_blocking_thread_maximums() {
        assert_eq!(parse_blocking_threads("64"), Ok(64));
        assert!(parse_blocking_threads("0").is_err());
        assert!(parse_blocking_threads("100001").is_err());
        assert!(parse_blocking_threads("lots").is_err());
    }
}
