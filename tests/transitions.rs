//! Every transition, driven by the manual clock (no sleeps).

use breakerbox::{
    CallError, CircuitBreaker, ConfigError, EventKind, ManualClock, OpenWait, Outcome, State,
    TransitionReason, TripReason,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn breaker(clock: &ManualClock) -> CircuitBreaker<ManualClock> {
    CircuitBreaker::builder()
        .failure_rate_threshold(0.5)
        .count_window(10)
        .minimum_calls(4)
        .open_wait(secs(30))
        .half_open_permits(2)
        .half_open_successes(2)
        .clock(clock.clone())
        .build()
        .unwrap()
}

fn fail(b: &CircuitBreaker<ManualClock>) {
    b.try_acquire().unwrap().failure();
}

fn succeed(b: &CircuitBreaker<ManualClock>) {
    b.try_acquire().unwrap().success();
}

fn transitions(
    b: &CircuitBreaker<ManualClock>,
) -> Arc<Mutex<Vec<(State, State, TransitionReason)>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    b.on_event(move |e| {
        if let EventKind::Transition(t) = e.kind {
            sink.lock().unwrap().push((t.from, t.to, t.reason));
        }
    });
    log
}

#[test]
fn closed_to_open_on_failure_rate_after_minimum_calls() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let log = transitions(&b);
    fail(&b);
    fail(&b);
    fail(&b);
    assert_eq!(b.state(), State::Closed, "3 calls < minimum of 4");
    fail(&b);
    assert_eq!(b.state(), State::Open);
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 1);
    assert!(matches!(
        log[0],
        (
            State::Closed,
            State::Open,
            TransitionReason::Tripped(TripReason::FailureRate { calls: 4, .. })
        )
    ));
}

#[test]
fn the_window_slides_rather_than_accumulates() {
    // 1,000 successes must not dilute later failures: the window holds the last 10 calls only.
    let clock = ManualClock::new();
    let b = breaker(&clock);
    for _ in 0..1_000 {
        succeed(&b);
    }
    for i in 0..5 {
        assert_eq!(b.state(), State::Closed, "after {i} failures");
        fail(&b);
    }
    assert_eq!(b.state(), State::Open, "5 of the last 10 calls failed");
}

#[test]
fn open_rejects_with_retry_after_then_half_opens() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    for _ in 0..4 {
        fail(&b);
    }
    let r = b.try_acquire().unwrap_err();
    assert_eq!((r.state(), r.retry_after()), (State::Open, Some(secs(30))));
    clock.advance(secs(10));
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(secs(20)));
    clock.advance(secs(20) - Duration::from_millis(1));
    assert!(b.try_acquire().is_err(), "1 ms before the end of the wait");
    assert_eq!(b.metrics().rejected, 3);
    clock.advance(Duration::from_millis(1));
    let p = b.try_acquire().unwrap();
    assert!(p.is_trial());
    assert_eq!(b.state(), State::HalfOpen);
    drop(p);
}

#[test]
fn half_open_caps_trials_and_closes_after_k_successes() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let log = transitions(&b);
    for _ in 0..4 {
        fail(&b);
    }
    clock.advance(secs(30));
    let t1 = b.try_acquire().unwrap();
    let t2 = b.try_acquire().unwrap();
    let r = b.try_acquire().unwrap_err();
    assert_eq!((r.state(), r.retry_after()), (State::HalfOpen, None));
    t1.success();
    assert_eq!(b.state(), State::HalfOpen, "1 of 2 successes");
    let t3 = b.try_acquire().unwrap(); // t1's slot is free again
    t2.success();
    assert_eq!(b.state(), State::Closed);
    // t3 was admitted in the half-open generation: its outcome is late and changes nothing.
    t3.failure();
    assert_eq!(b.state(), State::Closed);
    let m = b.metrics();
    assert_eq!((m.late, m.window_calls, m.window_failures), (1, 0, 0));
    let reasons: Vec<_> = log.lock().unwrap().iter().map(|t| (t.0, t.1)).collect();
    assert_eq!(
        reasons,
        vec![
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed)
        ]
    );
}

#[test]
fn half_open_failure_reopens_and_backoff_grows_then_resets() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder()
        .consecutive_failures(1)
        .open_wait_backoff(OpenWait::exponential(secs(1), secs(5)))
        .clock(clock.clone())
        .build()
        .unwrap();
    fail(&b);
    let mut waits = vec![];
    for _ in 0..5 {
        let wait = b.try_acquire().unwrap_err().retry_after().unwrap();
        waits.push(wait.as_secs());
        clock.advance(wait);
        b.try_acquire().unwrap().failure(); // the trial fails: re-open
        assert_eq!(b.state(), State::Open);
    }
    assert_eq!(waits, vec![1, 2, 4, 5, 5]);
    clock.advance(secs(5));
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), State::Closed);
    fail(&b);
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after(),
        Some(secs(1)),
        "closing resets the backoff"
    );
}

#[test]
fn dropped_trial_permit_gives_its_slot_back() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder()
        .consecutive_failures(1)
        .open_wait(secs(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    fail(&b);
    clock.advance(secs(1));
    let trial = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    drop(trial); // a cancelled call
    assert_eq!(b.metrics().half_open_in_flight, 0);
    let trial = b.try_acquire().expect("the slot came back");
    // A panic while holding the permit releases it too.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _held = trial;
        panic!("the call panicked");
    }));
    assert!(r.is_err());
    assert!(b.try_acquire().is_ok());
}

#[test]
fn consecutive_failures_rule_is_the_classic_five() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder()
        .no_failure_rate()
        .consecutive_failures(5)
        .clock(clock.clone())
        .build()
        .unwrap();
    for _ in 0..4 {
        fail(&b);
    }
    succeed(&b); // breaks the streak
    for _ in 0..4 {
        fail(&b);
    }
    assert_eq!(b.state(), State::Closed);
    fail(&b);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn slow_calls_trip_the_slow_rate_rule() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder()
        .no_failure_rate()
        .slow_calls(Duration::from_millis(500), 0.5)
        .count_window(4)
        .minimum_calls(4)
        .clock(clock.clone())
        .build()
        .unwrap();
    for i in 0..4 {
        let p = b.try_acquire().unwrap();
        clock.advance(Duration::from_millis(if i % 2 == 0 { 600 } else { 100 }));
        p.success();
    }
    assert_eq!(b.state(), State::Open);
    let m = b.metrics();
    assert_eq!((m.slow_calls, m.failures, m.successes), (2, 0, 4));
}

#[test]
fn time_window_forgets_old_failures() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder()
        .failure_rate_threshold(0.5)
        .time_window(secs(10), 10)
        .minimum_calls(4)
        .clock(clock.clone())
        .build()
        .unwrap();
    fail(&b);
    fail(&b);
    fail(&b);
    clock.advance(secs(11)); // those failures leave the window
    succeed(&b);
    succeed(&b);
    succeed(&b);
    fail(&b);
    assert_eq!(b.state(), State::Closed, "1 of 4 in the last 10 s");
    fail(&b);
    fail(&b);
    assert_eq!(b.state(), State::Open, "3 of 6 in the last 10 s");
}

#[test]
fn manual_states() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    b.force_open();
    let r = b.try_acquire().unwrap_err();
    assert_eq!((r.state(), r.retry_after()), (State::ForcedOpen, None));
    b.disable();
    for _ in 0..100 {
        fail(&b);
    }
    assert_eq!(b.state(), State::Disabled, "disabled never trips");
    b.metrics_only();
    for _ in 0..100 {
        fail(&b);
    }
    let m = b.metrics();
    assert_eq!(m.state, State::MetricsOnly);
    assert_eq!(
        (m.window_calls, m.window_failures),
        (10, 10),
        "metrics-only records"
    );
    b.reset();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().window_calls, 0);
    assert_eq!(b.metrics().failures, 200);
}

#[test]
fn outcomes_from_before_a_transition_are_late() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let slow_call = b.try_acquire().unwrap();
    for _ in 0..4 {
        fail(&b);
    }
    assert_eq!(b.state(), State::Open);
    slow_call.success();
    let m = b.metrics();
    assert_eq!(m.late, 1);
    assert_eq!(
        (m.window_calls, m.window_failures),
        (4, 4),
        "the window at the trip is kept"
    );
}

#[test]
fn classification_and_errors() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let classify = |r: &Result<u16, &str>| match r {
        Ok(s) if *s >= 500 => Outcome::Failure,
        Ok(_) => Outcome::Success,
        Err(e) if *e == "not found" => Outcome::Ignore,
        Err(_) => Outcome::Failure,
    };
    assert_eq!(b.call_with(classify, || Ok(503)), Ok(503));
    assert_eq!(
        b.call_with(classify, || Err("not found")),
        Err(CallError::Failed("not found"))
    );
    let m = b.metrics();
    assert_eq!((m.failures, m.ignored, m.calls), (1, 1, 1));
    b.force_open();
    assert!(b.call(|| Ok::<_, ()>(1)).unwrap_err().is_rejected());
    assert_eq!(b.call_or_else(|| Ok::<_, ()>(1), |_| 7), 7);
}

#[test]
fn invalid_config_names_the_field() {
    let e = CircuitBreaker::builder()
        .half_open_permits(0)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "half_open_permits");
    assert!(matches!(e, ConfigError::OutOfRange { .. }));
    let e = CircuitBreaker::builder()
        .time_window(secs(1), 0)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "window.buckets");
    assert!(e.to_string().contains("window.buckets"));
}

#[test]
fn extreme_settings_behave_as_documented() {
    // Window of 1, threshold 1.0, zero open wait: every failure opens, the next call is a trial.
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder()
        .failure_rate_threshold(1.0)
        .count_window(1)
        .minimum_calls(1)
        .open_wait(Duration::ZERO)
        .half_open_permits(breakerbox::MAX_HALF_OPEN)
        .clock(clock.clone())
        .build()
        .unwrap();
    fail(&b);
    assert_eq!(b.state(), State::Open);
    let trials: Vec<_> = (0..1_000).map(|_| b.try_acquire().unwrap()).collect();
    assert_eq!(b.metrics().half_open_in_flight, 1_000);
    drop(trials);
    assert_eq!(b.metrics().half_open_in_flight, 0);
    // A clock that stands still or jumps a century does no harm.
    clock.advance(Duration::from_secs(100 * 365 * 24 * 3600));
    succeed(&b);
    assert_eq!(b.state(), State::Closed);
    fail(&b);
    assert!(b.try_acquire().unwrap().is_trial());
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn async_timeout_counts_as_failure() {
    let b = CircuitBreaker::builder()
        .consecutive_failures(1)
        .call_timeout(Duration::from_millis(20))
        .build()
        .unwrap();
    let r: Result<(), CallError<()>> = b
        .call_async(async {
            std::future::pending::<()>().await;
            Ok(())
        })
        .await;
    assert_eq!(r, Err(CallError::Timeout(Duration::from_millis(20))));
    assert_eq!(b.state(), State::Open);
}

/// "Not enough calls yet" is explicit: one failure in a fresh window is a 100 % ratio, but not
/// a rate the breaker acts on.
#[test]
fn rates_are_marked_ready_only_from_the_minimum_calls() {
    let clock = ManualClock::new();
    let b = breaker(&clock); // minimum 4
    b.try_acquire().unwrap().success();
    b.try_acquire().unwrap().failure();
    let m = b.metrics();
    assert_eq!((m.failure_rate, m.rates_ready), (0.5, false));
    b.try_acquire().unwrap().success();
    b.try_acquire().unwrap().success();
    let m = b.metrics();
    assert_eq!((m.window_calls, m.rates_ready), (4, true));
}
