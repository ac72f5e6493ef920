//! Outcomes: recording what an admitted call did into the window, the streak or the trial
//! counts, and the trips those records decide.

use super::*;

impl<C: Clock> CircuitBreaker<C> {
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
    pub(super) fn after_fast_success(&self, t: Ticket, r: Recorded) {
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
    pub(super) fn evaluate(&self, t: Ticket, counts: crate::window::Counts, streak: u64) {
        if let Some(reason) = self.rules.evaluate(counts, streak) {
            self.trip(t.gen(), reason, counts);
        }
    }

    /// `RateExceeded`, for a rate reason.
    pub(super) fn rate_exceeded(&self, reason: crate::policy::TripReason) {
        if reason.rate().is_some() {
            self.listeners
                .emit(&self.name, || EventKind::RateExceeded(reason));
        }
    }

    /// The bookkeeping every recorded outcome ends with: the late counter, or the failure and
    /// slow counters; then the event.
    #[inline(always)]
    pub(super) fn settle(&self, outcome: Outcome, counted: bool, slow: bool) {
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
    pub(super) fn complete_general(&self, t: Ticket, outcome: Outcome) {
        if outcome == Outcome::Ignore {
            return self.release(t);
        }
        if outcome == Outcome::Trip {
            return self.complete_trip(t);
        }
        let failed = outcome == Outcome::Failure;
        let (now, slow) = self.measure(t);
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

    /// The clock at the report (when recording needs it) and whether the call was slow.
    #[inline]
    fn measure(&self, t: Ticket) -> (u64, bool) {
        let now = if self.record_needs_clock {
            self.clock.recent_nanos()
        } else {
            0
        };
        let slow = self.slow_us != 0
            && t.kind() != Kind::Pass
            && ((now / 1_000).wrapping_sub(t.start_us()) & START_MASK) >= self.slow_us;
        (now, slow)
    }

    /// [`Outcome::Trip`]: a failure, recorded as any other, and then the breaker opens if it is
    /// still CLOSED (a window call) or HALF-OPEN (a trial) in the call's generation. A trial's
    /// failure and the opening are one CAS; a window call's opening is a second CAS that fails
    /// if the generation moved on meanwhile (a trip rule fired on this very failure, a reset),
    /// so a late report never opens a newer generation.
    #[cold]
    fn complete_trip(&self, t: Ticket) {
        let (now, slow) = self.measure(t);
        let counted = match t.kind() {
            Kind::Window => {
                let counted = self.record_window(t, true, slow, now);
                if counted {
                    self.open_on_result(t.gen(), State::Closed);
                }
                counted
            }
            Kind::Trial => {
                let counted = self.open_on_result(t.gen(), State::HalfOpen);
                if counted {
                    bump(&self.totals.trial_calls);
                }
                counted
            }
            Kind::Pass => {
                bump(&self.totals.pass_calls);
                true
            }
        };
        self.settle(Outcome::Failure, counted, slow);
    }

    /// `from`(gen) -> OPEN at the next backoff step, for a result classified as a trip;
    /// `true` if this call made the transition.
    fn open_on_result(&self, gen: u32, from: State) -> bool {
        let now_ms = self.now_ms();
        let mut wait = Duration::ZERO;
        let res = self.state.update(|w| {
            (w.is(from) && w.gen() == gen).then(|| {
                // The step comes from the very word the CAS replaces.
                wait = self.wait_for(w.next_step());
                w.open(now_ms, wait)
            })
        });
        let Ok((old, new)) = res else {
            return false;
        };
        bump(&self.totals.opened);
        let reason = crate::policy::TripReason::Classified;
        self.transitioned(old, new, TransitionReason::Tripped(reason), Some(wait));
        true
    }

    #[inline]
    pub(super) fn record_window(&self, t: Ticket, failed: bool, slow: bool, now: u64) -> bool {
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
    /// records but never trips) each rate reaching its threshold in `counts` is reported once
    /// per generation, each rate on its own.
    #[cold]
    pub(super) fn trip(
        &self,
        gen: u32,
        reason: crate::policy::TripReason,
        counts: crate::window::Counts,
    ) {
        let w = self.state.load();
        if w.gen() != gen {
            return;
        }
        if w.is(State::MetricsOnly) {
            let mark = gen.wrapping_add(1);
            let reached = self.rules.rates_reached(counts);
            for (flag, r) in self.exceeded_gen.iter().zip(reached) {
                // Relaxed: a once-per-generation flag for an event; it publishes no memory.
                if let Some(r) = r.filter(|_| flag.swap(mark, Ordering::Relaxed) != mark) {
                    self.rate_exceeded(r);
                }
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
    pub(super) fn record_rate_trial(&self, t: Ticket, failed: bool, slow: bool) -> bool {
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

    pub(super) fn record_trial(&self, t: Ticket, failed: bool, slow: bool) -> bool {
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
    pub(super) fn release(&self, t: Ticket) {
        bump(&self.totals.ignored);
        self.give_back(t);
        self.listeners.emit(&self.name, || EventKind::Ignored);
    }

    /// Frees the trial slot of ticket `t`, if it is a trial of the current generation.
    pub(super) fn give_back(&self, t: Ticket) {
        if t.kind() != Kind::Trial {
            return;
        }
        let _ = self.state.update(|w| {
            (w.is(State::HalfOpen) && w.gen() == t.gen())
                .then(|| w.trial_released_in(self.by_rate))
                .flatten()
        });
    }
}
