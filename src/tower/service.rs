//! The middleware service.

use super::classify::Classify;
use super::future::ResponseFuture;
use super::select::SelectBreaker;
use super::BreakerError;
use http::{Request, Response};
use std::task::{Context, Poll};
use std::time::Duration;
use tower_service::Service;

/// Options shared by the layer and its services.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Options {
    pub state_header: bool,
    pub timeout: Option<Duration>,
    /// Insert [`Admission`] into admitted requests' extensions.
    pub admission: bool,
}

/// A service guarded by a circuit breaker; made by
/// [`CircuitBreakerLayer`](super::CircuitBreakerLayer).
///
/// - [`poll_ready`](Service::poll_ready) only asks the inner service: no permit is taken for a
///   call that may never come.
/// - [`call`](Service::call) asks the breaker for a permit. Rejected: the inner service is not
///   called and the future resolves to [`BreakerError::Rejected`]. Admitted: the permit moves
///   into the [`ResponseFuture`], which records the classified outcome when the inner future
///   completes (or a failure on timeout); dropping the future releases the permit.
///
/// The inner service was readied by `poll_ready` but is not called on a rejection: an inner
/// service that reserves capacity in `poll_ready` (`Buffer`, `ConcurrencyLimit`) keeps that
/// reservation until its next call or until it is dropped, as with tower's own `LoadShed`.
#[derive(Clone, Debug)]
pub struct CircuitBreakerService<S, P, F> {
    inner: S,
    select: P,
    classify: F,
    opts: Options,
}

impl<S, P, F> CircuitBreakerService<S, P, F> {
    pub(crate) fn new(inner: S, select: P, classify: F, opts: Options) -> Self {
        CircuitBreakerService {
            inner,
            select,
            classify,
            opts,
        }
    }

    /// The breaker selector (an `Arc<CircuitBreaker>` or a [`Keyed`](super::Keyed)).
    pub fn selector(&self) -> &P {
        &self.select
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, P, F, ReqB, ResB> Service<Request<ReqB>> for CircuitBreakerService<S, P, F>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    P: SelectBreaker<ReqB>,
    F: Classify<ResB, S::Error> + Clone,
{
    type Response = Response<ResB>;
    type Error = BreakerError<S::Error>;
    type Future = ResponseFuture<S::Future, P::Clock, F>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(BreakerError::Inner)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        match self.select.acquire(&req) {
            Err(mut open) => {
                open.state_header = self.opts.state_header;
                ResponseFuture::rejected(open)
            }
            Ok(permit) => {
                let timeout = self.opts.timeout.or(permit.breaker().config().call_timeout);
                if self.opts.admission {
                    req.extensions_mut().insert(Admission {
                        trial: permit.is_trial(),
                        generation: permit.generation(),
                    });
                }
                let fut = self.inner.call(req);
                ResponseFuture::running(
                    fut,
                    permit,
                    self.classify.clone(),
                    timeout,
                    self.opts.state_header,
                )
            }
        }
    }
}

/// Inserted into the extensions of every request the layer admits when the layer asks for it
/// ([`CircuitBreakerLayer::admission`](super::CircuitBreakerLayer::admission)), so that the
/// inner service (a handler, a proxy, a test upstream) can tell a half-open trial from an
/// ordinary call.
///
/// ```
/// # use breakerbox::tower::Admission;
/// # fn handler(req: http::Request<()>) {
/// if let Some(a) = req.extensions().get::<Admission>() {
///     if a.trial { /* a half-open trial call */ }
/// }
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    /// Whether the call is a half-open trial.
    pub trial: bool,
    /// The breaker generation that admitted it.
    pub generation: u32,
}
