//! `weft::process`: children whose waits and pipes park the green thread.

mod common;

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;

use common::Ticker;
use weft::process::{Command, Stdio};

#[test]
fn a_hundred_children_at_once_on_one_worker() {
    common::workers(1);
    let ((), ticks) = common::watchdog(120, || {
        weft::run(|| {
            let ticker = Ticker::start();
            ticker.during(|| {
                let children: Vec<_> = (0..100)
                    .map(|_| {
                        weft::spawn(|| {
                            let child = Command::new("sh")
                                .args(["-c", "sleep 0.05; echo $$"])
                                .stdout(Stdio::piped())
                                .spawn()
                                .unwrap();
                            let id = child.id();
                            let out = child.wait_with_output().unwrap();
                            assert!(out.status.success());
                            assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{id}\n"));
                        })
                    })
                    .collect();
                for child in children {
                    child.join().unwrap();
                }
            })
        })
    });
    // The children sleep 50 ms each, all at once: the worker kept ticking meanwhile.
    assert!(ticks >= 10, "the ticker ticked {ticks} times");
}

#[test]
fn a_megabyte_on_each_pipe_cannot_deadlock() {
    common::workers(1);
    let out = common::watchdog(120, || {
        weft::run(|| {
            Command::new("sh")
                .args([
                    "-c",
                    "head -c 1048576 /dev/zero; head -c 1048576 /dev/zero | tr '\\0' e >&2",
                ])
                .output()
                .unwrap()
        })
    });
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(out.stdout.len(), 1 << 20);
    assert!(out.stdout.iter().all(|&b| b == 0));
    assert_eq!(out.stderr.len(), 1 << 20);
    assert!(out.stderr.iter().all(|&b| b == b'e'));
}

#[test]
fn a_killed_child_reports_its_signal() {
    common::workers(1);
    let status = common::watchdog(60, || {
        weft::run(|| {
            let mut child = Command::new("sleep").arg("30").spawn().unwrap();
            assert!(child.try_wait().unwrap().is_none());
            child.kill().unwrap();
            child.wait().unwrap()
        })
    });
    assert!(!status.success());
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}

#[test]
fn stdin_stdout_round_trip_and_exit_codes() {
    common::workers(1);
    common::watchdog(60, || {
        weft::run(|| {
            let mut child = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let writer = weft::spawn(move || {
                // 256 KiB: more than the pipe holds, so both sides park in turn.
                for _ in 0..64 {
                    stdin.write_all(&[b'x'; 4096]).unwrap();
                }
            });
            let mut echoed = Vec::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_end(&mut echoed)
                .unwrap();
            writer.join().unwrap();
            assert_eq!(echoed.len(), 64 * 4096);
            assert!(child.wait().unwrap().success());

            let status = Command::new("sh").args(["-c", "exit 3"]).status().unwrap();
            assert_eq!(status.code(), Some(3));
            let out = Command::new("sh")
                .args(["-c", "echo $WEFT_X; pwd"])
                .env_clear()
                .env("WEFT_X", "set")
                .env("PATH", "/usr/bin:/bin")
                .current_dir("/")
                .output()
                .unwrap();
            assert_eq!(out.stdout, b"set\n/\n");
            let err = Command::new("/nonexistent/weft-test").spawn().unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        });
        // The same API on a plain thread.
        let out = Command::new("echo").arg("plain").output().unwrap();
        assert_eq!(out.stdout, b"plain\n");
    });
}
