//! The reqwest middleware against real servers on 127.0.0.1 (started and stopped here): a
//! breaker per host, 5xx and transport errors as failures, 4xx as successes, rejection as a
//! typed error with `retry_after`, and a request that is refused never reaches the server.
#![cfg(all(feature = "reqwest", feature = "axum"))]

use axum::{http::StatusCode, routing::get, Router};
use breakerbox::reqwest::{BreakerMiddleware, CircuitOpen};
use breakerbox::{Config, ManualClock, Registry, State};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// A server on 127.0.0.1: `/ok` 200, `/fail` 500, `/missing` 404; counts the requests it saw.
async fn upstream() -> (SocketAddr, Arc<AtomicUsize>, oneshot::Sender<()>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let count = |hits: &Arc<AtomicUsize>, status: StatusCode| {
        let hits = hits.clone();
        move || {
            hits.fetch_add(1, Ordering::SeqCst);
            async move { status }
        }
    };
    let app = Router::new()
        .route("/ok", get(count(&hits, StatusCode::OK)))
        .route(
            "/fail",
            get(count(&hits, StatusCode::INTERNAL_SERVER_ERROR)),
        )
        .route("/missing", get(count(&hits, StatusCode::NOT_FOUND)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    (addr, hits, tx)
}

fn client(registry: &Arc<Registry<ManualClock>>) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(BreakerMiddleware::new(registry.clone()))
        .build()
}

fn registry() -> Arc<Registry<ManualClock>> {
    let config = Config {
        failure_rate_threshold: None,
        consecutive_failures: Some(3),
        open_wait: Duration::from_secs(30).into(),
        ..Config::default()
    };
    Arc::new(Registry::with_clock(config, ManualClock::new()).expect("valid"))
}

#[tokio::test]
async fn a_failing_host_trips_its_own_breaker_only() {
    let (a, a_hits, stop_a) = upstream().await;
    let (b, b_hits, stop_b) = upstream().await;
    let registry = registry();
    let http = client(&registry);

    // 4xx say nothing about the host's health.
    for _ in 0..5 {
        let res = http
            .get(format!("http://{a}/missing"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
    }
    let key = format!("127.0.0.1:{}", a.port());
    assert_eq!(registry.get(&key).state(), State::Closed);

    // Three 500s in a row: the responses come back, and the breaker opens.
    for _ in 0..3 {
        let res = http.get(format!("http://{a}/fail")).send().await.unwrap();
        assert_eq!(res.status(), 500);
    }
    assert_eq!(registry.get(&key).state(), State::Open);
    let seen = a_hits.load(Ordering::SeqCst);

    // Refused without being sent, with a typed error that says when to retry.
    let err = http.get(format!("http://{a}/ok")).send().await.unwrap_err();
    let open = CircuitOpen::find(&err).expect("a CircuitOpen");
    assert_eq!(open.host(), key);
    assert_eq!(open.state(), State::Open);
    assert_eq!(open.retry_after(), Some(Duration::from_secs(30)));
    assert_eq!(
        a_hits.load(Ordering::SeqCst),
        seen,
        "the request reached the server"
    );

    // The other host has a breaker of its own.
    let res = http.get(format!("http://{b}/ok")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(b_hits.load(Ordering::SeqCst), 1);
    assert_eq!(registry.len(), 2);

    let _ = stop_a.send(());
    let _ = stop_b.send(());
}

#[tokio::test]
async fn transport_errors_are_failures() {
    // A port with nothing listening: bind, note it, close it.
    let gone = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let registry = registry();
    let http = client(&registry);
    for _ in 0..3 {
        let err = http
            .get(format!("http://{gone}/"))
            .send()
            .await
            .unwrap_err();
        assert!(
            CircuitOpen::find(&err).is_none(),
            "a transport error: {err}"
        );
    }
    let breaker = registry.get(&format!("127.0.0.1:{}", gone.port()));
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().failures, 3);
    let err = http
        .get(format!("http://{gone}/"))
        .send()
        .await
        .unwrap_err();
    assert!(CircuitOpen::find(&err).is_some());
}

#[tokio::test]
async fn a_custom_classifier_decides_what_counts() {
    let (a, _hits, stop) = upstream().await;
    let registry = registry();
    // Here a 404 counts as a failure.
    let http = ClientBuilder::new(reqwest::Client::new())
        .with(
            BreakerMiddleware::new(registry.clone()).classify(|r| match r {
                Ok(res) if res.status().is_success() => breakerbox::Outcome::Success,
                _ => breakerbox::Outcome::Failure,
            }),
        )
        .build();
    for _ in 0..3 {
        let _ = http
            .get(format!("http://{a}/missing"))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(
        registry.get(&format!("127.0.0.1:{}", a.port())).state(),
        State::Open
    );
    let _ = stop.send(());
}

#[tokio::test]
async fn the_configured_classification_decides_without_a_classifier() {
    use breakerbox::{Rule, TransitionReason, TripReason};
    let (a, _hits, stop) = upstream().await;
    let mut config = Config {
        failure_rate_threshold: None,
        consecutive_failures: Some(3),
        open_wait: Duration::from_secs(30).into(),
        ..Config::default()
    };
    // A 404 opens at once; a 500 is ignored; a refused connection (found through the
    // transport error's source chain) is ignored too.
    config.classification.trip.push(Rule::status(404));
    config.classification.ignore.push(Rule::status(500));
    config
        .classification
        .ignore
        .push(Rule::io(std::io::ErrorKind::ConnectionRefused));
    let registry = Arc::new(Registry::with_clock(config, ManualClock::new()).expect("valid"));
    let http = client(&registry);
    let breaker = registry.get(&format!("127.0.0.1:{}", a.port()));
    let reasons = Arc::new(std::sync::Mutex::new(Vec::new()));
    let r = reasons.clone();
    breaker.on_transition(move |e| {
        if let breakerbox::EventKind::Transition(t) = e.kind {
            r.lock().unwrap().push(t.reason);
        }
    });
    for _ in 0..5 {
        let res = http.get(format!("http://{a}/fail")).send().await.unwrap();
        assert_eq!(res.status(), 500);
    }
    assert_eq!(
        (breaker.state(), breaker.metrics().ignored),
        (State::Closed, 5)
    );
    let res = http
        .get(format!("http://{a}/missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(
        *reasons.lock().unwrap(),
        vec![TransitionReason::Tripped(TripReason::Classified)]
    );

    let gone = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for _ in 0..5 {
        let _ = http
            .get(format!("http://{gone}/"))
            .send()
            .await
            .unwrap_err();
    }
    let refused = registry.get(&format!("127.0.0.1:{}", gone.port()));
    assert_eq!(
        (
            refused.state(),
            refused.metrics().ignored,
            refused.metrics().failures
        ),
        (State::Closed, 5, 0)
    );
    let _ = stop.send(());
}
