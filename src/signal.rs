//! Signals as channel messages: [`notify`] delivers the signals you name on a
//! [`Receiver`](crate::chan::Receiver), usable in `select!` like any channel.
//!
//! Built on `signal-hook`: its handler writes a byte to a self-pipe (async-signal-safe,
//! chained with handlers installed before), and a green thread per signal reads that pipe
//! through the reactor and forwards the signal number. As with Go's `signal.Notify`, a
//! delivery never blocks: when the channel's buffer (16) is full, further signals of that
//! burst are dropped, and a burst that arrives while nobody reads may be coalesced into
//! fewer messages than signals.
//!
//! Each call keeps, per signal, a socket pair and a parked forwarder until the receiver is
//! dropped *and* that signal arrives once more: the forwarder then finds nobody listening,
//! unregisters, runs the signal's default action for it (so a Ctrl-C after the receiver
//! went away still ends the process, as it would without `notify`), and ends; from then on
//! the default action applies again. (If two `notify` calls name the same signal and one
//! receiver goes, the default action comes back for that signal although the other still
//! listens: keep one receiver per signal and clone it.)
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use weft::signal::{SIGINT, SIGTERM};
//!
//! fn main() -> std::io::Result<()> {
//!     weft::run(|| {
//!         let stop = weft::signal::notify(&[SIGINT, SIGTERM])?;
//!         let listener = weft::net::TcpListener::bind("127.0.0.1:7007")?;
//!         let (conns_tx, conns) = weft::chan::bounded(64);
//!         let acceptor = weft::spawn(move || {
//!             for stream in listener.incoming().flatten() {
//!                 if conns_tx.send(stream).is_err() { break; }
//!             }
//!         });
//!         let handlers = std::sync::Arc::new(weft::sync::WaitGroup::new());
//!         loop {
//!             weft::select! {
//!                 recv(conns) -> stream => {
//!                     let Ok(mut stream) = stream else { break };
//!                     let wg = handlers.clone();
//!                     wg.add(1);
//!                     weft::spawn(move || {
//!                         let mut buf = [0u8; 4096];
//!                         while let Ok(n @ 1..) = stream.read(&mut buf) {
//!                             if stream.write_all(&buf[..n]).is_err() { break; }
//!                         }
//!                         wg.done();
//!                     });
//!                 }
//!                 recv(stop) -> _ => break, // Ctrl-C: stop accepting...
//!             }
//!         }
//!         acceptor.cancel();
//!         handlers.wait(); // ...and let the open connections finish
//!         Ok(())
//!     })
//! }
//! ```

use std::io::{self, Read};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

pub use signal_hook::consts::signal::{
    SIGALRM, SIGCHLD, SIGHUP, SIGINT, SIGPIPE, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH,
};

use crate::chan::{self, Receiver, TrySendError};
use crate::net::unix::UnixStream;

/// Messages buffered per receiver before further signals are dropped.
const BUFFER: usize = 16;

/// Delivers `signals` as messages (the signal number) on the returned receiver, from now on.
/// Each call has its own receiver; a signal named in several calls goes to each. Fails for
/// signals that cannot be caught (`SIGKILL`, `SIGSTOP`) or that a handler must not take
/// over (`SIGSEGV`, `SIGILL`, `SIGFPE`), with an `InvalidInput` error naming the signal,
/// before anything is registered.
pub fn notify(signals: &[i32]) -> io::Result<Receiver<i32>> {
    if let Some(&bad) = signals
        .iter()
        .find(|s| signal_hook::consts::FORBIDDEN.contains(s))
    {
        let name = signal_hook::low_level::signal_name(bad).unwrap_or("?");
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("weft: signal {bad} ({name}) cannot be handled"),
        ));
    }
    let (tx, rx) = chan::bounded(BUFFER);
    // Everything registered so far, undone if a later signal fails.
    let mut registered = Vec::new();
    let undo = |registered: &mut Vec<signal_hook::SigId>| {
        for id in registered.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    };
    for &signal in signals {
        match forward(signal, &tx, &mut registered) {
            Ok(()) => {}
            Err(e) => {
                undo(&mut registered);
                return Err(e);
            }
        }
    }
    Ok(rx)
}

/// Sets up one signal's pipe, default-action fallback and forwarder (see the module docs).
fn forward(
    signal: i32,
    tx: &chan::Sender<i32>,
    registered: &mut Vec<signal_hook::SigId>,
) -> io::Result<()> {
    let (reader, writer) = StdUnixStream::pair()?;
    let released = Arc::new(AtomicBool::new(false));
    // Runs the default action once `released` is set (the receiver is gone).
    registered.push(signal_hook::flag::register_conditional_default(
        signal,
        released.clone(),
    )?);
    let pipe = signal_hook::low_level::pipe::register(signal, writer)?;
    registered.push(pipe);
    let reader = UnixStream::from(reader);
    let tx = tx.clone();
    crate::Builder::new()
        .name(format!("weft-signal-{signal}"))
        .stack_size(crate::MIN_STACK_SIZE)
        .spawn(move || {
            let mut bytes = [0u8; 64];
            // One byte per delivered signal (several may arrive in one read).
            while let Ok(n @ 1..) = (&reader).read(&mut bytes) {
                for _ in 0..n {
                    match tx.try_send(signal) {
                        Ok(()) | Err(TrySendError::Full(_)) => {}
                        Err(TrySendError::Disconnected(_)) => {
                            // Nobody listens any more: back to the default action, starting
                            // with this very signal.
                            released.store(true, SeqCst);
                            signal_hook::low_level::unregister(pipe);
                            let _ = signal_hook::low_level::emulate_default_handler(signal);
                            return;
                        }
                    }
                }
            }
            signal_hook::low_level::unregister(pipe);
        })
        .map(drop)
}
