//! Regression tests, as minimal ordinary (non-loom) tests, for core bugs found by the
//! verification suite (the loom models and the fuzz targets) and fixed since.
#![cfg(not(breakerbox_loom))]

use breakerbox::{CircuitBreaker, ManualClock, State};
use std::time::Duration;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// An OPEN breaker left idle for a week admits a trial. (Found by the fuzz target `time`: the
/// OPEN deadline was kept in microseconds modulo 2^40 and any wrapped difference below 2^39
/// read as "still waiting", so a breaker that saw no call for 6.4 to 12.7 days after its wait
/// ended rejected calls again, announcing up to 6.4 more days. Fixed in 2a561dc.)
#[test]
fn open_breaker_idle_for_a_week_admits_a_trial() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder()
        .clock(clock.clone())
        .no_failure_rate()
        .consecutive_failures(1)
        .open_wait(Duration::from_secs(10))
        .build()
        .unwrap();
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open);
    for days in [7, 3, 30, 365] {
        clock.advance(days * DAY);
        let admitted = b.try_acquire();
        assert!(
            admitted.is_ok(),
            "the open wait ended {days} days ago, yet: {:?}",
            admitted.err().map(|r| (r.state(), r.retry_after()))
        );
        // The trial fails: OPEN again for 10 s, then idle for the next span.
        admitted.unwrap().failure();
        assert_eq!(b.state(), State::Open);
    }
}
