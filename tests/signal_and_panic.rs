//! Signals arrive as channel messages; panic messages name the green thread.

mod common;

use std::time::Duration;

#[test]
fn a_raised_signal_arrives_on_the_channel() {
    common::workers(1);
    let got = common::watchdog(60, || {
        weft::run(|| {
            let signals =
                weft::signal::notify(&[weft::signal::SIGUSR1, weft::signal::SIGUSR2]).unwrap();
            let mut got = Vec::new();
            for signal in [weft::signal::SIGUSR2, weft::signal::SIGUSR1] {
                // SAFETY (test): raising a signal that has a handler installed.
                assert_eq!(unsafe { libc::raise(signal) }, 0);
                weft::select! {
                    recv(signals) -> s => got.push(s.unwrap()),
                    recv(weft::chan::after(Duration::from_secs(20))) -> _ => panic!("no signal"),
                }
            }
            got
        })
    });
    assert_eq!(got, [weft::signal::SIGUSR2, weft::signal::SIGUSR1]);
}

#[test]
fn uncatchable_signals_are_an_error() {
    common::workers(1);
    let err = weft::signal::notify(&[weft::signal::SIGUSR1, libc::SIGKILL]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("SIGKILL"), "{err}");
}

#[test]
#[ignore = "child process of a_panic_message_names_the_green_thread"]
fn child_named_panic() {
    if !common::is_child() {
        return;
    }
    common::workers(1);
    let handle = weft::Builder::new()
        .name("conn-42")
        .spawn(|| panic!("bad request"))
        .unwrap();
    let id = handle.coroutine().id();
    assert!(handle.join().is_err());
    println!("id {id}");
    // A plain thread's panic still goes to the previous hook.
    let _ = std::thread::spawn(|| panic!("plain thread panic")).join();
}

#[test]
fn a_panic_message_names_the_green_thread() {
    let output = common::run_child("child_named_panic", &[("RUST_BACKTRACE", "0")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = common::stderr_of(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let id = stdout
        .lines()
        .find_map(|l| l.split("id ").nth(1))
        .expect(&stdout)
        .trim();
    let expected = format!("green thread {id} 'conn-42' (on weft-worker-0) panicked at ");
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains("bad request"), "{stderr}");
    assert!(stderr.contains("thread '<unnamed>'"), "{stderr}");
    assert!(stderr.contains("plain thread panic"), "{stderr}");
}

#[test]
#[ignore = "child process of a_signal_after_the_receiver_is_gone_gets_its_default_action"]
fn child_released_signal() {
    if !common::is_child() {
        return;
    }
    common::workers(1);
    weft::run(|| {
        let signals = weft::signal::notify(&[weft::signal::SIGUSR1]).unwrap();
        drop(signals);
        // SAFETY (test): raising a handled signal.
        unsafe { libc::raise(weft::signal::SIGUSR1) };
        // SIGUSR1's default action ends the process; this sleep should not finish.
        weft::sleep(Duration::from_secs(20));
    });
    println!("survived");
}

#[test]
fn a_signal_after_the_receiver_is_gone_gets_its_default_action() {
    use std::os::unix::process::ExitStatusExt;
    let output = common::run_child("child_released_signal", &[]);
    assert_eq!(
        output.status.signal(),
        Some(weft::signal::SIGUSR1),
        "{:?} {}",
        output.status,
        common::stderr_of(&output)
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("survived"));
}
