//! Memory of breakerbox: the size of a breaker, its heap, a registry of 100,000 breakers, and
//! (no) growth over 1,000,000 open/half-open cycles. Prints markdown tables.
//!
//! Heap figures come from a counting global allocator (bytes allocated minus bytes freed, over
//! the whole process); RSS from `/proc/self/statm` (resident pages x 4 KiB).
//!
//! Run: `cargo run --release -p breakerbox-bench --example memory`.

use breakerbox::{CircuitBreaker, ManualClock, Registry, State};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

struct Counting;

static NET: AtomicI64 = AtomicI64::new(0);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        NET.fetch_add(layout.size() as i64, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        NET.fetch_add(layout.size() as i64, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        NET.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        NET.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn net() -> i64 {
    NET.load(Ordering::Relaxed)
}

fn allocs() -> u64 {
    ALLOCS.load(Ordering::Relaxed)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4)
}

/// Net heap bytes of building `f()` and keeping it.
fn heap_of<T>(f: impl FnOnce() -> T) -> (T, i64) {
    let before = net();
    let v = f();
    (v, net() - before)
}

fn kib(b: i64) -> String {
    format!("{:.1} KiB", b as f64 / 1024.0)
}

fn main() {
    // Start the clock thread (and quanta's calibration) before measuring anything.
    drop(CircuitBreaker::builder().build().unwrap());

    println!("### Size of one breaker\n");
    println!("| breaker | `size_of` | `heap_bytes()` | heap allocated (counted) |");
    println!("|---|---|---|---|");
    type Make = Box<dyn Fn() -> CircuitBreaker>;
    let configs: [(&str, Make); 4] = [
        (
            "default (count window 100)",
            Box::new(|| CircuitBreaker::builder().build().unwrap()),
        ),
        (
            "count window 1,000",
            Box::new(|| {
                CircuitBreaker::builder()
                    .count_window(1_000)
                    .build()
                    .unwrap()
            }),
        ),
        (
            "time window 60 s / 60 buckets",
            Box::new(|| {
                CircuitBreaker::builder()
                    .time_window(Duration::from_secs(60), 60)
                    .build()
                    .unwrap()
            }),
        ),
        (
            "consecutive failures only",
            Box::new(|| {
                CircuitBreaker::builder()
                    .no_failure_rate()
                    .consecutive_failures(5)
                    .build()
                    .unwrap()
            }),
        ),
    ];
    for (name, make) in &configs {
        let (b, heap) = heap_of(make);
        println!(
            "| {name} | {} B | {} B | {} B |",
            std::mem::size_of_val(&b),
            b.heap_bytes(),
            heap
        );
    }
    println!(
        "\n`size_of::<CircuitBreaker>()` = {} B (default `QuantaClock`), \
         `size_of::<CircuitBreaker<ManualClock>>()` = {} B. The state word, the window heads and \
         the hot counters sit on separate cache lines (`CachePadded`), which is most of the size.\n",
        std::mem::size_of::<CircuitBreaker>(),
        std::mem::size_of::<CircuitBreaker<ManualClock>>()
    );

    println!("### Per-thread stripes (default configuration)\n");
    println!("| breaker | `heap_bytes()` |");
    println!("|---|---|");
    let b = std::sync::Arc::new(CircuitBreaker::builder().build().unwrap());
    println!("| new, no call yet | {} B |", b.heap_bytes());
    for _ in 0..1_000 {
        b.try_acquire().unwrap().success();
    }
    println!(
        "| one thread, 1,000 successes (table and one line) | {} B |",
        b.heap_bytes()
    );
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(threads));
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let (b, barrier) = (b.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait(); // all alive at once: each holds its own slot
                for _ in 0..100_000 {
                    b.try_acquire().unwrap().success();
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    println!(
        "| after {threads} more threads, 100,000 successes each (a line each) | {} B |",
        b.heap_bytes()
    );
    println!(
        "\nThe stripe table (one 16-byte entry per expected thread: `2 x available_parallelism` \
         rounded up to a power of two, at least 8, at most 64) is allocated on a breaker's first \
         striped write (a success past the minimum calls, or a rejection); each thread's \
         {}-byte line when that thread first writes. Threads past the table take the shared \
         path.\n",
        128
    );

    println!("### Registry of 100,000 breakers (default configuration)\n");
    let names: Vec<String> = (0..100_000).map(|i| format!("service-{i:06}")).collect();
    let rss0 = rss_kib();
    let (reg, heap) = heap_of(|| {
        let reg = Registry::default()
            .with_capacity_limit(100_000)
            .expect("a non-zero limit");
        for n in &names {
            reg.get(n);
        }
        reg
    });
    let rss1 = rss_kib();
    assert_eq!(reg.len(), 100_000);
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| heap allocated, net | {} ({:.0} B per breaker) |",
        kib(heap),
        heap as f64 / 1e5
    );
    println!("| RSS growth | {} KiB |", rss1.saturating_sub(rss0));
    let (_, lookups) = heap_of(|| {
        for n in names.iter().step_by(97) {
            std::hint::black_box(reg.get(n));
        }
    });
    println!("| heap allocated by 1,031 lookups of existing names | {lookups} B |");
    drop(reg);
    println!();

    println!("### 1,000,000 open / half-open cycles\n");
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_wait(Duration::from_millis(10))
        .build()
        .unwrap();
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open);
    let cycle = || {
        clock.advance(Duration::from_millis(11));
        let trial = b.try_acquire().unwrap(); // OPEN -> HALF-OPEN
        debug_assert_eq!(b.state(), State::HalfOpen);
        trial.failure(); // HALF-OPEN -> OPEN
    };
    for _ in 0..1_000 {
        cycle();
    }
    let (net0, allocs0, rss0) = (net(), allocs(), rss_kib());
    for _ in 0..1_000_000 {
        cycle();
    }
    let (net1, allocs1, rss1) = (net(), allocs(), rss_kib());
    assert_eq!(b.state(), State::Open);
    println!("| measure | before | after | change |");
    println!("|---|---|---|---|");
    println!(
        "| heap allocated, net (process) | {net0} B | {net1} B | {} B |",
        net1 - net0
    );
    println!(
        "| allocations (process) | {allocs0} | {allocs1} | {} |",
        allocs1 - allocs0
    );
    println!(
        "| RSS | {rss0} KiB | {rss1} KiB | {} KiB |",
        rss1 as i64 - rss0 as i64
    );
    println!("| breaker generation | | {} | |", b.generation());
    println!();

    // For contrast: recloser swaps heap-allocated states without reclaiming them.
    let rc = recloser::Recloser::custom()
        .closed_len(1)
        .half_open_len(1)
        .open_wait(Duration::ZERO)
        .build();
    let fail = || {
        let _ = rc.call(|| Err::<(), ()>(()));
    };
    for _ in 0..1_000 {
        fail();
    }
    let (net0, rss0) = (net(), rss_kib());
    const PEER_CYCLES: u32 = 100_000;
    for _ in 0..PEER_CYCLES {
        fail();
    }
    let (net1, rss1) = (net(), rss_kib());
    println!(
        "For contrast, recloser 1.4 (`open_wait` 0, every call a failure, so every call is an \
         open/half-open transition), {PEER_CYCLES} failing calls: heap net {:+} B, RSS {:+} KiB.",
        net1 - net0,
        rss1 as i64 - rss0 as i64
    );
}
