//! [`block_on`]: drive a future to completion on the current green thread (or thread).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::runtime::blocking_point;
use crate::runtime::park::Unparker;

/// Wakes whoever is blocked in `block_on`: a green thread is unparked (its wake goes through
/// its home worker), a plain thread too.
struct Unpark(Unparker);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to completion on the calling green thread and returns its output. While it
/// is `Pending` the green thread parks, and the future's `Waker` unparks it from any thread;
/// the worker runs other green threads meanwhile. On a plain thread it parks the thread.
///
/// This lets synchronous code use the futures that need no particular reactor: channels of
/// the `futures` crate or `tokio::sync`, async mutexes, hand-written futures, and
/// [`JoinHandle`](crate::JoinHandle). Futures that need tokio's (or another runtime's)
/// reactor or timer — `tokio::net`, `tokio::time::sleep` — do not work here: nothing drives
/// that reactor, so they either panic ("no reactor running") or never complete. Use
/// `weft::net` and `weft::sleep` instead, or run such futures on their own runtime.
///
/// It is a blocking point: a cancel or a passed `timeout` unwinds from it (the future is
/// dropped on the way).
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use std::sync::{Arc, Mutex};
/// use std::task::{Context, Poll, Waker};
///
/// // A hand-written future, completed from a plain thread.
/// #[derive(Default)]
/// struct Shared { value: Option<u32>, waker: Option<Waker> }
/// struct Reply(Arc<Mutex<Shared>>);
/// impl Future for Reply {
///     type Output = u32;
///     fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
///         let mut shared = self.0.lock().unwrap();
///         match shared.value.take() {
///             Some(v) => Poll::Ready(v),
///             None => { shared.waker = Some(cx.waker().clone()); Poll::Pending }
///         }
///     }
/// }
///
/// let shared = Arc::new(Mutex::new(Shared::default()));
/// let answer = weft::run({
///     let shared = shared.clone();
///     move || {
///         let completer = shared.clone();
///         std::thread::spawn(move || {
///             let mut s = completer.lock().unwrap();
///             s.value = Some(42);
///             if let Some(w) = s.waker.take() { w.wake(); }
///         });
///         weft::block_on(Reply(shared))
///     }
/// });
/// assert_eq!(answer, 42);
/// ```
#[track_caller]
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(Unpark(Unparker::current())));
    let mut cx = Context::from_waker(&waker);
    // The waker is a counted `Unparker`, never this stack: an interrupt may unwind at any
    // time (the future is dropped on the way, as any value on the stack).
    let mut ready = blocking_point::Until(|| match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    });
    let site = blocking_point::wait_site!(crate::WaitReason::BlockOn);
    match blocking_point::block(&mut ready, site, None, blocking_point::OnInterrupt::Unwind) {
        blocking_point::Ended::Done(output) => output,
        blocking_point::Ended::TimedOut => unreachable!("an untimed wait does not time out"),
    }
}
