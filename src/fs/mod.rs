//! The file system with [`std::fs`]'s API, and a green thread that uses it never blocks its
//! worker.
//!
//! epoll cannot wait for regular files (they are always "ready"). A read or write of an open
//! [`File`] that must wait for the disk therefore goes to the worker's io_uring ring (the
//! default backend; see `WEFT_IO` in the README): the kernel does the IO and completes it on
//! the worker, and the green thread parks meanwhile. Without a ring (`WEFT_IO=epoll`, a
//! kernel or sandbox without io_uring, a plain thread), and for every call that has no ring
//! operation here (`open`, metadata, directories, syncing), weft does what Go does: the call
//! runs on the blocking pool while the green thread parks (see
//! [`offload`](crate::offload())). Every function and method here has std's signature,
//! semantics and `io::ErrorKind`s; on a plain thread each one simply is the std call.
//!
//! # The page-cache fast path
//!
//! A hand-off costs two cross-thread wakes, tens of µs here, while reading a page that is
//! already cached costs well under one. So a read from a green thread ([`File`]'s `read`,
//! `read_at`) first asks the kernel with `preadv2(…, RWF_NOWAIT)` on the worker itself: data
//! in the page cache comes back at once (one syscall, no hand-off, counted in
//! `stats().fs_fast_path`); only `EAGAIN` (the data is not cached) or `EOPNOTSUPP` (the file
//! system cannot say) sends the read on, to the ring or the pool. Java learned the same
//! lesson (JDK-8329593: short buffered file IO is not worth a hand-off). A read the cache
//! can serve only in part is completed the same way: std's read of a regular file is short
//! only at its end, and so is weft's.
//!
//! The ring against the pool, for a read that waits (`benches/fs.rs`, 2026-12-03): a cold
//! 4 KiB read took 32.8 µs against 39.1 µs with one reader, and 8.3 against 20.3 µs each
//! with 16 readers (std on a plain thread: 28 µs). A 4 KiB append took 4.9 against 33 µs
//! each with 16 writers, but 11.3 against 6–7 µs with a single writer, whose pool thread is
//! still spinning when its next write comes; the ring is kept for its behaviour under load.
//!
//! Writes try `pwritev2(…, RWF_NOWAIT)` the same way, but on this project's ext4 test
//! machines buffered writes that allocate blocks are refused, so those go on to the ring (or
//! the pool). File systems that can (XFS, btrfs on recent kernels) keep the fast path.
//!
//! Opening, metadata, directories, syncing, renaming and removing always go to the pool: a
//! path lookup can wait for the disk, and an `open` of a FIFO waits for its other end.
//! [`read`], [`read_to_string`] and [`write()`] do their whole job in one hand-off.
//!
//! # What still blocks a worker
//!
//! `std::fs` itself, called from a green thread, blocks its worker as it always did. Use
//! this module, or wrap the call in [`offload`](crate::offload()).

mod dir;
mod file;

pub use dir::{read_dir, DirBuilder, DirEntry, ReadDir};
pub use file::{File, OpenOptions};
pub use std::fs::{FileTimes, FileType, Metadata, Permissions, TryLockError};

use std::io;
use std::path::{Path, PathBuf};

use crate::blocking::offload;

/// Defines `pub fn $name(path) -> io::Result<$ret>` as std's function of that name run on the
/// blocking pool.
macro_rules! on_the_pool {
    ($( $(#[$doc:meta])* fn $name:ident(path) -> $ret:ty; )*) => {$(
        $(#[$doc])*
        pub fn $name<P: AsRef<Path>>(path: P) -> io::Result<$ret> {
            let path = path.as_ref();
            offload(|| std::fs::$name(path))
        }
    )*};
}

on_the_pool! {
    /// Reads a whole file, as [`std::fs::read`], in one hand-off.
    fn read(path) -> Vec<u8>;
    /// Reads a whole UTF-8 file, as [`std::fs::read_to_string`], in one hand-off.
    fn read_to_string(path) -> String;
    /// A path's metadata, following symlinks, as [`std::fs::metadata`].
    fn metadata(path) -> Metadata;
    /// A path's metadata, not following symlinks, as [`std::fs::symlink_metadata`].
    fn symlink_metadata(path) -> Metadata;
    /// The absolute path with every symlink resolved, as [`std::fs::canonicalize`].
    fn canonicalize(path) -> PathBuf;
    /// Removes a file, as [`std::fs::remove_file`].
    fn remove_file(path) -> ();
    /// Removes an empty directory, as [`std::fs::remove_dir`].
    fn remove_dir(path) -> ();
    /// Removes a directory and everything in it, as [`std::fs::remove_dir_all`].
    fn remove_dir_all(path) -> ();
    /// Creates a directory, as [`std::fs::create_dir`].
    fn create_dir(path) -> ();
    /// Creates a directory and its missing parents, as [`std::fs::create_dir_all`].
    fn create_dir_all(path) -> ();
    /// Where a symlink points, as [`std::fs::read_link`].
    fn read_link(path) -> PathBuf;
}

/// Writes `contents` as the whole of a file, creating or truncating it, as
/// [`std::fs::write`], in one hand-off.
///
/// ```
/// let path = std::env::temp_dir().join(format!("weft-doc-write-{}", std::process::id()));
/// let back = weft::run(|| -> std::io::Result<String> {
///     weft::fs::write(&path, "round trip")?;
///     weft::fs::read_to_string(&path)
/// })?;
/// assert_eq!(back, "round trip");
/// # weft::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write<P: AsRef<Path>, C: AsRef<[u8]>>(path: P, contents: C) -> io::Result<()> {
    let (path, contents) = (path.as_ref(), contents.as_ref());
    offload(|| std::fs::write(path, contents))
}

/// Copies a file's contents and permissions, as [`std::fs::copy`]; returns the bytes copied.
pub fn copy<P: AsRef<Path>, Q: AsRef<Path>>(from: P, to: Q) -> io::Result<u64> {
    let (from, to) = (from.as_ref(), to.as_ref());
    offload(|| std::fs::copy(from, to))
}

/// Renames a file or directory, replacing `to` if it exists, as [`std::fs::rename`].
pub fn rename<P: AsRef<Path>, Q: AsRef<Path>>(from: P, to: Q) -> io::Result<()> {
    let (from, to) = (from.as_ref(), to.as_ref());
    offload(|| std::fs::rename(from, to))
}

/// Creates a symbolic link `link` pointing to `original`, as
/// [`std::os::unix::fs::symlink`], on the blocking pool.
pub fn symlink<P: AsRef<Path>, Q: AsRef<Path>>(original: P, link: Q) -> io::Result<()> {
    let (original, link) = (original.as_ref(), link.as_ref());
    offload(|| std::os::unix::fs::symlink(original, link))
}

/// Makes `link` a new name for `original`, as [`std::fs::hard_link`].
pub fn hard_link<P: AsRef<Path>, Q: AsRef<Path>>(original: P, link: Q) -> io::Result<()> {
    let (original, link) = (original.as_ref(), link.as_ref());
    offload(|| std::fs::hard_link(original, link))
}

/// Changes a path's permissions, as [`std::fs::set_permissions`].
pub fn set_permissions<P: AsRef<Path>>(path: P, perm: Permissions) -> io::Result<()> {
    let path = path.as_ref();
    offload(|| std::fs::set_permissions(path, perm))
}

/// Whether `path` exists: `Ok(false)` only when it certainly does not (a broken symlink
/// counts as missing), an error when that cannot be told (no permission), as
/// [`std::fs::exists`].
pub fn exists<P: AsRef<Path>>(path: P) -> io::Result<bool> {
    let path = path.as_ref();
    offload(|| path.try_exists())
}
