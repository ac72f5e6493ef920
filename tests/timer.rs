//! The automatic OPEN -> HALF-OPEN timer: what it holds in memory, and that its transitions
//! keep time whatever the breakers' listeners do.
//!
//! Memory is measured with a counting global allocator: live bytes (allocated minus freed) on
//! the thread that switched counting on (a thread-local flag, so that the harness's other
//! threads cannot disturb a figure). The timer's structures are shared by every breaker of the
//! process, so the tests here run one at a time (`serial`): another test's breakers could
//! otherwise grow (or shrink) them on this thread's account.

use breakerbox::{CircuitBreaker, EventKind, ManualClock, State};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

fn note(delta: i64) {
    let _ = ON.try_with(|on| {
        if on.get() {
            let _ = LIVE.try_with(|l| l.set(l.get() + delta));
        }
    });
}

// SAFETY: forwards every call to the system allocator unchanged; only counts on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as i64);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as i64);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as i64 - layout.size() as i64);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as i64));
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes allocated and not freed by `f` on this thread.
fn live_bytes(f: impl FnOnce()) -> i64 {
    LIVE.with(|l| l.set(0));
    ON.with(|on| on.set(true));
    f();
    ON.with(|on| on.set(false));
    LIVE.with(Cell::get)
}

/// One test at a time (see the module doc).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

const DAY: Duration = Duration::from_secs(24 * 3600);

fn automatic(clock: &ManualClock) -> Arc<CircuitBreaker<ManualClock>> {
    CircuitBreaker::builder()
        .automatic_half_open(true)
        .clock(clock.clone())
        .build_shared()
        .unwrap()
}

#[test]
fn the_counter_counts() {
    let held = live_bytes(|| std::mem::forget(vec![0u8; 1000]));
    assert_eq!(held, 1000);
    let freed = live_bytes(|| drop(vec![0u8; 1000]));
    assert_eq!(freed, 0);
}

/// The memory checks, in this order in one test: a check that ran after the other could free
/// the other's leftovers on its own account.
#[test]
#[cfg_attr(miri, ignore = "a real-time background thread")]
fn the_timer_holds_memory_for_open_breakers_only() {
    let _serial = serial();
    past_open_generations_leave_nothing_in_the_timer();
    a_dropped_breakers_memory_is_freed_while_its_wait_is_pending();
}

/// One live breaker, opened for 24 h and closed again 200,000 times.
fn past_open_generations_leave_nothing_in_the_timer() {
    let clock = ManualClock::new();
    let b = automatic(&clock);
    // Warm-up: the timer thread is started, the breaker's lines are allocated.
    for _ in 0..1_000 {
        b.transition_to_open_for(DAY).unwrap();
        b.transition_to_closed();
    }
    const CYCLES: usize = 200_000;
    let held = live_bytes(|| {
        for _ in 0..CYCLES {
            b.transition_to_open_for(DAY).unwrap();
            b.transition_to_closed();
        }
    });
    assert!(
        held < 64 * 1024,
        "{held} bytes still held after {CYCLES} cycles of open for 24 h, then close"
    );
    // The breaker still works with the timer: an open wait that ends goes HALF-OPEN.
    b.transition_to_open_for(Duration::from_millis(5)).unwrap();
    clock.advance(Duration::from_millis(5));
    let start = Instant::now();
    while b.state() != State::HalfOpen {
        assert!(start.elapsed() < Duration::from_secs(20), "{}", b.state());
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// 20,000 breakers opened for 24 h, then dropped.
fn a_dropped_breakers_memory_is_freed_while_its_wait_is_pending() {
    let clock = ManualClock::new();
    // Warm-up: the timer thread is started (its allocations stay).
    for _ in 0..10 {
        automatic(&clock).transition_to_open_for(DAY).unwrap();
    }
    const BREAKERS: usize = 20_000;
    let held = live_bytes(|| {
        let all: Vec<_> = (0..BREAKERS)
            .map(|_| {
                let b = automatic(&clock);
                b.transition_to_open_for(DAY).unwrap();
                b
            })
            .collect();
        assert!(all.iter().all(|b| b.state() == State::Open));
        drop(all);
    });
    assert!(
        held < 256 * 1024,
        "{held} bytes still held after {BREAKERS} breakers opened for 24 h were dropped"
    );
}

#[test]
#[cfg_attr(miri, ignore = "a real-time background thread")]
fn a_slow_listener_delays_no_other_breakers_half_open() {
    let _serial = serial();
    // A breaker whose transition listener blocks for 3 s, inside the event of its own
    // automatic OPEN -> HALF-OPEN transition.
    let slow = CircuitBreaker::builder()
        .automatic_half_open(true)
        .build_shared()
        .unwrap();
    let blocked = Arc::new(AtomicBool::new(false));
    let flag = blocked.clone();
    slow.on_transition(move |e| {
        if let EventKind::Transition(t) = e.kind {
            if t.to == State::HalfOpen {
                flag.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs(3));
            }
        }
    });
    slow.transition_to_open_for(Duration::from_millis(1))
        .unwrap();
    let start = Instant::now();
    while !blocked.load(Ordering::SeqCst) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the slow listener was never called"
        );
        std::thread::sleep(Duration::from_millis(1));
    }

    // 100 other breakers with a 50 ms wait, each with a (fast) listener of its own.
    let seen = Arc::new(AtomicUsize::new(0));
    let breakers: Vec<_> = (0..100)
        .map(|_| {
            let b = CircuitBreaker::builder()
                .automatic_half_open(true)
                .build_shared()
                .unwrap();
            let seen = seen.clone();
            b.on_transition(move |e| {
                if let EventKind::Transition(t) = e.kind {
                    if t.to == State::HalfOpen {
                        seen.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
            b
        })
        .collect();
    let opened = Instant::now();
    for b in &breakers {
        b.transition_to_open_for(Duration::from_millis(50)).unwrap();
    }
    let deadline = opened + Duration::from_secs(1);
    loop {
        let half_open = breakers
            .iter()
            .filter(|b| b.state() == State::HalfOpen)
            .count();
        let events = seen.load(Ordering::SeqCst);
        if half_open == breakers.len() && events == breakers.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after {:?}: {half_open} of {} breakers HALF-OPEN, {events} events",
            opened.elapsed(),
            breakers.len()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(blocked.load(Ordering::SeqCst));
    assert_eq!(slow.state(), State::HalfOpen);
}
