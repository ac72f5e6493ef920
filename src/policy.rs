//! Trip rules: pure functions from window counts to "trip or not".
//!
//! No atomics here: the breaker records an outcome, gets the window's counts back, and asks
//! [`TripRules::evaluate`] whether they call for opening. Unit tests call it directly.

use crate::window::Counts;

/// Why a breaker tripped (moved from CLOSED to OPEN).
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum TripReason {
    /// The failure rate over the window reached the threshold.
    FailureRate {
        /// Failure rate in the window when it tripped.
        rate: f64,
        /// The configured threshold.
        threshold: f64,
        /// Calls in the window the decision was made on.
        calls: u64,
        /// Failed calls among them (`rate` is `failures / calls`).
        failures: u64,
    },
    /// The slow-call rate over the window reached the threshold.
    SlowCallRate {
        /// Slow-call rate in the window when it tripped.
        rate: f64,
        /// The configured threshold.
        threshold: f64,
        /// Calls in the window the decision was made on.
        calls: u64,
        /// Slow calls among them (`rate` is `slow / calls`).
        slow: u64,
    },
    /// The configured number of consecutive failures was reached.
    ConsecutiveFailures {
        /// Consecutive failures counted.
        count: u64,
    },
    /// A call's result was classified as [`Outcome::Trip`](crate::Outcome::Trip) (a rule in
    /// [`Classification::trip`](crate::Classification::trip), or a classifier of your own).
    /// Opens a CLOSED or a HALF-OPEN breaker.
    Classified,
}

impl TripReason {
    /// The rate that reached its threshold, for the two rate rules.
    pub fn rate(&self) -> Option<f64> {
        match *self {
            TripReason::FailureRate { rate, .. } | TripReason::SlowCallRate { rate, .. } => {
                Some(rate)
            }
            TripReason::ConsecutiveFailures { .. } | TripReason::Classified => None,
        }
    }
}

impl std::fmt::Display for TripReason {
    /// `failure rate 76% >= 50% over 29 calls`, `5 consecutive failures`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            TripReason::FailureRate {
                rate,
                threshold,
                calls,
                ..
            } => write!(
                f,
                "failure rate {:.0}% >= {:.0}% over {calls} {}",
                rate * 100.0,
                threshold * 100.0,
                if calls == 1 { "call" } else { "calls" }
            ),
            TripReason::SlowCallRate {
                rate,
                threshold,
                calls,
                ..
            } => write!(
                f,
                "slow-call rate {:.0}% >= {:.0}% over {calls} {}",
                rate * 100.0,
                threshold * 100.0,
                if calls == 1 { "call" } else { "calls" }
            ),
            TripReason::ConsecutiveFailures { count: 1 } => f.write_str("1 failure"),
            TripReason::ConsecutiveFailures { count } => write!(f, "{count} consecutive failures"),
            TripReason::Classified => f.write_str("a result classified as a trip"),
        }
    }
}

/// The trip rules of one breaker, each optional.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct TripRules {
    pub failure_rate: Option<f64>,
    pub slow_rate: Option<f64>,
    pub consecutive: Option<u64>,
    pub minimum_calls: u64,
}

/// A rate, and whether it reached `threshold`. Integer comparison avoids rounding surprises:
/// `bad / calls >= threshold` is evaluated as `bad >= ceil(threshold * calls)` up to f64
/// precision, so 5 of 10 trips a 0.5 threshold exactly.
#[inline]
fn reaches(bad: u64, calls: u64, threshold: f64) -> Option<f64> {
    let rate = bad as f64 / calls as f64;
    // A tiny epsilon absorbs representation error (0.1 * 30 = 3.0000000000000004).
    (bad as f64 >= threshold * calls as f64 - 1e-9).then_some(rate)
}

impl TripRules {
    /// Whether the window holds enough calls (at least one, and `minimum_calls`) for the rates
    /// to be evaluated.
    #[inline]
    pub(crate) fn rates_ready(&self, counts: Counts) -> bool {
        counts.calls > 0 && counts.calls >= self.minimum_calls
    }

    /// Whether `counts` (and the consecutive-failure streak) call for opening.
    pub(crate) fn evaluate(&self, counts: Counts, streak: u64) -> Option<TripReason> {
        if let Some(n) = self.consecutive {
            if streak >= n {
                return Some(TripReason::ConsecutiveFailures { count: streak });
            }
        }
        if !self.rates_ready(counts) {
            return None;
        }
        self.rate_reached(counts)
    }

    /// The rate rules alone, without the minimum: whether a rate in `counts` reaches its
    /// threshold (the half-open verdict by rate, over exactly the permitted trials).
    pub(crate) fn rate_reached(&self, counts: Counts) -> Option<TripReason> {
        if counts.calls == 0 {
            return None;
        }
        if let Some(threshold) = self.failure_rate {
            if let Some(rate) = reaches(counts.failures, counts.calls, threshold) {
                return Some(TripReason::FailureRate {
                    rate,
                    threshold,
                    calls: counts.calls,
                    failures: counts.failures,
                });
            }
        }
        if let Some(threshold) = self.slow_rate {
            if let Some(rate) = reaches(counts.slow, counts.calls, threshold) {
                return Some(TripReason::SlowCallRate {
                    rate,
                    threshold,
                    calls: counts.calls,
                    slow: counts.slow,
                });
            }
        }
        None
    }

    /// Each rate rule on its own (failure rate, slow-call rate): whether it reaches its
    /// threshold in `counts`, once the window holds its minimum calls.
    pub(crate) fn rates_reached(&self, counts: Counts) -> [Option<TripReason>; 2] {
        if !self.rates_ready(counts) {
            return [None, None];
        }
        let failure = TripRules {
            slow_rate: None,
            ..*self
        };
        let slow = TripRules {
            failure_rate: None,
            ..*self
        };
        [failure.rate_reached(counts), slow.rate_reached(counts)]
    }

    /// Whether the window needs to be evaluated at all after an outcome with these bits.
    #[inline]
    pub(crate) fn may_trip(&self, failed: bool, slow: bool) -> bool {
        (failed && (self.failure_rate.is_some() || self.consecutive.is_some()))
            || (slow && self.slow_rate.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> TripRules {
        TripRules {
            failure_rate: Some(0.5),
            slow_rate: Some(0.8),
            consecutive: Some(5),
            minimum_calls: 10,
        }
    }

    fn counts(calls: u64, failures: u64, slow: u64) -> Counts {
        Counts {
            calls,
            failures,
            slow,
        }
    }

    #[test]
    fn minimum_calls_gates_rates_but_not_streaks() {
        assert_eq!(rules().evaluate(counts(9, 9, 9), 0), None);
        assert!(matches!(
            rules().evaluate(counts(3, 3, 0), 5),
            Some(TripReason::ConsecutiveFailures { count: 5 })
        ));
    }

    #[test]
    fn thresholds_are_inclusive() {
        assert!(matches!(
            rules().evaluate(counts(10, 5, 0), 0),
            Some(TripReason::FailureRate { .. })
        ));
        assert_eq!(rules().evaluate(counts(10, 4, 7), 0), None);
        assert!(matches!(
            rules().evaluate(counts(10, 0, 8), 0),
            Some(TripReason::SlowCallRate { .. })
        ));
        let r = TripRules {
            failure_rate: Some(0.1),
            ..rules()
        };
        assert!(r.evaluate(counts(30, 3, 0), 0).is_some());
        assert!(r.evaluate(counts(30, 2, 0), 0).is_none());
    }

    #[test]
    fn threshold_one_needs_every_call_to_fail() {
        let r = TripRules {
            failure_rate: Some(1.0),
            ..rules()
        };
        assert!(r.evaluate(counts(10, 9, 0), 0).is_none());
        assert!(r.evaluate(counts(10, 10, 0), 0).is_some());
    }
}
