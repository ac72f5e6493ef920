//! Unit tests of the layer with `tower::service_fn`: no network.

use super::*;
use crate::{CircuitBreaker, Config, ManualClock, Outcome, Registry, State};
use ::tower::{service_fn, Layer, Service, ServiceExt};
use http::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

type Breaker = Arc<CircuitBreaker<ManualClock>>;

fn breaker(failures: u32) -> (Breaker, ManualClock) {
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder()
        .consecutive_failures(failures)
        .open_wait(Duration::from_secs(10))
        .clock(clock.clone())
        .build()
        .expect("valid config");
    (Arc::new(b), clock)
}

fn req(path: &str) -> Request<()> {
    Request::get(path).body(()).expect("valid request")
}

/// Answers with the status in the path (`/500` -> 500), `/err` with an inner error.
async fn by_path(req: Request<()>) -> Result<Response<String>, std::io::Error> {
    let p = req.uri().path().trim_start_matches('/');
    if p == "err" {
        return Err(std::io::Error::other("connection refused"));
    }
    let status = p
        .parse::<u16>()
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    Ok(Response::builder()
        .status(status)
        .body(String::new())
        .expect("valid response"))
}

#[tokio::test]
async fn every_service_of_a_layer_shares_one_breaker() {
    let (b, _) = breaker(2);
    let layer = CircuitBreakerLayer::new(b.clone());
    let mut s1 = layer.layer(service_fn(by_path));
    let mut s2 = layer.layer(service_fn(by_path));
    assert!(Arc::ptr_eq(s1.selector(), s2.selector()));
    assert!(Arc::ptr_eq(s1.selector(), &b));
    // One failure through each service trips the shared breaker (threshold 2).
    let r1 = s1.ready().await.expect("ready").call(req("/500")).await;
    assert_eq!(r1.expect("a 500 is a response").status(), 500);
    let r2 = s2.ready().await.expect("ready").call(req("/err")).await;
    assert!(matches!(r2, Err(BreakerError::Inner(_))));
    assert_eq!(b.state(), State::Open);
    let r3 = s1.ready().await.expect("ready").call(req("/200")).await;
    let err = r3.expect_err("rejected");
    let open = err.rejection().expect("a rejection");
    assert_eq!(open.state(), State::Open);
    assert_eq!(open.retry_after(), Some(Duration::from_secs(10)));
    assert_eq!(open.retry_after_secs(), Some(10));
    assert_eq!(b.metrics().rejected, 1);
}

#[tokio::test]
async fn default_classification() {
    let (b, _) = breaker(100);
    let mut svc = CircuitBreakerLayer::new(b.clone()).layer(service_fn(by_path));
    for (path, failures) in [
        ("/200", 0),
        ("/404", 0),
        ("/429", 0),
        ("/302", 0),
        ("/500", 1),
        ("/503", 2),
        ("/err", 3),
    ] {
        let _ = svc.ready().await.expect("ready").call(req(path)).await;
        assert_eq!(b.metrics().failures, failures, "after {path}");
    }
    assert_eq!(b.metrics().calls, 7);
}

#[tokio::test]
async fn the_breakers_configured_classification_is_the_default() {
    use crate::{Rule, TransitionReason, TripReason};
    let b = Arc::new(
        CircuitBreaker::builder()
            .consecutive_failures(100)
            .open_wait(Duration::from_secs(10))
            .ignore(Rule::status(503))
            .ignore(Rule::source(|e: &std::io::Error| {
                e.to_string().contains("refused")
            }))
            .record(Rule::status_range(500, 599))
            .record(Rule::status(429))
            .record(Rule::any_error())
            .trip_on(Rule::status(507))
            .clock(ManualClock::new())
            .build()
            .expect("valid config"),
    );
    let mut svc = CircuitBreakerLayer::new(b.clone()).layer(service_fn(by_path));
    for (path, failures, ignored) in [
        ("/200", 0, 0),
        ("/429", 1, 0), // recorded
        ("/503", 1, 1), // ignored before recorded
        ("/500", 2, 1),
        ("/err", 2, 2), // an inner error whose message says "refused": ignored
        ("/404", 2, 2), // not in `record`: a success
    ] {
        let _ = svc.ready().await.expect("ready").call(req(path)).await;
        let m = b.metrics();
        assert_eq!((m.failures, m.ignored), (failures, ignored), "after {path}");
    }
    assert_eq!(b.state(), State::Closed);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    b.on_transition(move |e| {
        if let crate::EventKind::Transition(t) = e.kind {
            s.lock().unwrap().push(t.reason);
        }
    });
    let r = svc.ready().await.expect("ready").call(req("/507")).await;
    assert_eq!(r.expect("a response").status(), 507);
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![TransitionReason::Tripped(TripReason::Classified)]
    );
    // A classifier given to the layer replaces the configured one.
    let (b2, _) = breaker(1);
    let mut svc = CircuitBreakerLayer::new(b2.clone())
        .classify_status(|_| Outcome::Ignore)
        .layer(service_fn(by_path));
    let _ = svc.ready().await.expect("ready").call(req("/500")).await;
    assert_eq!(b2.state(), State::Closed);
}

#[tokio::test]
async fn custom_classifiers() {
    let (b, _) = breaker(100);
    let layer = CircuitBreakerLayer::new(b.clone()).classify_status(|s| match s.as_u16() {
        429 | 500..=599 => Outcome::Failure,
        404 => Outcome::Ignore,
        _ => Outcome::Success,
    });
    let mut svc = layer.layer(service_fn(by_path));
    for path in ["/404", "/429", "/200", "/err"] {
        let _ = svc.ready().await.expect("ready").call(req(path)).await;
    }
    let m = b.metrics();
    assert_eq!((m.calls, m.failures, m.ignored), (3, 2, 1));

    // A closure over the whole result: an inner error is ignored, only 502 fails.
    let (b, _) = breaker(100);
    let classify = |r: &Result<Response<String>, std::io::Error>| match r {
        Ok(res) if res.status() == StatusCode::BAD_GATEWAY => Outcome::Failure,
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Ignore,
    };
    let mut svc = CircuitBreakerLayer::new(b.clone())
        .classify(classify)
        .layer(service_fn(by_path));
    for path in ["/502", "/500", "/err"] {
        let _ = svc.ready().await.expect("ready").call(req(path)).await;
    }
    let m = b.metrics();
    assert_eq!((m.calls, m.failures, m.ignored), (2, 1, 1));
}

#[tokio::test]
async fn poll_ready_reserves_no_permit() {
    let (b, clock) = breaker(1);
    let mut svc = CircuitBreakerLayer::new(b.clone()).layer(service_fn(by_path));
    let _ = svc.ready().await.expect("ready").call(req("/500")).await;
    assert_eq!(b.state(), State::Open);
    clock.advance(Duration::from_secs(10));
    // Readying the service many times takes nothing: the breaker is not even moved to
    // HALF-OPEN, and a trial call is still admitted afterwards.
    for _ in 0..5 {
        svc.ready().await.expect("ready");
    }
    assert_eq!(b.state(), State::Open);
    assert!(b.would_admit());
    let res = svc.call(req("/200")).await.expect("the trial is admitted");
    assert_eq!(res.status(), 200);
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test]
async fn dropping_the_future_releases_the_trial_permit() {
    let (b, clock) = breaker(1);
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let hang = service_fn(move |_req: Request<()>| {
        seen.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<Result<Response<String>, Infallible>>()
    });
    let mut svc = CircuitBreakerLayer::new(b.clone()).layer(hang);
    let _ = b.call(|| Err::<(), _>("down"));
    assert_eq!(b.state(), State::Open);
    clock.advance(Duration::from_secs(10));

    let mut fut = Box::pin(svc.ready().await.expect("ready").call(req("/")));
    // Poll once: the inner future starts and hangs.
    assert!(futures_poll_once(&mut fut).await.is_none());
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.metrics().half_open_in_flight, 1);
    // The only trial permit is taken: a second request is rejected.
    let second = svc.ready().await.expect("ready").call(req("/")).await;
    assert_eq!(
        second.expect_err("rejected").rejection().map(|r| r.state()),
        Some(State::HalfOpen)
    );
    drop(fut);
    assert_eq!(b.metrics().half_open_in_flight, 0);
    assert_eq!(b.state(), State::HalfOpen);
    // A new trial is admitted.
    let mut fut = Box::pin(svc.ready().await.expect("ready").call(req("/")));
    assert!(futures_poll_once(&mut fut).await.is_none());
    assert_eq!(b.metrics().half_open_in_flight, 1);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

/// Polls a future once; `Some` if it completed.
async fn futures_poll_once<F: std::future::Future + Unpin>(fut: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut *fut).poll(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

#[tokio::test]
async fn timeouts_are_failures() {
    let (b, _) = breaker(2);
    let hang = service_fn(|_req: Request<()>| {
        std::future::pending::<Result<Response<String>, Infallible>>()
    });
    let mut svc = CircuitBreakerLayer::new(b.clone())
        .timeout(Duration::from_millis(20))
        .state_header(true)
        .layer(hang);
    for expected in [State::Closed, State::Open] {
        let err = svc
            .ready()
            .await
            .expect("ready")
            .call(req("/"))
            .await
            .expect_err("timed out");
        assert!(matches!(&err, BreakerError::Timeout(t) if t.after() == Duration::from_millis(20)));
        // The state after counting the timeout, for the 504's state header.
        assert_eq!(err.timeout().map(|t| t.state()), Some(expected));
    }
    assert_eq!(b.metrics().failures, 2);
    assert_eq!(b.state(), State::Open);
}

#[tokio::test]
async fn the_breaker_call_timeout_applies_without_a_layer_timeout() {
    let b = Arc::new(
        CircuitBreaker::builder()
            .call_timeout(Duration::from_millis(20))
            .clock(ManualClock::new())
            .build()
            .expect("valid config"),
    );
    let hang = service_fn(|_req: Request<()>| {
        std::future::pending::<Result<Response<String>, Infallible>>()
    });
    let mut svc = CircuitBreakerLayer::new(b.clone()).layer(hang);
    let err = svc.ready().await.expect("ready").call(req("/")).await;
    assert!(err.expect_err("timed out").is_timeout());
    assert_eq!(b.metrics().failures, 1);
}

#[tokio::test]
async fn state_header_is_opt_in() {
    let (b, _) = breaker(1);
    let mut plain = CircuitBreakerLayer::new(b.clone()).layer(service_fn(by_path));
    let res = plain.ready().await.expect("ready").call(req("/200")).await;
    assert!(res.expect("ok").headers().get(STATE_HEADER).is_none());

    let mut svc = CircuitBreakerLayer::new(b.clone())
        .state_header(true)
        .layer(service_fn(by_path));
    let res = svc.ready().await.expect("ready").call(req("/200")).await;
    assert_eq!(res.expect("ok").headers()[STATE_HEADER], "closed");
    // The call that trips the breaker reports the state after it.
    let res = svc.ready().await.expect("ready").call(req("/500")).await;
    assert_eq!(res.expect("ok").headers()[STATE_HEADER], "open");
}

#[tokio::test]
async fn keyed_per_path_and_per_host() {
    let registry = Arc::new(Registry::with_clock(Config::default(), ManualClock::new()).unwrap());
    registry
        .configure(
            "/flaky",
            Config {
                consecutive_failures: Some(1),
                ..Config::default()
            },
        )
        .expect("valid config");
    let mut svc = CircuitBreakerLayer::per_path(registry.clone()).layer(service_fn(
        |req: Request<()>| async move {
            let status = if req.uri().path() == "/flaky" {
                500
            } else {
                200
            };
            Ok::<_, Infallible>(
                Response::builder()
                    .status(status)
                    .body(String::new())
                    .expect("valid response"),
            )
        },
    ));
    let _ = svc.ready().await.expect("ready").call(req("/flaky")).await;
    let err = svc
        .ready()
        .await
        .expect("ready")
        .call(req("/flaky"))
        .await
        .expect_err("the /flaky breaker is open");
    let open = err.rejection().expect("rejected");
    assert_eq!(open.key(), Some("/flaky"));
    assert!(open
        .to_string()
        .starts_with("/flaky: circuit breaker is open"));
    let ok = svc.ready().await.expect("ready").call(req("/fine")).await;
    assert_eq!(ok.expect("another route still passes").status(), 200);
    assert_eq!(registry.names(), ["/fine", "/flaky"]);

    let hosts = Arc::new(Registry::with_clock(Config::default(), ManualClock::new()).unwrap());
    let mut svc = CircuitBreakerLayer::per_host(hosts.clone()).layer(service_fn(by_path));
    for uri in [
        "http://a.test/200",
        "http://b.test:8080/200",
        "http://a.test/500",
    ] {
        let _ = svc.ready().await.expect("ready").call(req(uri)).await;
    }
    assert_eq!(hosts.names(), ["a.test", "b.test"]);
    assert_eq!(hosts.get("a.test").metrics().failures, 1);

    // A user function of the request.
    let by_tenant = |r: &Request<()>| {
        r.headers()
            .get("x-tenant")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_string()
    };
    let tenants = Arc::new(Registry::with_clock(Config::default(), ManualClock::new()).unwrap());
    let mut svc = CircuitBreakerLayer::keyed(tenants.clone(), by_tenant).layer(service_fn(by_path));
    let r = Request::get("/").header("x-tenant", "acme").body(());
    let _ = svc
        .ready()
        .await
        .expect("ready")
        .call(r.expect("valid request"))
        .await;
    assert_eq!(tenants.names(), ["acme"]);
}

#[test]
fn retry_after_rounding() {
    let (b, clock) = breaker(1);
    let _ = b.call(|| Err::<(), _>("down"));
    clock.advance(Duration::from_millis(9_500));
    let open = CircuitOpen::new(b.try_acquire().expect_err("open"));
    assert_eq!(open.retry_after(), Some(Duration::from_millis(500)));
    assert_eq!(open.retry_after_secs(), Some(1));
    b.force_open();
    let forced = CircuitOpen::new(b.try_acquire().expect_err("forced open"));
    assert_eq!(forced.retry_after_secs(), None);
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn rejections_become_503_with_retry_after() {
    use axum::response::IntoResponse;
    let (b, _) = breaker(1);
    let _ = b.call(|| Err::<(), _>("down"));
    let err: BreakerError<Infallible> = CircuitOpen::new(b.try_acquire().expect_err("open")).into();
    let res = handle_error(err).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()[http::header::RETRY_AFTER], "10");

    let boxed: axum::BoxError = Box::new(BreakerError::<std::io::Error>::Rejected(
        CircuitOpen::new(b.try_acquire().expect_err("open")),
    ));
    let res = handle_box_error(boxed).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let res = handle_box_error("other".into()).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);

    let res = BreakerError::<Infallible>::Timeout(super::error::TimedOut::new(
        Duration::from_secs(1),
        crate::State::Open,
        true,
    ))
    .into_response();
    assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT);
    // The 504 carries the state header like every other response of a layer that sets it.
    assert_eq!(res.headers()[crate::tower::STATE_HEADER], "open");
}

#[tokio::test]
async fn admitted_requests_carry_their_admission() {
    use crate::tower::{Admission, CircuitBreakerLayer};
    use crate::{CircuitBreaker, ManualClock};
    use std::sync::Arc;
    use std::time::Duration;
    use tower::{Layer, ServiceExt};

    let clock = ManualClock::new();
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .consecutive_failures(1)
            .open_wait(Duration::from_secs(1))
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    let svc = CircuitBreakerLayer::new(breaker.clone())
        .admission(true)
        .layer(tower::service_fn(|req: http::Request<()>| async move {
            let a = *req.extensions().get::<Admission>().expect("admission");
            Ok::<_, std::convert::Infallible>(http::Response::new(a))
        }));
    let a = svc
        .clone()
        .oneshot(http::Request::new(()))
        .await
        .unwrap()
        .into_body();
    assert_eq!(
        a,
        Admission {
            trial: false,
            generation: 0
        }
    );
    breaker.try_acquire().unwrap().failure();
    clock.advance(Duration::from_secs(1));
    let a = svc
        .oneshot(http::Request::new(()))
        .await
        .unwrap()
        .into_body();
    assert_eq!(
        a,
        Admission {
            trial: true,
            generation: 2
        }
    );
}
