//! The state behind [`after`](super::after) and [`tick`](super::tick) receivers.
//!
//! A timer channel has no sender and no wait queue: it becomes ready at a known instant, so
//! a receiver (or a `select!` holding it) sleeps until that instant and then takes the
//! message. Each delivery goes to exactly one receiver: the clock check and the update of
//! the next deadline happen under one lock.

use std::time::{Duration, Instant};

use crate::loom::sync::Mutex;

#[derive(Debug)]
pub(crate) struct Timer {
    /// When the next message is due; `None` once a one-shot timer has delivered.
    next: Mutex<Option<Instant>>,
    /// `Some` for a ticker.
    period: Option<Duration>,
}

impl Timer {
    pub(crate) fn once(at: Option<Instant>) -> Timer {
        Timer {
            next: Mutex::new(at),
            period: None,
        }
    }

    pub(crate) fn ticker(first: Option<Instant>, period: Duration) -> Timer {
        Timer {
            next: Mutex::new(first),
            period: Some(period),
        }
    }

    /// Takes the due message, if one is due: the current time. A ticker whose receiver fell
    /// behind skips the ticks it missed (as Go's does) instead of delivering a burst.
    pub(crate) fn try_fire(&self) -> Option<Instant> {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let due = (*next)?;
        let now = Instant::now();
        if now < due {
            return None;
        }
        *next = match self.period {
            None => None,
            Some(period) => {
                let mut following = due.checked_add(period);
                // Skip missed ticks: the next one is the first scheduled tick after now.
                if let Some(at) = following {
                    if at <= now && !period.is_zero() {
                        let behind = now.duration_since(at).as_nanos() / period.as_nanos() + 1;
                        let skip = u32::try_from(behind).unwrap_or(u32::MAX);
                        following = period.checked_mul(skip).and_then(|d| at.checked_add(d));
                    }
                }
                following
            }
        };
        Some(now)
    }

    /// When the next message is due; `None` if never again.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        *self.next.lock().unwrap_or_else(|p| p.into_inner())
    }
}
