//! The public handle: the `CircuitBreaker` type, its construction and the helpers every part
//! of it shares.
//!
//! Thin by design: admission and every state change go through [`StateCell`] (the packed word),
//! outcomes of CLOSED calls through the [`Window`], trip decisions through [`TripRules`]. The
//! sync `call`, the async `call_async`, permits and the tower layer all use the same two
//! functions, `acquire_ticket` and `complete`; no state-machine logic is written twice.
//!
//! One file per job:
//! - `builder.rs`: the `Builder`, which validates a `Config` and builds the breaker;
//! - `admission.rs`: `try_acquire` and the CAS loop behind it (`acquire_ticket`);
//! - `outcome.rs`: `complete`, recording into the window or the trial counts, and trips;
//! - `transition.rs`: the side effects of every transition, manual control, the timer's hooks;
//! - `gate.rs`: the optional trial gate (the hook fleet mode drives) and its loom model;
//! - `call.rs`: the `call` and `call_async` wrappers;
//! - `observe.rs`: state, metrics and listeners.

use crate::clock::Clock;
use crate::config::{Config, HalfOpenDecision, WindowConfig};
use crate::error::{CallError, InvalidOpenWait, Rejected};
use crate::events::{EventKind, Listener, Listeners, Outcome, Transition, TransitionReason};
use crate::metrics::{bump, new_totals, read, Metrics, Totals};
use crate::permit::{Kind, OwnedPermit, Permit, Ticket, START_MASK};
use crate::policy::TripRules;
use crate::state::{wait_ms, State, StateCell, Word, MAX_OPEN_WAIT};
use crate::sync::{atomic_u64, AtomicU64, Ordering};
use crate::window::{CountWindow, Recorded, Streak, Tag, TimeWindow, Window, FAILED, SLOW};
use crossbeam_utils::CachePadded;
use std::future::Future;
use std::sync::atomic::{AtomicU32 as StdAtomicU32, AtomicU64 as StdAtomicU64};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod admission;
mod builder;
mod call;
mod gate;
mod observe;
mod outcome;
mod transition;

pub use builder::Builder;
#[cfg(breakerbox_loom)]
pub use gate::gate_models;
pub(crate) use gate::HalfOpenGate;
use gate::GATE_RECHECK;

#[cfg(not(breakerbox_loom))]
/// The clock a breaker uses unless told otherwise.
pub type DefaultClock = crate::clock::QuantaClock;
#[cfg(breakerbox_loom)]
/// The clock a breaker uses unless told otherwise (the manual clock under loom).
pub type DefaultClock = crate::clock::ManualClock;

/// A circuit breaker. Share it by reference or in an `Arc`; every method takes `&self`.
///
/// ```
/// use breakerbox::{CallError, CircuitBreaker, ManualClock, State};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let breaker = CircuitBreaker::builder()
///     .consecutive_failures(3)
///     .open_wait(Duration::from_secs(10))
///     .clock(clock.clone())
///     .build()
///     .unwrap();
///
/// for _ in 0..3 {
///     let r: Result<(), CallError<&str>> = breaker.call(|| Err("boom"));
///     assert!(matches!(r, Err(CallError::Failed("boom"))));
/// }
/// assert_eq!(breaker.state(), State::Open);
/// let rejected = breaker.try_acquire().unwrap_err();
/// assert_eq!(rejected.retry_after(), Some(Duration::from_secs(10)));
///
/// clock.advance(Duration::from_secs(10));
/// breaker.call(|| Ok::<_, ()>(())).unwrap(); // the trial call closes it
/// assert_eq!(breaker.state(), State::Closed);
/// ```
pub struct CircuitBreaker<C: Clock = DefaultClock> {
    state: StateCell,
    window: Window,
    streak: Option<Streak>,
    /// Per-thread stripes: the rejection counter and the count window's successes
    /// (`crate::stripes`), so neither writes a line other threads write.
    stripes: crate::stripes::Stripes,
    totals: CachePadded<Totals>,
    /// `[generation:21][ms:43]`: when the current HALF-OPEN generation was first seen (by the
    /// caller that opened it, or the first rejected caller to find no stamp for it).
    half_open_since: AtomicU64,
    /// The highest `calls` any metrics snapshot has reported, so that it never goes backwards.
    reported: AtomicU64,
    /// The longest open wait this breaker can have set, in ms (the state word's deadline
    /// horizon, see `state`): the configuration's longest, raised by manual opens. A std
    /// atomic even under loom: the models make no manual transitions, so it is constant there.
    open_cap_ms: StdAtomicU64,
    /// The lifetime `rejected` count when the current state began (for the per-state figure).
    rejected_mark: StdAtomicU64,
    /// Per rate (failure, slow): `generation + 1` of the last METRICS_ONLY generation that
    /// emitted `RateExceeded` for it.
    exceeded_gen: [StdAtomicU32; 2],
    /// HALF-OPEN is decided by rate (the word's rate layout) rather than by the first failure.
    by_rate: bool,
    /// The automatic OPEN -> HALF-OPEN timer's handle on this breaker, when the option is on
    /// and the breaker is shared (`share`). Dropping it (with the breaker) removes the
    /// breaker's entry from the timer.
    #[cfg(not(breakerbox_loom))]
    auto: std::sync::OnceLock<crate::timer::Handle>,
    /// The longest a HALF-OPEN generation may stay full before the next caller re-opens
    /// ([`NO_LIMIT`]: forever).
    max_half_open_ms: u64,
    rules: TripRules,
    /// Slow-call threshold in µs (at least 1); 0 when the slow-call rule is off.
    slow_us: u64,
    /// Whether recording needs the clock (slow calls or a time window).
    record_needs_clock: bool,
    /// The count window evaluates the rates at this record of a generation (the minimum
    /// calls), or never (0) when no rate rule is on.
    probe: u64,
    permits: u32,
    successes_needed: u32,
    /// `config.classification` has rules: `call`, `call_async` and `record_result` ask it
    /// (otherwise `Err` is a failure, without looking at the types).
    classified: bool,
    config: Config,
    clock: C,
    listeners: Listeners,
    /// Listeners of transitions only (`on_transition`): called from `transitioned`, never from a
    /// per-call path, so registering one costs the calls nothing.
    transition_listeners: Listeners,
    /// Fleet mode's fleet-wide cap on trials (`fleet`): when set and closed, no trial permit
    /// is handed out (an OPEN breaker past its wait stays OPEN, a HALF-OPEN one admits no new
    /// trial). Checked only on the trial paths, never on a closed call or an early rejection.
    half_open_gate: std::sync::OnceLock<Arc<HalfOpenGate>>,
    name: Arc<str>,
}

impl CircuitBreaker<DefaultClock> {
    /// A builder with the default configuration (see [`Config`]) and the default clock.
    pub fn builder() -> Builder<DefaultClock> {
        Builder::with_clock(DefaultClock::default())
    }
}

impl<C: Clock> CircuitBreaker<C> {
    pub(crate) fn from_parts(config: Config, clock: C, name: Option<String>) -> Self {
        let now_ms = clock.recent_nanos() / 1_000_000;
        let first = Word::new(State::Closed, 0, 0);
        let word = match config.initial_state {
            State::Closed => first,
            State::Open => first.open(now_ms, config.open_wait.wait(1, 0.0, 0.0)),
            State::HalfOpen => first.half_open_empty(),
            kind => Word::new(kind, 0, 0),
        };
        let gen = word.gen();
        let tag = Tag::of(gen);
        let rules = config.trip_rules();
        let probe = if rules.failure_rate.is_some() || rules.slow_rate.is_some() {
            rules.minimum_calls
        } else {
            0
        };
        let window = match config.window {
            WindowConfig::Count { size } => Window::Count(CountWindow::new(size, tag)),
            WindowConfig::Time { duration, buckets } => {
                let width = (duration / buckets.max(1)).as_nanos() as u64;
                Window::Time(TimeWindow::new(width, buckets, tag, probe))
            }
        };
        let slow_us = match config.slow_call_rate_threshold {
            Some(_) => (config
                .slow_call_duration
                .as_micros()
                .min(START_MASK as u128) as u64)
                .max(1),
            None => 0,
        };
        CircuitBreaker {
            state: StateCell::new(word),
            probe,
            record_needs_clock: slow_us != 0 || matches!(window, Window::Time(_)),
            window,
            streak: config.consecutive_failures.map(|_| Streak::new(tag)),
            stripes: crate::stripes::Stripes::new(),
            totals: new_totals(),
            half_open_since: atomic_u64(half_open_stamp(gen, now_ms & MS_MASK)),
            reported: atomic_u64(0),
            open_cap_ms: StdAtomicU64::new(wait_ms(config.open_wait.longest())),
            rejected_mark: StdAtomicU64::new(0),
            exceeded_gen: [StdAtomicU32::new(0), StdAtomicU32::new(0)],
            by_rate: config.half_open_decision == HalfOpenDecision::Rate,
            #[cfg(not(breakerbox_loom))]
            auto: std::sync::OnceLock::new(),
            max_half_open_ms: config
                .max_half_open_wait
                .map_or(NO_LIMIT, |w| wait_ms(w).max(1)),
            rules,
            slow_us,
            permits: config.half_open_permits,
            successes_needed: config.half_open_successes,
            classified: !config.classification.is_default(),
            config,
            clock,
            listeners: Listeners::new(),
            transition_listeners: Listeners::new(),
            half_open_gate: std::sync::OnceLock::new(),
            name: name.unwrap_or_else(|| "default".into()).into(),
        }
    }

    /// The breaker's name (`"default"` unless set).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The breaker's name as a shared string (cheap to clone into events or errors).
    pub fn name_arc(&self) -> Arc<str> {
        Arc::clone(&self.name)
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The clock it reads.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The deadline horizon (see `open_cap_ms`).
    #[inline(always)]
    pub(super) fn cap_ms(&self) -> u64 {
        // Relaxed: a manual open raises the cap *before* its CAS installs the longer deadline;
        // that CAS (AcqRel) and the Acquire load of the state word that finds the deadline give
        // the happens-before edge to the reader (any architecture), and the cap never shrinks,
        // so a reader of that word cannot see an older, smaller cap.
        self.open_cap_ms.load(Ordering::Relaxed)
    }

    #[inline(always)]
    pub(super) fn start_us(&self) -> u64 {
        if self.slow_us != 0 {
            self.now_us()
        } else {
            0
        }
    }

    #[inline(always)]
    pub(super) fn now_us(&self) -> u64 {
        self.clock.recent_nanos() / 1_000
    }

    #[inline(always)]
    pub(super) fn now_ms(&self) -> u64 {
        self.clock.recent_nanos() / 1_000_000
    }

    /// Whether generation `gen` is still the current one: what the windows ask before moving an
    /// entry word to a newer tag (`window::Live`).
    #[inline]
    pub(super) fn live(&self, gen: u32) -> impl Fn() -> bool + '_ {
        move || self.state.load().gen() == gen
    }

    /// The wait of opening number `step` (with jitter, if configured).
    pub(super) fn wait_for(&self, step: u32) -> Duration {
        let r = if self.config.jitter > 0.0 {
            fastrand::f64()
        } else {
            0.0
        };
        self.config.open_wait.wait(step, self.config.jitter, r)
    }
}

impl<C: Clock> std::fmt::Debug for CircuitBreaker<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

/// Milliseconds in a `half_open_since` stamp (2^43 ms: 278 years), below the generation.
const MS_BITS: u32 = 43;
const MS_MASK: u64 = (1 << MS_BITS) - 1;
/// `max_half_open_ms` when there is no limit: more than any `half_open_since` stamp can span.
const NO_LIMIT: u64 = u64::MAX;

/// `[generation:21][ms:43]`: when HALF-OPEN generation `gen` was (first seen) entered.
#[inline]
fn half_open_stamp(gen: u32, now_ms: u64) -> u64 {
    ((gen as u64) << MS_BITS) | (now_ms & MS_MASK)
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<CircuitBreaker<crate::ManualClock>>();
}
