//! Event listeners: state transitions, rejections, outcomes.
//!
//! Listeners are kept in an [`arc_swap::ArcSwap`] list and guarded by a flag: when none is
//! registered, emitting an event costs one relaxed load of that flag and builds nothing.
//! Listeners run synchronously on the thread that caused the event (the caller of `try_acquire`
//! or of a permit's outcome), so they should be quick: count, log, or hand off to a channel.
//!
//! A listener runs only after the state change it reports is complete (the CAS is done and any
//! trial slot is already owned by the caller's ticket), and a listener that panics is caught:
//! the panic is counted ([`Metrics::listener_panics`](crate::Metrics::listener_panics)), the
//! remaining listeners still run, and the breaker carries on. A listener can therefore never
//! change what the state machine does. (The panic hook still prints the panic as usual.)

use crate::policy::TripReason;
use crate::state::State;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How a call ended, as reported by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The call succeeded.
    Success,
    /// The call failed and counts against the dependency.
    Failure,
    /// The call's result says nothing about the dependency's health (a 404, a validation
    /// error); it is not recorded, and a half-open permit is given back.
    Ignore,
    /// The call failed, and its result says the dependency will not recover soon (resilience4j's
    /// `transitionOnResult` to OPEN): the failure is recorded, and a breaker still CLOSED or
    /// HALF-OPEN in the call's generation opens at once
    /// ([`TripReason::Classified`](crate::TripReason::Classified)). Events report it as a
    /// failure; a late one (the breaker moved on) changes nothing.
    Trip,
}

/// Why the breaker changed state.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum TransitionReason {
    /// A trip rule fired while CLOSED, or a call's result was classified as
    /// [`Outcome::Trip`] (CLOSED or HALF-OPEN: [`TripReason::Classified`]).
    Tripped(TripReason),
    /// The open wait elapsed and a caller asked for a permit.
    OpenWaitElapsed,
    /// Enough trial calls succeeded.
    TrialsSucceeded {
        /// Trial successes counted.
        successes: u32,
    },
    /// A trial call failed (or was slow, when the slow-call rule is on).
    TrialFailed {
        /// Whether the trial counted as a failure because it was slow.
        slow: bool,
    },
    /// HALF-OPEN stayed full for longer than
    /// [`max_half_open_wait`](crate::Config::max_half_open_wait) (trial calls leaked or hung);
    /// the breaker re-opened at the next backoff step.
    HalfOpenTimedOut,
    /// [`CircuitBreaker::force_open`](crate::CircuitBreaker::force_open).
    ForcedOpen,
    /// [`CircuitBreaker::disable`](crate::CircuitBreaker::disable).
    Disabled,
    /// [`CircuitBreaker::metrics_only`](crate::CircuitBreaker::metrics_only).
    MetricsOnly,
    /// [`CircuitBreaker::reset`](crate::CircuitBreaker::reset).
    Reset,
    /// A manual transition: [`transition_to_open_for`
    /// ](crate::CircuitBreaker::transition_to_open_for) (and `_until`),
    /// [`transition_to_half_open`](crate::CircuitBreaker::transition_to_half_open),
    /// [`transition_to_closed`](crate::CircuitBreaker::transition_to_closed).
    Manual,
    /// HALF-OPEN decided by rate ([`HalfOpenDecision::Rate`](crate::HalfOpenDecision)): the
    /// permitted trials' failure or slow-call rate reached its threshold.
    TrialRate(TripReason),
}

impl std::fmt::Display for TransitionReason {
    /// Human-readable, rates as percentages: `tripped: failure rate 76% >= 50% over 29 calls`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransitionReason::Tripped(r) => write!(f, "tripped: {r}"),
            TransitionReason::OpenWaitElapsed => f.write_str("open wait elapsed"),
            TransitionReason::TrialsSucceeded { successes: 1 } => {
                f.write_str("1 trial call succeeded")
            }
            TransitionReason::TrialsSucceeded { successes } => {
                write!(f, "{successes} trial calls succeeded")
            }
            TransitionReason::TrialFailed { slow: false } => f.write_str("a trial call failed"),
            TransitionReason::TrialFailed { slow: true } => f.write_str("a trial call was slow"),
            TransitionReason::HalfOpenTimedOut => {
                f.write_str("half-open full for longer than max_half_open_wait")
            }
            TransitionReason::ForcedOpen => f.write_str("forced open"),
            TransitionReason::Disabled => f.write_str("disabled"),
            TransitionReason::MetricsOnly => f.write_str("metrics only"),
            TransitionReason::Reset => f.write_str("reset"),
            TransitionReason::Manual => f.write_str("manual transition"),
            TransitionReason::TrialRate(r) => write!(f, "trial calls: {r}"),
        }
    }
}

/// A state change.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// Why.
    pub reason: TransitionReason,
    /// The generation of the new state.
    pub generation: u32,
    /// OPEN: how long the breaker will wait before trial calls.
    pub open_wait: Option<Duration>,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// The breaker changed state.
    Transition(Transition),
    /// A call was rejected.
    Rejected {
        /// The state that rejected it.
        state: State,
        /// When trial calls may next be admitted, if known.
        retry_after: Option<Duration>,
    },
    /// A call's outcome was recorded.
    Recorded {
        /// The outcome.
        outcome: Outcome,
        /// Whether the call was slow.
        slow: bool,
    },
    /// An outcome arrived for a call admitted in an earlier generation and was ignored.
    Late {
        /// The outcome that came late.
        outcome: Outcome,
    },
    /// An admitted call reported [`Outcome::Ignore`]: not recorded (a half-open permit is
    /// given back).
    Ignored,
    /// A rate rule reached its threshold (resilience4j's failure-rate-exceeded and
    /// slow-call-rate-exceeded events), with the rate in the [`TripReason`]. Emitted before
    /// the transition it causes: when a CLOSED window trips, when trial calls decide by rate,
    /// and while METRICS_ONLY (which never trips) once per generation for each rate (as
    /// resilience4j, which keeps one flag per rate).
    RateExceeded(TripReason),
}

/// An event, with the name of the breaker it came from.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    /// The breaker's name.
    pub breaker: &'a str,
    /// What happened.
    pub kind: EventKind,
}

/// A listener: any `Fn(&Event)` that is `Send + Sync`.
pub type Listener = Arc<dyn Fn(&Event<'_>) + Send + Sync>;

#[cfg(not(breakerbox_loom))]
type List = arc_swap::ArcSwap<Vec<Listener>>;
// arc-swap keeps per-thread state that loom's simulated threads would share; the loom build
// uses a lock instead (listeners are registered before the modelled threads start).
#[cfg(breakerbox_loom)]
type List = std::sync::RwLock<Arc<Vec<Listener>>>;

pub(crate) struct Listeners {
    /// Whether any listener is registered. Relaxed everywhere: a listener registered
    /// concurrently with an event may or may not see it, which is the contract.
    any: AtomicBool,
    list: List,
    /// Listener calls that panicked (caught).
    panics: std::sync::atomic::AtomicU64,
}

impl Listeners {
    pub(crate) fn new() -> Self {
        Listeners {
            any: AtomicBool::new(false),
            list: List::new(Arc::new(Vec::new())),
            panics: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub(crate) fn add(&self, l: Listener) {
        #[cfg(not(breakerbox_loom))]
        self.list.rcu(|cur| {
            let mut v = Vec::clone(cur);
            v.push(l.clone());
            v
        });
        #[cfg(breakerbox_loom)]
        {
            let mut g = self.list.write().unwrap_or_else(|e| e.into_inner());
            let mut v = Vec::clone(&g);
            v.push(l);
            *g = Arc::new(v);
        }
        // Relaxed: see `any` (a listener added concurrently with an event may miss it).
        self.any.store(true, Ordering::Relaxed);
    }

    pub(crate) fn clear(&self) {
        // Relaxed: see `any`.
        self.any.store(false, Ordering::Relaxed);
        #[cfg(not(breakerbox_loom))]
        self.list.store(Arc::new(Vec::new()));
        #[cfg(breakerbox_loom)]
        {
            *self.list.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Vec::new());
        }
    }

    #[inline]
    pub(crate) fn active(&self) -> bool {
        // Relaxed: see `any`; the list itself is read through arc-swap, which orders it.
        self.any.load(Ordering::Relaxed)
    }

    /// Calls every listener with the event `make` builds; builds nothing when none is set.
    #[inline]
    pub(crate) fn emit(&self, breaker: &str, make: impl FnOnce() -> EventKind) {
        if self.active() {
            self.emit_slow(breaker, make());
        }
    }

    #[cold]
    fn emit_slow(&self, breaker: &str, kind: EventKind) {
        let event = Event { breaker, kind };
        #[cfg(not(breakerbox_loom))]
        let list = self.list.load_full();
        #[cfg(breakerbox_loom)]
        let list = Arc::clone(&self.list.read().unwrap_or_else(|e| e.into_inner()));
        for l in list.iter() {
            // AssertUnwindSafe: the listener sees only the event (a `Copy` value); no breaker
            // state is borrowed across the call, so a panic cannot leave any half-updated.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l(&event))).is_err() {
                // Relaxed: a statistic.
                self.panics.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Listener calls that panicked so far.
    pub(crate) fn panics(&self) -> u64 {
        // Relaxed: a statistic.
        self.panics.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_sentences_with_percentages() {
        let r = TransitionReason::Tripped(TripReason::FailureRate {
            rate: 0.7586206896551724,
            threshold: 0.5,
            calls: 29,
            failures: 22,
        });
        assert_eq!(
            r.to_string(),
            "tripped: failure rate 76% >= 50% over 29 calls"
        );
        assert_eq!(
            TransitionReason::TrialsSucceeded { successes: 3 }.to_string(),
            "3 trial calls succeeded"
        );
        assert_eq!(
            TransitionReason::TrialsSucceeded { successes: 1 }.to_string(),
            "1 trial call succeeded"
        );
        let one = TripReason::FailureRate {
            rate: 1.0,
            threshold: 0.5,
            calls: 1,
            failures: 1,
        };
        assert_eq!(one.to_string(), "failure rate 100% >= 50% over 1 call");
        let streak = TripReason::ConsecutiveFailures { count: 1 };
        assert_eq!(streak.to_string(), "1 failure");
    }
}
