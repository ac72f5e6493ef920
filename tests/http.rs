//! The tower layer over real HTTP: axum servers on 127.0.0.1 (port 0), driven by reqwest.
//!
//! The breakers run on a `ManualClock`, so the open wait is skipped by advancing the clock, not
//! by sleeping. Each test stops its servers at the end (graceful shutdown).

use axum::error_handling::HandleErrorLayer;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use breakerbox::tower::{handle_error, CircuitBreakerLayer, STATE_HEADER};
use breakerbox::{CircuitBreaker, ManualClock, State};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinSet;
use tower::ServiceBuilder;

/// How the guarded handler answers.
const OK: u8 = 0;
const FAIL: u8 = 1;
/// Hold every request until the test releases it through `gate`.
const HOLD: u8 = 2;

/// The guarded handler (the "upstream" behind the breaker) and what it saw.
struct Upstream {
    mode: AtomicU8,
    hits: AtomicUsize,
    in_flight: AtomicU32,
    max_in_flight: AtomicU32,
    gate: Semaphore,
    /// One message per held request that reached the handler.
    arrived: mpsc::UnboundedSender<()>,
    /// One message per held request whose handler future was dropped before it answered.
    cancelled: mpsc::UnboundedSender<()>,
}

/// Signals `cancelled` when dropped while armed.
struct CancelGuard<'a>(&'a Upstream, bool);

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.1 {
            let _ = self.0.cancelled.send(());
        }
    }
}

async fn upstream(AxState(up): AxState<Arc<Upstream>>) -> (StatusCode, &'static str) {
    up.hits.fetch_add(1, Ordering::SeqCst);
    let now = up.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    up.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let mut guard = CancelGuard(&up, true);
    let answer = match up.mode.load(Ordering::SeqCst) {
        FAIL => (StatusCode::INTERNAL_SERVER_ERROR, "upstream failed"),
        HOLD => {
            let _ = up.arrived.send(());
            match up.gate.acquire().await {
                Ok(p) => p.forget(),
                Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, "gate closed"),
            }
            (StatusCode::OK, "released")
        }
        _ => (StatusCode::OK, "ok"),
    };
    guard.1 = false;
    answer
}

struct Harness {
    breaker: Arc<CircuitBreaker<ManualClock>>,
    clock: ManualClock,
    up: Arc<Upstream>,
    arrived: mpsc::UnboundedReceiver<()>,
    cancelled: mpsc::UnboundedReceiver<()>,
    url: String,
    client: reqwest::Client,
    shutdown: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Harness {
    /// A server whose `GET /` and `POST /data` go through one breaker built by `build`.
    async fn start(
        build: impl FnOnce(
            breakerbox::Builder<breakerbox::DefaultClock>,
        ) -> breakerbox::Builder<breakerbox::DefaultClock>,
    ) -> Harness {
        let clock = ManualClock::new();
        let breaker = Arc::new(
            build(CircuitBreaker::builder())
                .clock(clock.clone())
                .build()
                .expect("valid config"),
        );
        let (arrived_tx, arrived) = mpsc::unbounded_channel();
        let (cancelled_tx, cancelled) = mpsc::unbounded_channel();
        let up = Arc::new(Upstream {
            mode: AtomicU8::new(OK),
            hits: AtomicUsize::new(0),
            in_flight: AtomicU32::new(0),
            max_in_flight: AtomicU32::new(0),
            gate: Semaphore::new(0),
            arrived: arrived_tx,
            cancelled: cancelled_tx,
        });
        let app = Router::new()
            .route("/", get(upstream))
            .route("/data", post(upstream))
            .with_state(up.clone())
            .layer(
                ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(handle_error))
                    .layer(CircuitBreakerLayer::new(breaker.clone()).state_header(true)),
            );
        let (addr, shutdown, server) = serve(app).await;
        Harness {
            breaker,
            clock,
            up,
            arrived,
            cancelled,
            url: format!("http://{addr}/"),
            client: reqwest::Client::new(),
            shutdown,
            server,
        }
    }

    fn mode(&self, mode: u8) {
        self.up.mode.store(mode, Ordering::SeqCst);
    }

    fn hits(&self) -> usize {
        self.up.hits.load(Ordering::SeqCst)
    }

    async fn get(&self) -> reqwest::Response {
        self.client
            .get(&self.url)
            .send()
            .await
            .expect("the server answers")
    }

    async fn stop(self) {
        drop(self.client);
        self.up.gate.close();
        let _ = self.shutdown.send(());
        match tokio::time::timeout(Duration::from_secs(5), self.server).await {
            Ok(joined) => joined.expect("server task").expect("server"),
            Err(_) => panic!("the server did not shut down"),
        }
    }
}

/// Binds 127.0.0.1:0 (the listener accepts as soon as it is bound: no readiness wait needed)
/// and serves `app` until the returned sender fires.
async fn serve(
    app: Router,
) -> (
    SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    (addr, tx, server)
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn trips_at_the_threshold_and_rejects_without_reaching_the_upstream() {
    let h = Harness::start(|b| b.consecutive_failures(3).open_wait(Duration::from_secs(30))).await;
    h.mode(FAIL);
    for i in 1..=3 {
        let res = h.get().await;
        assert_eq!(res.status(), 500, "failure {i} reaches the upstream");
        let expected = if i < 3 { "closed" } else { "open" };
        assert_eq!(header(&res, STATE_HEADER.as_str()), Some(expected));
    }
    assert_eq!(h.breaker.state(), State::Open);
    assert_eq!(h.hits(), 3);

    h.mode(OK);
    h.clock.advance(Duration::from_millis(10_400));
    for _ in 0..5 {
        let res = h.get().await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        // 19.6 s left, rounded up.
        assert_eq!(header(&res, "retry-after"), Some("20"));
        assert_eq!(header(&res, STATE_HEADER.as_str()), Some("open"));
        let body = res.text().await.expect("body");
        assert!(body.contains("circuit breaker is open"), "{body}");
    }
    assert_eq!(h.hits(), 3, "no rejected request reached the upstream");
    let m = h.breaker.metrics();
    assert_eq!((m.calls, m.failures, m.rejected), (3, 3, 5));

    // POST goes through the same breaker.
    let res = h
        .client
        .post(format!("{}data", h.url))
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h.hits(), 3);
    h.stop().await;
}

#[tokio::test]
async fn half_open_lets_exactly_the_permitted_trials_through_then_closes() {
    const PERMITS: usize = 3;
    const CLIENTS: usize = 12;
    let mut h = Harness::start(|b| {
        b.consecutive_failures(1)
            .open_wait(Duration::from_secs(30))
            .half_open_permits(PERMITS as u32)
            .half_open_successes(PERMITS as u32)
    })
    .await;
    h.mode(FAIL);
    assert_eq!(h.get().await.status(), 500);
    assert_eq!(h.breaker.state(), State::Open);
    h.clock.advance(Duration::from_secs(30));
    h.mode(HOLD);
    let hits_before = h.hits();

    let mut clients = JoinSet::new();
    for _ in 0..CLIENTS {
        let (client, url) = (h.client.clone(), h.url.clone());
        clients.spawn(async move {
            let res = client.get(url).send().await.expect("answer");
            let retry = header(&res, "retry-after").map(str::to_owned);
            (res.status(), retry)
        });
    }
    // The trial requests are held in the upstream; every other one is rejected meanwhile.
    for _ in 0..PERMITS {
        h.arrived.recv().await.expect("a trial arrives");
    }
    for _ in 0..CLIENTS - PERMITS {
        let (status, retry) = clients.join_next().await.expect("a client").expect("task");
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            retry.as_deref(),
            Some("1"),
            "half-open and full: retry in 1 s"
        );
    }
    assert_eq!(h.hits() - hits_before, PERMITS);
    assert_eq!(h.up.in_flight.load(Ordering::SeqCst), PERMITS as u32);
    assert_eq!(h.breaker.state(), State::HalfOpen);
    assert_eq!(h.breaker.metrics().half_open_in_flight, PERMITS as u32);

    h.up.gate.add_permits(PERMITS);
    while let Some(done) = clients.join_next().await {
        let (status, _) = done.expect("task");
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(h.up.max_in_flight.load(Ordering::SeqCst), PERMITS as u32);
    assert_eq!(h.breaker.state(), State::Closed);
    assert_eq!(h.breaker.metrics().rejected, (CLIENTS - PERMITS) as u64);

    // Closed: everything passes again.
    h.mode(OK);
    for _ in 0..5 {
        assert_eq!(h.get().await.status(), 200);
    }
    h.stop().await;
}

#[tokio::test]
async fn closes_only_after_the_required_successes() {
    let h = Harness::start(|b| {
        b.consecutive_failures(2)
            .open_wait(Duration::from_secs(5))
            .half_open_successes(3)
    })
    .await;
    h.mode(FAIL);
    for _ in 0..2 {
        assert_eq!(h.get().await.status(), 500);
    }
    assert_eq!(h.breaker.state(), State::Open);
    h.clock.advance(Duration::from_secs(5));
    h.mode(OK);
    for i in 1..=3 {
        let res = h.get().await;
        assert_eq!(res.status(), 200);
        let expected = if i < 3 { "half_open" } else { "closed" };
        assert_eq!(
            header(&res, STATE_HEADER.as_str()),
            Some(expected),
            "trial {i}"
        );
    }
    assert_eq!(h.breaker.state(), State::Closed);

    // A failed trial re-opens it.
    h.mode(FAIL);
    for _ in 0..2 {
        assert_eq!(h.get().await.status(), 500);
    }
    h.clock.advance(Duration::from_secs(5));
    let res = h.get().await;
    assert_eq!(res.status(), 500);
    assert_eq!(header(&res, STATE_HEADER.as_str()), Some("open"));
    assert_eq!(h.get().await.status(), StatusCode::SERVICE_UNAVAILABLE);
    h.stop().await;
}

#[tokio::test]
async fn a_client_that_goes_away_releases_its_trial_permit() {
    let mut h =
        Harness::start(|b| b.consecutive_failures(1).open_wait(Duration::from_secs(30))).await;
    h.mode(FAIL);
    assert_eq!(h.get().await.status(), 500);
    h.clock.advance(Duration::from_secs(30));
    h.mode(HOLD);

    // The only trial hangs in the upstream; the client gives up (its request future is
    // dropped, closing the connection).
    let (client, url) = (h.client.clone(), h.url.clone());
    let request = tokio::spawn(async move { client.get(url).send().await });
    h.arrived.recv().await.expect("the trial arrives");
    assert_eq!(h.breaker.metrics().half_open_in_flight, 1);
    assert_eq!(h.get().await.status(), StatusCode::SERVICE_UNAVAILABLE);
    request.abort();
    assert!(request.await.expect_err("aborted").is_cancelled());

    // The server notices the closed connection and drops the handler's future, and with it
    // the permit (the permit is released right after the handler future in the same drop).
    h.cancelled.recv().await.expect("the handler was cancelled");
    tokio::time::timeout(Duration::from_secs(5), async {
        while h.breaker.metrics().half_open_in_flight != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the permit is released");
    assert_eq!(h.breaker.state(), State::HalfOpen);
    let m = h.breaker.metrics();
    assert_eq!(
        (m.failures, m.ignored),
        (1, 1),
        "a cancelled call records nothing"
    );

    // A new trial is admitted, and closes the breaker.
    h.mode(OK);
    let res = h.get().await;
    assert_eq!(res.status(), 200);
    assert_eq!(h.breaker.state(), State::Closed);
    h.stop().await;
}

/// A proxy in front of a real upstream: transport errors (the upstream is gone) count as
/// failures, and the breaker opens.
#[tokio::test]
async fn proxy_counts_transport_errors_as_failures() {
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let up_app = Router::new().route(
        "/data",
        post(move || {
            seen.fetch_add(1, Ordering::SeqCst);
            async { "stored" }
        }),
    );
    let (up_addr, up_shutdown, up_server) = serve(up_app).await;
    let upstream_url: Arc<str> = format!("http://{up_addr}/data").into();

    let breaker = Arc::new(
        CircuitBreaker::builder()
            .consecutive_failures(2)
            .open_wait(Duration::from_secs(60))
            .clock(ManualClock::new())
            .build()
            .expect("valid config"),
    );
    let client = reqwest::Client::new();
    let target = upstream_url.clone();
    let outbound = client.clone();
    // The breaker guards the outbound call: a tower service over reqwest.
    let upstream_service = tower::service_fn(move |_req: axum::http::Request<()>| {
        let (client, target) = (outbound.clone(), target.clone());
        async move {
            let res = client.post(&*target).send().await?;
            let status = res.status();
            let body = res.text().await?;
            Ok::<_, reqwest::Error>(
                axum::http::Response::builder()
                    .status(status)
                    .body(body)
                    .unwrap_or_default(),
            )
        }
    });
    let guarded = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(breaker.clone()))
        .service(upstream_service);
    let proxy_app = Router::new().route(
        "/create",
        post(move || {
            let svc = guarded.clone();
            async move {
                use tower::ServiceExt;
                let req = axum::http::Request::new(());
                match svc.oneshot(req).await {
                    Ok(res) => (res.status(), res.into_body()),
                    Err(e) if e.is_rejected() => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
                    Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()),
                }
            }
        }),
    );
    let (proxy_addr, proxy_shutdown, proxy_server) = serve(proxy_app).await;
    let create = format!("http://{proxy_addr}/create");

    let res = client.post(&create).send().await.expect("answer");
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.expect("body"), "stored");

    // The upstream goes away: connection refused, twice, trips the breaker.
    let _ = up_shutdown.send(());
    up_server.await.expect("task").expect("upstream");
    for _ in 0..2 {
        let res = client.post(&create).send().await.expect("answer");
        assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    }
    assert_eq!(breaker.state(), State::Open);
    let res = client.post(&create).send().await.expect("answer");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.text().await.expect("body").contains("retry after 60"));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(breaker.metrics().failures, 2);

    drop(client);
    let _ = proxy_shutdown.send(());
    proxy_server.await.expect("task").expect("proxy");
}
