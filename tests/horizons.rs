//! Long horizons on the manual clock: a breaker must keep counting after any number of
//! transitions, resets and late reports.
//!
//! Each test drives the breaker through 100,000 OPEN/HALF-OPEN cycles (200,000 generations,
//! three full wraps of the 16-bit window tags; tens of thousands of wraps when built with
//! `--cfg breakerbox_narrow_tags`, which `.ci/test.sh` also runs) or 100,000 resets, then checks
//! that the breaker trips at exactly the call the rule says, for every window kind and rule.

use breakerbox::{CallError, CircuitBreaker, ManualClock, State};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(1);
const CYCLES: u32 = 100_000;

type Breaker = CircuitBreaker<ManualClock>;

/// The three rule/window combinations, each built so that after closing, five successes and
/// then failures trip it at a known call.
#[derive(Clone, Copy, Debug)]
enum Rule {
    /// Count window of 10, failure rate 50 %, minimum 10: trips on the 5th failure (call 10).
    CountWindow,
    /// 10 s time window, failure rate 50 %, minimum 10: trips on the 5th failure (call 10).
    TimeWindow,
    /// Three failures in a row: trips on the 3rd failure (call 8).
    Consecutive,
}

const RULES: [Rule; 3] = [Rule::CountWindow, Rule::TimeWindow, Rule::Consecutive];

fn build(rule: Rule, clock: &ManualClock) -> Breaker {
    let b = CircuitBreaker::builder()
        .open_wait(WAIT)
        .clock(clock.clone());
    let b = match rule {
        Rule::CountWindow => b
            .failure_rate_threshold(0.5)
            .minimum_calls(10)
            .count_window(10),
        Rule::TimeWindow => b
            .failure_rate_threshold(0.5)
            .minimum_calls(10)
            .time_window(Duration::from_secs(10), 10),
        Rule::Consecutive => b.consecutive_failures(3),
    };
    b.build().unwrap()
}

/// The call (1-based) at which five successes followed by failures trip `rule`.
fn expected_trip(rule: Rule) -> usize {
    match rule {
        Rule::CountWindow | Rule::TimeWindow => 10,
        Rule::Consecutive => 8,
    }
}

fn fail(b: &Breaker) -> Result<(), CallError<()>> {
    b.call(|| Err(()))
}

fn succeed(b: &Breaker) -> Result<(), CallError<()>> {
    b.call(|| Ok(()))
}

/// From CLOSED, five successes then failures: the breaker must trip at exactly the expected
/// call, having counted every outcome.
fn assert_trips_on_time(rule: Rule, b: &Breaker, context: &str) {
    assert_eq!(b.state(), State::Closed, "{rule:?} {context}: not closed");
    let late_before = b.metrics().late;
    let trip_at = expected_trip(rule);
    for call in 1..=trip_at {
        let r = if call <= 5 { succeed(b) } else { fail(b) };
        assert!(
            r.is_ok() || call > 5,
            "{rule:?} {context}: call {call} rejected"
        );
        let expect = if call < trip_at {
            State::Closed
        } else {
            State::Open
        };
        assert_eq!(b.state(), expect, "{rule:?} {context}: after call {call}");
    }
    assert_eq!(
        b.metrics().late,
        late_before,
        "{rule:?} {context}: outcomes dropped as late"
    );
}

/// CLOSED -> OPEN by `rule` (recording whatever it takes).
fn trip(rule: Rule, b: &Breaker) {
    for _ in 0..expected_trip(rule) {
        let _ = fail(b);
    }
    assert_eq!(b.state(), State::Open, "{rule:?}: did not trip");
}

/// `n` outage cycles: the wait elapses, the trial fails, the breaker re-opens (two
/// generations each).
fn outage(b: &Breaker, clock: &ManualClock, n: u32) {
    for _ in 0..n {
        clock.advance(WAIT);
        assert!(
            matches!(fail(b), Err(CallError::Failed(()))),
            "trial not admitted"
        );
    }
    assert_eq!(b.state(), State::Open);
}

fn recover(b: &Breaker, clock: &ManualClock) {
    clock.advance(WAIT);
    succeed(b).expect("the trial call is admitted");
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn a_long_outage_does_not_blind_the_breaker() {
    for rule in RULES {
        let clock = ManualClock::new();
        let b = build(rule, &clock);
        assert_trips_on_time(rule, &b, "fresh");
        // Check along the way too, so that every alignment of the tags is reached at least
        // once in a narrow-tag build.
        let mut done = 0;
        for chunk in [1, 2, 3, 5, 8, 16_381, 16_384, 32_768, CYCLES] {
            let n = chunk.min(CYCLES - done);
            outage(&b, &clock, n);
            done += n;
            recover(&b, &clock);
            assert_trips_on_time(rule, &b, &format!("after {done} outage cycles"));
            if done == CYCLES {
                break;
            }
        }
        assert_eq!(done, CYCLES);
    }
}

#[test]
fn a_hundred_thousand_resets_do_not_blind_the_breaker() {
    // Each count on a fresh breaker: a check in between would itself rewrite the cells.
    for resets in [32_769, 49_000, CYCLES] {
        for rule in RULES {
            let clock = ManualClock::new();
            let b = build(rule, &clock);
            // History in every window cell first.
            for _ in 0..6 {
                let _ = succeed(&b);
                let _ = succeed(&b);
                let _ = fail(&b);
            }
            b.reset();
            for _ in 0..resets {
                b.reset();
            }
            assert_trips_on_time(rule, &b, &format!("after {resets} resets"));
        }
    }
}

/// Drives `b` (CLOSED) through exactly `gens` generations, ending CLOSED: a trip, outage
/// cycles, a recovery and resets.
fn advance_generations(rule: Rule, b: &Breaker, clock: &ManualClock, gens: u32) {
    let start = b.generation();
    trip(rule, b);
    let cycles = (gens - 3) / 4;
    outage(b, clock, cycles);
    recover(b, clock);
    while b.generation().wrapping_sub(start) < gens {
        b.reset();
    }
    assert_eq!(b.generation().wrapping_sub(start), gens);
}

#[test]
fn a_permit_held_across_a_hundred_thousand_generations_reports_late_and_changes_nothing() {
    for gens in [49_000, CYCLES] {
        for rule in RULES {
            for outcome_fails in [false, true] {
                let clock = ManualClock::new();
                let b = build(rule, &clock);
                let held = b.try_acquire().unwrap();
                advance_generations(rule, &b, &clock, gens);
                // Some outcomes in the current generation, so a drag-back would be visible.
                succeed(&b).unwrap();
                succeed(&b).unwrap();
                let before = b.metrics();
                let generation = b.generation();
                if outcome_fails {
                    held.failure();
                } else {
                    held.success();
                }
                let after = b.metrics();
                let ctx = format!("{rule:?}, {gens} generations, failure: {outcome_fails}");
                assert_eq!(after.late, before.late + 1, "{ctx}: not reported late");
                assert_eq!(b.generation(), generation, "{ctx}");
                assert_eq!(after.window_calls, before.window_calls, "{ctx}");
                assert_eq!(after.window_failures, before.window_failures, "{ctx}");
                assert_eq!(after.failures, before.failures, "{ctx}");
                assert_eq!(after.calls, before.calls, "{ctx}");
                // And the window still counts for the current generation: two successes are
                // in, so three more and then failures trip it at the usual call.
                for _ in 0..3 {
                    succeed(&b).unwrap();
                }
                let trip_at = expected_trip(rule) - 5;
                for call in 1..=trip_at {
                    let _ = fail(&b);
                    let expect = if call < trip_at {
                        State::Closed
                    } else {
                        State::Open
                    };
                    assert_eq!(
                        b.state(),
                        expect,
                        "{ctx}: failure {call} after the late report"
                    );
                }
            }
        }
    }
}

#[test]
fn late_reports_interleaved_with_a_long_outage_never_drag_a_window_back() {
    // Permits taken in many different generations, reported in reverse order much later.
    for rule in RULES {
        let clock = ManualClock::new();
        let b = build(rule, &clock);
        let mut held = Vec::new();
        for _ in 0..40 {
            held.push(b.try_acquire().unwrap());
            trip(rule, &b);
            outage(&b, &clock, 1_000);
            recover(&b, &clock);
        }
        let late = b.metrics().late;
        while let Some(p) = held.pop() {
            p.failure();
        }
        assert_eq!(b.metrics().late, late + 40, "{rule:?}");
        assert_trips_on_time(rule, &b, "after 40 late reports");
    }
}

/// 100,000 cycles through every manual transition (open for, half-open, closed, and the
/// automatic half-open check) with a permit from each cycle reported late: afterwards every
/// rule still trips on time, and every late report was counted as late.
#[test]
#[cfg_attr(miri, ignore = "a long horizon: minutes under Miri")]
fn a_hundred_thousand_manual_cycles_do_not_blind_the_breaker() {
    for rule in RULES {
        let clock = ManualClock::new();
        let b = build(rule, &clock);
        for i in 0..CYCLES {
            let held = b.try_acquire().expect("closed admits");
            match i % 3 {
                0 => b.transition_to_open_for(WAIT).unwrap(),
                1 => b.transition_to_half_open(),
                _ => {
                    b.transition_to_open_for(WAIT).unwrap();
                    clock.advance(WAIT);
                    assert!(b.half_open_if_due());
                }
            }
            held.failure(); // admitted before the transition: late
            b.transition_to_closed();
        }
        assert_eq!(b.metrics().late, u64::from(CYCLES), "{rule:?}");
        assert_trips_on_time(rule, &b, "after 100,000 manual cycles");
    }
}

/// HALF-OPEN decided by rate, 100,000 outage cycles in which each trial period hands out its
/// three permits, gives one back unreported and re-takes it, and ends in a failure rate at the
/// threshold: the 8-bit trial fields in the state word never carry over from one period to the
/// next, and the breaker still closes and trips exactly as the rules say.
#[test]
#[cfg_attr(miri, ignore = "a long horizon: minutes under Miri")]
fn a_hundred_thousand_rate_decided_trial_periods() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder()
        .failure_rate_threshold(0.5)
        .count_window(10)
        .minimum_calls(10)
        .half_open_permits(2)
        .half_open_decision(breakerbox::HalfOpenDecision::Rate)
        .open_wait(WAIT)
        .clock(clock.clone())
        .build()
        .unwrap();
    trip(Rule::CountWindow, &b);
    for _ in 0..CYCLES {
        clock.advance(WAIT);
        let p1 = b.try_acquire().expect("first trial");
        let p2 = b.try_acquire().expect("second trial");
        assert!(b.try_acquire().is_err(), "two permits per period");
        drop(p2); // unreported: given back
        let p2 = b.try_acquire().expect("the slot came back");
        p1.success();
        p2.failure(); // 1 of 2 failed: 0.5 reaches the threshold
        assert_eq!(b.state(), State::Open);
    }
    clock.advance(WAIT);
    b.try_acquire().unwrap().success();
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), State::Closed);
    assert_trips_on_time(Rule::CountWindow, &b, "after 100,000 rate-decided periods");
}
