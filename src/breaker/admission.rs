//! Admission: whether a call may run now, and the permit it runs under. A CLOSED call and a
//! still-waiting OPEN rejection are one load of the state word; every other case is one CAS
//! loop over it (`acquire_contended`).

use super::*;

impl<C: Clock> CircuitBreaker<C> {
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
            // (Full past `max_half_open_wait`, the next caller re-opens: not admitted either,
            // unless a timed-out period closes.)
            State::HalfOpen if self.gate_closed(false) => false,
            State::HalfOpen => {
                w.take_trial_in(self.by_rate, self.permits).is_some()
                    || (self.config.half_open_timeout_state == State::Closed
                        && self.half_open_overdue(w).is_ok())
            }
        }
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
    pub(super) fn acquire_contended(&self, mut w: Word) -> Result<Ticket, Rejected> {
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
                    // presumed lost (leaked or hung); re-open at the next backoff step, or
                    // close (`half_open_timeout_state`). Their slots go with the generation.
                    None if self.half_open_expired(w) => {
                        let (next, d) = self.half_open_timed_out(w);
                        wait = d;
                        (next, Some(TransitionReason::HalfOpenTimedOut))
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
            if next.is(State::Closed) {
                // A timed-out half-open period closed: this caller's is the first CLOSED call.
                if let Some(reason) = reason {
                    self.transitioned(w, next, reason, None);
                }
                return Ok(Ticket::new(next.gen(), Kind::Window, self.start_us()));
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

    /// Where HALF-OPEN word `w`, full past `max_half_open_wait`, goes: OPEN at the next
    /// backoff step (with its wait), or CLOSED, as configured (`half_open_timeout_state`).
    pub(super) fn half_open_timed_out(&self, w: Word) -> (Word, Option<Duration>) {
        if self.config.half_open_timeout_state == State::Closed {
            return (w.next(State::Closed, 0), None);
        }
        let d = self.wait_for(w.next_step());
        (w.open(self.now_ms(), d), Some(d))
    }

    /// HALF-OPEN word `w`: the milliseconds its period has lasted by its stamp (`Err` with the
    /// stamp word and the time now when this generation has no stamp yet).
    fn half_open_lasted(&self, w: Word) -> Result<u64, (u64, u64)> {
        let now = self.now_ms() & MS_MASK;
        // Relaxed: the stamp is a hint about one generation and publishes no other memory; a
        // stale read only delays the time-out until a later read sees the stamp.
        let cur = self.half_open_since.load(Ordering::Relaxed);
        if (cur >> MS_BITS) as u32 == w.gen() {
            Ok(now.wrapping_sub(cur & MS_MASK) & MS_MASK)
        } else {
            Err((cur, now))
        }
    }

    /// HALF-OPEN word `w`: whether the current period's stamp says `max_half_open_wait` has
    /// passed (`Ok`), or the time left (`Err`); read only, unlike
    /// [`half_open_expired`](Self::half_open_expired). A period with no stamp yet counts as
    /// just begun.
    pub(super) fn half_open_overdue(&self, w: Word) -> Result<(), Duration> {
        let lasted = self.half_open_lasted(w).unwrap_or(0);
        match self.max_half_open_ms.checked_sub(lasted) {
            Some(left) if left > 0 => Err(Duration::from_millis(left)),
            _ => Ok(()),
        }
    }

    /// Whether HALF-OPEN word `w` has been full for longer than `max_half_open_wait`. The first
    /// caller to find no stamp for this generation stamps it (so the wait counts from no later
    /// than that moment).
    #[cold]
    pub(super) fn half_open_expired(&self, w: Word) -> bool {
        match self.half_open_lasted(w) {
            Ok(lasted) => lasted >= self.max_half_open_ms,
            Err((cur, now)) => {
                // Relaxed: as in `half_open_lasted`.
                let _ = self.half_open_since.compare_exchange(
                    cur,
                    half_open_stamp(w.gen(), now),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                false
            }
        }
    }

    #[inline(always)]
    pub(super) fn reject(&self, state: State, retry_us: Option<u64>) -> Rejected {
        self.stripes.add_rejected();
        let rejected = Rejected::new(state, retry_us);
        self.listeners.emit(&self.name, || EventKind::Rejected {
            state,
            retry_after: rejected.retry_after(),
        });
        rejected
    }
}
