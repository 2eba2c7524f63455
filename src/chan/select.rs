//! The machinery behind [`select!`](crate::select): waiting on several channel operations
//! and completing exactly one.
//!
//! # Protocol
//!
//! 1. *Try pass.* In a random order (a fresh uniform shuffle per select, so each ready arm
//!    is equally likely to win), try each operation without waiting; the first that
//!    completes wins. This pass is the only place a select completes an operation itself.
//! 2. Unless the select may wait, report that nothing was ready.
//! 3. *Register pass.* Queue one wait cell (`crate::runtime::wait::Waiter`) on every arm's channel,
//!    the arm's index as its token, in the same order. Registering does not complete
//!    anything: if an arm looks ready
//!    under its channel's lock (a message arrived since the try pass), stop registering and
//!    abort the wait instead.
//! 4. *Wait* until a waker claims the waiter (it completed that arm's operation: the value is
//!    in the arm's slot, or was taken from it), or until the select's deadline or a timer
//!    arm's due time passes.
//! 5. Unregister from every channel. If the wait was claimed, the claiming arm wins.
//!    Otherwise (aborted: a ready hint, a due timer, or the deadline) go back to step 1;
//!    after the deadline, step 1 runs once more and then the select reports a timeout. A
//!    wait given up for a cancel or a `timeout` boundary unregisters every arm inside the
//!    blocking point's withdraw step, before it unwinds (see `crate::runtime::blocking_point`); a
//!    claimed wait is never given up.
//!
//! Completing operations only in the try pass, or by a waker that won the claim, is what
//! keeps a select from completing two arms: a select never has to take back an operation.
//! A stale ready hint (a queued party that was claimed elsewhere) is dropped by the next try
//! pass, whose claim on it fails, so the retry loop ends.

use std::fmt;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use super::{Flavor, Receiver, RecvError, SendError, Sender, Stuck, TryRecvError};
use crate::runtime::blocking_point::wait_site;
use crate::runtime::wait::{self, Waiter, MAX_TOKEN};

/// How long a select may wait.
#[derive(Debug, Clone, Copy)]
pub enum Timeout {
    /// Until an arm completes.
    Never,
    /// Not at all (`default => …`).
    Now,
    /// At most this long (`default(timeout) => …`).
    After(Duration),
}

/// One operation of a select.
trait Arm {
    /// Completes the operation if it can without waiting.
    fn try_complete(&mut self) -> bool;
    /// Queues `waiter` with `token`; `true` if the operation looks ready now.
    ///
    /// # Safety
    ///
    /// `self` and `waiter` stay put until [`Arm::unregister`] has run.
    unsafe fn register(&mut self, waiter: &Waiter, token: usize) -> bool;
    fn unregister(&mut self, waiter: &Waiter);
    /// A waker claimed the wait with this arm's token: settle the result from the slot.
    fn complete_claimed(&mut self);
    /// When the arm becomes ready on its own (a timer), if it does.
    fn due(&self) -> Option<Instant>;
}

/// A type-erased arm, as [`select`] takes it.
pub struct ArmRef<'a>(&'a mut dyn Arm);

impl fmt::Debug for ArmRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ArmRef")
    }
}

/// A `recv(rx) -> res` arm.
pub struct RecvArm<'a, T> {
    rx: &'a Receiver<T>,
    slot: Option<T>,
    result: Option<Result<T, RecvError>>,
}

/// A `send(tx, value) -> res` arm. The value is moved in before the select starts and is
/// dropped if another arm wins.
pub struct SendArm<'a, T> {
    tx: &'a Sender<T>,
    slot: Option<T>,
    result: Option<Result<(), SendError<T>>>,
}

/// Builds a receive arm.
pub fn recv<T>(rx: &Receiver<T>) -> RecvArm<'_, T> {
    RecvArm {
        rx,
        slot: None,
        result: None,
    }
}

/// Builds a send arm.
pub fn send<T>(tx: &Sender<T>, value: T) -> SendArm<'_, T> {
    SendArm {
        tx,
        slot: Some(value),
        result: None,
    }
}

impl<'a, T> RecvArm<'a, T> {
    /// The arm as [`select`] takes it.
    pub fn as_arm(&mut self) -> ArmRef<'_> {
        ArmRef(self)
    }

    /// The outcome, if this arm won.
    pub fn into_result(self) -> Option<Result<T, RecvError>> {
        self.result
    }
}

impl<'a, T> SendArm<'a, T> {
    /// The arm as [`select`] takes it.
    pub fn as_arm(&mut self) -> ArmRef<'_> {
        ArmRef(self)
    }

    /// The outcome, if this arm won.
    pub fn into_result(self) -> Option<Result<(), SendError<T>>> {
        self.result
    }
}

impl<T> fmt::Debug for RecvArm<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvArm").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for SendArm<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendArm").finish_non_exhaustive()
    }
}

impl<T> Arm for RecvArm<'_, T> {
    fn try_complete(&mut self) -> bool {
        match self.rx.try_recv_now() {
            Ok(value) => self.result = Some(Ok(value)),
            Err(TryRecvError::Disconnected) => self.result = Some(Err(RecvError)),
            Err(TryRecvError::Empty) => return false,
        }
        true
    }

    unsafe fn register(&mut self, waiter: &Waiter, token: usize) -> bool {
        match &self.rx.flavor {
            // SAFETY: the caller keeps `self` (and so the slot) and `waiter` in place until
            // `unregister`.
            Flavor::Chan(chan) => unsafe {
                chan.register(false, NonNull::from(&mut self.slot), waiter, token)
            },
            Flavor::Timer(timer, _) => timer.deadline().is_some_and(|at| Instant::now() >= at),
        }
    }

    fn unregister(&mut self, waiter: &Waiter) {
        if let Flavor::Chan(chan) = &self.rx.flavor {
            chan.unregister(waiter);
        }
    }

    fn complete_claimed(&mut self) {
        self.result = Some(match self.slot.take() {
            Some(value) => Ok(value),
            // Woken by disconnection. Receivers wait only while the buffer is empty, so this
            // finds the disconnection (or a message that raced in before it).
            None => self.rx.try_recv_now().map_err(|err| {
                debug_assert_eq!(err, TryRecvError::Disconnected);
                RecvError
            }),
        });
    }

    fn due(&self) -> Option<Instant> {
        match &self.rx.flavor {
            Flavor::Chan(_) => None,
            Flavor::Timer(timer, _) => timer.deadline(),
        }
    }
}

impl<T> Arm for SendArm<'_, T> {
    fn try_complete(&mut self) -> bool {
        let value = self
            .slot
            .take()
            .expect("a send arm holds its value until it wins");
        match self.tx.chan.try_send(value) {
            Ok(claimed) => {
                drop(claimed);
                self.result = Some(Ok(()));
            }
            Err((value, Stuck::Disconnected)) => self.result = Some(Err(SendError(value))),
            Err((value, Stuck::Wait)) => {
                self.slot = Some(value);
                return false;
            }
        }
        true
    }

    unsafe fn register(&mut self, waiter: &Waiter, token: usize) -> bool {
        // SAFETY: as for `RecvArm::register`.
        unsafe {
            self.tx
                .chan
                .register(true, NonNull::from(&mut self.slot), waiter, token)
        }
    }

    fn unregister(&mut self, waiter: &Waiter) {
        self.tx.chan.unregister(waiter);
    }

    fn complete_claimed(&mut self) {
        // A receiver took the value, or the receivers went away and left it.
        self.result = Some(match self.slot.take() {
            None => Ok(()),
            Some(value) => Err(SendError(value)),
        });
    }

    fn due(&self) -> Option<Instant> {
        None
    }
}

/// Selects with at most this many arms keep their visiting order on the stack.
const INLINE_ARMS: usize = 32;

/// Runs the protocol in the module docs over `arms`; the winning arm records its result.
/// Returns the winner's index, or `None` if the timeout passed (or, for [`Timeout::Now`],
/// nothing was ready).
#[track_caller]
pub fn select(arms: &mut [ArmRef<'_>], timeout: Timeout) -> Option<usize> {
    assert!(arms.len() <= MAX_TOKEN, "too many select arms");
    crate::runtime::coop::spend();
    let deadline = match timeout {
        Timeout::Never => None,
        Timeout::Now => Some(Instant::now()),
        Timeout::After(duration) => wait::deadline_after(duration),
    };
    // The visiting order, on the stack for up to `INLINE_ARMS` arms: a select allocates
    // nothing (a `Vec::new()` that stays empty does not allocate).
    let mut inline = [0usize; INLINE_ARMS];
    let mut spilled = Vec::new();
    let order: &mut [usize] = if arms.len() <= INLINE_ARMS {
        &mut inline[..arms.len()]
    } else {
        spilled.resize(arms.len(), 0);
        &mut spilled
    };
    for (index, slot) in order.iter_mut().enumerate() {
        *slot = index;
    }
    shuffle(order);
    // Set when a wait ended because the select's own deadline passed.
    let mut timed_out = false;
    loop {
        // Step 1: the try pass.
        for &index in order.iter() {
            if arms[index].0.try_complete() {
                return Some(index);
            }
        }
        // Step 2.
        if timed_out || deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return None;
        }
        // Step 3: the register pass.
        let waiter = Waiter::new();
        let site = wait_site!(crate::WaitReason::Select);
        let mut registered = 0;
        let mut looks_ready = false;
        for &index in order.iter() {
            registered += 1;
            // SAFETY: the arms are borrowed for this whole call and `waiter` lives in this
            // frame; both stay put until every registration is undone, by the withdraw step
            // of the wait or by step 5.
            if unsafe { arms[index].0.register(&waiter, index) } {
                looks_ready = true;
                break;
            }
        }
        // Step 4. Giving up (a deadline, a cancel or a `timeout` boundary, which unwinds
        // from inside the wait) unregisters every arm first; a claimed wait completes.
        let due = order.iter().filter_map(|&index| arms[index].0.due()).min();
        let mut unregister_all = || {
            for &index in &order[..registered] {
                arms[index].0.unregister(&waiter);
            }
        };
        let outcome = if looks_ready {
            if waiter.abort() {
                unregister_all();
                None
            } else {
                waiter.wait(site, None, unregister_all)
            }
        } else {
            let wake_at = match (deadline, due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let outcome = waiter.wait(site, wake_at, unregister_all);
            // An aborted wait means `wake_at` passed; if that was the deadline, time is up.
            timed_out = outcome.is_none() && deadline.is_some() && wake_at == deadline;
            outcome
        };
        // Step 5: a completed wait still has refs in the arms that did not win.
        if let Some(index) = outcome {
            for &other in &order[..registered] {
                arms[other].0.unregister(&waiter);
            }
            arms[index].0.complete_claimed();
            return Some(index);
        }
    }
}

/// Loom needs every execution of a model to be deterministic: a fixed order.
#[cfg(loom)]
fn random_below(_bound: usize) -> usize {
    0
}

/// Fisher–Yates with a per-thread xorshift generator: a uniform permutation, so every ready
/// arm has the same chance to be tried first.
fn shuffle(order: &mut [usize]) {
    for i in (1..order.len()).rev() {
        let j = random_below(i + 1);
        order.swap(i, j);
    }
}

/// A uniform-enough number in `0..bound` (bound is tiny, so the modulo bias is negligible).
/// Never inlined, and the thread-local is touched only inside: its address never outlives
/// the call, so it cannot be carried across a switch (see `asm-notes/thread-locals.md`).
#[cfg(not(loom))]
#[inline(never)]
fn random_below(bound: usize) -> usize {
    use std::cell::Cell;

    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0) };
    }
    STATE.with(|state| {
        let mut x = state.get();
        if x == 0 {
            // Seed from the cell's address and the clock; any non-zero value works.
            let nanos = Instant::now().elapsed().as_nanos() as u64;
            x = (state as *const Cell<u64> as u64) ^ nanos ^ 0x9E37_79B9_7F4A_7C15;
            x |= 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        ((x >> 32) as usize) % bound
    })
}

/// Waits on several channel operations and runs the arm of the one that completes, like
/// Go's `select`.
///
/// ```text
/// weft::select! {
///     recv(rx) -> msg => …,            // msg: Result<T, RecvError>
///     send(tx, value) -> res => …,     // res: Result<(), SendError<T>>
///     default => …,                    // optional: run if nothing is ready now
/// }
/// ```
///
/// `default(timeout) => …` instead waits at most `timeout` before running its arm. Without a
/// `default` the select waits until an arm completes. When several arms are ready, each is
/// chosen with equal chance. A `send` arm's value is evaluated before the select starts and
/// dropped if another arm is chosen. Arm bodies may `break`, `continue` or `return` as in
/// any block. A disconnected channel counts as ready: its arm runs with the error.
///
/// # What it can wait on
///
/// * `recv` and `send` on weft's channels ([`unbounded`](crate::chan::unbounded),
///   [`bounded`](crate::chan::bounded), rendezvous `bounded(0)`), from any thread;
/// * timers as channels: [`after`](crate::chan::after) (once) and
///   [`tick`](crate::chan::tick) (periodically), including inline, as in
///   `recv(weft::chan::after(d)) -> _ => …`;
/// * a timeout, with `default(timeout)`.
///
/// Sockets, files, locks and other waits are not arms: wait on them in a green thread that
/// sends on a channel when done. An arm's result binds to a name or `_`
/// (`recv(rx) -> msg =>`, then `match msg` in the body); a pattern such as `Ok(v)` is a
/// compile error with that advice, since it could not match a disconnection. Like every
/// blocking call, a select is a cancellation point (see [`crate::JoinHandle::cancel`]).
///
/// ```
/// use std::time::Duration;
///
/// let (_tx, rx) = weft::chan::unbounded::<u32>();
/// let outcome = weft::select! {
///     recv(rx) -> _ => "message",
///     recv(weft::chan::after(Duration::from_millis(2))) -> _ => "timer",
/// };
/// assert_eq!(outcome, "timer");
/// ```
///
/// ```compile_fail
/// let (_tx, rx) = weft::chan::unbounded::<u32>();
/// weft::select! {
///     recv(rx) -> Ok(v) => drop(v), // bind a name and match on it instead
/// }
/// ```
///
/// ```
/// use std::time::Duration;
/// use weft::chan;
///
/// let (tx, rx) = chan::unbounded();
/// weft::go!(move || {
///     for i in 0..3 {
///         tx.send(i).unwrap();
///     }
/// });
/// let timeout = chan::after(Duration::from_secs(10));
/// let mut seen = Vec::new();
/// loop {
///     weft::select! {
///         recv(rx) -> msg => match msg {
///             Ok(value) => seen.push(value),
///             Err(_) => break, // every sender is gone and the buffer is drained
///         },
///         recv(timeout) -> _ => panic!("stuck"),
///     }
/// }
/// assert_eq!(seen, [0, 1, 2]);
/// ```
#[macro_export]
macro_rules! select {
    // Parsing: each step moves one arm into the accumulator, paired with an identifier made
    // in that step (so every arm gets its own hygienic variable). An arm is
    // `(ident (kind) (channel) (, value) (result binding) (body))`.
    (@parse [$($arms:tt)*] [$($default:tt)*]
        recv($rx:expr) -> $($rest:tt)*) => {
        $crate::select!(@result [$($arms)*] [$($default)*] (recv) ($rx) () $($rest)*)
    };
    (@parse [$($arms:tt)*] [$($default:tt)*]
        send($tx:expr, $value:expr) -> $($rest:tt)*) => {
        $crate::select!(@result [$($arms)*] [$($default)*] (send) ($tx) (, $value) $($rest)*)
    };
    // The result binds to a name (optionally `mut`) or `_`; then comes the body.
    (@result [$($arms:tt)*] [$($default:tt)*] ($kind:ident) ($chan:expr) ($($value:tt)*)
        _ => $($rest:tt)*) => {
        $crate::select!(@body [$($arms)*] [$($default)*] ($kind) ($chan) ($($value)*) (_)
            $($rest)*)
    };
    (@result [$($arms:tt)*] [$($default:tt)*] ($kind:ident) ($chan:expr) ($($value:tt)*)
        mut $res:ident => $($rest:tt)*) => {
        $crate::select!(@body [$($arms)*] [$($default)*] ($kind) ($chan) ($($value)*)
            (mut $res) $($rest)*)
    };
    (@result [$($arms:tt)*] [$($default:tt)*] ($kind:ident) ($chan:expr) ($($value:tt)*)
        $res:ident => $($rest:tt)*) => {
        $crate::select!(@body [$($arms)*] [$($default)*] ($kind) ($chan) ($($value)*) ($res)
            $($rest)*)
    };
    (@result [$($arms:tt)*] [$($default:tt)*] ($kind:ident) ($chan:expr) ($($value:tt)*)
        $($rest:tt)*) => {
        ::core::compile_error!(
            "select!: an arm's result binds to a name or `_`, as in \
             `recv(rx) -> msg => match msg { Ok(v) => ..., Err(_) => ... }`; a pattern such as \
             `Ok(v)` would not match every result (a disconnected channel gives `Err`)"
        )
    };
    (@body [$($arms:tt)*] [$($default:tt)*] ($kind:ident) ($chan:expr) ($($value:tt)*)
        ($($res:tt)*) $body:block $($rest:tt)*) => {
        $crate::select!(@parse
            [$($arms)* (arm ($kind) ($chan) ($($value)*) ($($res)*) ($body))] [$($default)*]
            $($rest)*)
    };
    (@body [$($arms:tt)*] [$($default:tt)*] ($kind:ident) ($chan:expr) ($($value:tt)*)
        ($($res:tt)*) $body:expr $(, $($rest:tt)*)?) => {
        $crate::select!(@parse
            [$($arms)* (arm ($kind) ($chan) ($($value)*) ($($res)*) ($body))] [$($default)*]
            $($($rest)*)?)
    };
    (@parse [$($arms:tt)*] []
        default => $body:block $($rest:tt)*) => {
        $crate::select!(@parse [$($arms)*]
            [($crate::chan::select::Timeout::Now) ($body)] $($rest)*)
    };
    (@parse [$($arms:tt)*] []
        default => $body:expr $(, $($rest:tt)*)?) => {
        $crate::select!(@parse [$($arms)*]
            [($crate::chan::select::Timeout::Now) ($body)] $($($rest)*)?)
    };
    (@parse [$($arms:tt)*] []
        default($timeout:expr) => $body:block $($rest:tt)*) => {
        $crate::select!(@parse [$($arms)*]
            [($crate::chan::select::Timeout::After($timeout)) ($body)] $($rest)*)
    };
    (@parse [$($arms:tt)*] []
        default($timeout:expr) => $body:expr $(, $($rest:tt)*)?) => {
        $crate::select!(@parse [$($arms)*]
            [($crate::chan::select::Timeout::After($timeout)) ($body)] $($($rest)*)?)
    };
    // A comma after a block body is optional.
    (@parse [$($arms:tt)*] [$($default:tt)*] , $($rest:tt)*) => {
        $crate::select!(@parse [$($arms)*] [$($default)*] $($rest)*)
    };
    // Parsed: no default.
    (@parse [$($arms:tt)*] []) => {
        $crate::select!(@emit [$($arms)*] ($crate::chan::select::Timeout::Never)
            (::core::unreachable!("select! returned without completing an arm")))
    };
    // Parsed: with a default arm.
    (@parse [$($arms:tt)*] [($timeout:expr) ($default:expr)]) => {
        $crate::select!(@emit [$($arms)*] ($timeout) ($default))
    };
    (@parse [$($arms:tt)*] [$($default:tt)*] $($unknown:tt)+) => {
        ::core::compile_error!(
            "select! arms are `recv(rx) -> res => body`, `send(tx, value) -> res => body`, \
             and at most one `default => body` or `default(timeout) => body`"
        )
    };
    (@emit [$(($arm:ident ($kind:ident) ($chan:expr) ($($value:tt)*) ($($res:tt)*)
        ($body:expr)))*] ($timeout:expr) ($default:expr)) => {{
        // `let x = &expr;` keeps a temporary channel (`recv(weft::chan::after(d))`) alive to
        // the end of the block; the arm then shadows the name.
        $(
            let $arm = &$chan;
            let mut $arm = $crate::chan::select::$kind($arm $($value)*);
        )*
        $crate::chan::select::select(&mut [$($arm.as_arm()),*], $timeout);
        // Taking the results ends the arms' borrows of the channels before any body runs.
        $( let $arm = $arm.into_result(); )*
        $crate::select!(@dispatch [$(($arm ($($res)*) ($body)))*] ($default))
    }};
    (@dispatch [] ($default:expr)) => {
        $default
    };
    (@dispatch [($arm:ident ($($res:tt)*) ($body:expr)) $($rest:tt)*] ($default:expr)) => {
        if let ::core::option::Option::Some(outcome) = $arm {
            let $($res)* = outcome;
            $body
        } else {
            $crate::select!(@dispatch [$($rest)*] ($default))
        }
    };
    ($($arms:tt)*) => {
        $crate::select!(@parse [] [] $($arms)*)
    };
}
