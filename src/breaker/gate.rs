//! The trial gate: an optional hook the core defines for fleet-wide caps on HALF-OPEN trials.
//! The core knows only two flags (open, demand); whatever drives them (fleet mode) lives
//! elsewhere. Checked on the trial paths only, never on a CLOSED call or an early rejection.

use super::*;

impl<C: Clock> CircuitBreaker<C> {
    /// Whether the trial gate (fleet mode) is installed and closed; a caller asking for a
    /// trial (`demand`) records that it wanted one, which is what makes whoever drives the gate
    /// (the fleet task) ask for a lease.
    #[cold]
    pub(super) fn gate_closed(&self, demand: bool) -> bool {
        let Some(g) = self.half_open_gate.get() else {
            return false;
        };
        if g.open.load(Ordering::SeqCst) {
            return false;
        }
        if demand {
            // Relaxed: a hint to the fleet task, which reads it on its next round.
            g.demand.store(true, Ordering::Relaxed);
        }
        true
    }

    /// After a trial permit was taken: whether the gate closed meanwhile. Together with the
    /// fleet task's `close`, this is Dekker's pattern: the caller's CAS (taking the trial), then
    /// a SeqCst fence, then a load of the gate; the task's store closing the gate, then a SeqCst
    /// fence, then a load of the state word. The two fences are totally ordered (any
    /// architecture), so at least one side sees the other: the caller sees the gate closed and
    /// gives the trial back, or the task sees the trial in flight and keeps its lease. A trial
    /// is never in flight without a lease behind it.
    #[inline]
    pub(super) fn gate_revoked(&self) -> bool {
        let Some(g) = self.half_open_gate.get() else {
            return false;
        };
        crate::sync::fence(Ordering::SeqCst);
        !g.open.load(Ordering::SeqCst)
    }

    /// Installs the trial gate (fleet mode); `false` if one is installed already.
    #[cfg_attr(not(any(feature = "redis", breakerbox_loom)), allow(dead_code))]
    pub(crate) fn set_half_open_gate(&self, gate: Arc<HalfOpenGate>) -> bool {
        self.half_open_gate.set(gate).is_ok()
    }

    /// OPEN and its wait has ended (whatever the gate says): for fleet mode's lease.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn open_wait_over(&self) -> bool {
        let w = self.state.load();
        w.is(State::Open) && w.remaining_ms(self.now_ms(), self.cap_ms()).is_none()
    }

    /// HALF-OPEN: trial calls in flight (0 in any other state). Acquire load of the state
    /// word: the task's side of the Dekker pattern in `gate_revoked` (after its fence).
    #[cfg_attr(not(any(feature = "redis", breakerbox_loom)), allow(dead_code))]
    pub(crate) fn trials_in_flight(&self) -> u32 {
        let w = self.state.load();
        if w.is(State::HalfOpen) {
            w.inflight_in(self.by_rate)
        } else {
            0
        }
    }
}

/// loom models of the trial gate (fleet mode's side of the breaker), beside the code.
#[cfg(breakerbox_loom)]
pub mod gate_models {
    use super::*;
    use crate::clock::ManualClock;
    use crate::sync::{fence, AtomicBool};
    use loom::thread;

    /// A caller takes the first trial of a HALF-OPEN period while the fleet task, holding the
    /// lease, gives it back unless a trial is in flight (close the gate, SeqCst fence, look at
    /// the state word). Whatever the interleaving, a caller that ends up holding a trial
    /// permit was seen by the task, which kept the lease.
    pub fn a_trial_never_runs_without_the_lease() {
        let clock = ManualClock::new();
        let b = Arc::new(
            CircuitBreaker::builder()
                .clock(clock.clone())
                .no_failure_rate()
                .consecutive_failures(1)
                .open_wait(Duration::from_secs(10))
                .build()
                .unwrap(),
        );
        let gate = Arc::new(HalfOpenGate {
            open: AtomicBool::new(true),
            demand: AtomicBool::new(false),
        });
        assert!(b.set_half_open_gate(gate.clone()));
        b.try_acquire().unwrap().failure();
        clock.advance(Duration::from_secs(10));
        let caller = {
            let b = b.clone();
            thread::spawn(move || b.try_acquire_owned().ok().filter(|p| p.is_trial()))
        };
        let task = {
            let b = b.clone();
            thread::spawn(move || {
                gate.open.store(false, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                b.trials_in_flight() > 0
            })
        };
        let trial = caller.join().unwrap();
        let kept = task.join().unwrap();
        assert!(
            trial.is_none() || kept,
            "a trial is in flight but the lease was given back"
        );
    }
}

/// The trial gate (see `half_open_gate`), driven from outside the core (by fleet mode): `open`
/// while trials may run here (the instance holds a fleet trial lease, or runs alone); `demand`
/// set by callers refused by the closed gate.
#[derive(Debug)]
pub(crate) struct HalfOpenGate {
    pub(crate) open: crate::sync::AtomicBool,
    pub(crate) demand: crate::sync::AtomicBool,
}

/// How soon the automatic timer looks again at an OPEN breaker held by its half-open gate.
pub(super) const GATE_RECHECK: Duration = Duration::from_millis(10);
