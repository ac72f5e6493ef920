//! Observation: state, metrics snapshots and listeners.

use super::*;

impl<C: Clock> CircuitBreaker<C> {
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
        // The current half-open period's reported trials: [recorded, failures, slow].
        let trials = match (w.is(State::HalfOpen), self.by_rate) {
            (false, _) => [0; 3],
            (true, true) => {
                let [_, recorded, failures, slow] = w.rate_trials();
                [recorded, failures, slow]
            }
            (true, false) => [w.trial_successes(), 0, 0],
        };
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
            half_open_trials: trials[0],
            half_open_trial_failures: trials[1],
            half_open_trial_slow_calls: trials[2],
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
