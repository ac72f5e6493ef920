//! The fleet-wide trial cap under load, for `tests/fleet.rs` and `tests/fleet_cluster.rs`
//! (`#[path]`-included, so it is written once): every instance's callers hammer their breaker
//! while the fleet is OPEN past its wait; a trial call holds its permit 30 ms and then fails
//! (re-opening that instance). Counts the trial calls and the most in flight at once.
#![allow(dead_code)]

use breakerbox::{CircuitBreaker, ManualClock, State};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs four rounds of trips, `clock.advance(wait)` and 300 ms of hammering on `breakers`
/// (one per instance, each already synced with the fleet); returns (trial calls, the most in
/// flight at once across all of them).
pub async fn hammer_half_open(
    breakers: &[Arc<CircuitBreaker<ManualClock>>],
    clock: &ManualClock,
    wait: Duration,
) -> (usize, usize) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let trials = Arc::new(AtomicUsize::new(0));
    for _round in 0..4 {
        for b in breakers {
            if b.state() != State::Open {
                let _ = b.call(|| Err::<(), _>("down"));
                assert_eq!(b.state(), State::Open);
            }
        }
        clock.advance(wait);
        let stop = Instant::now() + Duration::from_millis(300);
        let callers: Vec<_> = breakers
            .iter()
            .map(|b| {
                let (b, in_flight, max, trials) =
                    (b.clone(), in_flight.clone(), max.clone(), trials.clone());
                tokio::spawn(async move {
                    while Instant::now() < stop {
                        match b.try_acquire() {
                            Ok(p) if p.is_trial() => {
                                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                                max.fetch_max(now, Ordering::SeqCst);
                                trials.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(30)).await;
                                // Counted out while the permit is still held.
                                in_flight.fetch_sub(1, Ordering::SeqCst);
                                p.failure();
                            }
                            Ok(p) => p.success(),
                            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
                        }
                    }
                })
            })
            .collect();
        for c in callers {
            c.await.unwrap();
        }
    }
    (trials.load(Ordering::SeqCst), max.load(Ordering::SeqCst))
}
