//! std parity (issue 22): std methods and trait impls that weft's mirrors
//! lacked, each tested as std's own tests test it, inside a green thread.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::time::Duration;

use weft::net::{TcpListener, TcpStream, UdpSocket};
use weft::sync::{Condvar, Mutex, OnceLock, RwLock};

fn green<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    common::watchdog(60, move || weft::run(f))
}

#[test]
fn locks_are_unwind_safe_as_std_s_are() {
    fn assert_unwind_safe<T: UnwindSafe + RefUnwindSafe>() {}
    assert_unwind_safe::<Mutex<u32>>();
    assert_unwind_safe::<RwLock<u32>>();
    assert_unwind_safe::<Condvar>();
    assert_unwind_safe::<OnceLock<u32>>();
    // What that allows: catch_unwind around a lock, as with std.
    let poisoned = green(|| {
        let lock = Mutex::new(1);
        let _ = std::panic::catch_unwind(|| {
            let _guard = lock.lock().unwrap();
            panic!("poison it");
        });
        lock.is_poisoned()
    });
    assert!(poisoned);
}

#[test]
fn rwlock_guards_display_their_value() {
    let (read, write) = green(|| {
        let lock = RwLock::new("hello");
        let read = lock.read().unwrap().to_string();
        let write = format!("{}", lock.write().unwrap());
        (read, write)
    });
    assert_eq!(read, "hello");
    assert_eq!(write, "hello");
}

#[test]
fn once_lock_equality_follows_its_contents() {
    let empty: OnceLock<u32> = OnceLock::new();
    let one = OnceLock::from(1);
    assert!(empty == OnceLock::new());
    assert!(one == OnceLock::from(1));
    assert!(one != OnceLock::from(2));
    assert!(one != empty);
}

#[test]
fn once_lock_wait_parks_until_another_green_thread_sets_it() {
    let (value, ticks) = green(|| {
        let cell = std::sync::Arc::new(OnceLock::new());
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let cell = cell.clone();
                weft::spawn(move || *cell.wait())
            })
            .collect();
        // The waiters park (one worker or two: the setter runs either way).
        weft::sleep(Duration::from_millis(20));
        assert_eq!(cell.get(), None);
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let setter = {
            let (cell, ticks) = (cell.clone(), ticks.clone());
            weft::spawn(move || {
                ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                cell.set(42).unwrap();
            })
        };
        setter.join().unwrap();
        let values: Vec<u32> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
        assert!(values.iter().all(|v| *v == 42));
        (
            *cell.wait(),
            ticks.load(std::sync::atomic::Ordering::Relaxed),
        )
    });
    assert_eq!(value, 42);
    assert_eq!(ticks, 1);
}

#[test]
fn command_getters_report_what_was_configured() {
    let mut command = weft::process::Command::new("echo");
    command
        .arg("a")
        .args(["b", "c"])
        .env("WEFT_A", "1")
        .env_remove("WEFT_B")
        .current_dir("/tmp");
    assert_eq!(command.get_program(), "echo");
    let args: Vec<_> = command.get_args().collect();
    assert_eq!(args, ["a", "b", "c"]);
    let envs: Vec<_> = command.get_envs().collect();
    assert_eq!(
        envs,
        [
            (
                std::ffi::OsStr::new("WEFT_A"),
                Some(std::ffi::OsStr::new("1"))
            ),
            (std::ffi::OsStr::new("WEFT_B"), None)
        ]
    );
    assert_eq!(
        command.get_current_dir(),
        Some(std::path::Path::new("/tmp"))
    );
}

#[test]
fn sockets_convert_to_and_from_owned_fds() {
    let echoed = green(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Through OwnedFd and back: still a working, parking listener.
        let listener = TcpListener::from(OwnedFd::from(listener));
        let server = weft::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let stream = TcpStream::from(OwnedFd::from(stream));
            let mut buf = [0u8; 5];
            std::io::Read::read_exact(&mut &stream, &mut buf).unwrap();
            std::io::Write::write_all(&mut &stream, &buf).unwrap();
        });
        let client = TcpStream::connect(addr).unwrap();
        std::io::Write::write_all(&mut &client, b"hello").unwrap();
        let mut buf = [0u8; 5];
        std::io::Read::read_exact(&mut &client, &mut buf).unwrap();
        server.join().unwrap();
        let udp = UdpSocket::from(OwnedFd::from(UdpSocket::bind("127.0.0.1:0").unwrap()));
        assert!(udp.local_addr().is_ok());
        buf
    });
    assert_eq!(&echoed, b"hello");
}

#[test]
fn udp_multicast_options_round_trip() {
    green(|| {
        let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
        socket.set_multicast_loop_v4(false).unwrap();
        assert!(!socket.multicast_loop_v4().unwrap());
        socket.set_multicast_loop_v4(true).unwrap();
        assert!(socket.multicast_loop_v4().unwrap());
        socket.set_multicast_ttl_v4(8).unwrap();
        assert_eq!(socket.multicast_ttl_v4().unwrap(), 8);
        // Joining a group on the loopback interface, and leaving it.
        let group = Ipv4Addr::new(239, 255, 71, 1);
        let receiver = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        receiver
            .join_multicast_v4(&group, &Ipv4Addr::LOCALHOST)
            .unwrap();
        // A group joined twice is an error, as with std.
        assert!(receiver
            .join_multicast_v4(&group, &Ipv4Addr::LOCALHOST)
            .is_err());
        receiver
            .leave_multicast_v4(&group, &Ipv4Addr::LOCALHOST)
            .unwrap();
        // Not a multicast address: the kernel refuses.
        assert!(receiver
            .join_multicast_v4(&Ipv4Addr::new(10, 0, 0, 1), &Ipv4Addr::LOCALHOST)
            .is_err());
        if let Ok(v6) = UdpSocket::bind("[::1]:0") {
            v6.set_multicast_loop_v6(false).unwrap();
            assert!(!v6.multicast_loop_v6().unwrap());
            let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x7a);
            match v6.join_multicast_v6(&group, 0) {
                Ok(()) => v6.leave_multicast_v6(&group, 0).unwrap(),
                // No IPv6 multicast route here: a plain OS error, as with std.
                Err(e) => assert!(e.raw_os_error().is_some(), "{e}"),
            }
        }
    });
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-parity-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn file_locks_exclude_and_the_waiter_parks() {
    let dir = scratch("lock");
    let path = dir.join("locked");
    let order = green(move || {
        let first = weft::fs::File::create(&path).unwrap();
        let second = weft::fs::File::open(&path).unwrap();
        first.lock().unwrap();
        // Another open file description conflicts, as with std.
        assert!(matches!(
            second.try_lock(),
            Err(weft::fs::TryLockError::WouldBlock)
        ));
        assert!(matches!(
            second.try_lock_shared(),
            Err(weft::fs::TryLockError::WouldBlock)
        ));
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let waiter = {
            let log = log.clone();
            weft::spawn(move || {
                second.lock_shared().unwrap();
                log.lock().unwrap().push("second locked");
                second.unlock().unwrap();
            })
        };
        // The waiter parks while the lock is held: this green thread keeps running.
        weft::sleep(Duration::from_millis(50));
        log.lock().unwrap().push("first unlocks");
        first.unlock().unwrap();
        waiter.join().unwrap();
        let order = log.lock().unwrap().clone();
        order
    });
    assert_eq!(order, ["first unlocks", "second locked"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn file_times_dir_builder_ino_and_symlink() {
    let dir = scratch("times");
    let checked = green(move || {
        let path = dir.join("f");
        let file = weft::fs::File::create(&path).unwrap();
        let when = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        file.set_modified(when).unwrap();
        assert_eq!(file.metadata().unwrap().modified().unwrap(), when);
        let later = when + Duration::from_secs(60);
        file.set_times(
            weft::fs::FileTimes::new()
                .set_accessed(later)
                .set_modified(later),
        )
        .unwrap();
        assert_eq!(file.metadata().unwrap().modified().unwrap(), later);

        // DirBuilder: recursive creates parents; a second create of an existing directory
        // is AlreadyExists unless recursive; mode applies (less the umask).
        let nested = dir.join("a/b/c");
        assert!(weft::fs::DirBuilder::new().create(&nested).is_err());
        weft::fs::DirBuilder::new()
            .recursive(true)
            .create(&nested)
            .unwrap();
        assert!(nested.is_dir());
        let err = weft::fs::DirBuilder::new().create(&nested).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        weft::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir.join("private"))
            .unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.join("private"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o700);

        // DirEntry::ino matches the file's inode.
        let entry = weft::fs::read_dir(&dir)
            .unwrap()
            .map(Result::unwrap)
            .find(|e| e.file_name() == "f")
            .unwrap();
        let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
        assert_eq!(entry.ino(), ino);

        // symlink, then read through it.
        weft::fs::write(&path, "through the link").unwrap();
        weft::fs::symlink(&path, dir.join("link")).unwrap();
        assert_eq!(
            weft::fs::read_to_string(dir.join("link")).unwrap(),
            "through the link"
        );
        assert_eq!(
            weft::fs::symlink(&path, dir.join("link"))
                .unwrap_err()
                .kind(),
            std::io::ErrorKind::AlreadyExists
        );
        std::fs::remove_dir_all(&dir).unwrap();
        true
    });
    assert!(checked);
}

#[test]
fn a_file_becomes_a_childs_stdin_or_an_owned_fd() {
    let dir = scratch("stdio");
    let out = green(move || {
        let path = dir.join("input");
        weft::fs::write(&path, "from a file\n").unwrap();
        let file = weft::fs::File::open(&path).unwrap();
        let output = weft::process::Command::new("cat")
            .stdin(std::process::Stdio::from(file))
            .output()
            .unwrap();
        let fd = OwnedFd::from(weft::fs::File::open(&path).unwrap());
        let back = weft::fs::File::from(fd);
        assert_eq!(back.metadata().unwrap().len(), 12);
        std::fs::remove_dir_all(&dir).unwrap();
        String::from_utf8(output.stdout).unwrap()
    });
    assert_eq!(out, "from a file\n");
}

#[test]
fn once_runs_once_while_the_others_park() {
    use std::sync::atomic::{AtomicU32, Ordering};
    static ONCE: weft::sync::Once = weft::sync::Once::new();
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let completed = green(|| {
        assert!(!ONCE.is_completed());
        let handles: Vec<_> = (0..8)
            .map(|_| {
                weft::spawn(|| {
                    ONCE.call_once(|| {
                        // The others park on the once meanwhile.
                        weft::sleep(Duration::from_millis(30));
                        RUNS.fetch_add(1, Ordering::Relaxed);
                    });
                    // Every caller returns after the run completed.
                    RUNS.load(Ordering::Relaxed)
                })
            })
            .collect();
        let seen: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(seen, vec![1; 8]);
        ONCE.is_completed()
    });
    assert!(completed);
}

#[test]
fn a_panicking_once_or_lazy_lock_is_poisoned() {
    let (once_poisoned, lazy_poisoned) = green(|| {
        let once = weft::sync::Once::new();
        assert!(std::panic::catch_unwind(|| once.call_once(|| panic!("first"))).is_err());
        let again = std::panic::catch_unwind(|| once.call_once(|| {}));
        let lazy: weft::sync::LazyLock<u32> = weft::sync::LazyLock::new(|| panic!("first"));
        assert!(std::panic::catch_unwind(|| *lazy).is_err());
        let lazy_again = std::panic::catch_unwind(|| *lazy);
        (again.is_err() && !once.is_completed(), lazy_again.is_err())
    });
    assert!(once_poisoned);
    assert!(lazy_poisoned);
}

#[test]
fn lazy_lock_computes_once_on_first_access() {
    use std::sync::atomic::{AtomicU32, Ordering};
    static RUNS: AtomicU32 = AtomicU32::new(0);
    static TABLE: weft::sync::LazyLock<Vec<u32>> = weft::sync::LazyLock::new(|| {
        weft::sleep(Duration::from_millis(30));
        RUNS.fetch_add(1, Ordering::Relaxed);
        vec![1, 2, 3]
    });
    let sums = green(|| {
        let handles: Vec<_> = (0..8)
            .map(|_| weft::spawn(|| TABLE.iter().sum::<u32>()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(sums, vec![6; 8]);
    assert_eq!(RUNS.load(Ordering::Relaxed), 1);
    assert_eq!(format!("{:?}", *TABLE), "[1, 2, 3]");
}

#[test]
fn one_child_pipes_into_the_next() {
    let out = green(|| {
        let mut producer = weft::process::Command::new("printf")
            .arg("b\\na\\nc\\n")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pipe = producer.stdout.take().unwrap();
        // std's idiom: the first child's stdout becomes the second's stdin.
        let sorted = weft::process::Command::new("sort")
            .stdin(std::process::Stdio::from(pipe))
            .output()
            .unwrap();
        assert!(producer.wait().unwrap().success());
        // And as an OwnedFd: the pipe is handed back in blocking mode.
        let mut child = weft::process::Command::new("true")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let fd = OwnedFd::from(child.stdout.take().unwrap());
        // SAFETY: F_GETFL on an open fd.
        let flags = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&fd), libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0);
        child.wait().unwrap();
        String::from_utf8(sorted.stdout).unwrap()
    });
    assert_eq!(out, "a\nb\nc\n");
}

#[test]
fn command_ext_sets_identity_group_argv0_and_pre_exec() {
    use weft::process::{Command, CommandExt};
    let (argv0, uid, pgid_differs, pre_exec_err, exec_err) = green(|| {
        let argv0 = Command::new("sh")
            .arg0("renamed")
            .args(["-c", "echo $0"])
            .output()
            .unwrap();
        // As root (this machine and CI), a child may take another user and group.
        let uid = if unsafe { libc::geteuid() } == 0 {
            let out = Command::new("id")
                .arg("-u")
                .uid(65534)
                .gid(65534)
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        } else {
            "65534".to_owned()
        };
        let pgid = Command::new("sh")
            .args(["-c", "cut -d' ' -f5 /proc/$$/stat"])
            .process_group(0)
            .output()
            .unwrap();
        let child_pgid: i32 = String::from_utf8(pgid.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let pgid_differs = child_pgid != unsafe { libc::getpgrp() };
        // SAFETY: the closure only builds an error value (no allocation: from_raw_os_error).
        let pre_exec_err = unsafe {
            Command::new("true")
                .pre_exec(|| Err(std::io::Error::from_raw_os_error(libc::EPERM)))
                .spawn()
                .unwrap_err()
                .raw_os_error()
        };
        let exec_err = Command::new("/nonexistent/weft-program").exec().kind();
        (
            String::from_utf8(argv0.stdout).unwrap(),
            uid,
            pgid_differs,
            pre_exec_err,
            exec_err,
        )
    });
    assert_eq!(argv0, "renamed\n");
    assert_eq!(uid, "65534");
    assert!(pgid_differs);
    assert_eq!(pre_exec_err, Some(libc::EPERM));
    assert_eq!(exec_err, std::io::ErrorKind::NotFound);
}

#[test]
#[ignore = "child process of a_file_lock_wait_leaves_the_worker_free"]
fn child_file_lock_beside_a_ticker() {
    if !common::is_child() {
        return;
    }
    common::workers(1);
    let dir = scratch("lockticker");
    let path = dir.join("locked");
    let ticks = weft::run(move || {
        let holder = weft::fs::File::create(&path).unwrap();
        holder.lock().unwrap();
        let waiter = weft::fs::File::open(&path).unwrap();
        // Another green thread of this one worker releases the lock after 300 ms.
        let releaser = weft::spawn(move || {
            weft::sleep(Duration::from_millis(300));
            holder.unlock().unwrap();
        });
        let ticker = common::Ticker::start();
        let ((), ticks) = ticker.during(|| waiter.lock().unwrap());
        releaser.join().unwrap();
        ticks
    });
    std::fs::remove_dir_all(&dir).unwrap();
    println!("result ticks {ticks}");
}

#[test]
fn a_file_lock_wait_leaves_the_worker_free() {
    // On one worker: the waiting green thread parks (the lock waits on the blocking pool),
    // so the ticker keeps ticking and the releaser, on the same worker, gets to run.
    let stdout = common::watchdog(60, || {
        common::child_stdout("child_file_lock_beside_a_ticker", &[])
    });
    let line = common::line_with(&stdout, "result ticks ");
    let ticks: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        ticks >= 30,
        "the ticker ticked {ticks} times in ~300 ms: {line}"
    );
}

#[test]
fn unix_sockets_take_std_addresses_including_abstract_names() {
    use std::io::{ErrorKind, Read, Write};
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr;
    use weft::net::unix::{UnixDatagram, UnixListener, UnixStream};
    let got = green(|| {
        let name = format!("weft-parity-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixListener::bind_addr(&addr).unwrap();
        let server = weft::spawn(move || {
            // `for stream in &listener`, as std's IntoIterator allows.
            let mut served = Vec::new();
            for stream in &listener {
                let mut stream = stream.unwrap();
                let mut byte = [0];
                stream.read_exact(&mut byte).unwrap();
                served.push(byte[0]);
                if served.len() == 2 {
                    break;
                }
            }
            served
        });
        UnixStream::connect_addr(&addr)
            .unwrap()
            .write_all(b"a")
            .unwrap();
        let local = UnixStream::connect_addr(&addr).unwrap();
        (&local).write_all(b"b").unwrap();
        let peer = local.peer_addr().unwrap();
        assert_eq!(peer.as_abstract_name(), Some(name.as_bytes()));
        let served = server.join().unwrap();

        // std refuses a NUL byte in a path, leading or interior, with InvalidInput.
        let leading = UnixStream::connect(format!("\0{name}")).unwrap_err().kind();
        let interior = UnixStream::connect("/tmp/a\0b").unwrap_err().kind();

        // Datagrams: bind_addr, connect_addr, send_to_addr.
        let dname = format!("weft-parity-dgram-{}", std::process::id());
        let daddr = SocketAddr::from_abstract_name(dname.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&daddr).unwrap();
        let sender = UnixDatagram::unbound().unwrap();
        assert_eq!(sender.send_to_addr(b"to", &daddr).unwrap(), 2);
        let connected = UnixDatagram::unbound().unwrap();
        connected.connect_addr(&daddr).unwrap();
        connected.send(b"connected").unwrap();
        let mut buf = [0; 16];
        let first = receiver.recv(&mut buf).unwrap();
        let first = buf[..first].to_vec();
        let second = receiver.recv(&mut buf).unwrap();
        let second = buf[..second].to_vec();
        (served, leading, interior, first, second)
    });
    assert_eq!(got.0, b"ab");
    assert_eq!(got.1, ErrorKind::InvalidInput);
    assert_eq!(got.2, ErrorKind::InvalidInput);
    assert_eq!(got.3, b"to");
    assert_eq!(got.4, b"connected");
}

#[test]
fn a_downgraded_writer_lets_queued_readers_in_and_keeps_writers_out() {
    use std::sync::Arc;
    use weft::sync::RwLockWriteGuard;
    let (reader_saw, writer_waited) = green(|| {
        let lock = Arc::new(RwLock::new(0));
        let mut write = lock.write().unwrap();
        let reader = weft::spawn({
            let lock = lock.clone();
            move || *lock.read().unwrap()
        });
        // Let the reader queue behind the write hold.
        while weft::dump().matches("rwlock").count() < 1 {
            weft::yield_now();
        }
        *write = 1;
        let read = RwLockWriteGuard::downgrade(write);
        // The queued reader is admitted while we still hold our read hold; a writer
        // is not.
        let reader_saw = reader.join().unwrap();
        assert!(lock.try_write().is_err());
        let writer = weft::spawn({
            let lock = lock.clone();
            move || *lock.write().unwrap() += 10
        });
        weft::sleep(Duration::from_millis(20));
        let writer_waited = !writer.is_finished() && *read == 1;
        drop(read);
        writer.join().unwrap();
        assert_eq!(*lock.read().unwrap(), 11);
        (reader_saw, writer_waited)
    });
    assert_eq!(reader_saw, 1);
    assert!(writer_waited);
}

#[test]
fn once_force_and_wait_follow_std() {
    use std::sync::Arc;
    use weft::sync::Once;
    let got = green(|| {
        let once = Arc::new(Once::new());
        // A waiter parks until completion, and a wait_force waiter too.
        let waiter = weft::spawn({
            let once = once.clone();
            move || std::panic::catch_unwind(|| once.wait()).is_ok()
        });
        let forced_waiter = weft::spawn({
            let once = once.clone();
            move || {
                once.wait_force();
                once.is_completed()
            }
        });
        weft::yield_now();
        // A panicking initialiser poisons: `wait` panics, `wait_force` keeps waiting.
        let _ = std::panic::catch_unwind(|| once.call_once(|| panic!("first try")));
        let waiter_panicked = !waiter.join().unwrap();
        assert!(!forced_waiter.is_finished());
        let mut saw_poison = false;
        once.call_once_force(|state| saw_poison = state.is_poisoned());
        let forced_waiter_completed = forced_waiter.join().unwrap();
        // Completed now, and no longer poisoned: plain calls return, wait returns.
        once.call_once(|| unreachable!());
        once.wait();
        (waiter_panicked, saw_poison, forced_waiter_completed)
    });
    assert_eq!(got, (true, true, true));
}

#[test]
fn lazy_lock_get_and_force_mut() {
    let got = green(|| {
        let mut lazy: weft::sync::LazyLock<Vec<u32>> = weft::sync::LazyLock::new(|| vec![1]);
        let before = weft::sync::LazyLock::get(&lazy).is_none()
            && weft::sync::LazyLock::get_mut(&mut lazy).is_none();
        weft::sync::LazyLock::force_mut(&mut lazy).push(2);
        weft::sync::LazyLock::get_mut(&mut lazy).unwrap().push(3);
        (before, weft::sync::LazyLock::get(&lazy).cloned())
    });
    assert_eq!(got, (true, Some(vec![1, 2, 3])));
}

#[test]
fn child_stdin_writes_through_a_shared_reference_and_gives_up_its_fd() {
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, IntoRawFd};
    let (echoed, blocking) = green(|| {
        let mut child = weft::process::Command::new("cat")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        (&stdin).write_all(b"shared ").unwrap();
        let raw = stdin.into_raw_fd();
        // SAFETY: `raw` was just given up by the pipe, so this is its only owner.
        let mut file = unsafe { std::fs::File::from_raw_fd(raw) };
        // SAFETY: F_GETFL on an open fd.
        let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
        file.write_all(b"raw").unwrap();
        drop(file);
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        child.wait().unwrap();
        (out, flags & libc::O_NONBLOCK == 0)
    });
    assert_eq!(echoed, "shared raw");
    assert!(blocking);
}

#[test]
#[ignore = "child process of once_and_lazy_lock_waits_leave_the_worker_free"]
fn child_once_waits_beside_a_ticker() {
    if !common::is_child() {
        return;
    }
    common::workers(1);
    static ONCE: weft::sync::Once = weft::sync::Once::new();
    static LAZY: weft::sync::LazyLock<u32> = weft::sync::LazyLock::new(|| {
        weft::sleep(Duration::from_millis(300));
        7
    });
    let (once_ticks, lazy_ticks) = weft::run(|| {
        let ticker = common::Ticker::start();
        // Another green thread of this one worker completes the Once after 300 ms.
        let completer = weft::spawn(|| {
            weft::sleep(Duration::from_millis(300));
            ONCE.call_once(|| {});
        });
        let ((), once_ticks) = ticker.during(|| ONCE.wait());
        completer.join().unwrap();
        // A green thread initialises the LazyLock (300 ms); this one waits for it.
        let first = weft::spawn(|| *LAZY);
        weft::yield_now();
        let (value, lazy_ticks) = ticker.during(|| *LAZY);
        assert_eq!((value, first.join().unwrap()), (7, 7));
        (once_ticks, lazy_ticks)
    });
    println!("result ticks {once_ticks} {lazy_ticks}");
}

#[test]
fn once_and_lazy_lock_waits_leave_the_worker_free() {
    // On one worker: `Once::wait` and a `LazyLock` another green thread is initialising
    // park the caller, so a ticker on the same worker keeps ticking meanwhile.
    let stdout = common::watchdog(60, || {
        common::child_stdout("child_once_waits_beside_a_ticker", &[])
    });
    let line = common::line_with(&stdout, "result ticks ");
    let after = &line[line.find("result ticks ").unwrap() + "result ticks ".len()..];
    let mut ticks = after.split_whitespace().map(|t| t.parse::<u64>().unwrap());
    let (once, lazy) = (ticks.next().unwrap(), ticks.next().unwrap());
    assert!(
        once >= 30,
        "during Once::wait the ticker ticked {once} times"
    );
    assert!(
        lazy >= 30,
        "during the LazyLock wait the ticker ticked {lazy} times"
    );
}
