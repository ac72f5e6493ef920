//! Per-call latency percentiles (hdrhistogram) of breakerbox's closed and open paths, alone and
//! from several threads on one shared breaker.
//!
//! One call costs a few nanoseconds, less than one clock read, so calls are timed in batches of
//! `BATCH` (100) calls per pair of `std::time::Instant` reads; each batch is recorded and the
//! percentiles are divided by `BATCH`: they are percentiles of the *mean per-call time of a
//! batch of 100*, which smooths single-call outliers (a max here is the slowest batch / 100).
//! The timer's own cost is shown too (an empty batch, and one call per timing).
//!
//! Run: `cargo run --release -p breakerbox-bench --example latency` (prints a markdown table).
//! Threads for the shared runs: `BENCH_THREADS` (default 2). Seconds per row: `LATENCY_SECS`
//! (default 1).

use breakerbox::CircuitBreaker;
use hdrhistogram::Histogram;
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

const BATCH: u64 = 100;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(default)
}

fn closed_call(b: &CircuitBreaker) {
    match b.try_acquire() {
        Ok(p) => p.success(),
        Err(e) => {
            black_box(e);
        }
    }
}

fn open_call(b: &CircuitBreaker) {
    black_box(b.try_acquire().is_err());
}

/// Records batches of `batch` calls of `f` for `secs`; values are whole-batch nanoseconds.
fn record(secs: Duration, batch: u64, f: &dyn Fn()) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    // Warm-up.
    for _ in 0..100_000 {
        f();
    }
    let end = Instant::now() + secs;
    while Instant::now() < end {
        for _ in 0..1_000 {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            let ns = t.elapsed().as_nanos() as u64;
            h.saturating_record(ns.max(1));
        }
    }
    h
}

fn shared(threads: usize, secs: Duration, f: &(dyn Fn() + Sync)) -> Histogram<u64> {
    let barrier = Barrier::new(threads);
    let hs: Vec<Histogram<u64>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    record(secs, BATCH, f)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    for h in &hs {
        all.add(h).unwrap();
    }
    all
}

fn row(name: &str, h: &Histogram<u64>, per: u64) {
    let q = |x: f64| h.value_at_quantile(x) as f64 / per as f64;
    println!(
        "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
        q(0.5),
        q(0.99),
        q(0.999),
        h.max() as f64 / per as f64,
        h.len()
    );
}

fn main() {
    let threads = env_or("BENCH_THREADS", 2) as usize;
    let secs = Duration::from_secs(env_or("LATENCY_SECS", 1));

    let closed = CircuitBreaker::builder()
        .open_wait(Duration::from_secs(3600))
        .build()
        .unwrap();
    let open = CircuitBreaker::builder()
        .consecutive_failures(1)
        .open_wait(Duration::from_secs(3600))
        .build()
        .unwrap();
    open.try_acquire().unwrap().failure();
    assert!(open.try_acquire().is_err());

    println!("| path | p50 ns | p99 ns | p99.9 ns | max ns | batches |");
    println!("|---|---|---|---|---|---|");
    row(
        "closed, 1 thread",
        &record(secs, BATCH, &|| closed_call(&closed)),
        BATCH,
    );
    row(
        "open, 1 thread",
        &record(secs, BATCH, &|| open_call(&open)),
        BATCH,
    );
    row(
        &format!("closed, {threads} threads (per thread)"),
        &shared(threads, secs, &|| closed_call(&closed)),
        BATCH,
    );
    row(
        &format!("open, {threads} threads (per thread)"),
        &shared(threads, secs, &|| open_call(&open)),
        BATCH,
    );
    // The timer itself: an empty "batch" (two Instant reads), and one call per timing.
    row(
        "timer only (Instant pair; not divided)",
        &record(secs, 0, &|| ()),
        1,
    );
    row(
        "closed, 1 call per timing (not divided)",
        &record(secs, 1, &|| closed_call(&closed)),
        1,
    );
    println!();
    println!(
        "Batches of {BATCH} calls per `Instant` pair; values are batch time / {BATCH}, except the \
         two rows marked \"not divided\". {threads}-thread rows: every thread's batches, merged. \
         {} s per row.",
        secs.as_secs()
    );
}
