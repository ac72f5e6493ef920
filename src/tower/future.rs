//! The response future: holds the permit until the inner future completes.

use super::classify::Classify;
use super::error::TimedOut;
use super::error::{BreakerError, CircuitOpen};
use super::STATE_HEADER;
use crate::{Clock, OwnedPermit};
use http::{HeaderValue, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

pin_project! {
    /// The future of [`CircuitBreakerService`](super::CircuitBreakerService).
    ///
    /// Owns the permit of the call. When the inner future completes, its result is classified
    /// and the outcome recorded; when it runs past the timeout, a failure is recorded. Dropping
    /// this future before either happens (a client that went away, a `select!` that lost)
    /// drops the permit unreported, which records nothing and gives a half-open trial slot
    /// back.
    pub struct ResponseFuture<Fut, C: Clock, F> {
        #[pin]
        kind: Kind<Fut, C, F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<Fut, C: Clock, F> {
        Rejected {
            error: Option<CircuitOpen>,
        },
        Running {
            #[pin]
            inner: Fut,
            // Boxed: a `Sleep` is large, and most layers have no timeout; an inline one would
            // make every response future that much bigger to move.
            sleep: Option<Pin<Box<Sleep>>>,
            timeout: Duration,
            permit: Option<OwnedPermit<C>>,
            classify: F,
            state_header: bool,
        },
    }
}

impl<Fut, C: Clock, F> ResponseFuture<Fut, C, F> {
    pub(crate) fn rejected(error: CircuitOpen) -> Self {
        ResponseFuture {
            kind: Kind::Rejected { error: Some(error) },
        }
    }

    pub(crate) fn running(
        inner: Fut,
        permit: OwnedPermit<C>,
        classify: F,
        timeout: Option<Duration>,
        state_header: bool,
    ) -> Self {
        ResponseFuture {
            kind: Kind::Running {
                inner,
                sleep: timeout.map(|d| Box::pin(tokio::time::sleep(d))),
                timeout: timeout.unwrap_or_default(),
                permit: Some(permit),
                classify,
                state_header,
            },
        }
    }
}

impl<Fut, C, F, B, E> Future for ResponseFuture<Fut, C, F>
where
    Fut: Future<Output = Result<Response<B>, E>>,
    C: Clock,
    F: Classify<B, E>,
{
    type Output = Result<Response<B>, BreakerError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Rejected { error } => match error.take() {
                Some(e) => Poll::Ready(Err(BreakerError::Rejected(e))),
                None => Poll::Pending,
            },
            KindProj::Running {
                inner,
                sleep,
                timeout,
                permit,
                classify,
                state_header,
            } => {
                if let Poll::Ready(result) = inner.poll(cx) {
                    let outcome = match permit.as_ref() {
                        Some(p) => classify
                            .classify_configured(&result, &p.breaker().config().classification),
                        None => classify.classify(&result),
                    };
                    let state = permit.take().and_then(|p| {
                        let breaker = state_header.then(|| std::sync::Arc::clone(p.breaker()));
                        p.record(outcome);
                        breaker.map(|b| b.state())
                    });
                    return Poll::Ready(match result {
                        Ok(mut res) => {
                            if let Some(s) = state {
                                res.headers_mut()
                                    .insert(STATE_HEADER, HeaderValue::from_static(s.as_str()));
                            }
                            Ok(res)
                        }
                        Err(e) => Err(BreakerError::Inner(e)),
                    });
                }
                if let Some(sleep) = sleep.as_mut() {
                    ready!(sleep.as_mut().poll(cx));
                    let state = permit.take().map(|p| {
                        let breaker = std::sync::Arc::clone(p.breaker());
                        p.failure();
                        breaker.state()
                    });
                    return Poll::Ready(Err(BreakerError::Timeout(TimedOut::new(
                        *timeout,
                        state.unwrap_or(crate::State::Closed),
                        *state_header,
                    ))));
                }
                Poll::Pending
            }
        }
    }
}

impl<Fut, C: Clock, F> std::fmt::Debug for ResponseFuture<Fut, C, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Rejected { .. } => "rejected",
            Kind::Running { .. } => "running",
        };
        f.debug_struct("ResponseFuture")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}
