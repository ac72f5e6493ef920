//! Open-wait interval functions: how long the breaker stays OPEN after its n-th consecutive
//! opening (the count resets when it closes).

use std::sync::Arc;
use std::time::Duration;

/// How long an OPEN breaker waits before letting trial calls through.
#[derive(Clone, Debug)]
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
    /// `IntervalFunction`, capped at `max`: any `Fn(u32) -> Duration` (closures that capture
    /// included; made with [`OpenWait::custom`]). It is called when the breaker opens, on the
    /// thread that opens it, possibly more than once for one opening when threads race; if it
    /// panics the wait is `max`. Not expressible in config files.
    ///
    /// ```
    /// use breakerbox::OpenWait;
    /// use std::time::Duration;
    ///
    /// let step = Duration::from_secs(10);
    /// let w = OpenWait::custom(move |n| step * n, Duration::from_secs(25));
    /// assert_eq!(w.base_wait(1), Duration::from_secs(10));
    /// assert_eq!(w.base_wait(3), Duration::from_secs(25));
    /// ```
    #[cfg_attr(feature = "serde", serde(skip))]
    Custom {
        /// The wait of the `n`-th opening in a row.
        f: WaitFn,
        /// The cap (at most 24 h): also the longest wait the breaker plans for.
        max: Duration,
    },
}

/// The function of an [`OpenWait::Custom`]: the wait of the `n`-th opening in a row. Cloning
/// it shares the function.
#[derive(Clone)]
pub struct WaitFn(Arc<dyn Fn(u32) -> Duration + Send + Sync>);

impl WaitFn {
    /// Wraps `f`.
    pub fn new(f: impl Fn(u32) -> Duration + Send + Sync + 'static) -> Self {
        WaitFn(Arc::new(f))
    }

    /// The wait `f` gives for the `n`-th opening in a row (uncapped; a panic propagates).
    pub fn call(&self, n: u32) -> Duration {
        (self.0)(n)
    }
}

impl<F: Fn(u32) -> Duration + Send + Sync + 'static> From<F> for WaitFn {
    fn from(f: F) -> Self {
        WaitFn::new(f)
    }
}

impl std::fmt::Debug for WaitFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitFn(..)")
    }
}

impl PartialEq for WaitFn {
    /// The same function: one made by [`WaitFn::new`] and its clones.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl OpenWait {
    /// A wait given by `f` for the `n`-th opening in a row (1 for the first), capped at `max`
    /// (see [`OpenWait::Custom`]).
    pub fn custom(f: impl Fn(u32) -> Duration + Send + Sync + 'static, max: Duration) -> Self {
        OpenWait::Custom {
            f: WaitFn::new(f),
            max,
        }
    }

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
            OpenWait::Custom { ref f, max } => {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.call(n)))
                    .map_or(max, |w| w.min(max))
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
    /// Field by field; two `Custom` waits are equal when their caps are and they share one
    /// function (made by one [`WaitFn::new`]).
    fn eq(&self, other: &Self) -> bool {
        use OpenWait::*;
        match (self, other) {
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
            (Custom { f: f1, max: a }, Custom { f: f2, max: b }) => a == b && f1 == f2,
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
