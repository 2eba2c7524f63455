//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

/// Asks for `n` workers. Each file in tests/ is its own process, so this holds for the whole
/// file as long as every test calls it before spawning (later calls see AlreadyStarted, which
/// is fine when they all ask the same).
pub fn workers(n: usize) {
    match weft::Config::new().workers(n).apply() {
        Ok(()) | Err(weft::ConfigError::AlreadyStarted) => {}
        Err(e) => panic!("{e}"),
    }
}

/// Runs `f` on a helper thread and fails the test if it has not finished after `secs`
/// seconds: a lost wake-up then shows up as a failure instead of a hung CI job. The limit is
/// far above the expected run time; it is not a speed check.
///
/// `WEFT_TEST_TIME_SCALE=N` multiplies the limit, for runs under valgrind (CI's memcheck
/// step sets 20: everything runs tens of times slower there).
pub fn watchdog<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let scale = std::env::var("WEFT_TEST_TIME_SCALE")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1)
        .max(1);
    let secs = secs * scale;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => std::panic::resume_unwind(payload),
        Err(_) => panic!("did not finish within {secs} s: something never woke up"),
    }
}

/// Whether this process is a child started by [`run_child`].
pub fn is_child() -> bool {
    std::env::var_os("WEFT_TEST_CHILD").is_some()
}

/// Runs the `#[ignore]`d test `name` of the current test binary in a child process with the
/// extra environment `envs`, and returns its output. Child tests start with
/// `if !is_child() { return; }` so that running ignored tests by hand does nothing odd.
pub fn run_child(name: &str, envs: &[(&str, &str)]) -> Output {
    child_command(name, envs)
        .output()
        .expect("failed to start the child test process")
}

/// The command [`run_child`] runs, for a caller that sets more up before starting it.
pub fn child_command(name: &str, envs: &[(&str, &str)]) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("test binary path"));
    command
        .args([
            "--exact",
            name,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WEFT_TEST_CHILD", "1")
        .envs(envs.iter().copied());
    command
}

/// Runs the child test `name` (see [`run_child`]), fails unless it exited successfully, and
/// returns its stdout.
pub fn child_stdout(name: &str, envs: &[(&str, &str)]) -> String {
    let output = run_child(name, envs);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{:?}\n{stdout}\n{}",
        output.status,
        stderr_of(&output)
    );
    stdout
}

/// Runs the child test `name` (see [`run_child`]), which must deadlock while unwinding: weft
/// has to report the deadlock by name, then abort (after 2.5 s). Fails unless the child died
/// that way without printing "no deadlock"; returns its stderr.
pub fn deadlocked_child(name: &str) -> String {
    let name = name.to_owned();
    let output = watchdog(120, move || {
        run_child(&name, &[("WEFT_DEADLOCK_ABORT_MS", "2500")])
    });
    let stderr = stderr_of(&output);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("no deadlock"),
        "{stderr}"
    );
    assert!(stderr.contains("weft: likely deadlock: "), "{stderr}");
    assert!(stderr.contains("weft: aborting."), "{stderr}");
    stderr
}

/// The first line of `stdout` that contains `marker` (fails naming the output otherwise).
pub fn line_with<'a>(stdout: &'a str, marker: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no line with {marker:?} in:\n{stdout}"))
}

pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Number of mappings (VMAs) of this process.
pub fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

/// A green thread that counts, once per millisecond of `weft::sleep`, until stopped. Start it
/// on the same worker as the call under test (one worker), read [`Ticker::ticks`] before and
/// after the call: what it counted *during* the call shows the worker was not stalled.
pub struct Ticker {
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<weft::JoinHandle<()>>,
}

impl Ticker {
    pub fn start() -> Ticker {
        use std::sync::atomic::Ordering;
        let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handle = weft::spawn({
            let (count, stop) = (count.clone(), stop.clone());
            move || {
                while !stop.load(Ordering::Acquire) {
                    weft::sleep(Duration::from_millis(1));
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let ticker = Ticker {
            count,
            stop,
            handle: Some(handle),
        };
        // Wait for the first tick, so the ticker has started (and found its home).
        while ticker.ticks() == 0 {
            weft::sleep(Duration::from_millis(1));
        }
        ticker
    }

    pub fn ticks(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `f` and returns its result with the ticks counted while it ran.
    pub fn during<T>(&self, f: impl FnOnce() -> T) -> (T, u64) {
        let before = self.ticks();
        let value = f();
        (value, self.ticks() - before)
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(handle) = self.handle.take() {
            handle.join().unwrap();
        }
    }
}

/// `WEFT_STRESS`: how many times over the stress-aware tests run their iterations. Unset or
/// empty means 1 (the everyday run); `.ci/run` runs a subset at 10, and the README says how
/// to run the whole suite at 100. Anything but a whole number from 1 to 1000 fails the test
/// that asks, naming the variable.
pub fn stress() -> usize {
    match std::env::var("WEFT_STRESS") {
        Err(_) => 1,
        Ok(v) if v.is_empty() => 1,
        Ok(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .unwrap_or_else(|| panic!("WEFT_STRESS={v:?}: want a whole number from 1 to 1000")),
    }
}

/// `n` times [`stress`].
pub fn scaled(n: usize) -> usize {
    n * stress()
}

/// This process's resident set, in bytes (`/proc/self/statm`).
pub fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// One round of the fd-reuse tests. An fd with readiness pending (unread data, a reader
/// that woke) was closed as `old_fd`, and `new` and `new_writer` were opened after it. A
/// green thread reads `new` while `new_writer` sends `b"new"` (after a 1 ms pause in even
/// rounds): the reader must get exactly that and must not hang. Returns whether the new pair
/// got the old number.
pub fn reused_fd_round<R, W>(
    round: usize,
    old_fd: std::os::fd::RawFd,
    new: R,
    new_writer: W,
) -> bool
where
    R: std::os::fd::AsRawFd + Send + 'static,
    W: std::os::fd::AsRawFd,
    for<'a> &'a R: std::io::Read,
    for<'a> &'a W: std::io::Write,
{
    use std::io::{Read, Write};
    let reused = new.as_raw_fd() == old_fd || new_writer.as_raw_fd() == old_fd;
    let reader = weft::spawn(move || {
        let mut got = [0u8; 8];
        let n = (&new).read(&mut got).unwrap();
        got[..n].to_vec()
    });
    if round.is_multiple_of(2) {
        weft::sleep(Duration::from_millis(1));
    }
    (&new_writer).write_all(b"new").unwrap();
    assert_eq!(reader.join().unwrap(), b"new", "round {round}");
    reused
}
