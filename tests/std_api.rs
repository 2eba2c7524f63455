//! Compile-time parity with std (tracks **Rust 1.95**): every stable method and trait of
//! each std type that weft mirrors, called on weft's type with std's argument and result
//! types. Nothing here runs; if a mirror loses a method, changes a signature or drops a trait,
//! this file stops compiling.
//!
//! When a new Rust release stabilises a method on one of these std types, add the call here
//! in the type's group and bump the version above. Methods weft deliberately does not mirror
//! are listed at the end of each group with the reason, and in the README's "Where weft
//! differs from std".
#![allow(dead_code, unused_must_use, unused_variables)]

use std::ffi::OsStr;
use std::fmt::{Debug, Display};
use std::io::{self, IoSlice, IoSliceMut, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::SocketAddr as UnixAddr;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::time::{Duration, SystemTime};

fn send_sync<T: Send + Sync>() {}
fn fd_traits<T: AsFd + AsRawFd + FromRawFd + IntoRawFd + From<OwnedFd> + Into<OwnedFd> + Debug>() {}
fn read_write<T>()
where
    T: Read + Write,
    for<'a> &'a T: Read + Write,
{
}
fn unwind_safe<T: UnwindSafe + RefUnwindSafe>() {}

mod net {
    use super::*;
    use weft::net::unix::{UnixDatagram, UnixListener, UnixStream};
    use weft::net::{Incoming, TcpListener, TcpStream, UdpSocket};

    fn traits() {
        send_sync::<TcpStream>();
        send_sync::<TcpListener>();
        send_sync::<UdpSocket>();
        send_sync::<UnixStream>();
        send_sync::<UnixListener>();
        send_sync::<UnixDatagram>();
        fd_traits::<TcpStream>();
        fd_traits::<TcpListener>();
        fd_traits::<UdpSocket>();
        fd_traits::<UnixStream>();
        fd_traits::<UnixListener>();
        fd_traits::<UnixDatagram>();
        read_write::<TcpStream>();
        read_write::<UnixStream>();
    }

    fn tcp_stream(s: TcpStream, addr: SocketAddr, mut buf: Vec<u8>) {
        let _: io::Result<TcpStream> = TcpStream::connect("127.0.0.1:80");
        let _: io::Result<TcpStream> = TcpStream::connect(addr);
        let _: io::Result<TcpStream> = TcpStream::connect_timeout(&addr, Duration::ZERO);
        let _: io::Result<SocketAddr> = s.peer_addr();
        let _: io::Result<SocketAddr> = s.local_addr();
        let _: io::Result<()> = s.shutdown(Shutdown::Both);
        let _: io::Result<TcpStream> = s.try_clone();
        let _: io::Result<()> = s.set_read_timeout(None);
        let _: io::Result<()> = s.set_write_timeout(Some(Duration::ZERO));
        let _: io::Result<Option<Duration>> = s.read_timeout();
        let _: io::Result<Option<Duration>> = s.write_timeout();
        let _: io::Result<usize> = s.peek(&mut buf);
        let _: io::Result<()> = s.set_nodelay(true);
        let _: io::Result<bool> = s.nodelay();
        let _: io::Result<()> = s.set_ttl(1);
        let _: io::Result<u32> = s.ttl();
        let _: io::Result<Option<io::Error>> = s.take_error();
        let _: io::Result<()> = s.set_nonblocking(true);
        let _: io::Result<usize> = (&s).read_vectored(&mut [IoSliceMut::new(&mut buf)]);
        let _: io::Result<usize> = (&s).write_vectored(&[IoSlice::new(b"x")]);
        // Not mirrored: set_linger/linger (unstable in std).
    }

    fn tcp_listener(l: TcpListener, addr: SocketAddr) {
        let _: io::Result<TcpListener> = TcpListener::bind("127.0.0.1:0");
        let _: io::Result<TcpListener> = TcpListener::bind(addr);
        let _: io::Result<SocketAddr> = l.local_addr();
        let _: io::Result<TcpListener> = l.try_clone();
        let _: io::Result<(TcpStream, SocketAddr)> = l.accept();
        let mut incoming: Incoming<'_> = l.incoming();
        let _: Option<io::Result<TcpStream>> = incoming.next();
        let _: io::Result<()> = l.set_ttl(1);
        let _: io::Result<u32> = l.ttl();
        let _: io::Result<Option<io::Error>> = l.take_error();
        let _: io::Result<()> = l.set_nonblocking(true);
        // Not mirrored: set_only_v6/only_v6 (deprecated in std since 1.16: the option can only
        // be set before bind; use `TcpListener::bind_with`), into_incoming (unstable).
    }

    fn udp(u: UdpSocket, addr: SocketAddr, mut buf: Vec<u8>) {
        let _: io::Result<UdpSocket> = UdpSocket::bind("127.0.0.1:0");
        let _: io::Result<(usize, SocketAddr)> = u.recv_from(&mut buf);
        let _: io::Result<(usize, SocketAddr)> = u.peek_from(&mut buf);
        let _: io::Result<usize> = u.send_to(b"x", addr);
        let _: io::Result<usize> = u.send_to(b"x", "127.0.0.1:9");
        let _: io::Result<SocketAddr> = u.peer_addr();
        let _: io::Result<SocketAddr> = u.local_addr();
        let _: io::Result<UdpSocket> = u.try_clone();
        let _: io::Result<()> = u.set_read_timeout(None);
        let _: io::Result<()> = u.set_write_timeout(None);
        let _: io::Result<Option<Duration>> = u.read_timeout();
        let _: io::Result<Option<Duration>> = u.write_timeout();
        let _: io::Result<()> = u.set_broadcast(true);
        let _: io::Result<bool> = u.broadcast();
        let _: io::Result<()> = u.set_multicast_loop_v4(true);
        let _: io::Result<bool> = u.multicast_loop_v4();
        let _: io::Result<()> = u.set_multicast_ttl_v4(1);
        let _: io::Result<u32> = u.multicast_ttl_v4();
        let _: io::Result<()> = u.set_multicast_loop_v6(true);
        let _: io::Result<bool> = u.multicast_loop_v6();
        let _: io::Result<()> = u.set_ttl(1);
        let _: io::Result<u32> = u.ttl();
        let v4 = Ipv4Addr::LOCALHOST;
        let v6 = Ipv6Addr::LOCALHOST;
        let _: io::Result<()> = u.join_multicast_v4(&v4, &v4);
        let _: io::Result<()> = u.join_multicast_v6(&v6, 0);
        let _: io::Result<()> = u.leave_multicast_v4(&v4, &v4);
        let _: io::Result<()> = u.leave_multicast_v6(&v6, 0);
        let _: io::Result<Option<io::Error>> = u.take_error();
        let _: io::Result<()> = u.connect(addr);
        let _: io::Result<usize> = u.send(b"x");
        let _: io::Result<usize> = u.recv(&mut buf);
        let _: io::Result<usize> = u.peek(&mut buf);
        let _: io::Result<()> = u.set_nonblocking(true);
    }

    fn unix_stream(s: UnixStream, addr: UnixAddr) {
        let _: io::Result<UnixStream> = UnixStream::connect("/tmp/x");
        let _: io::Result<UnixStream> = UnixStream::connect_addr(&addr);
        let _: io::Result<(UnixStream, UnixStream)> = UnixStream::pair();
        let _: io::Result<UnixStream> = s.try_clone();
        let _: io::Result<UnixAddr> = s.local_addr();
        let _: io::Result<UnixAddr> = s.peer_addr();
        let _: io::Result<()> = s.set_read_timeout(None);
        let _: io::Result<()> = s.set_write_timeout(None);
        let _: io::Result<Option<Duration>> = s.read_timeout();
        let _: io::Result<Option<Duration>> = s.write_timeout();
        let _: io::Result<()> = s.set_nonblocking(true);
        let _: io::Result<Option<io::Error>> = s.take_error();
        let _: io::Result<()> = s.shutdown(Shutdown::Read);
        // Not mirrored: peer_cred, set_mark, peek, *_with_ancillary (unstable in std).
    }

    fn unix_listener(l: UnixListener, addr: UnixAddr) {
        let _: io::Result<UnixListener> = UnixListener::bind("/tmp/x");
        let _: io::Result<UnixListener> = UnixListener::bind_addr(&addr);
        let _: io::Result<(UnixStream, UnixAddr)> = l.accept();
        let _: io::Result<UnixListener> = l.try_clone();
        let _: io::Result<UnixAddr> = l.local_addr();
        let _: io::Result<()> = l.set_nonblocking(true);
        let _: io::Result<Option<io::Error>> = l.take_error();
        let mut incoming: weft::net::unix::Incoming<'_> = l.incoming();
        let _: Option<io::Result<UnixStream>> = incoming.next();
        let _: weft::net::unix::Incoming<'_> = (&l).into_iter();
    }

    fn unix_datagram(d: UnixDatagram, addr: UnixAddr, mut buf: Vec<u8>) {
        let _: io::Result<UnixDatagram> = UnixDatagram::bind("/tmp/x");
        let _: io::Result<UnixDatagram> = UnixDatagram::bind_addr(&addr);
        let _: io::Result<UnixDatagram> = UnixDatagram::unbound();
        let _: io::Result<(UnixDatagram, UnixDatagram)> = UnixDatagram::pair();
        let _: io::Result<()> = d.connect("/tmp/x");
        let _: io::Result<()> = d.connect_addr(&addr);
        let _: io::Result<UnixDatagram> = d.try_clone();
        let _: io::Result<UnixAddr> = d.local_addr();
        let _: io::Result<UnixAddr> = d.peer_addr();
        let _: io::Result<(usize, UnixAddr)> = d.recv_from(&mut buf);
        let _: io::Result<usize> = d.recv(&mut buf);
        let _: io::Result<usize> = d.send_to(b"x", "/tmp/x");
        let _: io::Result<usize> = d.send_to_addr(b"x", &addr);
        let _: io::Result<usize> = d.send(b"x");
        let _: io::Result<()> = d.set_read_timeout(None);
        let _: io::Result<()> = d.set_write_timeout(None);
        let _: io::Result<Option<Duration>> = d.read_timeout();
        let _: io::Result<Option<Duration>> = d.write_timeout();
        let _: io::Result<()> = d.set_nonblocking(true);
        let _: io::Result<Option<io::Error>> = d.take_error();
        let _: io::Result<()> = d.shutdown(Shutdown::Write);
        // Not mirrored: peek, peek_from, set_mark, *_with_ancillary* (unstable in std).
    }
}

mod sync {
    use super::*;
    use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};
    use weft::sync::{
        Barrier, BarrierWaitResult, Condvar, LazyLock, Mutex, MutexGuard, Once, OnceLock,
        OnceState, RwLock, RwLockReadGuard, RwLockWriteGuard, WaitTimeoutResult,
    };

    fn traits() {
        send_sync::<Mutex<u8>>();
        send_sync::<RwLock<u8>>();
        send_sync::<Condvar>();
        send_sync::<OnceLock<u8>>();
        send_sync::<Once>();
        send_sync::<LazyLock<u8>>();
        send_sync::<Barrier>();
        unwind_safe::<Mutex<u8>>();
        unwind_safe::<RwLock<u8>>();
        unwind_safe::<Condvar>();
        unwind_safe::<OnceLock<u8>>();
        unwind_safe::<Once>();
        unwind_safe::<LazyLock<u8>>();
        let _: Mutex<u8> = Default::default();
        let _: RwLock<u8> = Default::default();
        let _: Condvar = Default::default();
        let _: OnceLock<u8> = Default::default();
        let _: LazyLock<u8> = Default::default();
        let _: Mutex<u8> = 1.into();
        let _: RwLock<u8> = 1.into();
        let _: OnceLock<u8> = 1.into();
        let _: OnceLock<u8> = OnceLock::new().clone();
        let _ = OnceLock::<u8>::new() == OnceLock::new();
    }

    fn read_guards_are_covariant<'a>(
        g: RwLockReadGuard<'static, &'static str>,
    ) -> RwLockReadGuard<'a, &'a str> {
        g
    }

    fn display(m: &Mutex<u8>, r: &RwLock<u8>) {
        let _: &dyn Display = &m.lock().unwrap();
        let _: &dyn Display = &r.read().unwrap();
        let _: &dyn Display = &r.write().unwrap();
        let _: &dyn Debug = m;
        let _: &dyn Debug = r;
    }

    fn mutex(mut m: Mutex<u8>) {
        let _: Mutex<u8> = Mutex::new(1);
        let _: LockResult<MutexGuard<'_, u8>> = m.lock();
        let _: TryLockResult<MutexGuard<'_, u8>> = m.try_lock();
        let _: bool = m.is_poisoned();
        m.clear_poison();
        let _: LockResult<&mut u8> = m.get_mut();
        let _: LockResult<u8> = m.into_inner();
        let _: fn(PoisonError<u8>) -> u8 = PoisonError::into_inner;
        // Not mirrored: get_cloned, set, replace, data_ptr, MutexGuard::map/filter_map
        // (unstable in std).
    }

    fn rwlock(mut r: RwLock<u8>) {
        let _: RwLock<u8> = RwLock::new(1);
        let _: LockResult<RwLockReadGuard<'_, u8>> = r.read();
        let _: TryLockResult<RwLockReadGuard<'_, u8>> = r.try_read();
        let w: LockResult<RwLockWriteGuard<'_, u8>> = r.write();
        let _: RwLockReadGuard<'_, u8> = RwLockWriteGuard::downgrade(w.unwrap());
        let _: TryLockResult<RwLockWriteGuard<'_, u8>> = r.try_write();
        let _: bool = r.is_poisoned();
        r.clear_poison();
        let _: LockResult<&mut u8> = r.get_mut();
        let _: LockResult<u8> = r.into_inner();
        if let Err(TryLockError::WouldBlock) = RwLock::new(1).try_read().map(|_| ()) {}
    }

    fn condvar(c: Condvar, m: Mutex<u8>) {
        let _: Condvar = Condvar::new();
        let g = m.lock().unwrap();
        let g: LockResult<MutexGuard<'_, u8>> = c.wait(g);
        let g: LockResult<MutexGuard<'_, u8>> = c.wait_while(g.unwrap(), |v| *v == 0);
        let g: LockResult<(MutexGuard<'_, u8>, WaitTimeoutResult)> =
            c.wait_timeout(g.unwrap(), Duration::ZERO);
        let (g, t) = g.unwrap();
        let _: bool = t.timed_out();
        let _: LockResult<(MutexGuard<'_, u8>, WaitTimeoutResult)> =
            c.wait_timeout_while(g, Duration::ZERO, |v| *v == 0);
        c.notify_one();
        c.notify_all();
        // Not mirrored: wait_timeout_ms (deprecated in std since 1.6).
    }

    fn once_lock(mut o: OnceLock<u8>) {
        let _: OnceLock<u8> = OnceLock::new();
        let _: Option<&u8> = o.get();
        let _: Option<&mut u8> = o.get_mut();
        let _: &u8 = o.wait();
        let _: Result<(), u8> = o.set(1);
        let _: &u8 = o.get_or_init(|| 1);
        let _: Option<u8> = o.take();
        let _: Option<u8> = o.into_inner();
        // Not mirrored: try_insert, get_mut_or_init, get_or_try_init, get_mut_or_try_init
        // (unstable in std).
    }

    fn once(o: Once) {
        static ONCE: Once = Once::new();
        o.call_once(|| ());
        o.call_once_force(|state: &OnceState| {
            let _: bool = state.is_poisoned();
        });
        let _: bool = o.is_completed();
        o.wait();
        o.wait_force();
    }

    fn lazy(mut l: LazyLock<u8>) {
        static LAZY: LazyLock<u8> = LazyLock::new(|| 1);
        let _: &u8 = LazyLock::force(&LAZY);
        let _: u8 = *LAZY;
        let _: &mut u8 = LazyLock::force_mut(&mut l);
        let _: Option<&mut u8> = LazyLock::get_mut(&mut l);
        let _: Option<&u8> = LazyLock::get(&l);
        // Not mirrored: into_inner (unstable in std).
    }

    fn barrier(b: Barrier) {
        let _: Barrier = Barrier::new(2);
        let r: BarrierWaitResult = b.wait();
        let _: bool = r.is_leader();
    }
}

mod fs {
    use super::*;
    use weft::fs::{
        DirBuilder, DirEntry, File, FileTimes, FileType, Metadata, OpenOptions, Permissions,
        ReadDir, TryLockError,
    };

    fn traits() {
        send_sync::<File>();
        fd_traits::<File>();
        fn seek<T: Seek>() {}
        seek::<File>();
        seek::<&File>();
        read_write::<File>();
        let _: Stdio = Stdio::from(File::open("x").unwrap());
        let _: OpenOptions = OpenOptions::new().clone();
        let _: DirBuilder = DirBuilder::new();
        let _: &dyn Debug = &DirBuilder::new();
    }

    fn file(f: File, p: Permissions, t: FileTimes) {
        let _: io::Result<File> = File::open("x");
        let _: io::Result<File> = File::create("x");
        let _: io::Result<File> = File::create_new("x");
        let _: OpenOptions = File::options();
        let _: io::Result<()> = f.sync_all();
        let _: io::Result<()> = f.sync_data();
        let _: io::Result<()> = f.lock();
        let _: io::Result<()> = f.lock_shared();
        let _: Result<(), TryLockError> = f.try_lock();
        let _: Result<(), TryLockError> = f.try_lock_shared();
        let _: io::Result<()> = f.unlock();
        let _: io::Result<()> = f.set_len(1);
        let _: io::Result<Metadata> = f.metadata();
        let _: io::Result<File> = f.try_clone();
        let _: io::Result<()> = f.set_permissions(p);
        let _: io::Result<()> = f.set_times(t);
        let _: io::Result<()> = f.set_modified(SystemTime::now());
        let _: io::Result<u64> = (&f).seek(SeekFrom::Start(0));
        // Not mirrored: open_buffered, create_buffered (unstable in std).
    }

    fn open_options(mut o: OpenOptions) {
        let _: OpenOptions = OpenOptions::new();
        let _: &mut OpenOptions = o
            .read(true)
            .write(true)
            .append(true)
            .truncate(true)
            .create(true)
            .create_new(true);
        let _: io::Result<File> = o.open("x");
    }

    fn dirs(e: DirEntry, mut r: ReadDir, mut b: DirBuilder) {
        let _: PathBuf = e.path();
        let _: io::Result<Metadata> = e.metadata();
        let _: io::Result<FileType> = e.file_type();
        let _: std::ffi::OsString = e.file_name();
        let _: u64 = e.ino();
        let _: Option<io::Result<DirEntry>> = r.next();
        let _: &mut DirBuilder = b.recursive(true);
        let _: io::Result<()> = b.create("x");
    }

    fn functions(p: &Path, perm: Permissions) {
        use weft::fs;
        let _: io::Result<PathBuf> = fs::canonicalize(p);
        let _: io::Result<u64> = fs::copy(p, "y");
        let _: io::Result<()> = fs::create_dir(p);
        let _: io::Result<()> = fs::create_dir_all(p);
        let _: io::Result<bool> = fs::exists(p);
        let _: io::Result<()> = fs::hard_link(p, "y");
        let _: io::Result<Metadata> = fs::metadata(p);
        let _: io::Result<Vec<u8>> = fs::read(p);
        let _: io::Result<ReadDir> = fs::read_dir(p);
        let _: io::Result<PathBuf> = fs::read_link(p);
        let _: io::Result<String> = fs::read_to_string(p);
        let _: io::Result<()> = fs::remove_dir(p);
        let _: io::Result<()> = fs::remove_dir_all(p);
        let _: io::Result<()> = fs::remove_file(p);
        let _: io::Result<()> = fs::rename(p, "y");
        let _: io::Result<()> = fs::set_permissions(p, perm);
        let _: io::Result<Metadata> = fs::symlink_metadata(p);
        let _: io::Result<()> = fs::write(p, b"x");
        let _: io::Result<()> = fs::symlink(p, "y");
        // Not mirrored: soft_link (deprecated in std), set_permissions_nofollow, set_times,
        // set_times_nofollow and Dir (unstable in std).
    }
}

mod process {
    use super::*;
    use std::process::{CommandArgs, CommandEnvs};
    use weft::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, CommandExt};

    fn traits() {
        send_sync::<Command>();
        send_sync::<Child>();
        fd_traits_in::<ChildStdin>();
        fd_traits_in::<ChildStdout>();
        fd_traits_in::<ChildStderr>();
        fn fd_traits_in<T: AsFd + AsRawFd + IntoRawFd + Into<OwnedFd> + Into<Stdio> + Debug>() {}
        fn write<T: Write>() {}
        fn read<T: Read>() {}
        write::<ChildStdin>();
        write::<&ChildStdin>();
        read::<ChildStdout>();
        read::<ChildStderr>();
        let _: &dyn Debug = &Command::new("x");
    }

    fn command(mut c: Command) {
        let _: Command = Command::new("x");
        let _: &mut Command = c
            .arg("x")
            .args(["a", "b"])
            .env("K", "V")
            .envs([("K", "V")])
            .env_remove("K")
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let _: io::Result<Child> = c.spawn();
        let _: io::Result<Output> = c.output();
        let _: io::Result<ExitStatus> = c.status();
        let _: &OsStr = c.get_program();
        let _: CommandArgs<'_> = c.get_args();
        let _: CommandEnvs<'_> = c.get_envs();
        let _: Option<&Path> = c.get_current_dir();
        let _: &mut Command = c.uid(0).gid(0).arg0("x").process_group(0);
        // SAFETY: never run; this only checks the signature.
        let _: &mut Command = unsafe { c.pre_exec(|| Ok(())) };
        let _: io::Error = c.exec();
        // Not mirrored: get_env_clear (unstable in std).
    }

    fn child(mut c: Child) {
        let _: Option<ChildStdin> = c.stdin.take();
        let _: Option<ChildStdout> = c.stdout.take();
        let _: Option<ChildStderr> = c.stderr.take();
        let _: io::Result<()> = c.kill();
        let _: u32 = c.id();
        let _: io::Result<ExitStatus> = c.wait();
        let _: io::Result<Option<ExitStatus>> = c.try_wait();
        let _: io::Result<Output> = c.wait_with_output();
    }
}

/// The file has to be a test target to be compiled; this is its only test.
#[test]
fn the_parity_file_compiles() {}
