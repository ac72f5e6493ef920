//! loom models of the windows on their own, beside the code (as tokio keeps its loom tests):
//! a window bug no longer has to be reached through the whole breaker.
//!
//! Compiled only under `--cfg breakerbox_loom`, where tags are 3 bits wide (`tag::TAG_BITS`),
//! so a few transitions wrap them. Each model is a plain function; `loom-tests/tests/windows.rs`
//! runs each one under `loom::model` (this crate cannot, as `cargo test --lib` would build every
//! dev-dependency under the loom cfg).
//!
//! The tag argument (module doc of `window`) bounds how many transitions one preempted
//! operation may span. With 3-bit tags that bound is small, so in every model the transitions
//! that race a recorder stay within it, and the wrap-around itself happens in the sequential
//! parts between the racing phases: every racing phase starts at a different alignment of the
//! tags against the stored cells.

use super::tag::Tag;
use super::{CountWindow, Counts, Recorded, Streak, TimeWindow, ALWAYS, FAILED};
use loom::thread;
use std::sync::Arc;

const MS: u64 = 1_000_000;

fn exact(calls: u64, failures: u64) -> Counts {
    Counts {
        calls,
        failures,
        slow: 0,
    }
}

/// A count window of 2 goes through 2 racing phases, each after a sequential outage that wraps
/// the 3-bit tags (loom allows 4 spawned threads per model, 2 per phase). In each phase a recorder of the generation that is ending races
/// the transition (a seal, then the reset of the next CLOSED generation); afterwards the new
/// generation records two failures and must show exactly those.
pub fn count_window_survives_tag_wrap() {
    let w = Arc::new(CountWindow::new(2, Tag::of(0)));
    let mut gen = 0u32;
    for _ in 0..2 {
        // A CLOSED generation with a recorder in flight.
        gen += 1;
        w.reset(Tag::of(gen), ALWAYS);
        let old = gen;
        let r = {
            let w = w.clone();
            thread::spawn(move || w.record(Tag::of(old), FAILED, true, 0, ALWAYS))
        };
        // (Every racing operation runs on a spawned thread: loom explores those fully.)
        let t = {
            let w = w.clone();
            thread::spawn(move || {
                w.seal(Tag::of(old + 1), ALWAYS);
                w.reset(Tag::of(old + 2), ALWAYS);
            })
        };
        t.join().unwrap();
        let late_or_counted = r.join().unwrap();
        assert!(matches!(
            late_or_counted,
            Recorded::Late | Recorded::Counted(_)
        ));
        gen += 2;
        assert_eq!(w.counts(Tag::of(gen)), Counts::default(), "gen {gen}");
        w.record(Tag::of(gen), FAILED, false, 0, ALWAYS);
        w.record(Tag::of(gen), FAILED, false, 0, ALWAYS);
        assert_eq!(w.counts(Tag::of(gen)), exact(2, 2), "gen {gen}");
        // The outage: nine more generations with nothing recorded (a full wrap of the tags).
        for _ in 0..9 {
            gen += 1;
            w.seal(Tag::of(gen), ALWAYS);
        }
        assert_eq!(
            w.record(Tag::of(gen - 3), FAILED, false, 0, ALWAYS),
            Recorded::Late
        );
    }
}

/// Two recorders of one generation race its seal: whatever the order, the sealed window shows
/// exactly the outcomes that were counted (a claim that turned late leaves it).
pub fn count_window_sealed_shows_only_counted() {
    let w = Arc::new(CountWindow::new(2, Tag::of(0)));
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let w = w.clone();
            thread::spawn(move || w.record(Tag::of(0), FAILED, false, 0, ALWAYS) != Recorded::Late)
        })
        .collect();
    let sealer = {
        let w = w.clone();
        thread::spawn(move || w.seal(Tag::of(1), ALWAYS))
    };
    sealer.join().unwrap();
    let results: Vec<bool> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    let counted = results.iter().filter(|&&c| c).count() as u64;
    assert_eq!(w.counts(Tag::of(1)), exact(counted, counted));
    assert_eq!(w.lifetime_calls(), counted);
}

/// The time window through the same wrap: a recorder of the ending generation races the seal
/// and the next reset; the new generation then shows exactly its own outcomes.
pub fn time_window_survives_tag_wrap() {
    let w = Arc::new(TimeWindow::new(MS, 2, Tag::of(0), 0));
    let st = Arc::new(crate::stripes::Stripes::new());
    let mut gen = 0u32;
    let mut now = 0;
    for _ in 0..2 {
        gen += 1;
        w.reset(Tag::of(gen), ALWAYS);
        let old = gen;
        let r = {
            let (w, st) = (w.clone(), st.clone());
            thread::spawn(move || w.record(Tag::of(old), FAILED, now, false, &st, ALWAYS))
        };
        let t = {
            let (w, st) = (w.clone(), st.clone());
            thread::spawn(move || {
                w.seal(Tag::of(old + 1), now, &st, ALWAYS);
                w.reset(Tag::of(old + 2), ALWAYS);
            })
        };
        t.join().unwrap();
        let _ = r.join().unwrap();
        gen += 2;
        now += 10 * MS;
        assert_eq!(
            w.counts(Tag::of(gen), now, &st),
            Counts::default(),
            "gen {gen}"
        );
        w.record(Tag::of(gen), FAILED, now, false, &st, ALWAYS);
        w.record(Tag::of(gen), 0, now, false, &st, ALWAYS);
        assert_eq!(w.counts(Tag::of(gen), now, &st), exact(2, 1), "gen {gen}");
        for _ in 0..9 {
            gen += 1;
            w.seal(Tag::of(gen), now, &st, ALWAYS);
        }
        assert_eq!(
            w.record(Tag::of(gen - 3), FAILED, now, false, &st, ALWAYS),
            Recorded::Late
        );
    }
}

/// A failure races the transition's refresh of the streak: the new generation's streak starts
/// at zero whatever the order, through a wrap of the tags.
pub fn streak_survives_tag_wrap() {
    let s = Arc::new(Streak::new(Tag::of(0)));
    let mut gen = 0u32;
    for _ in 0..2 {
        let old = gen;
        let f = {
            let s = s.clone();
            thread::spawn(move || s.fail(Tag::of(old), ALWAYS))
        };
        let r = {
            let s = s.clone();
            thread::spawn(move || s.refresh(Tag::of(old + 1), ALWAYS))
        };
        gen += 1;
        r.join().unwrap();
        let _ = f.join().unwrap();
        assert_eq!(s.fail(Tag::of(gen), ALWAYS), Some(1), "gen {gen}");
        for _ in 0..9 {
            gen += 1;
            s.refresh(Tag::of(gen), ALWAYS);
        }
    }
}

/// Striped successes (`count`, "Striped successes") race a failure: owner A records two
/// successes into its stripe (the second is a whole batch: A takes it into the ring), while B
/// records one success into its own stripe and then a failure, draining the stripes first.
/// B's failure sees at least its own success; afterwards the window is exact and no success was
/// taken twice or lost.
pub fn count_window_striped_successes_race_a_failure() {
    use crate::stripes::Stripes;
    let w = Arc::new(CountWindow::new(4, Tag::of(0)));
    let stripes = Arc::new(Stripes::fixed(2));
    let a = {
        let (w, stripes) = (w.clone(), stripes.clone());
        thread::spawn(move || {
            for _ in 0..2 {
                assert!(w
                    .record_success_striped(Tag::of(0), 0, stripes.at(0))
                    .is_some());
            }
        })
    };
    let b = {
        let (w, stripes) = (w.clone(), stripes.clone());
        thread::spawn(move || {
            assert!(w
                .record_success_striped(Tag::of(0), 0, stripes.at(1))
                .is_some());
            w.drain(&stripes);
            match w.record(Tag::of(0), FAILED, true, 0, ALWAYS) {
                Recorded::Counted(Some(c)) => c,
                other => panic!("{other:?}"),
            }
        })
    };
    a.join().unwrap();
    let seen = b.join().unwrap();
    assert!(seen.calls >= 2 && seen.calls <= 4, "{seen:?}");
    assert_eq!(seen.failures, 1);
    w.drain(&stripes);
    assert_eq!(w.counts(Tag::of(0)), exact(4, 1));
    assert_eq!(w.lifetime_calls(), 4);
}

/// A striped success races the end of its generation (drain + seal, then drain + reset): it is
/// counted at most once and never in the next generation's window. Then the owner's first
/// success of the next generation (its stripe restarts at the new tag, moving any straggler to
/// the lifetime total) races another drain: each success is taken exactly once.
pub fn count_window_striped_success_races_a_transition() {
    use crate::stripes::Stripes;
    let w = Arc::new(CountWindow::new(2, Tag::of(0)));
    let stripes = Arc::new(Stripes::fixed(1));
    let owner = {
        let (w, stripes) = (w.clone(), stripes.clone());
        thread::spawn(move || {
            w.record_success_striped(Tag::of(0), 0, stripes.at(0))
                .is_some()
        })
    };
    let transition = {
        let (w, stripes) = (w.clone(), stripes.clone());
        thread::spawn(move || {
            w.drain(&stripes);
            w.seal(Tag::of(1), ALWAYS);
            w.drain(&stripes);
            w.reset(Tag::of(2), ALWAYS);
        })
    };
    transition.join().unwrap();
    let counted = u64::from(owner.join().unwrap());
    assert_eq!(w.counts(Tag::of(2)), Counts::default());
    let owner = {
        let (w, stripes) = (w.clone(), stripes.clone());
        thread::spawn(move || {
            assert!(w
                .record_success_striped(Tag::of(2), 0, stripes.at(0))
                .is_some());
        })
    };
    let drainer = {
        let (w, stripes) = (w.clone(), stripes.clone());
        thread::spawn(move || w.drain(&stripes))
    };
    owner.join().unwrap();
    drainer.join().unwrap();
    w.drain(&stripes);
    assert_eq!(w.counts(Tag::of(2)), exact(1, 0));
    assert_eq!(w.lifetime_calls(), counted + 1);
}

/// The time window with striped successes: two owners record a success each into their
/// stripes (the bucket is claimed and the minimum reached, so they take the striped path)
/// while a third thread records a failure, which evaluates. The failure's counts include at
/// least itself; afterwards the window's counts and the lifetime total are exact.
pub fn time_window_striped_successes_race_a_failure() {
    use crate::stripes::Stripes;
    let w = Arc::new(TimeWindow::new(MS, 2, Tag::of(0), 1));
    let st = Arc::new(Stripes::fixed(2));
    // Claims the bucket and reaches the minimum (1): no probe pending from here on.
    w.record(Tag::of(0), 0, 0, false, &st, ALWAYS);
    let owners: Vec<_> = (0..2)
        .map(|i| {
            let (w, st) = (w.clone(), st.clone());
            thread::spawn(move || {
                assert!(w.record_success_striped(Tag::of(0), 0, st.at(i)).is_some());
            })
        })
        .collect();
    let seen = match w.record(Tag::of(0), FAILED, 0, true, &st, ALWAYS) {
        Recorded::Counted(Some(c)) => c,
        other => panic!("{other:?}"),
    };
    assert!(seen.calls >= 2 && seen.calls <= 4, "{seen:?}");
    assert_eq!(seen.failures, 1);
    for o in owners {
        o.join().unwrap();
    }
    assert_eq!(w.counts(Tag::of(0), 0, &st), exact(4, 1));
    assert_eq!(w.lifetime_calls(&st), 4);
}

/// The snapshot protocol (`window::snapshot`) in the time window: a reader evaluates the
/// window while a recorder records a failure (the calls total first, then the failures
/// total). Whatever the interleaving, the reader sees a state the real history passed
/// through: one success; one success and the failure's call; or both outcomes. Reading the
/// calls before the failures (`planted-bug-reads`) lets it see the failure without its call
/// (1 call, 1 failure: a rate of 1.0 that never happened), and this model fails.
pub fn time_window_reads_never_overstate_a_rate() {
    use crate::stripes::Stripes;
    let w = Arc::new(TimeWindow::new(MS, 2, Tag::of(0), 0));
    let st = Arc::new(Stripes::new());
    // Claims the bucket: the window's start is taken before anything below.
    w.record(Tag::of(0), 0, 0, false, &st, ALWAYS);
    let r = {
        let (w, st) = (w.clone(), st.clone());
        thread::spawn(move || {
            w.record(Tag::of(0), FAILED, 0, false, &st, ALWAYS);
        })
    };
    let seen = {
        let (w, st) = (w.clone(), st.clone());
        thread::spawn(move || w.counts(Tag::of(0), 0, &st))
    }
    .join()
    .unwrap();
    assert!(
        [exact(1, 0), exact(2, 0), exact(2, 1)].contains(&seen),
        "a state the history never passed through: {seen:?}"
    );
    r.join().unwrap();
    assert_eq!(w.counts(Tag::of(0), 0, &st), exact(2, 1));
}

/// The snapshot protocol in the count window: a reader reads the counts while a recorder
/// records a failure (a position in `head` first, then `counts`). The reader sees a state the
/// history passed through; reading `head` before `counts` (`planted-bug-reads`) lets it see
/// the failure without its position, and this model fails.
pub fn count_window_reads_never_overstate_a_rate() {
    let w = Arc::new(CountWindow::new(4, Tag::of(0)));
    w.record(Tag::of(0), 0, false, 0, ALWAYS);
    let r = {
        let w = w.clone();
        thread::spawn(move || {
            w.record(Tag::of(0), FAILED, false, 0, ALWAYS);
        })
    };
    let seen = {
        let w = w.clone();
        thread::spawn(move || w.counts(Tag::of(0)))
    }
    .join()
    .unwrap();
    assert!(
        [exact(1, 0), exact(2, 0), exact(2, 1)].contains(&seen),
        "a state the history never passed through: {seen:?}"
    );
    r.join().unwrap();
    assert_eq!(w.counts(Tag::of(0)), exact(2, 1));
}

/// The counts a count-window record returns (the ones a trip is decided on) while another
/// recorder records a failure: the first success stays in the window of 4, so whatever the
/// two failures see, at least one of the calls they count is a success. Decoding with the head
/// of the record's own earlier claim (instead of one read after `counts`) lets a record count
/// the other's failure without its position: two calls, two failures, a rate of 1.0 that
/// never happened.
pub fn count_window_record_counts_never_overstate_a_rate() {
    let w = Arc::new(CountWindow::new(4, Tag::of(0)));
    w.record(Tag::of(0), 0, false, 0, ALWAYS);
    let rec = |w: &CountWindow| match w.record(Tag::of(0), FAILED, true, 0, ALWAYS) {
        Recorded::Counted(Some(c)) => c,
        other => panic!("{other:?}"),
    };
    let r = {
        let w = w.clone();
        thread::spawn(move || rec(&w))
    };
    let mine = {
        let w = w.clone();
        thread::spawn(move || rec(&w))
    };
    let (mine, theirs) = (mine.join().unwrap(), r.join().unwrap());
    for seen in [mine, theirs] {
        assert!(
            [exact(2, 1), exact(3, 1), exact(3, 2)].contains(&seen),
            "a state the history never passed through: {seen:?}"
        );
    }
    assert_eq!(w.counts(Tag::of(0)), exact(3, 2));
}

/// A claimer of a time-window bucket preempted between its claim and its snapshot writes,
/// while the generation ends and the next one claims the same bucket: the stale claimer must
/// not put its older start under the newer stamp. A third thread records a failure of the old
/// generation; if it completed before the new generation began (the resetter saw it done),
/// the new generation's window must not count it. Fails when the snapshot is written with
/// plain stores (the stale claimer's older start then counts that failure).
pub fn time_window_stale_claim_never_moves_a_newer_start_back() {
    use crate::stripes::Stripes;
    use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let w = Arc::new(TimeWindow::new(MS, 4, Tag::of(0), 0));
    let st = Arc::new(Stripes::new());
    let done = Arc::new(AtomicBool::new(false));
    // The stale claimer: the first record of epoch 2 in generation 0 (a success).
    let a = {
        let (w, st) = (w.clone(), st.clone());
        thread::spawn(move || {
            w.record(Tag::of(0), 0, MS, false, &st, ALWAYS);
        })
    };
    // An old-generation failure, into the same bucket.
    let c = {
        let (w, st, done) = (w.clone(), st.clone(), done.clone());
        thread::spawn(move || {
            w.record(Tag::of(0), FAILED, MS, false, &st, ALWAYS);
            done.store(true, SeqCst);
        })
    };
    // The next generation and its first record.
    let b = {
        let (w, st, done) = (w.clone(), st.clone(), done.clone());
        thread::spawn(move || {
            let before = done.load(SeqCst);
            w.reset(Tag::of(1), ALWAYS);
            w.record(Tag::of(1), 0, MS, false, &st, ALWAYS);
            before
        })
    };
    a.join().unwrap();
    c.join().unwrap();
    let failure_was_done = b.join().unwrap();
    let seen = w.counts(Tag::of(1), MS, &st);
    if failure_was_done {
        assert_eq!(
            seen.failures, 0,
            "an old generation's completed failure: {seen:?}"
        );
    }
    assert!(
        seen.failures <= 1 && seen.calls >= 1 && seen.calls <= 3,
        "{seen:?}"
    );
}
