//! Regression tests for known defects (other than the long-horizon ones, which live in
//! `tests/horizons.rs`). Each failed on the code before the fix.

use breakerbox::{
    CallError, CircuitBreaker, Config, ConfigError, EventKind, ManualClock, OpenWait, State,
    TransitionReason,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Silences the default panic message of the listener panics these tests provoke on purpose
/// (the test harness would print them); other panics still print.
fn quiet_listener_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .unwrap_or_default();
            if !msg.starts_with("listener panics on purpose") {
                default(info);
            }
        }));
    });
}

// ----- defect 2: a panicking listener ----------------------------------------------------

#[test]
fn a_listener_panicking_on_half_open_does_not_wedge_the_breaker() {
    quiet_listener_panics();
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder()
        .consecutive_failures(1)
        .open_wait(secs(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    b.on_event(|e| {
        if let EventKind::Transition(t) = e.kind {
            if t.to == State::HalfOpen {
                panic!("listener panics on purpose");
            }
        }
    });
    let _ = b.call(|| Err::<(), _>(()));
    assert_eq!(b.state(), State::Open);
    clock.advance(secs(1));
    // The caller that half-opens gets its trial permit: the listener's panic is contained.
    let r = b.call(|| Ok::<_, ()>("trial"));
    assert_eq!(r.unwrap(), "trial");
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().listener_panics, 1);
}

#[test]
fn listeners_panicking_on_every_event_change_nothing() {
    quiet_listener_panics();
    let run = |with_listener: bool| {
        let clock = ManualClock::new();
        let b = CircuitBreaker::builder()
            .failure_rate_threshold(0.5)
            .minimum_calls(4)
            .count_window(8)
            .open_wait(secs(1))
            .half_open_permits(2)
            .half_open_successes(2)
            .clock(clock.clone())
            .build()
            .unwrap();
        let seen = Arc::new(AtomicU64::new(0));
        if with_listener {
            let seen = seen.clone();
            b.on_event(move |_| {
                seen.fetch_add(1, Ordering::Relaxed);
                panic!("listener panics on purpose");
            });
        }
        let mut trace = Vec::new();
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..2_000 {
            if rng.u8(0..10) == 0 {
                clock.advance(Duration::from_millis(300));
            }
            let fail = rng.u8(0..3) == 0;
            let r = b.call(|| if fail { Err(()) } else { Ok(()) });
            trace.push((r.is_ok(), b.state(), b.generation()));
        }
        (
            trace,
            b.metrics().listener_panics,
            seen.load(Ordering::Relaxed),
        )
    };
    let (quiet, no_panics, _) = run(false);
    let (noisy, panics, calls) = run(true);
    assert_eq!(
        quiet, noisy,
        "a panicking listener changed what the breaker did"
    );
    assert_eq!(no_panics, 0);
    assert!(panics > 0 && panics == calls);
}

// ----- defect 3: leaked trial permits ----------------------------------------------------

#[test]
fn leaked_trial_permits_are_reclaimed_after_max_half_open_wait() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder()
        .consecutive_failures(1)
        .open_wait_backoff(OpenWait::exponential(secs(1), secs(60)))
        .half_open_permits(2)
        .max_half_open_wait(secs(30))
        .clock(clock.clone())
        .build()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    b.on_event(move |e| {
        if let EventKind::Transition(t) = e.kind {
            sink.lock().unwrap().push((t.to, t.reason, t.open_wait));
        }
    });
    let _ = b.call(|| Err::<(), _>(()));
    clock.advance(secs(1));
    // Both trial permits leak (a `mem::forget`, a future leaked mid-flight).
    std::mem::forget(b.try_acquire().unwrap());
    std::mem::forget(b.try_acquire().unwrap());
    assert_eq!(b.state(), State::HalfOpen);
    clock.advance(secs(29));
    assert!(b.try_acquire().is_err(), "still within max_half_open_wait");
    assert_eq!(b.state(), State::HalfOpen);
    clock.advance(secs(1));
    assert!(
        !b.would_admit(),
        "the next caller re-opens: it would not be admitted"
    );
    // The next caller re-opens at the next backoff step (2 s) and is itself rejected.
    let rejected = b.try_acquire().unwrap_err();
    assert_eq!(rejected.state(), State::Open);
    assert_eq!(rejected.retry_after(), Some(secs(2)));
    assert_eq!(b.state(), State::Open);
    clock.advance(secs(2));
    b.call(|| Ok::<_, ()>(())).unwrap();
    assert_eq!(b.state(), State::Closed);
    let log = log.lock().unwrap();
    assert!(log.contains(&(
        State::Open,
        TransitionReason::HalfOpenTimedOut,
        Some(secs(2))
    )));
    assert_eq!(log.last().unwrap().0, State::Closed);
}

#[test]
fn max_half_open_wait_has_a_default_and_is_validated() {
    assert_eq!(Config::default().max_half_open_wait, Some(secs(60)));
    for bad in [Duration::ZERO, secs(25 * 3600)] {
        let e = CircuitBreaker::builder()
            .max_half_open_wait(bad)
            .build()
            .unwrap_err();
        assert_eq!(e.field(), "max_half_open_wait", "{bad:?}");
        assert!(matches!(e, ConfigError::OutOfRange { .. }));
    }
}

#[test]
fn a_hung_trial_under_the_cap_does_not_re_open() {
    // Not full: callers keep getting trials, so nothing is wedged and nothing times out.
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder()
        .consecutive_failures(1)
        .open_wait(secs(1))
        .half_open_permits(3)
        .half_open_successes(3)
        .max_half_open_wait(secs(5))
        .clock(clock.clone())
        .build()
        .unwrap();
    let _ = b.call(|| Err::<(), _>(()));
    clock.advance(secs(1));
    let hung = b.try_acquire().unwrap();
    clock.advance(secs(100));
    b.try_acquire().unwrap().success();
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), State::HalfOpen);
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), State::Closed);
    drop(hung);
}

// ----- defect 5: the backoff step under racing transitions -------------------------------

/// Threads race failing calls into a CLOSED breaker, over and over: every trip must wait
/// exactly the first step, and every failed trial round the next one.
#[test]
fn racing_trips_take_the_exact_backoff_step() {
    const THREADS: usize = 4;
    let clock = ManualClock::new();
    let b = Arc::new(
        CircuitBreaker::builder()
            .consecutive_failures(1)
            .open_wait_backoff(OpenWait::exponential(secs(1), secs(3600)))
            .half_open_permits(THREADS as u32)
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    let waits = Arc::new(Mutex::new(Vec::new()));
    let sink = waits.clone();
    b.on_event(move |e| {
        if let EventKind::Transition(t) = e.kind {
            if t.to == State::Open {
                sink.lock().unwrap().push((t.reason, t.open_wait.unwrap()));
            }
        }
    });
    for round in 0..300 {
        b.reset();
        // Round r: trip, then r % 4 failed trial rounds.
        for trial_round in 0..=(round % 4) {
            let barrier = Arc::new(Barrier::new(THREADS));
            let hs: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (b, barrier) = (b.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        let _ = b.call(|| Err::<(), _>(()));
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            assert_eq!(b.state(), State::Open, "round {round}.{trial_round}");
            let expected = secs(1 << trial_round);
            let (reason, wait) = *waits.lock().unwrap().last().unwrap();
            assert_eq!(wait, expected, "round {round}.{trial_round}: {reason:?}");
            assert_eq!(
                b.try_acquire().unwrap_err().retry_after(),
                Some(expected),
                "round {round}.{trial_round}"
            );
            clock.advance(expected);
        }
    }
}

// ----- defect 7: monotone counters --------------------------------------------------------

#[test]
fn exported_counters_never_go_backwards() {
    let clock = ManualClock::new();
    let b = Arc::new(
        CircuitBreaker::builder()
            .failure_rate_threshold(0.5)
            .minimum_calls(12)
            .count_window(16)
            .open_wait(Duration::ZERO)
            .half_open_permits(4)
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|t| {
            let (b, stop) = (b.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(t);
                let mut held = Vec::new();
                for i in 0..60_000u32 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(p) = b.try_acquire() {
                        // Some permits report late, after other threads moved on.
                        if i % 7 == 0 {
                            held.push(p);
                        } else if rng.bool() {
                            p.success();
                        } else {
                            p.failure();
                        }
                    }
                    if held.len() > 8 {
                        held.swap_remove(0).failure();
                    }
                    if i % 5_000 == 0 {
                        b.reset();
                    }
                }
            })
        })
        .collect();
    let mut last = b.metrics();
    for _ in 0..20_000 {
        let m = b.metrics();
        let pairs = [
            ("calls", last.calls, m.calls),
            ("failures", last.failures, m.failures),
            ("slow_calls", last.slow_calls, m.slow_calls),
            ("ignored", last.ignored, m.ignored),
            ("rejected", last.rejected, m.rejected),
            ("late", last.late, m.late),
            ("times_opened", last.times_opened, m.times_opened),
        ];
        for (name, before, now) in pairs {
            assert!(now >= before, "{name} went from {before} to {now}");
        }
        last = m;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
}

// ----- defect 8: the time window evaluates on successes ----------------------------------

fn time_breaker(clock: &ManualClock, minimum: u32) -> CircuitBreaker<ManualClock> {
    CircuitBreaker::builder()
        .failure_rate_threshold(0.5)
        .minimum_calls(minimum)
        .time_window(secs(10), 10)
        .open_wait(secs(5))
        .clock(clock.clone())
        .build()
        .unwrap()
}

#[test]
fn a_success_that_reaches_the_minimum_trips_a_time_window() {
    let clock = ManualClock::new();
    let b = time_breaker(&clock, 10);
    for _ in 0..9 {
        let _ = b.call(|| Err::<(), _>(()));
    }
    assert_eq!(b.state(), State::Closed, "9 calls < minimum 10");
    // The 10th call is a success: 9 failures in 10 calls is 90 % >= 50 %.
    b.call(|| Ok::<_, ()>(())).unwrap();
    assert_eq!(b.state(), State::Open);
}

#[test]
fn successes_ageing_out_trip_a_time_window_on_the_next_call() {
    let clock = ManualClock::new();
    let b = time_breaker(&clock, 5);
    // Second 0: 20 successes. Second 5: 5 failures (5 / 25 = 20 %).
    for _ in 0..20 {
        b.call(|| Ok::<_, ()>(())).unwrap();
    }
    clock.advance(secs(5));
    for _ in 0..5 {
        let _ = b.call(|| Err::<(), _>(()));
    }
    assert_eq!(b.state(), State::Closed);
    // Second 10: the successes of second 0 have left the window; the next call, a success,
    // sees 5 failures in 6 calls.
    clock.advance(secs(5));
    b.call(|| Ok::<_, ()>(())).unwrap();
    assert_eq!(b.state(), State::Open);
}

#[test]
fn successes_below_the_threshold_do_not_trip_a_time_window() {
    let clock = ManualClock::new();
    let b = time_breaker(&clock, 10);
    for i in 0..1_000u64 {
        if i % 3 == 0 {
            let _ = b.call(|| Err::<(), _>(()));
        } else {
            b.call(|| Ok::<_, ()>(())).unwrap();
        }
        clock.advance(Duration::from_millis(37));
    }
    assert_eq!(b.state(), State::Closed, "33 % stays under 50 %");
    assert!(matches!(
        b.call(|| Err::<(), _>(())),
        Err(CallError::Failed(()))
    ));
}
