//! An outbound GET wrapped by a circuit breaker: 5 consecutive failures open it for 60 s.
//!
//! ```sh
//! cargo run --example client --features axum            # scripted run, then exit
//! cargo run --example client --features axum -- --serve # keep serving
//! ```
//!
//! A demo "rates" upstream (`GET /rates`, which can be taken down with `POST /admin/down` and
//! brought back with `POST /admin/up`) and an app whose `GET /convert` calls it through a
//! breaker-guarded tower client. While the breaker is open, `/convert` answers
//! `503 Service Unavailable` with a JSON body giving the reason and a `Retry-After` header,
//! without calling the upstream.

use axum::extract::State;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use breakerbox::tower::{BreakerError, CircuitBreakerLayer};
use breakerbox::CircuitBreaker;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::{BoxError, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let serve_forever = std::env::args().any(|a| a == "--serve");
    let start = Instant::now();
    let log = move |msg: String| println!("[{:>5} ms] {msg}", start.elapsed().as_millis());

    // The upstream.
    let upstream = Arc::new(Upstream::default());
    let up_app =
        Router::new()
            .route("/rates", get(rates))
            .route(
                "/admin/down",
                post(|State(u): State<Arc<Upstream>>| async move {
                    u.down.store(true, Ordering::SeqCst)
                }),
            )
            .route(
                "/admin/up",
                post(|State(u): State<Arc<Upstream>>| async move {
                    u.down.store(false, Ordering::SeqCst)
                }),
            )
            .with_state(upstream.clone());
    let up_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let up_addr = up_listener.local_addr()?;
    tokio::spawn(async move { axum::serve(up_listener, up_app).await });

    // The breaker and the guarded outbound client.
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .name("rates")
            .consecutive_failures(5)
            .open_wait(Duration::from_secs(60))
            .build()?,
    );
    let http = reqwest::Client::new();
    let get_rates = tower::service_fn(move |req: Request<()>| {
        let http = http.clone();
        async move {
            let res = http.get(req.uri().to_string()).send().await?;
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            Ok::<_, reqwest::Error>(
                Response::builder()
                    .status(status)
                    .body(body)
                    .unwrap_or_default(),
            )
        }
    });
    let client = App {
        rates: tower::ServiceBuilder::new()
            .boxed_clone_sync()
            .layer(CircuitBreakerLayer::new(breaker.clone()))
            .service(get_rates),
        url: format!("http://{up_addr}/rates"),
    };
    let app = Router::new()
        .route("/convert", get(convert))
        .with_state(client);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    log(format!(
        "upstream on http://{up_addr}/rates, app on http://{addr}/convert"
    ));

    if serve_forever {
        log(format!("serving; try: curl -i http://{addr}/convert"));
        log(format!(
            "take the upstream down: curl -XPOST http://{up_addr}/admin/down"
        ));
        tokio::signal::ctrl_c().await?;
        return Ok(());
    }

    let user = reqwest::Client::new();
    let convert = || async {
        let res = user.get(format!("http://{addr}/convert")).send().await?;
        let status = res.status();
        let retry = res
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(|s| format!(" Retry-After: {s}"))
            .unwrap_or_default();
        let body = res.text().await?;
        Ok::<_, reqwest::Error>(format!("GET /convert -> {status}{retry} {body}"))
    };
    log(convert().await?);
    log("the upstream goes down (500)".into());
    upstream.down.store(true, Ordering::SeqCst);
    for _ in 0..5 {
        log(convert().await?);
    }
    log(format!(
        "breaker is {}: 5 consecutive failures",
        breaker.state()
    ));
    for _ in 0..3 {
        log(convert().await?);
    }
    log(format!(
        "upstream was called {} times in all; the last 3 requests never reached it",
        upstream.hits.load(Ordering::SeqCst)
    ));
    log("(the breaker would let a trial call through after 60 s; run with --serve to try)".into());
    Ok(())
}

#[derive(Default)]
struct Upstream {
    down: AtomicBool,
    hits: AtomicUsize,
}

async fn rates(State(up): State<Arc<Upstream>>) -> impl IntoResponse {
    up.hits.fetch_add(1, Ordering::SeqCst);
    if up.down.load(Ordering::SeqCst) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": "rates feed stale" })),
        );
    }
    (StatusCode::OK, Json(json!({ "EUR/USD": 1.08 })))
}

#[derive(Clone)]
struct App {
    rates: tower::util::BoxCloneSyncService<
        Request<()>,
        Response<Value>,
        BreakerError<reqwest::Error>,
    >,
    url: String,
}

async fn convert(State(app): State<App>) -> axum::response::Response {
    let req = Request::get(&app.url).body(()).unwrap_or_default();
    match app.rates.oneshot(req).await {
        Ok(res) if res.status().is_success() => {
            let rate = res.body()["EUR/USD"].as_f64().unwrap_or_default();
            Json(json!({ "eur": 100, "usd": 100.0 * rate })).into_response()
        }
        Ok(res) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({ "error": "upstream failed", "upstream_status": res.status().as_u16() })),
        )
            .into_response(),
        Err(BreakerError::Rejected(open)) => {
            let mut res = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "error": "rates service unavailable",
                    "reason": open.to_string(),
                    "state": open.state().as_str(),
                    "retry_after_secs": open.retry_after_secs(),
                })),
            )
                .into_response();
            if let Some(secs) = open.retry_after_secs() {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            res
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}
