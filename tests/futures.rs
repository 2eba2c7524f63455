//! Futures on green threads: `weft::block_on`, and `JoinHandle` as a `Future`.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use common::Ticker;

/// A future completed from outside: by another thread, after a delay.
#[derive(Default)]
struct Slot {
    value: Option<u32>,
    waker: Option<Waker>,
}

struct Reply(Arc<Mutex<Slot>>);

impl Future for Reply {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        let mut slot = self.0.lock().unwrap();
        match slot.value.take() {
            Some(value) => Poll::Ready(value),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

fn complete_later(slot: Arc<Mutex<Slot>>, value: u32, after: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(after);
        let mut slot = slot.lock().unwrap();
        slot.value = Some(value);
        if let Some(waker) = slot.waker.take() {
            waker.wake();
        }
    });
}

#[test]
fn block_on_parks_the_green_thread_not_the_worker() {
    common::workers(1);
    let (value, ticks) = common::watchdog(60, || {
        weft::run(|| {
            let ticker = Ticker::start();
            ticker.during(|| {
                let slot = Arc::new(Mutex::new(Slot::default()));
                complete_later(slot.clone(), 7, Duration::from_millis(200));
                weft::block_on(Reply(slot))
            })
        })
    });
    assert_eq!(value, 7);
    assert!(
        ticks >= 20,
        "the ticker ticked {ticks} times while block_on waited"
    );
}

#[test]
fn block_on_works_on_a_plain_thread_and_is_cancellable() {
    common::workers(1);
    let slot = Arc::new(Mutex::new(Slot::default()));
    complete_later(slot.clone(), 9, Duration::from_millis(20));
    assert_eq!(weft::block_on(Reply(slot)), 9);
    // A future that never completes, cancelled.
    let stuck = weft::spawn(|| weft::block_on(std::future::pending::<()>()));
    std::thread::sleep(Duration::from_millis(10));
    stuck.cancel();
    assert!(stuck.join().unwrap_err().is::<weft::Cancelled>());
}

/// A minimal executor: polls on this thread, parks it while pending.
fn minimal_block_on<F: Future>(future: F) -> F::Output {
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park(),
        }
    }
}

#[test]
fn a_join_handle_is_a_future_any_executor_can_await() {
    common::workers(2);
    let handle = weft::spawn(|| {
        weft::sleep(Duration::from_millis(50));
        "done"
    });
    assert_eq!(minimal_block_on(handle).unwrap(), "done");
    // Finished before the first poll.
    let quick = weft::spawn(|| 5);
    while !quick.is_finished() {
        std::thread::yield_now();
    }
    assert_eq!(minimal_block_on(quick).unwrap(), 5);
    // A panic arrives as Err, and async code can await several.
    let failing = weft::spawn(|| -> u32 { panic!("inside") });
    assert!(minimal_block_on(failing).is_err());
    let many: Vec<_> = (0..20u32).map(|i| weft::spawn(move || i)).collect();
    let sum: u32 = minimal_block_on(async move {
        let mut sum = 0;
        for h in many {
            sum += h.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, (0..20).sum());
}

#[test]
fn a_panicking_waker_does_not_take_the_process_down() {
    struct Panics;
    impl Wake for Panics {
        fn wake(self: Arc<Self>) {
            panic!("this executor's waker panics");
        }
    }
    let (go_tx, go_rx) = weft::chan::bounded::<()>(0);
    let mut handle = weft::spawn(move || {
        go_rx.recv().unwrap();
        7
    });
    let waker = Waker::from(Arc::new(Panics));
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut handle).poll(&mut cx).is_pending());
    // The green thread completes and wakes the panicking waker: a user's panic, reported
    // by the panic hook, never an abort.
    go_tx.send(()).unwrap();
    let still_alive = weft::spawn(|| 6 * 7).join().unwrap();
    assert_eq!(still_alive, 42);
    assert_eq!(minimal_block_on(handle).unwrap(), 7);
}
