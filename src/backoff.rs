//! Open-wait interval functions: how long the breaker stays OPEN after its n-th consecutive
//! opening (the count resets when it closes).

use std::time::Duration;

/// How long an OPEN breaker waits before letting trial calls through.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)
)]
pub enum OpenWait {
    /// The same wait every time.
    Fixed {
        /// The wait.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        wait: Duration,
    },
    /// `initial * multiplier^(n-1)` for the n-th opening in a row, capped at `max`.
    Exponential {
        /// The first wait.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        initial: Duration,
        /// Growth factor per consecutive opening (at least 1).
        multiplier: f64,
        /// The cap.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        max: Duration,
    },
    /// A function of the opening's number in a row (1 for the first), as resilience4j's
    /// `IntervalFunction`, capped at `max`. A `fn` pointer (any closure that captures
    /// nothing), so that the configuration stays `Copy`; if it panics the wait is `max`. Not
    /// expressible in config files.
    ///
    /// ```
    /// use breakerbox::OpenWait;
    /// use std::time::Duration;
    ///
    /// let w = OpenWait::Custom {
    ///     f: |n| Duration::from_secs(10 * u64::from(n)),
    ///     max: Duration::from_secs(25),
    /// };
    /// assert_eq!(w.base_wait(1), Duration::from_secs(10));
    /// assert_eq!(w.base_wait(3), Duration::from_secs(25));
    /// ```
    #[cfg_attr(feature = "serde", serde(skip))]
    Custom {
        /// The wait of the `n`-th opening in a row.
        f: fn(u32) -> Duration,
        /// The cap (at most 24 h): also the longest wait the breaker plans for.
        max: Duration,
    },
}

impl OpenWait {
    /// A fixed wait.
    pub const fn fixed(wait: Duration) -> Self {
        OpenWait::Fixed { wait }
    }

    /// An exponential backoff starting at `initial`, doubling, capped at `max`.
    pub const fn exponential(initial: Duration, max: Duration) -> Self {
        OpenWait::Exponential {
            initial,
            multiplier: 2.0,
            max,
        }
    }

    /// The longest wait this function can give: the breaker's deadline horizon.
    pub fn longest(&self) -> Duration {
        match *self {
            OpenWait::Fixed { wait } => wait,
            OpenWait::Exponential { .. } => self.base_wait(crate::state::MAX_STEP),
            OpenWait::Custom { max, .. } => max,
        }
    }

    /// The wait before jitter for the `n`-th consecutive opening (`n >= 1`).
    pub fn base_wait(&self, n: u32) -> Duration {
        match *self {
            OpenWait::Fixed { wait } => wait,
            // User code: a panic gives the cap (the breaker's state must not depend on it).
            OpenWait::Custom { f, max } => {
                std::panic::catch_unwind(|| f(n)).map_or(max, |w| w.min(max))
            }
            OpenWait::Exponential {
                initial,
                multiplier,
                max,
            } => {
                let exp = n.saturating_sub(1).min(1024) as i32;
                let factor = multiplier.powi(exp);
                let secs = initial.as_secs_f64() * factor;
                if !secs.is_finite() || secs >= max.as_secs_f64() {
                    max
                } else {
                    Duration::from_secs_f64(secs)
                }
            }
        }
    }

    /// The wait with jitter applied: `base * (1 - jitter * r)` for `r` uniform in `[0, 1)`.
    /// Jitter only shortens the wait, so `max` stays a true upper bound.
    pub fn wait(&self, n: u32, jitter: f64, r: f64) -> Duration {
        let base = self.base_wait(n);
        if jitter <= 0.0 {
            return base;
        }
        base.mul_f64((1.0 - jitter * r.clamp(0.0, 1.0)).max(0.0))
    }
}

impl PartialEq for OpenWait {
    /// Field by field; two `Custom` waits are equal when their caps are and their functions
    /// have the same address (`std::ptr::fn_addr_eq`: one function may have several).
    fn eq(&self, other: &Self) -> bool {
        use OpenWait::*;
        match (*self, *other) {
            (Fixed { wait: a }, Fixed { wait: b }) => a == b,
            (
                Exponential {
                    initial: i1,
                    multiplier: m1,
                    max: x1,
                },
                Exponential {
                    initial: i2,
                    multiplier: m2,
                    max: x2,
                },
            ) => i1 == i2 && m1 == m2 && x1 == x2,
            (Custom { f: f1, max: a }, Custom { f: f2, max: b }) => {
                a == b && std::ptr::fn_addr_eq(f1, f2)
            }
            _ => false,
        }
    }
}

impl From<Duration> for OpenWait {
    /// A fixed wait.
    fn from(wait: Duration) -> Self {
        OpenWait::fixed(wait)
    }
}

impl Default for OpenWait {
    fn default() -> Self {
        OpenWait::fixed(Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_grows_and_caps() {
        let w = OpenWait::exponential(Duration::from_secs(1), Duration::from_secs(10));
        let waits: Vec<u64> = (1..=6).map(|n| w.base_wait(n).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(w.base_wait(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn jitter_only_shortens() {
        let w = OpenWait::fixed(Duration::from_secs(10));
        assert_eq!(w.wait(1, 0.5, 0.0), Duration::from_secs(10));
        assert_eq!(w.wait(1, 0.5, 0.5), Duration::from_millis(7500));
        assert!(w.wait(1, 0.5, 0.999) > Duration::from_secs(5));
    }
}
