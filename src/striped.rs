//! A counter that spreads itself over per-thread cells when it is contended, as Java's
//! `LongAdder`: the rejection counter, which every rejected call bumps.
//!
//! It starts as one word (`base`). An increment is a load and a compare-and-swap of that word;
//! a CAS that fails means another thread changed the word between the two, i.e. contention, and
//! inflates the counter: a table of cells, one cache line each, one per core up to [`MAX_CELLS`],
//! allocated once. From then on an increment is a `fetch_add` on the calling thread's own cell
//! (chosen by a per-thread index), a line no other thread writes while there are no more
//! threads than cells. A read sums `base` and the cells. An uncontended counter never inflates
//! and stays one word; an inflated one stays inflated.
//!
//! Every access is `Relaxed`: the count is a statistic and publishes no other memory. The table
//! is published through a `OnceLock`, whose `get` is an Acquire load that pairs with the Release
//! in its initialisation, so a thread that finds the table sees its cells initialised.
//!
//! Under loom (`--cfg breakerbox_loom`) the counter is a plain `fetch_add` (the models do not
//! look at rejection totals; the loom build keeps std's thread-locals out of the models).

use crate::sync::{atomic_u64, AtomicU64, Ordering};
#[cfg(not(breakerbox_loom))]
use crossbeam_utils::CachePadded;

/// Most cells an inflated counter has (one cache line each).
#[cfg(not(breakerbox_loom))]
pub(crate) const MAX_CELLS: usize = 64;

/// A striped counter; see the module doc.
pub(crate) struct StripedCounter {
    base: AtomicU64,
    #[cfg(not(breakerbox_loom))]
    cells: std::sync::OnceLock<Box<[CachePadded<AtomicU64>]>>,
}

#[cfg(not(breakerbox_loom))]
fn thread_index() -> usize {
    use std::cell::Cell;
    use std::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    INDEX.with(|i| {
        let mut v = i.get();
        if v == usize::MAX {
            // Relaxed: hands out distinct numbers; nothing else is published.
            v = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            i.set(v);
        }
        v
    })
}

impl StripedCounter {
    pub(crate) fn new() -> Self {
        StripedCounter {
            base: atomic_u64(0),
            #[cfg(not(breakerbox_loom))]
            cells: std::sync::OnceLock::new(),
        }
    }

    /// Adds one.
    #[inline(always)]
    pub(crate) fn add(&self) {
        #[cfg(not(breakerbox_loom))]
        {
            if let Some(cells) = self.cells.get() {
                // Relaxed: a statistic (module doc). `cells.len()` is a power of two.
                cells[thread_index() & (cells.len() - 1)].fetch_add(1, Ordering::Relaxed);
                return;
            }
            // Relaxed: a statistic.
            let cur = self.base.load(Ordering::Relaxed);
            if self
                .base
                .compare_exchange(cur, cur + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
            {
                self.contended();
            }
        }
        #[cfg(breakerbox_loom)]
        // Relaxed: a statistic.
        self.base.fetch_add(1, Ordering::Relaxed);
    }

    /// The CAS on `base` failed: inflate, and count this increment in the thread's cell.
    #[cold]
    #[cfg(not(breakerbox_loom))]
    fn contended(&self) {
        let cells = self.cells.get_or_init(|| {
            let n = std::thread::available_parallelism()
                .map_or(4, |n| n.get())
                .next_power_of_two()
                .clamp(2, MAX_CELLS);
            (0..n).map(|_| CachePadded::new(atomic_u64(0))).collect()
        });
        // Relaxed: a statistic.
        cells[thread_index() & (cells.len() - 1)].fetch_add(1, Ordering::Relaxed);
    }

    /// The total. Increments racing the read may or may not be included; each is included by
    /// every read that starts after it returned.
    pub(crate) fn sum(&self) -> u64 {
        // Relaxed: a statistic.
        let base = self.base.load(Ordering::Relaxed);
        #[cfg(not(breakerbox_loom))]
        let cells: u64 = self
            .cells
            .get()
            .map_or(0, |c| c.iter().map(|c| c.load(Ordering::Relaxed)).sum());
        #[cfg(breakerbox_loom)]
        let cells = 0;
        base.wrapping_add(cells)
    }

    /// Heap bytes (the cell table, once inflated).
    pub(crate) fn heap_bytes(&self) -> usize {
        #[cfg(not(breakerbox_loom))]
        return self.cells.get().map_or(0, |c| {
            c.len() * std::mem::size_of::<CachePadded<AtomicU64>>()
        });
        #[cfg(breakerbox_loom)]
        0
    }

    /// Whether the counter has inflated.
    #[cfg(test)]
    pub(crate) fn inflated(&self) -> bool {
        self.heap_bytes() > 0
    }
}

#[cfg(all(test, not(breakerbox_loom)))]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    #[test]
    fn uncontended_stays_one_word() {
        let c = StripedCounter::new();
        for _ in 0..10_000 {
            c.add();
        }
        assert_eq!(c.sum(), 10_000);
        assert!(!c.inflated());
        assert_eq!(c.heap_bytes(), 0);
    }

    #[test]
    fn contended_totals_are_exact() {
        // However the threads interleave (and whether or not the counter inflates), the total
        // after they finish is exact.
        let c = Arc::new(StripedCounter::new());
        let threads = 4;
        // Miri interprets every step: fewer rounds there, still racing.
        let per = if cfg!(miri) { 200 } else { 200_000 };
        let barrier = Arc::new(Barrier::new(threads));
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let (c, barrier) = (c.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..per {
                        c.add();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(c.sum(), (threads * per) as u64);
        if c.inflated() {
            assert!(c.heap_bytes() <= MAX_CELLS * 128);
        }
    }

    #[test]
    fn an_inflated_counter_keeps_its_base() {
        let c = StripedCounter::new();
        for _ in 0..5 {
            c.add();
        }
        c.contended(); // as if a CAS had failed: inflates, counts one in a cell
        assert!(c.inflated());
        c.add();
        assert_eq!(c.sum(), 7);
    }
}
