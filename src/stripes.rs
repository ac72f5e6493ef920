//! Per-thread stripes: where the two per-call writes of the common paths go, so that threads
//! sharing a breaker do not write a shared cache line on every call.
//!
//! - A **rejection** adds one to the rejecting thread's stripe.
//! - A **success in CLOSED** (count window, past the minimum calls) adds one to the thread's
//!   stripe; the count window takes the stripes' successes into its ring in batches (see
//!   `window::count`, "Striped successes").
//!
//! Each thread that uses breakers gets a small process-wide *slot* number from a registry that
//! hands out the lowest free one and takes it back when the thread exits, so the live threads'
//! slots are distinct. A breaker's stripe table is indexed by slot, and stripe `i` has exactly
//! one writing owner (the thread holding slot `i`) for the counts the owner adds: the owner adds
//! with a load and a plain store (no locked instruction, no line another core writes), which is
//! what makes these paths as cheap as a store. A slot handed to a new thread carries the old
//! owner's counts on (they only ever grow); the registry's mutex orders the old owner's last
//! store before the new owner's first load.
//!
//! The table is allocated on a breaker's first striped write, with one entry per expected
//! thread: `2 * available_parallelism`, rounded up to a power of two, at least 8 (one chunk)
//! and at most [`MAX_STRIPES`] (16 B each, in 128 B chunks of 8 that share no line with other
//! data). An entry's line (128 B) is allocated when its thread first writes, so a breaker grows
//! by one line per thread that uses it, never more. A thread whose slot is past the table (more
//! threads than that use the breaker), or that is exiting, takes the shared path instead: the
//! window's CAS for a success, a `fetch_add` on one shared word for a rejection. Both paths are
//! exact.
//!
//! Under loom (`--cfg breakerbox_loom`) no thread has a slot (the registry uses std's
//! thread-locals, which the models do not see) and every write takes the shared path; the
//! window models pass stripes explicitly ([`Stripes::fixed`], [`Stripes::at`]).

use crate::sync::{atomic_u64, AtomicU64, Ordering};
use crossbeam_utils::CachePadded;

/// Most stripes (cache lines) a breaker's table has.
pub(crate) const MAX_STRIPES: usize = 64;

/// One thread's line in one breaker.
pub(crate) struct Stripe {
    /// `[tag:16][count]`: successes the owner recorded for generation `tag` (see
    /// `window::count`). Written by the owner only (load + store).
    pub(crate) successes: AtomicU64,
    /// `[tag:16][count]`: how many of `successes` have been taken into the window, moved
    /// forward by any thread with a CAS (so each success is taken exactly once).
    pub(crate) merged: AtomicU64,
    /// Time window: calls recorded through this stripe (monotonic; see `window::time`).
    /// Written by the owner only.
    calls: AtomicU64,
    /// Rejections counted through this stripe. Written by the owner only.
    rejected: AtomicU64,
}

impl Stripe {
    fn new() -> Self {
        Stripe {
            successes: atomic_u64(0),
            merged: atomic_u64(0),
            calls: atomic_u64(0),
            rejected: atomic_u64(0),
        }
    }

    /// The owner: one more call in the time window's total.
    #[inline(always)]
    pub(crate) fn add_call(&self) {
        // The time window's readers sum this word as a statistic of totals (`window::time`): a
        // reader that happens after this add sees it by coherence, and one racing it may miss
        // it, which the window's documented approximation (a call in flight at a bucket
        // snapshot may count in the neighbouring bucket) already covers.
        add_owned(&self.calls);
    }
}

/// Adds one to a word only the calling thread writes (module doc): a load and a store, no
/// read-modify-write, since nothing can come between the two. Relaxed: the count publishes no
/// other memory, and a reader summing it needs no edge from it.
#[inline(always)]
fn add_owned(word: &AtomicU64) {
    let n = word.load(Ordering::Relaxed);
    word.store(n.wrapping_add(1), Ordering::Relaxed);
}

/// A breaker's stripe table and its shared fallback counter, on one line of their own: the
/// table's pointer is read by every striped call, the counter written only by threads without
/// a stripe (more threads than stripes, or exiting ones).
pub(crate) struct Stripes(CachePadded<Line>);

/// One slot of the table: the slot's line, allocated when its thread first writes.
type Cell = std::sync::OnceLock<Box<CachePadded<Stripe>>>;

/// Table entries per cache-line-aligned chunk (8 x 16 B = 128 B).
const CHUNK: usize = 8;

/// A chunk of entries, alone on its line: every striped call reads its entry, so no other
/// allocation may share the line and write it.
type Chunk = CachePadded<[Cell; CHUNK]>;

struct Line {
    table: std::sync::OnceLock<Box<[Chunk]>>,
    /// Rejections of threads without a stripe.
    rejected_shared: AtomicU64,
}

/// Table entries per breaker (module doc), computed once per process.
fn table_len() -> usize {
    static LEN: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LEN.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(4, |n| n.get())
            .saturating_mul(2)
            .next_power_of_two()
            .clamp(CHUNK, MAX_STRIPES)
    })
}

impl Stripes {
    pub(crate) fn new() -> Self {
        Stripes(CachePadded::new(Line {
            table: std::sync::OnceLock::new(),
            rejected_shared: atomic_u64(0),
        }))
    }

    /// A table of `n` stripes from the start, for models and tests that pick stripes by hand.
    #[cfg(any(test, breakerbox_loom))]
    pub(crate) fn fixed(n: usize) -> Self {
        let s = Stripes::new();
        let table = s.allocate(n);
        for i in 0..n {
            Self::line(&table[i / CHUNK][i % CHUNK]);
        }
        s
    }

    /// Stripe `i` of a [`fixed`](Self::fixed) table.
    #[cfg(any(test, breakerbox_loom))]
    pub(crate) fn at(&self, i: usize) -> &Stripe {
        self.0
            .table
            .get()
            .and_then(|t| t[i / CHUNK][i % CHUNK].get())
            .expect("a fixed table")
    }

    /// The calling thread's stripe, allocating the table and the line on first use; `None`
    /// when the thread has no slot or its slot is past the table.
    #[inline(always)]
    pub(crate) fn mine(&self) -> Option<&Stripe> {
        let i = slot::current()?;
        let table = match self.0.table.get() {
            Some(t) => t,
            None => self.allocate(table_len()),
        };
        let cell = table.get(i / CHUNK)?.get(i % CHUNK)?;
        Some(match cell.get() {
            Some(s) => s,
            None => Self::line(cell),
        })
    }

    /// The table, with `n` entries (rounded up to whole chunks) if this call allocates it.
    #[cold]
    fn allocate(&self, n: usize) -> &[Chunk] {
        self.0.table.get_or_init(|| {
            (0..n.div_ceil(CHUNK))
                .map(|_| CachePadded::new(std::array::from_fn(|_| Cell::new())))
                .collect()
        })
    }

    #[cold]
    fn line(cell: &Cell) -> &Stripe {
        cell.get_or_init(|| Box::new(CachePadded::new(Stripe::new())))
    }

    /// Every stripe allocated so far.
    #[inline]
    pub(crate) fn all(&self) -> impl Iterator<Item = &Stripe> {
        self.0
            .table
            .get()
            .map_or(&[][..], |t| t)
            .iter()
            .flat_map(|chunk| chunk.iter())
            .filter_map(|c| c.get().map(|s| &***s))
    }

    /// Counts one rejection.
    #[inline(always)]
    pub(crate) fn add_rejected(&self) {
        match self.mine() {
            Some(s) => add_owned(&s.rejected),
            // Relaxed: a statistic; it publishes no other memory.
            None => _ = self.0.rejected_shared.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Rejections so far. Increments racing the read may or may not be included; each is
    /// included by every read that starts after it returned (or after anything that happened
    /// after it).
    pub(crate) fn rejected(&self) -> u64 {
        // Relaxed: a statistic. Coherence alone makes each word's value at least the last one
        // written before this read in happens-before order.
        let shared = self.0.rejected_shared.load(Ordering::Relaxed);
        self.all().fold(shared, |sum, s| {
            sum.wrapping_add(s.rejected.load(Ordering::Relaxed))
        })
    }

    /// The time window's calls counted in the stripes.
    #[inline]
    pub(crate) fn calls(&self) -> u64 {
        // Relaxed: see `Stripe::add_call`.
        self.all().fold(0u64, |sum, s| {
            sum.wrapping_add(s.calls.load(Ordering::Relaxed))
        })
    }

    /// Heap bytes (the table and the lines allocated so far).
    pub(crate) fn heap_bytes(&self) -> usize {
        let table = self
            .0
            .table
            .get()
            .map_or(0, |t| std::mem::size_of_val(&**t));
        table + self.all().count() * std::mem::size_of::<CachePadded<Stripe>>()
    }
}

/// The process-wide slot registry (module doc).
#[cfg(not(breakerbox_loom))]
mod slot {
    use std::cell::Cell;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    use std::sync::{Mutex, PoisonError};

    /// `SLOT` of a thread that has not asked yet.
    const UNASSIGNED: u32 = u32::MAX;
    /// `SLOT` of a thread that is exiting (or could not register): no stripe from now on.
    const NONE: u32 = u32::MAX - 1;

    struct Registry {
        next: u32,
        free: BinaryHeap<Reverse<u32>>,
    }

    static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
        next: 0,
        free: BinaryHeap::new(),
    });

    thread_local! {
        // No destructor: readable for the thread's whole life, also from other destructors.
        static SLOT: Cell<u32> = const { Cell::new(UNASSIGNED) };
        // Its destructor gives the slot back when the thread exits.
        static GUARD: Guard = const { Guard };
    }

    struct Guard;

    impl Drop for Guard {
        fn drop(&mut self) {
            let s = SLOT.with(|c| c.replace(NONE));
            if s < NONE {
                // The mutex orders this thread's last stripe writes (before this point) before
                // the next owner's first, which takes the slot under the same mutex.
                let mut r = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
                r.free.push(Reverse(s));
            }
        }
    }

    /// The calling thread's slot, if it has one.
    #[inline(always)]
    pub(super) fn current() -> Option<usize> {
        match SLOT.with(Cell::get) {
            UNASSIGNED => assign(),
            NONE => None,
            s => Some(s as usize),
        }
    }

    #[cold]
    fn assign() -> Option<usize> {
        // Registering the guard fails once the thread's destructors have started: no slot then.
        if GUARD.try_with(|_| ()).is_err() {
            SLOT.with(|c| c.set(NONE));
            return None;
        }
        let s = {
            let mut r = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
            match r.free.pop() {
                Some(Reverse(s)) => s,
                None if r.next < NONE => {
                    r.next += 1;
                    r.next - 1
                }
                None => NONE,
            }
        };
        SLOT.with(|c| c.set(s));
        (s < NONE).then_some(s as usize)
    }
}

/// Under loom no thread has a slot (module doc).
#[cfg(breakerbox_loom)]
mod slot {
    #[inline(always)]
    pub(super) fn current() -> Option<usize> {
        None
    }
}

#[cfg(all(test, not(breakerbox_loom)))]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    #[test]
    fn one_thread_counts_in_its_own_stripe() {
        let s = Stripes::new();
        assert_eq!(s.heap_bytes(), 0);
        for _ in 0..10_000 {
            s.add_rejected();
        }
        assert_eq!(s.rejected(), 10_000);
        assert!(s.heap_bytes() > 0);
        assert!(s.heap_bytes() <= MAX_STRIPES * std::mem::size_of::<CachePadded<Stripe>>());
    }

    #[test]
    fn racing_totals_are_exact() {
        let s = Arc::new(Stripes::new());
        // More threads than most tables have stripes: some take the shared path.
        let threads = 12;
        // Miri interprets every step: fewer rounds there, still racing.
        let per = if cfg!(miri) { 100 } else { 100_000 };
        let barrier = Arc::new(Barrier::new(threads));
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let (s, barrier) = (s.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..per {
                        s.add_rejected();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(s.rejected(), (threads * per) as u64);
    }

    #[test]
    fn live_threads_hold_distinct_slots() {
        let threads = 8;
        let barrier = Arc::new(Barrier::new(threads));
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let s = slot::current().unwrap();
                    barrier.wait(); // all alive at once
                    s
                })
            })
            .collect();
        let mut slots: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), threads);
    }
}
