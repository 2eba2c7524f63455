//! A WebSocket echo server: `tungstenite`'s synchronous API over `weft::net::TcpStream`,
//! one green thread per connection. Text and binary messages come back as they were sent;
//! pings are answered and closes completed by tungstenite.
//!
//! ```text
//! cargo run --release --example ws_echo -- [PORT [WORKERS]]
//! cargo run --release --example ws_echo                  # ws://127.0.0.1:9001/
//! websocat ws://127.0.0.1:9001/                          # or any WebSocket client
//! ```

#[path = "common/mod.rs"]
mod common;

use tungstenite::{Error, Message};
use weft::net::TcpStream;

const USAGE: &str = "ws_echo [PORT [WORKERS]]";

fn main() {
    let args = common::args(9001, USAGE);
    let listener = common::listen("ws_echo", &args.addr);
    weft::run(move || {
        common::serve_forever(&listener, |stream, peer| {
            if let Err(e) = connection(stream) {
                eprintln!("ws_echo: {peer}: {e}");
            }
        })
    })
}

/// One connection's green thread: the handshake, then echo until the client closes.
/// Returns the number of messages echoed.
fn connection(stream: TcpStream) -> Result<u64, Box<Error>> {
    let _ = stream.set_nodelay(true);
    let mut socket = tungstenite::accept(stream).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        // A blocking stream never interrupts the handshake.
        tungstenite::HandshakeError::Interrupted(_) => unreachable!("blocking handshake"),
    })?;
    let mut echoed = 0;
    loop {
        match socket.read() {
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                socket.send(message)?;
                echoed += 1;
            }
            // Pings are answered inside tungstenite; a Close is answered on the next read.
            Ok(_) => {}
            Err(Error::ConnectionClosed | Error::AlreadyClosed) => return Ok(echoed),
            Err(e) => return Err(e.into()),
        }
    }
}
