//! Classifying responses into outcomes.

use crate::Outcome;
use http::{Response, StatusCode};

/// Decides whether a finished request was a success, a failure or says nothing about the
/// dependency ([`Outcome::Ignore`]).
///
/// Implemented by [`DefaultClassifier`], [`ByStatus`] and every
/// `Fn(&Result<Response<B>, E>) -> Outcome` closure. Timeouts never reach the classifier: they
/// are always failures.
pub trait Classify<B, E> {
    /// The outcome of `result`.
    fn classify(&self, result: &Result<Response<B>, E>) -> Outcome;
}

/// The default classification: an inner error (transport error) or a `5xx` status is a
/// failure; anything else (`2xx`, `3xx`, `4xx`) is a success.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultClassifier;

impl<B, E> Classify<B, E> for DefaultClassifier {
    #[inline]
    fn classify(&self, result: &Result<Response<B>, E>) -> Outcome {
        match result {
            Ok(r) if !r.status().is_server_error() => Outcome::Success,
            _ => Outcome::Failure,
        }
    }
}

/// Classifies by status code with a function; an inner error is a failure. Built by
/// [`CircuitBreakerLayer::classify_status`](super::CircuitBreakerLayer::classify_status).
#[derive(Clone, Copy, Debug)]
pub struct ByStatus<F>(pub F);

impl<B, E, F> Classify<B, E> for ByStatus<F>
where
    F: Fn(StatusCode) -> Outcome,
{
    #[inline]
    fn classify(&self, result: &Result<Response<B>, E>) -> Outcome {
        match result {
            Ok(r) => (self.0)(r.status()),
            Err(_) => Outcome::Failure,
        }
    }
}

impl<B, E, F> Classify<B, E> for F
where
    F: Fn(&Result<Response<B>, E>) -> Outcome,
{
    #[inline]
    fn classify(&self, result: &Result<Response<B>, E>) -> Outcome {
        self(result)
    }
}
