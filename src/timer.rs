//! The automatic OPEN -> HALF-OPEN timer ([`Config::automatic_half_open`](crate::Config)).
//!
//! One background thread for the whole process, started by the first breaker that needs it.
//! Each shared breaker with the option has a process-unique id ([`Handle`]); the timer holds at
//! most one entry per id, `(when, generation, weak reference)`, in a map by id plus an index
//! ordered by `(when, id)`, under a mutex. A breaker schedules itself on every transition to
//! OPEN, and to HALF-OPEN for the end of `max_half_open_wait` (a transition, never a call: the
//! hot path does not know the timer exists), which replaces its entry; a transition out of
//! OPEN or HALF-OPEN removes it; dropping the breaker removes it
//! too, so the weak reference goes with it and the breaker's memory is freed at once. The
//! timer's memory is therefore proportional to the OPEN and HALF-OPEN breakers waiting on it.
//!
//! Of two racing schedules of one breaker the newer generation wins whatever the order they
//! take the lock in, and a transition out of OPEN removes only an entry of its own generation
//! or an older one: a thread that lost the lock to a newer transition cannot remove the
//! newer transition's entry.
//!
//! When an entry is due the thread asks the breaker to make the transition if the open wait
//! has ended *in the breaker's own clock* (the same check as
//! [`CircuitBreaker::half_open_if_due`](crate::CircuitBreaker::half_open_if_due)); if it has
//! not (a coarse or manual clock behind real time), the entry is put back for the time left.
//! The thread makes the transition itself (a CAS and bookkeeping that never block) but does not
//! call the breaker's listeners: it hands the transition event to a small pool of event
//! threads ([`submit`]), so that a slow or blocking listener delays only its own breaker's
//! events, never another breaker's transition. The pool grows by one thread whenever a job
//! finds no idle thread to take it, and a thread idle for a few seconds exits (one stays).
//! Events of transitions made on callers' threads are emitted there, after the CAS, as always.
//!
//! The timer never holds its lock while it calls a breaker or drops one: the last handle of a
//! breaker may be dropped on the timer's thread (or an event thread), and dropping it takes
//! the lock to remove the breaker's entry. The timer thread never exits (it sleeps on a
//! condition variable while no breaker is waiting).

use crate::events::Transition;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

/// What the timer thread calls: a breaker, type-erased over its clock.
pub(crate) trait Due: Send + Sync {
    /// If the breaker is still OPEN in generation `gen`: makes the transition when the wait
    /// has ended, without calling listeners, or says how long is left. If it is HALF-OPEN in
    /// `gen`: the same for a full period past `max_half_open_wait`.
    fn fire(&self, gen: u32) -> Fired;
    /// Emits the event of a transition [`fire`](Due::fire) made (listeners, tracing).
    fn emit(&self, t: Transition);
    /// Whether the breaker is OPEN or HALF-OPEN (the states the timer serves) in generation
    /// `gen`.
    fn open_in(&self, gen: u32) -> bool;
}

/// What [`Due::fire`] did.
pub(crate) enum Fired {
    /// Nothing more to do (the generation has passed, or the transition was made and nobody
    /// listens).
    Done,
    /// The wait has not ended: look again after this long.
    Later(Duration),
    /// The transition was made; its event is still to be emitted.
    Emit(Transition),
}

/// A shared breaker's place in the timer: its id, and the weak reference entries carry.
/// Dropping it (with the breaker) removes the breaker's entry.
pub(crate) struct Handle {
    id: u64,
    target: Weak<dyn Due>,
}

impl Handle {
    pub(crate) fn new(target: Weak<dyn Due>) -> Handle {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        // Relaxed: the ids need only be unique, which the atomic read-modify-write gives on
        // its own; no other memory is published through the counter.
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        Handle { id, target }
    }

    /// Asks the timer thread to fire the breaker for OPEN generation `gen` after `wait` (at
    /// least 1 ms, the coarse clock's granularity), replacing its entry unless that is of a
    /// newer generation. Starts the thread on first use; if the thread cannot be started the
    /// breaker still works (the first caller after the wait makes the transition).
    pub(crate) fn schedule(&self, gen: u32, wait: Duration) {
        schedule(self.id, gen, wait, &self.target);
    }

    /// The breaker left OPEN generation `gen`: removes its entry if it is of that generation
    /// or an older one.
    pub(crate) fn left_open(&self, gen: u32) {
        remove(self.id, Some(gen));
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        remove(self.id, None);
    }
}

/// Whether generation `a` is newer than `b`, generations counting modulo 2^GEN_BITS (a racing
/// thread is never half the generation space behind).
fn newer(a: u32, b: u32) -> bool {
    const MASK: u32 = (1 << crate::state::GEN_BITS) - 1;
    let d = a.wrapping_sub(b) & MASK;
    d != 0 && d <= MASK / 2
}

struct Entry {
    at: Instant,
    gen: u32,
    target: Weak<dyn Due>,
}

#[derive(Default)]
struct Queue {
    /// The one entry of each waiting breaker, by id.
    entries: BTreeMap<u64, Entry>,
    /// The same entries in firing order.
    order: BTreeSet<(Instant, u64)>,
    started: bool,
}

impl Queue {
    fn take(&mut self, id: u64) -> Option<Entry> {
        let e = self.entries.remove(&id)?;
        self.order.remove(&(e.at, id));
        Some(e)
    }
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
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Every update of the queue completes under the lock without calling out (the map and
        // the index are updated together), so a poisoned lock still guards a consistent queue.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self) {
        let mut q = self.lock();
        loop {
            let now = Instant::now();
            match q.order.first().copied() {
                None => q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner()),
                Some((at, _)) if at > now => {
                    q = self
                        .wake
                        .wait_timeout(q, at - now)
                        .map_or_else(|e| e.into_inner().0, |r| r.0);
                }
                Some((_, id)) => {
                    let e = q.take(id);
                    // The breaker is called, and the entry's weak reference dropped, without
                    // the lock held (see the module doc).
                    drop(q);
                    if let Some(e) = e {
                        fire(id, e);
                    }
                    q = self.lock();
                }
            }
        }
    }
}

/// Fires entry `e` of breaker `id` (the timer thread, lock not held).
fn fire(id: u64, e: Entry) {
    let Some(target) = e.target.upgrade() else {
        return;
    };
    // A panic cannot come from the state machine; this guard keeps the thread alive whatever
    // happens.
    let fired = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target.fire(e.gen)));
    match fired {
        Ok(Fired::Later(left)) => {
            schedule(id, e.gen, left, &e.target);
            // A thread that made the breaker leave OPEN after `fire` looked may have removed
            // the entry before it was put back: then the breaker is seen out of OPEN here (its
            // CAS came before its removal, which came before our lock), and the entry goes.
            if !target.open_in(e.gen) {
                remove(id, Some(e.gen));
            }
        }
        Ok(Fired::Emit(t)) => submit(Box::new(move || target.emit(t))),
        Ok(Fired::Done) | Err(_) => {}
    }
    // `target`, if still here, is dropped now: possibly the breaker's last handle, whose drop
    // takes the lock (not held here).
}

fn schedule(id: u64, gen: u32, wait: Duration, target: &Weak<dyn Due>) {
    let t = timer();
    let mut q = t.lock();
    if !q.started {
        q.started = std::thread::Builder::new()
            .name("breakerbox-timer".into())
            .spawn(|| timer().run())
            .is_ok();
    }
    if q.entries.get(&id).is_some_and(|e| newer(e.gen, gen)) {
        return;
    }
    let old = q.take(id);
    let at = Instant::now() + wait.max(Duration::from_millis(1));
    q.entries.insert(
        id,
        Entry {
            at,
            gen,
            target: target.clone(),
        },
    );
    q.order.insert((at, id));
    drop(q);
    drop(old);
    t.wake.notify_one();
}

/// Removes breaker `id`'s entry: any (`None`), or one of generation `gen` or older.
fn remove(id: u64, gen: Option<u32>) {
    let mut q = timer().lock();
    let stale = match (q.entries.get(&id), gen) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(e), Some(gen)) => !newer(e.gen, gen),
    };
    let old = if stale { q.take(id) } else { None };
    // The entry's weak reference is dropped after the lock (it never frees the breaker itself:
    // a live breaker, or one being dropped, still holds the allocation).
    drop(q);
    drop(old);
}

// ----- the event threads ------------------------------------------------------------------

type Job = Box<dyn FnOnce() + Send>;

/// How long an event thread beyond the first waits for work before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct PoolState {
    jobs: VecDeque<Job>,
    /// Threads waiting for a job.
    idle: usize,
    /// Threads alive.
    threads: usize,
}

struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(PoolState::default()),
        work: Condvar::new(),
    })
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // Updates complete under the lock and no job runs under it: a poisoned lock still
        // guards a consistent queue.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn work(&self) {
        let mut s = self.lock();
        loop {
            if let Some(job) = s.jobs.pop_front() {
                drop(s);
                // A listener's panic is caught where it is called; this guard keeps the thread
                // whatever else happens. The job (and the breaker handle in it) is dropped
                // here, without the lock.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                s = self.lock();
                continue;
            }
            s.idle += 1;
            let (next, timeout) = self
                .work
                .wait_timeout(s, IDLE_EXIT)
                .unwrap_or_else(|e| e.into_inner());
            s = next;
            s.idle -= 1;
            if timeout.timed_out() && s.jobs.is_empty() && s.threads > 1 {
                s.threads -= 1;
                return;
            }
        }
    }
}

/// Runs `job` on an event thread: an idle one, or a new one when every thread is busy (a thread
/// blocked in a listener holds up no other job). If no thread can be started and none is
/// alive, the job runs here.
fn submit(job: Job) {
    let p = pool();
    let mut s = p.lock();
    s.jobs.push_back(job);
    if s.jobs.len() <= s.idle {
        drop(s);
        p.work.notify_one();
        return;
    }
    let started = std::thread::Builder::new()
        .name("breakerbox-events".into())
        .spawn(|| pool().work())
        .is_ok();
    if started {
        s.threads += 1;
        return;
    }
    let alone = if s.threads == 0 {
        s.jobs.pop_back()
    } else {
        None
    };
    drop(s);
    if let Some(job) = alone {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::newer;

    #[test]
    fn generations_compare_modulo_their_width() {
        let max = (1 << crate::state::GEN_BITS) - 1;
        assert!(newer(1, 0));
        assert!(!newer(0, 1));
        assert!(!newer(5, 5));
        assert!(newer(0, max));
        assert!(!newer(max, 0));
    }
}
