//! The configuration data: [`Config`] (every setting of a breaker), [`WindowConfig`],
//! [`HalfOpenDecision`], their defaults and their serde shapes (feature `serde`).

use crate::backoff::OpenWait;
use crate::classify::Classification;
use crate::policy::TripRules;
use crate::state::State;
use std::time::Duration;

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
///
/// [`CircuitBreaker::builder`]: crate::CircuitBreaker::builder
/// [`Builder::config`]: crate::Builder::config
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Config {
    /// Trip when the failure rate in the window reaches this (in `(0, 1]`); `None` disables.
    /// In a config file: a number, or `"off"` (or `false`, or `null` where the format has one).
    #[cfg_attr(feature = "serde", serde(with = "super::off"))]
    pub failure_rate_threshold: Option<f64>,
    /// Trip when the slow-call rate in the window reaches this (in `(0, 1]`); `None` disables.
    /// In a config file: a number or `"off"`.
    #[cfg_attr(feature = "serde", serde(with = "super::off"))]
    pub slow_call_rate_threshold: Option<f64>,
    /// A call at least this long is slow (must be > 0 when the slow rule is on).
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub slow_call_duration: Duration,
    /// Trip after this many failures in a row; `None` disables. In a config file: a number or
    /// `"off"`.
    #[cfg_attr(feature = "serde", serde(with = "super::off"))]
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
    /// (`mem::forget`, a leaked future) or whose calls hang. Default 60 s; `1ms ..= 24h`, or
    /// `None` for no limit (resilience4j's 0: wait forever; a leaked permit then holds its
    /// slot until a manual transition). In a config file: a duration or `"off"`.
    #[cfg_attr(feature = "serde", serde(with = "super::off::duration"))]
    pub max_half_open_wait: Option<Duration>,
    /// Where a HALF-OPEN breaker full past [`max_half_open_wait`](Self::max_half_open_wait)
    /// goes: OPEN at the next backoff step (the default), or CLOSED (resilience4j's
    /// `transitionToStateAfterWaitDuration`). Only `open` and `closed` are valid. With
    /// [`automatic_half_open`](Self::automatic_half_open) the timer makes this transition
    /// when the wait passes, without waiting for a caller.
    pub half_open_timeout_state: State,
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
    ///
    /// [`Builder::build_shared`]: crate::Builder::build_shared
    /// [`Builder::build`]: crate::Builder::build
    pub automatic_half_open: bool,
    /// Which results are failures, which are ignored and which open the breaker at once,
    /// for every path not given a classifier of its own (`call`, `call_async`,
    /// [`Permit::record_result`](crate::Permit::record_result), the tower layer's and the
    /// reqwest middleware's defaults); see [`Classification`]. Default: no rules (an `Err`,
    /// or for HTTP a transport error or a `5xx`, is a failure). In a config file: a table
    /// with `ignore`, `trip` and `record` lists.
    #[cfg_attr(
        feature = "serde",
        serde(skip_serializing_if = "Classification::is_default")
    )]
    pub classification: Classification,
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
            max_half_open_wait: Some(DEFAULT_MAX_HALF_OPEN_WAIT),
            half_open_timeout_state: State::Open,
            call_timeout: None,
            half_open_decision: HalfOpenDecision::FirstFailure,
            initial_state: State::Closed,
            automatic_half_open: false,
            classification: Classification::default(),
        }
    }
}

impl Config {
    pub(crate) fn trip_rules(&self) -> TripRules {
        TripRules {
            failure_rate: self.failure_rate_threshold,
            slow_rate: self.slow_call_rate_threshold,
            consecutive: self.consecutive_failures.map(u64::from),
            minimum_calls: self.minimum_calls as u64,
        }
    }
}
