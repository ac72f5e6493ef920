//! The layer.

use super::classify::{ByStatus, DefaultClassifier};
#[cfg(feature = "axum")]
use super::select::ByRoute;
use super::select::{ByHost, ByPath, Keyed};
use super::service::{CircuitBreakerService, Options};
use crate::{CircuitBreaker, Clock, DefaultClock, Outcome, Registry};
use http::StatusCode;
use std::sync::Arc;
use std::time::Duration;
use tower_layer::Layer;

/// Wraps services in a circuit breaker: see the [module documentation](super).
///
/// `P` selects the breaker (one shared `Arc<CircuitBreaker<C>>`, or [`Keyed`] through a
/// [`Registry`]); `F` classifies responses ([`DefaultClassifier`] unless
/// [`classify`](Self::classify) or [`classify_status`](Self::classify_status) is used).
///
/// The layer holds the breaker in an `Arc`: every service it makes (axum clones the service
/// for every request and calls `layer` once per route) shares that one breaker.
#[derive(Clone, Debug)]
pub struct CircuitBreakerLayer<P = Arc<CircuitBreaker<DefaultClock>>, F = DefaultClassifier> {
    select: P,
    classify: F,
    opts: Options,
}

impl<C: Clock> CircuitBreakerLayer<Arc<CircuitBreaker<C>>> {
    /// Every request goes through `breaker`.
    pub fn new(breaker: Arc<CircuitBreaker<C>>) -> Self {
        Self::with_selector(breaker)
    }
}

impl<C: Clock + Clone> CircuitBreakerLayer<Keyed<ByPath, C>> {
    /// One breaker per path, from `registry` (see [`ByPath`]): axum's matched route when
    /// present, else the raw path. On a server prefer [`per_route`](Self::per_route).
    pub fn per_path(registry: Arc<Registry<C>>) -> Self {
        Self::with_selector(Keyed::new(registry, ByPath))
    }
}

#[cfg(feature = "axum")]
impl<C: Clock + Clone> CircuitBreakerLayer<Keyed<ByRoute, C>> {
    /// One breaker per axum route, from `registry` (see [`ByRoute`]): the route template, never
    /// the raw path, so clients cannot create breakers by inventing paths.
    pub fn per_route(registry: Arc<Registry<C>>) -> Self {
        Self::with_selector(Keyed::new(registry, ByRoute))
    }
}

impl<C: Clock + Clone> CircuitBreakerLayer<Keyed<ByHost, C>> {
    /// One breaker per upstream host, from `registry` (see [`ByHost`]); meant for tower
    /// clients.
    pub fn per_host(registry: Arc<Registry<C>>) -> Self {
        Self::with_selector(Keyed::new(registry, ByHost))
    }
}

impl<K, C: Clock + Clone> CircuitBreakerLayer<Keyed<K, C>> {
    /// One breaker per key, from `registry`; `key` is a [`KeyFn`](super::KeyFn), such as a
    /// `Fn(&Request<B>) -> String` closure. Keys should come from a bounded set; past the
    /// registry's capacity limit, new keys share its overflow breaker (see [`Keyed`]).
    pub fn keyed(registry: Arc<Registry<C>>, key: K) -> Self {
        Self::with_selector(Keyed::new(registry, key))
    }
}

impl<P> CircuitBreakerLayer<P> {
    /// A layer with any [`SelectBreaker`](super::SelectBreaker) and the default options.
    pub fn with_selector(select: P) -> Self {
        CircuitBreakerLayer {
            select,
            classify: DefaultClassifier,
            opts: Options::default(),
        }
    }
}

impl<C: Clock, F> CircuitBreakerLayer<Arc<CircuitBreaker<C>>, F> {
    /// The shared breaker.
    pub fn breaker(&self) -> &Arc<CircuitBreaker<C>> {
        &self.select
    }
}

impl<P, F> CircuitBreakerLayer<P, F> {
    /// Classifies results with `classify`, a [`Classify`](super::Classify) implementation
    /// such as a `Fn(&Result<Response<B>, E>) -> Outcome` closure (annotate its argument
    /// type).
    pub fn classify<F2>(self, classify: F2) -> CircuitBreakerLayer<P, F2> {
        CircuitBreakerLayer {
            select: self.select,
            classify,
            opts: self.opts,
        }
    }

    /// Classifies responses by status code with `f`; inner (transport) errors stay failures.
    ///
    /// ```
    /// use breakerbox::tower::CircuitBreakerLayer;
    /// use breakerbox::{CircuitBreaker, Outcome};
    /// # let breaker = std::sync::Arc::new(CircuitBreaker::builder().build().unwrap());
    /// // 429 and 5xx count against the upstream, 404 says nothing about its health.
    /// let layer = CircuitBreakerLayer::new(breaker).classify_status(|s| match s.as_u16() {
    ///     429 | 500..=599 => Outcome::Failure,
    ///     404 => Outcome::Ignore,
    ///     _ => Outcome::Success,
    /// });
    /// ```
    pub fn classify_status<G>(self, f: G) -> CircuitBreakerLayer<P, ByStatus<G>>
    where
        G: Fn(StatusCode) -> Outcome,
    {
        self.classify(ByStatus(f))
    }

    /// Adds the `x-circuit-breaker-state` header ([`STATE_HEADER`](super::STATE_HEADER)) to
    /// every response, with the breaker's state after the call (`closed`, `open`,
    /// `half_open`, ...); also to the `503` of a rejection under the `axum` feature. Off by
    /// default.
    pub fn state_header(mut self, on: bool) -> Self {
        self.opts.state_header = on;
        self
    }

    /// Inserts an [`Admission`](super::Admission) (trial or not, generation) into the
    /// extensions of every admitted request. Off by default: the first extension of a request
    /// allocates its extension map, which would be most of the layer's own cost.
    pub fn admission(mut self, on: bool) -> Self {
        self.opts.admission = on;
        self
    }

    /// An invocation timeout: a request that has not answered after `timeout` is dropped,
    /// counts as a failure and resolves to [`BreakerError::Timeout`](super::BreakerError).
    /// Without it, each breaker's [`Config::call_timeout`](crate::Config::call_timeout)
    /// applies (none by default).
    ///
    /// # Panics
    /// The timer is tokio's: calling the service outside a tokio runtime with the time driver
    /// enabled panics when a timeout applies.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.opts.timeout = Some(timeout);
        self
    }

    /// The breaker selector.
    pub fn selector(&self) -> &P {
        &self.select
    }
}

impl<S, P: Clone, F: Clone> Layer<S> for CircuitBreakerLayer<P, F> {
    type Service = CircuitBreakerService<S, P, F>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService::new(inner, self.select.clone(), self.classify.clone(), self.opts)
    }
}
