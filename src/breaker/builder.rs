//! The [`Builder`]: a breaker's configuration set one setting at a time, validated, and
//! built into a [`CircuitBreaker`]. It sits with what it builds (the configuration itself,
//! `crate::config`, knows nothing of the breaker).

use crate::backoff::OpenWait;
use crate::breaker::CircuitBreaker;
use crate::clock::Clock;
use crate::config::{Config, ConfigError, HalfOpenDecision, WindowConfig};
use crate::state::State;
use std::time::Duration;

/// Builds a [`CircuitBreaker`]; [`Builder::build`] validates every setting.
///
/// ```
/// use breakerbox::CircuitBreaker;
/// use std::time::Duration;
///
/// let breaker = CircuitBreaker::builder()
///     .failure_rate_threshold(0.5)
///     .count_window(20)
///     .minimum_calls(10)
///     .open_wait(Duration::from_secs(30))
///     .build()
///     .unwrap();
/// assert!(breaker.try_acquire().is_ok());
///
/// let err = CircuitBreaker::builder().failure_rate_threshold(1.5).build().unwrap_err();
/// assert_eq!(err.field(), "failure_rate_threshold");
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Builder<C> {
    config: Config,
    clock: C,
    name: Option<String>,
    /// Whether `minimum_calls` was set (by `minimum_calls` or `config`); if not, it follows a
    /// count window smaller than its default.
    minimum_set: bool,
    /// How many of `open_wait` / `open_wait_backoff` were called: two is a contradiction that
    /// `build` reports (the last one would otherwise win silently).
    open_wait_sets: u8,
}

impl<C: Clock> Builder<C> {
    pub(crate) fn with_clock(clock: C) -> Self {
        Builder {
            config: Config::default(),
            clock,
            name: None,
            minimum_set: false,
            open_wait_sets: 0,
        }
    }

    /// Replaces every setting with `config` (for instance one read from a file).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self.minimum_set = true;
        self
    }

    /// A name, reported in events, metrics and errors.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Uses `clock` as the time source (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn clock<C2: Clock>(self, clock: C2) -> Builder<C2> {
        Builder {
            config: self.config,
            clock,
            name: self.name,
            minimum_set: self.minimum_set,
            open_wait_sets: self.open_wait_sets,
        }
    }

    /// Trip when the failure rate reaches `threshold` (in `(0, 1]`). Default 0.5.
    pub fn failure_rate_threshold(mut self, threshold: f64) -> Self {
        self.config.failure_rate_threshold = Some(threshold);
        self
    }

    /// Turns the failure-rate rule off (another rule must be on).
    pub fn no_failure_rate(mut self) -> Self {
        self.config.failure_rate_threshold = None;
        self
    }

    /// Trip when the share of calls taking at least `duration` reaches `threshold`.
    pub fn slow_calls(mut self, duration: Duration, threshold: f64) -> Self {
        self.config.slow_call_duration = duration;
        self.config.slow_call_rate_threshold = Some(threshold);
        self
    }

    /// Trip after `n` failures in a row (the classic rule).
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.config.consecutive_failures = Some(n);
        self
    }

    /// Calls the window must hold before rates are evaluated. Default 10, or the count
    /// window's size when that is smaller and this is not set.
    pub fn minimum_calls(mut self, n: u32) -> Self {
        self.config.minimum_calls = n;
        self.minimum_set = true;
        self
    }

    /// A count window over the last `size` calls. Default 100.
    pub fn count_window(mut self, size: u32) -> Self {
        self.config.window = WindowConfig::Count { size };
        self
    }

    /// A time window over the last `duration`, in `buckets` buckets.
    pub fn time_window(mut self, duration: Duration, buckets: u32) -> Self {
        self.config.window = WindowConfig::Time { duration, buckets };
        self
    }

    /// A fixed open wait. Default 60 s.
    pub fn open_wait(mut self, wait: Duration) -> Self {
        self.config.open_wait = OpenWait::fixed(wait);
        self.open_wait_sets = self.open_wait_sets.saturating_add(1);
        self
    }

    /// An open wait that backs off exponentially; see [`OpenWait`].
    pub fn open_wait_backoff(mut self, wait: OpenWait) -> Self {
        self.config.open_wait = wait;
        self.open_wait_sets = self.open_wait_sets.saturating_add(1);
        self
    }

    /// Random shortening of open waits, a fraction in `[0, 1)`. Default 0.
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.config.jitter = jitter;
        self
    }

    /// Trial calls allowed in flight while half-open. Default 1.
    pub fn half_open_permits(mut self, n: u32) -> Self {
        self.config.half_open_permits = n;
        self
    }

    /// Trial successes needed to close. Default 1.
    pub fn half_open_successes(mut self, n: u32) -> Self {
        self.config.half_open_successes = n;
        self
    }

    /// See [`Config::max_half_open_wait`].
    pub fn max_half_open_wait(mut self, wait: Duration) -> Self {
        self.config.max_half_open_wait = Some(wait);
        self
    }

    /// No limit on how long a full HALF-OPEN period lasts (resilience4j's
    /// `maxWaitDurationInHalfOpenState` of 0): see [`Config::max_half_open_wait`].
    pub fn no_max_half_open_wait(mut self) -> Self {
        self.config.max_half_open_wait = None;
        self
    }

    /// See [`Config::half_open_timeout_state`]: `State::Open` (the default) or
    /// `State::Closed`.
    pub fn half_open_timeout_state(mut self, state: State) -> Self {
        self.config.half_open_timeout_state = state;
        self
    }

    /// Invocation timeout for async calls (counts as a failure; `tokio` feature).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.config.call_timeout = Some(timeout);
        self
    }

    /// See [`Config::half_open_decision`].
    pub fn half_open_decision(mut self, decision: HalfOpenDecision) -> Self {
        self.config.half_open_decision = decision;
        self
    }

    /// See [`Config::initial_state`].
    pub fn initial_state(mut self, state: State) -> Self {
        self.config.initial_state = state;
        self
    }

    /// See [`Config::automatic_half_open`] (needs [`build_shared`](Self::build_shared)).
    pub fn automatic_half_open(mut self, on: bool) -> Self {
        self.config.automatic_half_open = on;
        self
    }

    /// Results `rule` matches are ignored (nothing is recorded); checked before every other
    /// rule. See [`Classification`](crate::Classification).
    pub fn ignore(mut self, rule: crate::Rule) -> Self {
        self.config.classification.ignore.push(rule);
        self
    }

    /// Results `rule` matches are failures; once a `record` rule is set, results no such rule
    /// matches are successes. See [`Classification`](crate::Classification).
    pub fn record(mut self, rule: crate::Rule) -> Self {
        self.config.classification.record.push(rule);
        self
    }

    /// Results `rule` matches are failures that open the breaker at once
    /// ([`Outcome::Trip`](crate::Outcome::Trip)). See
    /// [`Classification`](crate::Classification).
    pub fn trip_on(mut self, rule: crate::Rule) -> Self {
        self.config.classification.trip.push(rule);
        self
    }

    /// The configuration so far.
    pub fn current_config(&self) -> &Config {
        &self.config
    }

    /// Validates the configuration and builds the breaker.
    pub fn build(mut self) -> Result<CircuitBreaker<C>, ConfigError> {
        if self.open_wait_sets > 1 {
            return Err(ConfigError::Inconsistent {
                field: "open_wait",
                reason: "set more than once (`open_wait` / `open_wait_backoff`): the last would \
                         silently win; set it once",
            });
        }
        if let WindowConfig::Count { size } = self.config.window {
            if !self.minimum_set && size >= 1 && size < self.config.minimum_calls {
                // The default minimum follows a smaller window (`count_window(5)` alone works).
                self.config.minimum_calls = size;
            }
        }
        self.config.validate()?;
        if self.config.automatic_half_open {
            return Err(ConfigError::Inconsistent {
                field: "automatic_half_open",
                reason:
                    "needs a shared breaker for its timer: use `build_shared()` (or a Registry)",
            });
        }
        Ok(CircuitBreaker::from_parts(
            self.config,
            self.clock,
            self.name,
        ))
    }

    /// Like [`build`](Self::build), in an `Arc`; the form that supports
    /// [`automatic_half_open`](Config::automatic_half_open) (the timer keeps a weak reference).
    ///
    /// ```
    /// use breakerbox::{CircuitBreaker, State};
    /// use std::time::Duration;
    ///
    /// let breaker = CircuitBreaker::builder()
    ///     .automatic_half_open(true)
    ///     .open_wait(Duration::from_millis(20))
    ///     .build_shared()
    ///     .unwrap();
    /// breaker.transition_to_open_for(Duration::from_millis(20)).unwrap();
    /// // No caller needed: the timer moves it on.
    /// while breaker.state() == State::Open {
    ///     std::thread::sleep(Duration::from_millis(5));
    /// }
    /// assert_eq!(breaker.state(), State::HalfOpen);
    /// ```
    pub fn build_shared(mut self) -> Result<std::sync::Arc<CircuitBreaker<C>>, ConfigError> {
        let automatic = std::mem::replace(&mut self.config.automatic_half_open, false);
        Ok(self.build()?.share(automatic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // (A manual clock: Miri runs these, and the default clock reads the CPU's counter.)
    #[test]
    fn the_default_minimum_follows_a_smaller_count_window() {
        let b = Builder::with_clock(crate::ManualClock::new())
            .count_window(5)
            .build()
            .unwrap();
        assert_eq!(b.config().minimum_calls, 5);
        // Set explicitly, it is checked, and the message shows both values.
        let e = Builder::with_clock(crate::ManualClock::new())
            .minimum_calls(20)
            .count_window(5)
            .build()
            .unwrap_err();
        assert_eq!(e.field(), "minimum_calls");
        let msg = e.to_string();
        assert!(
            msg.contains("20") && msg.contains("count window of 5"),
            "{msg}"
        );
        // A larger window keeps the default.
        let b = Builder::with_clock(crate::ManualClock::new())
            .count_window(500)
            .build()
            .unwrap();
        assert_eq!(b.config().minimum_calls, 10);
    }

    #[test]
    fn call_timeout_needs_the_tokio_feature() {
        let r = Builder::with_clock(crate::ManualClock::new())
            .call_timeout(Duration::from_millis(500))
            .build();
        if cfg!(feature = "tokio") {
            assert!(r.is_ok());
        } else {
            assert_eq!(r.unwrap_err().field(), "call_timeout");
        }
    }

    #[test]
    fn setting_the_open_wait_twice_is_refused() {
        let e = Builder::with_clock(crate::ManualClock::new())
            .open_wait(Duration::from_secs(5))
            .open_wait_backoff(OpenWait::exponential(
                Duration::from_secs(1),
                Duration::from_secs(60),
            ))
            .build()
            .unwrap_err();
        assert_eq!(e.field(), "open_wait");
        assert!(e.to_string().contains("more than once"), "{e}");
        Builder::with_clock(crate::ManualClock::new())
            .open_wait(Duration::from_secs(5))
            .build()
            .unwrap();
    }
}
