//! Consecutive failures, tagged with the generation like the windows.

use super::newer;
use crate::sync::{atomic_u64, AtomicU64, Ordering};

const COUNT_MASK: u64 = (1 << 48) - 1;

/// `[tag:16][consecutive failures:48]` in one word.
pub(crate) struct Streak {
    word: AtomicU64,
}

#[inline]
fn split(w: u64) -> (u16, u64) {
    ((w >> 48) as u16, w & COUNT_MASK)
}

#[inline]
fn join(tag: u16, n: u64) -> u64 {
    ((tag as u64) << 48) | (n & COUNT_MASK)
}

impl Streak {
    pub(crate) fn new() -> Self {
        Streak {
            word: atomic_u64(0),
        }
    }

    /// A failure under `tag`: the streak length after it, or `None` if late.
    pub(crate) fn fail(&self, tag: u16) -> Option<u64> {
        // AcqRel / Acquire: see the orderings note in `window`.
        let mut cur = self.word.load(Ordering::Acquire);
        loop {
            let (t, n) = split(cur);
            let next = if t == tag {
                join(tag, n.saturating_add(1).min(COUNT_MASK))
            } else if newer(tag, t) {
                join(tag, 1)
            } else {
                return None;
            };
            match self
                .word
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(split(next).1),
                Err(found) => cur = found,
            }
        }
    }

    /// A success under `tag`: ends the streak. Costs one load when there is no streak.
    #[inline]
    pub(crate) fn succeed(&self, tag: u16) {
        let mut cur = self.word.load(Ordering::Acquire);
        loop {
            let (t, n) = split(cur);
            if (t == tag && n == 0) || newer(t, tag) {
                return;
            }
            match self.word.compare_exchange_weak(
                cur,
                join(tag, 0),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(found) => cur = found,
            }
        }
    }

    /// The current streak for `tag`.
    #[cfg(test)]
    pub(crate) fn get(&self, tag: u16) -> u64 {
        let (t, n) = split(self.word.load(Ordering::Acquire));
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

    #[test]
    fn counts_and_resets_per_tag() {
        let s = Streak::new();
        assert_eq!(s.fail(1), Some(1));
        assert_eq!(s.fail(1), Some(2));
        s.succeed(1);
        assert_eq!(s.get(1), 0);
        assert_eq!(s.fail(1), Some(1));
        assert_eq!(s.fail(2), Some(1), "a newer tag starts afresh");
        assert_eq!(s.fail(1), None, "an older tag is late");
        s.succeed(1);
        assert_eq!(s.get(2), 1, "a late success does not end the newer streak");
    }
}
