//! The tag protocol, written once: every window word that outlives a generation carries a
//! *tag* (the low [`TAG_BITS`] bits of the breaker generation it was written for), and every
//! writer compares its own tag with the stored one through [`Tag::age_of`]:
//!
//! | stored tag is | the writer                                                        |
//! |---------------|-------------------------------------------------------------------|
//! | [`Age::Current`] | updates the word                                               |
//! | [`Age::Older`]   | treats the word as empty and replaces it (its content is stale)|
//! | [`Age::Newer`]   | is late: it drops its outcome and changes nothing              |
//!
//! Tags compare with wrapping arithmetic over their width, so the comparison is only right
//! while the two tags are less than half the tag space apart. The windows keep that true for
//! every *stored* word (see the invariant in the `window` module doc); a caller's own tag is
//! checked against the breaker's full generation before it reaches a window.
//!
//! The width is a constant that shrinks to 3 bits in loom builds (`--cfg breakerbox_loom`) and
//! in the narrow-tag test build (`--cfg breakerbox_narrow_tags`), so that models and tests reach
//! wrap-around in a handful of transitions.

/// Bits of a tag: 16 normally, 3 in loom and narrow-tag builds.
#[cfg(not(any(breakerbox_loom, breakerbox_narrow_tags)))]
pub(crate) const TAG_BITS: u32 = 16;
/// Bits of a tag: 16 normally, 3 in loom and narrow-tag builds.
#[cfg(any(breakerbox_loom, breakerbox_narrow_tags))]
pub(crate) const TAG_BITS: u32 = 3;

const TAG_MASK: u32 = (1 << TAG_BITS) - 1;
const HALF: u32 = 1 << (TAG_BITS - 1);
const _: () = assert!(SWEEP_SPAN >= 1 && SWEEP_SPAN < HALF / 2);

/// Tag advances over which a window's sweep visits every one of its cells: an eighth of the tag
/// space (8,192 generations; 1 with 3-bit tags). Stored tags therefore never fall more than
/// `SWEEP_SPAN` generations behind, plus the generations a single preempted operation spans.
pub(crate) const SWEEP_SPAN: u32 = 1 << (TAG_BITS - 3);

/// Where a stored tag stands relative to the writer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Age {
    /// The same generation.
    Current,
    /// Written for an earlier generation: stale, reads as empty.
    Older,
    /// Written for a later generation: the writer is late.
    Newer,
}

/// The tag of one generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Tag(u16);

impl Tag {
    /// The tag of breaker generation `gen`.
    #[inline(always)]
    pub(crate) fn of(gen: u32) -> Tag {
        Tag((gen & TAG_MASK) as u16)
    }

    /// Decodes a tag stored in the low bits of `bits` (callers shift it down first).
    #[inline(always)]
    pub(crate) fn from_bits(bits: u64) -> Tag {
        Tag((bits as u32 & TAG_MASK) as u16)
    }

    /// The tag's bits, to be shifted into a word.
    #[inline(always)]
    pub(crate) fn bits(self) -> u64 {
        self.0 as u64
    }

    /// The tag `n` generations earlier.
    #[cfg(test)]
    pub(crate) fn minus(self, n: u32) -> Tag {
        Tag::of((self.0 as u32).wrapping_sub(n))
    }

    /// How many generations `self` is ahead of `earlier` (wrapping; 0 if equal).
    #[inline]
    pub(crate) fn since(self, earlier: Tag) -> u32 {
        (self.0 as u32).wrapping_sub(earlier.0 as u32) & TAG_MASK
    }

    /// Where `stored` stands relative to `self` (the writer's tag). Every tag is exactly one
    /// of current, older (1 to `HALF - 1` behind) or newer (the other half).
    #[inline(always)]
    pub(crate) fn age_of(self, stored: Tag) -> Age {
        match self.since(stored) {
            0 => Age::Current,
            d if d < HALF => Age::Older,
            _ => Age::Newer,
        }
    }
}

/// The sweep that keeps a window's stored tags comparable: the thread that moves a window `d`
/// generations forward visits the next `d * ceil(cells / SWEEP_SPAN)` cells (at most all of
/// them), handed out by a shared cursor, and the window's `visit` rewrites a cell whose tag is
/// [`Age::Older`] as an empty cell of the new tag. Every cell is therefore visited at least once
/// per [`SWEEP_SPAN`] generations.
pub(crate) struct Sweeper {
    cursor: crate::sync::AtomicU64,
    per_gen: u64,
    cells: u64,
}

impl Sweeper {
    pub(crate) fn new(cells: u64) -> Self {
        let cells = cells.max(1);
        Sweeper {
            cursor: crate::sync::atomic_u64(0),
            per_gen: cells.div_ceil(SWEEP_SPAN as u64),
            cells,
        }
    }

    /// Visits the cells due after a move of `advanced` generations.
    #[cold]
    pub(crate) fn sweep(&self, advanced: u32, mut visit: impl FnMut(usize)) {
        let n = (advanced as u64)
            .saturating_mul(self.per_gen)
            .min(self.cells);
        // Relaxed: the cursor only hands out ranges of work; no memory is published through it
        // (every cell is rewritten by its own CAS, whose orderings the window documents).
        let start = self.cursor.fetch_add(n, crate::sync::Ordering::Relaxed);
        for i in 0..n {
            visit((start.wrapping_add(i) % self.cells) as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_distance_has_exactly_one_age() {
        let me = Tag::of(5);
        let mut older = 0;
        let mut newer = 0;
        for d in 0..(1u32 << TAG_BITS) {
            match me.age_of(me.minus(d)) {
                Age::Current => assert_eq!(d, 0),
                Age::Older => older += 1,
                Age::Newer => newer += 1,
            }
        }
        assert_eq!(older, HALF - 1);
        assert_eq!(newer, HALF);
        assert_eq!(me.age_of(Tag::of(6)), Age::Newer);
        assert_eq!(Tag::of(6).age_of(me), Age::Older);
    }

    #[test]
    fn tags_wrap_and_round_trip() {
        let top = Tag::of(TAG_MASK);
        assert_eq!(Tag::of(TAG_MASK + 1), Tag::of(0));
        assert_eq!(Tag::of(0).age_of(top), Age::Older);
        assert_eq!(Tag::of(0).since(top), 1);
        assert_eq!(Tag::from_bits(top.bits()), top);
    }
}
