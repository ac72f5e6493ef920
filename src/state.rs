//! The packed state word: the only code that compare-and-swaps the breaker's state.
//!
//! ```text
//!  63                                  24 23                    3 2     0
//! +--------------------------------------+-----------------------+-------+
//! |            payload (40 bits)         |  generation (21 bits) | kind  |
//! +--------------------------------------+-----------------------+-------+
//!
//! payload, by kind:
//!   OPEN       deadline of the open wait, in milliseconds of the clock, modulo 2^40
//!   HALF_OPEN  bits 0..20: trial calls in flight; bits 20..40: trial successes so far
//!   others     zero
//! ```
//!
//! # Invariants
//! 1. The word changes only by compare-and-swap from a value just loaded, so every change is a
//!    pure function of the previous word ([`Word`] methods, no side effects) applied atomically.
//! 2. Every change of `kind` increments the generation. A [`Ticket`] carries the generation it was
//!    admitted in; an outcome whose generation differs from the word's is *late* and changes
//!    nothing. (The generation wraps after 2^21 transitions; a call would have to stay in flight
//!    across exactly a multiple of 2,097,152 transitions to be mistaken for a current one.)
//! 3. In HALF_OPEN the in-flight count never exceeds the configured permit cap: it is only
//!    incremented by a CAS that checked the cap on the very value it replaces, and only
//!    decremented by the holder of a ticket of the same generation (once per ticket).
//! 4. Deadlines are milliseconds modulo 2^40 (34.8 years) and compare with wrapping arithmetic:
//!    a deadline counts as pending only while it is at most [`MAX_OPEN_WAIT`] ahead, so a
//!    breaker left OPEN and idle for any time short of 34 years reads as expired. Open waits are
//!    rounded up to whole milliseconds (the coarse clock's granularity anyway).
//!
//! # Orderings
//! Successful CASes are `AcqRel` and loads `Acquire`: a transition's winner publishes what it
//! did before the CAS (window reset, backoff streak) to every thread that later observes the
//! new word. On x86-64 these cost exactly what `Relaxed` does. Failed CASes use `Acquire` for
//! the same reason on the freshly observed value.

use crate::sync::{atomic_u64, AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use std::time::Duration;

const KIND_BITS: u32 = 3;
const GEN_BITS: u32 = 21;
const GEN_SHIFT: u32 = KIND_BITS;
const PAYLOAD_SHIFT: u32 = KIND_BITS + GEN_BITS;
const KIND_MASK: u64 = (1 << KIND_BITS) - 1;
const GEN_MASK: u32 = (1 << GEN_BITS) - 1;
const PAYLOAD_BITS: u32 = 64 - PAYLOAD_SHIFT;
const PAYLOAD_MASK: u64 = (1 << PAYLOAD_BITS) - 1;
const HALF_FIELD_BITS: u32 = 20;
const HALF_FIELD_MASK: u64 = (1 << HALF_FIELD_BITS) - 1;

/// Largest half-open permit cap and success count the word can hold (2^20 - 1).
pub const MAX_HALF_OPEN: u32 = HALF_FIELD_MASK as u32;

/// Longest open wait (one day).
pub const MAX_OPEN_WAIT: Duration = Duration::from_secs(24 * 60 * 60);
const MAX_OPEN_WAIT_MS: u64 = 24 * 60 * 60 * 1000;

/// The state of a circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum State {
    /// Calls pass; outcomes are recorded and may trip the breaker.
    Closed,
    /// Calls are rejected until the open wait ends.
    Open,
    /// A capped number of trial calls decide between closing and re-opening.
    HalfOpen,
    /// Manually forced open: every call is rejected until reset.
    ForcedOpen,
    /// Manually disabled: every call is admitted, nothing trips.
    Disabled,
    /// Calls pass and are recorded (metrics, events), but the breaker never trips.
    MetricsOnly,
}

impl State {
    const ALL: [State; 6] = [
        State::Closed,
        State::Open,
        State::HalfOpen,
        State::ForcedOpen,
        State::Disabled,
        State::MetricsOnly,
    ];

    /// A short lower-case name (`closed`, `open`, `half_open`, ...), as used in headers and
    /// metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::ForcedOpen => "forced_open",
            State::Disabled => "disabled",
            State::MetricsOnly => "metrics_only",
        }
    }

    /// Whether calls are admitted without limit in this state.
    pub fn admits_all(self) -> bool {
        matches!(self, State::Closed | State::Disabled | State::MetricsOnly)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value of the state word, decoded on demand. Pure arithmetic, no atomics.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Word(pub(crate) u64);

impl Word {
    #[inline]
    pub(crate) fn new(kind: State, gen: u32, payload: u64) -> Word {
        debug_assert!(payload <= PAYLOAD_MASK);
        Word(
            (kind as u64)
                | (((gen & GEN_MASK) as u64) << GEN_SHIFT)
                | ((payload & PAYLOAD_MASK) << PAYLOAD_SHIFT),
        )
    }

    #[inline]
    pub(crate) fn kind(self) -> State {
        // Only `Word::new` builds words, always from a `State`, so the index is in range.
        State::ALL[(self.0 & KIND_MASK) as usize % State::ALL.len()]
    }

    #[inline]
    pub(crate) fn is(self, kind: State) -> bool {
        self.0 & KIND_MASK == kind as u64
    }

    #[inline]
    pub(crate) fn gen(self) -> u32 {
        ((self.0 >> GEN_SHIFT) as u32) & GEN_MASK
    }

    #[inline]
    fn payload(self) -> u64 {
        self.0 >> PAYLOAD_SHIFT
    }

    /// The word of the next generation in state `kind`.
    #[inline]
    pub(crate) fn next(self, kind: State, payload: u64) -> Word {
        Word::new(kind, self.gen().wrapping_add(1), payload)
    }

    /// OPEN: the deadline, in clock milliseconds modulo 2^40.
    #[inline]
    pub(crate) fn deadline_ms(self) -> u64 {
        self.payload()
    }

    /// OPEN: milliseconds left until the deadline, or `None` if it has passed.
    #[inline(always)]
    pub(crate) fn remaining_ms(self, now_ms: u64) -> Option<u64> {
        let left = self.deadline_ms().wrapping_sub(now_ms) & PAYLOAD_MASK;
        // A legitimate deadline is never more than MAX_OPEN_WAIT ahead: anything else is a
        // deadline behind us, seen through the wrap.
        (left != 0 && left <= MAX_OPEN_WAIT_MS).then_some(left)
    }

    /// HALF_OPEN: trial calls in flight.
    #[inline]
    pub(crate) fn inflight(self) -> u32 {
        (self.payload() & HALF_FIELD_MASK) as u32
    }

    /// HALF_OPEN: trial successes so far.
    #[inline]
    pub(crate) fn trial_successes(self) -> u32 {
        ((self.payload() >> HALF_FIELD_BITS) & HALF_FIELD_MASK) as u32
    }

    #[inline]
    pub(crate) fn half_open_payload(inflight: u32, successes: u32) -> u64 {
        (inflight as u64 & HALF_FIELD_MASK)
            | ((successes as u64 & HALF_FIELD_MASK) << HALF_FIELD_BITS)
    }

    /// The OPEN payload for a wait starting at `now_ms`; the wait is rounded up to whole
    /// milliseconds.
    #[inline]
    pub(crate) fn open_payload(now_ms: u64, wait: Duration) -> u64 {
        let wait_ms = wait
            .as_nanos()
            .div_ceil(1_000_000)
            .min(MAX_OPEN_WAIT_MS as u128) as u64;
        now_ms.wrapping_add(wait_ms) & PAYLOAD_MASK
    }
}

/// The 16-bit tag that windows use to tell generations apart (see `window`).
#[inline]
pub(crate) fn tag_of(gen: u32) -> u16 {
    gen as u16
}

/// The state word, alone on its cache line: it is read by every call and written only on
/// transitions, so nothing else may share (and invalidate) its line.
pub(crate) struct StateCell {
    word: CachePadded<AtomicU64>,
}

impl StateCell {
    pub(crate) fn new(initial: Word) -> Self {
        StateCell {
            word: CachePadded::new(atomic_u64(initial.0)),
        }
    }

    /// Acquire: pairs with the `AcqRel` CAS of the transition that wrote the word (module doc).
    #[inline]
    pub(crate) fn load(&self) -> Word {
        Word(self.word.load(Ordering::Acquire))
    }

    /// One compare-and-swap from `current` to `new`. On failure returns the word found.
    #[inline]
    #[cfg(not(all(feature = "planted-bug", breakerbox_loom)))]
    pub(crate) fn cas(&self, current: Word, new: Word) -> Result<(), Word> {
        // AcqRel / Acquire: see the module doc.
        self.word
            .compare_exchange(current.0, new.0, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(Word)
    }

    /// TEST ONLY (feature `planted-bug`, and only in a loom build, so that `--all-features`
    /// never ships it): a broken "CAS" that loads, compares and then stores, so two threads can
    /// both succeed from the same word. The loom models must catch it.
    #[inline]
    #[cfg(all(feature = "planted-bug", breakerbox_loom))]
    pub(crate) fn cas(&self, current: Word, new: Word) -> Result<(), Word> {
        let found = self.load();
        if found != current {
            return Err(found);
        }
        // Release: same publication as the real CAS; the bug is the missing atomicity.
        self.word.store(new.0, Ordering::Release);
        Ok(())
    }

    /// Applies `f` to the word until the CAS succeeds or `f` declines (`None`).
    /// Returns `(old, new)` on success, or the word `f` declined.
    #[inline]
    pub(crate) fn update(
        &self,
        mut f: impl FnMut(Word) -> Option<Word>,
    ) -> Result<(Word, Word), Word> {
        let mut current = self.load();
        loop {
            let new = match f(current) {
                Some(new) => new,
                None => return Err(current),
            };
            match self.cas(current, new) {
                Ok(()) => return Ok((current, new)),
                Err(found) => current = found,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        for kind in State::ALL {
            let w = Word::new(kind, 12345, 0xAB_CDEF_0123);
            assert_eq!(w.kind(), kind);
            assert!(w.is(kind));
            assert_eq!(w.gen(), 12345);
            assert_eq!(w.deadline_ms(), 0xAB_CDEF_0123);
        }
        let w = Word::new(State::HalfOpen, 7, Word::half_open_payload(3, 99));
        assert_eq!((w.inflight(), w.trial_successes()), (3, 99));
    }

    #[test]
    fn generation_wraps_without_touching_other_fields() {
        let w = Word::new(State::Closed, GEN_MASK, 0);
        let n = w.next(State::Open, 42);
        assert_eq!(n.gen(), 0);
        assert_eq!(n.kind(), State::Open);
        assert_eq!(n.deadline_ms(), 42);
    }

    #[test]
    fn deadline_comparison_wraps() {
        let near_end = PAYLOAD_MASK - 10;
        let w = Word::new(
            State::Open,
            1,
            Word::open_payload(near_end, Duration::from_millis(20)),
        );
        assert_eq!(w.remaining_ms(near_end), Some(20));
        assert_eq!(w.remaining_ms(near_end + 19), Some(1));
        assert_eq!(w.remaining_ms(near_end + 20), None);
        assert_eq!(w.remaining_ms(near_end + 1_000_000), None);
        let z = Word::new(State::Open, 1, Word::open_payload(5, Duration::ZERO));
        assert_eq!(z.remaining_ms(5), None);
        // Sub-millisecond waits round up.
        let u = Word::new(
            State::Open,
            1,
            Word::open_payload(5, Duration::from_micros(10)),
        );
        assert_eq!(u.remaining_ms(5), Some(1));
    }

    #[test]
    fn an_idle_open_breaker_never_reads_as_pending_again() {
        let w = Word::new(State::Open, 1, Word::open_payload(0, MAX_OPEN_WAIT));
        for idle_days in [2u64, 7, 13, 100, 365 * 30] {
            assert_eq!(
                w.remaining_ms(idle_days * 86_400_000),
                None,
                "{idle_days} days"
            );
        }
    }
}
