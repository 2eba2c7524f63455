//! The blocked-worker watchdog warns, once, about a worker stuck in one green thread:
//! through `log` when a logger takes warnings, on stderr otherwise. It names the green thread and
//! what the worker is doing (the syscall it is blocked in, or computing).

mod common;

use std::sync::Mutex;
use std::time::Duration;

struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.level() == log::Level::Warn {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

#[test]
fn a_blocking_call_outside_weft_is_named_once() {
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    common::workers(1);
    let before = weft::stats().blocked_warnings;
    common::watchdog(60, || {
        weft::run(|| {
            let hog = weft::Builder::new()
                .name("hog")
                // Computes for 400 ms without a switch: the worker is stuck in it (a std
                // sleep would do too, but the `hooks` feature makes that one green).
                .spawn(|| {
                    let start = std::time::Instant::now();
                    while start.elapsed() < Duration::from_millis(400) {
                        std::hint::spin_loop();
                    }
                })
                .unwrap();
            let waiting = weft::spawn(|| ()); // queued behind it
            hog.join().unwrap();
            waiting.join().unwrap();
        })
    });
    let warnings = CAPTURE.0.lock().unwrap().clone();
    let about_hog: Vec<_> = warnings.iter().filter(|w| w.contains("'hog'")).collect();
    assert_eq!(about_hog.len(), 1, "{warnings:#?}");
    let warning = about_hog[0];
    assert!(warning.contains("weft-worker-0"), "{warning}");
    assert!(
        warning.contains(&format!("spawned at {}:", file!())),
        "{warning}"
    );
    assert!(warning.contains("weft::offload"), "{warning}");
    assert!(warning.contains("running code, not waiting"), "{warning}");
    assert!(weft::stats().blocked_warnings > before);
}

#[test]
#[ignore = "child process of a_worker_blocked_in_the_kernel_is_named_on_stderr_without_a_logger"]
fn child_blocked_in_futex() {
    if !common::is_child() {
        return;
    }
    common::workers(1);
    weft::run(|| {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1_500));
            tx.send(()).unwrap();
        });
        // A std channel's receive blocks the worker in futex (no hooks make it green).
        weft::Builder::new()
            .name("stuck")
            .spawn(move || rx.recv().unwrap())
            .unwrap()
            .join()
            .unwrap();
        sender.join().unwrap();
    });
    println!("finished");
}

#[test]
fn a_worker_blocked_in_the_kernel_is_named_on_stderr_without_a_logger() {
    // No logger is installed in the child: the warning must still be seen, and say which
    // syscall the worker is in and what to do about it.
    let output = common::watchdog(60, || common::run_child("child_blocked_in_futex", &[]));
    let stderr = common::stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    let warning = stderr
        .lines()
        .find(|l| l.contains("'stuck'"))
        .unwrap_or_else(|| panic!("no warning about 'stuck' in:\n{stderr}"));
    assert!(
        warning.contains("blocked in the syscall futex"),
        "{warning}"
    );
    assert!(warning.contains("std::sync::mpsc"), "{warning}");
    assert!(warning.contains("weft::offload"), "{warning}");
    assert!(warning.contains("weft-worker-0"), "{warning}");
}
