//! tower middleware: a circuit breaker around any HTTP [`Service`](tower_service::Service),
//! for axum servers and tower clients (feature `tower`; `IntoResponse` under `axum`).
//!
//! ```
//! # #[cfg(feature = "axum")] {
//! use axum::{error_handling::HandleErrorLayer, http::StatusCode, routing::get, Router};
//! use breakerbox::tower::{handle_error, CircuitBreakerLayer};
//! use breakerbox::CircuitBreaker;
//! use std::{sync::Arc, time::Duration};
//! use tower::ServiceBuilder;
//!
//! let breaker = Arc::new(
//!     CircuitBreaker::builder()
//!         .consecutive_failures(5)
//!         .open_wait(Duration::from_secs(30))
//!         .build()
//!         .unwrap(),
//! );
//! let app: Router = Router::new()
//!     .route("/", get(|| async { (StatusCode::BAD_GATEWAY, "upstream down") }))
//!     .layer(
//!         ServiceBuilder::new()
//!             // BreakerError -> 503 + Retry-After (rejected), 504 (timeout), 500
//!             .layer(HandleErrorLayer::new(handle_error))
//!             .layer(
//!                 CircuitBreakerLayer::new(breaker.clone()) // one breaker for every route
//!                     .timeout(Duration::from_secs(2)) // a slow answer is a failure
//!                     .state_header(true), // x-circuit-breaker-state: closed
//!             ),
//!     );
//! // axum::serve(listener, app).await
//! # }
//! ```
//!
//! # How a request goes through
//! - `poll_ready` asks the inner service only; no permit is reserved for a call that may never
//!   come.
//! - `call` takes a permit with [`CircuitBreaker::try_acquire_owned`](crate::CircuitBreaker::try_acquire_owned):
//!   when refused, the inner service is not called and the response future resolves to
//!   [`BreakerError::Rejected`] carrying a [`CircuitOpen`] (state and `retry_after`).
//! - The permit lives in the [`ResponseFuture`]. When the inner future completes, a
//!   [`Classify`] turns the result into an [`Outcome`](crate::Outcome): by default an inner
//!   error (transport error) or a `5xx` is a failure, everything else a success. A timeout is
//!   always a failure.
//! - Dropping the future (the client went away) drops the permit unreported: nothing is
//!   recorded and a half-open trial slot is given back.
//!
//! # Errors
//! The service's error is [`BreakerError<E>`]: `Rejected`, `Timeout` or `Inner(E)`. axum
//! routes must be infallible, so add `HandleErrorLayer::new(`[`handle_error`]`)` in front of
//! the breaker layer (or match on the error yourself). Tower clients get a typed error to match
//! on; it implements `std::error::Error`, so it converts into tower's `BoxError` where a stack
//! needs one, and [`CircuitOpen::find`] finds the rejection in a boxed error chain
//! ([`handle_box_error`] does that for axum).
//!
//! # One breaker or many
//! [`CircuitBreakerLayer::new`] shares one breaker among every service the layer makes.
//! [`CircuitBreakerLayer::per_path`], [`per_host`](CircuitBreakerLayer::per_host) and
//! [`keyed`](CircuitBreakerLayer::keyed) take one breaker per key from a
//! [`Registry`](crate::Registry), so per-key configurations apply. The layer accepts breakers on
//! any [`Clock`](crate::Clock), such as [`ManualClock`](crate::ManualClock) in tests.

mod classify;
mod error;
mod future;
mod layer;
mod select;
mod service;

#[cfg(feature = "axum")]
mod dashboard;
pub use classify::{ByStatus, Classify, DefaultClassifier};
#[cfg(feature = "axum")]
pub use dashboard::{dashboard, snapshot_json};
#[cfg(feature = "axum")]
pub use error::{handle_box_error, handle_error};
pub use error::{BreakerError, CircuitOpen, TimedOut};
pub use future::ResponseFuture;
pub use layer::CircuitBreakerLayer;
#[cfg(feature = "axum")]
pub use select::ByRoute;
pub use select::{ByHost, ByPath, KeyFn, Keyed, SelectBreaker};
pub use service::{Admission, CircuitBreakerService};

/// The response header carrying the breaker state when
/// [`CircuitBreakerLayer::state_header`] is on.
pub const STATE_HEADER: http::HeaderName = http::HeaderName::from_static("x-circuit-breaker-state");

#[cfg(test)]
mod tests;
