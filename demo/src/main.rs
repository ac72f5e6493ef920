//! A breaker guarding a simulated dependency that goes through its phases: healthy, failing,
//! recovering, slow, recovering. Four worker threads call it in a loop; the timeline shows the breaker's
//! state, what the callers saw, and every transition as it happens. About 11 seconds.
//!
//! Run: `cargo run --release -p breakerbox-demo` (a workspace member of its own, so it builds
//! the library alone, not the benchmark tooling).

use breakerbox::{CallError, CircuitBreaker, EventKind, OpenWait, State};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Phase {
    Healthy,
    Failing,
    Slow,
    Recovering,
}

const PHASES: [(Phase, u64); 5] = [
    (Phase::Healthy, 1_500),
    (Phase::Failing, 2_500),
    (Phase::Recovering, 2_000),
    (Phase::Slow, 2_500),
    (Phase::Recovering, 2_500),
];

/// The dependency: latency and failure depend on the phase.
fn dependency(phase: Phase, rng: &mut fastrand::Rng) -> Result<(), &'static str> {
    let (latency_ms, fail_pct) = match phase {
        Phase::Healthy => (rng.u64(1..4), 2),
        // Recovered: no failures, so the trial calls close the breaker and the story ends CLOSED.
        Phase::Recovering => (rng.u64(1..4), 0),
        Phase::Failing => (rng.u64(1..3), 90),
        Phase::Slow => (rng.u64(70..90), 0),
    };
    thread::sleep(Duration::from_millis(latency_ms));
    if rng.u8(0..100) < fail_pct {
        Err("upstream error")
    } else {
        Ok(())
    }
}

#[derive(Default)]
struct Seen {
    ok: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
}

fn main() {
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .name("inventory-api")
            .failure_rate_threshold(0.5)
            .slow_calls(Duration::from_millis(50), 0.6)
            .time_window(Duration::from_secs(1), 10)
            .minimum_calls(20)
            .open_wait_backoff(OpenWait::exponential(
                Duration::from_millis(400),
                Duration::from_millis(1_600),
            ))
            .half_open_permits(3)
            .half_open_successes(3)
            .build()
            .expect("valid configuration"),
    );

    let start = Instant::now();
    let stamp = move || format!("{:>5.2}s", start.elapsed().as_secs_f64());
    let stamp2 = stamp;
    breaker.on_event(move |e| {
        if let EventKind::Transition(t) = e.kind {
            let wait = t
                .open_wait
                .map(|w| format!(", waiting {} ms", w.as_millis()))
                .unwrap_or_default();
            println!(
                "{}  >>> {} -> {}  ({}{wait})",
                stamp2(),
                t.from.as_str().to_uppercase(),
                t.to.as_str().to_uppercase(),
                t.reason
            );
        }
    });

    let phase = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Seen::default());
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (breaker, phase, done, seen) =
                (breaker.clone(), phase.clone(), done.clone(), seen.clone());
            thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(w);
                while !done.load(Ordering::Relaxed) {
                    let p = PHASES[phase.load(Ordering::Relaxed)].0;
                    match breaker.call(|| dependency(p, &mut rng)) {
                        Ok(()) => seen.ok.fetch_add(1, Ordering::Relaxed),
                        Err(CallError::Failed(_)) => seen.failed.fetch_add(1, Ordering::Relaxed),
                        Err(_) => {
                            // Rejected: a real client would serve a fallback; back off briefly.
                            thread::sleep(Duration::from_millis(2));
                            seen.rejected.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();

    println!("breakerbox demo: 4 callers, one breaker (failure rate >= 50% or slow (>= 50 ms) rate >= 60%");
    println!("over a 1 s time window, minimum 20 calls; open wait 400 ms doubling to 1.6 s; 3 trial calls)\n");
    println!("  time  phase        state        ok  failed  rejected   fail%  slow%  window");
    let tick = Duration::from_millis(500);
    for (i, (p, ms)) in PHASES.iter().enumerate() {
        phase.store(i, Ordering::Relaxed);
        println!("{}  ---- phase: {:?} ----", stamp(), p);
        let end = Instant::now() + Duration::from_millis(*ms);
        while Instant::now() < end {
            thread::sleep(tick);
            let m = breaker.metrics();
            let take = |c: &AtomicU64| c.swap(0, Ordering::Relaxed);
            println!(
                "{}  {:<11}  {:<10}  {:>4}  {:>6}  {:>8}  {:>5.0}%  {:>4.0}%  {:>4} calls",
                stamp(),
                format!("{p:?}"),
                state_label(m.state),
                take(&seen.ok),
                take(&seen.failed),
                take(&seen.rejected),
                m.failure_rate * 100.0,
                m.slow_call_rate * 100.0,
                m.window_calls
            );
        }
    }
    done.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    let m = breaker.metrics();
    println!(
        "\nfinal: state {}, {} {} ({} ok, {} failed, {} slow), {} rejected, opened {} {}",
        m.state,
        m.calls,
        if m.calls == 1 { "call" } else { "calls" },
        m.successes,
        m.failures,
        m.slow_calls,
        m.rejected,
        m.times_opened,
        if m.times_opened == 1 { "time" } else { "times" },
    );
}

fn state_label(s: State) -> String {
    match s {
        State::Closed => "closed".into(),
        State::Open => "OPEN".into(),
        State::HalfOpen => "half-open".into(),
        other => other.to_string(),
    }
}
