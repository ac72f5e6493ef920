//! Zero heap allocations per call, proven with a counting global allocator.
//!
//! The allocator counts only on a thread that switched counting on (a thread-local flag), so the
//! test harness's own threads cannot make these tests flaky. Time is driven by a `ManualClock`
//! wherever it matters, so the paths taken are deterministic.

use breakerbox::{CallError, CircuitBreaker, ManualClock, State, MAX_HALF_OPEN};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = ON.try_with(|on| {
        if on.get() {
            let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
            let _ = BYTES.try_with(|b| b.set(b.get() + size as u64));
        }
    });
}

// SAFETY: forwards every call to the system allocator unchanged; only counts on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations (count, bytes) made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> (u64, u64) {
    ALLOCS.with(|a| a.set(0));
    BYTES.with(|b| b.set(0));
    ON.with(|on| on.set(true));
    f();
    ON.with(|on| on.set(false));
    (ALLOCS.with(Cell::get), BYTES.with(Cell::get))
}

const CALLS: usize = 10_000;

fn assert_none(what: &str, f: impl FnOnce()) {
    let (n, bytes) = allocations(f);
    assert_eq!(
        (n, bytes),
        (0, 0),
        "{what}: {n} heap allocations ({bytes} bytes) over {CALLS} calls"
    );
}

fn count_window(clock: &ManualClock) -> CircuitBreaker<ManualClock> {
    CircuitBreaker::builder()
        .clock(clock.clone())
        .count_window(100)
        .minimum_calls(10)
        .failure_rate_threshold(1.0)
        .open_wait(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn time_window(clock: &ManualClock) -> CircuitBreaker<ManualClock> {
    CircuitBreaker::builder()
        .clock(clock.clone())
        .time_window(Duration::from_secs(10), 10)
        .minimum_calls(10)
        .failure_rate_threshold(1.0)
        .open_wait(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Closed: acquire + success, and `call`, on both window kinds (the time window across many
/// bucket boundaries).
fn closed_calls() {
    let clock = ManualClock::new();
    for (kind, b) in [
        ("count", count_window(&clock)),
        ("time", time_window(&clock)),
    ] {
        for _ in 0..1_000 {
            b.try_acquire().unwrap().success();
        }
        assert_none(&format!("closed acquire+success ({kind} window)"), || {
            for i in 0..CALLS {
                b.try_acquire().unwrap().success();
                if i % 100 == 0 {
                    clock.advance(Duration::from_millis(250));
                }
            }
        });
        assert_none(&format!("closed call ({kind} window)"), || {
            for _ in 0..CALLS {
                let r: Result<u32, CallError<()>> = b.call(|| Ok(1));
                assert!(r.is_ok());
            }
        });
        assert_eq!(b.state(), State::Closed);
    }
}

/// Closed: failures recorded after warm-up (50 % failures under a 100 % threshold: counted,
/// evaluated, never tripping), on both window kinds.
fn failure_recording() {
    let clock = ManualClock::new();
    for (kind, b) in [
        ("count", count_window(&clock)),
        ("time", time_window(&clock)),
    ] {
        for i in 0..1_000 {
            let p = b.try_acquire().unwrap();
            if i % 2 == 0 {
                p.failure()
            } else {
                p.success()
            }
        }
        assert_none(&format!("failure recording ({kind} window)"), || {
            for i in 0..CALLS {
                let p = b.try_acquire().unwrap();
                if i % 2 == 0 {
                    p.failure()
                } else {
                    p.success()
                }
                if i % 100 == 0 {
                    clock.advance(Duration::from_millis(250));
                }
            }
        });
        assert_eq!(b.state(), State::Closed);
        assert!(b.metrics().failures >= (CALLS / 2) as u64);
    }
}

/// Open: rejection, on both window kinds.
fn open_rejection() {
    let clock = ManualClock::new();
    for (kind, b) in [
        ("count", count_window(&clock)),
        ("time", time_window(&clock)),
    ] {
        for _ in 0..10 {
            b.try_acquire().unwrap().failure();
        }
        assert_eq!(b.state(), State::Open, "{kind}");
        // The first rejection allocates the stripe table and this thread's line (once per
        // breaker and thread; closed calls past the minimum would have done it already).
        assert!(b.try_acquire().is_err());
        assert_none(&format!("open rejection ({kind} window)"), || {
            for _ in 0..CALLS {
                let e = b.try_acquire().unwrap_err();
                assert_eq!(e.state(), State::Open);
            }
        });
    }
}

/// Half-open: acquire + success / ignore / drop with a large cap (stays half-open).
fn half_open() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_wait(Duration::from_secs(1))
        .half_open_permits(MAX_HALF_OPEN)
        .half_open_successes(MAX_HALF_OPEN)
        .build()
        .unwrap();
    b.try_acquire().unwrap().failure();
    clock.advance(Duration::from_secs(2));
    let first = b.try_acquire().unwrap();
    assert_eq!(b.state(), State::HalfOpen);
    assert_none("half-open acquire+outcome", || {
        for i in 0..CALLS {
            let p = b.try_acquire().unwrap();
            assert!(p.is_trial());
            match i % 3 {
                0 => p.success(),
                1 => p.ignore(),
                _ => drop(p),
            }
        }
    });
    assert_eq!(b.state(), State::HalfOpen);
    first.ignore();
}

/// Whole cycles: trip, reject, half-open trial that fails, trial that succeeds, closed again.
fn transitions() {
    let clock = ManualClock::new();
    for (kind, b) in [
        ("count", count_window(&clock)),
        ("time", time_window(&clock)),
    ] {
        let cycle = || {
            for _ in 0..10 {
                b.try_acquire().unwrap().failure();
            }
            assert_eq!(b.state(), State::Open);
            assert!(b.try_acquire().is_err());
            clock.advance(Duration::from_secs(11));
            b.try_acquire().unwrap().failure(); // trial fails: open again
            clock.advance(Duration::from_secs(11));
            b.try_acquire().unwrap().success(); // trial succeeds: closed
            assert_eq!(b.state(), State::Closed);
        };
        for _ in 0..10 {
            cycle();
        }
        assert_none(
            &format!("trip/open/half-open/close cycles ({kind} window)"),
            || {
                for _ in 0..1_000 {
                    cycle();
                }
            },
        );
    }
}

/// The default (quanta) clock on the hot paths.
fn default_clock() {
    let b = CircuitBreaker::builder()
        .consecutive_failures(3)
        .open_wait(Duration::from_secs(3600))
        .build()
        .unwrap();
    for _ in 0..1_000 {
        b.try_acquire().unwrap().success();
    }
    assert_none("closed acquire+success (QuantaClock)", || {
        for _ in 0..CALLS {
            b.try_acquire().unwrap().success();
        }
    });
    for _ in 0..3 {
        b.try_acquire().unwrap().failure();
    }
    assert_none("open rejection (QuantaClock)", || {
        for _ in 0..CALLS {
            assert!(b.try_acquire().is_err());
        }
    });
}

#[test]
fn the_counter_counts() {
    let (n, bytes) = allocations(|| {
        std::hint::black_box(vec![0u8; 64]);
    });
    assert_eq!((n, bytes), (1, 64));
}

#[test]
fn zero_allocations_per_call() {
    closed_calls();
    failure_recording();
    open_rejection();
    half_open();
    transitions();
    default_clock();
}
