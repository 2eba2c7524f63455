//! `weft::fs` mirrors `std::fs` and never stalls the worker: cached reads stay on the
//! worker, everything that may wait goes to the blocking pool.

mod common;

use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::Duration;

use common::Ticker;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-fs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_fifo_read_waiting_for_its_writer_does_not_stall_the_worker() {
    common::workers(1);
    let dir = temp_dir("fifo");
    let fifo = dir.join("pipe");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY (test): mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let writer = std::thread::spawn({
        let fifo = fifo.clone();
        move || {
            std::thread::sleep(Duration::from_millis(200));
            std::fs::write(fifo, b"through the fifo").unwrap();
        }
    });
    let (text, during) = common::watchdog(60, move || {
        weft::run(move || {
            let ticker = Ticker::start();
            ticker.during(|| {
                // The open waits for the writer, then the read for its data: both on the
                // pool, while this worker keeps ticking.
                let mut text = String::new();
                weft::fs::File::open(&fifo)
                    .unwrap()
                    .read_to_string(&mut text)
                    .unwrap();
                text
            })
        })
    });
    writer.join().unwrap();
    assert_eq!(text, "through the fifo");
    assert!(during >= 20, "the ticker ticked {during} times in ~200 ms");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn cached_reads_take_the_fast_path() {
    common::workers(1);
    let dir = temp_dir("fast");
    let path = dir.join("data");
    let data: Vec<u8> = (0..64 * 1024u32).map(|i| i as u8).collect();
    std::fs::write(&path, &data).unwrap();
    // Make sure the pages are cached.
    assert_eq!(std::fs::read(&path).unwrap(), data);
    let before = weft::stats().fs_fast_path;
    let got = common::watchdog(60, move || {
        weft::run(move || {
            let file = weft::fs::File::open(&path).unwrap();
            let mut got = vec![0u8; data.len()];
            let mut at = 0;
            while at < got.len() {
                let n = file.read_at(&mut got[at..at + 4096], at as u64).unwrap();
                assert!(n > 0);
                at += n;
            }
            assert_eq!(got, data);
            // Sequential reads through `Read`, with the file position.
            let mut file = file;
            file.seek(SeekFrom::Start(4096)).unwrap();
            let mut four = [0u8; 4];
            file.read_exact(&mut four).unwrap();
            assert_eq!(four, data[4096..4100]);
            got.len()
        })
    });
    assert_eq!(got, 64 * 1024);
    let served = weft::stats().fs_fast_path - before;
    assert!(served >= 16, "only {served} reads took the fast path");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Runs the same operation through weft (in a green thread) and std, and checks both give
/// the same outcome: the same value, or errors of the same kind.
fn same<T: PartialEq + std::fmt::Debug>(
    what: &str,
    ours: std::io::Result<T>,
    theirs: std::io::Result<T>,
) {
    match (&ours, &theirs) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{what}"),
        (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind(), "{what}: {a} vs {b}"),
        _ => panic!("{what}: weft {ours:?}, std {theirs:?}"),
    }
}

#[test]
fn every_function_matches_std() {
    common::workers(1);
    let dir = temp_dir("mirror");
    common::watchdog(60, move || {
        weft::run(move || {
            use weft::fs;
            let a = dir.join("a.txt");
            let missing = dir.join("missing");
            // write, read, read_to_string.
            fs::write(&a, "alpha").unwrap();
            same("read", fs::read(&a), std::fs::read(&a));
            same(
                "read_to_string",
                fs::read_to_string(&a),
                std::fs::read_to_string(&a),
            );
            same("read missing", fs::read(&missing), std::fs::read(&missing));
            // metadata, symlink_metadata, exists.
            same(
                "metadata len",
                fs::metadata(&a).map(|m| m.len()),
                std::fs::metadata(&a).map(|m| m.len()),
            );
            same(
                "metadata missing",
                fs::metadata(&missing).map(|m| m.len()),
                std::fs::metadata(&missing).map(|m| m.len()),
            );
            let link = dir.join("link");
            std::os::unix::fs::symlink(&a, &link).unwrap();
            same(
                "symlink_metadata",
                fs::symlink_metadata(&link).map(|m| m.file_type().is_symlink()),
                std::fs::symlink_metadata(&link).map(|m| m.file_type().is_symlink()),
            );
            same("read_link", fs::read_link(&link), std::fs::read_link(&link));
            same(
                "canonicalize",
                fs::canonicalize(&link),
                std::fs::canonicalize(&link),
            );
            assert!(fs::exists(&a).unwrap());
            assert!(!fs::exists(&missing).unwrap());
            // copy, rename, hard_link.
            let b = dir.join("b.txt");
            same("copy", fs::copy(&a, &b), Ok(5));
            same(
                "copy missing",
                fs::copy(&missing, &b),
                std::fs::copy(&missing, &b),
            );
            let c = dir.join("c.txt");
            fs::rename(&b, &c).unwrap();
            assert!(!b.exists() && c.exists());
            same(
                "rename missing",
                fs::rename(&missing, &c),
                std::fs::rename(&missing, &c),
            );
            let d = dir.join("d.txt");
            fs::hard_link(&c, &d).unwrap();
            same(
                "hard_link exists",
                fs::hard_link(&c, &d),
                std::fs::hard_link(&c, &d),
            );
            // permissions.
            let mut perm = fs::metadata(&c).unwrap().permissions();
            perm.set_readonly(true);
            fs::set_permissions(&c, perm).unwrap();
            assert!(std::fs::metadata(&c).unwrap().permissions().readonly());
            // Directories.
            let sub = dir.join("sub/deeper");
            fs::create_dir_all(&sub).unwrap();
            same(
                "create_dir exists",
                fs::create_dir(&sub),
                std::fs::create_dir(&sub),
            );
            same(
                "remove_dir not empty",
                fs::remove_dir(dir.join("sub")),
                std::fs::remove_dir(dir.join("sub")),
            );
            fs::remove_dir(&sub).unwrap();
            fs::create_dir(&sub).unwrap();
            // read_dir, with more entries than one batch.
            let many = dir.join("many");
            fs::create_dir(&many).unwrap();
            for i in 0..300 {
                std::fs::write(many.join(format!("{i:03}")), "").unwrap();
            }
            let mut names: Vec<String> = fs::read_dir(&many)
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    assert!(e.file_type().unwrap().is_file());
                    assert_eq!(e.metadata().unwrap().len(), 0);
                    assert_eq!(e.path(), many.join(e.file_name()));
                    e.file_name().into_string().unwrap()
                })
                .collect();
            names.sort();
            let expected: Vec<String> = (0..300).map(|i| format!("{i:03}")).collect();
            assert_eq!(names, expected);
            same(
                "read_dir missing",
                fs::read_dir(&missing).map(|_| ()),
                std::fs::read_dir(&missing).map(|_| ()),
            );
            // Removal.
            fs::remove_file(&d).unwrap();
            same(
                "remove_file missing",
                fs::remove_file(&d),
                std::fs::remove_file(&d),
            );
            fs::remove_dir_all(dir.join("sub")).unwrap();
            assert!(!dir.join("sub").exists());
            // File: open, create, create_new, options, write/read/seek, FileExt, sync,
            // set_len, metadata, try_clone, conversions.
            let f_path = dir.join("f.bin");
            let mut f = fs::File::create(&f_path).unwrap();
            f.write_all(b"0123456789").unwrap();
            f.sync_all().unwrap();
            f.sync_data().unwrap();
            same(
                "create_new exists",
                fs::File::create_new(&f_path).map(|_| ()),
                std::fs::File::create_new(&f_path).map(|_| ()),
            );
            same(
                "open missing",
                fs::File::open(&missing).map(|_| ()),
                std::fs::File::open(&missing).map(|_| ()),
            );
            f.set_len(4).unwrap();
            assert_eq!(f.metadata().unwrap().len(), 4);
            f.write_at(b"xy", 1).unwrap();
            let mut back = String::new();
            let mut reader = fs::File::open(&f_path).unwrap();
            reader.read_to_string(&mut back).unwrap();
            assert_eq!(back, "0xy3");
            let appender = fs::OpenOptions::new().append(true).open(&f_path).unwrap();
            (&appender).write_all(b"!").unwrap();
            assert_eq!(std::fs::read(&f_path).unwrap(), b"0xy3!");
            let std_file: std::fs::File = reader.try_clone().unwrap().into_std();
            let again = fs::File::from(std_file);
            let mut buf = [0u8; 5];
            again.read_at(&mut buf, 0).unwrap();
            assert_eq!(&buf, b"0xy3!");
            // Reading from a write-only file: the same error kind as std.
            let write_only = fs::OpenOptions::new().write(true).open(&f_path).unwrap();
            let std_write_only = std::fs::OpenOptions::new()
                .write(true)
                .open(&f_path)
                .unwrap();
            same(
                "read write-only",
                (&write_only).read(&mut buf),
                (&std_write_only).read(&mut buf),
            );
            fs::remove_dir_all(&dir).unwrap();
            same("exists gone", fs::exists(&dir), Ok(false));
            let err = fs::read(&a).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound);
        })
    });
}

/// A read that the page cache can serve only in part (one page of the two it spans is
/// cached) returns the whole buffer, as std's read of a regular file does: the page-cache
/// try gives the first page, the rest is read from the disk (on the ring, or on the pool
/// with `WEFT_IO=epoll`).
#[test]
fn reads_of_a_partly_cached_file_are_whole() {
    use std::os::fd::AsRawFd;
    common::workers(1);
    let dir = temp_dir("partly");
    let path = dir.join("data");
    let data: Vec<u8> = (0..256 * 4096u32).map(|i| (i / 7) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let std_file = std::fs::File::open(&path).unwrap();
    std_file.sync_all().unwrap();
    // SAFETY (test): an advice call on an open fd.
    let rc = unsafe { libc::posix_fadvise(std_file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0);
    let (short, fast) = common::watchdog(60, move || {
        weft::run(move || {
            let file = weft::fs::File::open(&path).unwrap();
            // Cache every other page (a plain thread's read, without readahead, which would
            // cache the pages between).
            // SAFETY (test): an advice call on an open fd.
            let rc =
                unsafe { libc::posix_fadvise(std_file.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM) };
            assert_eq!(rc, 0);
            let mut page = [0u8; 4096];
            for p in (0..256).step_by(2) {
                assert_eq!(std_file.read_at(&mut page, p * 4096).unwrap(), 4096);
            }
            let before = weft::stats().fs_fast_path;
            let mut short = 0;
            let mut buf = [0u8; 4096];
            // Each read starts in a cached page and ends in an uncached one.
            for p in (0..254u64).step_by(2) {
                let at = p * 4096 + 1000 + p;
                let n = file.read_at(&mut buf, at).unwrap();
                if n < buf.len() {
                    short += 1;
                }
                assert_eq!(&buf[..n], &data[at as usize..at as usize + n]);
            }
            // The same through `Read` and the file position.
            let mut file = file;
            file.seek(SeekFrom::Start(8 * 4096 + 10)).unwrap();
            let mut whole = vec![0u8; 8192];
            let n = file.read(&mut whole).unwrap();
            assert_eq!(n, 8192);
            assert_eq!(&whole[..], &data[8 * 4096 + 10..8 * 4096 + 10 + 8192]);
            assert_eq!(file.stream_position().unwrap(), 8 * 4096 + 10 + 8192);
            (short, weft::stats().fs_fast_path - before)
        })
    });
    assert_eq!(short, 0, "{short} reads of 127 came back short");
    // The page-cache try served the first part of most reads (readahead may have cached
    // more than the test did, so some are whole from the cache).
    assert!(fast > 0, "no read was served from the page cache");
    std::fs::remove_dir_all(dir).unwrap();
}
