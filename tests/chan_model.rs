//! Channels and `select!` against a sequential model (proptest): random sequences of
//! sends, receives, non-blocking selects and disconnections on a bounded and an unbounded
//! channel. After every operation the result, `len` and `is_empty` must be what a pair of
//! FIFO queues would give, and every value sent must be received exactly once or handed back
//! in an error. Failing sequences are shrunk to a minimal one.

use std::collections::VecDeque;

use proptest::prelude::*;
use weft::chan::{self, Receiver, Sender, TryRecvError, TrySendError};

/// How long a send or receive that should not wait may take before the test fails.
const WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Clone, Debug)]
enum Op {
    TrySend(usize),
    TryRecv(usize),
    /// `send` where the model says it will not wait.
    Send(usize),
    /// `recv` where the model says it will not wait.
    Recv(usize),
    /// `select!` over both receivers, with a default.
    SelectRecv,
    /// `select!` sending on the bounded channel or receiving on the unbounded one, with a
    /// default.
    SelectSendOrRecv,
    DropSender(usize),
    DropReceiver(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let ch = 0..2usize;
    prop_oneof![
        4 => ch.clone().prop_map(Op::TrySend),
        4 => ch.clone().prop_map(Op::TryRecv),
        2 => ch.clone().prop_map(Op::Send),
        2 => ch.clone().prop_map(Op::Recv),
        3 => Just(Op::SelectRecv),
        3 => Just(Op::SelectSendOrRecv),
        1 => ch.clone().prop_map(Op::DropSender),
        1 => ch.prop_map(Op::DropReceiver),
    ]
}

/// One channel and its model.
struct Chan {
    tx: Option<Sender<u32>>,
    rx: Option<Receiver<u32>>,
    queue: VecDeque<u32>,
    cap: Option<usize>,
}

impl Chan {
    fn full(&self) -> bool {
        self.cap.is_some_and(|cap| self.queue.len() >= cap)
    }

    /// Ready to receive: a value, or no sender left.
    fn recv_ready(&self) -> bool {
        !self.queue.is_empty() || self.tx.is_none()
    }

    /// What a receive must give now.
    fn expect_recv(&mut self) -> Result<u32, TryRecvError> {
        match self.queue.pop_front() {
            Some(v) => Ok(v),
            None if self.tx.is_none() => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// What a send of `v` must give now.
    fn expect_send(&mut self, v: u32) -> Result<(), TrySendError<u32>> {
        if self.rx.is_none() {
            Err(TrySendError::Disconnected(v))
        } else if self.full() {
            Err(TrySendError::Full(v))
        } else {
            self.queue.push_back(v);
            Ok(())
        }
    }

    fn check_len(&self) {
        if let Some(rx) = &self.rx {
            assert_eq!(rx.len(), self.queue.len());
            assert_eq!(rx.is_empty(), self.queue.is_empty());
        }
    }
}

fn run(cap: usize, ops: Vec<Op>) {
    let (tx0, rx0) = chan::bounded(cap);
    let (tx1, rx1) = chan::unbounded();
    let mut chans = [
        Chan {
            tx: Some(tx0),
            rx: Some(rx0),
            queue: VecDeque::new(),
            cap: Some(cap),
        },
        Chan {
            tx: Some(tx1),
            rx: Some(rx1),
            queue: VecDeque::new(),
            cap: None,
        },
    ];
    for (n, op) in ops.into_iter().enumerate() {
        let v = n as u32 + 1;
        match op {
            Op::TrySend(c) => {
                let Some(tx) = &chans[c].tx else { continue };
                let got = tx.try_send(v);
                assert_eq!(got, chans[c].expect_send(v), "try_send on {c}");
            }
            Op::Send(c) => {
                let ch = &mut chans[c];
                let Some(tx) = &ch.tx else { continue };
                if ch.full() && ch.rx.is_some() {
                    continue; // would wait for ever in one thread
                }
                // Bounded, so that a send that waits when it should not fails the test
                // instead of hanging it.
                let got = tx.send_timeout(v, WAIT).map_err(|e| {
                    assert!(
                        !e.is_timeout(),
                        "send on {c} waited with room in the channel"
                    );
                    e.into_inner()
                });
                let want = ch.expect_send(v).map_err(|e| match e {
                    TrySendError::Full(v) | TrySendError::Disconnected(v) => v,
                });
                assert_eq!(got, want, "send on {c}");
            }
            Op::TryRecv(c) => {
                let Some(rx) = &chans[c].rx else { continue };
                let got = rx.try_recv();
                assert_eq!(got, chans[c].expect_recv(), "try_recv on {c}");
            }
            Op::Recv(c) => {
                let ch = &mut chans[c];
                let Some(rx) = &ch.rx else { continue };
                if !ch.recv_ready() {
                    continue;
                }
                let got = rx.recv_timeout(WAIT).map_err(|e| {
                    assert!(
                        !matches!(e, chan::RecvTimeoutError::Timeout),
                        "recv on {c} waited with a value ready"
                    );
                    TryRecvError::Disconnected
                });
                assert_eq!(got, ch.expect_recv(), "recv on {c}");
            }
            Op::SelectRecv => {
                let (Some(rx0), Some(rx1)) = (chans[0].rx.clone(), chans[1].rx.clone()) else {
                    continue;
                };
                let chosen = weft::select! {
                    recv(rx0) -> r => Some((0, r.map_err(|_| TryRecvError::Disconnected))),
                    recv(rx1) -> r => Some((1, r.map_err(|_| TryRecvError::Disconnected))),
                    default => None,
                };
                match chosen {
                    Some((c, got)) => {
                        assert!(
                            chans[c].recv_ready(),
                            "select chose {c}, which was not ready"
                        );
                        assert_eq!(got, chans[c].expect_recv(), "select recv on {c}");
                    }
                    None => assert!(
                        !chans[0].recv_ready() && !chans[1].recv_ready(),
                        "select took the default with an arm ready"
                    ),
                }
            }
            Op::SelectSendOrRecv => {
                let (Some(tx0), Some(rx1)) = (chans[0].tx.clone(), chans[1].rx.clone()) else {
                    continue;
                };
                // A send arm is ready when there is room, or when the channel is
                // disconnected (it then completes with the value handed back).
                let send_ready = chans[0].rx.is_none() || !chans[0].full();
                let chosen = weft::select! {
                    send(tx0, v) -> r => Some((0, r.map_err(|e| e.0).err())),
                    recv(rx1) -> r => Some((1, r.ok())),
                    default => None,
                };
                match chosen {
                    Some((0, handed_back)) => {
                        assert!(send_ready, "select sent on a full channel");
                        let want = chans[0].expect_send(v).err().map(|e| match e {
                            TrySendError::Full(v) | TrySendError::Disconnected(v) => v,
                        });
                        assert_eq!(handed_back, want, "select send");
                    }
                    Some((_, got)) => {
                        assert!(
                            chans[1].recv_ready(),
                            "select received from an empty channel"
                        );
                        assert_eq!(got, chans[1].expect_recv().ok(), "select recv on 1");
                    }
                    None => assert!(
                        !send_ready && !chans[1].recv_ready(),
                        "select took the default with an arm ready"
                    ),
                }
            }
            Op::DropSender(c) => chans[c].tx = None,
            Op::DropReceiver(c) => {
                // Buffered values are dropped with the last receiver.
                if chans[c].rx.take().is_some() {
                    chans[c].queue.clear();
                }
            }
        }
        for ch in &chans {
            ch.check_len();
        }
    }
    // Whatever is still buffered comes out, in order, then disconnection.
    for ch in &mut chans {
        ch.tx = None;
        if let Some(rx) = &ch.rx {
            let rest: Vec<u32> = rx.try_iter().collect();
            assert_eq!(rest, ch.queue.iter().copied().collect::<Vec<_>>());
            assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256 * std::env::var("WEFT_STRESS").ok().and_then(|s| s.parse().ok()).unwrap_or(1u32),
        ..ProptestConfig::default()
    })]

    #[test]
    fn channels_and_select_follow_the_sequential_model(
        cap in 1usize..4,
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        run(cap, ops);
    }

    /// The same sequences inside a green thread, where waits park instead of blocking.
    #[test]
    fn the_model_holds_in_a_green_thread(
        cap in 1usize..4,
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        weft::run(move || run(cap, ops));
    }
}
