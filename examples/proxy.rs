//! A breaker-protected proxy in front of a demo upstream API.
//!
//! ```sh
//! cargo run --example proxy --features axum            # scripted run, then exit
//! cargo run --example proxy --features axum -- --serve # keep serving
//! ```
//!
//! - upstream: `POST /data` stores the JSON body and answers `201 {"id": n, ...}`;
//!   `POST /admin/health` with `up` or `down` makes it answer `500` (down).
//! - proxy: `POST /create` forwards the body to the upstream through a circuit breaker (a
//!   tower layer around a reqwest call) and answers the upstream's status and body together
//!   with the breaker state, or `503` + `Retry-After` while the breaker is open.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use breakerbox::tower::{BreakerError, CircuitBreakerLayer, STATE_HEADER};
use breakerbox::CircuitBreaker;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::{Service, ServiceExt};

const OPEN_WAIT: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let serve_forever = std::env::args().any(|a| a == "--serve");
    let start = Instant::now();
    let log = move |msg: String| println!("[{:>5} ms] {msg}", start.elapsed().as_millis());

    // --- the demo upstream API --------------------------------------------------------------
    let upstream = Arc::new(Upstream {
        healthy: AtomicBool::new(true),
        next_id: AtomicU64::new(1),
    });
    let upstream_app = Router::new()
        .route("/data", post(store))
        .route("/admin/health", post(set_health))
        .with_state(upstream.clone());
    let upstream_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let upstream_addr = upstream_listener.local_addr()?;
    tokio::spawn(async move { axum::serve(upstream_listener, upstream_app).await });

    // --- the proxy ------------------------------------------------------------------------
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .name("upstream")
            .consecutive_failures(3)
            .open_wait(OPEN_WAIT)
            .build()?,
    );
    let client = reqwest::Client::new();
    // The outbound call as a tower service, guarded by the breaker: 5xx and connection errors
    // are failures; the response carries the breaker state header.
    let outbound = tower::ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(breaker.clone()).state_header(true))
        .service(reqwest_service(client.clone()));
    let proxy = ProxyState {
        outbound,
        target: format!("http://{upstream_addr}/data"),
    };
    let proxy_app = Router::new()
        .route("/create", post(create))
        .with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, proxy_app).await });
    log(format!("upstream on http://{upstream_addr} (POST /data)"));
    log(format!("proxy    on http://{addr} (POST /create)"));

    if serve_forever {
        log(format!(
            "serving; try: curl -XPOST -d '{{\"name\":\"x\"}}' -H 'content-type: application/json' http://{addr}/create"
        ));
        log(format!(
            "take the upstream down: curl -XPOST -d down http://{upstream_addr}/admin/health"
        ));
        tokio::signal::ctrl_c().await?;
        return Ok(());
    }

    // --- the scripted run -----------------------------------------------------------------
    let create = |n: u32| {
        let client = client.clone();
        async move {
            let res = client
                .post(format!("http://{addr}/create"))
                .json(&json!({ "name": format!("item-{n}") }))
                .send()
                .await?;
            let status = res.status();
            let retry = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(|s| format!(" retry-after={s}s"))
                .unwrap_or_default();
            let body: Value = res.json().await?;
            Ok::<_, reqwest::Error>(format!("POST /create -> {status}{retry} {body}"))
        }
    };
    for n in 1..=2 {
        log(create(n).await?);
    }
    log("upstream goes down (answers 500)".into());
    upstream.healthy.store(false, Ordering::SeqCst);
    for n in 3..=7 {
        log(create(n).await?);
    }
    log(format!(
        "upstream recovers; waiting {OPEN_WAIT:?} for the open wait to end"
    ));
    upstream.healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(OPEN_WAIT).await;
    for n in 8..=9 {
        log(create(n).await?);
    }
    let m = breaker.metrics();
    log(format!(
        "breaker: state={} calls={} failures={} rejected={} opened={}",
        m.state, m.calls, m.failures, m.rejected, m.times_opened
    ));
    Ok(())
}

struct Upstream {
    healthy: AtomicBool,
    next_id: AtomicU64,
}

async fn store(State(up): State<Arc<Upstream>>, Json(body): Json<Value>) -> impl IntoResponse {
    if !up.healthy.load(Ordering::SeqCst) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": "database unavailable" })),
        );
    }
    let id = up.next_id.fetch_add(1, Ordering::SeqCst);
    (StatusCode::CREATED, Json(json!({ "id": id, "data": body })))
}

async fn set_health(State(up): State<Arc<Upstream>>, body: String) -> String {
    let healthy = body.trim() != "down";
    up.healthy.store(healthy, Ordering::SeqCst);
    format!("healthy={healthy}\n")
}

#[derive(Clone)]
struct ProxyState {
    outbound: breakerbox::tower::CircuitBreakerService<
        ReqwestService,
        Arc<CircuitBreaker>,
        breakerbox::tower::DefaultClassifier,
    >,
    target: String,
}

async fn create(State(proxy): State<ProxyState>, body: Bytes) -> impl IntoResponse {
    let req = Request::post(&proxy.target)
        .header("content-type", "application/json")
        .body(body);
    let Ok(req) = req else {
        return (StatusCode::BAD_REQUEST, HeaderMap::new(), Json(json!({}))).into_response();
    };
    let breaker = proxy.outbound.selector().clone();
    match proxy.outbound.oneshot(req).await {
        Ok(res) => {
            let state = res.headers().get(STATE_HEADER).cloned();
            let upstream: Value = serde_json::from_slice(res.body()).unwrap_or(Value::Null);
            let mut headers = HeaderMap::new();
            if let Some(s) = state.clone() {
                headers.insert(STATE_HEADER, s);
            }
            let state = state
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or("unknown")
                .to_owned();
            (
                res.status(),
                headers,
                Json(json!({ "upstream": upstream, "breaker": state })),
            )
                .into_response()
        }
        Err(BreakerError::Rejected(open)) => {
            let mut headers = HeaderMap::new();
            if let Some(secs) = open.retry_after_secs() {
                headers.insert("retry-after", HeaderValue::from(secs));
            }
            headers.insert(
                STATE_HEADER,
                HeaderValue::from_static(open.state().as_str()),
            );
            (
                StatusCode::SERVICE_UNAVAILABLE,
                headers,
                Json(json!({ "error": open.to_string(), "breaker": open.state().as_str() })),
            )
                .into_response()
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            HeaderMap::new(),
            Json(json!({ "error": e.to_string(), "breaker": breaker.state().as_str() })),
        )
            .into_response(),
    }
}

/// reqwest as a tower service over `http` types.
#[derive(Clone)]
struct ReqwestService(reqwest::Client);

fn reqwest_service(client: reqwest::Client) -> ReqwestService {
    ReqwestService(client)
}

impl Service<Request<Bytes>> for ReqwestService {
    type Response = Response<Bytes>;
    type Error = reqwest::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<Bytes>, reqwest::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        let client = self.0.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let res = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let mut out = Response::builder().status(res.status());
            if let Some(h) = out.headers_mut() {
                *h = res.headers().clone();
            }
            let body = res.bytes().await?;
            Ok(out.body(body).unwrap_or_default())
        })
    }
}
