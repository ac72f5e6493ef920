//! loom models of the breaker's concurrency protocol: every interleaving (up to the preemption
//! bound) of a few threads using one breaker, with assertions that hold in every sequential
//! order of the same operations.
//!
//! Compiled only under `--cfg breakerbox_loom`; see `.ci/loom.sh`. Each model is small (two or
//! three threads, one or two operations each) and uses the manual clock, so nothing waits for
//! real time. Racing operations run on spawned threads: with listeners attached, loom was seen
//! to explore only one schedule of the main thread racing a spawned one (the backoff model
//! below then missed the defect it exists for; with both operations spawned it finds it). The same assertions run under the `planted-bug` feature, which must make them fail.
#![cfg(breakerbox_loom)]

use breakerbox::{
    CircuitBreaker, Event, EventKind, ManualClock, Metrics, OpenWait, State, Transition,
    TransitionReason,
};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Breaker = CircuitBreaker<ManualClock>;

/// Runs `f` under loom, bounded by `LOOM_MAX_PREEMPTIONS` (3 when unset, so a plain
/// `cargo test` under the cfg cannot run unbounded).
fn model(f: impl Fn() + Sync + Send + 'static) {
    model_bounded(usize::MAX, f)
}

/// [`model`] with the preemption bound capped at `cap`, for the few models whose state space
/// grows too fast (three threads with a dozen atomic operations each): at a bound of 1 such a
/// model takes about 5 s here, at 2 about 90 s, at 3 many minutes.
fn model_bounded(cap: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(b.preemption_bound.unwrap_or(3).min(cap));
    b.check(f);
}

/// The transitions a breaker announced, in the order its listeners saw them.
///
/// A std mutex, not loom's: it belongs to the test harness, not to the protocol under test, and
/// loom runs one thread at a time and never switches inside this critical section (which has no
/// loom operation), so it adds no interleavings and can never block.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Transition>>>);

impl Log {
    fn attach(breaker: &Breaker) -> Log {
        let log = Log::default();
        let sink = log.clone();
        breaker.on_event(move |e: &Event<'_>| {
            if let EventKind::Transition(t) = e.kind {
                sink.0.lock().unwrap().push(t);
            }
        });
        log
    }

    fn transitions(&self) -> Vec<Transition> {
        self.0.lock().unwrap().clone()
    }
}

/// Invariants every snapshot must satisfy, whatever the interleaving.
fn check_metrics(m: &Metrics, window_size: u64) {
    assert!(
        m.window_calls <= window_size,
        "window_calls {} > window size {window_size}: {m:?}",
        m.window_calls
    );
    assert!(m.window_failures <= m.window_calls, "{m:?}");
    assert!(m.window_slow_calls <= m.window_calls, "{m:?}");
    assert_eq!(m.successes + m.failures, m.calls, "{m:?}");
}

/// The announced transitions, ordered by generation, must be a chain: generations
/// `start_gen + 1, start_gen + 2, ...`, each leaving the state the previous one entered, ending
/// at the breaker's stored state and generation.
///
/// Ordered by generation, not by arrival: listeners run after the winning CAS, on the thread
/// that won it, so two transitions won by different threads may reach the listeners in either
/// order (loom finds that interleaving); the generation is the transition's true order.
fn check_transition_chain(
    log: &[Transition],
    start_state: State,
    start_gen: u32,
    b: &Breaker,
) -> Vec<Transition> {
    let mut log = log.to_vec();
    log.sort_by_key(|t| t.generation);
    let mut state = start_state;
    for (i, t) in log.iter().enumerate() {
        assert_eq!(t.from, state, "transition {i} does not follow on: {log:?}");
        assert_eq!(
            t.generation,
            start_gen + 1 + i as u32,
            "generations are not consecutive: {log:?}"
        );
        state = t.to;
    }
    assert_eq!(
        b.state(),
        state,
        "stored state differs from the last transition: {log:?}"
    );
    assert_eq!(
        b.generation(),
        start_gen + log.len() as u32,
        "generation moved {} times but {} transitions were announced: {log:?}",
        b.generation() - start_gen,
        log.len()
    );
    log
}

/// The builder of the models' usual breaker: opens on the first failure (no rate rule), a
/// count window of 2.
fn opens_on_first_failure(clock: &ManualClock) -> breakerbox::Builder<ManualClock> {
    CircuitBreaker::builder()
        .clock(clock.clone())
        .no_failure_rate()
        .consecutive_failures(1)
        .count_window(2)
}

/// A breaker that opens on the first failure and waits 10 s before trials.
fn breaker(clock: &ManualClock, permits: u32, successes: u32) -> Breaker {
    opens_on_first_failure(clock)
        .open_wait(Duration::from_secs(10))
        .half_open_permits(permits)
        .half_open_successes(successes)
        .build()
        .unwrap()
}

/// Trips the breaker (one failure) and lets the open wait elapse: the next acquire turns it
/// HALF-OPEN. Returns the generation of the OPEN state.
fn open_and_elapse(b: &Breaker, clock: &ManualClock) -> u32 {
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open);
    clock.advance(Duration::from_secs(10));
    b.generation()
}

// ----- 1. trip race --------------------------------------------------------------------------

/// Two threads each record a failure that, alone, reaches the trip threshold (one consecutive
/// failure): both try to trip, exactly one CLOSED -> OPEN transition happens and exactly one
/// transition event is emitted.
#[test]
fn trip_race_makes_exactly_one_closed_to_open_transition() {
    model(|| {
        let clock = ManualClock::new();
        let b = Arc::new(breaker(&clock, 1, 1));
        let log = Log::attach(&b);
        // Both admitted in CLOSED before either reports, so both outcomes count.
        let permits = [
            b.try_acquire_owned().unwrap(),
            b.try_acquire_owned().unwrap(),
        ];
        let handles: Vec<_> = permits
            .into_iter()
            .map(|p| thread::spawn(move || p.failure()))
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let log = log.transitions();
        assert_eq!(log.len(), 1, "expected exactly one transition: {log:?}");
        assert_eq!((log[0].from, log[0].to), (State::Closed, State::Open));
        assert!(matches!(log[0].reason, TransitionReason::Tripped(_)));
        check_transition_chain(&log, State::Closed, 0, &b);
        let m = b.metrics();
        assert_eq!(m.times_opened, 1, "{m:?}");
        check_metrics(&m, 2);
    });
}

/// Three threads at a threshold of two consecutive failures: the second and third failure in
/// streak order both reach it; still exactly one transition. (Preemption bound capped at 1;
/// the two-thread model above explores the same race at the full bound.)
#[test]
fn trip_race_of_three_threads_makes_exactly_one_transition() {
    model_bounded(1, || {
        let clock = ManualClock::new();
        let b = Arc::new(
            CircuitBreaker::builder()
                .clock(clock.clone())
                .no_failure_rate()
                .consecutive_failures(2)
                .count_window(3)
                .build()
                .unwrap(),
        );
        let log = Log::attach(&b);
        let permits: Vec<_> = (0..3).map(|_| b.try_acquire_owned().unwrap()).collect();
        let handles: Vec<_> = permits
            .into_iter()
            .map(|p| thread::spawn(move || p.failure()))
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let log = log.transitions();
        assert_eq!(log.len(), 1, "expected exactly one transition: {log:?}");
        assert_eq!((log[0].from, log[0].to), (State::Closed, State::Open));
        check_transition_chain(&log, State::Closed, 0, &b);
        let m = b.metrics();
        assert_eq!(m.times_opened, 1, "{m:?}");
        check_metrics(&m, 3);
    });
}

// ----- 2. half-open cap ----------------------------------------------------------------------

/// Half-open cap `permits`, `permits + 1` threads acquiring at once. Each admitted thread counts
/// itself in while it holds the permit (never more than the cap at once), then either drops the
/// permit without an outcome or reports a success that does not yet close the breaker. After
/// all threads: no slot leaked, exactly one OPEN -> HALF-OPEN transition, and a new acquire
/// succeeds.
fn half_open_cap(permits: u32, success_from: usize) {
    model(move || {
        let clock = ManualClock::new();
        // More successes needed than threads: the breaker stays HALF-OPEN throughout.
        let b = Arc::new(breaker(&clock, permits, permits + 2));
        let open_gen = open_and_elapse(&b, &clock);
        let log = Log::attach(&b);
        let holding = Arc::new(AtomicUsize::new(0));
        let admitted = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..permits as usize + 1)
            .map(|i| {
                let (b, holding, admitted) = (b.clone(), holding.clone(), admitted.clone());
                thread::spawn(move || {
                    let Ok(p) = b.try_acquire() else { return };
                    assert!(p.is_trial());
                    // SeqCst on the harness's counters: they only need to be exact, and loom
                    // explores every order of them with the breaker's own atomics.
                    let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(
                        now <= permits as usize,
                        "{now} trial calls admitted at once with a cap of {permits}"
                    );
                    admitted.fetch_add(1, Ordering::SeqCst);
                    // Counted out while still holding the permit: the counted span lies inside
                    // the time the slot is held, so a count above the cap means more permits
                    // were held at once (counting out after the release could overlap with the
                    // next holder's span and fail a correct breaker).
                    holding.fetch_sub(1, Ordering::SeqCst);
                    if i >= success_from {
                        p.success();
                    } else {
                        drop(p); // no outcome: the slot must come back
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let log = log.transitions();
        assert_eq!(
            log.len(),
            1,
            "expected one OPEN -> HALF-OPEN transition: {log:?}"
        );
        assert_eq!((log[0].from, log[0].to), (State::Open, State::HalfOpen));
        check_transition_chain(&log, State::Open, open_gen, &b);
        assert!(admitted.load(Ordering::SeqCst) >= 1);
        let m = b.metrics();
        assert_eq!(m.half_open_in_flight, 0, "a trial slot leaked: {m:?}");
        check_metrics(&m, 2);
        // Every slot is free again: the cap's worth of new trials is admitted.
        let again: Vec<_> = (0..permits).map(|_| b.try_acquire()).collect();
        assert!(again.iter().all(Result::is_ok), "{again:?}");
        assert_eq!(b.metrics().half_open_in_flight, permits);
        assert!(b.try_acquire().is_err(), "admitted past the cap");
    });
}

/// Cap 1, two threads acquiring, both dropping their permits unreported.
#[test]
fn half_open_cap_1_admits_at_most_one_and_dropped_permits_release_their_slot() {
    half_open_cap(1, usize::MAX);
}

/// Cap 2, three threads acquiring; the third reports a success (which frees its slot without
/// closing), the others drop their permits.
#[test]
fn half_open_cap_2_admits_at_most_two_and_no_slot_leaks() {
    half_open_cap(2, 2);
}

/// HALF-OPEN decided by rate (`HalfOpenDecision::Rate`), two trial permits, failure-rate
/// threshold 0.5. The two trials report on two threads while a third asks for a permit:
/// whatever the order, the third is refused (each permit runs once per half-open period), and
/// the verdict is the rate over both outcomes, decided exactly once by whichever report comes
/// last.
fn rate_decision(second_fails: bool) {
    model(move || {
        let clock = ManualClock::new();
        let b = Arc::new(
            CircuitBreaker::builder()
                .clock(clock.clone())
                .failure_rate_threshold(0.5)
                .count_window(2)
                .minimum_calls(2)
                .half_open_permits(2)
                .half_open_decision(breakerbox::HalfOpenDecision::Rate)
                .open_wait(Duration::from_secs(10))
                .build()
                .unwrap(),
        );
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().failure();
        assert_eq!(b.state(), State::Open);
        clock.advance(Duration::from_secs(10));
        let p1 = b.try_acquire_owned().unwrap();
        let p2 = b.try_acquire_owned().unwrap();
        let open_gen = b.generation() - 1;
        let log = Log::attach(&b);
        let t1 = thread::spawn(move || p1.success());
        let t2 = thread::spawn(move || {
            if second_fails {
                p2.failure()
            } else {
                p2.success()
            }
        });
        let b3 = b.clone();
        // (Once the verdict is CLOSED, a call is admitted, but not as a trial.)
        let t3 = thread::spawn(move || b3.try_acquire().is_ok_and(|p| p.is_trial()));
        t1.join().unwrap();
        t2.join().unwrap();
        assert!(!t3.join().unwrap(), "a third trial was admitted");
        let log = log.transitions();
        assert_eq!(log.len(), 1, "expected one verdict: {log:?}");
        let want = if second_fails {
            State::Open
        } else {
            State::Closed
        };
        assert_eq!((log[0].from, log[0].to), (State::HalfOpen, want));
        check_transition_chain(&log, State::HalfOpen, open_gen + 1, &b);
    });
}

#[test]
fn rate_decision_of_racing_trials_reopens_at_the_threshold_exactly_once() {
    rate_decision(true);
}

#[test]
fn rate_decision_of_racing_trials_closes_exactly_once() {
    rate_decision(false);
}

// ----- 3. success racing failure in half-open -------------------------------------------------

/// Two trial permits held; one thread reports success, the other failure. With one success
/// needed, the two sequential orders give CLOSED (success first, the failure is late) or OPEN
/// (failure first, the success is late); nothing else.
#[test]
fn half_open_success_racing_failure_ends_as_some_sequential_order() {
    model(|| {
        let clock = ManualClock::new();
        let b = Arc::new(breaker(&clock, 2, 1));
        let open_gen = open_and_elapse(&b, &clock);
        let ok = b.try_acquire_owned().unwrap();
        let bad = b.try_acquire_owned().unwrap();
        let half_gen = open_gen + 1;
        assert_eq!((b.state(), b.generation()), (State::HalfOpen, half_gen));
        let log = Log::attach(&b);
        let t1 = thread::spawn(move || ok.success());
        let t2 = thread::spawn(move || bad.failure());
        t1.join().unwrap();
        t2.join().unwrap();
        let log = log.transitions();
        assert_eq!(
            log.len(),
            1,
            "expected one transition out of HALF-OPEN: {log:?}"
        );
        check_transition_chain(&log, State::HalfOpen, half_gen, &b);
        let m = b.metrics();
        match b.state() {
            // success, then failure (late)
            State::Closed => {
                assert!(matches!(
                    log[0].reason,
                    TransitionReason::TrialsSucceeded { .. }
                ));
                assert_eq!(m.times_opened, 1, "{m:?}");
            }
            // failure, then success (late)
            State::Open => {
                assert!(matches!(
                    log[0].reason,
                    TransitionReason::TrialFailed { .. }
                ));
                assert_eq!(m.times_opened, 2, "{m:?}");
            }
            other => panic!("no sequential order ends in {other}: {log:?}"),
        }
        assert_eq!(m.late, 1, "exactly one of the two outcomes is late: {m:?}");
        assert_eq!(m.half_open_in_flight, 0);
        check_metrics(&m, 2);
    });
}

/// Two successes needed: success then failure re-opens (the failure is the second trial);
/// failure then success re-opens (the success is late). Only OPEN is sequentially explainable.
#[test]
fn half_open_success_racing_failure_with_two_successes_needed_reopens() {
    model(|| {
        let clock = ManualClock::new();
        let b = Arc::new(breaker(&clock, 2, 2));
        let open_gen = open_and_elapse(&b, &clock);
        let ok = b.try_acquire_owned().unwrap();
        let bad = b.try_acquire_owned().unwrap();
        let log = Log::attach(&b);
        let t1 = thread::spawn(move || ok.success());
        let t2 = thread::spawn(move || bad.failure());
        t1.join().unwrap();
        t2.join().unwrap();
        let log = log.transitions();
        check_transition_chain(&log, State::HalfOpen, open_gen + 1, &b);
        assert_eq!(b.state(), State::Open, "{log:?}");
        assert_eq!(log.len(), 1, "{log:?}");
        let m = b.metrics();
        assert_eq!(m.times_opened, 2, "{m:?}");
        // Success first: both count. Failure first: the success is late.
        assert_eq!(m.calls + m.late, 3, "{m:?}");
        check_metrics(&m, 2);
    });
}

// ----- 4. recording while a transition resets the window --------------------------------------

/// A reset races two recorders admitted in the old generation (one failure, one success) and
/// one recorder admitted after the reset. No old-generation outcome shows up in the new window,
/// whose counts are exactly the new generation's outcome and stay within `[0, window_calls]`.
/// (That each old outcome is counted *or* late, exactly once, is checked by
/// `outcome_racing_a_reset_is_counted_or_late_exactly_once` below.)
#[test]
fn reset_racing_recorders_keeps_old_generation_out_of_the_new_window() {
    model(|| {
        let clock = ManualClock::new();
        // Never trips in this model (a streak of 10 failures is needed).
        let b = Arc::new(
            CircuitBreaker::builder()
                .clock(clock.clone())
                .no_failure_rate()
                .consecutive_failures(10)
                .count_window(2)
                .build()
                .unwrap(),
        );
        // Fill the window with one old failure, so a late subtraction would show.
        b.try_acquire().unwrap().failure();
        let old_fail = b.try_acquire_owned().unwrap();
        let old_ok = b.try_acquire_owned().unwrap();
        let t_fail = thread::spawn(move || old_fail.failure());
        let t_ok = thread::spawn(move || old_ok.success());
        let br = b.clone();
        let t_reset = thread::spawn(move || {
            br.reset();
            // Admitted after the reset: the new generation.
            let p = br.try_acquire().unwrap();
            assert_eq!(p.generation(), 1);
            p.failure();
        });
        t_fail.join().unwrap();
        t_ok.join().unwrap();
        t_reset.join().unwrap();
        assert_eq!((b.state(), b.generation()), (State::Closed, 1));
        let m = b.metrics();
        check_metrics(&m, 2);
        assert_eq!(
            (m.window_calls, m.window_failures),
            (1, 1),
            "the new window must hold exactly the new generation's failure: {m:?}"
        );
    });
}

/// Two old-generation recorders racing a reset, checked only for the window counts: after
/// the threads, the new window is empty and every count is within bounds.
#[test]
fn reset_racing_recorders_never_underflows_the_new_window() {
    model(|| {
        let clock = ManualClock::new();
        let b = Arc::new(
            CircuitBreaker::builder()
                .clock(clock.clone())
                .no_failure_rate()
                .consecutive_failures(10)
                .count_window(1)
                .build()
                .unwrap(),
        );
        b.try_acquire().unwrap().failure();
        let p1 = b.try_acquire_owned().unwrap();
        let p2 = b.try_acquire_owned().unwrap();
        let t1 = thread::spawn(move || p1.failure());
        let t2 = thread::spawn(move || p2.success());
        b.reset();
        let mid = b.metrics();
        check_metrics(&mid, 1);
        t1.join().unwrap();
        t2.join().unwrap();
        let m = b.metrics();
        check_metrics(&m, 1);
        assert_eq!(
            (m.window_calls, m.window_failures),
            (0, 0),
            "old-generation outcomes leaked into the new window: {m:?}"
        );
    });
}

// ----- 5. manual control racing an automatic transition --------------------------------------

/// `force_open` races the failure that trips the breaker. Sequentially: trip then force
/// (CLOSED -> OPEN -> FORCED_OPEN) or force then a failure that can no longer trip
/// (CLOSED -> FORCED_OPEN). Either way the breaker ends FORCED_OPEN, and the generation moved
/// once per announced transition.
#[test]
fn force_open_racing_trip_ends_forced_open_with_consistent_generation() {
    model(|| {
        let clock = ManualClock::new();
        let b = Arc::new(breaker(&clock, 1, 1));
        let log = Log::attach(&b);
        let p = b.try_acquire_owned().unwrap();
        let t1 = thread::spawn(move || p.failure());
        let br = b.clone();
        let t2 = thread::spawn(move || br.force_open());
        t1.join().unwrap();
        t2.join().unwrap();
        let log = log.transitions();
        assert_eq!(b.state(), State::ForcedOpen, "{log:?}");
        let log = check_transition_chain(&log, State::Closed, 0, &b);
        let m = b.metrics();
        match log.len() {
            1 => assert_eq!(m.times_opened, 0, "{m:?}"),
            2 => {
                assert_eq!(log[0].to, State::Open, "{log:?}");
                assert_eq!(m.times_opened, 1, "{m:?}");
            }
            _ => panic!("no sequential order gives these transitions: {log:?}"),
        }
        check_metrics(&m, 2);
    });
}

/// `force_open` races a trial call that turns OPEN into HALF-OPEN and then closes it. Every
/// sequential order ends FORCED_OPEN (force_open always applies last or rejects the trial).
#[test]
fn force_open_racing_half_open_trial_ends_forced_open() {
    model(|| {
        let clock = ManualClock::new();
        let b = Arc::new(breaker(&clock, 1, 1));
        let open_gen = open_and_elapse(&b, &clock);
        let log = Log::attach(&b);
        let br = b.clone();
        let t1 = thread::spawn(move || {
            if let Ok(p) = br.try_acquire() {
                p.success();
            }
        });
        let br = b.clone();
        let t2 = thread::spawn(move || br.force_open());
        t1.join().unwrap();
        t2.join().unwrap();
        let log = log.transitions();
        assert_eq!(b.state(), State::ForcedOpen, "{log:?}");
        let log = check_transition_chain(&log, State::Open, open_gen, &b);
        assert!((1..=3).contains(&log.len()), "{log:?}");
        assert_eq!(log.last().unwrap().to, State::ForcedOpen);
        let m = b.metrics();
        assert_eq!(m.half_open_in_flight, 0, "{m:?}");
        check_metrics(&m, 2);
    });
}

// ----- each outcome counted or late, exactly once ---------------------------------------------
//
// Found by these models and fixed in the core (2a561dc): a record that claimed a position in
// the count window's `head` and then found a newer tag in its slot or in `counts` was reported
// late but left its claim in the lifetime total, so `Metrics::calls` counted it too and
// `successes = calls - failures` turned a late failure into a phantom success.

/// Two failures at the threshold (consecutive_failures(1)): the second may race the trip and
/// turn late. Each outcome is counted or late, exactly once; no failure becomes a success.
#[test]
fn outcome_racing_a_trip_is_counted_or_late_exactly_once() {
    model(|| {
        let clock = ManualClock::new();
        let b = Arc::new(breaker(&clock, 1, 1));
        let permits = [
            b.try_acquire_owned().unwrap(),
            b.try_acquire_owned().unwrap(),
        ];
        let handles: Vec<_> = permits
            .into_iter()
            .map(|p| thread::spawn(move || p.failure()))
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let m = b.metrics();
        assert_eq!(m.calls + m.late, 2, "an outcome was counted twice: {m:?}");
        assert_eq!(m.successes, 0, "no call succeeded: {m:?}");
    });
}

/// The same with a reset racing one old-generation failure.
#[test]
fn outcome_racing_a_reset_is_counted_or_late_exactly_once() {
    model(|| {
        let clock = ManualClock::new();
        let b = Arc::new(
            CircuitBreaker::builder()
                .clock(clock.clone())
                .no_failure_rate()
                .consecutive_failures(10)
                .count_window(2)
                .build()
                .unwrap(),
        );
        let p = b.try_acquire_owned().unwrap();
        let t = thread::spawn(move || p.failure());
        b.reset();
        t.join().unwrap();
        let m = b.metrics();
        assert_eq!(m.calls + m.late, 1, "an outcome was counted twice: {m:?}");
        assert_eq!(m.successes, 0, "no call succeeded: {m:?}");
    });
}

/// A result classified as a trip ([`breakerbox::Outcome::Trip`]) racing a reset: it opens the
/// generation it was admitted in or none. Sequentially either the trip comes first (it opens,
/// the reset closes again) or the reset does (the trip is late); in both the breaker ends
/// CLOSED, and the newest generation announced is the reset's. (Listeners of two threads may
/// run in either order; the generation each transition carries orders them.)
#[test]
fn a_trip_result_racing_a_reset_never_opens_the_new_generation() {
    model(|| {
        let clock = ManualClock::new();
        let b = Arc::new(
            CircuitBreaker::builder()
                .clock(clock.clone())
                .no_failure_rate()
                .consecutive_failures(10)
                .count_window(2)
                .build()
                .unwrap(),
        );
        let log = Log::attach(&b);
        let p = b.try_acquire_owned().unwrap();
        let t = thread::spawn(move || p.record(breakerbox::Outcome::Trip));
        let b2 = b.clone();
        let r = thread::spawn(move || b2.reset());
        t.join().unwrap();
        r.join().unwrap();
        assert_eq!(b.state(), State::Closed, "{:?}", log.transitions());
        let m = b.metrics();
        assert_eq!(m.calls + m.late, 1, "an outcome was counted twice: {m:?}");
        let ts = log.transitions();
        let last = ts
            .iter()
            .max_by_key(|t| t.generation)
            .expect("the reset's transition");
        assert_eq!(last.to, State::Closed, "{ts:?}");
        assert_eq!(last.reason, TransitionReason::Reset, "{ts:?}");
        assert!(ts.len() <= 2, "{ts:?}");
    });
}

// ----- the sealed window ----------------------------------------------------------------------
//
// Formerly a known bug: a recorder that claimed its position before the trip and then turned
// late stayed in the sealed window's call count. Interleaving (consecutive_failures(1), count
// window 2, permits A and B, both report failure):
//   B: record -> advance_head claims seq 2 (tag 0)
//   A: record -> slot, counts (failures 1); streak 1 -> trip CLOSED(0) -> OPEN(1) -> seal(tag 1)
//   B: slot CAS ok; adjust_counts(tag 0) finds counts tagged 1 -> late
// The sealed head now remembers whose sequence it keeps, and B takes its claim back out of it.

/// While OPEN the metrics show the sealed window: only outcomes that were counted.
#[test]
fn sealed_window_shows_only_counted_outcomes() {
    model(|| {
        let clock = ManualClock::new();
        let b = Arc::new(breaker(&clock, 1, 1));
        let permits = [
            b.try_acquire_owned().unwrap(),
            b.try_acquire_owned().unwrap(),
        ];
        let handles: Vec<_> = permits
            .into_iter()
            .map(|p| thread::spawn(move || p.failure()))
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let m = b.metrics();
        assert_eq!(m.state, State::Open);
        assert_eq!(
            (m.window_calls, m.window_failures),
            (m.calls, m.failures),
            "the sealed window differs from the outcomes counted (every call failed): {m:?}"
        );
    });
}

// ----- backoff step, half-open guards, tag wrap ------------------------------------------------

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Keeps the panic hook quiet for the listener panics these models provoke on purpose (loom
/// would print one per explored interleaving); every other panic still prints.
fn quiet_listener_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info.payload().downcast_ref::<&str>().copied();
            if msg != Some("listener panics on purpose") {
                default(info);
            }
        }));
    });
}

/// A reset races a failure that trips the generation the reset starts. The backoff step is
/// part of the state word, so whatever the order, a CLOSED -> OPEN transition waits the first
/// step (1 s), never the step of the openings before the reset (the breaker was at step 2).
#[test]
fn a_trip_racing_a_reset_takes_the_first_backoff_step() {
    model(|| {
        let clock = ManualClock::new();
        let b = Arc::new(
            opens_on_first_failure(&clock)
                .open_wait_backoff(OpenWait::exponential(secs(1), secs(64)))
                .build()
                .unwrap(),
        );
        b.try_acquire().unwrap().failure();
        clock.advance(secs(1));
        b.try_acquire().unwrap().failure();
        assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(secs(2)));
        let log = Log::attach(&b);
        let br = b.clone();
        let t_reset = thread::spawn(move || br.reset());
        let bf = b.clone();
        let t_fail = thread::spawn(move || {
            if let Ok(p) = bf.try_acquire() {
                p.failure();
            }
        });
        t_reset.join().unwrap();
        t_fail.join().unwrap();
        for tr in log.transitions() {
            if let TransitionReason::Tripped(_) = tr.reason {
                assert_eq!(
                    tr.open_wait,
                    Some(secs(1)),
                    "a trip took a stale step: {tr:?}"
                );
            }
        }
    });
}

/// The half-open guard: a listener that panics on OPEN -> HALF-OPEN runs after the caller's
/// ticket owns the trial slot and cannot unwind through the breaker. Two callers race past the
/// open wait and drop their permits: the slot always comes back, and the panic is counted.
#[test]
fn a_panicking_listener_cannot_take_the_half_open_slot_with_it() {
    quiet_listener_panics();
    model(|| {
        let clock = ManualClock::new();
        let b = Arc::new(breaker(&clock, 1, 1));
        b.on_event(|e| {
            if let EventKind::Transition(t) = e.kind {
                if t.to == State::HalfOpen {
                    panic!("listener panics on purpose");
                }
            }
        });
        open_and_elapse(&b, &clock);
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                thread::spawn(move || b.try_acquire_owned().ok())
            })
            .collect();
        let admitted: Vec<_> = hs.into_iter().filter_map(|h| h.join().unwrap()).collect();
        assert_eq!(admitted.len(), 1, "cap 1");
        drop(admitted);
        let m = b.metrics();
        assert_eq!(
            (m.state, m.half_open_in_flight),
            (State::HalfOpen, 0),
            "{m:?}"
        );
        assert_eq!(m.listener_panics, 1);
        b.try_acquire().unwrap().success();
        assert_eq!(b.state(), State::Closed);
    });
}

/// The other half-open guard: a trial permit leaked (`mem::forget`) and two callers arriving
/// after `max_half_open_wait`. Exactly one re-opens (HalfOpenTimedOut, at the next backoff
/// step), both are rejected, and the announced transitions form a chain.
#[test]
fn half_open_timeout_reopens_exactly_once() {
    model(|| {
        let clock = ManualClock::new();
        let b = Arc::new(
            opens_on_first_failure(&clock)
                .open_wait_backoff(OpenWait::exponential(secs(10), secs(100)))
                .max_half_open_wait(secs(30))
                .build()
                .unwrap(),
        );
        open_and_elapse(&b, &clock);
        std::mem::forget(b.try_acquire().unwrap());
        clock.advance(secs(30));
        let (start_state, start_gen) = (b.state(), b.generation());
        let log = Log::attach(&b);
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                thread::spawn(move || b.try_acquire().is_err())
            })
            .collect();
        for h in hs {
            assert!(h.join().unwrap(), "admitted past a leaked slot");
        }
        let chain = check_transition_chain(&log.transitions(), start_state, start_gen, &b);
        assert_eq!(chain.len(), 1, "{chain:?}");
        assert_eq!(chain[0].reason, TransitionReason::HalfOpenTimedOut);
        assert_eq!(chain[0].open_wait, Some(secs(20)));
        assert_eq!(b.state(), State::Open);
    });
}

/// With the 3-bit tags of a loom build, a breaker is driven through 21 transitions (the tags
/// wrap more than twice), then a permit taken before all of them reports a failure while two
/// fresh successes are recorded. The old failure is late whatever the order, the window holds
/// exactly the two successes, and one more failure trips it on time.
#[test]
fn tags_wrap_and_the_breaker_still_counts_exactly() {
    model(|| {
        let clock = ManualClock::new();
        let b = Arc::new(
            CircuitBreaker::builder()
                .clock(clock.clone())
                .failure_rate_threshold(0.5)
                .minimum_calls(2)
                .count_window(2)
                .open_wait(secs(1))
                .build()
                .unwrap(),
        );
        let held = b.try_acquire_owned().unwrap();
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().failure();
        for _ in 0..9 {
            clock.advance(secs(1));
            b.try_acquire().unwrap().failure();
        }
        clock.advance(secs(1));
        b.try_acquire().unwrap().success();
        assert_eq!((b.state(), b.generation()), (State::Closed, 21));
        let late = thread::spawn(move || held.failure());
        let bs = b.clone();
        let fresh = thread::spawn(move || {
            bs.try_acquire().unwrap().success();
            bs.try_acquire().unwrap().success();
        });
        late.join().unwrap();
        fresh.join().unwrap();
        let m = b.metrics();
        assert_eq!(m.state, State::Closed, "{m:?}");
        assert_eq!(
            (m.window_calls, m.window_failures, m.late),
            (2, 0, 1),
            "{m:?}"
        );
        b.try_acquire().unwrap().failure();
        assert_eq!(b.state(), State::Open);
    });
}
