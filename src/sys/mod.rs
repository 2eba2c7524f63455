//! The operating-system boundary: every raw syscall weft makes goes through this module.
//!
//! Logic elsewhere in the crate calls the small safe-ish wrappers here and never names a
//! `libc` function directly, so porting weft means porting this file. Each wrapper maps the
//! C convention (`-1` plus `errno`) to `io::Result` through [`syscall!`], which retries
//! `EINTR` only where the caller asks for it.

use std::io;
use std::sync::OnceLock;

/// Calls a libc function and maps a `-1` result to `io::Error::last_os_error()`.
///
/// `syscall!(retry_eintr f(args))` repeats the call while it fails with `EINTR`; use it only
/// for calls that are safe to repeat verbatim.
macro_rules! syscall {
    // Retrying `EINTR` around either kind of call below; the arguments are evaluated anew
    // for each try.
    (retry_eintr $($call:tt)*) => {{
        loop {
            match $crate::sys::syscall!($($call)*) {
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                res => break res,
            }
        }
    }};
    // A call through `sys::real` (the calls the `hooks` feature interposes).
    (real::$fn:ident ( $($arg:expr),* $(,)? )) => {{
        // SAFETY: the caller of the macro upholds the function's contract.
        let res = unsafe { $crate::sys::real::$fn($($arg),*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        // SAFETY: the caller of the macro upholds the function's contract; the macro only adds
        // error mapping.
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}
#[allow(unused_imports)] // submodules see the macro textually; others import it
pub(crate) use syscall;

pub(crate) mod fdio;

/// A system call made straight to the kernel with the `syscall` instruction (`svc` on
/// aarch64), never through libc's `syscall` function, which the `hooks` feature replaces
/// (its futex waits may park a green thread: weft's own calls, its park word's futex above
/// all, must not). Returns libc's convention: `-1` with `errno` set, or the result.
///
/// # Safety
///
/// The arguments must satisfy the kernel's contract for `nr` (valid pointers of the sizes
/// it reads and writes); unused arguments are ignored.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) unsafe fn raw_syscall(nr: libc::c_long, args: [libc::c_long; 6]) -> libc::c_long {
    let ret: libc::c_long;
    // SAFETY: the Linux system call ABI of each architecture: the number and six arguments
    // in the registers it names, the result in the first; on x86_64 the instruction
    // clobbers rcx and r11, on aarch64 nothing else. Memory effects are the kernel's, under
    // the caller's contract.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") args[0],
            in("rsi") args[1],
            in("rdx") args[2],
            in("r10") args[3],
            in("r8") args[4],
            in("r9") args[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
        #[cfg(target_arch = "aarch64")]
        std::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") args[0] => ret,
            in("x1") args[1],
            in("x2") args[2],
            in("x3") args[3],
            in("x4") args[4],
            in("x5") args[5],
            options(nostack),
        );
    }
    // The kernel returns -errno for errors, in -4095..=-1.
    if (-4095..0).contains(&ret) {
        // SAFETY: errno is this thread's own.
        unsafe { *libc::__errno_location() = -ret as libc::c_int };
        -1
    } else {
        ret
    }
}

/// Other architectures have no `hooks` `syscall` to avoid: libc's is the raw call.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(crate) unsafe fn raw_syscall(nr: libc::c_long, args: [libc::c_long; 6]) -> libc::c_long {
    // SAFETY: the caller's contract.
    unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]) }
}

/// The calls the `hooks` feature interposes (`read`, `write`, `readv`, `writev`, `poll`,
/// `accept4`), made so that weft's own never enter the hooks: with the feature they are raw
/// `syscall`s (same arguments, same `-1`/`errno` convention), without it libc's functions.
/// Used through [`syscall!`] like any libc function: `syscall!(real::read(fd, buf, n))`.
pub(crate) mod real {
    #[cfg(not(feature = "hooks"))]
    pub(crate) use libc::{accept4, poll, read, readv, write, writev};

    #[cfg(feature = "hooks")]
    pub(crate) use self::raw::*;

    #[cfg(feature = "hooks")]
    mod raw {
        use libc::{c_int, c_long, c_void, iovec, pollfd, size_t, sockaddr, socklen_t, ssize_t};

        pub(crate) unsafe fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
            // SAFETY: the caller's arguments, as for libc's `read`.
            unsafe { super::super::raw_syscall(libc::SYS_read, [fd as c_long, buf as c_long, n as c_long, 0, 0, 0]) as ssize_t }
        }
        pub(crate) unsafe fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
            // SAFETY: as for libc's `write`.
            unsafe { super::super::raw_syscall(libc::SYS_write, [fd as c_long, buf as c_long, n as c_long, 0, 0, 0]) as ssize_t }
        }
        pub(crate) unsafe fn readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
            // SAFETY: as for libc's `readv`.
            unsafe { super::super::raw_syscall(libc::SYS_readv, [fd as c_long, iov as c_long, n as c_long, 0, 0, 0]) as ssize_t }
        }
        pub(crate) unsafe fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
            // SAFETY: as for libc's `writev`.
            unsafe { super::super::raw_syscall(libc::SYS_writev, [fd as c_long, iov as c_long, n as c_long, 0, 0, 0]) as ssize_t }
        }
        pub(crate) unsafe fn poll(fds: *mut pollfd, n: libc::nfds_t, timeout_ms: c_int) -> c_int {
            let ts;
            let tsp = if timeout_ms < 0 {
                std::ptr::null()
            } else {
                ts = libc::timespec {
                    tv_sec: (timeout_ms / 1000) as libc::time_t,
                    tv_nsec: ((timeout_ms % 1000) as c_long) * 1_000_000,
                };
                &ts as *const libc::timespec
            };
            // SAFETY: as for libc's `poll` (ppoll with no signal mask).
            unsafe { super::super::raw_syscall(libc::SYS_ppoll, [fds as c_long, n as c_long, tsp as c_long, 0, 0, 0]) as c_int }
        }
        pub(crate) unsafe fn accept4(
            fd: c_int,
            addr: *mut sockaddr,
            len: *mut socklen_t,
            flags: c_int,
        ) -> c_int {
            // SAFETY: as for libc's `accept4`.
            unsafe { super::super::raw_syscall(libc::SYS_accept4, [fd as c_long, addr as c_long, len as c_long, flags as c_long, 0, 0]) as c_int }
        }
    }
}
pub(crate) mod file;

/// `madvise` advice that installs guard markers in page table entries (Linux ≥ 6.13).
/// Touching a guarded page raises SIGSEGV, yet the VMA is not split, so a guard costs no VMA.
pub(crate) const MADV_GUARD_INSTALL: libc::c_int = 102;

/// The system page size, read once.
pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if size <= 0 {
            4096
        } else {
            size as usize
        }
    })
}

/// Reserves `len` bytes of private anonymous read/write memory without committing it: pages
/// are backed only when first written (`MAP_NORESERVE`), so a large reservation costs nothing
/// until used. Transparent huge pages are refused for the range, or one touched stack byte
/// could commit 2 MiB.
pub(crate) fn map_reserve(len: usize) -> io::Result<*mut u8> {
    // SAFETY: an anonymous mapping with a null hint touches no existing memory.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // Best effort: a kernel without THP says EINVAL, which changes nothing for us.
    // SAFETY: the range is the mapping created just above.
    unsafe { libc::madvise(addr, len, libc::MADV_NOHUGEPAGE) };
    Ok(addr.cast())
}

/// Installs a guard on `[addr, addr + len)` with `MADV_GUARD_INSTALL`.
///
/// # Safety
/// The range must lie inside a private anonymous mapping owned by the caller and hold no live
/// data: its contents are discarded.
pub(crate) unsafe fn guard_install(addr: *mut u8, len: usize) -> io::Result<()> {
    syscall!(madvise(addr.cast(), len, MADV_GUARD_INSTALL)).map(drop)
}

/// Most ranges [`guard_install_strided`] takes in one call.
pub(crate) const GUARD_BATCH_MAX: usize = 64;

/// [`guard_install`] for `count` (≤ [`GUARD_BATCH_MAX`]) ranges of `len` bytes, `stride`
/// bytes apart from `first`, in one `process_madvise` call (Linux ≥ 6.13 accepts any advice
/// for the caller's own process), through `pidfd`, an fd of this process. The iovecs live on
/// the stack: nothing is allocated. Returns how many ranges, from the front, are guarded
/// (the kernel may stop early); an error means none were.
///
/// # Safety
/// As for [`guard_install`], for every range; `pidfd` must refer to the calling process (a
/// pidfd inherited across `fork` refers to the parent).
pub(crate) unsafe fn guard_install_strided(
    pidfd: std::os::fd::RawFd,
    first: usize,
    stride: usize,
    count: usize,
    len: usize,
) -> io::Result<usize> {
    assert!(count <= GUARD_BATCH_MAX, "too many guard ranges in one call");
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; GUARD_BATCH_MAX];
    for (i, entry) in iov[..count].iter_mut().enumerate() {
        *entry = libc::iovec {
            iov_base: (first + i * stride) as *mut libc::c_void,
            iov_len: len,
        };
    }
    // SAFETY: the first `count` iovecs are filled in; the caller vouches for the ranges.
    let done = unsafe {
        libc::syscall(
            libc::SYS_process_madvise,
            pidfd,
            iov.as_ptr(),
            count,
            MADV_GUARD_INSTALL,
            0,
        )
    };
    if done < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(done as usize / len)
}

/// Makes `[addr, addr + len)` inaccessible with `mprotect(PROT_NONE)`: the fallback guard for
/// kernels without `MADV_GUARD_INSTALL`. It splits the VMA, so each guard costs VMAs.
///
/// # Safety
/// The range must lie inside a mapping owned by the caller and hold no live data.
pub(crate) unsafe fn protect_none(addr: *mut u8, len: usize) -> io::Result<()> {
    syscall!(mprotect(addr.cast(), len, libc::PROT_NONE)).map(drop)
}

/// Gives the pages of `[addr, addr + len)` back to the kernel; the next touch reads zeroes.
///
/// # Safety
/// The range must lie inside a private anonymous mapping owned by the caller and hold no live
/// data.
pub(crate) unsafe fn discard(addr: *mut u8, len: usize) -> io::Result<()> {
    syscall!(madvise(addr.cast(), len, libc::MADV_DONTNEED)).map(drop)
}

/// `vm.max_map_count`, or `None` when procfs cannot tell.
pub(crate) fn max_map_count() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// How many mappings (VMAs) this process has now, or `None` when procfs cannot tell.
///
/// Streams the file through a stack buffer: this runs when the mapping limit is exhausted,
/// and reading several MiB of `/proc/self/maps` into the heap would need a new mapping itself.
pub(crate) fn map_count() -> Option<usize> {
    use std::io::Read;
    let mut file = std::fs::File::open("/proc/self/maps").ok()?;
    let mut buf = [0u8; 16 * 1024];
    let mut lines = 0;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Some(lines),
            Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Mappings short of `vm.max_map_count` at which an `ENOMEM` is still blamed on the mapping
/// limit: a failing call needs at most a few new ones.
const MAP_COUNT_SLACK: usize = 64;

/// Builds the error returned when the kernel refuses memory for a stack. `ENOMEM` from `mmap`
/// or `mprotect` has two common causes, told apart by the mapping count: the VMA limit
/// (`vm.max_map_count`, when the process is at it) or the address space (`RLIMIT_AS`, or the
/// 128 TiB a process has, when it is far from it: 1 GiB stacks merge into few mappings). The
/// message names the cause with its numbers.
pub(crate) fn stack_map_error(what: &str, err: io::Error) -> io::Error {
    let (max, used) = (max_map_count(), map_count());
    let mappings = match (max, used) {
        (Some(max), Some(used)) => {
            format!("vm.max_map_count is {max} and this process has {used} mappings in use")
        }
        _ => "vm.max_map_count and the mapping count could not be read".to_owned(),
    };
    let detail = match (err.raw_os_error(), max, used) {
        (Some(libc::ENOMEM), Some(max), Some(used)) if used + MAP_COUNT_SLACK < max => format!(
            "the process is out of address space, not mappings ({mappings}): {}; use smaller \
             stacks (Builder::stack_size) or fewer green threads at once",
            address_space(true)
        ),
        (Some(libc::ENOMEM), Some(_), Some(_)) => format!(
            "the process is out of mappings: {mappings}; raise vm.max_map_count \
             (sysctl -w vm.max_map_count=N) or run fewer green threads at once"
        ),
        (Some(libc::ENOMEM), _, _) => {
            format!("the kernel is out of mappings or address space for this process ({mappings})")
        }
        _ => mappings,
    };
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!("weft: cannot {what} for a green-thread stack: {err}; {detail}"),
    )
}

/// The limits a failed thread start may have hit, as text for an error. `pthread_create`
/// says `EAGAIN` when the user is out of threads (`RLIMIT_NPROC`, which counts every thread
/// of the user's processes), when the cgroup is (`pids.max`: systemd's `TasksMax`, docker's
/// `--pids-limit`), when the system is (`kernel.threads-max`), and when the new thread's
/// stack cannot be mapped, so each of those is named.
pub(crate) fn thread_limits() -> String {
    let threads = status_field("Threads:").map_or_else(|| "?".to_owned(), |n| n.to_string());
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    // SAFETY: a zeroed rlimit is a valid out-parameter.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: getrlimit writes the struct it is given.
    let nproc = if unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut limit) } != 0 {
        "unknown".to_owned()
    } else if limit.rlim_cur == libc::RLIM_INFINITY {
        "unlimited".to_owned()
    } else {
        limit.rlim_cur.to_string()
    };
    // Root in the initial namespace (CAP_SYS_RESOURCE or CAP_SYS_ADMIN) is exempt.
    let exempt = if uid == 0 { ", which root is usually exempt from" } else { "" };
    let threads_max = std::fs::read_to_string("/proc/sys/kernel/threads-max")
        .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned());
    let cgroup = cgroup_pids().map_or_else(String::new, |(max, current)| {
        format!("; the cgroup's pids.max is {max}, with {current} in use")
    });
    format!(
        "this process has {threads} threads; RLIMIT_NPROC is {nproc} threads for user {uid}\
         {exempt}{cgroup}; kernel.threads-max is {threads_max}; {}",
        address_space(false)
    )
}

/// `pids.max` and `pids.current` of the process's cgroup (v2, or v1's `pids` controller), if
/// it has such a limit (the root cgroup has none).
fn cgroup_pids() -> Option<(String, String)> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    cgroups.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (id, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let dir = if id == "0" && controllers.is_empty() {
            format!("/sys/fs/cgroup{path}")
        } else if controllers.split(',').any(|c| c == "pids") {
            format!("/sys/fs/cgroup/pids{path}")
        } else {
            return None;
        };
        let read = |file: &str| {
            std::fs::read_to_string(format!("{dir}/{file}"))
                .ok()
                .map(|s| s.trim().to_owned())
        };
        Some((read("pids.max")?, read("pids.current")?))
    })
}

/// A numeric field of `/proc/self/status` (the first number after the name).
fn status_field(name: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(name))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The address space in use (`VmSize`) and its limit (`RLIMIT_AS`), as text for an error;
/// `exhausted` says that it ran out (so an unlimited `RLIMIT_AS` means the user address space
/// itself is used up).
fn address_space(exhausted: bool) -> String {
    let in_use = status_field("VmSize:").map_or_else(
        || "unknown".to_owned(),
        |kib| {
            if kib >= 1 << 20 {
                format!("{} GiB", kib >> 20)
            } else {
                format!("{} MiB", kib >> 10)
            }
        },
    );
    // SAFETY: a zeroed rlimit is a valid out-parameter.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: getrlimit writes the struct it is given.
    let limit = if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } == 0
        && limit.rlim_cur != libc::RLIM_INFINITY
    {
        format!("RLIMIT_AS is {} GiB", limit.rlim_cur / (1 << 30))
    } else if exhausted {
        "RLIMIT_AS is unlimited: the user address space itself is used up".to_owned()
    } else {
        "RLIMIT_AS is unlimited".to_owned()
    };
    format!("{in_use} mapped, {limit}")
}

/// Makes sure the calling thread has an alternate signal stack, so the stack-overflow handler
/// can run after a green thread hit its guard page (the faulting stack has no room left).
/// Threads spawned by std normally have one already; then this does nothing. The stack is
/// leaked on purpose: worker threads live as long as the process.
pub(crate) fn ensure_sigaltstack() -> io::Result<()> {
    // SAFETY: a zeroed stack_t is a valid out-parameter.
    let mut old: libc::stack_t = unsafe { std::mem::zeroed() };
    syscall!(sigaltstack(std::ptr::null(), &mut old))?;
    if old.ss_flags & libc::SS_DISABLE == 0 {
        return Ok(());
    }
    let size = libc::SIGSTKSZ.max(64 * 1024);
    let page = page_size();
    let base = map_reserve(size + page)?;
    // A guard below the signal stack too: an overflow there must not scribble on a neighbour.
    // SAFETY: the first page of the fresh mapping holds nothing.
    unsafe { protect_none(base, page)? };
    let new = libc::stack_t {
        // SAFETY: base + page stays inside the mapping of size + page bytes.
        ss_sp: unsafe { base.add(page) }.cast(),
        ss_flags: 0,
        ss_size: size,
    };
    syscall!(sigaltstack(&new, std::ptr::null_mut()))?;
    Ok(())
}

/// Bytes of `[low, low + len)` resident in memory (`mincore`), 0 if the kernel cannot tell.
/// `low` and `len` are page multiples (a stack's usable range).
pub(crate) fn resident_bytes(low: usize, len: usize) -> usize {
    let page = page_size();
    let mut pages = vec![0u8; len.div_ceil(page)];
    // SAFETY: the range is mapped (a live stack slot) and `pages` has one byte per page.
    let res = unsafe { libc::mincore(low as *mut libc::c_void, len, pages.as_mut_ptr()) };
    if res != 0 {
        return 0;
    }
    pages.iter().filter(|&&p| p & 1 != 0).count() * page
}

/// The calling OS thread's kernel thread id.
pub(crate) fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// What a thread of this process is doing (see [`thread_syscall`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ThreadState {
    /// Running user code.
    Running,
    /// In syscall number `.0`.
    Syscall(libc::c_long),
    /// Blocked outside any syscall (a page fault, a stop).
    Blocked,
}

/// What a thread of this process is doing, from `/proc/self/task/TID/syscall`; `None` when
/// the file cannot be read (no procfs, or the thread is gone).
pub(crate) fn thread_syscall(tid: i32) -> Option<ThreadState> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    let first = text.split_whitespace().next()?;
    if first == "running" {
        return Some(ThreadState::Running);
    }
    // "-1 …": blocked, but not in a syscall.
    let nr = first.parse::<libc::c_long>().ok()?;
    Some(if nr >= 0 {
        ThreadState::Syscall(nr)
    } else {
        ThreadState::Blocked
    })
}

/// Writes `bytes` to stderr with `write(2)`: async-signal-safe, no allocation, no locks.
pub(crate) fn write_stderr_raw(bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: the pointer and length describe a live slice.
        // (Through `real`: with the hooks feature, libc's `write` symbol is weft's hook, and
        // this runs in signal handlers.)
        let n = unsafe { real::write(libc::STDERR_FILENO, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            // EINTR: try again; anything else: nothing sensible is left to do in a handler.
            if n == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        rest = &rest[n as usize..];
    }
}

/// Blocks the calling OS thread while `*word == expected` (spurious returns allowed).
pub(crate) fn futex_wait(word: &std::sync::atomic::AtomicU32, expected: u32) {
    // SAFETY: the address is a live, aligned u32 for the duration of the call; a null timeout
    // waits indefinitely. Errors (EAGAIN: value changed, EINTR) are all "re-check the word".
    unsafe {
        raw_syscall(
            libc::SYS_futex,
            [
                word.as_ptr() as libc::c_long,
                (libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as libc::c_long,
                expected as libc::c_long,
                0, // no timeout
                0,
                0,
            ],
        );
    }
}

/// Like [`futex_wait`], but returns after `timeout` at the latest.
pub(crate) fn futex_wait_timeout(
    word: &std::sync::atomic::AtomicU32,
    expected: u32,
    timeout: std::time::Duration,
) {
    let timeout = libc::timespec {
        tv_sec: timeout.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: as for `futex_wait`; the timeout is a live, relative timespec. ETIMEDOUT is one
    // more reason to re-check.
    unsafe {
        raw_syscall(
            libc::SYS_futex,
            [
                word.as_ptr() as libc::c_long,
                (libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as libc::c_long,
                expected as libc::c_long,
                &timeout as *const libc::timespec as libc::c_long,
                0,
                0,
            ],
        );
    }
}

/// Wakes every OS thread blocked in [`futex_wait`] on `word`.
pub(crate) fn futex_wake_all(word: &std::sync::atomic::AtomicU32) {
    futex_wake(word, i32::MAX);
}

/// Wakes up to `count` OS threads blocked in [`futex_wait`] on `word`.
pub(crate) fn futex_wake(word: &std::sync::atomic::AtomicU32, count: i32) {
    // SAFETY: waking is harmless for any address; the word is live.
    unsafe {
        raw_syscall(
            libc::SYS_futex,
            [
                word.as_ptr() as libc::c_long,
                (libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG) as libc::c_long,
                count as libc::c_long,
                0,
                0,
                0,
            ],
        );
    }
}
