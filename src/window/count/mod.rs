//! The last N outcomes, in a lock-free ring.
//!
//! Three kinds of word, each tagged (see the module doc of `window`):
//! - `head` `[tag:16][kept:16][laps:8][pos:24]`: the next slot to write and how many times the
//!   ring has been filled under this tag. A recorder claims slot `pos` with one CAS (`pos + 1`,
//!   or the next lap at the end of the ring): no division on the hot path. `laps * N + pos` is
//!   the number of outcomes recorded (folded into `retired` every 255 laps). `kept` is the tag
//!   whose outcomes the sequence counts: the head's own tag, except in a *sealed* head (the
//!   breaker left CLOSED), which keeps the closed generation's sequence for metrics. A recorder
//!   that claimed a position and then finds itself late takes its claim back out of that kept
//!   sequence if it is its own, so the sealed window shows only counted outcomes.
//! - `slots[i]` `[tag:16][bits:16]`: the outcome last written at slot `i`. The recorder swaps its
//!   outcome in with a CAS and learns which outcome fell out of the window.
//! - `counts` `[tag:16][failures:24][slow:24]`: failures and slow calls in the window, changed
//!   only by the difference between the outcome written and the one that fell out.
//!
//! A success written over a success changes nothing but `head`: the common path is one CAS and
//! one load. Failures and slow calls pay one more CAS on `counts`.
//!
//! The two counts are 24-bit two's-complement fields. The slot swap and the `counts` update are
//! two steps, so a recorder overwriting a failure may subtract it before the recorder that wrote
//! it has added it; the field is then briefly negative. Readers clamp to `[0, calls]`; once the
//! recorders are done the fields are exact (the loom models check both). Window sizes are
//! limited to [`MAX_SIZE`] so that a field never wraps.
//!
//! Under contention, two recorders N positions apart may write the same slot out of order; the
//! window then holds "the last N outcomes" up to that reordering. Sequentially it is exact.
//!
//! `head` and `counts` are rewritten on every transition (reset or seal), so their tags are
//! always current. Slots are only written by recorders, so a slot untouched through a long
//! outage would keep an ever older tag: the thread that advances `head` by `d` generations
//! therefore *sweeps* `d * ceil(N / SWEEP_SPAN)` slots (a shared cursor hands out the ranges),
//! rewriting each slot with an older tag to "empty, current tag". Every slot is visited once per
//! `SWEEP_SPAN` generations, which keeps stored tags within the comparable range (see `window`).
//!
//!
//! Successes past the minimum calls go to per-thread stripes first and reach the ring in
//! batches: [`striped`] holds that protocol and its bounds.

use super::snapshot::read_end;
use super::tag::{Age, Sweeper, Tag};
use super::{Counts, Live, Recorded, FAILED, LOAD, PRESENT, RMW, SLOW};
use crate::sync::{atomic_u32, atomic_u64, AtomicU32, AtomicU64};
use crossbeam_utils::CachePadded;

mod striped;

/// Largest count window (2^23 - 1 outcomes).
pub const MAX_SIZE: u32 = (1 << 23) - 1;

const POS_MASK: u64 = (1 << 24) - 1;
const LAPS_SHIFT: u32 = 24;
const LAPS_MASK: u64 = (1 << 8) - 1;
const KEPT_SHIFT: u32 = 32;
const TAG_SHIFT: u32 = 48;
const FIELD_BITS: u32 = 24;
const FIELD_MASK: u64 = (1 << FIELD_BITS) - 1;

#[inline(always)]
fn tag_of_head(h: u64) -> Tag {
    Tag::from_bits(h >> TAG_SHIFT)
}

#[inline(always)]
fn tag_of_slot(v: u32) -> Tag {
    Tag::from_bits((v >> 16) as u64)
}

#[inline(always)]
fn tag_of_counts(c: u64) -> Tag {
    Tag::from_bits(c >> 48)
}

#[inline(always)]
fn pos_of(h: u64) -> u64 {
    h & POS_MASK
}

#[inline(always)]
fn laps_of(h: u64) -> u64 {
    (h >> LAPS_SHIFT) & LAPS_MASK
}

#[inline(always)]
fn kept_of(h: u64) -> Tag {
    Tag::from_bits(h >> KEPT_SHIFT)
}

/// A head of `tag` whose sequence counts the outcomes of `kept`.
#[inline(always)]
fn head(tag: Tag, kept: Tag, laps: u64, pos: u64) -> u64 {
    (tag.bits() << TAG_SHIFT)
        | (kept.bits() << KEPT_SHIFT)
        | ((laps & LAPS_MASK) << LAPS_SHIFT)
        | (pos & POS_MASK)
}

/// `h` with another sequence position.
#[inline(always)]
fn moved(h: u64, laps: u64, pos: u64) -> u64 {
    head(tag_of_head(h), kept_of(h), laps, pos)
}

#[inline]
fn slot_value(tag: Tag, bits: u32) -> u32 {
    ((tag.bits() as u32) << 16) | bits
}

/// Decodes a 24-bit two's-complement field.
#[inline]
fn field(v: u64, shift: u32) -> i64 {
    let raw = (v >> shift) & FIELD_MASK;
    ((raw << (64 - FIELD_BITS)) as i64) >> (64 - FIELD_BITS)
}

#[inline]
fn counts_word(tag: Tag, failures: i64, slow: i64) -> u64 {
    (tag.bits() << 48)
        | (((failures as u64) & FIELD_MASK) << FIELD_BITS)
        | ((slow as u64) & FIELD_MASK)
}

pub(crate) struct CountWindow {
    head: CachePadded<AtomicU64>,
    counts: CachePadded<AtomicU64>,
    /// Calls recorded under tags that are no longer current (for lifetime totals).
    retired: AtomicU64,
    /// Keeps the slots' tags comparable (see the module doc).
    sweeper: Sweeper,
    slots: Box<[AtomicU32]>,
    size: u64,
}

impl CountWindow {
    /// A window of the last `size` outcomes, counting for `tag`. `size` is in `1..=MAX_SIZE`
    /// (the config validates it).
    pub(crate) fn new(size: u32, tag: Tag) -> Self {
        let size = size.clamp(1, MAX_SIZE) as u64;
        // Slots start empty under the current tag.
        let empty = slot_value(tag, 0);
        CountWindow {
            head: CachePadded::new(atomic_u64(head(tag, tag, 0, 0))),
            counts: CachePadded::new(atomic_u64(counts_word(tag, 0, 0))),
            retired: atomic_u64(0),
            sweeper: Sweeper::new(size),
            slots: (0..size).map(|_| atomic_u32(empty)).collect(),
            size,
        }
    }

    /// Outcomes recorded under the head's tag (since the last fold, see [`Self::step`]).
    #[inline(always)]
    fn seq(&self, h: u64) -> u64 {
        laps_of(h) * self.size + pos_of(h)
    }

    /// The head after claiming slot `pos_of(h)`, and the calls to retire (see [`step_by`]).
    ///
    /// [`step_by`]: Self::step_by
    #[inline(always)]
    fn step(&self, h: u64) -> (u64, u64) {
        self.step_by(h, 1)
    }

    /// The head after claiming the `m` (at most `size`) positions from `pos_of(h)`, and the
    /// calls to retire: when `laps` would overflow, the sequence folds back to one full lap
    /// (still "full", same position) and the folded calls move to `retired`.
    #[inline(always)]
    fn step_by(&self, h: u64, m: u64) -> (u64, u64) {
        let (mut laps, mut pos) = (laps_of(h), pos_of(h) + m);
        if pos >= self.size {
            pos -= self.size;
            laps += 1;
        }
        if laps > LAPS_MASK {
            return (moved(h, 1, pos), (laps - 1) * self.size);
        }
        (moved(h, laps, pos), 0)
    }

    /// Moves `head` to `tag` if it holds an older one; returns the new head and the slot
    /// claimed (with `claim`), or `None` if `head` holds a newer tag. `keep` keeps the old
    /// position and laps (sealing: the window stops accepting the old tag but still shows its
    /// counts).
    #[inline]
    fn advance_head(
        &self,
        tag: Tag,
        claim: bool,
        keep: bool,
        live: Live<'_>,
    ) -> Option<(u64, u64)> {
        // RMW / LOAD: see the orderings note in `window`.
        let mut cur = self.head.load(LOAD);
        loop {
            let t = tag_of_head(cur);
            let (next, claimed, retire) = match tag.age_of(t) {
                Age::Current => {
                    if !claim {
                        return Some((cur, 0));
                    }
                    let (next, retire) = self.step(cur);
                    (next, pos_of(cur), retire)
                }
                // Moving to a newer tag: only while the caller's generation is current.
                Age::Older if !live() => return None,
                // Sealing keeps the sequence of the generation it counts (the head's own tag,
                // or the one an earlier seal kept).
                Age::Older if keep => (head(tag, kept_of(cur), laps_of(cur), pos_of(cur)), 0, 0),
                Age::Older => (head(tag, tag, 0, claim as u64), 0, self.seq(cur)),
                Age::Newer => return None,
            };
            match self.head.compare_exchange_weak(cur, next, RMW, LOAD) {
                Ok(_) => {
                    if retire != 0 {
                        // RMW: a lifetime total, read only for metrics.
                        self.retired.fetch_add(retire, RMW);
                    }
                    if t != tag {
                        self.sweeper
                            .sweep(tag.since(t), |i| self.sweep_slot(i, tag));
                    }
                    return Some((next, claimed));
                }
                Err(found) => cur = found,
            }
        }
    }

    /// The sweep's visit: a slot holding a tag older than `tag` becomes an empty slot of
    /// `tag`. A slot found current or newer is left alone, and so is one that changes under the
    /// CAS (its writer's tag is at least as new).
    fn sweep_slot(&self, i: usize, tag: Tag) {
        let slot = &self.slots[i];
        let cur = slot.load(LOAD);
        if tag.age_of(tag_of_slot(cur)) == Age::Older {
            // RMW / LOAD: see the orderings note in `window`.
            let _ = slot.compare_exchange(cur, slot_value(tag, 0), RMW, LOAD);
        }
    }

    /// Adds the given deltas to `counts` under `tag`; returns the new counts word, or `None`
    /// if `counts` holds a newer tag. An older tag's counts are dropped, or kept with `keep`.
    #[inline]
    fn adjust_counts(&self, tag: Tag, d_fail: i64, d_slow: i64, keep: bool) -> Option<u64> {
        let mut cur = self.counts.load(LOAD);
        loop {
            let (f, s) = match tag.age_of(tag_of_counts(cur)) {
                Age::Current if d_fail == 0 && d_slow == 0 => return Some(cur),
                Age::Current => (field(cur, FIELD_BITS), field(cur, 0)),
                // `counts` follows `head`, whose moves are guarded (`Live`): it moves to `tag`
                // only once `head` holds it. (Checked again after any failed CAS: every move of
                // `counts` changes its value.)
                Age::Older if tag_of_head(self.head.load(LOAD)) != tag => return None,
                Age::Older if keep => (field(cur, FIELD_BITS), field(cur, 0)),
                Age::Older => (0, 0),
                Age::Newer => return None,
            };
            let next = counts_word(tag, f + d_fail, s + d_slow);
            match self.counts.compare_exchange_weak(cur, next, RMW, LOAD) {
                Ok(_) => return Some(next),
                Err(found) => cur = found,
            }
        }
    }

    fn decode(&self, head_word: u64, counts_word: u64, tag: Tag) -> Counts {
        let calls = if tag_of_head(head_word) == tag {
            self.seq(head_word).min(self.size)
        } else {
            0
        };
        let (failures, slow) = if tag_of_counts(counts_word) == tag {
            (field(counts_word, FIELD_BITS), field(counts_word, 0))
        } else {
            (0, 0)
        };
        let clamp = |v: i64| (v.max(0) as u64).min(calls);
        Counts {
            calls,
            failures: clamp(failures),
            slow: clamp(slow),
        }
    }

    /// A success under the current tag into the ring itself (one CAS on `head`), if it does
    /// not reach `probe`.
    #[inline(always)]
    fn record_success_ring(&self, tag: Tag, probe: u64) -> Option<Recorded> {
        let mut cur = self.head.load(LOAD);
        loop {
            // `probe` can only be reached on the first lap.
            if tag_of_head(cur) != tag || (laps_of(cur) == 0 && pos_of(cur) + 1 == probe) {
                return None;
            }
            let (next, retire) = self.step(cur);
            if retire != 0 {
                return None;
            }
            // RMW / LOAD: see the orderings note in `window`.
            match self.head.compare_exchange_weak(cur, next, RMW, LOAD) {
                Ok(_) => break,
                Err(found) => cur = found,
            }
        }
        let slot = &self.slots[pos_of(cur) as usize];
        if slot.load(LOAD) == slot_value(tag, PRESENT) {
            return Some(Recorded::Counted(None));
        }
        Some(self.write_slot(slot, tag, 0, false))
    }

    /// Records `bits` under `tag`. Counts are returned when `want_counts`, or when this record
    /// is this generation's `probe`-th (the minimum-calls threshold: the one moment a
    /// success can make a rate reach its threshold; later successes only lower the rates).
    /// The caller drains the stripes first (see "Striped successes"; `Window` does).
    #[inline]
    pub(crate) fn record(
        &self,
        tag: Tag,
        bits: u32,
        want_counts: bool,
        probe: u64,
        live: Live<'_>,
    ) -> Recorded {
        let Some((h, pos)) = self.advance_head(tag, true, false, live) else {
            return Recorded::Late;
        };
        let want_counts = want_counts || self.seq(h) == probe;
        self.write_slot(&self.slots[pos as usize], tag, bits, want_counts)
    }

    /// A record that claimed a position in `head` and then found a newer tag in its slot or in
    /// `counts` is late: take its claim back out of the lifetime total, so that it is counted
    /// as late only (not also as a call).
    ///
    /// Its claim is in exactly one place: in the sequence of a sealed head that still keeps
    /// `tag`'s outcomes (then it comes out of that sequence, so the sealed window's calls match
    /// its counts), or, once a reset moved the head on, in `retired` (where that reset put it).
    #[cold]
    fn unclaim(&self, tag: Tag) {
        // RMW / LOAD: see the orderings note in `window`.
        let mut cur = self.head.load(LOAD);
        while kept_of(cur) == tag && tag_of_head(cur) != tag && self.seq(cur) > 0 {
            let next = match (laps_of(cur), pos_of(cur)) {
                (laps, 0) => moved(cur, laps - 1, self.size - 1),
                (laps, pos) => moved(cur, laps, pos - 1),
            };
            match self.head.compare_exchange_weak(cur, next, RMW, LOAD) {
                Ok(_) => return,
                Err(found) => cur = found,
            }
        }
        // RMW: a lifetime total, read only for metrics. Wrapping: `retired` may dip below
        // the calls still counted in `head`; their sum stays exact.
        self.retired.fetch_sub(1, RMW);
    }

    /// Swaps `bits` into `slot` (claimed under `tag`) and applies the difference to `counts`.
    #[inline]
    fn write_slot(&self, slot: &AtomicU32, tag: Tag, bits: u32, want_counts: bool) -> Recorded {
        let new = slot_value(tag, bits | PRESENT);
        let mut cur = slot.load(LOAD);
        let old_bits = loop {
            if cur == new {
                break bits | PRESENT;
            }
            let old = match tag.age_of(tag_of_slot(cur)) {
                Age::Current => cur & 0xFFFF,
                Age::Older => 0,
                Age::Newer => {
                    self.unclaim(tag);
                    return Recorded::Late;
                }
            };
            match slot.compare_exchange_weak(cur, new, RMW, LOAD) {
                Ok(_) => break old,
                Err(found) => cur = found,
            }
        };
        let bit = |b: u32, m: u32| i64::from(b & m != 0);
        let d_fail = bit(bits, FAILED) - bit(old_bits, FAILED);
        let d_slow = bit(bits, SLOW) - bit(old_bits, SLOW);
        if d_fail == 0 && d_slow == 0 && !want_counts {
            return Recorded::Counted(None);
        }
        match self.adjust_counts(tag, d_fail, d_slow, false) {
            // The head this record claimed from is older than `c`: later records' failures may
            // be in `c`, so the calls come from a head read now (see `snapshot`).
            Some(c) => Recorded::Counted(want_counts.then(|| self.snapshot(tag, || c))),
            None => {
                self.unclaim(tag);
                Recorded::Late
            }
        }
    }

    pub(crate) fn reset(&self, tag: Tag, live: Live<'_>) {
        self.advance_head(tag, false, false, live);
        self.adjust_counts(tag, 0, 0, false);
    }

    /// Stops accepting outcomes of tags older than `tag`, keeping the counts visible.
    pub(crate) fn seal(&self, tag: Tag, live: Live<'_>) {
        self.advance_head(tag, false, true, live);
        self.adjust_counts(tag, 0, 0, true);
    }

    pub(crate) fn counts(&self, tag: Tag) -> Counts {
        self.snapshot(tag, || self.counts.load(LOAD))
    }

    /// The counts for `tag` from a `counts` word (loaded by `counts_word`, or the one the
    /// caller just wrote) and a `head` read after it: the end of a span, outcome word first
    /// (see `snapshot`), so the calls seen are never fewer than the positions of the failures
    /// and slow calls seen.
    #[inline]
    fn snapshot(&self, tag: Tag, counts_word: impl FnOnce() -> u64) -> Counts {
        let (h, c) = read_end(counts_word, || self.head.load(LOAD));
        self.decode(h, c, tag)
    }

    pub(crate) fn current_tag(&self) -> Tag {
        tag_of_head(self.head.load(LOAD))
    }

    pub(crate) fn lifetime_calls(&self) -> u64 {
        let h = self.head.load(LOAD);
        self.retired.load(LOAD).wrapping_add(self.seq(h))
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<AtomicU32>()
    }
}

#[cfg(all(test, not(breakerbox_loom)))]
mod tests;
