//! The packed state word: the only code that compare-and-swaps the breaker's state.
//!
//! ```text
//!  63                                  24 23                    3 2     0
//! +--------------------------------------+-----------------------+-------+
//! |            payload (40 bits)         |  generation (21 bits) | kind  |
//! +--------------------------------------+-----------------------+-------+
//!
//! payload, by kind:
//!   OPEN       bits 0..8: backoff step; bits 8..40: deadline of the open wait, in
//!              milliseconds of the clock, modulo 2^32
//!   HALF_OPEN  bits 0..8: backoff step; bits 8..24: trial calls in flight;
//!              bits 24..40: trial successes so far
//!   HALF_OPEN, decided by rate ([`HalfOpenDecision::Rate`](crate::HalfOpenDecision)):
//!              bits 0..8: backoff step; bits 8..16: trial calls in flight; bits 16..24:
//!              trial outcomes recorded; bits 24..32: of which failures; bits 32..40: of
//!              which slow (so at most 255 trial calls, [`MAX_RATE_TRIALS`])
//!   others     zero
//! ```
//!
//! The backoff step (which opening in a row this is, saturating at [`MAX_STEP`]) lives in the
//! word, so the step of an opening is decided by the same CAS that opens: CLOSED -> OPEN takes
//! step 1, OPEN -> HALF-OPEN keeps it, HALF-OPEN -> OPEN takes the next one, and closing drops
//! it. Every transition is a pure [`Word`] method, unit-tested below without atomics.
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
//! 4. Deadlines are milliseconds modulo 2^32 (49.7 days) and compare with wrapping arithmetic:
//!    a deadline counts as pending only while it is at most the breaker's longest possible open
//!    wait ahead (`cap_ms`, at most [`MAX_OPEN_WAIT`]). A breaker left OPEN and idle for
//!    49.7 days or more can, once per such period, read as pending again for at most that one
//!    wait: as if it had just opened. Open waits are rounded up to whole milliseconds (the
//!    coarse clock's granularity anyway).
//!
//! # Orderings
//! Successful CASes are `AcqRel` and loads `Acquire`. What that buys is a happens-before edge
//! from everything a transition's winner did *before* its CAS to every thread whose load or CAS
//! reads the new word (C++20/Rust memory model; on AArch64 the `ldar`/`stlr` or `casal`
//! instructions give exactly this, on x86-64 every locked RMW does and costs what `Relaxed`
//! does). The winner does nothing before its CAS that others rely on: the backoff step is in
//! the word itself, and the window reset or seal runs *after* the CAS, so no thread may assume
//! the window already counts for the new generation when it sees the new word. The windows do
//! not need it: their own tag protocol (see `window`) orders each window word by its own
//! `AcqRel` CASes, and a recorder that reaches a window before the reset performs the reset
//! itself. The half-open permit count is in the word, so the cap needs no other ordering.

use crate::sync::{atomic_u64, AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use std::time::Duration;

const KIND_BITS: u32 = 3;
/// Width of the generation (also [`Transition::generation`](crate::Transition)'s range).
pub(crate) const GEN_BITS: u32 = 21;
const GEN_SHIFT: u32 = KIND_BITS;
const PAYLOAD_SHIFT: u32 = KIND_BITS + GEN_BITS;
const KIND_MASK: u64 = (1 << KIND_BITS) - 1;
const GEN_MASK: u32 = (1 << GEN_BITS) - 1;
const PAYLOAD_BITS: u32 = 64 - PAYLOAD_SHIFT;
const PAYLOAD_MASK: u64 = (1 << PAYLOAD_BITS) - 1;
const STEP_BITS: u32 = 8;
const STEP_MASK: u64 = (1 << STEP_BITS) - 1;
const DEADLINE_MASK: u64 = (1 << 32) - 1;
const HALF_FIELD_BITS: u32 = 16;
const HALF_FIELD_MASK: u64 = (1 << HALF_FIELD_BITS) - 1;

/// Largest half-open permit cap and success count the word can hold (2^16 - 1).
pub const MAX_HALF_OPEN: u32 = HALF_FIELD_MASK as u32;

/// Largest half-open permit count when HALF-OPEN is decided by rate (four 8-bit fields).
pub const MAX_RATE_TRIALS: u32 = RATE_FIELD_MASK as u32;
const RATE_FIELD_BITS: u32 = 8;
const RATE_FIELD_MASK: u64 = (1 << RATE_FIELD_BITS) - 1;
/// The backoff step saturates here: the 255th opening in a row and later ones wait as long as
/// the 255th (the configuration rejects a backoff that would still be growing).
pub const MAX_STEP: u32 = STEP_MASK as u32;

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
    /// Every state, in the order of the state word's `kind` field.
    pub const ALL: [State; 6] = [
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

/// A name that is not a state's [`as_str`](State::as_str).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown state {0:?}: expected closed, open, half_open, forced_open, disabled or metrics_only"
)]
pub struct UnknownState(pub String);

impl std::str::FromStr for State {
    type Err = UnknownState;

    /// The inverse of [`as_str`](State::as_str): `"half_open".parse() == Ok(State::HalfOpen)`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_string()))
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

    /// OPEN and HALF_OPEN: which opening in a row this is (1 for the first); 0 otherwise.
    #[inline]
    pub(crate) fn step(self) -> u32 {
        if self.is(State::Open) || self.is(State::HalfOpen) {
            (self.payload() & STEP_MASK) as u32
        } else {
            0
        }
    }

    /// The backoff step the next opening from this word takes: 1 from CLOSED, the next one
    /// (saturating at [`MAX_STEP`]) from HALF_OPEN.
    #[inline]
    pub(crate) fn next_step(self) -> u32 {
        (self.step() + 1).min(MAX_STEP)
    }

    /// OPEN: the deadline, in clock milliseconds modulo 2^32.
    #[inline]
    pub(crate) fn deadline_ms(self) -> u64 {
        (self.payload() >> STEP_BITS) & DEADLINE_MASK
    }

    /// OPEN: milliseconds left until the deadline, or `None` if it has passed. `cap_ms` is the
    /// longest wait this breaker can set (module doc, invariant 4).
    #[inline(always)]
    pub(crate) fn remaining_ms(self, now_ms: u64, cap_ms: u64) -> Option<u64> {
        let left = self.deadline_ms().wrapping_sub(now_ms) & DEADLINE_MASK;
        // A legitimate deadline is never more than `cap_ms` ahead: anything else is a deadline
        // behind us, seen through the wrap.
        (left != 0 && left <= cap_ms).then_some(left)
    }

    /// HALF_OPEN: trial calls in flight.
    #[inline]
    pub(crate) fn inflight(self) -> u32 {
        ((self.payload() >> STEP_BITS) & HALF_FIELD_MASK) as u32
    }

    /// HALF_OPEN: trial successes so far.
    #[inline]
    pub(crate) fn trial_successes(self) -> u32 {
        ((self.payload() >> (STEP_BITS + HALF_FIELD_BITS)) & HALF_FIELD_MASK) as u32
    }

    #[inline]
    fn half_open(gen: u32, step: u32, inflight: u32, successes: u32) -> Word {
        let payload = (step as u64 & STEP_MASK)
            | ((inflight as u64 & HALF_FIELD_MASK) << STEP_BITS)
            | ((successes as u64 & HALF_FIELD_MASK) << (STEP_BITS + HALF_FIELD_BITS));
        Word::new(State::HalfOpen, gen, payload)
    }

    /// HALF_OPEN decided by rate: field `i` (0 in flight, 1 recorded, 2 failures, 3 slow).
    #[inline]
    fn rate_field(self, i: u32) -> u32 {
        ((self.payload() >> (STEP_BITS + i * RATE_FIELD_BITS)) & RATE_FIELD_MASK) as u32
    }

    #[inline]
    fn rate_half_open(gen: u32, step: u32, fields: [u32; 4]) -> Word {
        let mut payload = step as u64 & STEP_MASK;
        for (i, f) in fields.into_iter().enumerate() {
            payload |= (f as u64 & RATE_FIELD_MASK) << (STEP_BITS + i as u32 * RATE_FIELD_BITS);
        }
        Word::new(State::HalfOpen, gen, payload)
    }

    /// HALF_OPEN decided by rate: `[in flight, recorded, failures, slow]`.
    #[inline]
    pub(crate) fn rate_trials(self) -> [u32; 4] {
        [0, 1, 2, 3].map(|i| self.rate_field(i))
    }

    /// HALF_OPEN, either mode: trial calls in flight.
    #[inline]
    pub(crate) fn inflight_in(self, by_rate: bool) -> u32 {
        if by_rate {
            self.rate_field(0)
        } else {
            self.inflight()
        }
    }

    // ----- transitions: pure functions of the word replaced -----------------------------

    /// Any state -> HALF_OPEN (next generation) with no trial in flight, keeping the backoff
    /// step of an OPEN or HALF_OPEN word (0 from the others): the automatic timer's and the
    /// manual transition. (Both half-open layouts are all zero but the step.)
    #[inline]
    pub(crate) fn half_open_empty(self) -> Word {
        Word::half_open(self.gen().wrapping_add(1), self.step(), 0, 0)
    }

    /// HALF_OPEN, either layout (`by_rate`): one more trial in flight, if the cap allows.
    #[inline]
    pub(crate) fn take_trial_in(self, by_rate: bool, cap: u32) -> Option<Word> {
        if by_rate {
            self.rate_take_trial(cap)
        } else {
            self.take_trial(cap)
        }
    }

    /// HALF_OPEN, either layout (`by_rate`): a trial slot given back, if any is taken.
    #[inline]
    pub(crate) fn trial_released_in(self, by_rate: bool) -> Option<Word> {
        if by_rate {
            self.rate_trial_released()
        } else {
            self.trial_released()
        }
    }

    /// HALF_OPEN by rate: one more trial in flight, if fewer than `cap` trials were taken
    /// in this generation (in flight plus recorded: each permit is used once).
    #[inline]
    pub(crate) fn rate_take_trial(self, cap: u32) -> Option<Word> {
        let [inflight, recorded, f, s] = self.rate_trials();
        (inflight + recorded < cap)
            .then(|| Word::rate_half_open(self.gen(), self.step(), [inflight + 1, recorded, f, s]))
    }

    /// HALF_OPEN by rate: a trial's outcome, counted (the caller decides once all are in).
    #[inline]
    pub(crate) fn rate_trial_recorded(self, failed: bool, slow: bool) -> Word {
        let [inflight, recorded, f, s] = self.rate_trials();
        Word::rate_half_open(
            self.gen(),
            self.step(),
            [
                inflight.saturating_sub(1),
                recorded + 1,
                f + u32::from(failed),
                s + u32::from(slow),
            ],
        )
    }

    /// HALF_OPEN by rate: a trial slot given back (its call will not report), if any is taken.
    #[inline]
    pub(crate) fn rate_trial_released(self) -> Option<Word> {
        let [inflight, recorded, f, s] = self.rate_trials();
        (inflight > 0)
            .then(|| Word::rate_half_open(self.gen(), self.step(), [inflight - 1, recorded, f, s]))
    }

    /// CLOSED or HALF_OPEN -> OPEN (next generation), at backoff step [`next_step`]
    /// (Self::next_step), for a wait starting at `now_ms`; the wait is rounded up to whole
    /// milliseconds.
    #[inline]
    pub(crate) fn open(self, now_ms: u64, wait: Duration) -> Word {
        let deadline = now_ms.wrapping_add(wait_ms(wait)) & DEADLINE_MASK;
        self.next(
            State::Open,
            (self.next_step() as u64) | (deadline << STEP_BITS),
        )
    }

    /// OPEN -> HALF_OPEN (next generation), holding the first trial permit, same step.
    #[inline]
    pub(crate) fn half_open_with_first_trial(self) -> Word {
        Word::half_open(self.gen().wrapping_add(1), self.step(), 1, 0)
    }

    /// HALF_OPEN: one more trial in flight, if fewer than `cap` are.
    #[inline]
    pub(crate) fn take_trial(self, cap: u32) -> Option<Word> {
        (self.inflight() < cap).then(|| {
            Word::half_open(
                self.gen(),
                self.step(),
                self.inflight() + 1,
                self.trial_successes(),
            )
        })
    }

    /// HALF_OPEN: a trial succeeded. CLOSED (next generation) once `needed` have, otherwise
    /// one fewer in flight and one more success.
    #[inline]
    pub(crate) fn trial_succeeded(self, needed: u32) -> Word {
        if self.trial_successes() + 1 >= needed {
            self.next(State::Closed, 0)
        } else {
            Word::half_open(
                self.gen(),
                self.step(),
                self.inflight().saturating_sub(1),
                self.trial_successes() + 1,
            )
        }
    }

    /// HALF_OPEN: a trial slot given back (its call will not report), if any is taken.
    #[inline]
    pub(crate) fn trial_released(self) -> Option<Word> {
        (self.inflight() > 0).then(|| {
            Word::half_open(
                self.gen(),
                self.step(),
                self.inflight() - 1,
                self.trial_successes(),
            )
        })
    }
}

/// A wait in whole milliseconds, rounded up (the coarse clock's granularity) and capped at
/// [`MAX_OPEN_WAIT`]: what an OPEN word's deadline adds, and so also what the breaker's bounds on
/// it (the longest open wait, `max_half_open_wait`) must be computed with.
#[inline]
pub(crate) fn wait_ms(wait: Duration) -> u64 {
    wait.as_nanos()
        .div_ceil(1_000_000)
        .min(MAX_OPEN_WAIT_MS as u128) as u64
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

    const DAY_MS: u64 = MAX_OPEN_WAIT_MS;

    fn closed(gen: u32) -> Word {
        Word::new(State::Closed, gen, 0)
    }

    #[test]
    fn states_parse_from_their_names() {
        for kind in State::ALL {
            assert_eq!(kind.as_str().parse::<State>(), Ok(kind));
        }
        assert!("ajar"
            .parse::<State>()
            .unwrap_err()
            .to_string()
            .contains("\"ajar\""));
    }

    #[test]
    fn fields_round_trip() {
        for kind in State::ALL {
            let w = Word::new(kind, 12345, 0);
            assert_eq!(w.kind(), kind);
            assert!(w.is(kind));
            assert_eq!(w.gen(), 12345);
        }
        let open = closed(7).open(0xABCD_EF01, Duration::from_millis(5));
        assert_eq!(open.deadline_ms(), 0xABCD_EF06);
        assert_eq!((open.kind(), open.gen(), open.step()), (State::Open, 8, 1));
        let half = open.half_open_with_first_trial();
        assert_eq!(
            (half.inflight(), half.trial_successes(), half.step()),
            (1, 0, 1)
        );
        let full = (1..MAX_HALF_OPEN).fold(half, |w, _| w.take_trial(MAX_HALF_OPEN).unwrap());
        assert_eq!(full.inflight(), MAX_HALF_OPEN);
        assert_eq!(full.take_trial(MAX_HALF_OPEN), None);
        let done = full.trial_succeeded(MAX_HALF_OPEN);
        assert_eq!(
            (done.inflight(), done.trial_successes(), done.step()),
            (MAX_HALF_OPEN - 1, 1, 1)
        );
    }

    #[test]
    fn generation_wraps_without_touching_other_fields() {
        let w = closed(GEN_MASK);
        let n = w.open(42, Duration::ZERO);
        assert_eq!(n.gen(), 0);
        assert_eq!(n.kind(), State::Open);
        assert_eq!(n.deadline_ms(), 42);
        assert_eq!(n.step(), 1);
    }

    #[test]
    fn the_backoff_step_belongs_to_the_transition_that_opens() {
        let wait = Duration::from_secs(1);
        // CLOSED -> OPEN is step 1; every failed trial round takes the next step.
        let mut w = closed(0).open(0, wait);
        for expected in 1..=300u32 {
            assert_eq!(w.step(), expected.min(MAX_STEP), "opening {expected}");
            let half = w.half_open_with_first_trial();
            assert_eq!(half.step(), w.step(), "HALF-OPEN keeps the step");
            w = half.open(0, wait);
        }
        // Closing drops it: the next trip is step 1 again.
        let closed_again = w.half_open_with_first_trial().trial_succeeded(1);
        assert_eq!(
            (closed_again.kind(), closed_again.step()),
            (State::Closed, 0)
        );
        assert_eq!(closed_again.open(0, wait).step(), 1);
        // A released slot keeps the step; releasing an empty half-open is refused.
        let h = closed(0).open(0, wait).half_open_with_first_trial();
        let r = h.trial_released().unwrap();
        assert_eq!((r.inflight(), r.step()), (0, 1));
        assert_eq!(r.trial_released(), None);
    }

    #[test]
    fn deadline_comparison_wraps() {
        let near_end = DEADLINE_MASK - 10;
        let w = closed(1).open(near_end, Duration::from_millis(20));
        assert_eq!(w.remaining_ms(near_end, DAY_MS), Some(20));
        assert_eq!(w.remaining_ms(near_end + 19, DAY_MS), Some(1));
        assert_eq!(w.remaining_ms(near_end + 20, DAY_MS), None);
        assert_eq!(w.remaining_ms(near_end + 1_000_000, DAY_MS), None);
        let z = closed(1).open(5, Duration::ZERO);
        assert_eq!(z.remaining_ms(5, DAY_MS), None);
        // Sub-millisecond waits round up.
        let u = closed(1).open(5, Duration::from_micros(10));
        assert_eq!(u.remaining_ms(5, DAY_MS), Some(1));
    }

    #[test]
    #[cfg_attr(miri, ignore = "millions of steps; the normal test run covers it")]
    fn an_idle_open_breaker_reads_as_pending_at_most_one_wait_per_wrap() {
        let wait_ms = 10_000;
        let w = closed(1).open(0, Duration::from_millis(wait_ms));
        for idle_days in [2u64, 7, 13, 100, 365 * 30] {
            assert_eq!(
                w.remaining_ms(idle_days * 86_400_000, wait_ms),
                None,
                "{idle_days} days"
            );
        }
        // Every 2^32 ms the deadline aliases: at most one wait reads as pending again.
        let pending = (0..(1u64 << 32) / 1000)
            .filter(|s| w.remaining_ms((1 << 32) + s * 1000, wait_ms).is_some())
            .count();
        assert_eq!(pending as u64, wait_ms / 1000);
    }
}
