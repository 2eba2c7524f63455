//! A stack overflow in a green thread is reported by name and aborts; other faults are left
//! to the previous handler. Run in child processes, since they die.

mod common;

use std::os::unix::process::ExitStatusExt;

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(frame[7])
}

#[test]
#[ignore = "child process of overflow_is_reported_and_aborts"]
fn child_overflow() {
    if !common::is_child() {
        return;
    }
    // Settle the guard mode with a harmless green thread and report it before the crash.
    weft::spawn(|| ()).join().unwrap();
    eprintln!("guard pages: {}", weft::stats().guard_pages);
    // Five live green threads of the same class first, so the overflowing stack is not the
    // first of its guard batch (guards are installed 64 slots at a time).
    let (_release, wait) = weft::chan::bounded::<()>(0);
    let _holders: Vec<_> = (0..5)
        .map(|_| {
            let wait = wait.clone();
            weft::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || wait.recv())
                .unwrap()
        })
        .collect();
    let handle = weft::Builder::new()
        .name("deep-recursion")
        .stack_size(64 * 1024)
        .spawn(|| recurse(0))
        .unwrap();
    let _ = handle.join();
    unreachable!("the overflow must abort the process");
}

fn check_overflow(envs: &[(&str, &str)], guard_mode: &str) {
    let output = common::run_child("child_overflow", envs);
    let stderr = common::stderr_of(&output);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGABRT),
        "status {:?}\n{stderr}",
        output.status
    );
    assert!(
        stderr.contains("'deep-recursion' overflowed its 64 KiB stack; aborting"),
        "stderr: {stderr}"
    );
    assert!(stderr.contains("weft: green thread "), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!("guard pages: {guard_mode}")),
        "stderr: {stderr}"
    );
}

#[test]
fn overflow_is_reported_and_aborts() {
    check_overflow(&[], "madvise");
}

#[test]
fn overflow_is_caught_with_the_forced_mprotect_fallback() {
    check_overflow(&[("WEFT_GUARD_PAGES", "mprotect")], "mprotect");
}

#[test]
#[ignore = "child process of other_faults_reach_the_previous_handler"]
fn child_null_write() {
    if !common::is_child() {
        return;
    }
    let handle = weft::spawn(|| {
        let p = std::hint::black_box(16usize) as *mut u64;
        // SAFETY: deliberately not: this test checks that a wild write still crashes with
        // SIGSEGV when it is not a stack overflow.
        unsafe { p.write_volatile(1) };
    });
    let _ = handle.join();
    unreachable!("the fault must kill the process");
}

#[test]
fn other_faults_reach_the_previous_handler() {
    let output = common::run_child("child_null_write", &[]);
    let stderr = common::stderr_of(&output);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGSEGV),
        "status {:?}\n{stderr}",
        output.status
    );
    assert!(
        !stderr.contains("overflowed"),
        "misreported as overflow: {stderr}"
    );
}
