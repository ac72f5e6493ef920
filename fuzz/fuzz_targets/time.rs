//! Arbitrary clock behaviour (tiny steps, huge jumps up to `u64::MAX` nanoseconds, a clock
//! standing still) interleaved with calls never panics or corrupts the counts: after every
//! step the metrics satisfy their invariants.
#![no_main]

use arbitrary::Arbitrary;
use breakerbox::{CircuitBreaker, ManualClock, OpenWait, Permit, State, MAX_OPEN_WAIT};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Jump {
    /// The clock stands still.
    Still,
    Nanos(u16),
    Micros(u16),
    Millis(u16),
    Secs(u32),
    /// Any number of nanoseconds, up to `u64::MAX`.
    Raw(u64),
    /// Straight to the end of the clock (it saturates there and stands still).
    ToEnd,
}

impl Jump {
    fn apply(self, clock: &ManualClock) {
        let d = match self {
            Jump::Still => Duration::ZERO,
            Jump::Nanos(n) => Duration::from_nanos(n.into()),
            Jump::Micros(n) => Duration::from_micros(n.into()),
            Jump::Millis(n) => Duration::from_millis(n.into()),
            Jump::Secs(n) => Duration::from_secs(n.into()),
            Jump::Raw(n) => Duration::from_nanos(n),
            Jump::ToEnd => Duration::MAX,
        };
        clock.advance(d);
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Op {
    Acquire,
    Success(u8),
    Failure(u8),
    /// Jump the clock while the call is in flight, then report success.
    SlowSuccess(u8, Jump),
    Drop(u8),
    Jump(Jump),
    Reset,
}

#[derive(Arbitrary, Debug)]
struct Input {
    time_window: bool,
    /// Window length in ms (time window) or calls (count window), small.
    window: u8,
    buckets: u8,
    slow_ms: u16,
    wait_ms: u32,
    backoff: bool,
    jitter: bool,
    permits: u8,
    successes: u8,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let clock = ManualClock::new();
    let permits = u32::from(input.permits % 4) + 1;
    let buckets = u32::from(input.buckets % 8) + 1;
    let mut b = CircuitBreaker::builder()
        .clock(clock.clone())
        .failure_rate_threshold(0.5)
        .minimum_calls(2)
        .slow_calls(Duration::from_millis(u64::from(input.slow_ms) + 1), 0.5)
        .half_open_permits(permits)
        .half_open_successes(u32::from(input.successes % 4) + 1);
    // The count window's size (the time window has no fixed limit on calls).
    let count_window = (!input.time_window).then(|| u64::from(input.window % 16) + 2);
    b = if input.time_window {
        // At least 1 ms per bucket.
        let ms = u64::from(input.window).max(1) * u64::from(buckets);
        b.time_window(Duration::from_millis(ms), buckets)
    } else {
        b.count_window(u32::from(input.window % 16) + 2)
    };
    let wait = Duration::from_millis(u64::from(input.wait_ms) % 86_400_000);
    // The longest wait the breaker may announce.
    let longest = if input.backoff {
        (wait * 4).min(MAX_OPEN_WAIT)
    } else {
        wait
    };
    b = if input.backoff {
        b.open_wait_backoff(OpenWait::exponential(wait, longest))
    } else {
        b.open_wait(wait)
    };
    if input.jitter {
        b = b.jitter(0.5);
    }
    let breaker = b.build().expect("a valid configuration");
    let mut held: Vec<Permit<'_, ManualClock>> = Vec::new();
    for op in input.ops.iter().take(256) {
        match *op {
            Op::Acquire => {
                if let Ok(p) = breaker.try_acquire() {
                    held.push(p);
                }
            }
            Op::Success(i) | Op::Failure(i) | Op::Drop(i) | Op::SlowSuccess(i, _) => {
                if held.is_empty() {
                    continue;
                }
                let p = held.remove(usize::from(i) % held.len());
                match *op {
                    Op::Success(_) => p.success(),
                    Op::Failure(_) => p.failure(),
                    Op::SlowSuccess(_, j) => {
                        j.apply(&clock);
                        p.success()
                    }
                    _ => drop(p),
                }
            }
            Op::Jump(j) => j.apply(&clock),
            Op::Reset => breaker.reset(),
        }
        let m = breaker.metrics();
        assert!(m.window_failures <= m.window_calls, "{m:?}");
        assert!(m.window_slow_calls <= m.window_calls, "{m:?}");
        assert_eq!(m.successes + m.failures, m.calls, "{m:?}");
        assert!(m.half_open_in_flight <= permits, "{m:?}");
        if m.state != State::HalfOpen {
            assert_eq!(m.half_open_in_flight, 0, "{m:?}");
        }
        if let Some(left) = m.retry_after {
            assert_eq!(m.state, State::Open, "{m:?}");
            // A breaker idle past its deadline must not look OPEN with a longer wait (the
            // 40-bit deadline used to wrap: loom-tests/tests/regressions.rs).
            assert!(
                left <= longest,
                "retry_after {left:?} beyond the longest wait: {m:?}"
            );
        }
        if let Some(n) = count_window {
            assert!(
                m.window_calls <= n,
                "more calls than the count window holds: {m:?}"
            );
        }
    }
});
