//! A line-based chat server. Every line a client sends goes to every other client, as
//! `guest-N: line`. Each client has a reader and a writer green thread; a hub green thread
//! owns the list of clients and broadcasts over channels, so no lock is shared.
//!
//! ```text
//! cargo run --release --example chat -- [PORT [WORKERS [PATIENCE_MS]]]
//! cargo run --release --example chat                     # 127.0.0.1:7878
//! nc 127.0.0.1 7878                                      # in two or more terminals
//! ```
//!
//! # Slow clients
//!
//! Each client's writer drains a bounded queue of [`OUTBOX`] lines. The hub never waits
//! for a queue: a line that does not fit waits in that client's backlog, in order, and is
//! retried. A client whose writer takes nothing from its full queue for [`PATIENCE`] (1 s,
//! or the `PATIENCE_MS` argument), or whose backlog passes [`MAX_BACKLOG`] (16 MiB), is
//! **disconnected**: its socket is shut down and the others are told. Waiting for it would
//! let one stalled reader stop the whole room; dropping its lines silently would show it a
//! conversation that never happened; and a full queue alone means little (its writer may
//! simply not have had its turn yet), so the limit is a time, not a count. Everyone else
//! gets every line, in order, including a client that half-closes: what was said before it
//! left is still delivered (within [`LINGER`]).

#[path = "common/mod.rs"]
mod common;

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weft::chan::{self, Receiver, RecvTimeoutError, Sender, TrySendError};
use weft::net::TcpStream;

const USAGE: &str = "chat [PORT [WORKERS [PATIENCE_MS]]]";
/// Lines in one client's queue to its writer.
const OUTBOX: usize = 256;
/// How long a client's writer may take nothing from its full queue before the client
/// counts as too slow (the default of the `PATIENCE_MS` argument).
const PATIENCE: Duration = Duration::from_secs(1);
/// How long a leaving client's writer may take to send what was queued for it.
const LINGER: Duration = Duration::from_secs(10);
/// The most bytes the writer sends in one `write`: what the hub sees as progress is the
/// queue moving, so one batch must not take long to write.
const BATCH: usize = 64 * 1024;
/// The most bytes held back for one client while its queue is full.
const MAX_BACKLOG: usize = 16 << 20;
/// How often the hub retries held-back lines when no event comes.
const RETRY: Duration = Duration::from_millis(20);
/// How long the hub waits for an event when nothing is held back (it could wait for ever;
/// a bound keeps it honest).
const IDLE: Duration = Duration::from_secs(3600);
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
    let patience = match args.rest.first() {
        None => PATIENCE,
        Some(ms) => Duration::from_millis(ms.parse().unwrap_or_else(|_| {
            eprintln!("PATIENCE_MS must be a number, not {ms:?}\nusage: {USAGE}");
            std::process::exit(2)
        })),
    };
    let listener = common::listen("chat", &args.addr);
    weft::run(move || {
        let (events, inbox) = chan::bounded(1024);
        weft::go!(move || hub(inbox, patience));
        let next_id = Arc::new(std::sync::atomic::AtomicU64::new(1));
        common::serve_forever(&listener, move |stream, _peer| {
            let id = next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            client(id, stream, events.clone());
        })
    })
}

/// A client as the hub sees it.
struct Member {
    outbox: Sender<Arc<str>>,
    stream: TcpStream,
    /// Lines that did not fit in the outbox yet, in order, and their size in bytes.
    backlog: VecDeque<Arc<str>>,
    backlog_bytes: usize,
    /// Since when the writer has taken nothing from a full outbox (`None` while the
    /// backlog is empty).
    full_since: Option<Instant>,
    /// It has left: it gets no new lines, and is let go once its backlog is in its queue.
    leaving: bool,
}

impl Member {
    /// Queues `line` (if any) behind the backlog and moves what fits into the outbox.
    /// Returns false once the client counts as too slow.
    fn offer(&mut self, line: Option<Arc<str>>, now: Instant, patience: Duration) -> bool {
        if let Some(line) = line {
            self.backlog_bytes += line.len();
            self.backlog.push_back(line);
        }
        let mut moved = false;
        while let Some(line) = self.backlog.pop_front() {
            let len = line.len();
            match self.outbox.try_send(line) {
                Ok(()) => {
                    self.backlog_bytes -= len;
                    moved = true;
                }
                Err(TrySendError::Full(line)) => {
                    self.backlog.push_front(line);
                    break;
                }
                // The writer is gone (the peer stopped reading and errored): its reader
                // will say Leave.
                Err(TrySendError::Disconnected(_)) => {
                    self.backlog.clear();
                    self.backlog_bytes = 0;
                }
            }
        }
        if self.backlog.is_empty() {
            self.full_since = None;
            return true;
        }
        // The outbox was full at the end of the last call: anything moved now was made room
        // for by the writer, so the client is keeping up, if behind. Only a client whose
        // writer takes nothing for PATIENCE counts as too slow.
        if moved || self.full_since.is_none() {
            self.full_since = Some(now);
        }
        let since = self.full_since.unwrap_or(now);
        now.duration_since(since) < patience && self.backlog_bytes <= MAX_BACKLOG
    }
}

/// The hub: the only owner of the client list. It never waits for a client: a line that
/// does not fit in a client's queue waits in that client's backlog, and the hub retries it
/// on every event and every [`RETRY`] while some backlog is not empty.
fn hub(inbox: Receiver<Event>, patience: Duration) {
    let mut members: HashMap<u64, Member> = HashMap::new();
    let mut too_slow = Vec::new();
    loop {
        let lagging = members.values().any(|m| !m.backlog.is_empty());
        let event = match inbox.recv_timeout(if lagging { RETRY } else { IDLE }) {
            Ok(event) => Some(event),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let broadcast = match event {
            None => None,
            Some(Event::Join { id, outbox, stream }) => {
                let mut member = Member {
                    outbox,
                    stream,
                    backlog: VecDeque::new(),
                    backlog_bytes: 0,
                    full_since: None,
                    leaving: false,
                };
                let welcome = format!("* welcome, you are guest-{id}\n");
                member.offer(Some(welcome.into()), Instant::now(), patience);
                members.insert(id, member);
                Some((id, format!("* guest-{id} joined\n")))
            }
            // Lines still on their way from a client that was dropped or has left are
            // not passed on.
            Some(Event::Line { id, text }) => members
                .get(&id)
                .filter(|m| !m.leaving)
                .map(|_| (id, format!("guest-{id}: {text}\n"))),
            // (None if it was already dropped as too slow.)
            Some(Event::Leave { id }) => members.get_mut(&id).map(|member| {
                member.leaving = true;
                (id, format!("* guest-{id} left\n"))
            }),
        };
        let broadcast = broadcast.map(|(from, line)| (from, Arc::<str>::from(line)));
        let now = Instant::now();
        for (&id, member) in members.iter_mut() {
            let line = match &broadcast {
                Some((from, line)) if *from != id && !member.leaving => Some(line.clone()),
                _ => None,
            };
            if (line.is_some() || !member.backlog.is_empty()) && !member.offer(line, now, patience)
            {
                too_slow.push(id);
            }
        }
        // Let go of those who left once everything held back for them is queued: dropping
        // `outbox` ends their writer after it has sent the queue.
        members.retain(|_, m| !(m.leaving && m.backlog.is_empty()));
        for id in too_slow.drain(..) {
            if let Some(member) = members.remove(&id) {
                // Wakes its reader (which reads 0) and ends its writer (the queue closes
                // when `outbox` drops here).
                let _ = member.stream.shutdown(Shutdown::Both);
                let notice: Arc<str> =
                    format!("* guest-{id} was too slow and was dropped\n").into();
                for member in members.values_mut().filter(|m| !m.leaving) {
                    member.offer(Some(notice.clone()), now, patience);
                }
            }
        }
        // Green threads are not preempted: while events keep coming, the writers that share
        // this worker would never get to drain their queues. A yield gives them their turn.
        weft::yield_now();
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
        let writer = s.spawn(move || writer(stream, queue));
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
        // The hub drops this client's queue once everything held for it is queued, which
        // ends the writer after it has sent the queue. A peer that stopped reading would
        // keep the writer waiting for ever: after LINGER, shutting the socket down ends it.
        let _ = events.send(Event::Leave { id });
        if weft::timeout(LINGER, || writer.join()).is_err() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    });
}

/// Writes queued lines, as many as are waiting (up to [`BATCH`] bytes) in one `write`.
fn writer(mut stream: &TcpStream, queue: Receiver<Arc<str>>) {
    let mut batch = String::new();
    while let Ok(line) = queue.recv() {
        batch.clear();
        batch.push_str(&line);
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(line) => batch.push_str(&line),
                Err(_) => break,
            }
        }
        if stream.write_all(batch.as_bytes()).is_err() {
            break;
        }
    }
    // Either the hub let go of this client or the peer stopped reading: end the reader too.
    let _ = stream.shutdown(Shutdown::Both);
}
