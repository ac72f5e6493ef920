//! The count window's unit tests.

use super::striped::BATCH;
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
