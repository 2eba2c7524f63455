//! `weft::process`: children whose waits and pipes park the green thread.

mod common;

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;

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

/// Children of this process whose command line is `sleep <arg>` and that are still running
/// (a zombie's command line is empty): their pids.
fn running_sleeps(arg: &str) -> Vec<i32> {
    let me = std::process::id().to_string();
    let wanted = format!("sleep\0{arg}\0");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The fields after the command's closing parenthesis: state, ppid, ...
        let after = &stat[stat.rfind(')').unwrap_or(0) + 1..];
        let ppid = after.split_whitespace().nth(1);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(me.as_str()) && cmdline == wanted.as_bytes() {
            found.push(pid);
        }
    }
    found
}

/// A cancel that comes while `Command::spawn` starts the child never loses the child: the
/// caller gets its `Child` and the cancel takes effect at its next blocking point, so a
/// guard can kill it. (An earlier version unwound out of `spawn` once the child had started,
/// and that child then ran on with no handle to wait for or kill it.)
#[test]
fn a_cancel_while_a_child_starts_never_orphans_it() {
    // An argument no other test uses, to find this test's children among the process's.
    const ARG: &str = "3599.25";
    type Held = Arc<std::sync::Mutex<Vec<weft::process::Child>>>;
    /// Kills the child when the green thread unwinds, and keeps it for reaping.
    struct Kill(Option<weft::process::Child>, Held);
    impl Drop for Kill {
        fn drop(&mut self) {
            if let Some(mut child) = self.0.take() {
                let _ = child.kill();
                self.1.lock().unwrap().push(child);
            }
        }
    }
    common::workers(2);
    let held: Held = Arc::default();
    let rounds = common::scaled(200);
    let cancelled = common::watchdog(120, {
        let held = held.clone();
        move || {
            weft::run(move || {
                let mut cancelled = 0;
                for round in 0..rounds {
                    let held = held.clone();
                    let starter = weft::spawn(move || {
                        let child = Command::new("sleep").arg(ARG).spawn().unwrap();
                        let _kill = Kill(Some(child), held);
                        weft::sleep(std::time::Duration::from_secs(3600));
                    });
                    // The cancel lands before the spawn, while the child starts on the pool,
                    // or once it waits; most often while it starts.
                    for _ in 0..round % 3 {
                        weft::yield_now();
                    }
                    starter.cancel();
                    cancelled += usize::from(starter.join().unwrap_err().is::<weft::Cancelled>());
                }
                cancelled
            })
        }
    });
    let mut held = std::mem::take(&mut *held.lock().unwrap());
    for child in &mut held {
        assert!(child.wait().unwrap().signal() == Some(libc::SIGKILL));
    }
    let orphans = running_sleeps(ARG);
    for &pid in &orphans {
        // SAFETY (test): kill of a child of ours that no handle owns.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    println!(
        "{rounds} cancels, {} children started and reaped, {} orphans",
        held.len(),
        orphans.len()
    );
    assert_eq!(cancelled, rounds);
    assert!(
        orphans.is_empty(),
        "children left with no handle: {orphans:?}"
    );
    // Cancels that came while the child started left it with its guard (the others came
    // before the spawn, which then never ran).
    assert!(!held.is_empty(), "no child started");
}
