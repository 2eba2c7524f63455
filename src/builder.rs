//! Spawning: [`spawn`], the [`go!`](crate::go) macro and [`Builder`].

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use crate::coroutine::Coroutine;
use crate::join::{JoinHandle, JoinInner, Packet};
use crate::runtime::scheduler::{self, SpawnOptions};
use crate::scope::{Scope, ScopeData, ScopedJoinHandle};

/// Spawns a green thread running `f` and returns a handle to join it.
///
/// Works from green threads and plain threads alike; the first spawn starts the runtime.
/// The green thread may start on any worker, but once started it stays on that worker (see
/// the crate docs), which is why `f` needs only `Send`, not more.
///
/// # Panics
/// If a stack cannot be had (for example `vm.max_map_count` is exhausted); the message names
/// the limit. [`Builder::spawn`] returns that error instead.
///
/// ```
/// let handles: Vec<_> = (0..10u64).map(|i| weft::spawn(move || i * i)).collect();
/// let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
/// assert_eq!(sum, 285);
/// ```
///
/// The closure must be `Send`, as for `std::thread::spawn`:
///
/// ```compile_fail
/// let rc = std::rc::Rc::new(5);
/// weft::spawn(move || *rc + 1);
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new().spawn(f).unwrap_or_else(|e| panic!("{e}"))
}

/// Configures one green thread before spawning it: name, stack size, migration.
///
/// ```
/// let handle = weft::Builder::new()
///     .name("resolver")
///     .stack_size(64 * 1024)
///     .spawn(|| 1 + 1)
///     .expect("spawn failed");
/// assert_eq!(handle.coroutine().name(), Some("resolver"));
/// assert_eq!(handle.join().unwrap(), 2);
/// ```
#[derive(Debug, Default)]
#[must_use = "a Builder does nothing until `spawn` is called"]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
    migratable: bool,
}

impl Builder {
    /// A builder with the runtime's defaults.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the green thread; the name shows in [`Coroutine::name`] and in the stack
    /// overflow message.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Usable stack size in bytes. Rounded up to the next power of two, and to at least
    /// [`MIN_STACK_SIZE`](crate::MIN_STACK_SIZE) (64 KiB, enough for a panic with a
    /// backtrace to reach `join`); above 1 GiB, [`spawn`](Builder::spawn) fails with `InvalidInput`. Pages are
    /// committed only when touched, so a large stack costs address space, not memory.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Lets this green thread move to another worker every time it resumes, not only before
    /// it first runs. Any idle worker can then steal it, which spreads CPU-bound work better.
    ///
    /// # Safety
    ///
    /// The caller promises that the green thread never holds a thread-local or thread-affine
    /// value across a call that may block or yield (any weft call that can park: `yield_now`,
    /// `park`, `join`, blocking IO, channel and lock waits). That rules out, across such a
    /// call:
    ///
    /// * references into `thread_local!` storage, including ones cached by the compiler:
    ///   LLVM may keep a thread-local's address in a register across the call and, after the
    ///   green thread moved, write the old OS thread's variable;
    /// * `!Send` values tied to the OS thread: `Rc`s shared with thread-locals, guards of
    ///   re-entrant or OS-thread-owned locks (a `std::sync::MutexGuard` must be released on
    ///   the thread that locked it), raw handles whose owner is the thread.
    ///
    /// Breaking this is undefined behaviour even though nothing fails to compile.
    pub unsafe fn migratable(mut self) -> Builder {
        self.migratable = true;
        self
    }

    /// Spawns the green thread. Fails if a stack cannot be had (the error names the limit,
    /// e.g. `vm.max_map_count`) or the stack size is invalid.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // SAFETY: F and T are 'static, so nothing they borrow can end before the green thread.
        Ok(JoinHandle(unsafe { self.spawn_unchecked(f, None)? }))
    }

    /// Spawns a green thread in `scope` that may borrow from outside it; see [`crate::scope`].
    #[track_caller]
    pub fn spawn_scoped<'scope, 'env, F, T>(
        self,
        scope: &'scope Scope<'scope, 'env>,
        f: F,
    ) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        // SAFETY: `scope` does not return before every green thread spawned in it has
        // finished and dropped its packet, so borrows for 'scope outlive the green thread.
        Ok(ScopedJoinHandle(unsafe {
            self.spawn_unchecked(f, Some(scope.data().clone()))?
        }))
    }

    /// # Safety
    /// Whatever `f` borrows, and `T`, must outlive the green thread.
    #[track_caller]
    unsafe fn spawn_unchecked<'scope, F, T>(
        self,
        f: F,
        scope: Option<Arc<ScopeData>>,
    ) -> io::Result<JoinInner<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        if let Some(scope) = &scope {
            // Balanced by the packet's drop, which happens even if the spawn fails below.
            scope.increment_running();
        }
        let packet_scope = scope.clone();
        let packet: Arc<Packet<'scope, T>> = Arc::new(Packet::new(scope));
        let their_packet = Arc::clone(&packet);
        let body = move || {
            // Catching here keeps a panic inside its green thread: it reaches `join`, and the
            // worker and the other green threads carry on.
            // Cancelled before it ever ran: unwind at once, `f` is dropped unrun.
            let result = panic::catch_unwind(AssertUnwindSafe(|| {
                crate::runtime::blocking_point::checkpoint();
                f()
            }));
            // From here on a late cancel or deadline cannot cut the cleanup short.
            crate::runtime::blocking_point::end_of_body();
            // Coroutine-local values end with the green thread, on it. A destructor that
            // panics has been reported by the hook and is caught there (each round of
            // `drop_all` catches its own); the result stays what the body made.
            crate::local::drop_all();
            // Counted finished before the result becomes visible (to `join`, or to a scope
            // when the packet drops), so `stats().live` read after a join is exact.
            scheduler::note_completed();
            their_packet.complete(result);
            // Dropping the packet may drop an unjoined result, whose destructor may use
            // coroutine locals again: drop those too, here, on the green thread (a value
            // left in the task would be dropped wherever its last handle goes).
            drop(their_packet);
            crate::local::close();
        };
        let options = SpawnOptions {
            name: self.name.map(String::into_boxed_str),
            stack_size: self.stack_size,
            migratable: self.migratable,
        };
        // SAFETY: forwarded from our caller.
        let task = unsafe { scheduler::spawn(body, options)? };
        let coroutine = Coroutine::from_task(task);
        if let Some(scope) = &packet_scope {
            scope.add_thread(coroutine.clone());
        }
        // A spawn loop lets the green threads it made (and the others here) run now and
        // then, so a burst does not start every one of them at once (see `runtime::coop`).
        crate::runtime::coop::spend();
        Ok(JoinInner { coroutine, packet })
    }
}
