//! Errors returned by calls through a breaker.

use crate::state::State;
use std::time::Duration;

/// A call was not admitted. Cheap to build: no allocation, no name; 16 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    pub(crate) state: State,
    /// Microseconds until trial calls, or `u64::MAX` when unknown.
    pub(crate) retry_us: u64,
}

impl Rejected {
    #[inline(always)]
    pub(crate) fn new(state: State, retry_us: Option<u64>) -> Self {
        Rejected {
            state,
            retry_us: retry_us.unwrap_or(u64::MAX),
        }
    }
}

impl std::fmt::Debug for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rejected")
            .field("state", &self.state)
            .field("retry_after", &self.retry_after())
            .finish()
    }
}

impl Rejected {
    /// The state that rejected the call (open, half-open with no free permit, forced open).
    pub fn state(&self) -> State {
        self.state
    }

    /// How long until the breaker admits trial calls, when known (OPEN). `None` when the
    /// breaker is forced open or half-open with every permit taken.
    pub fn retry_after(&self) -> Option<Duration> {
        (self.retry_us != u64::MAX).then(|| Duration::from_micros(self.retry_us))
    }
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.state, self.retry_after()) {
            (State::HalfOpen, _) => {
                f.write_str("circuit breaker is half-open and every trial permit is taken")
            }
            (State::ForcedOpen, _) => f.write_str("circuit breaker is forced open"),
            (s, Some(d)) => write!(
                f,
                "circuit breaker is {s}; retry after {:.3}s",
                d.as_secs_f64()
            ),
            (s, None) => write!(f, "circuit breaker is {s}"),
        }
    }
}

impl std::error::Error for Rejected {}

/// The error of a call made through [`CircuitBreaker::call`](crate::CircuitBreaker::call) and
/// friends: either the breaker refused the call, or the call ran and failed.
#[derive(Debug, PartialEq, Eq)]
pub enum CallError<E> {
    /// The breaker did not admit the call; it never ran.
    Rejected(Rejected),
    /// The call ran and returned this error.
    Failed(E),
    /// The async call ran past the configured invocation timeout and was dropped.
    Timeout(Duration),
}

impl<E> CallError<E> {
    /// Whether the breaker refused the call.
    pub fn is_rejected(&self) -> bool {
        matches!(self, CallError::Rejected(_))
    }

    /// The inner error, if the call ran and failed.
    pub fn into_inner(self) -> Option<E> {
        match self {
            CallError::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Maps the inner error.
    pub fn map<F>(self, f: impl FnOnce(E) -> F) -> CallError<F> {
        match self {
            CallError::Rejected(r) => CallError::Rejected(r),
            CallError::Failed(e) => CallError::Failed(f(e)),
            CallError::Timeout(d) => CallError::Timeout(d),
        }
    }
}

impl<E> From<Rejected> for CallError<E> {
    fn from(r: Rejected) -> Self {
        CallError::Rejected(r)
    }
}

impl<E: std::fmt::Display> std::fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Rejected(r) => r.fmt(f),
            CallError::Failed(e) => e.fmt(f),
            CallError::Timeout(d) => write!(f, "call timed out after {:.3}s", d.as_secs_f64()),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CallError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Rejected(r) => Some(r),
            CallError::Failed(e) => Some(e),
            CallError::Timeout(_) => None,
        }
    }
}

/// [`Registry::try_get`](crate::Registry::try_get) did not create a breaker: the registry
/// already holds its maximum number of breakers (see
/// [`Registry::with_capacity_limit`](crate::Registry::with_capacity_limit)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistryFull {
    pub(crate) limit: usize,
}

impl RegistryFull {
    /// The registry's maximum number of breakers.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl std::fmt::Display for RegistryFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let noun = if self.limit == 1 {
            "breaker"
        } else {
            "breakers"
        };
        write!(f, "the registry holds its maximum of {} {noun}", self.limit)
    }
}

impl std::error::Error for RegistryFull {}

/// [`Registry::with_capacity_limit`](crate::Registry::with_capacity_limit) was given `0`: a
/// registry must be able to hold at least one breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZeroCapacity;

impl std::fmt::Display for ZeroCapacity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a registry's capacity limit must be at least 1")
    }
}

impl std::error::Error for ZeroCapacity {}

/// A manual open wait outside `1ms ..= 24h` (also an instant that has already passed), from
/// [`CircuitBreaker::transition_to_open_for`](crate::CircuitBreaker::transition_to_open_for)
/// and [`transition_to_open_until`](crate::CircuitBreaker::transition_to_open_until). The
/// breaker is left as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid open wait {wait:?}: expected 1ms ..= 24h")]
pub struct InvalidOpenWait {
    /// The wait asked for.
    pub wait: Duration,
}
