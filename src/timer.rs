//! The automatic OPEN -> HALF-OPEN timer ([`Config::automatic_half_open`](crate::Config)).
//!
//! One background thread for the whole process, started by the first breaker that needs it,
//! holding a min-heap of `(when, breaker, generation)` under a mutex. A breaker with the option
//! schedules itself on every transition to OPEN (a transition, never a call: the hot path does
//! not know the timer exists). When an entry is due the thread asks the breaker to make the
//! transition if the open wait has ended *in the breaker's own clock*
//! ([`CircuitBreaker::half_open_if_due`](crate::CircuitBreaker::half_open_if_due)); if it has
//! not (a coarse or manual clock behind real time), the entry is put back for the time left.
//! An entry whose generation has passed (a caller, a manual transition or a reset got there
//! first) is dropped, so the heap holds at most one live entry per OPEN breaker.
//!
//! The heap holds weak references: a dropped breaker's entries fall out when they come due.
//! The thread never exits (it sleeps on a condition variable while the heap is empty).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// What the timer thread calls: a breaker, type-erased over its clock.
pub(crate) trait Due: Send + Sync {
    /// If the breaker is still OPEN in generation `gen`: makes the transition when the wait
    /// has ended and returns `None`, or returns the time left. `None` too when the generation
    /// has passed.
    fn fire(&self, gen: u32) -> Option<Duration>;
}

struct Entry {
    at: Instant,
    seq: u64,
    gen: u32,
    target: Weak<dyn Due>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    started: bool,
    /// The heap length at which entries of dropped breakers are purged (amortised O(1) per
    /// push), so that breakers dropped while OPEN for long waits cannot grow the heap without
    /// bound before their entries come due.
    purge_at: usize,
}

struct Timer {
    queue: Mutex<Queue>,
    wake: Condvar,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<Timer> = OnceLock::new();
    TIMER.get_or_init(|| Timer {
        queue: Mutex::new(Queue::default()),
        wake: Condvar::new(),
    })
}

impl Timer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // Every update of the queue completes under the lock (a push or a pop), so a poisoned
        // lock still guards a consistent heap.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self) {
        let mut q = self.lock();
        loop {
            let now = Instant::now();
            match q.heap.peek() {
                None => q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner()),
                Some(Reverse(e)) if e.at > now => {
                    let d = e.at - now;
                    q = self
                        .wake
                        .wait_timeout(q, d)
                        .map_or_else(|e| e.into_inner().0, |r| r.0);
                }
                Some(_) => {
                    let Some(Reverse(e)) = q.heap.pop() else {
                        continue;
                    };
                    // The breaker is called without the lock held: its listeners may do
                    // anything, including schedule.
                    drop(q);
                    if let Some(target) = e.target.upgrade() {
                        // A panic cannot come from the state machine (listeners are caught
                        // there); this guard keeps the thread alive whatever happens.
                        let left = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            target.fire(e.gen)
                        }));
                        if let Ok(Some(left)) = left {
                            schedule(left, e.gen, e.target);
                        }
                    }
                    q = self.lock();
                }
            }
        }
    }
}

/// Asks the timer thread to fire `target` for OPEN generation `gen` after `wait` (at least
/// 1 ms, the coarse clock's granularity). Starts the thread on first use; if the thread cannot
/// be started the breaker still works (the first caller after the wait makes the transition).
pub(crate) fn schedule(wait: Duration, gen: u32, target: Weak<dyn Due>) {
    let t = timer();
    let mut q = t.lock();
    if !q.started {
        q.started = std::thread::Builder::new()
            .name("breakerbox-timer".into())
            .spawn(|| timer().run())
            .is_ok();
    }
    if q.heap.len() >= q.purge_at {
        q.heap.retain(|Reverse(e)| e.target.strong_count() > 0);
        q.purge_at = (2 * q.heap.len()).max(64);
    }
    q.seq = q.seq.wrapping_add(1);
    let seq = q.seq;
    q.heap.push(Reverse(Entry {
        at: Instant::now() + wait.max(Duration::from_millis(1)),
        seq,
        gen,
        target,
    }));
    drop(q);
    t.wake.notify_one();
}
