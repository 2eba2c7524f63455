//! The panic hook weft installs when the runtime starts, so that a panic message names the
//! green thread that panicked rather than the worker thread it happened to run on.
//!
//! std's hook prints `thread 'weft-worker-1' panicked at …`, which says nothing useful when a
//! worker runs thousands of green threads. weft's hook prints, for a green thread,
//!
//! ```text
//! green thread 42 'conn-17' (on weft-worker-1) panicked at src/server.rs:88:9:
//! index out of bounds: the len is 3 but the index is 7
//! ```
//!
//! followed by a backtrace when `RUST_BACKTRACE` asks for one (or std's one-time note when it
//! does not), as std does. Panics on other threads go to the hook that was installed before
//! (std's, or yours). A hook set after the runtime started replaces weft's, as `set_hook`
//! always does. Cancellation unwinds without calling any hook.

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::io::Write;
use std::panic::{self, Location};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use super::context;

/// Installs the hook, chaining to the current one for panics outside green threads.
pub(crate) fn install() {
    // `take_hook` panics on a panicking thread; a runtime started from a destructor during
    // an unwind keeps std's hook.
    if std::thread::panicking() {
        return;
    }
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        // SAFETY: a non-null current task is alive while it runs, and we are it.
        match unsafe { context::current_task().as_ref() } {
            Some(task) => report(
                task.id.as_u64(),
                task.name.as_deref(),
                info.payload(),
                info.location(),
            ),
            None => previous(info),
        }
    }));
}

fn report(id: u64, name: Option<&str>, payload: &dyn Any, location: Option<&Location<'_>>) {
    static NOTED: AtomicBool = AtomicBool::new(false);
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>");
    let name = name.map(|n| format!(" '{n}'")).unwrap_or_default();
    let worker = std::thread::current();
    let worker = worker.name().unwrap_or("a worker");
    let location = location
        .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_default();
    let mut text =
        format!("\ngreen thread {id}{name} (on {worker}) panicked{location}:\n{message}\n");
    let backtrace = Backtrace::capture();
    match backtrace.status() {
        BacktraceStatus::Captured => {
            let full = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v == "full");
            let frames = backtrace.to_string();
            let shown = if full { frames } else { short(&frames) };
            text.push_str(&format!("stack backtrace:\n{shown}\n"));
        }
        // Relaxed: printing the note twice in a race is harmless.
        _ if !NOTED.swap(true, Relaxed) => text.push_str(
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
        ),
        _ => {}
    }
    // One write, as std's hook does, so messages of panics on several workers do not mix.
    let _ = std::io::stderr()
        .lock()
        .write_all(text.trim_start().as_bytes());
}

/// std's short backtrace: the frames between the panic machinery and the thread's start.
/// Frame headers are the lines that start with `N: `; `at` lines belong to the frame above.
fn short(frames: &str) -> String {
    let lines: Vec<&str> = frames.lines().collect();
    let is_frame = |line: &str| {
        let t = line.trim_start();
        t.split_once(": ")
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let start = lines
        .iter()
        .rposition(|l| {
            is_frame(l)
                && (l.contains("rust_begin_unwind")
                    || l.contains("core::panicking::panic")
                    || l.contains("std::panicking::begin_panic"))
        })
        .and_then(|i| {
            lines[i + 1..]
                .iter()
                .position(|l| is_frame(l))
                .map(|j| i + 1 + j)
        })
        .unwrap_or(0);
    let end = lines[start..]
        .iter()
        .position(|l| is_frame(l) && l.contains("corosensei::"))
        .map_or(lines.len(), |i| start + i);
    let mut out = lines[start..end].join("\n");
    out.push_str(
        "\nnote: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.",
    );
    out
}
