//! A line-based chat server. Every line a client sends goes to every other client, as
//! `guest-N: line`. Each client has a reader and a writer green thread; a hub green thread
//! owns the list of clients and broadcasts over channels, so no lock is shared.
//!
//! ```text
//! cargo run --release --example chat -- [PORT [WORKERS]]
//! cargo run --release --example chat                     # 127.0.0.1:7878
//! nc 127.0.0.1 7878                                      # in two or more terminals
//! ```
//!
//! # Slow clients
//!
//! Each client's writer drains a bounded queue of [`OUTBOX`] lines. When a broadcast finds
//! a client's queue full, that client is **disconnected** (its socket is shut down and the
//! others are told): waiting for it would let one stalled reader stop the whole room, and
//! dropping its lines silently would show it a conversation that never happened. Everyone
//! else keeps every line.

#[path = "common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;

use weft::chan::{self, Receiver, Sender, TrySendError};
use weft::net::TcpStream;

const USAGE: &str = "chat [PORT [WORKERS]]";
/// Lines queued for one client before it counts as too slow.
const OUTBOX: usize = 256;
/// The longest line accepted; longer input is cut into lines of this size.
const MAX_LINE: u64 = 4096;

enum Event {
    Join {
        id: u64,
        outbox: Sender<Arc<str>>,
        stream: TcpStream,
    },
    Line {
        id: u64,
        text: String,
    },
    Leave {
        id: u64,
    },
}

fn main() {
    let args = common::args(7878, USAGE);
    let listener = common::listen("chat", &args.addr);
    weft::run(move || {
        let (events, inbox) = chan::bounded(1024);
        weft::go!(move || hub(inbox));
        let next_id = Arc::new(std::sync::atomic::AtomicU64::new(1));
        common::serve_forever(&listener, move |stream, _peer| {
            let id = next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            client(id, stream, events.clone());
        })
    })
}

/// The hub: the only owner of the client list.
fn hub(inbox: Receiver<Event>) {
    struct Member {
        outbox: Sender<Arc<str>>,
        stream: TcpStream,
    }
    let mut members: HashMap<u64, Member> = HashMap::new();
    let mut too_slow = Vec::new();
    for event in inbox {
        let (from, line) = match event {
            Event::Join { id, outbox, stream } => {
                let _ = outbox.try_send(format!("* welcome, you are guest-{id}\n").into());
                members.insert(id, Member { outbox, stream });
                (id, format!("* guest-{id} joined\n"))
            }
            Event::Line { id, text } => (id, format!("guest-{id}: {text}\n")),
            Event::Leave { id } => {
                if members.remove(&id).is_none() {
                    continue; // already disconnected as too slow
                }
                (id, format!("* guest-{id} left\n"))
            }
        };
        let line: Arc<str> = line.into();
        for (&id, member) in &members {
            if id == from {
                continue;
            }
            match member.outbox.try_send(line.clone()) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => too_slow.push(id),
            }
        }
        for id in too_slow.drain(..) {
            if let Some(member) = members.remove(&id) {
                // Wakes its reader (which reads 0) and ends its writer (the queue closes
                // when `outbox` drops here).
                let _ = member.stream.shutdown(Shutdown::Both);
                let notice: Arc<str> =
                    format!("* guest-{id} was too slow and was dropped\n").into();
                for member in members.values() {
                    let _ = member.outbox.try_send(notice.clone());
                }
            }
        }
    }
}

/// One client: this green thread reads lines; a second one writes the outbox.
fn client(id: u64, stream: TcpStream, events: Sender<Event>) {
    let (outbox, queue) = chan::bounded::<Arc<str>>(OUTBOX);
    let Ok(for_hub) = stream.try_clone() else {
        return;
    };
    if events
        .send(Event::Join {
            id,
            outbox,
            stream: for_hub,
        })
        .is_err()
    {
        return;
    }
    weft::scope(|s| {
        let stream = &stream;
        s.spawn(move || writer(stream, queue));
        let mut lines = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match lines.by_ref().take(MAX_LINE).read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches(['\r', '\n']).to_owned();
                    if events.send(Event::Line { id, text }).is_err() {
                        break;
                    }
                }
            }
        }
        // The hub drops this client's queue, which ends the writer after it has sent
        // everything already queued.
        let _ = events.send(Event::Leave { id });
    });
}

/// Writes queued lines, as many as are waiting in one `write`.
fn writer(mut stream: &TcpStream, queue: Receiver<Arc<str>>) {
    let mut batch = String::new();
    while let Ok(line) = queue.recv() {
        batch.clear();
        batch.push_str(&line);
        for line in queue.try_iter() {
            batch.push_str(&line);
        }
        if stream.write_all(batch.as_bytes()).is_err() {
            break;
        }
    }
    // Either the hub let go of this client or the peer stopped reading: end the reader too.
    let _ = stream.shutdown(Shutdown::Both);
}
