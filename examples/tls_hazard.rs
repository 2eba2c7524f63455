//! The evidence behind weft's sticky rule (see asm-notes/thread-locals.md).
//!
//! Each function touches a thread-local, suspends, and touches it again; `main` resumes it on
//! a second OS thread in between, as migrating a started green thread would.
//!
//! * `hazard` — a const `Cell`: LLVM addresses it `%fs:offset` at each use, so it happens to
//!   be right (counter 1 and 1).
//! * `hazard_lazy` — a lazily initialised `RefCell<Vec>`: LLVM keeps its address in `rbx`
//!   across the switch, so the second push lands in the FIRST thread's vector.
//! * `address_accessor` — an `#[inline(never)]` accessor that returns the address is not
//!   enough: LLVM infers it reads no memory and reuses the first call's result.
//! * `weft_style` — the whole access inside one non-inlined function that loads from the
//!   thread-local: nothing TLS-derived crosses the switch. This is how weft reads its own.
//!
//! Running it resumes a coroutine on a second OS thread to show the effect (this is exactly
//! what weft forbids for non-migratable green threads; corosensei makes it possible only
//! through `unsafe`).

use std::cell::{Cell, RefCell};

use corosensei::{Coroutine, Yielder};

thread_local! {
    static COUNTER: Cell<u64> = const { Cell::new(0) };
    // Lazily initialised with a destructor, as most real thread-locals are.
    #[allow(clippy::missing_const_for_thread_local)] // lazy on purpose: that is the hazard
    static LOG: RefCell<Vec<&'static str>> = RefCell::new(Vec::new());
}

#[inline(never)]
pub fn hazard_lazy(yielder: &Yielder<(), ()>) {
    LOG.with(|log| log.borrow_mut().push("before"));
    yielder.suspend(());
    LOG.with(|log| log.borrow_mut().push("after"));
}

#[inline(never)]
pub fn hazard(yielder: &Yielder<(), ()>) {
    COUNTER.with(|c| c.set(c.get() + 1));
    yielder.suspend(());
    COUNTER.with(|c| c.set(c.get() + 1));
}

#[inline(never)]
fn counter_address() -> &'static Cell<u64> {
    COUNTER.with(|c| {
        // SAFETY: the reference is used only before the next switch by the caller below.
        unsafe { &*(c as *const Cell<u64>) }
    })
}

#[inline(never)]
pub fn address_accessor(yielder: &Yielder<(), ()>) {
    let c = counter_address();
    c.set(c.get() + 1);
    yielder.suspend(());
    let c = counter_address();
    c.set(c.get() + 1);
}

#[inline(never)]
fn bump_counter() {
    COUNTER.with(|c| c.set(c.get() + 1));
}

#[inline(never)]
pub fn weft_style(yielder: &Yielder<(), ()>) {
    bump_counter();
    yielder.suspend(());
    bump_counter();
}

struct SendAnyway<T>(T);
// SAFETY: deliberately wrong for this demonstration: the coroutine below is moved to another
// thread after it started, which is the migration weft forbids by default.
unsafe impl<T> Send for SendAnyway<T> {}

fn run(name: &str, body: fn(&Yielder<(), ()>)) {
    let mut coroutine = Coroutine::new(move |y: &Yielder<(), ()>, ()| body(y));
    coroutine.resume(()); // first bump on the main thread, then suspended
    let moved = SendAnyway(coroutine);
    let other = std::thread::spawn(move || {
        let mut moved = moved;
        LOG.with(|_| ()); // this thread's LOG is initialised, as it would be on a busy worker
        moved.0.resume(()); // second bump, now on another OS thread
        (COUNTER.with(|c| c.get()), LOG.with(|l| l.borrow().len()))
    })
    .join()
    .unwrap();
    let main = (COUNTER.with(|c| c.replace(0)), LOG.with(|l| l.take().len()));
    println!(
        "{name:>16}: main thread counter={} log={}, other thread counter={} log={}",
        main.0, main.1, other.0, other.1
    );
}

fn main() {
    run("hazard", hazard);
    run("hazard_lazy", hazard_lazy);
    run("address_accessor", address_accessor);
    run("weft_style", weft_style);
}
