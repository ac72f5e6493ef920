//! Bad input and extreme settings, beyond what tests/config_file.rs, tests/transitions.rs and
//! the fuzz targets already cover:
//! - a config file with an invalid value for *every* field gives an error naming that field
//!   (config_file.rs checks three fields; the `config` fuzz target checks the builder, not the
//!   file path);
//! - extreme settings under real threads and the real clock: a zero open wait with the largest
//!   permit cap hammered by threads leaks no permit; the largest success count, count window and
//!   the narrowest time window behave as documented;
//! - a clock that stands still: the documented consequences (an open breaker stays open, no call
//!   is slow, the time window still trips) and nothing worse; a clock that jumps to its end while
//!   calls are in flight.

use breakerbox::{CircuitBreaker, ManualClock, Outcome, State, MAX_HALF_OPEN};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

#[cfg(feature = "serde")]
mod config_file {
    use breakerbox::{CircuitBreaker, Config};

    /// One invalid value per field (and per cross-field rule), with the field the error must
    /// name.
    const CASES: &[(&str, &str)] = &[
        ("failure_rate_threshold = 0.0", "failure_rate_threshold"),
        ("failure_rate_threshold = -0.5", "failure_rate_threshold"),
        ("failure_rate_threshold = nan", "failure_rate_threshold"),
        ("slow_call_rate_threshold = 1.01", "slow_call_rate_threshold"),
        (
            "slow_call_rate_threshold = 0.5\nslow_call_duration = \"0s\"",
            "slow_call_duration",
        ),
        ("consecutive_failures = 0", "consecutive_failures"),
        ("minimum_calls = 0", "minimum_calls"),
        (
            "minimum_calls = 50\nwindow = { kind = \"count\", size = 20 }",
            "minimum_calls",
        ),
        (
            "window = { kind = \"count\", size = 8388608 }",
            "window.size",
        ),
        (
            "window = { kind = \"time\", duration = \"10s\", buckets = 0 }",
            "window.buckets",
        ),
        (
            "window = { kind = \"time\", duration = \"10s\", buckets = 10001 }",
            "window.buckets",
        ),
        (
            "window = { kind = \"time\", duration = \"5ms\", buckets = 10 }",
            "window.buckets",
        ),
        (
            "window = { kind = \"time\", duration = \"25h\", buckets = 10 }",
            "window.duration",
        ),
        (
            "open_wait = { kind = \"fixed\", wait = \"25h\" }",
            "open_wait.wait",
        ),
        (
            "open_wait = { kind = \"exponential\", initial = \"25h\", multiplier = 2.0, max = \"26h\" }",
            "open_wait.initial",
        ),
        (
            "open_wait = { kind = \"exponential\", initial = \"1s\", multiplier = 0.5, max = \"1m\" }",
            "open_wait.multiplier",
        ),
        (
            "open_wait = { kind = \"exponential\", initial = \"1s\", multiplier = inf, max = \"1m\" }",
            "open_wait.multiplier",
        ),
        (
            "open_wait = { kind = \"exponential\", initial = \"1m\", multiplier = 2.0, max = \"1s\" }",
            "open_wait.max",
        ),
        ("jitter = 1.0", "jitter"),
        ("jitter = -0.1", "jitter"),
        ("half_open_permits = 1048576", "half_open_permits"),
        ("half_open_successes = 0", "half_open_successes"),
        ("call_timeout = \"0s\"", "call_timeout"),
    ];

    #[test]
    fn every_invalid_field_in_a_file_is_named() {
        for (text, field) in CASES {
            let config: Config = toml::from_str(text)
                .unwrap_or_else(|e| panic!("{text:?} should parse (and fail validation): {e}"));
            let err = CircuitBreaker::builder()
                .config(config)
                .build()
                .expect_err(text);
            assert_eq!(err.field(), *field, "{text:?}: {err}");
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("`{field}`")),
                "{text:?}: the message names the field: {msg}"
            );
        }
    }

    /// Values of the wrong type or sign never reach validation: the parser refuses them and
    /// names the key.
    #[test]
    fn wrong_types_and_signs_are_parse_errors_naming_the_key() {
        for (text, key) in [
            ("minimum_calls = -1", "minimum_calls"),
            ("half_open_permits = 1.5", "half_open_permits"),
            ("consecutive_failures = \"five\"", "consecutive_failures"),
            ("slow_call_duration = \"-1s\"", "slow_call_duration"),
            ("call_timeout = 30", "call_timeout"),
            ("window = { kind = \"sliding\", size = 10 }", "window"),
            ("open_wait = { kind = \"fixed\" }", "open_wait"),
        ] {
            let err = toml::from_str::<Config>(text).expect_err(text).to_string();
            assert!(err.contains(key), "{text:?}: {err}");
        }
    }
}

/// Zero open wait, one-call window, threshold 1.0 and the largest permit cap, hammered by
/// threads with random outcomes and dropped permits on the real clock: it flaps as fast as it
/// can, and at the end no trial permit is left in flight and the breaker admits calls.
#[test]
fn zero_wait_and_the_largest_permit_cap_under_threads_leak_nothing() {
    let b = Arc::new(
        CircuitBreaker::builder()
            .failure_rate_threshold(1.0)
            .count_window(1)
            .minimum_calls(1)
            .open_wait(Duration::ZERO)
            .half_open_permits(MAX_HALF_OPEN)
            .half_open_successes(MAX_HALF_OPEN)
            .build()
            .unwrap(),
    );
    const THREADS: usize = 4;
    const CALLS: usize = 50_000;
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (b, barrier) = (b.clone(), barrier.clone());
            std::thread::spawn(move || {
                let rng = fastrand_like(t as u64 + 1);
                barrier.wait();
                let mut held = Vec::new();
                let (mut admitted, mut rejected) = (0u64, 0u64);
                for i in 0..CALLS {
                    match b.try_acquire() {
                        Ok(p) => {
                            admitted += 1;
                            match rng(i) % 4 {
                                0 => p.failure(),
                                1 => p.success(),
                                2 => drop(p),
                                _ => held.push(p),
                            }
                            if held.len() > 64 {
                                for p in held.drain(..) {
                                    p.record(Outcome::Success);
                                }
                            }
                        }
                        Err(_) => rejected += 1,
                    }
                }
                drop(held);
                (admitted, rejected)
            })
        })
        .collect();
    let (mut admitted, mut rejected) = (0, 0);
    for h in handles {
        let (a, r) = h.join().expect("no panic");
        admitted += a;
        rejected += r;
    }
    let m = b.metrics();
    assert_eq!(admitted + rejected, (THREADS * CALLS) as u64);
    assert_eq!(m.half_open_in_flight, 0, "{m:?}");
    assert!(m.times_opened > 0, "it tripped: {m:?}");
    assert!(m.half_open_in_flight <= MAX_HALF_OPEN);
    assert!(b.try_acquire().is_ok(), "the breaker admits calls: {m:?}");
}

/// A tiny deterministic generator (no dependency): a different stream per thread.
fn fastrand_like(seed: u64) -> impl Fn(usize) -> u64 {
    move |i| {
        let mut x = seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(i as u64);
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^ (x >> 33)
    }
}

/// The largest success count: HALF-OPEN until exactly that many trial successes.
#[test]
fn the_largest_success_count_closes_after_exactly_that_many_trials() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder()
        .consecutive_failures(1)
        .open_wait(Duration::ZERO)
        .half_open_successes(MAX_HALF_OPEN)
        .clock(clock)
        .build()
        .unwrap();
    let _ = b.call(|| Err::<(), _>(()));
    for _ in 0..MAX_HALF_OPEN - 1 {
        b.try_acquire().unwrap().success();
    }
    assert_eq!(b.state(), State::HalfOpen);
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), State::Closed);
}

/// The largest count window: its ring costs 4 bytes a slot, and it trips on the rate once the
/// minimum number of calls is in.
#[test]
fn the_largest_count_window() {
    const SIZE: u32 = 8_388_607;
    let b = CircuitBreaker::builder()
        .count_window(SIZE)
        .minimum_calls(10)
        .failure_rate_threshold(0.5)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    assert!(b.heap_bytes() >= SIZE as usize * 4 && b.heap_bytes() < SIZE as usize * 4 + 4096);
    for _ in 0..5 {
        b.try_acquire().unwrap().success();
    }
    for _ in 0..4 {
        b.try_acquire().unwrap().failure();
    }
    assert_eq!(b.state(), State::Closed, "9 calls: below the minimum");
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open, "10 calls, 5 failures: 0.5");
}

/// The narrowest time window (one bucket of 1 ms) on the real clock: failures older than the
/// window are forgotten, so failures spread wider than it never trip.
#[test]
fn the_narrowest_time_window_on_the_real_clock() {
    let b = CircuitBreaker::builder()
        .time_window(Duration::from_millis(1), 1)
        .minimum_calls(2)
        .failure_rate_threshold(1.0)
        .build()
        .unwrap();
    for _ in 0..20 {
        b.try_acquire().unwrap().failure();
        // Far more than the window (and the coarse clock's 1 ms granularity).
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(b.state(), State::Closed, "{:?}", b.metrics());
    // Two failures within the same millisecond trip it.
    let t0 = Instant::now();
    loop {
        let (p1, p2) = (b.try_acquire(), b.try_acquire());
        if let (Ok(p1), Ok(p2)) = (p1, p2) {
            p1.failure();
            p2.failure();
        }
        if b.state() == State::Open {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", b.metrics());
    }
}

/// A clock that never moves: consecutive failures and rates still trip (they need no time);
/// no call is ever slow; an open breaker stays open (its wait never passes) and keeps saying
/// when to retry; the manual controls still work.
#[test]
fn a_clock_that_stands_still() {
    let still = ManualClock::new();
    let b = CircuitBreaker::builder()
        .failure_rate_threshold(0.5)
        .slow_calls(Duration::from_nanos(1), 0.5)
        .time_window(Duration::from_secs(10), 10)
        .minimum_calls(4)
        .open_wait(Duration::from_millis(1))
        .clock(still)
        .build()
        .unwrap();
    for _ in 0..4 {
        b.try_acquire().unwrap().success();
    }
    assert_eq!(
        b.metrics().slow_calls,
        0,
        "no time passes, so no call is slow"
    );
    for _ in 0..4 {
        b.try_acquire().unwrap().failure();
    }
    assert_eq!(b.state(), State::Open);
    for _ in 0..1_000 {
        let r = b.try_acquire().unwrap_err();
        assert_eq!(r.retry_after(), Some(Duration::from_millis(1)));
    }
    assert_eq!(b.state(), State::Open);
    b.reset();
    assert!(b.try_acquire().is_ok());
}

/// A clock that jumps to its very end (it saturates there and stands still) while a closed
/// call and a trial are in flight: no panic, the outcomes are recorded, and the breaker keeps
/// working at the end of time.
#[test]
fn a_clock_that_jumps_to_its_end_with_calls_in_flight() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder()
        .consecutive_failures(1)
        .slow_calls(Duration::from_millis(10), 1.0)
        .time_window(Duration::from_secs(1), 10)
        .minimum_calls(1)
        .open_wait(Duration::from_secs(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    let closed_call = b.try_acquire().unwrap();
    clock.advance(Duration::MAX);
    closed_call.success(); // slow: it took "forever"
    assert_eq!(b.state(), State::Open, "a slow call at rate 1.0 trips");
    // At the end of time the clock stands still: the wait never passes.
    assert!(b.try_acquire().is_err());
    b.reset();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..10_000 {
                if let Ok(p) = b.try_acquire() {
                    p.success();
                }
            }
            done.store(true, Ordering::SeqCst);
        });
        for _ in 0..1_000 {
            clock.advance(Duration::from_secs(1));
        }
    });
    assert!(done.load(Ordering::SeqCst));
    assert_eq!(b.state(), State::Closed);
}
