//! Signals as channel messages: [`notify`] delivers the signals you name on a
//! [`Receiver`](crate::chan::Receiver), usable in `select!` like any channel.
//!
//! Built on `signal-hook`: its handler writes a byte to a self-pipe (async-signal-safe,
//! chained with handlers installed before), and a green thread per signal reads that pipe
//! through the reactor and forwards the signal number. As with Go's `signal.Notify`, a
//! delivery never blocks: when the channel's buffer (16) is full, further signals of that
//! burst are dropped, and a burst that arrives while nobody reads may be coalesced into
//! fewer messages than signals. When the receiver is gone, the forwarder unregisters its
//! handler at the next signal and ends.
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
    for &signal in signals {
        let (reader, writer) = StdUnixStream::pair()?;
        let id = signal_hook::low_level::pipe::register(signal, writer)?;
        let reader = UnixStream::from(reader);
        let tx = tx.clone();
        let forwarder = crate::Builder::new()
            .name(format!("weft-signal-{signal}"))
            .stack_size(crate::MIN_STACK_SIZE)
            .spawn(move || {
                let mut bytes = [0u8; 64];
                loop {
                    // One byte per delivered signal (several may arrive in one read).
                    let n = match (&reader).read(&mut bytes) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    for _ in 0..n {
                        match tx.try_send(signal) {
                            Ok(()) | Err(TrySendError::Full(_)) => {}
                            Err(TrySendError::Disconnected(_)) => {
                                signal_hook::low_level::unregister(id);
                                return;
                            }
                        }
                    }
                }
                signal_hook::low_level::unregister(id);
            });
        if let Err(e) = forwarder {
            signal_hook::low_level::unregister(id);
            return Err(e);
        }
    }
    Ok(rx)
}
