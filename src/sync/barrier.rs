//! [`Barrier`], built on [`Mutex`](super::Mutex) and [`Condvar`](super::Condvar).

use std::fmt;

use super::{const_unless_loom, Condvar, Mutex};

/// Lets `n` parties wait for each other, shaped like `std::sync::Barrier`; reusable.
///
/// ```
/// use std::sync::Arc;
/// use weft::sync::Barrier;
///
/// let barrier = Arc::new(Barrier::new(3));
/// let handles: Vec<_> = (0..3)
///     .map(|_| {
///         let barrier = barrier.clone();
///         weft::go!(move || barrier.wait().is_leader())
///     })
///     .collect();
/// let leaders = handles.into_iter().map(|h| h.join().unwrap());
/// assert_eq!(leaders.filter(|&leader| leader).count(), 1);
/// ```
pub struct Barrier {
    state: Mutex<BarrierState>,
    all_arrived: Condvar,
    parties: usize,
}

struct BarrierState {
    arrived: usize,
    generation: u64,
}

/// What [`Barrier::wait`] returns: exactly one party per round is the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// Whether this party was the last to arrive (one per round).
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    const_unless_loom! {
        /// A barrier for `parties` parties (0 and 1 never wait).
        pub fn new(parties: usize) -> Barrier {
            Barrier {
                state: Mutex::new(BarrierState {
                    arrived: 0,
                    generation: 0,
                }),
                all_arrived: Condvar::new(),
                parties,
            }
        }
    }

    /// Parks until all parties have called `wait` in this round.
    #[track_caller]
    pub fn wait(&self) -> BarrierWaitResult {
        // The barrier's own lock is never held across user code, so it cannot be poisoned by
        // a panic in it; recover rather than propagate.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.arrived += 1;
        if state.arrived < self.parties {
            let round = state.generation;
            let _state = self
                .all_arrived
                .wait_while(state, |state| state.generation == round)
                .unwrap_or_else(|p| p.into_inner());
            BarrierWaitResult(false)
        } else {
            state.arrived = 0;
            state.generation = state.generation.wrapping_add(1);
            drop(state);
            self.all_arrived.notify_all();
            BarrierWaitResult(true)
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .finish_non_exhaustive()
    }
}
