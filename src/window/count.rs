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
//! # Striped successes
//! Once a generation has reached its minimum calls (`probe`), a success no longer CASes
//! `head`: it adds one to the calling thread's stripe (`crate::stripes`), a word on a line
//! only that thread writes, `[tag:16][count:STRIPE_COUNT_BITS]`, with a load and a store. The
//! successes reach the ring in batches: each stripe's `merged` word says how many of its
//! successes were taken already, and whoever moves it forward (one CAS) takes the difference
//! and writes that many successes into the ring with one CAS on `head` (claiming that many
//! positions) and a pass over their slots (a slot that already holds a success of the tag is
//! only read). They are taken
//! - by the owner, every [`BATCH`] successes;
//! - by any thread before it records anything else into the window (a failure, a slow call, a
//!   success while the window is below its minimum), before the window's counts are read, and
//!   before a transition seals or resets the window (successes of a past generation still
//!   waiting in a stripe go to the lifetime total only).
//!
//! Successes only lower the rates, and every outcome that can raise one drains the stripes
//! first, so sequentially (one thread, or threads ordered by happens-before) the window is
//! exactly what it would be without stripes, and so are the trip decisions. Under contention
//! the window is "the last N outcomes" up to the outcomes in flight and, per thread with a
//! stripe, at most `BATCH - 1` successes that a racing drain did not see yet (they are taken by
//! the next drain); the loom models check both bounds. A success that races the end of its
//! generation is a call in the lifetime total but may miss the sealed window's counts.

use super::snapshot::read_end;
use super::tag::{Age, Sweeper, Tag};
use super::{Counts, Live, Recorded, FAILED, LOAD, PRESENT, RMW, SLOW};
use crate::stripes::{Stripe, Stripes};
use crate::sync::{atomic_u32, atomic_u64, AtomicU32, AtomicU64, Ordering};
use crossbeam_utils::CachePadded;

/// Largest count window (2^23 - 1 outcomes).
pub const MAX_SIZE: u32 = (1 << 23) - 1;

/// Bits of a stripe's success count: 48 normally, 4 in loom and narrow-tag builds (so that
/// models and tests wrap it). Counts compare modulo `2^STRIPE_COUNT_BITS`, which is right while
/// a stripe's untaken successes stay below half of it; they stay below [`BATCH`].
#[cfg(not(any(breakerbox_loom, breakerbox_narrow_tags)))]
pub(crate) const STRIPE_COUNT_BITS: u32 = 48;
/// Bits of a stripe's success count (see the normal build's doc).
#[cfg(any(breakerbox_loom, breakerbox_narrow_tags))]
pub(crate) const STRIPE_COUNT_BITS: u32 = 4;

/// A stripe's owner takes its successes into the ring every `BATCH` of them: 4,096 normally, 2
/// in loom and narrow-tag builds.
#[cfg(not(any(breakerbox_loom, breakerbox_narrow_tags)))]
pub(crate) const BATCH: u64 = 4096;
/// A stripe's owner takes its successes into the ring every `BATCH` of them (see the normal
/// build's doc).
#[cfg(any(breakerbox_loom, breakerbox_narrow_tags))]
pub(crate) const BATCH: u64 = 2;

const STRIPE_COUNT_MASK: u64 = (1 << STRIPE_COUNT_BITS) - 1;
const _: () = assert!(BATCH.is_power_of_two() && BATCH < 1 << (STRIPE_COUNT_BITS - 1));

#[inline(always)]
fn stripe_word(tag: Tag, count: u64) -> u64 {
    (tag.bits() << TAG_SHIFT) | (count & STRIPE_COUNT_MASK)
}

#[inline(always)]
fn stripe_tag(w: u64) -> Tag {
    Tag::from_bits(w >> TAG_SHIFT)
}

#[inline(always)]
fn stripe_count(w: u64) -> u64 {
    w & STRIPE_COUNT_MASK
}

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

/// Takes the successes of `tag` in `stripe` that no one has taken yet: moves `merged` up to
/// the stripe's count with one CAS and returns the difference (0 if the stripe counts another
/// generation). Each success is taken exactly once, by whichever CAS moves `merged` past it.
fn take_pending(stripe: &Stripe, tag: Tag) -> u64 {
    // LOAD / RMW on `merged`: each CAS that moves it synchronizes with the next thread's load
    // of it, so a thread that reads `merged` at count `c` then loads `successes` sees a count
    // of at least `c` (coherence after happens-before; the mover loaded that count before its
    // CAS). The difference below is therefore never negative. `successes` is loaded with
    // Acquire to pair with the owner's Release store (see `record_success_striped`).
    let mut m = stripe.merged.load(LOAD);
    loop {
        let s = stripe.successes.load(LOAD);
        if stripe_tag(s) != tag {
            return 0;
        }
        let taken = if stripe_tag(m) == tag {
            stripe_count(m)
        } else {
            0
        };
        let k = stripe_count(s).wrapping_sub(taken) & STRIPE_COUNT_MASK;
        if k == 0 {
            return 0;
        }
        match stripe
            .merged
            .compare_exchange(m, stripe_word(tag, stripe_count(s)), RMW, LOAD)
        {
            Ok(_) => return k,
            Err(found) => m = found,
        }
    }
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

    /// The common case on its own: a success under the current tag that does not reach
    /// `probe`. Returns `None` without touching anything when the case is not that one (the
    /// caller then takes [`record`](Self::record)); otherwise records it: into the thread's
    /// stripe once the generation is past `probe` (a load and a store, see "Striped
    /// successes"), else with one CAS on `head` and one load of the slot.
    #[inline(always)]
    pub(crate) fn record_success_fast(
        &self,
        tag: Tag,
        probe: u64,
        stripes: &Stripes,
    ) -> Option<Recorded> {
        if let Some(stripe) = stripes.mine() {
            if let Some(r) = self.record_success_striped(tag, probe, stripe) {
                return Some(r);
            }
        }
        self.record_success_ring(tag, probe)
    }

    /// A success into `stripe` (which only the calling thread writes), if the generation `tag`
    /// is current in `head` and past `probe`; `None` otherwise, without touching anything.
    #[inline(always)]
    pub(crate) fn record_success_striped(
        &self,
        tag: Tag,
        probe: u64,
        stripe: &Stripe,
    ) -> Option<Recorded> {
        let h = self.head.load(LOAD);
        if tag_of_head(h) != tag || kept_of(h) != tag || (laps_of(h) == 0 && pos_of(h) < probe) {
            return None;
        }
        // Relaxed: only this thread writes the word; it reads its own last store.
        let cur = stripe.successes.load(Ordering::Relaxed);
        if stripe_tag(cur) != tag {
            return self.restart_stripe(tag, stripe, cur);
        }
        let next = stripe_word(tag, stripe_count(cur) + 1);
        // Release, and a store rather than an RMW: only this thread writes the word, so nothing
        // comes between load and store. A drain's Acquire load that reads this store sees
        // everything this thread did before, in particular its `restart_stripe` CAS on
        // `merged` (which the drain's own CAS must come after). On x86-64 a plain `mov`; on
        // AArch64 an `STLR`, no barrier.
        stripe.successes.store(next, Ordering::Release);
        if stripe_count(next) & (BATCH - 1) == 0 {
            self.take_batch(tag, stripe);
        }
        Some(Recorded::Counted(None))
    }

    /// The owner's stripe holds another generation's count: take what is left of it (a past
    /// generation's successes: calls for the lifetime total only), then count this success as
    /// the first of `tag`.
    #[cold]
    fn restart_stripe(&self, tag: Tag, stripe: &Stripe, cur: u64) -> Option<Recorded> {
        let rest = take_pending(stripe, stripe_tag(cur));
        if rest != 0 {
            // RMW: a lifetime total, read only for metrics.
            self.retired.fetch_add(rest, RMW);
        }
        // Release: see `record_success_striped`; this is the store that orders the CAS in
        // `take_pending` above before any drain that sees the new tag.
        stripe
            .successes
            .store(stripe_word(tag, 1), Ordering::Release);
        Some(Recorded::Counted(None))
    }

    /// The owner's batch: its stripe's untaken successes into the ring.
    #[cold]
    fn take_batch(&self, tag: Tag, stripe: &Stripe) {
        let k = take_pending(stripe, tag);
        self.merge_successes(tag, k);
    }

    /// Takes every stripe's untaken successes: those of the generation `head` counts go into
    /// the ring, those of past generations into the lifetime total. See "Striped successes".
    pub(crate) fn drain(&self, stripes: &Stripes) {
        let mut all = stripes.all().peekable();
        if all.peek().is_none() {
            return;
        }
        let h = self.head.load(LOAD);
        let live = tag_of_head(h);
        let open = kept_of(h) == live;
        let (mut ring, mut past) = (0, 0);
        for s in all {
            let t = stripe_tag(s.successes.load(LOAD));
            let k = take_pending(s, t);
            if t == live && open {
                ring += k;
            } else {
                past += k;
            }
        }
        if past != 0 {
            // RMW: a lifetime total, read only for metrics.
            self.retired.fetch_add(past, RMW);
        }
        self.merge_successes(live, ring);
    }

    /// Writes `k` successes of `tag` into the ring: one CAS on `head` claims `min(k, size)`
    /// positions (the rest would slide out at once: they go to `retired`), then each claimed
    /// slot that does not hold a success of `tag` already is written as one. If `head` no
    /// longer counts `tag`, the successes are calls of a past generation: lifetime total only.
    fn merge_successes(&self, tag: Tag, k: u64) {
        if k == 0 {
            return;
        }
        let m = k.min(self.size);
        // RMW / LOAD: see the orderings note in `window`.
        let mut cur = self.head.load(LOAD);
        let (start, retire) = loop {
            if tag_of_head(cur) != tag || kept_of(cur) != tag {
                // RMW: a lifetime total, read only for metrics.
                self.retired.fetch_add(k, RMW);
                return;
            }
            let (next, folded) = self.step_by(cur, m);
            match self.head.compare_exchange_weak(cur, next, RMW, LOAD) {
                Ok(_) => break (pos_of(cur), k - m + folded),
                Err(found) => cur = found,
            }
        };
        // With no failure or slow call counted for `tag`, no claimed slot holds one: each
        // holds a success of `tag`, or is empty or stale, which every later write treats
        // alike. Writing them would change nothing, so the batch is that one CAS. (A racing
        // recorder whose slot swap is not in `counts` yet may leave its outcome in a slot
        // claimed here: "up to the outcomes in flight".)
        let c = self.counts.load(LOAD);
        let clean = tag_of_counts(c) == tag && field(c, FIELD_BITS) == 0 && field(c, 0) == 0;
        let mut retire = retire;
        if !clean {
            let want = slot_value(tag, PRESENT);
            let mut i = start as usize;
            for _ in 0..m {
                let slot = &self.slots[i];
                // A late slot took its claim back (`unclaim`); the success was admitted in
                // time, so it stays a call of the lifetime total.
                if slot.load(LOAD) != want && self.write_slot(slot, tag, 0, false) == Recorded::Late
                {
                    retire += 1;
                }
                i += 1;
                if i == self.slots.len() {
                    i = 0;
                }
            }
        }
        if retire != 0 {
            // RMW: a lifetime total, read only for metrics.
            self.retired.fetch_add(retire, RMW);
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
mod tests {
    use super::*;
    use crate::stripes::Stripes;
    use crate::window::ALWAYS;

    fn t(n: u32) -> Tag {
        Tag::of(n)
    }

    fn exact(calls: u64, failures: u64, slow: u64) -> Counts {
        Counts {
            calls,
            failures,
            slow,
        }
    }

    fn rec(w: &CountWindow, tag: u32, bits: u32) -> Counts {
        match w.record(t(tag), bits, true, 0, ALWAYS) {
            Recorded::Counted(Some(c)) => c,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn slides_old_outcomes_out() {
        let w = CountWindow::new(4, t(1));
        for _ in 0..4 {
            rec(&w, 1, FAILED);
        }
        assert_eq!(
            w.counts(t(1)),
            Counts {
                calls: 4,
                failures: 4,
                slow: 0
            }
        );
        rec(&w, 1, 0);
        rec(&w, 1, SLOW);
        assert_eq!(
            w.counts(t(1)),
            Counts {
                calls: 4,
                failures: 2,
                slow: 1
            }
        );
        for _ in 0..4 {
            rec(&w, 1, 0);
        }
        assert_eq!(
            w.counts(t(1)),
            Counts {
                calls: 4,
                failures: 0,
                slow: 0
            }
        );
        assert_eq!(w.lifetime_calls(), 10);
    }

    #[test]
    fn new_tag_starts_empty_and_old_tag_is_late() {
        let w = CountWindow::new(3, t(1));
        rec(&w, 1, FAILED);
        rec(&w, 1, FAILED);
        w.reset(t(2), ALWAYS);
        assert_eq!(w.counts(t(2)), Counts::default());
        assert_eq!(w.record(t(1), FAILED, true, 0, ALWAYS), Recorded::Late);
        let c = rec(&w, 2, FAILED);
        assert_eq!(
            c,
            Counts {
                calls: 1,
                failures: 1,
                slow: 0
            }
        );
        // Slot 0 still holds tag 1's failure, which must not be subtracted from tag 2.
        rec(&w, 2, 0);
        rec(&w, 2, 0);
        assert_eq!(
            rec(&w, 2, 0),
            Counts {
                calls: 3,
                failures: 0,
                slow: 0
            }
        );
        assert_eq!(w.lifetime_calls(), 6);
    }

    #[test]
    fn seal_keeps_counts_but_makes_old_tag_late() {
        let w = CountWindow::new(3, t(1));
        rec(&w, 1, FAILED);
        rec(&w, 1, 0);
        w.seal(t(2), ALWAYS);
        assert_eq!(
            w.counts(t(2)),
            Counts {
                calls: 2,
                failures: 1,
                slow: 0
            }
        );
        assert_eq!(w.record(t(1), FAILED, true, 0, ALWAYS), Recorded::Late);
        w.reset(t(3), ALWAYS);
        assert_eq!(w.counts(t(3)), Counts::default());
        assert_eq!(w.lifetime_calls(), 2);
    }

    #[test]
    fn recording_helps_a_missing_reset() {
        let w = CountWindow::new(2, t(1));
        rec(&w, 1, FAILED);
        // Nobody called reset(3); the first record of tag 3 starts the window afresh.
        assert_eq!(
            rec(&w, 3, 0),
            Counts {
                calls: 1,
                failures: 0,
                slow: 0
            }
        );
    }

    /// Drives two windows through the same outcomes: `ring` records everything in its ring,
    /// `striped` records successes into two stripes by turns (two owners, in sequence) and
    /// drains before everything else, as the breaker does. They must agree after every step.
    #[test]
    fn striped_successes_are_exact_sequentially() {
        // Miri interprets every step: fewer there.
        const STEPS: u32 = if cfg!(miri) { 400 } else { 20_000 };
        let size = 8;
        for probe in [0, 3] {
            let ring = CountWindow::new(size, t(0));
            let striped = CountWindow::new(size, t(0));
            let stripes = Stripes::fixed(2);
            let mut gen = 0;
            let mut x = 0x9E37_79B9_u32;
            for step in 0..STEPS {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                match x % 64 {
                    // A transition now and then: the next CLOSED generation.
                    0 => {
                        gen += 1;
                        ring.reset(t(gen), ALWAYS);
                        striped.drain(&stripes);
                        striped.reset(t(gen), ALWAYS);
                    }
                    1..=6 => {
                        let bits = if x.is_multiple_of(2) {
                            FAILED
                        } else {
                            FAILED | SLOW
                        };
                        ring.record(t(gen), bits, false, probe, ALWAYS);
                        striped.drain(&stripes);
                        striped.record(t(gen), bits, false, probe, ALWAYS);
                    }
                    _ => {
                        ring.record(t(gen), 0, false, probe, ALWAYS);
                        let stripe = stripes.at((step % 2) as usize);
                        if striped
                            .record_success_striped(t(gen), probe, stripe)
                            .is_none()
                        {
                            striped.drain(&stripes);
                            striped.record(t(gen), 0, false, probe, ALWAYS);
                        }
                    }
                }
                striped.drain(&stripes);
                assert_eq!(striped.counts(t(gen)), ring.counts(t(gen)), "step {step}");
                assert_eq!(
                    striped.lifetime_calls(),
                    ring.lifetime_calls(),
                    "step {step}"
                );
            }
        }
    }

    #[test]
    fn the_owner_takes_its_batch_into_the_ring() {
        let w = CountWindow::new(4, t(1));
        let stripes = Stripes::fixed(1);
        for _ in 0..4 {
            rec(&w, 1, FAILED);
        }
        for _ in 0..BATCH {
            assert!(w.record_success_striped(t(1), 0, stripes.at(0)).is_some());
        }
        // No drain: the batch itself pushed failures out (all four, or BATCH of them).
        assert_eq!(w.counts(t(1)), exact(4, 4u64.saturating_sub(BATCH), 0));
        assert_eq!(w.lifetime_calls(), 4 + BATCH);
    }

    #[test]
    fn a_success_that_missed_the_drain_is_a_call_of_its_own_generation_only() {
        let w = CountWindow::new(4, t(1));
        let stripes = Stripes::fixed(1);
        let s = stripes.at(0);
        rec(&w, 1, FAILED);
        assert!(w.record_success_striped(t(1), 0, s).is_some());
        w.drain(&stripes);
        assert_eq!(w.lifetime_calls(), 2);
        // This success lands after the transition's drain (it raced it): the transition
        // below does not drain again.
        assert!(w.record_success_striped(t(1), 0, s).is_some());
        w.seal(t(2), ALWAYS);
        w.reset(t(3), ALWAYS);
        assert_eq!(w.counts(t(3)), Counts::default());
        assert!(
            w.record_success_striped(t(1), 0, s).is_none(),
            "late: head moved on"
        );
        // The owner's next success, of generation 3, moves the straggler to the lifetime
        // total (not into generation 3's window) and counts itself.
        assert!(w.record_success_striped(t(3), 0, s).is_some());
        w.drain(&stripes);
        assert_eq!(w.counts(t(3)), exact(1, 0, 0));
        assert_eq!(w.lifetime_calls(), 4);
    }

    #[test]
    fn a_drain_moves_past_generations_to_the_lifetime_total() {
        let w = CountWindow::new(4, t(1));
        let stripes = Stripes::fixed(2);
        assert!(w.record_success_striped(t(1), 0, stripes.at(0)).is_some());
        assert!(w.record_success_striped(t(1), 0, stripes.at(1)).is_some());
        w.seal(t(2), ALWAYS); // without a drain, as if both raced it
        w.drain(&stripes);
        assert_eq!(w.lifetime_calls(), 2);
        assert_eq!(w.counts(t(2)).calls, 0);
        w.drain(&stripes); // nothing is taken twice
        assert_eq!(w.lifetime_calls(), 2);
    }

    /// Found by `tests/stripes.rs` (a worker preempted while another thread made ~34,000
    /// resets): a recorder whose generation ended more than half the tag space ago sees the
    /// head's tag as *older* than its own and, unguarded, moved the head to its ancient tag,
    /// after which every current record looked late. The window now asks whether the caller's
    /// generation is still live before moving `head` to a newer tag.
    #[test]
    #[cfg_attr(
        miri,
        ignore = "32,775 resets; the normal and narrow-tag runs cover it"
    )]
    fn a_recorder_from_half_the_tag_space_ago_cannot_move_the_head() {
        use crate::window::tag::TAG_BITS;
        let w = CountWindow::new(4, t(0));
        let ended: &dyn Fn() -> bool = &|| false;
        let far = (1u32 << (TAG_BITS - 1)) + 7;
        for g in 1..=far {
            w.reset(t(g), ALWAYS);
        }
        rec(&w, far, FAILED);
        // Tag 5 is `far - 5` generations behind: more than half the tag space, so it reads
        // as newer than the head's.
        assert_eq!(t(5).age_of(t(far)), crate::window::tag::Age::Older);
        assert_eq!(w.record(t(5), 0, true, 0, ended), Recorded::Late);
        assert_eq!(w.current_tag(), t(far));
        w.reset(t(5), ended);
        w.seal(t(5), ended);
        assert_eq!(w.current_tag(), t(far));
        assert_eq!(rec(&w, far, 0).calls, 2);
    }

    #[test]
    fn negative_fields_decode_and_clamp() {
        let word = counts_word(t(3), -2, 5);
        assert_eq!(field(word, FIELD_BITS), -2);
        assert_eq!(field(word, 0), 5);
    }

    #[test]
    fn a_late_claim_leaves_the_sealed_window() {
        // B claims a position, A records and the breaker seals, then B finds itself late.
        let w = CountWindow::new(2, t(0));
        let (_, pos) = w.advance_head(t(0), true, false, ALWAYS).unwrap();
        rec(&w, 0, FAILED);
        w.seal(t(1), ALWAYS);
        assert_eq!(
            w.write_slot(&w.slots[pos as usize], t(0), FAILED, false),
            Recorded::Late
        );
        assert_eq!(
            w.counts(t(1)),
            Counts {
                calls: 1,
                failures: 1,
                slow: 0
            }
        );
        assert_eq!(w.lifetime_calls(), 1);
        // After a reset the claim would be in `retired`: the total stays exact either way.
        let (_, pos) = w.advance_head(t(1), true, false, ALWAYS).unwrap();
        w.reset(t(2), ALWAYS);
        w.write_slot(&w.slots[pos as usize], t(1), 0, false);
        assert_eq!(w.lifetime_calls(), 1);
    }

    #[test]
    #[cfg_attr(miri, ignore = "millions of steps; the normal test run covers it")]
    fn every_slot_is_swept_within_sweep_span_generations() {
        use crate::window::tag::{Age, SWEEP_SPAN};
        let w = CountWindow::new(MAX_SIZE.min(100_000), t(0));
        for _ in 0..1_000 {
            rec(&w, 0, FAILED);
        }
        // A long outage: seals only, nothing recorded.
        let mut gen = 0u32;
        for _ in 0..3 {
            for _ in 0..SWEEP_SPAN {
                gen += 1;
                w.seal(t(gen), ALWAYS);
            }
            for (i, slot) in w.slots.iter().enumerate() {
                let stored = tag_of_slot(slot.load(LOAD));
                assert!(
                    t(gen).since(stored) <= SWEEP_SPAN,
                    "slot {i} lags {} generations",
                    t(gen).since(stored)
                );
                assert_ne!(t(gen).age_of(stored), Age::Newer);
            }
        }
        w.reset(t(gen + 1), ALWAYS);
        assert_eq!(rec(&w, gen + 1, FAILED).failures, 1);
    }
}
