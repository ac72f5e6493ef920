//! The outcomes of the last T, in B buckets of width T/B.
//!
//! Instead of per-bucket counters that must be summed and cleared, the window keeps three
//! monotonic 64-bit totals (`calls`, `failures`, `slow`), and each bucket remembers the totals
//! at the moment it started. The window's counts are "totals now minus totals at the start of
//! the oldest bucket still inside T": O(1) to record (a successful call is one `fetch_add` and
//! one load), O(B) to evaluate.
//!
//! A bucket's `stamp` is `[tag:16][epoch + 1:47][ready:1]`, where `epoch = now / width` (stored
//! plus one, so that 0 means "empty"). The first recorder of a new epoch claims the bucket with
//! a CAS (`ready = 0`), writes the totals into it, and then publishes `ready = 1` with a second
//! CAS; evaluators only use ready buckets. `gate` holds the tag the window accepts (rewritten on
//! every transition, so always current) and bucket stamps are swept like the count window's
//! slots (see `tag::Sweeper`), so no stored tag falls out of the comparable range.
//!
//! # When the rates are evaluated
//! A rate can newly reach its threshold when a failure or a slow call is recorded, when old
//! buckets leave the window (their successes age out), and when the window reaches its
//! minimum number of calls. So the window evaluates (O(B)) on a failure or slow call, on the
//! first record of each new bucket (every bucket roll-over passes through one), and on the
//! record that brings the total to `probe_at`, the total at which the window holds the minimum
//! calls (refreshed at every evaluation). Any other success is one `fetch_add` and one load.
//!
//! # Sealing
//! When the breaker leaves CLOSED the window is *sealed*: the gate moves to the new tag (so late
//! outcomes are dropped) and the counts at that moment are frozen for metrics, which show the
//! window that tripped the breaker until it closes again.
//!
//! Every read of several words follows the snapshot protocol (`window::snapshot`): a
//! bucket's start is read calls first, the window's end failures and slow calls first, so the
//! calls counted always include the calls of the failures counted.
//!
//! Approximations, each bounded by the outcomes in flight at one instant (at most one per
//! recording thread):
//! - a call recorded while its bucket is being claimed may be counted in the previous bucket;
//! - an outcome in flight across a bucket's start snapshot (its call counted before the
//!   snapshot, its failure after) counts as a failure of the bucket without its call;
//! - a recorder of an older generation that passed the gate just before a transition may
//!   add its outcome to the totals after the new generation's first bucket took its snapshot.
//!   (The count window has no such gap; prefer it when that matters.)

use super::snapshot::{read_end, read_start};
use super::tag::{Age, Sweeper, Tag};
use super::{Counts, Live, Recorded, FAILED, LOAD, RMW, SLOW};
use crate::stripes::{Stripe, Stripes};
use crate::sync::{atomic_u64, AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use strength_reduce::StrengthReducedU64;

const READY: u64 = 1;
const EPOCH_MASK: u64 = (1 << 47) - 1;
const TAG_SHIFT: u32 = 48;
/// In the gate word: the window is sealed (metrics show the frozen counts).
const SEALED: u64 = 1 << 32;

/// `epoch` is the stored epoch (`now / width + 1`, masked); 0 is an empty bucket.
#[inline]
fn stamp(tag: Tag, epoch: u64) -> u64 {
    (tag.bits() << TAG_SHIFT) | ((epoch & EPOCH_MASK) << 1)
}

#[inline]
fn stamp_tag(s: u64) -> Tag {
    Tag::from_bits(s >> TAG_SHIFT)
}

#[inline]
fn stamp_epoch(s: u64) -> u64 {
    (s >> 1) & EPOCH_MASK
}

struct Bucket {
    stamp: AtomicU64,
    calls_at_start: AtomicU64,
    failures_at_start: AtomicU64,
    slow_at_start: AtomicU64,
}

/// Read by every record, written on transitions (`tag`) and evaluations (`probe_at`).
struct Gate {
    /// `[sealed:1 at bit 32][tag]`: the tag the window accepts outcomes for.
    tag: AtomicU64,
    /// The `calls` total at which the window reaches the minimum calls (0: not pending).
    probe_at: AtomicU64,
}

pub(crate) struct TimeWindow {
    gate: CachePadded<Gate>,
    calls: CachePadded<AtomicU64>,
    /// Written only by failures and slow calls.
    bad: CachePadded<[AtomicU64; 2]>,
    /// The counts frozen by the last seal: calls, failures, slow.
    frozen: [AtomicU64; 3],
    buckets: Box<[Bucket]>,
    sweeper: Sweeper,
    width: StrengthReducedU64,
    count: StrengthReducedU64,
    n: u64,
    /// The rules' minimum calls (0: no rate rule, never probe).
    minimum: u64,
}

impl TimeWindow {
    /// `buckets` buckets of `width_ns` each (both at least 1; the config validates them),
    /// counting for `tag`; `minimum` is the rate rules' minimum calls (0 if none is on).
    pub(crate) fn new(width_ns: u64, buckets: u32, tag: Tag, minimum: u64) -> Self {
        let n = buckets.max(1) as u64;
        TimeWindow {
            gate: CachePadded::new(Gate {
                tag: atomic_u64(tag.bits()),
                probe_at: atomic_u64(minimum),
            }),
            calls: CachePadded::new(atomic_u64(0)),
            bad: CachePadded::new([atomic_u64(0), atomic_u64(0)]),
            frozen: [atomic_u64(0), atomic_u64(0), atomic_u64(0)],
            buckets: (0..n)
                .map(|_| Bucket {
                    stamp: atomic_u64(stamp(tag, 0)),
                    calls_at_start: atomic_u64(0),
                    failures_at_start: atomic_u64(0),
                    slow_at_start: atomic_u64(0),
                })
                .collect(),
            sweeper: Sweeper::new(n),
            width: StrengthReducedU64::new(width_ns.max(1)),
            count: StrengthReducedU64::new(n),
            n,
            minimum,
        }
    }

    /// Moves the gate to `tag` unless it already holds it or a newer one; returns whether the
    /// window accepts `tag` afterwards. `seal` (the time now) also freezes the counts of the
    /// generation left, if it was not sealed already.
    #[inline]
    fn enter(&self, tag: Tag, seal: Option<(u64, &Stripes)>, live: Live<'_>) -> bool {
        // RMW / LOAD: see the orderings note in `window`.
        let mut cur = self.gate.tag.load(LOAD);
        loop {
            let t = Tag::from_bits(cur);
            match tag.age_of(t) {
                Age::Current => return true,
                Age::Newer => return false,
                // Moving to a newer tag: only while the caller's generation is current.
                Age::Older if !live() => return false,
                Age::Older => {}
            }
            let mut next = tag.bits();
            if let Some((now_ns, stripes)) = seal {
                next |= SEALED;
                if cur & SEALED == 0 {
                    self.freeze(self.live_counts(t, now_ns, stripes).0);
                }
            }
            match self.gate.tag.compare_exchange_weak(cur, next, RMW, LOAD) {
                Ok(_) => {
                    self.sweeper
                        .sweep(tag.since(t), |i| self.sweep_bucket(i, tag));
                    return true;
                }
                Err(found) => cur = found,
            }
        }
    }

    /// The sweep's visit: a bucket of an older tag becomes an empty bucket of `tag`.
    fn sweep_bucket(&self, i: usize, tag: Tag) {
        let b = &self.buckets[i];
        let cur = b.stamp.load(LOAD);
        if tag.age_of(stamp_tag(cur)) == Age::Older {
            // RMW / LOAD: see the orderings note in `window`.
            let _ = b.stamp.compare_exchange(cur, stamp(tag, 0), RMW, LOAD);
        }
    }

    fn freeze(&self, c: Counts) {
        // Relaxed: a metrics-only snapshot; a reader racing a seal may mix two seals' values.
        self.frozen[0].store(c.calls, Ordering::Relaxed);
        self.frozen[1].store(c.failures, Ordering::Relaxed);
        self.frozen[2].store(c.slow, Ordering::Relaxed);
    }

    /// The stored epoch of time `now_ns` (`now / width + 1`, masked).
    #[inline(always)]
    fn epoch_at(&self, now_ns: u64) -> u64 {
        (now_ns / self.width + 1) & EPOCH_MASK
    }

    /// The epoch of time `now_ns` and its bucket.
    #[inline(always)]
    fn bucket_at(&self, now_ns: u64) -> (u64, &Bucket) {
        let epoch = self.epoch_at(now_ns);
        (epoch, &self.buckets[(epoch % self.count) as usize])
    }

    /// Records `bits` under `tag`. Counts are returned when `want_counts`, and whenever the
    /// record may have raised a rate (a new bucket, or the minimum calls reached).
    #[inline(always)]
    pub(crate) fn record(
        &self,
        tag: Tag,
        bits: u32,
        now_ns: u64,
        want_counts: bool,
        stripes: &Stripes,
        live: Live<'_>,
    ) -> Recorded {
        if !self.enter(tag, None, live) {
            return Recorded::Late;
        }
        let (epoch, bucket) = self.bucket_at(now_ns);
        let want = stamp(tag, epoch);
        let mut cur = bucket.stamp.load(LOAD);
        let mut evaluate = want_counts;
        while cur & !READY != want {
            // Claim the bucket if it holds an older tag, or an older epoch of this tag. (A newer
            // epoch of this tag means this recorder was delayed: count it there.) Again if
            // another claim won meanwhile and the bucket is still older (a recorder of an
            // older generation, say), so that this record's bucket is always claimed for it.
            let claim = match tag.age_of(stamp_tag(cur)) {
                Age::Older => true,
                Age::Current => stamp_epoch(cur) < epoch,
                Age::Newer => false,
            };
            if !claim {
                break;
            }
            match self.claim(bucket, cur, want, stripes) {
                Ok(()) => {
                    evaluate = self.minimum != 0 || want_counts;
                    break;
                }
                Err(found) => cur = found,
            }
        }
        // RMW: the totals pair with the snapshot loads in `claim` and `counts`.
        let total = self.calls.fetch_add(1, RMW) + 1;
        if bits & FAILED != 0 {
            self.bad[0].fetch_add(1, RMW);
        }
        if bits & SLOW != 0 {
            self.bad[1].fetch_add(1, RMW);
        }
        // Relaxed: a hint; a stale value only costs (or skips) one evaluation, which the next
        // bucket roll-over or failure makes up for.
        let probe = self.gate.probe_at.load(Ordering::Relaxed);
        // The total includes the stripes' calls (summed only while a probe is pending, i.e.
        // while the window is below its minimum calls and no success is striped).
        if !evaluate && (probe == 0 || total.wrapping_add(stripes.calls()) < probe) {
            return Recorded::Counted(None);
        }
        Recorded::Counted(Some(self.evaluate(tag, now_ns, stripes)))
    }

    /// A success into `stripe` (which only the calling thread writes): a load and a store, no
    /// shared write. Only when nothing else is due: the gate holds `tag` (unsealed), no
    /// minimum-calls probe is pending, and the bucket of `now_ns` is claimed already (the
    /// first record of a bucket takes [`record`](Self::record), which evaluates). `None`
    /// otherwise, without touching anything.
    #[inline(always)]
    pub(crate) fn record_success_striped(
        &self,
        tag: Tag,
        now_ns: u64,
        stripe: &Stripe,
    ) -> Option<Recorded> {
        // Relaxed (probe): a hint, as in `record`; a stale 0 lets one success skip the probe,
        // which the next failure or bucket roll-over evaluates.
        if self.gate.tag.load(LOAD) != tag.bits() || self.gate.probe_at.load(Ordering::Relaxed) != 0
        {
            return None;
        }
        let (epoch, bucket) = self.bucket_at(now_ns);
        if bucket.stamp.load(LOAD) & !READY != stamp(tag, epoch) {
            return None;
        }
        stripe.add_call();
        Some(Recorded::Counted(None))
    }

    /// A success: into the thread's stripe when it may ([`record_success_striped`]), else
    /// through [`record`](Self::record). Counts are returned when it may raise a rate.
    ///
    /// [`record_success_striped`]: Self::record_success_striped
    #[inline(always)]
    pub(crate) fn record_success_fast(
        &self,
        tag: Tag,
        now_ns: u64,
        stripes: &Stripes,
        live: Live<'_>,
    ) -> Recorded {
        if let Some(stripe) = stripes.mine() {
            if let Some(r) = self.record_success_striped(tag, now_ns, stripe) {
                return r;
            }
        }
        self.record(tag, 0, now_ns, false, stripes, live)
    }

    #[cold]
    fn evaluate(&self, tag: Tag, now_ns: u64, stripes: &Stripes) -> Counts {
        let (c, total) = self.live_counts(tag, now_ns, stripes);
        let probe = if self.minimum > c.calls {
            total - c.calls + self.minimum
        } else {
            0
        };
        // Relaxed: see `record`. Stored only when it changes: every striped success reads
        // this line, so a store of the same value would still take it from their caches.
        if self.gate.probe_at.load(Ordering::Relaxed) != probe {
            self.gate.probe_at.store(probe, Ordering::Relaxed);
        }
        c
    }

    /// All calls recorded: the shared total and the stripes'.
    #[inline]
    fn total_calls(&self, stripes: &Stripes) -> u64 {
        self.calls.load(LOAD).wrapping_add(stripes.calls())
    }

    #[cold]
    fn claim(&self, bucket: &Bucket, seen: u64, want: u64, stripes: &Stripes) -> Result<(), u64> {
        // The start of a span: calls first (see `snapshot`). Read *before* the claim, so that a
        // claimer's snapshot is never newer than the claim that replaces it: the newer claimer
        // read its totals after loading this claim's stamp, which came after this read.
        let (calls, [failures, slow]) = read_start(
            || self.total_calls(stripes),
            || [self.bad[0].load(LOAD), self.bad[1].load(LOAD)],
        );
        bucket.stamp.compare_exchange(seen, want, RMW, LOAD)?;
        {
            // This thread owns the bucket until it sets READY; evaluators skip it meanwhile.
            // `fetch_max`, not a store: a claimer preempted here while a newer claim of this
            // bucket (a newer generation or epoch) took it, snapshotted and published it, must
            // not put its older start back under the newer stamp (which would count an older
            // stretch of history, of any length, in the newer window). The totals only grow
            // and each claimer read them before its claim, so the newest claim's snapshot is
            // the largest and `fetch_max` leaves exactly it. RMW: a field read with `LOAD`
            // that sees a newer claimer's value sees that claimer's stamp CAS too (see
            // `live_counts`).
            bucket.calls_at_start.fetch_max(calls, RMW);
            bucket.failures_at_start.fetch_max(failures, RMW);
            bucket.slow_at_start.fetch_max(slow, RMW);
            // AcqRel (its Release half): publishes the three snapshot writes to the Acquire
            // stamp load in `counts` that sees READY. A CAS, not a store: if a sweep or a newer
            // claim took the bucket meanwhile, it stays theirs.
            let _ = bucket.stamp.compare_exchange(want, want | READY, RMW, LOAD);
        }
        Ok(())
    }

    pub(crate) fn reset(&self, tag: Tag, live: Live<'_>) {
        self.enter(tag, None, live);
    }

    /// Stops accepting outcomes of older tags; metrics show the counts frozen at this moment.
    pub(crate) fn seal(&self, tag: Tag, now_ns: u64, stripes: &Stripes, live: Live<'_>) {
        self.enter(tag, Some((now_ns, stripes)), live);
    }

    /// The counts for `tag` and the `calls` total they were computed against.
    fn live_counts(&self, tag: Tag, now_ns: u64, stripes: &Stripes) -> (Counts, u64) {
        let epoch = self.epoch_at(now_ns);
        let oldest = epoch.saturating_sub(self.n - 1).max(1);
        let mut start: Option<(u64, [u64; 3])> = None;
        for b in self.buckets.iter() {
            let s = b.stamp.load(LOAD);
            let e = stamp_epoch(s);
            if s & READY == 0 || stamp_tag(s) != tag || e < oldest || e > epoch {
                continue;
            }
            if start.is_none_or(|(oe, _)| e < oe) {
                // LOAD (Acquire): after the Acquire stamp load that saw READY, so at least the
                // owner's snapshot; a value a newer claimer wrote synchronizes with that
                // claimer's `fetch_max`, after its stamp CAS, so the re-check below sees the
                // newer stamp and drops the bucket.
                let snap = [
                    b.calls_at_start.load(LOAD),
                    b.failures_at_start.load(LOAD),
                    b.slow_at_start.load(LOAD),
                ];
                // Re-check that the bucket was not re-claimed while reading.
                if b.stamp.load(LOAD) == s {
                    start = Some((e, snap));
                }
            }
        }
        // The end of the span: failures and slow calls first, then calls (see `snapshot`),
        // so every failure counted here comes with its call.
        let (total, [f1, s1]) = read_end(
            || [self.bad[0].load(LOAD), self.bad[1].load(LOAD)],
            || self.total_calls(stripes),
        );
        let Some((_, [c0, f0, s0])) = start else {
            return (Counts::default(), total);
        };
        let calls = total.saturating_sub(c0);
        let failures = f1.saturating_sub(f0);
        let slow = s1.saturating_sub(s0);
        let c = Counts {
            calls,
            failures: failures.min(calls),
            slow: slow.min(calls),
        };
        (c, total)
    }

    /// The counts for `tag` now (tests and the loom models).
    #[cfg(any(test, breakerbox_loom))]
    pub(crate) fn counts(&self, tag: Tag, now_ns: u64, stripes: &Stripes) -> Counts {
        self.live_counts(tag, now_ns, stripes).0
    }

    /// What metrics show: the live counts, or the frozen ones while sealed.
    pub(crate) fn current_counts(&self, now_ns: u64, stripes: &Stripes) -> Counts {
        let g = self.gate.tag.load(LOAD);
        if g & SEALED != 0 {
            // Relaxed: see `freeze`.
            return Counts {
                calls: self.frozen[0].load(Ordering::Relaxed),
                failures: self.frozen[1].load(Ordering::Relaxed),
                slow: self.frozen[2].load(Ordering::Relaxed),
            };
        }
        self.live_counts(Tag::from_bits(g), now_ns, stripes).0
    }

    pub(crate) fn lifetime_calls(&self, stripes: &Stripes) -> u64 {
        self.total_calls(stripes)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.buckets.len() * std::mem::size_of::<Bucket>()
    }
}

#[cfg(all(test, not(breakerbox_loom)))]
mod tests {
    use super::*;
    use crate::window::ALWAYS;

    const MS: u64 = 1_000_000;

    /// No stripes: every success through the shared total.
    fn st() -> Stripes {
        Stripes::new()
    }

    fn t(n: u32) -> Tag {
        Tag::of(n)
    }

    /// The same outcomes into a window without stripes and one whose successes go to two
    /// stripes by turns whenever they may: the counts agree after every step, across bucket
    /// roll-overs, minimum-call probes and generations.
    #[test]
    fn striped_successes_are_exact_sequentially() {
        // Miri interprets every step: fewer there.
        const STEPS: u32 = if cfg!(miri) { 400 } else { 20_000 };
        let plain = TimeWindow::new(10 * MS, 5, t(0), 4);
        let striped = TimeWindow::new(10 * MS, 5, t(0), 4);
        let none = st();
        let stripes = Stripes::fixed(2);
        let (mut gen, mut now, mut took) = (0, 0, 0);
        let mut x = 0x2545_F491_u32;
        for step in 0..STEPS {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            now += u64::from(x % 3) * MS;
            match x % 50 {
                0 => {
                    gen += 1;
                    plain.seal(t(gen), now, &none, ALWAYS);
                    striped.seal(t(gen), now, &stripes, ALWAYS);
                    gen += 1;
                    plain.reset(t(gen), ALWAYS);
                    striped.reset(t(gen), ALWAYS);
                }
                1..=5 => {
                    let a = plain.record(t(gen), FAILED, now, true, &none, ALWAYS);
                    let b = striped.record(t(gen), FAILED, now, true, &stripes, ALWAYS);
                    assert_eq!(a, b, "step {step}");
                }
                _ => {
                    let a = plain.record(t(gen), 0, now, false, &none, ALWAYS);
                    let b = match striped.record_success_striped(
                        t(gen),
                        now,
                        stripes.at(step as usize % 2),
                    ) {
                        Some(r) => {
                            took += 1;
                            r
                        }
                        None => striped.record(t(gen), 0, now, false, &stripes, ALWAYS),
                    };
                    assert_eq!(a, b, "step {step}");
                }
            }
            assert_eq!(
                plain.counts(t(gen), now, &none),
                striped.counts(t(gen), now, &stripes),
                "step {step}"
            );
            assert_eq!(
                plain.lifetime_calls(&none),
                striped.lifetime_calls(&stripes)
            );
        }
        assert!(took > STEPS / 2, "the striped path was taken {took} times");
    }

    /// See the count window's test of the same name.
    #[test]
    fn a_recorder_from_half_the_tag_space_ago_cannot_move_the_gate() {
        use crate::window::tag::TAG_BITS;
        let far = (1u32 << (TAG_BITS - 1)) + 7;
        let w = TimeWindow::new(MS, 4, t(far), 0);
        w.record(t(far), FAILED, 0, false, &st(), ALWAYS);
        let ended: &dyn Fn() -> bool = &|| false;
        assert_eq!(w.record(t(5), 0, 0, false, &st(), ended), Recorded::Late);
        w.reset(t(5), ended);
        w.seal(t(5), 0, &st(), ended);
        w.record(t(far), 0, 0, false, &st(), ALWAYS);
        assert_eq!(w.counts(t(far), 0, &st()).calls, 2);
    }

    #[test]
    fn old_buckets_fall_out() {
        // 10 buckets of 100 ms: a 1 s window.
        let w = TimeWindow::new(100 * MS, 10, t(1), 0);
        for i in 0..5 {
            w.record(t(1), FAILED, i * 10 * MS, false, &st(), ALWAYS);
        }
        assert_eq!(
            w.counts(t(1), 50 * MS, &st()),
            Counts {
                calls: 5,
                failures: 5,
                slow: 0
            }
        );
        w.record(t(1), SLOW, 500 * MS, false, &st(), ALWAYS);
        assert_eq!(
            w.counts(t(1), 900 * MS, &st()),
            Counts {
                calls: 6,
                failures: 5,
                slow: 1
            }
        );
        // At 1.0 s bucket 0 (0..100 ms) leaves the window; the failures were all in it.
        w.record(t(1), 0, 1000 * MS, false, &st(), ALWAYS);
        assert_eq!(
            w.counts(t(1), 1000 * MS, &st()),
            Counts {
                calls: 2,
                failures: 0,
                slow: 1
            }
        );
        // Long after, with no traffic, nothing is left.
        assert_eq!(w.counts(t(1), 10_000 * MS, &st()), Counts::default());
        assert_eq!(w.lifetime_calls(&st()), 7);
    }

    #[test]
    fn reset_and_late() {
        let w = TimeWindow::new(MS, 4, t(1), 0);
        w.record(t(1), FAILED, 0, false, &st(), ALWAYS);
        w.reset(t(2), ALWAYS);
        assert_eq!(w.counts(t(2), 0, &st()), Counts::default());
        assert_eq!(
            w.record(t(1), FAILED, 0, false, &st(), ALWAYS),
            Recorded::Late
        );
        w.record(t(2), FAILED, 0, false, &st(), ALWAYS);
        assert_eq!(
            w.counts(t(2), 0, &st()),
            Counts {
                calls: 1,
                failures: 1,
                slow: 0
            }
        );
    }
}
