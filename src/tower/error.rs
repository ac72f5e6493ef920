//! Errors of [`CircuitBreakerService`](super::CircuitBreakerService).

use crate::{Rejected, State};
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The request was not sent: the circuit breaker rejected it.
///
/// Carries the core's [`Rejected`] (the state that refused the call and, when OPEN, how long
/// until trial calls are admitted) and, for keyed layers, the key of the breaker that refused.
/// Under the `axum` feature it converts into `503 Service Unavailable` with a `Retry-After`
/// header (see the [module documentation](super)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CircuitOpen {
    rejected: Rejected,
    key: Option<Arc<str>>,
    pub(crate) state_header: bool,
}

impl CircuitOpen {
    /// A rejection by an unnamed (single) breaker.
    pub fn new(rejected: Rejected) -> Self {
        CircuitOpen {
            rejected,
            key: None,
            state_header: false,
        }
    }

    /// A rejection by the breaker registered under `key` (keyed layers).
    pub fn keyed(rejected: Rejected, key: impl Into<Arc<str>>) -> Self {
        CircuitOpen {
            rejected,
            key: Some(key.into()),
            state_header: false,
        }
    }

    /// The core's rejection.
    pub fn rejected(&self) -> Rejected {
        self.rejected
    }

    /// The state that rejected the request (open, half-open with no free trial permit, forced
    /// open).
    pub fn state(&self) -> State {
        self.rejected.state()
    }

    /// How long until the breaker admits trial calls, when known (OPEN).
    pub fn retry_after(&self) -> Option<Duration> {
        self.rejected.retry_after()
    }

    /// The value of the `Retry-After` header, in whole seconds: the open wait left, rounded up
    /// (at least 1); `1` when the breaker is half-open with every trial permit taken (a permit
    /// frees up as soon as a trial call ends); `None` when forced open (no retry time is known).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match (self.rejected.state(), self.rejected.retry_after()) {
            (_, Some(d)) => {
                let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
                Some(secs.max(1))
            }
            (State::HalfOpen, None) => Some(1),
            _ => None,
        }
    }

    /// The key of the breaker that rejected the request, for keyed layers.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Finds a `CircuitOpen` in an error or its [`source`](Error::source) chain: for stacks
    /// that erase error types into a `BoxError` (tower's `Buffer`, `Timeout`, ...).
    ///
    /// ```
    /// use breakerbox::tower::{BreakerError, CircuitOpen};
    /// use breakerbox::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder().build().unwrap();
    /// breaker.force_open();
    /// let rejected = breaker.try_acquire().unwrap_err();
    /// let err: Box<dyn std::error::Error + Send + Sync> =
    ///     Box::new(BreakerError::<std::io::Error>::from(CircuitOpen::new(rejected)));
    /// assert!(CircuitOpen::find(&*err).is_some());
    /// ```
    pub fn find<'a>(err: &'a (dyn Error + 'static)) -> Option<&'a CircuitOpen> {
        let mut cur: Option<&(dyn Error + 'static)> = Some(err);
        while let Some(e) = cur {
            if let Some(open) = e.downcast_ref::<CircuitOpen>() {
                return Some(open);
            }
            cur = e.source();
        }
        None
    }
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "{k}: {}", self.rejected),
            None => self.rejected.fmt(f),
        }
    }
}

impl Error for CircuitOpen {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.rejected)
    }
}

/// The error of [`CircuitBreakerService`](super::CircuitBreakerService): the breaker refused the
/// request, the request ran past the invocation timeout, or the inner service failed.
///
/// A typed enum rather than a `BoxError`, so that callers can match on it without downcasting;
/// it implements [`Error`] (when `E` does), so it still converts into tower's `BoxError` with `?`
/// or `.map_err(Into::into)`, and [`CircuitOpen::find`] recovers the rejection from a boxed
/// chain. With axum the inner error is `Infallible`; the service's error then has to be turned
/// into a response by `HandleErrorLayer::new(breakerbox::tower::handle_error)`.
#[derive(Debug)]
#[non_exhaustive]
pub enum BreakerError<E> {
    /// The breaker refused the request; the inner service was not called.
    Rejected(CircuitOpen),
    /// The inner service did not answer within the timeout; the call counted as a failure
    /// and the inner future was dropped.
    Timeout(TimedOut),
    /// The inner service returned this error (classified by the layer's classifier; a
    /// failure by default).
    Inner(E),
}

impl<E> BreakerError<E> {
    /// Whether the breaker refused the request.
    pub fn is_rejected(&self) -> bool {
        matches!(self, BreakerError::Rejected(_))
    }

    /// Whether the request ran past the invocation timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, BreakerError::Timeout(_))
    }

    /// The timeout, if the request ran past it.
    pub fn timeout(&self) -> Option<&TimedOut> {
        match self {
            BreakerError::Timeout(t) => Some(t),
            _ => None,
        }
    }

    /// The rejection, if the breaker refused the request.
    pub fn rejection(&self) -> Option<&CircuitOpen> {
        match self {
            BreakerError::Rejected(r) => Some(r),
            _ => None,
        }
    }

    /// The inner service's error, if it failed.
    pub fn into_inner(self) -> Option<E> {
        match self {
            BreakerError::Inner(e) => Some(e),
            _ => None,
        }
    }

    /// Maps the inner error.
    pub fn map_inner<F>(self, f: impl FnOnce(E) -> F) -> BreakerError<F> {
        match self {
            BreakerError::Rejected(r) => BreakerError::Rejected(r),
            BreakerError::Timeout(t) => BreakerError::Timeout(t),
            BreakerError::Inner(e) => BreakerError::Inner(f(e)),
        }
    }
}

/// A request that ran past the layer's invocation timeout (it counted as a failure).
#[derive(Clone, Debug, PartialEq)]
pub struct TimedOut {
    after: Duration,
    state: State,
    pub(crate) state_header: bool,
}

impl TimedOut {
    pub(crate) fn new(after: Duration, state: State, state_header: bool) -> Self {
        TimedOut {
            after,
            state,
            state_header,
        }
    }

    /// The timeout that elapsed.
    pub fn after(&self) -> Duration {
        self.after
    }

    /// The breaker's state right after the timeout was counted as a failure.
    pub fn state(&self) -> State {
        self.state
    }
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "request timed out after {:.3}s",
            self.after.as_secs_f64()
        )
    }
}

impl Error for TimedOut {}

impl<E> From<CircuitOpen> for BreakerError<E> {
    fn from(r: CircuitOpen) -> Self {
        BreakerError::Rejected(r)
    }
}

impl<E: fmt::Display> fmt::Display for BreakerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakerError::Rejected(r) => r.fmt(f),
            BreakerError::Timeout(t) => t.fmt(f),
            BreakerError::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: Error + 'static> Error for BreakerError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            BreakerError::Rejected(r) => Some(r),
            BreakerError::Timeout(_) => None,
            BreakerError::Inner(e) => Some(e),
        }
    }
}

#[cfg(feature = "axum")]
mod axum_impls {
    use super::{BreakerError, CircuitOpen};
    use axum::http::{header, HeaderValue, StatusCode};
    use axum::response::{IntoResponse, Response};

    impl IntoResponse for CircuitOpen {
        /// `503 Service Unavailable`, a `Retry-After` header (see
        /// [`retry_after_secs`](CircuitOpen::retry_after_secs)), the reason as a plain-text
        /// body, and the state header when the layer sets it.
        fn into_response(self) -> Response {
            let mut res = (StatusCode::SERVICE_UNAVAILABLE, self.to_string()).into_response();
            let headers = res.headers_mut();
            if let Some(secs) = self.retry_after_secs() {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            if self.state_header {
                headers.insert(
                    super::super::STATE_HEADER,
                    HeaderValue::from_static(self.state().as_str()),
                );
            }
            res
        }
    }

    impl<E> IntoResponse for BreakerError<E> {
        /// `Rejected`: `503` with `Retry-After` (as [`CircuitOpen`]); `Timeout`:
        /// `504 Gateway Timeout`; `Inner`: `500 Internal Server Error` (the inner error's text
        /// is not sent to the client; write your own handler to expose it).
        fn into_response(self) -> Response {
            match self {
                BreakerError::Rejected(r) => r.into_response(),
                BreakerError::Timeout(t) => {
                    let mut res = (StatusCode::GATEWAY_TIMEOUT, t.to_string()).into_response();
                    if t.state_header {
                        res.headers_mut().insert(
                            super::super::STATE_HEADER,
                            HeaderValue::from_static(t.state().as_str()),
                        );
                    }
                    res
                }
                BreakerError::Inner(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            }
        }
    }

    /// The error handler for axum's `HandleErrorLayer`: turns a [`BreakerError`] into its
    /// response (`503` + `Retry-After` when rejected, `504` on timeout, `500` otherwise).
    ///
    /// ```
    /// use axum::{error_handling::HandleErrorLayer, routing::get, Router};
    /// use breakerbox::tower::{handle_error, CircuitBreakerLayer};
    /// use breakerbox::CircuitBreaker;
    /// use std::sync::Arc;
    /// use tower::ServiceBuilder;
    ///
    /// let breaker = Arc::new(CircuitBreaker::builder().build().unwrap());
    /// let app: Router = Router::new().route("/", get(|| async { "hi" })).layer(
    ///     ServiceBuilder::new()
    ///         .layer(HandleErrorLayer::new(handle_error))
    ///         .layer(CircuitBreakerLayer::new(breaker)),
    /// );
    /// ```
    pub async fn handle_error<E>(err: BreakerError<E>) -> Response {
        err.into_response()
    }

    /// Like [`handle_error`], for stacks whose error is a `BoxError`: a [`CircuitOpen`]
    /// anywhere in the error's source chain gives `503` + `Retry-After`, anything else `500`.
    pub async fn handle_box_error(err: axum::BoxError) -> Response {
        match CircuitOpen::find(&*err) {
            Some(open) => open.clone().into_response(),
            None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }
}

#[cfg(feature = "axum")]
pub use axum_impls::{handle_box_error, handle_error};
