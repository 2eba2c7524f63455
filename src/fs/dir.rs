//! [`read_dir`]: directory listings fetched from the blocking pool in batches.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::fs::{FileType, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use crate::blocking::offload;

/// Entries fetched per trip to the blocking pool: one hand-off (tens of µs) serves this
/// many `next()` calls.
const BATCH: usize = 128;

/// An iterator over a directory's entries, as [`std::fs::ReadDir`]. Entries arrive from the
/// blocking pool 128 at a time, each with its file type already read, so
/// iterating costs one hand-off per batch, not one per entry.
pub struct ReadDir {
    inner: Option<std::fs::ReadDir>,
    batch: VecDeque<io::Result<DirEntry>>,
}

/// Lists the entries of `path`, as [`std::fs::read_dir`].
///
/// ```
/// let dir = std::env::temp_dir().join(format!("weft-doc-dir-{}", std::process::id()));
/// let names = weft::run(|| -> std::io::Result<Vec<String>> {
///     weft::fs::create_dir_all(dir.join("sub"))?;
///     weft::fs::write(dir.join("a.txt"), "a")?;
///     let mut names: Vec<String> = weft::fs::read_dir(&dir)?
///         .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
///         .collect::<Result<_, _>>()?;
///     names.sort();
///     Ok(names)
/// })?;
/// assert_eq!(names, ["a.txt", "sub"]);
/// # weft::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read_dir<P: AsRef<Path>>(path: P) -> io::Result<ReadDir> {
    let path = path.as_ref();
    let (inner, batch) = offload(|| -> io::Result<_> {
        let mut inner = std::fs::read_dir(path)?;
        let batch = fetch(&mut inner);
        Ok((inner, batch))
    })?;
    let inner = (batch.len() == BATCH).then_some(inner);
    Ok(ReadDir { inner, batch })
}

/// Reads up to [`BATCH`] entries, with their file types (which may need an `lstat`).
fn fetch(inner: &mut std::fs::ReadDir) -> VecDeque<io::Result<DirEntry>> {
    inner
        .by_ref()
        .take(BATCH)
        .map(|entry| {
            entry.map(|inner| DirEntry {
                file_type: inner.file_type().ok(),
                inner,
            })
        })
        .collect()
}

impl Iterator for ReadDir {
    type Item = io::Result<DirEntry>;

    fn next(&mut self) -> Option<io::Result<DirEntry>> {
        if self.batch.is_empty() {
            let mut inner = self.inner.take()?;
            self.batch = offload(|| fetch(&mut inner));
            if self.batch.len() == BATCH {
                self.inner = Some(inner);
            }
        }
        self.batch.pop_front()
    }
}

impl fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadDir")
            .field("buffered", &self.batch.len())
            .field("done", &self.inner.is_none())
            .finish()
    }
}

/// An entry of a [`ReadDir`], as [`std::fs::DirEntry`].
pub struct DirEntry {
    inner: std::fs::DirEntry,
    /// Read on the pool with the batch; `None` if that failed (then asked again).
    file_type: Option<FileType>,
}

impl DirEntry {
    /// The full path: the directory's path joined with [`file_name`](Self::file_name).
    pub fn path(&self) -> PathBuf {
        self.inner.path()
    }

    /// The entry's name within its directory.
    pub fn file_name(&self) -> OsString {
        self.inner.file_name()
    }

    /// The entry's inode number, as [`std::os::unix::fs::DirEntryExt::ino`] (read with the
    /// directory, so it never waits).
    pub fn ino(&self) -> u64 {
        std::os::unix::fs::DirEntryExt::ino(&self.inner)
    }

    /// The entry's metadata (not following symlinks), on the blocking pool.
    pub fn metadata(&self) -> io::Result<Metadata> {
        offload(|| self.inner.metadata())
    }

    /// The entry's file type, read with its batch (no hand-off).
    pub fn file_type(&self) -> io::Result<FileType> {
        match self.file_type {
            Some(file_type) => Ok(file_type),
            None => offload(|| self.inner.file_type()),
        }
    }
}

impl fmt::Debug for DirEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DirEntry").field(&self.path()).finish()
    }
}

/// Creates directories with options, as [`std::fs::DirBuilder`]; `create` runs on the
/// blocking pool.
///
/// ```
/// # weft::run(|| {
/// let dir = std::env::temp_dir().join(format!("weft-dirbuilder-{}", std::process::id()));
/// weft::fs::DirBuilder::new().recursive(true).create(dir.join("a/b")).unwrap();
/// assert!(dir.join("a/b").is_dir());
/// std::fs::remove_dir_all(&dir).unwrap();
/// # });
/// ```
#[derive(Debug)]
pub struct DirBuilder {
    inner: std::fs::DirBuilder,
}

impl DirBuilder {
    /// A builder for one directory, mode 0o777 (less the umask), not recursive.
    pub fn new() -> DirBuilder {
        DirBuilder {
            inner: std::fs::DirBuilder::new(),
        }
    }

    /// Whether missing parents are created too (and an existing directory is not an error).
    pub fn recursive(&mut self, recursive: bool) -> &mut DirBuilder {
        self.inner.recursive(recursive);
        self
    }

    /// Sets the mode of the directories created (less the umask), as
    /// [`std::os::unix::fs::DirBuilderExt::mode`].
    pub fn mode(&mut self, mode: u32) -> &mut DirBuilder {
        std::os::unix::fs::DirBuilderExt::mode(&mut self.inner, mode);
        self
    }

    /// Creates `path` with these options.
    pub fn create<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        let path = path.as_ref();
        offload(|| self.inner.create(path))
    }
}

impl Default for DirBuilder {
    fn default() -> DirBuilder {
        DirBuilder::new()
    }
}
