//! Striped successes: the count window's successes past the minimum calls, kept per thread
//! and taken into the ring in batches.
//!
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

use super::{
    field, kept_of, laps_of, pos_of, slot_value, tag_of_counts, tag_of_head, CountWindow,
    FIELD_BITS, TAG_SHIFT,
};
use crate::stripes::{Stripe, Stripes};
use crate::sync::Ordering;
use crate::window::tag::Tag;
use crate::window::{Recorded, LOAD, PRESENT, RMW};

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

impl CountWindow {
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
}
