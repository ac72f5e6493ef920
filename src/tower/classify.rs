//! Classifying responses into outcomes.

use crate::{Classification, Outcome};
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

    /// The outcome of `result` for a breaker configured with `configured` (its
    /// [`Config::classification`](crate::Config::classification)). The layer calls this one.
    /// By default a classifier given to the layer replaces the configured classification, so
    /// this is [`classify`](Self::classify); [`DefaultClassifier`] applies `configured`.
    #[inline]
    fn classify_configured(
        &self,
        result: &Result<Response<B>, E>,
        configured: &Classification,
    ) -> Outcome {
        let _ = configured;
        self.classify(result)
    }
}

/// The default classification: the breaker's configured
/// [`Classification`](crate::Classification) when it has rules (a response is matched by its
/// status, an inner error by its type and `source()` chain); without rules an inner error
/// (transport error) or a `5xx` status is a failure, and anything else (`2xx`, `3xx`, `4xx`) a
/// success.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultClassifier;

impl<B, E: 'static> Classify<B, E> for DefaultClassifier {
    #[inline]
    fn classify(&self, result: &Result<Response<B>, E>) -> Outcome {
        match result {
            Ok(r) if !r.status().is_server_error() => Outcome::Success,
            _ => Outcome::Failure,
        }
    }

    #[inline]
    fn classify_configured(
        &self,
        result: &Result<Response<B>, E>,
        configured: &Classification,
    ) -> Outcome {
        if configured.is_default() {
            return self.classify(result);
        }
        match result {
            Ok(r) => configured.classify_http_any::<E>(Some(r.status().as_u16()), None),
            Err(e) => configured.classify_http_any(None, Some(e)),
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
