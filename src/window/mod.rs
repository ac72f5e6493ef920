//! Sliding windows over recent call outcomes, lock-free and O(1) per recorded call.
//!
//! - [`CountWindow`]: the last N outcomes, one slot per outcome in a ring.
//! - [`TimeWindow`]: the outcomes of the last T, aggregated into B buckets.
//! - [`Streak`]: consecutive failures (the classic "5 failures then open" rule).
//!
//! # Generations and tags
//! Every word a window writes carries a 16-bit *tag*: the low bits of the breaker generation the
//! window is counting for. A record carries the tag of the generation its call was admitted in.
//! A word holding an older tag is treated as empty (and is reset by the first writer of the newer
//! tag); a word holding a newer tag makes the record *late*, and it is dropped. Tags compare with
//! wrapping arithmetic ([`newer`]), so a call must stay in flight across 32,768 transitions to be
//! misjudged. This is what makes a reset O(1) and race-free: a reset is just "start writing a new
//! tag"; nothing has to be cleared, and a slow recorder of the old generation cannot leak into
//! the new one (in the count window; see [`TimeWindow`] for its one approximation).
//!
//! # Orderings
//! All read-modify-writes here are `AcqRel` and all loads `Acquire`. On x86-64 that costs exactly
//! what `Relaxed` costs (locked instructions are full barriers, plain loads are acquire loads),
//! and it gives each window word a happens-before chain: a thread that observes a tag also
//! observes everything its writer did before writing it. The counts stay consistent without it;
//! the loom models check that reads after the threads join are exact.

pub(crate) mod count;
mod streak;
mod time;

pub(crate) use count::CountWindow;
pub(crate) use streak::Streak;
pub(crate) use time::TimeWindow;

/// Outcome bits stored for one call.
pub(crate) const PRESENT: u32 = 1;
/// The call failed.
pub(crate) const FAILED: u32 = 2;
/// The call was slow.
pub(crate) const SLOW: u32 = 4;

/// Whether tag `a` is newer than tag `b` (wrapping, as TCP sequence numbers).
#[inline]
pub(crate) fn newer(a: u16, b: u16) -> bool {
    (a.wrapping_sub(b) as i16) > 0
}

/// Counts of one window at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Calls in the window (successes and failures; ignored calls are not recorded).
    pub calls: u64,
    /// Failed calls in the window.
    pub failures: u64,
    /// Slow calls in the window (successful or failed).
    pub slow: u64,
}

/// What recording an outcome did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// The window had moved on to a newer generation; nothing was counted.
    Late,
    /// Counted; the window counts right after it, when the caller asked for them.
    Counted(Option<Counts>),
}

/// The configured window.
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    /// Records `bits` for a call admitted under `tag`. `want_counts` asks for the counts after
    /// the record (needed when the outcome may trip the breaker); the count window also returns
    /// them when the record brings it to exactly `probe` calls (see [`CountWindow::record`]).
    #[inline]
    pub(crate) fn record(
        &self,
        tag: u16,
        bits: u32,
        now_ns: u64,
        want_counts: bool,
        probe: u64,
    ) -> Recorded {
        match self {
            Window::Count(w) => w.record(tag, bits, want_counts, probe),
            Window::Time(w) => w.record(tag, bits, now_ns, want_counts),
        }
    }

    /// Starts counting for `tag` (a no-op if the window already counts for it or a newer tag).
    pub(crate) fn reset(&self, tag: u16) {
        match self {
            Window::Count(w) => w.reset(tag),
            Window::Time(w) => w.reset(tag),
        }
    }

    /// Stops accepting outcomes of tags older than `tag`, keeping the current counts visible
    /// to metrics (used when the breaker leaves CLOSED).
    pub(crate) fn seal(&self, tag: u16) {
        match self {
            Window::Count(w) => w.seal(tag),
            Window::Time(w) => w.seal(tag),
        }
    }

    /// The counts for whichever generation the window currently counts.
    pub(crate) fn current_counts(&self, now_ns: u64) -> Counts {
        match self {
            Window::Count(w) => w.counts(w.current_tag()),
            Window::Time(w) => w.counts(w.current_tag(), now_ns),
        }
    }

    /// Calls recorded into this window over its whole life (all generations).
    pub(crate) fn lifetime_calls(&self) -> u64 {
        match self {
            Window::Count(w) => w.lifetime_calls(),
            Window::Time(w) => w.lifetime_calls(),
        }
    }

    /// Heap bytes held by the window (beyond `size_of::<Window>()`).
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Window::Count(w) => w.heap_bytes(),
            Window::Time(w) => w.heap_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::newer;

    #[test]
    fn tags_compare_with_wrapping() {
        assert!(newer(1, 0));
        assert!(!newer(0, 1));
        assert!(!newer(5, 5));
        assert!(newer(0, u16::MAX));
        assert!(newer(100, 65_000));
    }
}
