//! Classification configured once (`Config::classification`): resilience4j's
//! `ignoreExceptions` / `recordExceptions` / `recordResult` precedence and its
//! `transitionOnResult`, applied by every path that is not given a classifier of its own
//! (`call`, `call_async`, permits, the tower layer); the reqwest middleware's part is in
//! `tests/reqwest.rs`. Rules written in config files are in `tests/config_file.rs`.

use breakerbox::{
    CallError, CircuitBreaker, Classification, Config, EventKind, HalfOpenDecision, ManualClock,
    Outcome, Rule, State, TransitionReason, TripReason,
};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, PartialEq)]
enum ApiError {
    NotFound,
    Unavailable,
    Invalid,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for ApiError {}

/// An error that wraps another (as a client library's error wraps the I/O error under it).
#[derive(Debug)]
struct Wrapped(Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for Wrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request failed")
    }
}

impl std::error::Error for Wrapped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

fn breaker(classification: Classification) -> CircuitBreaker<ManualClock> {
    CircuitBreaker::builder()
        .config(Config {
            failure_rate_threshold: None,
            consecutive_failures: Some(3),
            classification,
            ..Config::default()
        })
        .open_wait(Duration::from_secs(10))
        .clock(ManualClock::new())
        .build()
        .unwrap()
}

fn events(b: &CircuitBreaker<ManualClock>) -> Arc<Mutex<Vec<EventKind>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    b.on_event(move |e| s.lock().unwrap().push(e.kind));
    seen
}

fn err(b: &CircuitBreaker<ManualClock>, e: ApiError) {
    let r = b.call(|| Err::<(), _>(e));
    assert!(matches!(
        r,
        Err(CallError::Failed(_)) | Err(CallError::Rejected(_))
    ));
}

// ----- ignore / record precedence ------------------------------------------------------

#[test]
fn without_rules_every_error_is_a_failure() {
    let b = breaker(Classification::default());
    for _ in 0..3 {
        err(&b, ApiError::NotFound);
    }
    assert_eq!(b.state(), State::Open);
}

#[test]
fn ignored_errors_record_nothing_and_others_still_count() {
    let b = breaker(Classification {
        ignore: vec![Rule::error(|e: &ApiError| *e == ApiError::NotFound)],
        ..Classification::default()
    });
    for _ in 0..10 {
        err(&b, ApiError::NotFound);
    }
    let m = b.metrics();
    assert_eq!((m.failures, m.ignored, b.state()), (0, 10, State::Closed));
    for _ in 0..3 {
        err(&b, ApiError::Unavailable);
    }
    assert_eq!(b.state(), State::Open);
}

#[test]
fn ignore_wins_over_record_for_the_same_error() {
    // resilience4j: an exception in both ignoreExceptions and recordExceptions is ignored.
    let b = breaker(Classification {
        ignore: vec![Rule::error(|e: &ApiError| *e == ApiError::Invalid)],
        record: vec![Rule::error(|_: &ApiError| true)],
        ..Classification::default()
    });
    for _ in 0..5 {
        err(&b, ApiError::Invalid);
    }
    assert_eq!((b.metrics().failures, b.state()), (0, State::Closed));
}

#[test]
fn with_record_rules_unlisted_errors_are_successes() {
    // resilience4j: "all other exceptions count as a success, unless explicitly ignored".
    let b = breaker(Classification {
        record: vec![Rule::error(|e: &ApiError| *e == ApiError::Unavailable)],
        ..Classification::default()
    });
    for _ in 0..2 {
        err(&b, ApiError::Unavailable);
    }
    // An unlisted error is a success: it breaks the run of consecutive failures.
    err(&b, ApiError::Invalid);
    for _ in 0..2 {
        err(&b, ApiError::Unavailable);
    }
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().successes, 1);
    err(&b, ApiError::Unavailable);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn a_value_rule_counts_ok_results_as_failures() {
    // resilience4j's recordResult.
    let b = breaker(Classification {
        record: vec![Rule::any_error(), Rule::value(|v: &u16| *v >= 500)],
        ..Classification::default()
    });
    for _ in 0..3 {
        assert_eq!(b.call(|| Ok::<u16, ()>(503)).unwrap(), 503);
    }
    assert_eq!(b.state(), State::Open);

    let b = breaker(Classification {
        record: vec![Rule::any_error(), Rule::value(|v: &u16| *v >= 500)],
        ..Classification::default()
    });
    for _ in 0..10 {
        b.call(|| Ok::<u16, ()>(200)).unwrap();
    }
    // A value of another type is not matched by the rule.
    for _ in 0..10 {
        b.call(|| Ok::<u32, ()>(503)).unwrap();
    }
    assert_eq!((b.metrics().failures, b.state()), (0, State::Closed));
}

#[test]
fn io_kinds_are_found_through_boxes_and_source_chains() {
    let c = Classification {
        ignore: vec![Rule::io(io::ErrorKind::NotFound)],
        ..Classification::default()
    };
    let not_found = || io::Error::from(io::ErrorKind::NotFound);
    assert_eq!(c.classify(&Err::<(), _>(not_found())), Outcome::Ignore);
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(not_found());
    assert_eq!(c.classify(&Err::<(), _>(boxed)), Outcome::Ignore);
    // Two levels down: a box holding an error whose source is the I/O error.
    let deep: Box<dyn std::error::Error + Send + Sync> = Box::new(Wrapped(Box::new(not_found())));
    assert_eq!(c.classify(&Err::<(), _>(deep)), Outcome::Ignore);
    // Another kind is a failure, and so is an error whose chain breakerbox cannot see (a
    // concrete type that is not one of the shapes it knows).
    let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
    assert_eq!(c.classify(&Err::<(), _>(refused)), Outcome::Failure);
    assert_eq!(
        c.classify(&Err::<(), _>(Wrapped(Box::new(not_found())))),
        Outcome::Failure
    );
    // `Rule::source` sees the concrete type itself and then its chain.
    let c = Classification {
        ignore: vec![Rule::source(|e: &io::Error| {
            e.kind() == io::ErrorKind::NotFound
        })],
        ..Classification::default()
    };
    let deep: Box<dyn std::error::Error> = Box::new(Wrapped(Box::new(not_found())));
    assert_eq!(c.classify(&Err::<(), _>(deep)), Outcome::Ignore);
    assert_eq!(c.classify(&Err::<(), _>(not_found())), Outcome::Ignore);
}

#[test]
fn a_looping_source_chain_is_followed_a_bounded_number_of_times() {
    /// An error that is its own source, forever.
    #[derive(Debug)]
    struct Loop;
    impl std::fmt::Display for Loop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("loop")
        }
    }
    impl std::error::Error for Loop {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            static LOOP: Loop = Loop;
            Some(&LOOP)
        }
    }
    let c = Classification {
        ignore: vec![Rule::io(io::ErrorKind::NotFound)],
        ..Classification::default()
    };
    let e: Box<dyn std::error::Error + Send + Sync> = Box::new(Loop);
    assert_eq!(c.classify(&Err::<(), _>(e)), Outcome::Failure);
}

// ----- every path uses it ---------------------------------------------------------------

#[test]
fn permits_and_call_async_use_the_configured_classification() {
    let b = breaker(Classification {
        ignore: vec![Rule::error(|e: &ApiError| *e == ApiError::NotFound)],
        ..Classification::default()
    });
    let p = b.try_acquire().unwrap();
    p.record_result(&Err::<(), _>(ApiError::NotFound));
    assert_eq!(b.metrics().ignored, 1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = b
            .call_async(async { Err::<(), _>(ApiError::NotFound) })
            .await;
        assert!(matches!(r, Err(CallError::Failed(ApiError::NotFound))));
        assert_eq!(b.metrics().ignored, 2);
        for _ in 0..3 {
            let _ = b
                .call_async(async { Err::<(), _>(ApiError::Unavailable) })
                .await;
        }
    });
    assert_eq!(b.state(), State::Open);
    // An explicit classifier replaces the configured one for that call.
    let b = breaker(Classification {
        ignore: vec![Rule::any_error()],
        ..Classification::default()
    });
    for _ in 0..3 {
        let _ = b.call_with(|_| Outcome::Failure, || Err::<(), _>(ApiError::NotFound));
    }
    assert_eq!(b.state(), State::Open);
}

#[test]
fn registry_breakers_take_the_classification_of_their_config() {
    let mut config = Config {
        failure_rate_threshold: None,
        consecutive_failures: Some(1),
        ..Config::default()
    };
    config
        .classification
        .ignore
        .push(Rule::error(|e: &ApiError| *e == ApiError::NotFound));
    let registry = breakerbox::Registry::new(config).unwrap();
    let b = registry.get("users");
    let _ = b.call(|| Err::<(), _>(ApiError::NotFound));
    assert_eq!(b.state(), State::Closed);
    let _ = b.call(|| Err::<(), _>(ApiError::Invalid));
    assert_eq!(b.state(), State::Open);
}

#[test]
fn a_panicking_rule_leaves_the_breaker_working_and_gives_the_trial_back() {
    let b = CircuitBreaker::builder()
        .consecutive_failures(1)
        .no_failure_rate()
        .ignore(Rule::error(|e: &ApiError| {
            if *e == ApiError::Invalid {
                panic!("a classifier bug")
            }
            false
        }))
        .open_wait(Duration::from_secs(10))
        .clock(ManualClock::new())
        .build()
        .unwrap();
    b.force_open();
    b.reset();
    b.transition_to_half_open();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        b.call(|| Err::<(), _>(ApiError::Invalid))
    }));
    assert!(r.is_err());
    // The trial's permit was dropped unreported: its slot is free again.
    assert_eq!(b.state(), State::HalfOpen);
    b.call(|| Ok::<_, ApiError>(())).unwrap();
    assert_eq!(b.state(), State::Closed);
}

// ----- a result that opens the breaker at once ------------------------------------------

#[test]
fn a_trip_result_opens_a_closed_breaker_at_once() {
    let b = breaker(Classification {
        trip: vec![Rule::error(|e: &ApiError| *e == ApiError::Unavailable)],
        ..Classification::default()
    });
    let seen = events(&b);
    err(&b, ApiError::Invalid);
    assert_eq!(b.state(), State::Closed);
    err(&b, ApiError::Unavailable);
    assert_eq!(b.state(), State::Open);
    let m = b.metrics();
    assert_eq!((m.failures, m.times_opened), (2, 1));
    // A copy: the listener takes the lock on every event (the rejection below is one).
    let seen = seen.lock().unwrap().clone();
    let recorded = seen
        .iter()
        .filter(|k| {
            matches!(
                k,
                EventKind::Recorded {
                    outcome: Outcome::Failure,
                    ..
                }
            )
        })
        .count();
    assert_eq!(recorded, 2, "a trip is reported as a failure: {seen:?}");
    assert!(seen.iter().any(|k| matches!(
        k,
        EventKind::Transition(t) if t.from == State::Closed
            && t.to == State::Open
            && t.reason == TransitionReason::Tripped(TripReason::Classified)
    )));
    // The open wait is the configured one.
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after(),
        Some(Duration::from_secs(10))
    );
}

#[test]
fn a_trip_result_reopens_half_open_even_when_trials_decide_by_rate() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder()
        .failure_rate_threshold(0.5)
        .minimum_calls(4)
        .half_open_decision(HalfOpenDecision::Rate)
        .half_open_permits(4)
        .open_wait(Duration::from_secs(10))
        .trip_on(Rule::error(|e: &ApiError| *e == ApiError::Unavailable))
        .clock(clock.clone())
        .build()
        .unwrap();
    b.transition_to_open_for(Duration::from_secs(1)).unwrap();
    clock.advance(Duration::from_secs(1));
    // One success of the four trials, then a trip: it does not wait for the other two.
    b.call(|| Ok::<_, ApiError>(())).unwrap();
    err(&b, ApiError::Unavailable);
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.metrics().times_opened, 1);
}

#[test]
fn a_late_trip_result_never_opens_a_newer_generation() {
    let b = breaker(Classification {
        trip: vec![Rule::any_error()],
        ..Classification::default()
    });
    let held = b.try_acquire().unwrap();
    b.reset();
    held.record_result(&Err::<(), _>(ApiError::Unavailable));
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().late, 1);

    // Nor does a trial of an earlier HALF-OPEN period.
    b.transition_to_half_open();
    let trial = b.try_acquire().unwrap();
    b.transition_to_half_open(); // no-op: same period
    b.force_open();
    b.transition_to_half_open();
    trial.record(Outcome::Trip);
    assert_eq!(b.state(), State::HalfOpen);
}

#[test]
fn a_trip_result_changes_nothing_while_metrics_only_or_disabled() {
    for set in [
        CircuitBreaker::<ManualClock>::metrics_only as fn(&CircuitBreaker<ManualClock>),
        CircuitBreaker::<ManualClock>::disable,
    ] {
        let b = breaker(Classification {
            trip: vec![Rule::any_error()],
            ..Classification::default()
        });
        set(&b);
        let before = b.state();
        for _ in 0..5 {
            err(&b, ApiError::Unavailable);
        }
        assert_eq!(b.state(), before);
        assert_eq!(b.metrics().failures, 5);
    }
}

#[test]
fn a_trip_from_a_classifier_of_your_own() {
    let b = breaker(Classification::default());
    let _ = b.call_with(
        |r: &Result<(), u16>| match r {
            Err(503) => Outcome::Trip,
            _ => Outcome::Failure,
        },
        || Err(503),
    );
    assert_eq!(b.state(), State::Open);
}

// ----- validation -----------------------------------------------------------------------

#[test]
fn status_rules_outside_http_statuses_are_refused_with_the_list_named() {
    for (c, field) in [
        (
            Classification {
                ignore: vec![Rule::status(42)],
                ..Classification::default()
            },
            "classification.ignore",
        ),
        (
            Classification {
                record: vec![Rule::status_range(599, 500)],
                ..Classification::default()
            },
            "classification.record",
        ),
        (
            Classification {
                trip: vec![Rule::status_range(500, 1000)],
                ..Classification::default()
            },
            "classification.trip",
        ),
    ] {
        let e = CircuitBreaker::builder()
            .config(Config {
                classification: c,
                ..Config::default()
            })
            .build()
            .unwrap_err();
        assert_eq!(e.field(), field, "{e}");
        assert!(e.to_string().contains("100 ..= 999"), "{e}");
    }
}
