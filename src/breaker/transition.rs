//! Transitions: the side effects of every state change (windows, timer, events), manual
//! control, and the automatic OPEN -> HALF-OPEN timer's hooks.

use super::*;

impl<C: Clock> CircuitBreaker<C> {
    /// Side effects of a transition this thread won: the bookkeeping, then the event.
    pub(super) fn transitioned(
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
    pub(super) fn transitioned_quietly(
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
            // Relaxed: see `half_open_lasted`.
            self.half_open_since.store(stamp, Ordering::Relaxed);
        }
        // Relaxed: statistics (the per-state rejected figure); they publish no memory.
        let rejected = self.stripes.rejected();
        self.rejected_mark.store(rejected, Ordering::Relaxed);
        #[cfg(not(breakerbox_loom))]
        if let Some(timer) = self.auto.get() {
            if from.is(State::Open) || from.is(State::HalfOpen) {
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
    pub(super) fn transitions_observed(&self) -> bool {
        cfg!(feature = "tracing") || self.listeners.active() || self.transition_listeners.active()
    }

    /// The event of a transition: tracing, then the listeners, on this thread.
    pub(super) fn emit_transition(&self, t: Transition) {
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

    pub(super) fn force(&self, kind: State, reason: TransitionReason, always: bool) {
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
    pub(super) fn half_open_if_elapsed(&self, w: Word) -> Result<(), Option<Duration>> {
        let t = self.open_wait_elapsed(w)?;
        self.emit_transition(t);
        Ok(())
    }

    /// [`half_open_if_elapsed`](Self::half_open_if_elapsed) without the event: the transition
    /// made, for the caller to emit.
    pub(super) fn open_wait_elapsed(&self, w: Word) -> Result<Transition, Option<Duration>> {
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

    /// With the automatic timer attached: an OPEN word asks the timer to fire at the end of
    /// its wait (at once if it has ended), a HALF-OPEN word at the end of
    /// `max_half_open_wait` (where a full period times out).
    #[cfg(not(breakerbox_loom))]
    pub(super) fn schedule_half_open(&self, w: Word) {
        let Some(timer) = self.auto.get() else {
            return;
        };
        if w.is(State::Open) {
            let left = w.remaining_ms(self.now_ms(), self.cap_ms());
            timer.schedule(w.gen(), Duration::from_millis(left.unwrap_or(0)));
        } else if w.is(State::HalfOpen) && self.max_half_open_ms != NO_LIMIT {
            timer.schedule(w.gen(), Duration::from_millis(self.max_half_open_ms));
        }
    }

    /// The timer's visit to HALF-OPEN word `w` (lock not held): a full period past
    /// `max_half_open_wait` goes where `half_open_timeout_state` says, without waiting for a
    /// caller; otherwise the time to look again.
    #[cfg(not(breakerbox_loom))]
    fn half_open_timer(&self, w: Word) -> crate::timer::Fired {
        use crate::timer::Fired;
        if let Err(left) = self.half_open_overdue(w) {
            return Fired::Later(left);
        }
        if w.take_trial_in(self.by_rate, self.permits).is_some() {
            // Not full: callers can still take trials, and a period only times out full.
            return Fired::Later(Duration::from_millis(self.max_half_open_ms));
        }
        let (next, wait) = self.half_open_timed_out(w);
        if self.state.cas(w, next).is_err() {
            return Fired::Done;
        }
        if next.is(State::Open) {
            bump(&self.totals.opened);
        }
        let t = self.transitioned_quietly(w, next, TransitionReason::HalfOpenTimedOut, wait);
        if self.transitions_observed() {
            Fired::Emit(t)
        } else {
            Fired::Done
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
}

#[cfg(not(breakerbox_loom))]
impl<C: Clock> crate::timer::Due for CircuitBreaker<C> {
    fn fire(&self, gen: u32) -> crate::timer::Fired {
        use crate::timer::Fired;
        let w = self.state.load();
        if w.gen() != gen {
            return Fired::Done;
        }
        if w.is(State::HalfOpen) {
            return self.half_open_timer(w);
        }
        if !w.is(State::Open) {
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
        (w.is(State::Open) || w.is(State::HalfOpen)) && w.gen() == gen
    }
}
