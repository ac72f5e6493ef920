//! The public handle: admission, outcome recording, manual control, observation.
//!
//! Thin by design: admission and every state change go through [`StateCell`] (the packed word),
//! outcomes of CLOSED calls through the [`Window`], trip decisions through [`TripRules`]. The
//! sync `call`, the async `call_async`, permits and the tower layer all use the same two
//! functions, `acquire_ticket` and `complete`; no state-machine logic is written twice.

use crate::clock::Clock;
use crate::config::{Builder, Config, HalfOpenDecision, WindowConfig};
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
    /// `generation + 1` of the last METRICS_ONLY generation that emitted `RateExceeded`.
    exceeded_gen: StdAtomicU32,
    /// HALF-OPEN is decided by rate (the word's rate layout) rather than by the first failure.
    by_rate: bool,
    /// The automatic OPEN -> HALF-OPEN timer's handle on this breaker, when the option is on
    /// and the breaker is shared (`share`). Dropping it (with the breaker) removes the
    /// breaker's entry from the timer.
    #[cfg(not(breakerbox_loom))]
    auto: std::sync::OnceLock<crate::timer::Handle>,
    /// The longest a HALF-OPEN generation may stay full before the next caller re-opens.
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
            open_cap_ms: StdAtomicU64::new(wait_ms(
                config.open_wait.base_wait(crate::state::MAX_STEP),
            )),
            rejected_mark: StdAtomicU64::new(0),
            exceeded_gen: StdAtomicU32::new(0),
            by_rate: config.half_open_decision == HalfOpenDecision::Rate,
            #[cfg(not(breakerbox_loom))]
            auto: std::sync::OnceLock::new(),
            max_half_open_ms: wait_ms(config.max_half_open_wait).max(1),
            rules,
            slow_us,
            permits: config.half_open_permits,
            successes_needed: config.half_open_successes,
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

    // ----- admission -------------------------------------------------------------------

    /// Asks to make one call. `Ok` carries a [`Permit`] to report the outcome on; `Err` says
    /// the breaker is open (with the time until the next trial) or half-open and full.
    #[inline(always)]
    pub fn try_acquire(&self) -> Result<Permit<'_, C>, Rejected> {
        self.acquire_ticket().map(|t| Permit::new(self, t))
    }

    /// Like [`try_acquire`](Self::try_acquire), with a permit that owns an `Arc` of the
    /// breaker (for `'static` futures).
    #[inline]
    pub fn try_acquire_owned(self: &Arc<Self>) -> Result<OwnedPermit<C>, Rejected> {
        self.acquire_ticket()
            .map(|t| OwnedPermit::new(Arc::clone(self), t))
    }

    /// Whether a call would be admitted right now, without taking a permit or changing state.
    pub fn would_admit(&self) -> bool {
        let w = self.state.load();
        match w.kind() {
            State::Closed | State::Disabled | State::MetricsOnly => true,
            State::ForcedOpen => false,
            State::Open => {
                w.remaining_ms(self.now_ms(), self.cap_ms()).is_none() && !self.gate_closed(false)
            }
            // (Full past `max_half_open_wait`, the next caller re-opens: not admitted either.)
            State::HalfOpen if self.gate_closed(false) => false,
            State::HalfOpen => w.take_trial_in(self.by_rate, self.permits).is_some(),
        }
    }

    /// The deadline horizon (see `open_cap_ms`).
    #[inline(always)]
    fn cap_ms(&self) -> u64 {
        // Relaxed: a manual open raises the cap *before* its CAS installs the longer deadline;
        // that CAS (AcqRel) and the Acquire load of the state word that finds the deadline give
        // the happens-before edge to the reader (any architecture), and the cap never shrinks,
        // so a reader of that word cannot see an older, smaller cap.
        self.open_cap_ms.load(Ordering::Relaxed)
    }

    #[inline(always)]
    fn start_us(&self) -> u64 {
        if self.slow_us != 0 {
            self.now_us()
        } else {
            0
        }
    }

    #[inline(always)]
    fn now_us(&self) -> u64 {
        self.clock.recent_nanos() / 1_000
    }

    #[inline(always)]
    fn now_ms(&self) -> u64 {
        self.clock.recent_nanos() / 1_000_000
    }

    #[inline(always)]
    pub(crate) fn acquire_ticket(&self) -> Result<Ticket, Rejected> {
        let w = self.state.load();
        if w.is(State::Closed) {
            return Ok(Ticket::new(w.gen(), Kind::Window, self.start_us()));
        }
        if w.is(State::Open) {
            if let Some(left) = w.remaining_ms(self.now_ms(), self.cap_ms()) {
                return Err(self.reject(State::Open, Some(left * 1_000)));
            }
        }
        self.acquire_contended(w)
    }

    /// Every case but CLOSED and a still-waiting OPEN: the CAS loop over the state word.
    ///
    /// The trial ticket is built from the word the CAS installed before any listener runs,
    /// and listeners cannot unwind (see `events`), so the caller always gets the permit that
    /// owns the slot it took.
    #[inline(never)]
    fn acquire_contended(&self, mut w: Word) -> Result<Ticket, Rejected> {
        loop {
            let mut wait = None;
            let (next, reason) = match w.kind() {
                State::Closed | State::MetricsOnly => {
                    return Ok(Ticket::new(w.gen(), Kind::Window, self.start_us()))
                }
                State::Disabled => return Ok(Ticket::new(w.gen(), Kind::Pass, 0)),
                State::ForcedOpen => return Err(self.reject(State::ForcedOpen, None)),
                State::Open => {
                    if let Some(left) = w.remaining_ms(self.now_ms(), self.cap_ms()) {
                        return Err(self.reject(State::Open, Some(left * 1_000)));
                    }
                    if self.gate_closed(true) {
                        return Err(self.reject(State::Open, None));
                    }
                    // The wait is over: move to HALF-OPEN holding the first trial permit, in
                    // one CAS, so the caller that opens the door is the first one through.
                    // (Both half-open layouts count one trial in flight from this word.)
                    (
                        w.half_open_with_first_trial(),
                        Some(TransitionReason::OpenWaitElapsed),
                    )
                }
                State::HalfOpen if self.gate_closed(true) => {
                    return Err(self.reject(State::HalfOpen, None))
                }
                State::HalfOpen => match w.take_trial_in(self.by_rate, self.permits) {
                    Some(next) => (next, None),
                    // Full for longer than `max_half_open_wait`: the trials in flight are
                    // presumed lost (leaked or hung); re-open at the next backoff step. Their
                    // slots go with the generation.
                    None if self.half_open_expired(w) => {
                        let d = self.wait_for(w.next_step());
                        wait = Some(d);
                        (
                            w.open(self.now_ms(), d),
                            Some(TransitionReason::HalfOpenTimedOut),
                        )
                    }
                    None => return Err(self.reject(State::HalfOpen, None)),
                },
            };
            if let Err(found) = self.state.cas(w, next) {
                w = found;
                continue;
            }
            if next.is(State::Open) {
                bump(&self.totals.opened);
                if let Some(reason) = reason {
                    self.transitioned(w, next, reason, wait);
                }
                let left = next.remaining_ms(self.now_ms(), self.cap_ms());
                return Err(self.reject(State::Open, left.map(|ms| ms * 1_000)));
            }
            let ticket = Ticket::new(next.gen(), Kind::Trial, self.start_us());
            if let Some(reason) = reason {
                self.transitioned(w, next, reason, None);
            }
            if self.gate_revoked() {
                self.give_back(ticket);
                return Err(self.reject(State::HalfOpen, None));
            }
            return Ok(ticket);
        }
    }

    /// Whether the trial gate (fleet mode) is installed and closed; a caller asking for a
    /// trial (`demand`) records that it wanted one, which is what makes the fleet task ask
    /// Redis for a lease.
    #[cold]
    fn gate_closed(&self, demand: bool) -> bool {
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
    fn gate_revoked(&self) -> bool {
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

    /// Whether HALF-OPEN word `w` has been full for longer than `max_half_open_wait`. The first
    /// caller to find no stamp for this generation stamps it (so the wait counts from no later
    /// than that moment).
    #[cold]
    fn half_open_expired(&self, w: Word) -> bool {
        let now = self.now_ms() & MS_MASK;
        // Relaxed: the stamp is a hint about one generation and publishes no other memory; a
        // stale read only delays the re-open until a later caller reads the stamp.
        let cur = self.half_open_since.load(Ordering::Relaxed);
        if (cur >> MS_BITS) as u32 == w.gen() {
            return now.wrapping_sub(cur & MS_MASK) & MS_MASK >= self.max_half_open_ms;
        }
        let stamp = half_open_stamp(w.gen(), now);
        // Relaxed: as above.
        let _ =
            self.half_open_since
                .compare_exchange(cur, stamp, Ordering::Relaxed, Ordering::Relaxed);
        false
    }

    /// Whether generation `gen` is still the current one: what the windows ask before moving an
    /// entry word to a newer tag (`window::Live`).
    #[inline]
    fn live(&self, gen: u32) -> impl Fn() -> bool + '_ {
        move || self.state.load().gen() == gen
    }

    /// The wait of opening number `step` (with jitter, if configured).
    fn wait_for(&self, step: u32) -> Duration {
        let r = if self.config.jitter > 0.0 {
            fastrand::f64()
        } else {
            0.0
        };
        self.config.open_wait.wait(step, self.config.jitter, r)
    }

    #[inline(always)]
    fn reject(&self, state: State, retry_us: Option<u64>) -> Rejected {
        self.stripes.add_rejected();
        let rejected = Rejected::new(state, retry_us);
        self.listeners.emit(&self.name, || EventKind::Rejected {
            state,
            retry_after: rejected.retry_after(),
        });
        rejected
    }

    // ----- outcomes --------------------------------------------------------------------

    /// Records the outcome of an admitted call. Called by permits (also on drop).
    ///
    /// The common case, a success in CLOSED with the slow-call rule off, is handled inline (for
    /// a count window by [`CountWindow::record_success_fast`]); everything else, including that
    /// case whenever the fast path declines it, goes through
    /// [`complete_general`](Self::complete_general).
    #[inline(always)]
    pub(crate) fn complete(&self, t: Ticket, outcome: Outcome) {
        // Window and pass-through outcomes are late once the generation changed (trials check
        // theirs in the CAS that records them). The full generation, not just the window's tag:
        // a permit held across any number of transitions never reaches a window (see `window`).
        if t.kind() != Kind::Trial
            && outcome != Outcome::Ignore
            && self.state.load().gen() != t.gen()
        {
            return self.settle(outcome, false, false);
        }
        if t.kind() == Kind::Window && outcome == Outcome::Success && self.slow_us == 0 {
            let tag = Tag::of(t.gen());
            match &self.window {
                Window::Count(w) => {
                    if let Some(r) = w.record_success_fast(tag, self.probe, &self.stripes) {
                        return self.after_fast_success(t, r);
                    }
                }
                // The time window returns counts when this success may raise a rate (a
                // bucket rolled over, or the minimum calls were reached).
                Window::Time(w) => {
                    let now = self.clock.recent_nanos();
                    let r = w.record_success_fast(tag, now, &self.stripes, &self.live(t.gen()));
                    return self.after_fast_success(t, r);
                }
            }
        }
        self.complete_general(t, outcome)
    }

    #[inline(always)]
    fn after_fast_success(&self, t: Ticket, r: Recorded) {
        let counted = r != Recorded::Late;
        if counted {
            if let Some(s) = &self.streak {
                s.succeed(Tag::of(t.gen()), &self.live(t.gen()));
            }
        }
        if let Recorded::Counted(Some(counts)) = r {
            self.evaluate(t, counts, 0);
        }
        self.settle(Outcome::Success, counted, false);
    }

    /// Trips the breaker if the rules say so for these counts.
    #[inline]
    fn evaluate(&self, t: Ticket, counts: crate::window::Counts, streak: u64) {
        if let Some(reason) = self.rules.evaluate(counts, streak) {
            self.trip(t.gen(), reason);
        }
    }

    /// `RateExceeded`, for a rate reason.
    fn rate_exceeded(&self, reason: crate::policy::TripReason) {
        if reason.rate().is_some() {
            self.listeners
                .emit(&self.name, || EventKind::RateExceeded(reason));
        }
    }

    /// The bookkeeping every recorded outcome ends with: the late counter, or the failure and
    /// slow counters; then the event.
    #[inline(always)]
    fn settle(&self, outcome: Outcome, counted: bool, slow: bool) {
        if !counted {
            bump(&self.totals.late);
            self.listeners
                .emit(&self.name, || EventKind::Late { outcome });
            return;
        }
        if outcome == Outcome::Failure {
            bump(&self.totals.failures);
        }
        if slow {
            bump(&self.totals.slow);
            if outcome == Outcome::Failure {
                bump(&self.totals.slow_failures);
            }
        }
        self.listeners
            .emit(&self.name, || EventKind::Recorded { outcome, slow });
    }

    #[inline(never)]
    fn complete_general(&self, t: Ticket, outcome: Outcome) {
        if outcome == Outcome::Ignore {
            return self.release(t);
        }
        let failed = outcome == Outcome::Failure;
        let now = if self.record_needs_clock {
            self.clock.recent_nanos()
        } else {
            0
        };
        let slow = self.slow_us != 0
            && t.kind() != Kind::Pass
            && ((now / 1_000).wrapping_sub(t.start_us()) & START_MASK) >= self.slow_us;
        let counted = match t.kind() {
            Kind::Window => self.record_window(t, failed, slow, now),
            Kind::Trial => self.record_trial(t, failed, slow),
            // Current: `complete` already settled a late one.
            Kind::Pass => {
                bump(&self.totals.pass_calls);
                true
            }
        };
        self.settle(outcome, counted, slow);
    }

    #[inline]
    fn record_window(&self, t: Ticket, failed: bool, slow: bool, now: u64) -> bool {
        let tag = Tag::of(t.gen());
        let live = &self.live(t.gen());
        let bits = if failed { FAILED } else { 0 } | if slow { SLOW } else { 0 };
        let may_trip = self.rules.may_trip(failed, slow);
        let counts =
            match self
                .window
                .record(tag, bits, now, may_trip, self.probe, &self.stripes, live)
            {
                Recorded::Late => return false,
                Recorded::Counted(c) => c,
            };
        let mut streak = 0;
        if let Some(s) = &self.streak {
            if failed {
                // `None`: the streak already belongs to a newer generation. The window counted
                // this outcome, so it stays counted; it just cannot extend that streak.
                streak = s.fail(tag, live).unwrap_or(0);
            } else {
                s.succeed(tag, live);
            }
        }
        if let Some(counts) = counts {
            self.evaluate(t, counts, streak);
        }
        true
    }

    /// CLOSED(gen) -> OPEN, if the breaker is still in that generation. In METRICS_ONLY (which
    /// records but never trips) a rate reaching its threshold is reported once per generation.
    #[cold]
    fn trip(&self, gen: u32, reason: crate::policy::TripReason) {
        let w = self.state.load();
        if w.gen() != gen {
            return;
        }
        if w.is(State::MetricsOnly) {
            // Relaxed: a once-per-generation flag for an event; it publishes no memory.
            let mark = gen.wrapping_add(1);
            if self.exceeded_gen.swap(mark, Ordering::Relaxed) != mark {
                self.rate_exceeded(reason);
            }
            return;
        }
        if !w.is(State::Closed) {
            return;
        }
        let wait = self.wait_for(w.next_step());
        let next = w.open(self.now_ms(), wait);
        if self.state.cas(w, next).is_ok() {
            bump(&self.totals.opened);
            self.rate_exceeded(reason);
            self.transitioned(w, next, TransitionReason::Tripped(reason), Some(wait));
        }
    }

    /// A trial's outcome when HALF-OPEN is decided by rate: counted in the word; the last of
    /// the permitted trials decides, in the same CAS that counts it.
    fn record_rate_trial(&self, t: Ticket, failed: bool, slow: bool) -> bool {
        let mut wait = Duration::ZERO;
        let mut verdict = None;
        let res = self.state.update(|w| {
            if !(w.is(State::HalfOpen) && w.gen() == t.gen()) {
                return None;
            }
            let counted = w.rate_trial_recorded(failed, slow);
            let [_, recorded, failures, slows] = counted.rate_trials();
            if recorded < self.permits {
                verdict = None;
                return Some(counted);
            }
            // All permitted trials are in (so none is in flight): decide.
            verdict = self.rules.rate_reached(crate::window::Counts {
                calls: recorded as u64,
                failures: failures as u64,
                slow: slows as u64,
            });
            Some(if verdict.is_some() {
                wait = self.wait_for(w.next_step());
                w.open(self.now_ms(), wait)
            } else {
                w.next(State::Closed, 0)
            })
        });
        let Ok((old, new)) = res else {
            return false;
        };
        bump(&self.totals.trial_calls);
        if let Some(reason) = verdict.filter(|_| new.is(State::Open)) {
            bump(&self.totals.opened);
            self.rate_exceeded(reason);
            self.transitioned(old, new, TransitionReason::TrialRate(reason), Some(wait));
        } else if new.is(State::Closed) {
            let [_, _, failures, _] = old.rate_trials();
            self.transitioned(
                old,
                new,
                TransitionReason::TrialsSucceeded {
                    successes: self.permits - failures - u32::from(failed),
                },
                None,
            );
        }
        true
    }

    fn record_trial(&self, t: Ticket, failed: bool, slow: bool) -> bool {
        if self.by_rate {
            return self.record_rate_trial(t, failed, slow);
        }
        let bad = failed || (slow && self.rules.slow_rate.is_some());
        let now_ms = if bad { self.now_ms() } else { 0 };
        let needed = self.successes_needed;
        let mut wait = Duration::ZERO;
        let res = self.state.update(|w| {
            if !(w.is(State::HalfOpen) && w.gen() == t.gen()) {
                return None;
            }
            Some(if bad {
                // The step comes from the very word the CAS replaces.
                wait = self.wait_for(w.next_step());
                w.open(now_ms, wait)
            } else {
                w.trial_succeeded(needed)
            })
        });
        let Ok((old, new)) = res else {
            return false;
        };
        bump(&self.totals.trial_calls);
        if new.is(State::Open) {
            bump(&self.totals.opened);
            self.transitioned(
                old,
                new,
                TransitionReason::TrialFailed { slow: !failed },
                Some(wait),
            );
        } else if new.is(State::Closed) {
            self.transitioned(
                old,
                new,
                TransitionReason::TrialsSucceeded {
                    successes: old.trial_successes() + 1,
                },
                None,
            );
        }
        true
    }

    /// An admitted call that will not report: gives a trial slot back.
    fn release(&self, t: Ticket) {
        bump(&self.totals.ignored);
        self.give_back(t);
        self.listeners.emit(&self.name, || EventKind::Ignored);
    }

    /// Frees the trial slot of ticket `t`, if it is a trial of the current generation.
    fn give_back(&self, t: Ticket) {
        if t.kind() != Kind::Trial {
            return;
        }
        let _ = self.state.update(|w| {
            (w.is(State::HalfOpen) && w.gen() == t.gen())
                .then(|| w.trial_released_in(self.by_rate))
                .flatten()
        });
    }

    /// Side effects of a transition this thread won: the bookkeeping, then the event.
    fn transitioned(
        &self,
        from: Word,
        to: Word,
        reason: TransitionReason,
        open_wait: Option<Duration>,
    ) {
        let t = self.transitioned_quietly(from, to, reason, open_wait);
        self.emit_transition(t);
    }

    /// The bookkeeping of a transition this thread won (window, streak, half-open stamp, the
    /// automatic timer), none of which blocks; returns the event for
    /// [`emit_transition`](Self::emit_transition).
    fn transitioned_quietly(
        &self,
        from: Word,
        to: Word,
        reason: TransitionReason,
        open_wait: Option<Duration>,
    ) -> Transition {
        let tag = Tag::of(to.gen());
        let live = &self.live(to.gen());
        if to.is(State::Closed) || to.is(State::MetricsOnly) {
            self.window.reset(tag, &self.stripes, live);
        } else {
            // Outcomes of calls admitted before this transition are late from now on.
            self.window
                .seal(tag, self.clock.recent_nanos(), &self.stripes, live);
        }
        if let Some(s) = &self.streak {
            s.refresh(tag, live);
        }
        if to.is(State::HalfOpen) {
            let stamp = half_open_stamp(to.gen(), self.now_ms());
            // Relaxed: see `half_open_expired`.
            self.half_open_since.store(stamp, Ordering::Relaxed);
        }
        // Relaxed: statistics (the per-state rejected figure); they publish no memory.
        let rejected = self.stripes.rejected();
        self.rejected_mark.store(rejected, Ordering::Relaxed);
        #[cfg(not(breakerbox_loom))]
        if let Some(timer) = self.auto.get() {
            if from.is(State::Open) && !to.is(State::Open) {
                timer.left_open(from.gen());
            }
            self.schedule_half_open(to);
        }
        Transition {
            from: from.kind(),
            to: to.kind(),
            reason,
            generation: to.gen(),
            open_wait,
        }
    }

    /// Whether a transition event reaches anything (listeners, or tracing when built in).
    #[cfg(not(breakerbox_loom))]
    fn transitions_observed(&self) -> bool {
        cfg!(feature = "tracing") || self.listeners.active() || self.transition_listeners.active()
    }

    /// The event of a transition: tracing, then the listeners, on this thread.
    fn emit_transition(&self, t: Transition) {
        #[cfg(feature = "tracing")]
        tracing::event!(
            target: "breakerbox",
            tracing::Level::INFO,
            breaker = %self.name,
            from = %t.from,
            to = %t.to,
            reason = ?t.reason,
            generation = t.generation,
            "circuit breaker state transition"
        );
        self.listeners.emit(&self.name, || EventKind::Transition(t));
        self.transition_listeners
            .emit(&self.name, || EventKind::Transition(t));
    }

    // ----- manual control -------------------------------------------------------------

    fn force(&self, kind: State, reason: TransitionReason, always: bool) {
        let to = |w: Word| match kind {
            State::HalfOpen => w.half_open_empty(),
            kind => w.next(kind, 0),
        };
        if let Ok((old, new)) = self
            .state
            .update(|w| (always || !w.is(kind)).then(|| to(w)))
        {
            self.transitioned(old, new, reason, None);
        }
    }

    /// Opens the breaker for `wait` (1 ms ..= 24 h), from any state, as resilience4j's
    /// `transitionToOpenStateFor`: a new generation (calls in flight report late), the
    /// backoff's next step (so a trial that then fails waits as if this opening had been
    /// automatic), the same transition event as an automatic opening (reason
    /// [`Manual`](TransitionReason::Manual)). After `wait` the breaker goes HALF-OPEN as usual.
    ///
    /// ```
    /// use breakerbox::{CircuitBreaker, ManualClock, State};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::builder().clock(clock.clone()).build().unwrap();
    /// breaker.transition_to_open_for(Duration::from_secs(300)).unwrap(); // maintenance
    /// assert_eq!(breaker.try_acquire().unwrap_err().retry_after(), Some(Duration::from_secs(300)));
    /// clock.advance(Duration::from_secs(300));
    /// assert!(breaker.try_acquire().is_ok()); // the trial call
    /// assert_eq!(breaker.state(), State::HalfOpen);
    /// assert!(breaker.transition_to_open_for(Duration::ZERO).is_err());
    /// ```
    pub fn transition_to_open_for(&self, wait: Duration) -> Result<(), InvalidOpenWait> {
        if wait.is_zero() || wait > MAX_OPEN_WAIT {
            return Err(InvalidOpenWait { wait });
        }
        // Before the CAS: see `cap_ms`. (Relaxed: that CAS is the publishing edge.)
        self.open_cap_ms.fetch_max(wait_ms(wait), Ordering::Relaxed);
        let now = self.now_ms();
        if let Ok((old, new)) = self.state.update(|w| Some(w.open(now, wait))) {
            self.transitioned(old, new, TransitionReason::Manual, Some(wait));
        }
        Ok(())
    }

    /// Opens the breaker until `deadline` (resilience4j's `transitionToOpenStateUntil`): the
    /// wait from now (`Instant::now()`, read once here) to `deadline`, then as
    /// [`transition_to_open_for`](Self::transition_to_open_for). A deadline that has passed,
    /// or is more than 24 h away, is an error and changes nothing.
    pub fn transition_to_open_until(&self, deadline: Instant) -> Result<(), InvalidOpenWait> {
        self.transition_to_open_for(deadline.saturating_duration_since(Instant::now()))
    }

    /// Moves to HALF-OPEN now, with every trial permit free (resilience4j's
    /// `transitionToHalfOpenState`); the backoff step of an OPEN breaker is kept. Nothing
    /// happens when it is HALF-OPEN already.
    pub fn transition_to_half_open(&self) {
        self.force(State::HalfOpen, TransitionReason::Manual, false);
    }

    /// Moves to CLOSED with an empty window and the backoff reset (resilience4j's
    /// `transitionToClosedState`). Nothing happens, and no event is emitted, when it is CLOSED
    /// already; [`reset`](Self::reset) always starts a new generation.
    pub fn transition_to_closed(&self) {
        self.force(State::Closed, TransitionReason::Manual, false);
    }

    /// Makes the OPEN -> HALF-OPEN transition now if the open wait has ended, without taking
    /// a trial permit; `true` if this call made it. The automatic timer
    /// ([`Config::automatic_half_open`]) calls this; so can a timer of your own (a tokio
    /// interval, a registry sweep), as it never blocks and changes nothing before the
    /// deadline.
    pub fn half_open_if_due(&self) -> bool {
        let w = self.state.load();
        w.is(State::Open) && self.half_open_if_elapsed(w).is_ok()
    }

    /// OPEN word `w`: HALF-OPEN if its wait has ended (`Ok(())` when this call made the
    /// transition), or `Err` with the time left (`None` if another thread changed the word).
    fn half_open_if_elapsed(&self, w: Word) -> Result<(), Option<Duration>> {
        let t = self.open_wait_elapsed(w)?;
        self.emit_transition(t);
        Ok(())
    }

    /// [`half_open_if_elapsed`](Self::half_open_if_elapsed) without the event: the transition
    /// made, for the caller to emit.
    fn open_wait_elapsed(&self, w: Word) -> Result<Transition, Option<Duration>> {
        if let Some(left) = w.remaining_ms(self.now_ms(), self.cap_ms()) {
            return Err(Some(Duration::from_millis(left)));
        }
        if self.gate_closed(false) {
            return Err(Some(GATE_RECHECK));
        }
        let next = w.half_open_empty();
        self.state.cas(w, next).map_err(|_| None)?;
        Ok(self.transitioned_quietly(w, next, TransitionReason::OpenWaitElapsed, None))
    }

    /// In an `Arc`, with the automatic OPEN -> HALF-OPEN timer attached if `automatic`.
    pub(crate) fn share(mut self, automatic: bool) -> Arc<Self> {
        self.config.automatic_half_open = automatic;
        let shared = Arc::new(self);
        #[cfg(not(breakerbox_loom))]
        if automatic {
            let weak = Arc::downgrade(&shared);
            let timer: std::sync::Weak<dyn crate::timer::Due> = weak;
            let _ = shared.auto.set(crate::timer::Handle::new(timer));
            // Built OPEN (`initial_state`): no transition will schedule this wait.
            shared.schedule_half_open(shared.state.load());
        }
        shared
    }

    /// With the automatic timer attached and `w` an OPEN word: asks the timer to fire at the
    /// end of its wait (at once if it has ended).
    #[cfg(not(breakerbox_loom))]
    fn schedule_half_open(&self, w: Word) {
        if let (true, Some(timer)) = (w.is(State::Open), self.auto.get()) {
            let left = w.remaining_ms(self.now_ms(), self.cap_ms());
            let left = Duration::from_millis(left.unwrap_or(0));
            timer.schedule(w.gen(), left);
        }
    }

    /// Forces the breaker OPEN: every call is rejected until [`reset`](Self::reset) (or
    /// another manual state).
    pub fn force_open(&self) {
        self.force(State::ForcedOpen, TransitionReason::ForcedOpen, false);
    }

    /// Disables the breaker: every call is admitted, nothing trips, until reset.
    pub fn disable(&self) {
        self.force(State::Disabled, TransitionReason::Disabled, false);
    }

    /// Records outcomes (metrics, events) but never trips, until reset.
    pub fn metrics_only(&self) {
        self.force(State::MetricsOnly, TransitionReason::MetricsOnly, false);
    }

    /// Back to CLOSED with an empty window and the backoff reset. Calls admitted before the
    /// reset report late.
    pub fn reset(&self) {
        self.force(State::Closed, TransitionReason::Reset, true);
    }

    // ----- calls ------------------------------------------------------------------------

    /// Runs `f` if admitted; `Err` is a failure, `Ok` a success.
    #[inline(always)]
    pub fn call<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, CallError<E>> {
        self.call_with(default_classify, f)
    }

    /// Runs `f` if admitted and classifies its result with `classify`: which errors count,
    /// which are ignored, which `Ok` values are failures.
    ///
    /// ```
    /// use breakerbox::{CircuitBreaker, Outcome};
    /// let breaker = CircuitBreaker::builder().build().unwrap();
    /// // A 503 in an Ok body is a failure; a 404 error is ignored.
    /// let classify = |r: &Result<u16, u16>| match r {
    ///     Ok(503) => Outcome::Failure,
    ///     Ok(_) => Outcome::Success,
    ///     Err(404) => Outcome::Ignore,
    ///     Err(_) => Outcome::Failure,
    /// };
    /// let status = breaker.call_with(classify, || Ok::<u16, u16>(503)).unwrap();
    /// assert_eq!(status, 503);
    /// assert_eq!(breaker.metrics().failures, 1);
    /// ```
    #[inline(always)]
    pub fn call_with<T, E>(
        &self,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, CallError<E>> {
        let permit = self.try_acquire()?;
        let result = f();
        permit.record(classify(&result));
        result.map_err(CallError::Failed)
    }

    /// Runs `f` if admitted, and `fallback` on any error (rejection or failure).
    ///
    /// ```
    /// let breaker = breakerbox::CircuitBreaker::builder().build().unwrap();
    /// breaker.force_open();
    /// let price = breaker.call_or_else(|| Ok::<u32, ()>(42), |_err| 40 /* cached */);
    /// assert_eq!(price, 40);
    /// ```
    pub fn call_or_else<T, E>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
        fallback: impl FnOnce(CallError<E>) -> T,
    ) -> T {
        self.call(f).unwrap_or_else(fallback)
    }

    /// Awaits `fut` if admitted. The permit lives inside the returned future: dropping the
    /// future mid-flight gives a half-open slot back. With the `tokio` feature and a
    /// configured [`call_timeout`](Config::call_timeout), a call that runs past it is
    /// dropped and counts as a failure.
    pub async fn call_async<T, E, F>(&self, fut: F) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.call_async_with(default_classify, fut).await
    }

    /// [`call_async`](Self::call_async) with a classifier, as in [`call_with`](Self::call_with).
    pub async fn call_async_with<T, E, F>(
        &self,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
        fut: F,
    ) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        let permit = self.try_acquire()?;
        #[cfg(feature = "tokio")]
        let result = match self.config.call_timeout {
            Some(d) => match tokio::time::timeout(d, fut).await {
                Ok(r) => r,
                Err(_) => {
                    permit.failure();
                    return Err(CallError::Timeout(d));
                }
            },
            None => fut.await,
        };
        #[cfg(not(feature = "tokio"))]
        let result = fut.await;
        permit.record(classify(&result));
        result.map_err(CallError::Failed)
    }

    /// [`call_async`](Self::call_async) with a fallback for any error.
    pub async fn call_async_or_else<T, E, F>(
        &self,
        fut: F,
        fallback: impl FnOnce(CallError<E>) -> T,
    ) -> T
    where
        F: Future<Output = Result<T, E>>,
    {
        self.call_async(fut).await.unwrap_or_else(fallback)
    }

    // ----- observation ----------------------------------------------------------------

    /// The stored state. (An OPEN breaker whose wait has elapsed turns HALF-OPEN when the next
    /// caller asks for a permit; [`would_admit`](Self::would_admit) tells whether it would.)
    #[inline]
    pub fn state(&self) -> State {
        self.state.load().kind()
    }

    /// The current generation (incremented on every transition).
    pub fn generation(&self) -> u32 {
        self.state.load().gen()
    }

    /// A snapshot of state and counters.
    pub fn metrics(&self) -> Metrics {
        let w = self.state.load();
        let now = self.clock.recent_nanos();
        let counts = self.window.current_counts(now, &self.stripes);
        let t = &self.totals;
        let failures = read(&t.failures);
        let calls =
            self.window.lifetime_calls(&self.stripes) + read(&t.trial_calls) + read(&t.pass_calls);
        // The sum above is read word by word while threads record (and a record that turns
        // late takes its claim back), so it can dip between snapshots; the reported total is
        // its high-water mark, so it never does (a Prometheus counter must not go backwards).
        // Relaxed: a high-water mark of a statistic; it publishes no other memory.
        let calls = self.reported.fetch_max(calls, Ordering::Relaxed).max(calls);
        let successes = calls.saturating_sub(failures);
        let rejected = self.stripes.rejected();
        let rate = |n: u64| {
            if counts.calls == 0 {
                0.0
            } else {
                n as f64 / counts.calls as f64
            }
        };
        Metrics {
            name: self.name.to_string(),
            state: w.kind(),
            calls,
            successes,
            failures,
            slow_calls: read(&t.slow),
            slow_failures: read(&t.slow_failures),
            ignored: read(&t.ignored),
            rejected,
            // Relaxed: statistics.
            rejected_in_state: rejected.saturating_sub(self.rejected_mark.load(Ordering::Relaxed)),
            late: read(&t.late),
            times_opened: read(&t.opened),
            window_calls: counts.calls,
            window_failures: counts.failures,
            window_slow_calls: counts.slow,
            failure_rate: rate(counts.failures),
            slow_call_rate: rate(counts.slow),
            rates_ready: self.rules.rates_ready(counts),
            half_open_in_flight: if w.is(State::HalfOpen) {
                w.inflight_in(self.by_rate)
            } else {
                0
            },
            listener_panics: self.listeners.panics() + self.transition_listeners.panics(),
            retry_after: if w.is(State::Open) {
                w.remaining_ms(now / 1_000_000, self.cap_ms())
                    .map(Duration::from_millis)
            } else {
                None
            },
        }
    }

    /// Registers an event listener. Listeners cost nothing until the first is registered.
    ///
    /// ```
    /// use breakerbox::{CircuitBreaker, EventKind, State};
    /// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
    ///
    /// let breaker = CircuitBreaker::builder().consecutive_failures(1).build().unwrap();
    /// let opened = Arc::new(AtomicUsize::new(0));
    /// let seen = opened.clone();
    /// breaker.on_event(move |e| {
    ///     if let EventKind::Transition(t) = e.kind {
    ///         if t.to == State::Open {
    ///             seen.fetch_add(1, Ordering::SeqCst); // alert here
    ///         }
    ///     }
    /// });
    /// let _ = breaker.call(|| Err::<(), _>("down"));
    /// assert_eq!(opened.load(Ordering::SeqCst), 1);
    /// ```
    pub fn on_event(&self, listener: impl Fn(&crate::Event<'_>) + Send + Sync + 'static) {
        self.listeners.add(Arc::new(listener));
    }

    /// Registers a listener of state transitions only ([`EventKind::Transition`] events). Unlike
    /// [`on_event`](Self::on_event), it costs the calls nothing: it is consulted on transitions
    /// alone, so a monitor that alerts on OPEN leaves the hot path as it was.
    ///
    /// ```
    /// use breakerbox::{CircuitBreaker, EventKind, State};
    /// use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
    ///
    /// let breaker = CircuitBreaker::builder().consecutive_failures(1).build().unwrap();
    /// let alerted = Arc::new(AtomicBool::new(false));
    /// let flag = alerted.clone();
    /// breaker.on_transition(move |e| {
    ///     if let EventKind::Transition(t) = e.kind {
    ///         flag.store(t.to == State::Open, Ordering::SeqCst);
    ///     }
    /// });
    /// let _ = breaker.call(|| Err::<(), _>("down"));
    /// assert!(alerted.load(Ordering::SeqCst));
    /// ```
    pub fn on_transition(&self, listener: impl Fn(&crate::Event<'_>) + Send + Sync + 'static) {
        self.transition_listeners.add(Arc::new(listener));
    }

    /// Registers a shared listener (one `Arc` for many breakers, as the registry does).
    pub fn add_listener(&self, listener: Listener) {
        self.listeners.add(listener);
    }

    /// Removes every listener (both kinds).
    pub fn clear_listeners(&self) {
        self.listeners.clear();
        self.transition_listeners.clear();
    }

    /// Heap bytes owned by the breaker beyond `size_of::<CircuitBreaker>()` (the window's
    /// ring or buckets, and the name).
    pub fn heap_bytes(&self) -> usize {
        self.window.heap_bytes() + self.name.len() + self.stripes.heap_bytes()
    }
}

#[cfg(not(breakerbox_loom))]
impl<C: Clock> crate::timer::Due for CircuitBreaker<C> {
    fn fire(&self, gen: u32) -> crate::timer::Fired {
        use crate::timer::Fired;
        let w = self.state.load();
        if !(w.is(State::Open) && w.gen() == gen) {
            return Fired::Done;
        }
        match self.open_wait_elapsed(w) {
            Ok(t) if self.transitions_observed() => Fired::Emit(t),
            Ok(_) | Err(None) => Fired::Done,
            Err(Some(left)) => Fired::Later(left),
        }
    }

    fn emit(&self, t: Transition) {
        self.emit_transition(t);
    }

    fn open_in(&self, gen: u32) -> bool {
        let w = self.state.load();
        w.is(State::Open) && w.gen() == gen
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

/// Fleet mode's trial gate (see `half_open_gate`): `open` while this instance holds a fleet
/// trial lease (or Redis is unreachable and the breaker is plain local); `demand` set by
/// callers refused by the closed gate.
#[derive(Debug)]
pub(crate) struct HalfOpenGate {
    pub(crate) open: crate::sync::AtomicBool,
    pub(crate) demand: crate::sync::AtomicBool,
}

/// How soon the automatic timer looks again at an OPEN breaker held by its half-open gate.
const GATE_RECHECK: Duration = Duration::from_millis(10);

/// Milliseconds in a `half_open_since` stamp (2^43 ms: 278 years), below the generation.
const MS_BITS: u32 = 43;
const MS_MASK: u64 = (1 << MS_BITS) - 1;

/// `[generation:21][ms:43]`: when HALF-OPEN generation `gen` was (first seen) entered.
#[inline]
fn half_open_stamp(gen: u32, now_ms: u64) -> u64 {
    ((gen as u64) << MS_BITS) | (now_ms & MS_MASK)
}

/// `Ok` is a success, `Err` a failure.
#[inline]
fn default_classify<T, E>(r: &Result<T, E>) -> Outcome {
    if r.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<CircuitBreaker<crate::ManualClock>>();
}
