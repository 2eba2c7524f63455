//! The blocked-worker watchdog warns, once, through `log`, about a worker stuck in one green
//! thread, and names it.

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
    assert!(weft::stats().blocked_warnings > before);
}
