//! The outcomes of the last T, in B buckets of width T/B.
//!
//! Instead of per-bucket counters that must be summed and cleared, the window keeps two
//! monotonic totals, `calls` and `bad` (`[failures:32][slow:32]`), and each bucket remembers the
//! totals at the moment it started. The window's counts are "totals now minus totals at the start
//! of the oldest bucket still inside T": O(1) to record (a successful call is one `fetch_add`),
//! O(B) to evaluate, which happens only after a failure or a slow call.
//!
//! A bucket's `stamp` is `[tag:16][epoch:47][ready:1]`, where `epoch = now / width`. The first
//! recorder of a new epoch claims the bucket with a CAS (`ready = 0`), writes the totals into
//! it, and then publishes `ready = 1` with a release store; evaluators only use ready buckets.
//!
//! Approximations, both bounded by the calls in flight at one instant:
//! - a call recorded while its bucket is being claimed may be counted in the previous bucket;
//! - a recorder of an older generation that passed the tag check just before a transition may
//!   add its outcome to the totals after the new generation's first bucket took its snapshot.
//!   (The count window has no such gap; prefer it when that matters.)

use super::{newer, Counts, Recorded, FAILED, SLOW};
use crate::sync::{atomic_u64, AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use strength_reduce::StrengthReducedU64;

const READY: u64 = 1;
const EPOCH_MASK: u64 = (1 << 47) - 1;

#[inline]
fn stamp(tag: u16, epoch: u64) -> u64 {
    ((tag as u64) << 48) | ((epoch & EPOCH_MASK) << 1)
}

#[inline]
fn stamp_tag(s: u64) -> u16 {
    (s >> 48) as u16
}

#[inline]
fn stamp_epoch(s: u64) -> u64 {
    (s >> 1) & EPOCH_MASK
}

struct Bucket {
    stamp: AtomicU64,
    calls_at_start: AtomicU64,
    bad_at_start: AtomicU64,
}

pub(crate) struct TimeWindow {
    /// The tag the window accepts outcomes for.
    tag: CachePadded<AtomicU64>,
    /// The tag whose buckets metrics show (differs from `tag` while sealed).
    shown: AtomicU64,
    calls: CachePadded<AtomicU64>,
    bad: CachePadded<AtomicU64>,
    buckets: Box<[Bucket]>,
    width: StrengthReducedU64,
    count: StrengthReducedU64,
    n: u64,
}

impl TimeWindow {
    /// `buckets` buckets of `width_ns` each (both at least 1; the config validates them).
    pub(crate) fn new(width_ns: u64, buckets: u32, tag: u16) -> Self {
        let n = buckets.max(1) as u64;
        TimeWindow {
            tag: CachePadded::new(atomic_u64(tag as u64)),
            shown: atomic_u64(tag as u64),
            calls: CachePadded::new(atomic_u64(0)),
            bad: CachePadded::new(atomic_u64(0)),
            buckets: (0..n)
                .map(|_| Bucket {
                    // Tag one behind: reads as empty.
                    stamp: atomic_u64(stamp(tag.wrapping_sub(1), 0)),
                    calls_at_start: atomic_u64(0),
                    bad_at_start: atomic_u64(0),
                })
                .collect(),
            width: StrengthReducedU64::new(width_ns.max(1)),
            count: StrengthReducedU64::new(n),
            n,
        }
    }

    /// Moves the window to `tag` unless it already counts for it or a newer one; returns
    /// whether the window counts for `tag` afterwards. `show` also makes metrics show `tag`'s
    /// buckets (not when sealing).
    #[inline]
    fn enter(&self, tag: u16, show: bool) -> bool {
        // AcqRel / Acquire: see the orderings note in `window`.
        let mut cur = self.tag.load(Ordering::Acquire);
        loop {
            let t = cur as u16;
            if t == tag {
                return true;
            }
            if !newer(tag, t) {
                return false;
            }
            match self.tag.compare_exchange_weak(
                cur,
                tag as u64,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if show {
                        self.show(tag);
                    }
                    return true;
                }
                Err(found) => cur = found,
            }
        }
    }

    /// Moves `shown` forward to `tag` (never back, whatever order racing resets run in).
    fn show(&self, tag: u16) {
        let mut cur = self.shown.load(Ordering::Acquire);
        while newer(tag, cur as u16) {
            // AcqRel / Acquire: see the orderings note in `window`.
            match self.shown.compare_exchange_weak(
                cur,
                tag as u64,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(found) => cur = found,
            }
        }
    }

    #[inline(always)]
    pub(crate) fn record(&self, tag: u16, bits: u32, now_ns: u64, want_counts: bool) -> Recorded {
        if !self.enter(tag, true) {
            return Recorded::Late;
        }
        let epoch = now_ns / self.width;
        let bucket = &self.buckets[(epoch % self.count) as usize];
        let want = stamp(tag, epoch);
        let cur = bucket.stamp.load(Ordering::Acquire);
        if cur & !READY != want {
            let (t, e) = (stamp_tag(cur), stamp_epoch(cur));
            // Claim the bucket if it holds an older tag, or an older epoch of this tag. (A newer
            // epoch of this tag means this recorder was delayed: count it there.)
            if newer(tag, t) || (t == tag && e < (epoch & EPOCH_MASK)) {
                self.claim(bucket, cur, want);
            }
        }
        // AcqRel: the totals pair with the snapshot loads in `claim` and `counts`.
        self.calls.fetch_add(1, Ordering::AcqRel);
        let bad = (((bits & FAILED != 0) as u64) << 32) | ((bits & SLOW != 0) as u64);
        if bad != 0 {
            self.bad.fetch_add(bad, Ordering::AcqRel);
        }
        Recorded::Counted(want_counts.then(|| self.counts(tag, now_ns)))
    }

    #[cold]
    fn claim(&self, bucket: &Bucket, seen: u64, want: u64) {
        if bucket
            .stamp
            .compare_exchange(seen, want, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // This thread owns the bucket until it sets READY; evaluators skip it meanwhile.
            let calls = self.calls.load(Ordering::Acquire);
            let bad = self.bad.load(Ordering::Acquire);
            // Relaxed: published by the Release store of the stamp just below.
            bucket.calls_at_start.store(calls, Ordering::Relaxed);
            bucket.bad_at_start.store(bad, Ordering::Relaxed);
            // Release: publishes the two snapshot stores to the Acquire stamp load in `counts`.
            bucket.stamp.store(want | READY, Ordering::Release);
        }
    }

    pub(crate) fn reset(&self, tag: u16) {
        self.enter(tag, true);
        // If the tag was already entered by a seal, `enter` did not show it.
        self.show(tag);
    }

    /// Stops accepting outcomes of older tags; metrics keep showing the sealed buckets.
    pub(crate) fn seal(&self, tag: u16) {
        self.enter(tag, false);
    }

    pub(crate) fn counts(&self, tag: u16, now_ns: u64) -> Counts {
        let epoch = (now_ns / self.width) & EPOCH_MASK;
        let oldest = epoch.saturating_sub(self.n - 1);
        let mut start: Option<(u64, u64, u64)> = None;
        for b in self.buckets.iter() {
            let s = b.stamp.load(Ordering::Acquire);
            let e = stamp_epoch(s);
            if s & READY == 0 || stamp_tag(s) != tag || e < oldest || e > epoch {
                continue;
            }
            if start.is_none_or(|(oe, _, _)| e < oe) {
                // Relaxed: ordered after the Acquire stamp load that saw READY.
                let c = b.calls_at_start.load(Ordering::Relaxed);
                let bad = b.bad_at_start.load(Ordering::Relaxed);
                // Re-check that the bucket was not re-claimed while reading.
                if b.stamp.load(Ordering::Acquire) == s {
                    start = Some((e, c, bad));
                }
            }
        }
        let Some((_, c0, bad0)) = start else {
            return Counts::default();
        };
        let bad = self.bad.load(Ordering::Acquire).wrapping_sub(bad0);
        let calls = self.calls.load(Ordering::Acquire).wrapping_sub(c0);
        Counts {
            calls,
            failures: (bad >> 32).min(calls),
            slow: (bad & u32::MAX as u64).min(calls),
        }
    }

    pub(crate) fn current_tag(&self) -> u16 {
        self.shown.load(Ordering::Acquire) as u16
    }

    pub(crate) fn lifetime_calls(&self) -> u64 {
        self.calls.load(Ordering::Acquire)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.buckets.len() * std::mem::size_of::<Bucket>()
    }
}

#[cfg(all(test, not(breakerbox_loom)))]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn old_buckets_fall_out() {
        // 10 buckets of 100 ms: a 1 s window.
        let w = TimeWindow::new(100 * MS, 10, 1);
        for i in 0..5 {
            w.record(1, FAILED, i * 10 * MS, false);
        }
        assert_eq!(
            w.counts(1, 50 * MS),
            Counts {
                calls: 5,
                failures: 5,
                slow: 0
            }
        );
        w.record(1, SLOW, 500 * MS, false);
        assert_eq!(
            w.counts(1, 900 * MS),
            Counts {
                calls: 6,
                failures: 5,
                slow: 1
            }
        );
        // At 1.0 s bucket 0 (0..100 ms) leaves the window; the failures were all in it.
        w.record(1, 0, 1000 * MS, false);
        assert_eq!(
            w.counts(1, 1000 * MS),
            Counts {
                calls: 2,
                failures: 0,
                slow: 1
            }
        );
        // Long after, with no traffic, nothing is left.
        assert_eq!(w.counts(1, 10_000 * MS), Counts::default());
        assert_eq!(w.lifetime_calls(), 7);
    }

    #[test]
    fn reset_and_late() {
        let w = TimeWindow::new(MS, 4, 1);
        w.record(1, FAILED, 0, false);
        w.reset(2);
        assert_eq!(w.counts(2, 0), Counts::default());
        assert_eq!(w.record(1, FAILED, 0, false), Recorded::Late);
        w.record(2, FAILED, 0, false);
        assert_eq!(
            w.counts(2, 0),
            Counts {
                calls: 1,
                failures: 1,
                slow: 0
            }
        );
    }
}
