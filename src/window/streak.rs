//! Consecutive failures, tagged with the generation like the windows.
//!
//! The word is brought to the new generation on every transition ([`Streak::refresh`]), so its
//! tag is never more than the transitions of one preempted operation behind.

use super::tag::{Age, Tag};
use super::{Live, LOAD, RMW};
use crate::sync::{atomic_u64, AtomicU64};

const COUNT_BITS: u32 = 48;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// `[tag:16][consecutive failures:48]` in one word.
pub(crate) struct Streak {
    word: AtomicU64,
}

#[inline]
fn split(w: u64) -> (Tag, u64) {
    (Tag::from_bits(w >> COUNT_BITS), w & COUNT_MASK)
}

#[inline]
fn join(tag: Tag, n: u64) -> u64 {
    (tag.bits() << COUNT_BITS) | (n & COUNT_MASK)
}

impl Streak {
    pub(crate) fn new(tag: Tag) -> Self {
        Streak {
            word: atomic_u64(join(tag, 0)),
        }
    }

    /// Applies `f` (given the stored count, or `None` when the stored tag is older) unless the
    /// stored tag is newer than `tag`. Returns the count written, or `None` if late.
    #[inline]
    fn update(
        &self,
        tag: Tag,
        f: impl Fn(Option<u64>) -> Option<u64>,
        live: Live<'_>,
    ) -> Option<u64> {
        // RMW / LOAD: see the orderings note in `window`.
        let mut cur = self.word.load(LOAD);
        loop {
            let (t, n) = split(cur);
            let next = match tag.age_of(t) {
                Age::Current => f(Some(n)),
                // Moving to a newer tag: only while the caller's generation is current.
                Age::Older if !live() => return None,
                Age::Older => f(None),
                Age::Newer => return None,
            };
            let Some(next) = next else {
                return Some(n);
            };
            match self
                .word
                .compare_exchange_weak(cur, join(tag, next), RMW, LOAD)
            {
                Ok(_) => return Some(next),
                Err(found) => cur = found,
            }
        }
    }

    /// A failure under `tag`: the streak length after it, or `None` if late.
    pub(crate) fn fail(&self, tag: Tag, live: Live<'_>) -> Option<u64> {
        self.update(
            tag,
            |n| Some(n.unwrap_or(0).saturating_add(1).min(COUNT_MASK)),
            live,
        )
    }

    /// A success under `tag`: ends the streak. Costs one load when there is no streak.
    #[inline]
    pub(crate) fn succeed(&self, tag: Tag, live: Live<'_>) {
        self.update(tag, |n| (n != Some(0)).then_some(0), live);
    }

    /// Starts generation `tag` with no streak (a no-op if the word is already at `tag` or newer).
    pub(crate) fn refresh(&self, tag: Tag, live: Live<'_>) {
        self.update(tag, |n| n.is_none().then_some(0), live);
    }

    /// The current streak for `tag`.
    #[cfg(test)]
    pub(crate) fn get(&self, tag: Tag) -> u64 {
        let (t, n) = split(self.word.load(LOAD));
        if t == tag {
            n
        } else {
            0
        }
    }
}

#[cfg(all(test, not(breakerbox_loom)))]
mod tests {
    use super::*;
    use crate::window::ALWAYS;

    #[test]
    fn counts_and_resets_per_tag() {
        let t = Tag::of;
        let s = Streak::new(t(1));
        assert_eq!(s.fail(t(1), ALWAYS), Some(1));
        assert_eq!(s.fail(t(1), ALWAYS), Some(2));
        s.succeed(t(1), ALWAYS);
        assert_eq!(s.get(t(1)), 0);
        assert_eq!(s.fail(t(1), ALWAYS), Some(1));
        assert_eq!(s.fail(t(2), ALWAYS), Some(1), "a newer tag starts afresh");
        assert_eq!(s.fail(t(1), ALWAYS), None, "an older tag is late");
        s.succeed(t(1), ALWAYS);
        assert_eq!(
            s.get(t(2)),
            1,
            "a late success does not end the newer streak"
        );
        s.refresh(t(3), ALWAYS);
        assert_eq!(s.get(t(3)), 0);
        assert_eq!(s.fail(t(2), ALWAYS), None);
    }

    #[test]
    #[cfg_attr(miri, ignore = "millions of steps; the normal test run covers it")]
    fn refreshed_on_every_generation_it_never_wraps_into_the_future() {
        let s = Streak::new(Tag::of(0));
        s.fail(Tag::of(0), ALWAYS);
        for gen in 1..200_000u32 {
            s.refresh(Tag::of(gen), ALWAYS);
        }
        assert_eq!(s.fail(Tag::of(200_000), ALWAYS), Some(1));
        assert_eq!(s.fail(Tag::of(200_000), ALWAYS), Some(2));
    }

    /// See the count window's test of the same name.
    #[test]
    fn a_recorder_from_half_the_tag_space_ago_cannot_move_the_streak() {
        use crate::window::tag::TAG_BITS;
        let far = (1u32 << (TAG_BITS - 1)) + 7;
        let s = Streak::new(Tag::of(far));
        assert_eq!(s.fail(Tag::of(far), ALWAYS), Some(1));
        let ended: &dyn Fn() -> bool = &|| false;
        assert_eq!(s.fail(Tag::of(5), ended), None);
        s.refresh(Tag::of(5), ended);
        assert_eq!(s.fail(Tag::of(far), ALWAYS), Some(2));
    }
}
