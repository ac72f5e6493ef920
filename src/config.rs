//! Configuration: the [`Config`] data, its validation, and the [`Builder`].
//!
//! `Config` is plain data (serde-capable behind the `serde` feature, for config files). Nothing
//! builds a breaker from it without [`Config::validate`]: invalid values are rejected with a
//! [`ConfigError`] that names the field.

use crate::backoff::OpenWait;
use crate::breaker::CircuitBreaker;
use crate::clock::Clock;
use crate::policy::TripRules;
use crate::state::{State, MAX_HALF_OPEN, MAX_OPEN_WAIT, MAX_RATE_TRIALS, MAX_STEP};
use crate::window::count::MAX_SIZE as MAX_COUNT_WINDOW;
use std::time::Duration;

/// Largest number of buckets in a time window.
pub const MAX_BUCKETS: u32 = 10_000;
/// Smallest bucket width of a time window (the coarse clock's granularity).
pub const MIN_BUCKET_WIDTH: Duration = Duration::from_millis(1);
/// Longest time window.
pub const MAX_TIME_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// The sliding window that failure and slow-call rates are computed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)
)]
pub enum WindowConfig {
    /// The last `size` calls.
    Count {
        /// Number of calls in the window (1 ..= 8,388,607).
        size: u32,
    },
    /// The calls of the last `duration`, aggregated into `buckets` buckets.
    Time {
        /// Length of the window (at most one day).
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        duration: Duration,
        /// Number of buckets (1 ..= 10,000; each at least 1 ms wide).
        buckets: u32,
    },
}

/// Every setting of a breaker. Build one with [`CircuitBreaker::builder`], write it as a struct
/// literal over `Config::default()`, or deserialize it (feature `serde`), and pass it to
/// [`Builder::config`] (or [`Registry::configure`](crate::Registry::configure)).
///
/// ```
/// use breakerbox::{Config, WindowConfig};
/// let config = Config {
///     consecutive_failures: Some(5),
///     window: WindowConfig::Count { size: 50 },
///     ..Config::default()
/// };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Config {
    /// Trip when the failure rate in the window reaches this (in `(0, 1]`); `None` disables.
    /// In a config file: a number, or `"off"` (or `false`, or `null` where the format has one).
    #[cfg_attr(feature = "serde", serde(with = "off"))]
    pub failure_rate_threshold: Option<f64>,
    /// Trip when the slow-call rate in the window reaches this (in `(0, 1]`); `None` disables.
    /// In a config file: a number or `"off"`.
    #[cfg_attr(feature = "serde", serde(with = "off"))]
    pub slow_call_rate_threshold: Option<f64>,
    /// A call at least this long is slow (must be > 0 when the slow rule is on).
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub slow_call_duration: Duration,
    /// Trip after this many failures in a row; `None` disables. In a config file: a number or
    /// `"off"`.
    #[cfg_attr(feature = "serde", serde(with = "off"))]
    pub consecutive_failures: Option<u32>,
    /// Rates are only evaluated once the window holds this many calls.
    pub minimum_calls: u32,
    /// The sliding window.
    pub window: WindowConfig,
    /// How long to stay OPEN.
    pub open_wait: OpenWait,
    /// Random shortening of each open wait, as a fraction in `[0, 1)`.
    pub jitter: f64,
    /// Trial calls allowed in flight while HALF-OPEN.
    pub half_open_permits: u32,
    /// Trial successes that close the breaker.
    pub half_open_successes: u32,
    /// The longest HALF-OPEN may stay full (every trial permit taken, none reported) before
    /// the next caller re-opens the breaker at the next backoff step, as resilience4j's
    /// `maxWaitDurationInHalfOpenState`. It reclaims trial permits that were leaked
    /// (`mem::forget`, a leaked future) or whose calls hang. Default 60 s; `1ms ..= 24h`.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub max_half_open_wait: Duration,
    /// Invocation timeout for async calls; a timed-out call counts as a failure. Needs the
    /// `tokio` feature: without it, validation refuses a timeout rather than ignore it.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub call_timeout: Option<Duration>,
    /// How HALF-OPEN decides between closing and re-opening (default: the first failed
    /// trial re-opens).
    pub half_open_decision: HalfOpenDecision,
    /// The state a new breaker starts in (default CLOSED). `open` starts the first open wait
    /// at construction (backoff step 1); `half_open` admits trial calls at once.
    pub initial_state: State,
    /// Move OPEN -> HALF-OPEN when the open wait ends, from a background timer thread, so
    /// that dashboards show HALF-OPEN without waiting for a caller (resilience4j's
    /// `automaticTransitionFromOpenToHalfOpenEnabled`). The timer holds a weak reference to
    /// the breaker, so it needs a shared one: [`Builder::build_shared`] or a
    /// [`Registry`](crate::Registry); [`Builder::build`] refuses the setting. Off by default:
    /// without it the first caller after the wait makes the transition (and takes the first
    /// trial). Never on the hot path either way.
    pub automatic_half_open: bool,
}

/// How a HALF-OPEN breaker decides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum HalfOpenDecision {
    /// The first failed (or, with the slow-call rule, slow) trial re-opens;
    /// [`half_open_successes`](Config::half_open_successes) successes close. Fails fast:
    /// a dependency that is still down gets one trial call, not `half_open_permits`.
    #[default]
    FirstFailure,
    /// As resilience4j: each of the [`half_open_permits`](Config::half_open_permits) trial
    /// calls (at most 255) runs once; when all have reported, the breaker re-opens if their
    /// failure rate or slow-call rate reaches its threshold, and closes otherwise. Needs a
    /// rate rule; `half_open_successes` must stay 1 (it is not used).
    Rate,
}

/// Optional rules in config files: TOML has no `null`, so a rule that is on by default (the
/// failure rate) could not be switched off. A value, `"off"`, `false` or `null` is accepted, and
/// `None` is written as `"off"`, so every configuration round-trips through TOML, YAML and JSON.
#[cfg(feature = "serde")]
mod off {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw<T> {
        Value(T),
        Flag(bool),
        Word(String),
    }

    pub(super) fn serialize<S: Serializer, T: Serialize>(
        v: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => v.serialize(s),
            None => s.serialize_str("off"),
        }
    }

    pub(super) fn deserialize<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        match Option::<Raw<T>>::deserialize(d)? {
            None | Some(Raw::Flag(false)) => Ok(None),
            Some(Raw::Value(v)) => Ok(Some(v)),
            Some(Raw::Word(w)) if w == "off" => Ok(None),
            Some(_) => Err(D::Error::custom(
                "expected a number, or \"off\" (also `false` or null) to switch the rule off",
            )),
        }
    }
}

/// The default [`Config::max_half_open_wait`]: one minute.
pub const DEFAULT_MAX_HALF_OPEN_WAIT: Duration = Duration::from_secs(60);

impl Default for Config {
    fn default() -> Self {
        Config {
            failure_rate_threshold: Some(0.5),
            slow_call_rate_threshold: None,
            slow_call_duration: Duration::from_secs(1),
            consecutive_failures: None,
            minimum_calls: 10,
            window: WindowConfig::Count { size: 100 },
            open_wait: OpenWait::default(),
            jitter: 0.0,
            half_open_permits: 1,
            half_open_successes: 1,
            max_half_open_wait: DEFAULT_MAX_HALF_OPEN_WAIT,
            call_timeout: None,
            half_open_decision: HalfOpenDecision::FirstFailure,
            initial_state: State::Closed,
            automatic_half_open: false,
        }
    }
}

/// An invalid configuration value. [`ConfigError::field`] names the field.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value outside its allowed range.
    #[error("invalid `{field}`: {value} is outside {expected}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value given, printed.
        value: String,
        /// The allowed range, printed.
        expected: &'static str,
    },
    /// Two settings that contradict each other.
    #[error("invalid `{field}`: {reason}")]
    Inconsistent {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// No trip rule is enabled, so the breaker could never open.
    #[error("invalid `failure_rate_threshold`: no trip rule is set (set `failure_rate_threshold`, `slow_call_rate_threshold` or `consecutive_failures`)")]
    NoTripRule,
}

impl ConfigError {
    /// The name of the offending field.
    pub fn field(&self) -> &'static str {
        match self {
            ConfigError::OutOfRange { field, .. } | ConfigError::Inconsistent { field, .. } => {
                field
            }
            ConfigError::NoTripRule => "failure_rate_threshold",
        }
    }
}

fn out_of_range(
    field: &'static str,
    value: impl std::fmt::Debug,
    expected: &'static str,
) -> ConfigError {
    ConfigError::OutOfRange {
        field,
        value: format!("{value:?}"),
        expected,
    }
}

fn check_rate(field: &'static str, v: Option<f64>) -> Result<(), ConfigError> {
    match v {
        Some(r) if !(r > 0.0 && r <= 1.0) => Err(out_of_range(field, r, "(0, 1]")),
        _ => Ok(()),
    }
}

fn check_range<T: PartialOrd + std::fmt::Debug>(
    field: &'static str,
    v: T,
    lo: T,
    hi: T,
    expected: &'static str,
) -> Result<(), ConfigError> {
    if v < lo || v > hi {
        Err(out_of_range(field, v, expected))
    } else {
        Ok(())
    }
}

impl Config {
    /// Checks every field; the first invalid one is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_rate("failure_rate_threshold", self.failure_rate_threshold)?;
        check_rate("slow_call_rate_threshold", self.slow_call_rate_threshold)?;
        if self.slow_call_rate_threshold.is_some() && self.slow_call_duration.is_zero() {
            return Err(out_of_range(
                "slow_call_duration",
                self.slow_call_duration,
                "(0, ∞) when the slow-call rule is on",
            ));
        }
        if let Some(n) = self.consecutive_failures {
            check_range("consecutive_failures", n, 1, u32::MAX, "1 ..= 4294967295")?;
        }
        if self.failure_rate_threshold.is_none()
            && self.slow_call_rate_threshold.is_none()
            && self.consecutive_failures.is_none()
        {
            return Err(ConfigError::NoTripRule);
        }
        check_range(
            "minimum_calls",
            self.minimum_calls,
            1,
            u32::MAX,
            "1 ..= 4294967295",
        )?;
        match self.window {
            WindowConfig::Count { size } => {
                check_range("window.size", size, 1, MAX_COUNT_WINDOW, "1 ..= 8388607")?;
                if self.minimum_calls > size
                    && (self.failure_rate_threshold.is_some()
                        || self.slow_call_rate_threshold.is_some())
                {
                    return Err(ConfigError::OutOfRange {
                        field: "minimum_calls",
                        value: format!("{} (with a count window of {size})", self.minimum_calls),
                        expected: "1 ..= the count window size (rates could never be evaluated)",
                    });
                }
            }
            WindowConfig::Time { duration, buckets } => {
                check_range("window.buckets", buckets, 1, MAX_BUCKETS, "1 ..= 10000")?;
                check_range(
                    "window.duration",
                    duration,
                    MIN_BUCKET_WIDTH,
                    MAX_TIME_WINDOW,
                    "1ms ..= 24h",
                )?;
                if duration / buckets < MIN_BUCKET_WIDTH {
                    return Err(ConfigError::Inconsistent {
                        field: "window.buckets",
                        reason: "buckets narrower than 1 ms (the coarse clock's granularity)",
                    });
                }
            }
        }
        match self.open_wait {
            OpenWait::Fixed { wait } => check_range(
                "open_wait.wait",
                wait,
                Duration::ZERO,
                MAX_OPEN_WAIT,
                "0 ..= 24h",
            )?,
            OpenWait::Exponential {
                initial,
                multiplier,
                max,
            } => {
                check_range(
                    "open_wait.initial",
                    initial,
                    Duration::ZERO,
                    MAX_OPEN_WAIT,
                    "0 ..= 24h",
                )?;
                check_range(
                    "open_wait.max",
                    max,
                    Duration::ZERO,
                    MAX_OPEN_WAIT,
                    "0 ..= 24h",
                )?;
                if !(multiplier.is_finite() && multiplier >= 1.0) {
                    return Err(out_of_range("open_wait.multiplier", multiplier, "[1, ∞)"));
                }
                if max < initial {
                    return Err(ConfigError::Inconsistent {
                        field: "open_wait.max",
                        reason: "smaller than open_wait.initial",
                    });
                }
                // (A zero `initial` or a multiplier of 1 never grows: nothing to saturate.)
                let at_last_step = initial.as_secs_f64() * multiplier.powi(MAX_STEP as i32 - 1);
                if !initial.is_zero()
                    && multiplier > 1.0
                    && at_last_step.is_finite()
                    && at_last_step < max.as_secs_f64()
                {
                    return Err(ConfigError::Inconsistent {
                        field: "open_wait.multiplier",
                        reason: "too small: the backoff would still be below open_wait.max after 255 openings in a row (the step saturates there)",
                    });
                }
            }
        }
        if !(self.jitter >= 0.0 && self.jitter < 1.0) {
            return Err(out_of_range("jitter", self.jitter, "[0, 1)"));
        }
        check_range(
            "half_open_permits",
            self.half_open_permits,
            1,
            MAX_HALF_OPEN,
            "1 ..= 65535",
        )?;
        check_range(
            "half_open_successes",
            self.half_open_successes,
            1,
            MAX_HALF_OPEN,
            "1 ..= 65535",
        )?;
        check_range(
            "max_half_open_wait",
            self.max_half_open_wait,
            Duration::from_millis(1),
            MAX_OPEN_WAIT,
            "1ms ..= 24h",
        )?;
        if self.half_open_decision == HalfOpenDecision::Rate {
            if self.failure_rate_threshold.is_none() && self.slow_call_rate_threshold.is_none() {
                return Err(ConfigError::Inconsistent {
                    field: "half_open_decision",
                    reason: "`rate` needs `failure_rate_threshold` or `slow_call_rate_threshold`",
                });
            }
            check_range(
                "half_open_permits",
                self.half_open_permits,
                1,
                MAX_RATE_TRIALS,
                "1 ..= 255 when half_open_decision is `rate`",
            )?;
            if self.half_open_successes != 1 {
                return Err(ConfigError::Inconsistent {
                    field: "half_open_successes",
                    reason: "not used when half_open_decision is `rate` (the rates over \
                             half_open_permits trials decide); leave it at 1",
                });
            }
        }
        if let Some(t) = self.call_timeout {
            if t.is_zero() {
                return Err(out_of_range("call_timeout", t, "(0, ∞)"));
            }
            // Without a timer the timeout could not be applied: refuse rather than ignore it.
            #[cfg(not(feature = "tokio"))]
            return Err(ConfigError::Inconsistent {
                field: "call_timeout",
                reason: "needs the `tokio` feature (without it the timeout could not be applied)",
            });
        }
        Ok(())
    }

    pub(crate) fn trip_rules(&self) -> TripRules {
        TripRules {
            failure_rate: self.failure_rate_threshold,
            slow_rate: self.slow_call_rate_threshold,
            consecutive: self.consecutive_failures.map(u64::from),
            minimum_calls: self.minimum_calls as u64,
        }
    }
}

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
        self.config.max_half_open_wait = wait;
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

    fn err(c: Config) -> &'static str {
        c.validate().unwrap_err().field()
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn each_invalid_field_is_named() {
        let d = Config::default;
        assert_eq!(
            err(Config {
                failure_rate_threshold: Some(0.0),
                ..d()
            }),
            "failure_rate_threshold"
        );
        assert_eq!(
            err(Config {
                failure_rate_threshold: Some(f64::NAN),
                ..d()
            }),
            "failure_rate_threshold"
        );
        assert_eq!(
            err(Config {
                slow_call_rate_threshold: Some(1.01),
                ..d()
            }),
            "slow_call_rate_threshold"
        );
        assert_eq!(
            err(Config {
                slow_call_rate_threshold: Some(0.5),
                slow_call_duration: Duration::ZERO,
                ..d()
            }),
            "slow_call_duration"
        );
        assert_eq!(
            err(Config {
                consecutive_failures: Some(0),
                ..d()
            }),
            "consecutive_failures"
        );
        assert_eq!(
            err(Config {
                failure_rate_threshold: None,
                ..d()
            }),
            "failure_rate_threshold"
        );
        assert_eq!(
            err(Config {
                minimum_calls: 0,
                ..d()
            }),
            "minimum_calls"
        );
        assert_eq!(
            err(Config {
                window: WindowConfig::Count { size: 0 },
                ..d()
            }),
            "window.size"
        );
        assert_eq!(
            err(Config {
                minimum_calls: 101,
                ..d()
            }),
            "minimum_calls"
        );
        assert_eq!(
            err(Config {
                window: WindowConfig::Time {
                    duration: Duration::from_secs(1),
                    buckets: 0
                },
                ..d()
            }),
            "window.buckets"
        );
        assert_eq!(
            err(Config {
                window: WindowConfig::Time {
                    duration: Duration::ZERO,
                    buckets: 1
                },
                ..d()
            }),
            "window.duration"
        );
        assert_eq!(
            err(Config {
                window: WindowConfig::Time {
                    duration: Duration::from_millis(10),
                    buckets: 100
                },
                ..d()
            }),
            "window.buckets"
        );
        assert_eq!(
            err(Config {
                open_wait: OpenWait::fixed(Duration::from_secs(90_000)),
                ..d()
            }),
            "open_wait.wait"
        );
        assert_eq!(
            err(Config {
                open_wait: OpenWait::Exponential {
                    initial: Duration::from_secs(1),
                    multiplier: 0.5,
                    max: Duration::from_secs(2)
                },
                ..d()
            }),
            "open_wait.multiplier"
        );
        assert_eq!(
            err(Config {
                open_wait: OpenWait::exponential(Duration::from_secs(10), Duration::from_secs(1)),
                ..d()
            }),
            "open_wait.max"
        );
        assert_eq!(err(Config { jitter: 1.0, ..d() }), "jitter");
        assert_eq!(
            err(Config {
                half_open_permits: 0,
                ..d()
            }),
            "half_open_permits"
        );
        assert_eq!(
            err(Config {
                half_open_permits: 1 << 20,
                ..d()
            }),
            "half_open_permits"
        );
        assert_eq!(
            err(Config {
                half_open_successes: 0,
                ..d()
            }),
            "half_open_successes"
        );
        assert_eq!(
            err(Config {
                call_timeout: Some(Duration::ZERO),
                ..d()
            }),
            "call_timeout"
        );
    }

    #[test]
    fn messages_name_the_field() {
        let e = Config {
            failure_rate_threshold: Some(1.5),
            ..Config::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid `failure_rate_threshold`: 1.5 is outside (0, 1]"
        );
    }

    #[test]
    fn extreme_but_valid_settings_are_accepted() {
        Config {
            window: WindowConfig::Count { size: 1 },
            minimum_calls: 1,
            failure_rate_threshold: Some(1.0),
            open_wait: OpenWait::fixed(Duration::ZERO),
            half_open_permits: MAX_HALF_OPEN,
            ..Config::default()
        }
        .validate()
        .unwrap();
    }

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
