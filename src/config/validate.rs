//! The validation of a [`Config`]: [`ConfigError`], which names the offending field, the
//! limits, and [`Config::validate`]'s checks.

use super::{Config, HalfOpenDecision, WindowConfig};
use crate::backoff::OpenWait;
use crate::state::{State, MAX_HALF_OPEN, MAX_OPEN_WAIT, MAX_RATE_TRIALS, MAX_STEP};
use crate::window::count::MAX_SIZE as MAX_COUNT_WINDOW;
use std::time::Duration;

/// Largest number of buckets in a time window.
pub const MAX_BUCKETS: u32 = 10_000;
/// Smallest bucket width of a time window (the coarse clock's granularity).
pub const MIN_BUCKET_WIDTH: Duration = Duration::from_millis(1);
/// Longest time window.
pub const MAX_TIME_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

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
            OpenWait::Custom { max, .. } => check_range(
                "open_wait.max",
                max,
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
        if let Some(wait) = self.max_half_open_wait {
            check_range(
                "max_half_open_wait",
                wait,
                Duration::from_millis(1),
                MAX_OPEN_WAIT,
                "1ms ..= 24h (or none: no limit)",
            )?;
        }
        if !matches!(self.half_open_timeout_state, State::Open | State::Closed) {
            return Err(out_of_range(
                "half_open_timeout_state",
                self.half_open_timeout_state,
                "open or closed",
            ));
        }
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
        for (field, rule) in self.classification.rules() {
            if let Some((from, to)) = rule.status_bounds() {
                if !(100..=999).contains(&from) || !(100..=999).contains(&to) || from > to {
                    return Err(out_of_range(
                        field,
                        rule,
                        "HTTP statuses within 100 ..= 999, the first not above the last",
                    ));
                }
            }
        }
        Ok(())
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
}
