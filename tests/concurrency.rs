//! Real threads racing on one breaker (bounded in count; no sleeps).

use breakerbox::{CircuitBreaker, ManualClock, State};
use std::collections::HashMap;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

/// 16 callers racing for 1 permit, many rounds: exactly 1 is admitted each time.
#[test]
fn sixteen_callers_one_permit() {
    let clock = ManualClock::new();
    let b = Arc::new(
        CircuitBreaker::builder()
            .consecutive_failures(1)
            .open_wait(Duration::from_secs(1))
            .half_open_permits(1)
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    for round in 0..200 {
        b.try_acquire().unwrap().failure();
        assert_eq!(b.state(), State::Open);
        clock.advance(Duration::from_secs(1));
        let barrier = Arc::new(Barrier::new(16));
        let admitted: Vec<_> = (0..16)
            .map(|_| {
                let (b, barrier) = (b.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    b.try_acquire_owned().ok()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect();
        assert_eq!(admitted.len(), 1, "round {round}");
        for p in admitted {
            p.success();
        }
        assert_eq!(b.state(), State::Closed);
    }
}

/// Many threads hammer a half-open breaker with a cap of 3 and report random outcomes; the
/// trial calls in flight *of one half-open period* (one generation), counted by the callers
/// themselves, never exceed 3. (That is what the cap promises: when a trial fails the period
/// ends, and trials of the ended period still in flight report late; they are not counted
/// against the next period's cap. See docs/limits.md.)
#[test]
fn half_open_cap_is_never_exceeded() {
    const CAP: usize = 3;
    let clock = ManualClock::new();
    let b = Arc::new(
        CircuitBreaker::builder()
            .consecutive_failures(1)
            .open_wait(Duration::ZERO)
            .half_open_permits(CAP as u32)
            .half_open_successes(60_000)
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    b.try_acquire().unwrap().failure();
    // In flight per generation, and the most ever seen in one.
    let in_flight = Arc::new(Mutex::new((HashMap::<u32, usize>::new(), 0usize)));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (b, in_flight) = (b.clone(), in_flight.clone());
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(t);
                for _ in 0..20_000 {
                    if let Ok(p) = b.try_acquire() {
                        let gen = p.generation();
                        {
                            let mut g = in_flight.lock().unwrap();
                            let n = g.0.entry(gen).or_default();
                            *n += 1;
                            let n = *n;
                            g.1 = g.1.max(n);
                        }
                        // The call "runs" while counted; it is uncounted just before its outcome
                        // gives the slot back (counting after would race the next taker).
                        for _ in 0..rng.u8(0..50) {
                            std::hint::spin_loop();
                        }
                        {
                            let mut g = in_flight.lock().unwrap();
                            *g.0.get_mut(&gen).unwrap() -= 1;
                        }
                        match rng.u8(0..100) {
                            0 => p.failure(), // re-opens; with a zero wait the next call half-opens
                            1..=40 => p.success(),
                            41..=70 => p.ignore(),
                            _ => drop(p),
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let max_seen = in_flight.lock().unwrap().1;
    assert!(
        max_seen <= CAP,
        "max in flight in one generation: {max_seen}"
    );
    let m = b.metrics();
    assert_eq!(m.half_open_in_flight, 0, "no permit leaked");
    assert!(m.state == State::HalfOpen || m.state == State::Open);
}

/// Closed-state recording from many threads: totals add up exactly.
#[test]
fn closed_counts_add_up_under_contention() {
    let b = Arc::new(
        CircuitBreaker::builder()
            .failure_rate_threshold(1.0)
            .count_window(64)
            .minimum_calls(64)
            .build()
            .unwrap(),
    );
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let b = b.clone();
            std::thread::spawn(move || {
                for i in 0..50_000u32 {
                    let p = b.try_acquire().unwrap();
                    if (i + t) % 3 == 0 {
                        p.failure()
                    } else {
                        p.success()
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let m = b.metrics();
    assert_eq!(m.state, State::Closed);
    assert_eq!(m.calls, 200_000);
    let expected_failures: u64 = (0..4u32)
        .map(|t| (0..50_000u32).filter(|i| (i + t) % 3 == 0).count() as u64)
        .sum();
    assert_eq!(m.failures, expected_failures);
    assert_eq!(m.window_calls, 64);
    assert!(m.window_failures <= 64);
}

/// Rejections counted from many threads at once (the counter may spread over per-thread cells
/// under contention): the lifetime and per-state totals are exact once the threads are done,
/// and snapshots taken meanwhile never go backwards.
#[test]
fn rejection_totals_are_exact_under_contention() {
    let clock = ManualClock::new();
    let b = Arc::new(
        CircuitBreaker::builder()
            .consecutive_failures(1)
            .open_wait(Duration::from_secs(60))
            .clock(clock)
            .build()
            .unwrap(),
    );
    b.try_acquire().unwrap().failure();
    let threads = 8;
    let per = 50_000u64;
    let barrier = Arc::new(Barrier::new(threads + 1));
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let (b, barrier) = (b.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for _ in 0..per {
                    assert!(b.try_acquire().is_err());
                }
            })
        })
        .collect();
    barrier.wait();
    let mut last = 0;
    while !hs.iter().all(|h| h.is_finished()) {
        let now = b.metrics().rejected;
        assert!(now >= last, "rejected went from {last} to {now}");
        last = now;
    }
    for h in hs {
        h.join().unwrap();
    }
    let m = b.metrics();
    assert_eq!(m.rejected, threads as u64 * per);
    assert_eq!(m.rejected_in_state, threads as u64 * per);
}
