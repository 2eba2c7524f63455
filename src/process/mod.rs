//! Child processes with [`std::process`]'s API, whose waits park the green thread instead of
//! blocking its worker.
//!
//! * [`Command::spawn`] runs on the blocking pool: std's spawn waits until the child has
//!   called `exec` (or failed to), which takes a fork's worth of time.
//! * [`Child::wait`] parks on the reactor: `pidfd_open` (Linux ≥ 5.3) turns the child's exit
//!   into a readable fd, so no thread waits at all. Where pidfds are unavailable (an older
//!   kernel, a seccomp filter), the wait runs on the blocking pool instead, holding one pool
//!   thread for as long as the child runs.
//! * [`ChildStdin`], [`ChildStdout`] and [`ChildStderr`] are pipes on the reactor, like
//!   `weft::io::NonBlocking`: their reads and writes park.
//! * [`Child::wait_with_output`] reads stdout and stderr at the same time (two green
//!   threads), so a child that fills one pipe while weft reads the other cannot deadlock.
//!
//! On a plain thread everything blocks the thread, as std does.
//!
//! ```
//! let out = weft::run(|| weft::process::Command::new("echo").arg("woven").output())?;
//! assert!(out.status.success());
//! assert_eq!(out.stdout, b"woven\n");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::Path;

pub use std::process::{ExitStatus, Output, Stdio};

use crate::blocking::{offload, offload_then};
use crate::io::{NonBlocking, Source};
use crate::runtime::reactor::Direction;
use crate::sys;

/// A process builder, as [`std::process::Command`] (the same methods and defaults).
pub struct Command {
    inner: std::process::Command,
    /// Which of stdin/stdout/stderr the caller configured, so that [`output`](Self::output)
    /// can give the others its own defaults (null stdin, piped stdout and stderr) as std's
    /// does, and put them back afterwards.
    configured: [bool; 3],
}

impl Command {
    /// A command running `program`, inheriting this process's environment, working
    /// directory and standard streams.
    pub fn new<S: AsRef<OsStr>>(program: S) -> Command {
        Command {
            inner: std::process::Command::new(program),
            configured: [false; 3],
        }
    }

    /// Adds an argument.
    pub fn arg<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut Command {
        self.inner.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env<K: AsRef<OsStr>, V: AsRef<OsStr>>(&mut self, key: K, val: V) -> &mut Command {
        self.inner.env(key, val);
        self
    }

    /// Sets environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.inner.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove<K: AsRef<OsStr>>(&mut self, key: K) -> &mut Command {
        self.inner.env_remove(key);
        self
    }

    /// Clears the child's environment.
    pub fn env_clear(&mut self) -> &mut Command {
        self.inner.env_clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir<P: AsRef<Path>>(&mut self, dir: P) -> &mut Command {
        self.inner.current_dir(dir);
        self
    }

    /// Configures the child's stdin.
    pub fn stdin<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stdin(cfg);
        self.configured[0] = true;
        self
    }

    /// Configures the child's stdout.
    pub fn stdout<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stdout(cfg);
        self.configured[1] = true;
        self
    }

    /// Configures the child's stderr.
    pub fn stderr<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stderr(cfg);
        self.configured[2] = true;
        self
    }

    /// The program, as given to [`Command::new`].
    pub fn get_program(&self) -> &OsStr {
        self.inner.get_program()
    }

    /// The arguments, without the program.
    pub fn get_args(&self) -> std::process::CommandArgs<'_> {
        self.inner.get_args()
    }

    /// The environment changes made with [`env`](Command::env) and
    /// [`env_remove`](Command::env_remove) (`None` for a removal).
    pub fn get_envs(&self) -> std::process::CommandEnvs<'_> {
        self.inner.get_envs()
    }

    /// The working directory set with [`current_dir`](Command::current_dir), if any.
    pub fn get_current_dir(&self) -> Option<&Path> {
        self.inner.get_current_dir()
    }

    /// Starts the child (on the blocking pool: std's spawn waits for the child's `exec`).
    ///
    /// A cancel or deadline that comes while the child starts takes effect at the caller's
    /// next blocking point, not here: unwinding here would drop the only handle to a child
    /// that is already running, which then could be neither waited for nor killed.
    pub fn spawn(&mut self) -> io::Result<Child> {
        let inner = &mut self.inner;
        let child = offload_then(move || inner.spawn())?;
        Child::new(child)
    }

    /// Runs the child to completion and collects its output, as std's `output`: stdin is
    /// null and stdout and stderr are piped unless configured otherwise.
    pub fn output(&mut self) -> io::Result<Output> {
        self.unconfigured_streams(|fd| {
            if fd == 0 {
                Stdio::null()
            } else {
                Stdio::piped()
            }
        });
        let spawned = self.spawn();
        // Back to spawn's defaults (inherit) for whatever `output` chose.
        self.unconfigured_streams(|_| Stdio::inherit());
        spawned?.wait_with_output()
    }

    /// Sets each of stdin (0), stdout (1) and stderr (2) that the caller has not configured
    /// to `stdio(fd)`.
    fn unconfigured_streams(&mut self, stdio: impl Fn(usize) -> Stdio) {
        let configured = self.configured;
        if !configured[0] {
            self.inner.stdin(stdio(0));
        }
        if !configured[1] {
            self.inner.stdout(stdio(1));
        }
        if !configured[2] {
            self.inner.stderr(stdio(2));
        }
    }

    /// Runs the child to completion and returns its exit status.
    #[track_caller]
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait()
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// A running or exited child, as [`std::process::Child`]. Dropping it neither kills nor
/// waits for the child (as with std).
pub struct Child {
    inner: std::process::Child,
    /// The child's pidfd on the reactor, or `None` where pidfds are unavailable.
    pidfd: Option<Source>,
    /// The child's stdin, if piped. Taking it (`child.stdin.take()`) lets it be moved.
    pub stdin: Option<ChildStdin>,
    /// The child's stdout, if piped.
    pub stdout: Option<ChildStdout>,
    /// The child's stderr, if piped.
    pub stderr: Option<ChildStderr>,
}

impl Child {
    fn new(mut inner: std::process::Child) -> io::Result<Child> {
        // A pidfd that is not available falls back to waiting on the pool; one that cannot
        // be registered (fd limit) likewise.
        let pidfd = sys::file::pidfd_open(inner.id())
            .ok()
            .and_then(|fd| Source::new(fd).ok());
        let pipes = (|| -> io::Result<_> {
            Ok((
                inner.stdin.take().map(NonBlocking::new).transpose()?,
                inner.stdout.take().map(NonBlocking::new).transpose()?,
                inner.stderr.take().map(NonBlocking::new).transpose()?,
            ))
        })();
        let (stdin, stdout, stderr) = match pipes {
            Ok(pipes) => pipes,
            Err(e) => {
                // The caller gets no `Child` to kill or reap, so do both here.
                let _ = inner.kill();
                let _ = offload(|| inner.wait());
                return Err(e);
            }
        };
        Ok(Child {
            inner,
            pidfd,
            stdin: stdin.map(|inner| ChildStdin { inner }),
            stdout: stdout.map(|inner| ChildStdout { inner }),
            stderr: stderr.map(|inner| ChildStderr { inner }),
        })
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    /// Sends `SIGKILL` to the child (it does not wait for it to exit).
    pub fn kill(&mut self) -> io::Result<()> {
        self.inner.kill()
    }

    /// The exit status if the child has exited, without waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.inner.try_wait()
    }

    /// Waits for the child to exit, parking the green thread; closes the child's stdin first
    /// (if piped), as std does, so a child reading it sees end of file.
    #[track_caller]
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        let inner = &mut self.inner;
        match &self.pidfd {
            // The pidfd turns readable at exit; `try_wait` then reaps without blocking.
            Some(pidfd) => pidfd.io(
                Direction::Read,
                || Ok(None),
                "wait",
                || match inner.try_wait()? {
                    Some(status) => Ok(status),
                    None => Err(io::ErrorKind::WouldBlock.into()),
                },
            ),
            None => offload(move || inner.wait()),
        }
    }

    /// Waits for the child and collects whatever it writes to its piped stdout and stderr,
    /// reading both at once so that neither pipe can fill up and stall the child.
    #[track_caller]
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let (stdout, stderr) = (self.stdout.take(), self.stderr.take());
        // Both pipes at once: a second green thread, or on a plain thread a second thread
        // (which keeps "blocks like std" true there and does not start the runtime).
        let (stdout, stderr) = if crate::is_coroutine() {
            crate::scope(|s| {
                let err_reader = s.spawn(move || read_all(stderr));
                let out = read_all(stdout);
                let err = err_reader
                    .join()
                    .unwrap_or_else(|payload| std::panic::resume_unwind(payload));
                (out, err)
            })
        } else {
            std::thread::scope(|s| {
                let err_reader = s.spawn(move || read_all(stderr));
                let out = read_all(stdout);
                let err = err_reader
                    .join()
                    .unwrap_or_else(|payload| std::panic::resume_unwind(payload));
                (out, err)
            })
        };
        let status = self.wait()?;
        Ok(Output {
            status,
            stdout: stdout?,
            stderr: stderr?,
        })
    }
}

fn read_all(pipe: Option<impl Read>) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if let Some(mut pipe) = pipe {
        pipe.read_to_end(&mut bytes)?;
    }
    Ok(bytes)
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("id", &self.id())
            .field("pidfd", &self.pidfd.is_some())
            .finish_non_exhaustive()
    }
}

/// Unix options of a [`Command`], as [`std::os::unix::process::CommandExt`] (which std seals,
/// so weft has its own trait with the same methods).
///
/// ```
/// use weft::process::{Command, CommandExt};
/// # weft::run(|| {
/// let out = Command::new("sh").arg0("renamed").args(["-c", "echo $0"]).output().unwrap();
/// assert_eq!(out.stdout, b"renamed\n");
/// # });
/// ```
pub trait CommandExt {
    /// Sets the child's user id (`setuid` before `exec`).
    fn uid(&mut self, id: u32) -> &mut Command;
    /// Sets the child's group id (`setgid` before `exec`).
    fn gid(&mut self, id: u32) -> &mut Command;
    /// Runs `f` in the child after `fork` and before `exec`; an error fails the spawn.
    ///
    /// # Safety
    ///
    /// As for std's: `f` runs in a forked child of a multi-threaded process, where only
    /// async-signal-safe operations are sound (no allocation, no locks).
    unsafe fn pre_exec<F>(&mut self, f: F) -> &mut Command
    where
        F: FnMut() -> io::Result<()> + Send + Sync + 'static;
    /// Replaces this process with the program (`execvp`); returns only on failure.
    fn exec(&mut self) -> io::Error;
    /// Sets the child's `argv[0]`.
    fn arg0<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut Command;
    /// Puts the child in process group `pgroup` (0: a new group led by the child).
    fn process_group(&mut self, pgroup: i32) -> &mut Command;
}

impl CommandExt for Command {
    fn uid(&mut self, id: u32) -> &mut Command {
        std::os::unix::process::CommandExt::uid(&mut self.inner, id);
        self
    }

    fn gid(&mut self, id: u32) -> &mut Command {
        std::os::unix::process::CommandExt::gid(&mut self.inner, id);
        self
    }

    unsafe fn pre_exec<F>(&mut self, f: F) -> &mut Command
    where
        F: FnMut() -> io::Result<()> + Send + Sync + 'static,
    {
        // SAFETY: the caller upholds std's contract, which is the same.
        unsafe { std::os::unix::process::CommandExt::pre_exec(&mut self.inner, f) };
        self
    }

    fn exec(&mut self) -> io::Error {
        std::os::unix::process::CommandExt::exec(&mut self.inner)
    }

    fn arg0<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut Command {
        std::os::unix::process::CommandExt::arg0(&mut self.inner, arg);
        self
    }

    fn process_group(&mut self, pgroup: i32) -> &mut Command {
        std::os::unix::process::CommandExt::process_group(&mut self.inner, pgroup);
        self
    }
}

/// Defines a child pipe end: a [`NonBlocking`] std pipe with `Read` or `Write`.
macro_rules! child_pipe {
    ($(#[$doc:meta])* $name:ident, $std:ty, $trait:ident { $($body:tt)* }) => {
        $(#[$doc])*
        pub struct $name {
            inner: NonBlocking<$std>,
        }

        impl $trait for $name {
            $($body)*
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.inner.as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.inner.as_raw_fd()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.as_raw_fd()).finish()
            }
        }

        impl From<$name> for Stdio {
            /// The pipe as another child's stdin, stdout or stderr (to pipe one child into
            /// the next), back in blocking mode as the child expects.
            fn from(pipe: $name) -> Stdio {
                Stdio::from(pipe.inner.into_inner())
            }
        }

        impl std::os::fd::IntoRawFd for $name {
            /// Deregisters the pipe and gives up its fd, back in blocking mode.
            fn into_raw_fd(self) -> RawFd {
                self.inner.into_inner().into_raw_fd()
            }
        }

        impl From<$name> for std::os::fd::OwnedFd {
            /// Deregisters the pipe and gives up its fd, back in blocking mode.
            fn from(pipe: $name) -> std::os::fd::OwnedFd {
                std::os::fd::OwnedFd::from(pipe.inner.into_inner())
            }
        }
    };
}

child_pipe!(
    /// The child's stdin: writes park until the pipe has room.
    ChildStdin,
    std::process::ChildStdin,
    Write {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.inner.write(buf)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
);

impl Write for &ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.inner).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&self.inner).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

child_pipe!(
    /// The child's stdout: reads park until it writes.
    ChildStdout,
    std::process::ChildStdout,
    Read {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.inner.read(buf)
        }
    }
);

child_pipe!(
    /// The child's stderr: reads park until it writes.
    ChildStderr,
    std::process::ChildStderr,
    Read {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.inner.read(buf)
        }
    }
);
