//! Coroutine-local storage: [`coroutine_local!`](crate::coroutine_local) and [`LocalKey`].
//!
//! `thread_local!` is per OS thread, and a worker runs many green threads, so its values are
//! shared by all of them. A `coroutine_local!` value belongs to one green thread: created
//! on first use, dropped when the green thread ends (on that green thread, so a destructor
//! may block as any code there may). On a plain thread it is per thread, dropped at thread
//! exit, like `thread_local!`.
//!
//! # Layout
//!
//! Each key gets a process-wide index the first time it is used. A green thread keeps a
//! `Vec<Option<Box<dyn Any>>>` in its task, a plain thread in a thread-local; a value sits
//! boxed at its key's index, so its address stays put while the vector grows. Only the
//! green thread (or thread) itself ever touches its vector.
//!
//! # Teardown
//!
//! When a green thread ends, its values are dropped on it, in rounds: a destructor that
//! uses a key creates a fresh value, which the next round drops. After 16 rounds the green
//! thread's storage is closed: using a key whose value is gone then panics (as std's
//! thread-locals do after their destruction), and the last round's values are dropped. So
//! nothing is ever left behind to be dropped on another OS thread.

use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::runtime::scheduler::context;

/// The values of one green thread or plain thread, by key index.
use crate::runtime::scheduler::task::LocalValues as Values;

thread_local! {
    static PLAIN: UnsafeCell<Values> = const { UnsafeCell::new(Values::new()) };
}

static NEXT_INDEX: AtomicUsize = AtomicUsize::new(0);

/// Declares coroutine-local statics, as `thread_local!` declares thread-locals:
///
/// ```
/// use std::cell::{Cell, RefCell};
///
/// weft::coroutine_local! {
///     static REQUEST_ID: Cell<u64> = Cell::new(0);
///     pub static TRAIL: RefCell<Vec<&'static str>> = RefCell::new(Vec::new());
/// }
///
/// let ids: Vec<u64> = (1..=3u64)
///     .map(|id| weft::spawn(move || {
///         REQUEST_ID.set(id);
///         weft::yield_now(); // the others set theirs meanwhile
///         TRAIL.with_borrow_mut(|t| t.push("handled"));
///         REQUEST_ID.get()
///     }))
///     .collect::<Vec<_>>()
///     .into_iter()
///     .map(|h| h.join().unwrap())
///     .collect();
/// assert_eq!(ids, [1, 2, 3]);
/// ```
#[macro_export]
macro_rules! coroutine_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $crate::coroutine_local!($(#[$attr])* $vis static $name: $t = $init);
        $crate::coroutine_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $(#[$attr])*
        $vis static $name: $crate::LocalKey<$t> = {
            fn __init() -> $t {
                $init
            }
            $crate::LocalKey::new(__init)
        };
    };
}

/// A coroutine-local key, made by [`coroutine_local!`](crate::coroutine_local).
pub struct LocalKey<T: 'static> {
    init: fn() -> T,
    /// The key's index plus one, or 0 before first use.
    index: AtomicUsize,
}

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> LocalKey<T> {
        LocalKey {
            init,
            index: AtomicUsize::new(0),
        }
    }

    fn index(&self) -> usize {
        // Relaxed: the index is a plain number; a race gives every thread the same winner.
        match self.index.load(Relaxed) {
            0 => {
                let fresh = NEXT_INDEX.fetch_add(1, Relaxed) + 1;
                match self.index.compare_exchange(0, fresh, Relaxed, Relaxed) {
                    Ok(_) => fresh - 1,
                    Err(winner) => winner - 1,
                }
            }
            set => set - 1,
        }
    }

    /// Calls `f` with this green thread's value (this thread's, on a plain thread), made
    /// with the key's initialiser on first use.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let value = self.get_or_init();
        // SAFETY: the value is boxed in the current green thread's (or thread's) vector,
        // which nothing but this green thread touches and which drops values only when it
        // ends; the box's address does not change when the vector grows.
        f(unsafe { &*value })
    }

    fn get_or_init(&'static self) -> *const T {
        let index = self.index();
        let values = values();
        // SAFETY: `values` belongs to the caller alone (see `values`); no reference into it
        // is held across the initialiser, which may use other keys.
        unsafe {
            if let Some(Some(value)) = (&*values).slots.get(index) {
                return downcast::<T>(value);
            }
            if (*values).closed {
                panic!(
                    "weft: a coroutine-local value was used after its green thread's teardown \
                     (destructors kept creating coroutine-local values for {TEARDOWN_ROUNDS} \
                     rounds)"
                );
            }
        }
        let fresh: Box<dyn Any> = Box::new((self.init)());
        // SAFETY: as above.
        unsafe {
            let values = &mut (*values).slots;
            if values.len() <= index {
                values.resize_with(index + 1, || None);
            }
            // An initialiser that used this same key already stored a value: keep that one.
            downcast::<T>(values[index].get_or_insert(fresh))
        }
    }
}

fn downcast<T: 'static>(value: &Box<dyn Any>) -> *const T {
    value
        .downcast_ref::<T>()
        .expect("weft: a coroutine-local slot holds another key's type")
}

/// The caller's vector: its green thread's, or its plain thread's.
fn values() -> *mut Values {
    let task = context::current_task();
    // SAFETY: a non-null current task is alive while it runs, and we are it; its `locals`
    // are touched only by the task itself.
    match unsafe { task.as_ref() } {
        Some(task) => task.locals.get(),
        None => PLAIN.with(UnsafeCell::get),
    }
}

/// How many times teardown drops the values that destructors keep creating before it stops
/// allowing new ones.
const TEARDOWN_ROUNDS: usize = 16;

/// Drops the calling green thread's values, including any that a destructor creates on the
/// way, for up to [`TEARDOWN_ROUNDS`] rounds. A destructor that panics (the panic hook has
/// reported it) ends only its own round's drop: the next round goes on.
pub(crate) fn drop_all() {
    drop_rounds(values(), TEARDOWN_ROUNDS);
}

/// Up to `rounds` times: takes the values out of `values` (the caller's) and drops them;
/// stops at the first round that finds none. Inlined for the usual case, a green thread that
/// never used a coroutine-local: one load, no call (measured: the out-of-line version saved
/// and restored six registers around its catch, ~60 instructions per spawn for three empty
/// checks).
#[inline]
fn drop_rounds(values: *mut Values, rounds: usize) {
    // SAFETY: the caller's own vector (see `values`).
    if unsafe { (*values).slots.is_empty() } {
        return;
    }
    drop_rounds_slow(values, rounds);
}

#[cold]
#[inline(never)]
fn drop_rounds_slow(values: *mut Values, rounds: usize) {
    for _ in 0..rounds {
        // SAFETY: the caller's own vector (see `values`); taken out before anything is
        // dropped, so a destructor that uses a key starts a fresh vector.
        let slots = unsafe { &mut (*values).slots };
        if slots.is_empty() {
            return;
        }
        let taken = std::mem::take(slots);
        // A panic while dropping one value still drops the rest of the slice; its payload
        // is forgotten, not dropped, as a payload's own destructor may panic too.
        if let Err(payload) =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(taken)))
        {
            std::mem::forget(payload);
        }
    }
}

/// The green thread's last teardown: drops its values as [`drop_all`] does, then refuses
/// new ones (using a key whose value is gone panics, as std's thread-locals do after their
/// destruction) and drops what the last round created. Nothing is left in the task, so no
/// value is dropped later on another OS thread, where its last `Arc<Task>` happens to go:
/// that would be unsound for `!Send` values. Panic-safe: every round is caught.
pub(crate) fn close() {
    let values = values();
    drop_rounds(values, TEARDOWN_ROUNDS);
    // SAFETY: the caller's own vector, as in `drop_rounds`.
    unsafe { (*values).closed = true };
    // Destructors run here can create nothing new, so this empties it.
    drop_rounds(values, 1);
}

impl<T: 'static> LocalKey<Cell<T>> {
    /// Sets the value.
    pub fn set(&'static self, value: T) {
        self.with(|cell| cell.set(value));
    }

    /// A copy of the value.
    pub fn get(&'static self) -> T
    where
        T: Copy,
    {
        self.with(Cell::get)
    }

    /// Takes the value, leaving `Default::default()`.
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(Cell::take)
    }

    /// Replaces the value, returning the old one.
    pub fn replace(&'static self, value: T) -> T {
        self.with(|cell| cell.replace(value))
    }
}

impl<T: 'static> LocalKey<RefCell<T>> {
    /// Calls `f` with a shared borrow of the value.
    pub fn with_borrow<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        self.with(|cell| f(&cell.borrow()))
    }

    /// Calls `f` with a mutable borrow of the value.
    pub fn with_borrow_mut<R>(&'static self, f: impl FnOnce(&mut T) -> R) -> R {
        self.with(|cell| f(&mut cell.borrow_mut()))
    }

    /// Sets the value.
    pub fn set(&'static self, value: T) {
        self.with(|cell| *cell.borrow_mut() = value);
    }

    /// Takes the value, leaving `Default::default()`.
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(RefCell::take)
    }

    /// Replaces the value, returning the old one.
    pub fn replace(&'static self, value: T) -> T {
        self.with(|cell| cell.replace(value))
    }
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKey").finish_non_exhaustive()
    }
}
