//! Guarded, pooled, lazily committed stacks for green threads.
//!
//! # Layout
//!
//! Stacks are not mapped one by one. A *region* is one large `MAP_NORESERVE` mapping carved
//! into equal *slots*; each slot is a guard page followed by the usable stack, which grows
//! down towards the guard:
//!
//! ```text
//!  region (one mmap, one VMA)
//!  +-------+------------------+-------+------------------+-------+-- ...
//!  | guard |  usable stack 0  | guard |  usable stack 1  | guard |
//!  +-------+------------------+-------+------------------+-------+-- ...
//!  ^ limit()                  ^ base() of slot 0 (its top; the first frame lands just below)
//! ```
//!
//! The guard is installed with `madvise(MADV_GUARD_INSTALL)` (Linux ≥ 6.13), which marks page
//! table entries instead of splitting the VMA: 100,000 guarded stacks cost the VMAs of their
//! few regions, not 200,000. Older kernels answer `EINVAL` and weft falls back to
//! `mprotect(PROT_NONE)`, which costs two VMAs per stack. `WEFT_GUARD_PAGES=mprotect` forces the
//! fallback (for tests); see [`pool`].
//!
//! # Memory
//!
//! Pages are committed on first write, so an idle green thread costs the one or two pages its
//! frames touched. A stack that was used deeply gives those pages back before it is reused
//! ([`pool::release`]), so the pool never pins a high-water mark.
//!
//! # Sizes
//!
//! Usable sizes are powers of two from [`MIN_STACK_SIZE`] to [`MAX_STACK_SIZE`] ("size
//! classes"); a request is rounded up to the next class, and a request above the maximum is an
//! `InvalidInput` error.

pub(crate) mod overflow;
pub(crate) mod pool;

use corosensei::stack::{valgrind::ValgrindStackRegistration, Stack, StackPointer};
use std::io;

use crate::sys;

/// Smallest usable stack: smaller requests are rounded up to this.
///
/// Sized for std's panic path, so that a panic in a green thread with the smallest stack
/// still reaches `join`. Measured on x86_64, debug and release builds alike: the hook that
/// prints the message fits in 16 KiB, but with `RUST_BACKTRACE=1` or `full` it needs
/// 32 KiB (the symbolizer), so 16 KiB stacks aborted with a false overflow. 64 KiB leaves
/// twice the measured need. Pages commit lazily, so the minimum
/// costs address space, not memory.
pub const MIN_STACK_SIZE: usize = 64 * 1024;
/// Largest usable stack a green thread may ask for.
pub const MAX_STACK_SIZE: usize = 1 << 30;
/// Usable stack size of a green thread unless configured otherwise.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

const MIN_CLASS_SHIFT: u32 = MIN_STACK_SIZE.trailing_zeros();
const MAX_CLASS_SHIFT: u32 = MAX_STACK_SIZE.trailing_zeros();
/// Number of size classes (64 KiB, 128 KiB, …, 1 GiB).
pub(crate) const NUM_CLASSES: usize = (MAX_CLASS_SHIFT - MIN_CLASS_SHIFT + 1) as usize;

/// A usable-stack size rounded to a power of two within the allowed range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SizeClass(u8);

impl SizeClass {
    /// The class that fits `requested` bytes, rounding up; errors above [`MAX_STACK_SIZE`].
    pub(crate) fn for_size(requested: usize) -> io::Result<SizeClass> {
        if requested > MAX_STACK_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "weft: stack size {requested} bytes is above the maximum of {MAX_STACK_SIZE} \
                     bytes (1 GiB)"
                ),
            ));
        }
        let rounded = requested.max(MIN_STACK_SIZE).next_power_of_two();
        Ok(SizeClass(
            (rounded.trailing_zeros() - MIN_CLASS_SHIFT) as u8,
        ))
    }

    /// Index of this class in per-class tables.
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }

    /// Usable bytes of a stack of this class.
    pub(crate) fn usable(self) -> usize {
        1 << (self.0 as u32 + MIN_CLASS_SHIFT)
    }

    /// Bytes one slot of this class takes in a region: guard plus usable stack.
    pub(crate) fn stride(self) -> usize {
        guard_size() + self.usable()
    }
}

/// Size of the guard at the low end of every stack: one page. Rust emits stack probes for
/// frames larger than a page, so an overflow always touches the guard before anything below.
pub(crate) fn guard_size() -> usize {
    sys::page_size()
}

/// One green thread's stack: a slot of a region, owned exclusively until returned to the
/// pool. Dropping it without [`pool::release`] leaks the slot (never unsound).
pub(crate) struct GuardedStack {
    /// Lowest address of the slot: the start of its guard page.
    guard_low: usize,
    /// Highest address of the slot (its stack's base). Precomputed: corosensei asks for it on
    /// every resume.
    top: usize,
    class: SizeClass,
    /// Tells Valgrind this range is a stack, so switching onto it is not flagged; it is a
    /// no-op instruction sequence when not running under Valgrind.
    _valgrind: ValgrindStackRegistration,
}

// SAFETY: a GuardedStack is a unique owner of address space; moving that ownership between
// threads is sound (the coroutine running on it is what the scheduler keeps on one thread).
unsafe impl Send for GuardedStack {}

impl GuardedStack {
    /// Wraps a slot that the pool hands out.
    ///
    /// # Safety
    /// `guard_low` must be the start of a slot of `class` whose guard is installed and which
    /// no one else uses.
    unsafe fn from_slot(guard_low: usize, class: SizeClass) -> GuardedStack {
        let usable_low = guard_low + guard_size();
        GuardedStack {
            guard_low,
            top: guard_low + class.stride(),
            class,
            _valgrind: ValgrindStackRegistration::new(usable_low as *mut u8, class.usable()),
        }
    }

    /// The guard page range `[low, high)`: a fault here is this stack's overflow.
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        (self.guard_low, self.guard_low + guard_size())
    }

    /// Usable bytes of this stack.
    pub(crate) fn usable_size(&self) -> usize {
        self.class.usable()
    }

    fn top(&self) -> usize {
        self.top
    }
}

// SAFETY: base() and limit() describe the slot, which the pool carved with a guard page at its
// low end (installed before the slot was handed out) and at least MIN_STACK_SIZE (64 KiB ≥
// corosensei's 4 KiB minimum) usable bytes above it. Both addresses are page aligned, hence
// aligned to STACK_ALIGNMENT.
unsafe impl Stack for GuardedStack {
    #[inline]
    fn base(&self) -> StackPointer {
        // SAFETY: `top` is the end of a mapped slot, never address 0.
        unsafe { StackPointer::new_unchecked(self.top) }
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        // SAFETY: `guard_low` is the start of a mapped slot, never address 0.
        unsafe { StackPointer::new_unchecked(self.guard_low) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_to_powers_of_two() {
        let class = |n| SizeClass::for_size(n).unwrap().usable();
        assert_eq!(class(0), MIN_STACK_SIZE);
        assert_eq!(class(1), MIN_STACK_SIZE);
        assert_eq!(class(MIN_STACK_SIZE), MIN_STACK_SIZE);
        assert_eq!(class(MIN_STACK_SIZE + 1), 2 * MIN_STACK_SIZE);
        assert_eq!(class(DEFAULT_STACK_SIZE), DEFAULT_STACK_SIZE);
        assert_eq!(class(300 * 1024), 512 * 1024);
        assert_eq!(class(MAX_STACK_SIZE), MAX_STACK_SIZE);
        assert_eq!(
            SizeClass::for_size(MAX_STACK_SIZE).unwrap().index(),
            NUM_CLASSES - 1
        );
    }

    #[test]
    fn oversized_request_is_invalid_input() {
        let err = SizeClass::for_size(MAX_STACK_SIZE + 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("1 GiB"), "{err}");
    }
}
