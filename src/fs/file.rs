//! [`File`] and [`OpenOptions`]: std's file API, with reads served from the page cache on
//! the worker and everything that may wait for the disk run on the blocking pool.

use std::fmt;
use std::fs::{FileTimes, Metadata, Permissions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};

use crate::blocking::{offload, offload_then};
use crate::runtime::blocking_point::{wait_site, OnInterrupt};
use crate::runtime::reactor::uring;
use crate::runtime::scheduler::{context, worker};
use crate::sys::file::{read_nowait, write_nowait, NoWait};

/// An open file, as [`std::fs::File`], whose calls never block the worker: a read first
/// asks the page cache without waiting (`preadv2` with `RWF_NOWAIT`, one syscall, no
/// hand-off); a miss, and a write the kernel will not take without waiting, go to the
/// worker's io_uring ring (the blocking pool without one); syncing and metadata go to the
/// pool (see the [module docs](crate::fs)).
///
/// `Read`, `Write` and `Seek` are implemented for `File` and `&File`, and
/// [`FileExt`](std::os::unix::fs::FileExt) gives positional `read_at`/`write_at`. On a plain
/// thread every call is the std call.
///
/// ```
/// use std::io::{Read, Write};
///
/// let path = std::env::temp_dir().join(format!("weft-doc-file-{}", std::process::id()));
/// let text = weft::run(|| -> std::io::Result<String> {
///     let mut file = weft::fs::File::create(&path)?;
///     file.write_all(b"woven")?;
///     let mut text = String::new();
///     weft::fs::File::open(&path)?.read_to_string(&mut text)?;
///     Ok(text)
/// })?;
/// assert_eq!(text, "woven");
/// # weft::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct File {
    inner: std::fs::File,
    /// Whether `preadv2(RWF_NOWAIT)` may work for this file; cleared the first time the file
    /// system (or kernel, or sandbox) says it does not, after which reads go straight to the
    /// pool.
    read_nowait: AtomicBool,
    /// The same for `pwritev2(RWF_NOWAIT)` (ext4 has no non-blocking buffered writes).
    write_nowait: AtomicBool,
    /// Whether the file is a regular file: `KIND_UNKNOWN` until a short read asks.
    kind: AtomicU8,
}

const KIND_UNKNOWN: u8 = 0;
const KIND_REGULAR: u8 = 1;
const KIND_OTHER: u8 = 2;

/// Whether this call runs on a green thread that may hand work off (not a plain thread, and
/// not unwinding, which must not switch).
fn green() -> bool {
    !context::current_task().is_null() && !std::thread::panicking()
}

/// Counts a read served from the page cache on the worker (for `stats().fs_fast_path`).
fn count_fast_path() {
    if let Some(local) = context::local() {
        worker::bump(&local.shared.counters.fs_fast_path);
    }
}

impl File {
    /// Opens a file for reading, as [`std::fs::File::open`].
    pub fn open<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new().read(true).open(path)
    }

    /// Opens a file for writing, creating or truncating it, as [`std::fs::File::create`].
    pub fn create<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    /// Creates a file that must not exist yet, as [`std::fs::File::create_new`].
    pub fn create_new<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
    }

    /// A blank [`OpenOptions`], as [`std::fs::File::options`].
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Flushes data and metadata to the disk (`fsync`), on the blocking pool.
    pub fn sync_all(&self) -> io::Result<()> {
        offload(|| self.inner.sync_all())
    }

    /// Flushes data to the disk (`fdatasync`), on the blocking pool.
    pub fn sync_data(&self) -> io::Result<()> {
        offload(|| self.inner.sync_data())
    }

    /// Truncates or extends the file, as [`std::fs::File::set_len`], on the blocking pool.
    pub fn set_len(&self, size: u64) -> io::Result<()> {
        offload(|| self.inner.set_len(size))
    }

    /// The file's metadata, as [`std::fs::File::metadata`], on the blocking pool.
    pub fn metadata(&self) -> io::Result<Metadata> {
        offload(|| self.inner.metadata())
    }

    /// Changes the file's permissions, as [`std::fs::File::set_permissions`].
    pub fn set_permissions(&self, perm: Permissions) -> io::Result<()> {
        offload(|| self.inner.set_permissions(perm))
    }

    /// Takes an exclusive advisory lock on the whole file (`flock`), as
    /// [`std::fs::File::lock`]; waits for another holder on the blocking pool, so a green
    /// thread parks. The wait is not cut short by a cancel (as std's is not).
    pub fn lock(&self) -> io::Result<()> {
        offload(|| self.inner.lock())
    }

    /// Takes a shared advisory lock, as [`std::fs::File::lock_shared`], waiting on the
    /// blocking pool.
    pub fn lock_shared(&self) -> io::Result<()> {
        offload(|| self.inner.lock_shared())
    }

    /// Takes an exclusive lock if no one holds a conflicting one; never waits.
    pub fn try_lock(&self) -> Result<(), TryLockError> {
        self.inner.try_lock()
    }

    /// Takes a shared lock if no one holds an exclusive one; never waits.
    pub fn try_lock_shared(&self) -> Result<(), TryLockError> {
        self.inner.try_lock_shared()
    }

    /// Releases this handle's lock (closing the file releases it too).
    pub fn unlock(&self) -> io::Result<()> {
        self.inner.unlock()
    }

    /// Sets the access and modification times, as [`std::fs::File::set_times`], on the
    /// blocking pool.
    pub fn set_times(&self, times: FileTimes) -> io::Result<()> {
        offload(|| self.inner.set_times(times))
    }

    /// Sets the modification time, as [`std::fs::File::set_modified`], on the blocking pool.
    pub fn set_modified(&self, time: std::time::SystemTime) -> io::Result<()> {
        offload(|| self.inner.set_modified(time))
    }

    /// A new handle to the same open file (`dup`, which never waits for the disk).
    pub fn try_clone(&self) -> io::Result<File> {
        self.inner.try_clone().map(File::from)
    }

    /// The std file, for APIs that want one. Its calls block the thread that makes them.
    pub fn into_std(self) -> std::fs::File {
        self.inner
    }

    /// Reads at `offset` (-1: at the file position), page cache first.
    fn read_impl(&self, buf: &mut [u8], offset: i64) -> io::Result<usize> {
        // A read served from the page cache never switches: the budget lets the worker's
        // other green threads run during a long run of them (see `runtime::coop`).
        crate::runtime::coop::spend();
        if !green() || buf.is_empty() {
            return self.read_std(buf, offset);
        }
        // A short read of a regular file is completed: the page cache may hold only some of
        // the pages (a 4 KiB read at an unaligned offset often gets one page of two), while
        // std's read of a regular file is short only at its end. Each step asks the page cache first, so
        // the end of the file costs one more syscall, not a wait. The first bytes are the
        // caller's already, so a cancel or deadline that comes during a later step waits for
        // it (as it waits for an offloaded read) and takes effect at the next blocking point.
        let mut n = 0;
        loop {
            let at = if offset == -1 { -1 } else { offset + n as i64 };
            let rest = &mut buf[n..];
            let step = match self.read_cached(rest, at) {
                Ok(Some(got)) => Ok(got),
                Ok(None) if n == 0 => self.read_slow(rest, at, OnInterrupt::Unwind),
                Ok(None) => self.read_slow(rest, at, OnInterrupt::Ignore),
                Err(e) => Err(e),
            };
            match step {
                Ok(got) => {
                    n += got;
                    if got == 0 || n == buf.len() || !self.is_regular() {
                        return Ok(n);
                    }
                }
                Err(e) if n == 0 => return Err(e),
                // Bytes are in hand: return them; the next call meets the error again.
                Err(_) => return Ok(n),
            }
        }
    }

    /// The page-cache try (`preadv2` with `RWF_NOWAIT`): `Ok(None)` if the data is not cached
    /// or the file system cannot say (then it is not asked again for this file).
    fn read_cached(&self, buf: &mut [u8], offset: i64) -> io::Result<Option<usize>> {
        // Relaxed: a hint; a stale `true` costs one refused syscall.
        if !self.read_nowait.load(Relaxed) {
            return Ok(None);
        }
        match read_nowait(self.inner.as_raw_fd(), buf, offset) {
            Ok(got) => {
                count_fast_path();
                Ok(Some(got))
            }
            Err(Ok(NoWait::WouldBlock)) => Ok(None),
            Err(Ok(NoWait::Unsupported)) => {
                self.read_nowait.store(false, Relaxed);
                Ok(None)
            }
            Err(Err(e)) => Err(e),
        }
    }

    /// A read that may wait for the disk: on the worker's ring, which reads the pages in and
    /// completes on this worker, where the pool would cost two cross-thread wakes (see
    /// `reactor::uring::read_file`); on the pool without a ring or if the kernel would not
    /// wait for this file. `Ignore` finishes the read whatever interrupt comes.
    fn read_slow(&self, buf: &mut [u8], offset: i64, on_interrupt: OnInterrupt) -> io::Result<usize> {
        if let Some(ring) = uring::current() {
            let fd = self.inner.as_raw_fd();
            let site = wait_site!(crate::WaitReason::Read { fd });
            if let Some(done) = uring::read_file(ring, fd, buf, offset, site, on_interrupt).transpose() {
                return done;
            }
        }
        match on_interrupt {
            OnInterrupt::Unwind => offload(|| self.read_std(buf, offset)),
            OnInterrupt::Ignore => offload_then(|| self.read_std(buf, offset)),
        }
    }

    /// Whether this is a regular file (whose reads std returns whole), asked once.
    fn is_regular(&self) -> bool {
        // Relaxed: a cached answer that every thread computes the same.
        match self.kind.load(Relaxed) {
            KIND_REGULAR => true,
            KIND_OTHER => false,
            _ => {
                let regular = self.inner.metadata().is_ok_and(|m| m.is_file());
                self.kind
                    .store(if regular { KIND_REGULAR } else { KIND_OTHER }, Relaxed);
                regular
            }
        }
    }

    fn read_std(&self, buf: &mut [u8], offset: i64) -> io::Result<usize> {
        match offset {
            -1 => (&self.inner).read(buf),
            at => std::os::unix::fs::FileExt::read_at(&self.inner, buf, at as u64),
        }
    }

    /// Writes at `offset` (-1: at the file position), without waiting where the file system
    /// allows it, else on the pool.
    fn write_impl(&self, buf: &[u8], offset: i64) -> io::Result<usize> {
        crate::runtime::coop::spend();
        if !green() || buf.is_empty() {
            return self.write_std(buf, offset);
        }
        // Relaxed: a hint; a stale `true` costs one refused syscall.
        if self.write_nowait.load(Relaxed) {
            match write_nowait(self.inner.as_raw_fd(), buf, offset) {
                Ok(n) => return Ok(n),
                Err(Ok(NoWait::WouldBlock)) => {}
                Err(Ok(NoWait::Unsupported)) => self.write_nowait.store(false, Relaxed),
                Err(Err(e)) => return Err(e),
            }
        }
        // Refused: the worker's ring runs it (see `reactor::uring::write_file` for why not
        // the pool).
        if let Some(ring) = uring::current() {
            let fd = self.inner.as_raw_fd();
            let site = wait_site!(crate::WaitReason::Write { fd });
            if let Some(done) = uring::write_file(ring, fd, buf, offset, site).transpose() {
                return done;
            }
        }
        offload(|| self.write_std(buf, offset))
    }

    fn write_std(&self, buf: &[u8], offset: i64) -> io::Result<usize> {
        match offset {
            -1 => (&self.inner).write(buf),
            at => std::os::unix::fs::FileExt::write_at(&self.inner, buf, at as u64),
        }
    }
}

/// A file offset as `preadv2` takes it, or `InvalidInput` past `i64::MAX` (as std's
/// `pread` reports it).
fn offset(at: u64) -> io::Result<i64> {
    i64::try_from(at).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "weft: file offset above i64::MAX",
        )
    })
}

impl Read for &File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_impl(buf, -1)
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_impl(buf, -1)
    }
}

impl Write for &File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_impl(buf, -1)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_impl(buf, -1)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for &File {
    /// `lseek` only moves the file position; it does not wait for the disk.
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        (&self.inner).seek(pos)
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        (&self.inner).seek(pos)
    }
}

impl std::os::unix::fs::FileExt for File {
    fn read_at(&self, buf: &mut [u8], offset_bytes: u64) -> io::Result<usize> {
        self.read_impl(buf, offset(offset_bytes)?)
    }

    fn write_at(&self, buf: &[u8], offset_bytes: u64) -> io::Result<usize> {
        self.write_impl(buf, offset(offset_bytes)?)
    }
}

impl From<std::fs::File> for File {
    fn from(inner: std::fs::File) -> File {
        File {
            inner,
            read_nowait: AtomicBool::new(true),
            write_nowait: AtomicBool::new(true),
            kind: AtomicU8::new(KIND_UNKNOWN),
        }
    }
}

impl From<File> for std::fs::File {
    fn from(file: File) -> std::fs::File {
        file.inner
    }
}

impl From<OwnedFd> for File {
    fn from(fd: OwnedFd) -> File {
        File::from(std::fs::File::from(fd))
    }
}

impl From<File> for OwnedFd {
    fn from(file: File) -> OwnedFd {
        file.inner.into()
    }
}

impl From<File> for std::process::Stdio {
    /// The file as a child's stdin, stdout or stderr (as std's `From<fs::File>`).
    fn from(file: File) -> std::process::Stdio {
        std::process::Stdio::from(file.inner)
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl IntoRawFd for File {
    fn into_raw_fd(self) -> RawFd {
        self.inner.into_raw_fd()
    }
}

impl FromRawFd for File {
    /// # Safety
    /// `fd` must be an open file descriptor that nothing else owns.
    unsafe fn from_raw_fd(fd: RawFd) -> File {
        // SAFETY: forwarded from the caller.
        File::from(unsafe { std::fs::File::from_raw_fd(fd) })
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File").field("inner", &self.inner).finish()
    }
}

/// Options for opening a file, as [`std::fs::OpenOptions`]; [`open`](OpenOptions::open)
/// runs on the blocking pool. `mode` and `custom_flags` come with
/// [`OpenOptionsExt`](std::os::unix::fs::OpenOptionsExt).
///
/// ```
/// use std::io::Write;
///
/// let path = std::env::temp_dir().join(format!("weft-doc-options-{}", std::process::id()));
/// weft::run(|| -> std::io::Result<()> {
///     let mut log = weft::fs::OpenOptions::new().create(true).append(true).open(&path)?;
///     log.write_all(b"one line\n")?;
///     Ok(())
/// })?;
/// # weft::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions(std::fs::OpenOptions);

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// All options off, as [`std::fs::OpenOptions::new`].
    pub fn new() -> OpenOptions {
        OpenOptions(std::fs::OpenOptions::new())
    }

    /// Open for reading.
    pub fn read(&mut self, read: bool) -> &mut OpenOptions {
        self.0.read(read);
        self
    }

    /// Open for writing.
    pub fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.0.write(write);
        self
    }

    /// Append to the end.
    pub fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.0.append(append);
        self
    }

    /// Truncate to 0 bytes.
    pub fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.0.truncate(truncate);
        self
    }

    /// Create the file if it does not exist.
    pub fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.0.create(create);
        self
    }

    /// Create the file, failing if it exists.
    pub fn create_new(&mut self, create_new: bool) -> &mut OpenOptions {
        self.0.create_new(create_new);
        self
    }

    /// Opens `path` with these options, on the blocking pool (an `open` can wait for the
    /// disk, and a FIFO's for its other end).
    pub fn open<P: AsRef<Path>>(&self, path: P) -> io::Result<File> {
        let path = path.as_ref();
        offload(|| self.0.open(path)).map(File::from)
    }
}

impl std::os::unix::fs::OpenOptionsExt for OpenOptions {
    fn mode(&mut self, mode: u32) -> &mut OpenOptions {
        self.0.mode(mode);
        self
    }

    fn custom_flags(&mut self, flags: i32) -> &mut OpenOptions {
        self.0.custom_flags(flags);
        self
    }
}
