//! One breaker per downstream service, from a `Registry`: payment and inventory each have
//! their own configuration; inventory falls back to a cached answer; every answer carries the
//! breaker state header; `/metrics` serves JSON and `/metrics/prometheus` the Prometheus text
//! format.
//!
//! ```sh
//! cargo run --example registry --features axum            # scripted run, then exit
//! cargo run --example registry --features axum -- --serve # keep serving
//! ```

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use breakerbox::tower::{BreakerError, CircuitBreakerLayer, STATE_HEADER};
use breakerbox::{CircuitBreaker, Metrics, PrometheusText, Registry};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower::{BoxError, ServiceExt};

type Downstream =
    tower::util::BoxCloneSyncService<Request<()>, Response<Value>, BreakerError<reqwest::Error>>;

#[derive(Clone)]
struct App {
    registry: Arc<Registry>,
    downstream: Downstream,
    base: String,
    /// The last good inventory answer.
    cached_stock: Arc<AtomicI64>,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let serve_forever = std::env::args().any(|a| a == "--serve");
    let start = Instant::now();
    let log = move |msg: String| println!("[{:>5} ms] {msg}", start.elapsed().as_millis());

    // Demo downstream services on one server: /payment/charge and /inventory/stock.
    let down: Arc<Mutex<HashMap<String, bool>>> = Arc::default();
    let ds_app = Router::new()
        .route(
            "/payment/charge",
            get(
                |State(d): State<Arc<Mutex<HashMap<String, bool>>>>| async move {
                    answer(&d, "payment", json!({ "charged": true }))
                },
            ),
        )
        .route(
            "/inventory/stock",
            get(
                |State(d): State<Arc<Mutex<HashMap<String, bool>>>>| async move {
                    answer(&d, "inventory", json!({ "stock": 17 }))
                },
            ),
        )
        .route("/admin/{service}/{up_or_down}", post(toggle))
        .with_state(down.clone());
    let ds_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ds_addr = ds_listener.local_addr()?;
    tokio::spawn(async move { axum::serve(ds_listener, ds_app).await });

    // One breaker per downstream, each with its own configuration.
    let registry = Arc::new(Registry::default());
    let config = |failures: u32, wait: u64| {
        CircuitBreaker::builder()
            .consecutive_failures(failures)
            .open_wait(Duration::from_secs(wait))
            .current_config()
            .clone()
    };
    registry.configure("payment", config(2, 30))?;
    registry.configure("inventory", config(3, 5))?;

    // The outbound client: the breaker is picked by the first path segment.
    let http = reqwest::Client::new();
    let call = tower::service_fn(move |req: Request<()>| {
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
    let service_of = |req: &Request<()>| {
        req.uri()
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
            .to_string()
    };
    let downstream = tower::ServiceBuilder::new()
        .boxed_clone_sync()
        .layer(CircuitBreakerLayer::keyed(registry.clone(), service_of).state_header(true))
        .service(call);
    let app_state = App {
        registry: registry.clone(),
        downstream,
        base: format!("http://{ds_addr}"),
        cached_stock: Arc::new(AtomicI64::new(-1)),
    };
    let app = Router::new()
        .route("/checkout", get(checkout))
        .route("/stock", get(stock))
        .route("/metrics", get(metrics_json))
        .route("/metrics/prometheus", get(metrics_prometheus))
        .with_state(app_state)
        // The live page of every breaker (state, rates, calls, rejections, state changes).
        .nest("/dashboard", breakerbox::tower::dashboard(registry.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    log(format!(
        "downstream services on http://{ds_addr}, app on http://{addr}"
    ));
    log("payment: 2 consecutive failures open it for 30 s; inventory: 3 for 5 s, with a cached fallback".into());

    if serve_forever {
        log(format!(
            "serving; open http://{addr}/dashboard, or curl -i http://{addr}/checkout, /stock, /metrics, /metrics/prometheus"
        ));
        log(format!(
            "take a service down: curl -XPOST http://{ds_addr}/admin/payment/down"
        ));
        tokio::signal::ctrl_c().await?;
        return Ok(());
    }

    let client = reqwest::Client::new();
    let get = |path: &'static str| {
        let client = client.clone();
        async move {
            let res = client.get(format!("http://{addr}{path}")).send().await?;
            let state = res
                .headers()
                .get(STATE_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned();
            let retry = res
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(|s| format!(" retry-after={s}"))
                .unwrap_or_default();
            let status = res.status();
            let body = res.text().await?;
            Ok::<_, reqwest::Error>(format!(
                "GET {path:<9} -> {status} state={state}{retry} {body}"
            ))
        }
    };
    let set = |service: &str, up: bool| {
        down.lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(service.to_string(), !up);
    };
    log(get("/checkout").await?);
    log(get("/stock").await?);
    log("payment goes down".into());
    set("payment", false);
    for _ in 0..3 {
        log(get("/checkout").await?);
    }
    log(get("/stock").await?);
    log("inventory goes down".into());
    set("inventory", false);
    for _ in 0..4 {
        log(get("/stock").await?);
    }
    log("GET /metrics:".into());
    let metrics: Value = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await?
        .json()
        .await?;
    println!("{}", serde_json::to_string_pretty(&metrics)?);
    log("GET /metrics/prometheus (state and counters):".into());
    let text = client
        .get(format!("http://{addr}/metrics/prometheus"))
        .send()
        .await?
        .text()
        .await?;
    for line in text.lines().filter(|l| {
        (l.starts_with("breakerbox_state") && l.ends_with(" 1"))
            || l.starts_with("breakerbox_calls_total")
            || l.starts_with("breakerbox_rejected_total")
    }) {
        println!("    {line}");
    }
    Ok(())
}

fn answer(
    down: &Mutex<HashMap<String, bool>>,
    service: &str,
    ok: Value,
) -> (StatusCode, Json<Value>) {
    let is_down = down
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(service)
        .copied()
        .unwrap_or(false);
    if is_down {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": format!("{service} is down") })),
        )
    } else {
        (StatusCode::OK, Json(ok))
    }
}

async fn toggle(
    State(down): State<Arc<Mutex<HashMap<String, bool>>>>,
    Path((service, up_or_down)): Path<(String, String)>,
) -> String {
    let is_down = up_or_down == "down";
    down.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(service.clone(), is_down);
    format!("{service} down={is_down}\n")
}

/// Copies the breaker state header from the downstream answer.
fn state_headers(res: &Response<Value>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(v) = res.headers().get(STATE_HEADER) {
        h.insert(STATE_HEADER, v.clone());
    }
    h
}

async fn checkout(State(app): State<App>) -> axum::response::Response {
    let req = Request::get(format!("{}/payment/charge", app.base))
        .body(())
        .unwrap_or_default();
    match app.downstream.oneshot(req).await {
        Ok(res) if res.status().is_success() => (
            state_headers(&res),
            Json(json!({ "order": "placed", "payment": res.body() })),
        )
            .into_response(),
        Ok(res) => (
            StatusCode::BAD_GATEWAY,
            state_headers(&res),
            Json(json!({ "error": "payment failed" })),
        )
            .into_response(),
        // No fallback for payments: 503 + Retry-After + state header.
        Err(BreakerError::Rejected(open)) => {
            let mut res = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": open.to_string() })),
            )
                .into_response();
            if let Some(secs) = open.retry_after_secs() {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            res.headers_mut().insert(
                STATE_HEADER,
                HeaderValue::from_static(open.state().as_str()),
            );
            res
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

async fn stock(State(app): State<App>) -> axum::response::Response {
    let req = Request::get(format!("{}/inventory/stock", app.base))
        .body(())
        .unwrap_or_default();
    let (headers, reason) = match app.downstream.oneshot(req).await {
        Ok(res) if res.status().is_success() => {
            let n = res.body()["stock"].as_i64().unwrap_or_default();
            app.cached_stock.store(n, Ordering::SeqCst);
            return (
                state_headers(&res),
                Json(json!({ "stock": n, "cached": false })),
            )
                .into_response();
        }
        Ok(res) => (
            state_headers(&res),
            format!("inventory answered {}", res.status()),
        ),
        Err(BreakerError::Rejected(open)) => {
            let mut h = HeaderMap::new();
            h.insert(
                STATE_HEADER,
                HeaderValue::from_static(open.state().as_str()),
            );
            (h, open.to_string())
        }
        Err(e) => (HeaderMap::new(), e.to_string()),
    };
    // The fallback: the last good answer.
    let cached = app.cached_stock.load(Ordering::SeqCst);
    (
        headers,
        Json(json!({ "stock": cached, "cached": true, "reason": reason })),
    )
        .into_response()
}

async fn metrics_json(State(app): State<App>) -> Json<Value> {
    let all: Vec<Value> = app.registry.metrics().iter().map(metrics_to_json).collect();
    Json(json!({ "breakers": all }))
}

fn metrics_to_json(m: &Metrics) -> Value {
    json!({
        "name": m.name,
        "state": m.state.as_str(),
        "calls": m.calls,
        "failures": m.failures,
        "rejected": m.rejected,
        "times_opened": m.times_opened,
        "failure_rate": m.failure_rate,
        "retry_after_secs": m.retry_after.map(|d| d.as_secs_f64()),
    })
}

async fn metrics_prometheus(State(app): State<App>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.registry.metrics().to_prometheus(),
    )
}
