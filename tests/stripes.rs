//! Per-thread stripes under real threads: successes and rejections go to lines that only
//! their thread writes, and are summed or drained on read. Whatever the interleaving, once the
//! threads are done every admitted call is either a call or late, exactly once; and slots
//! handed from exited threads to new ones carry their counts on.

use breakerbox::{CircuitBreaker, State};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

fn never_trips(time_window: bool) -> CircuitBreaker {
    let b = CircuitBreaker::builder()
        .failure_rate_threshold(1.0)
        .minimum_calls(10);
    let b = if time_window {
        b.time_window(Duration::from_secs(60), 60)
    } else {
        b.count_window(100)
    };
    b.build().unwrap()
}

/// Workers record successes (and a failure now and then) while another thread starts a new
/// CLOSED generation over and over (`reset`). A success racing a transition is counted in one
/// generation or reported late, never both and never lost.
fn successes_racing_resets(time_window: bool) {
    let b = Arc::new(never_trips(time_window));
    let workers = 3;
    let per = 30_000u64;
    // The workers go on until the resetter has made this many resets while they ran, so the
    // race happens however the machine schedules the threads.
    let min_resets = 50;
    let barrier = Arc::new(Barrier::new(workers + 2));
    let done = Arc::new(AtomicBool::new(false));
    let resets = Arc::new(AtomicU64::new(0));
    let hs: Vec<_> = (0..workers)
        .map(|w| {
            let (b, barrier, resets) = (b.clone(), barrier.clone(), resets.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let (mut admitted, mut failures) = (0u64, 0u64);
                while admitted < per || resets.load(Ordering::Relaxed) < min_resets {
                    let p = b.try_acquire().expect("always closed");
                    if (admitted + w as u64).is_multiple_of(97) {
                        p.failure();
                        failures += 1;
                    } else {
                        p.success();
                    }
                    admitted += 1;
                }
                (admitted, failures)
            })
        })
        .collect();
    let resetter = {
        let (b, done, barrier, resets) = (b.clone(), done.clone(), barrier.clone(), resets.clone());
        std::thread::spawn(move || {
            barrier.wait();
            while !done.load(Ordering::Relaxed) {
                b.reset();
                resets.fetch_add(1, Ordering::Relaxed);
                std::thread::yield_now();
            }
        })
    };
    barrier.wait();
    let (admitted, failures) = hs
        .into_iter()
        .map(|h| h.join().unwrap())
        .fold((0, 0), |(a, f), (a2, f2)| (a + a2, f + f2));
    done.store(true, Ordering::Relaxed);
    resetter.join().unwrap();
    let m = b.metrics();
    assert_eq!(m.state, State::Closed);
    assert_eq!(
        m.calls + m.late,
        admitted,
        "calls {} + late {} (resets {})",
        m.calls,
        m.late,
        resets.load(Ordering::Relaxed)
    );
    assert!(m.failures <= failures);
    assert!(m.window_calls <= m.calls);
    // Once quiet, the window is exact again: 100 successes in a fresh generation.
    b.reset();
    for _ in 0..100 {
        b.try_acquire().unwrap().success();
    }
    let m = b.metrics();
    assert_eq!((m.window_calls, m.window_failures), (100, 0));
}

#[test]
fn count_window_successes_racing_resets_are_counted_once() {
    successes_racing_resets(false);
}

#[test]
fn time_window_successes_racing_resets_are_counted_once() {
    successes_racing_resets(true);
}

/// 64 rounds of 4 short-lived threads: each thread takes a slot, counts into its stripe and
/// exits, and the next round's threads take the freed slots over. Totals stay exact.
#[test]
fn slots_of_exited_threads_carry_their_counts_on() {
    let closed = Arc::new(never_trips(false));
    let open = Arc::new(never_trips(false));
    open.force_open();
    let rounds = 64;
    let threads = 4;
    let per = 2_000u64;
    for _ in 0..rounds {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let (closed, open) = (closed.clone(), open.clone());
                std::thread::spawn(move || {
                    for _ in 0..per {
                        closed.try_acquire().unwrap().success();
                        assert!(open.try_acquire().is_err());
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    }
    let total = (rounds * threads) as u64 * per;
    let m = closed.metrics();
    assert_eq!((m.calls, m.late, m.window_calls), (total, 0, 100));
    assert_eq!(open.metrics().rejected, total);
}
