//! A circuit breaker around every route of an axum app: a failing route trips it, and then
//! every route answers `503 Service Unavailable` with `Retry-After` until the open wait ends.
//!
//! ```sh
//! cargo run --example middleware --features axum            # scripted run, then exit
//! cargo run --example middleware --features axum -- --serve # keep serving
//! ```

use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use breakerbox::tower::{handle_error, CircuitBreakerLayer};
use breakerbox::CircuitBreaker;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceBuilder;

const OPEN_WAIT: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let serve_forever = std::env::args().any(|a| a == "--serve");
    let start = Instant::now();
    let log = move |msg: String| println!("[{:>5} ms] {msg}", start.elapsed().as_millis());

    let breaker = Arc::new(
        CircuitBreaker::builder()
            .name("app")
            .consecutive_failures(3)
            .open_wait(OPEN_WAIT)
            .build()?,
    );
    let app = Router::new()
        .route("/hello", get(|| async { "hello\n" }))
        .route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "database is down\n") }),
        )
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, "no such thing\n") }),
        )
        // The whole app behind one breaker. `handle_error` turns a rejection into
        // 503 + Retry-After (and a timeout into 504).
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(handle_error))
                .layer(CircuitBreakerLayer::new(breaker.clone()).state_header(true)),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    log(format!(
        "app on http://{addr} (GET /hello, /fail, /missing); 3 consecutive failures open the breaker for {OPEN_WAIT:?}"
    ));

    if serve_forever {
        log(format!("serving; try: curl -i http://{addr}/fail"));
        server.await??;
        return Ok(());
    }

    let client = reqwest::Client::new();
    let get = |path: &'static str| {
        let client = client.clone();
        async move {
            let res = client.get(format!("http://{addr}{path}")).send().await?;
            let header = |name: &str| {
                res.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_owned()
            };
            let line = format!(
                "GET {path:<8} -> {} state={} retry-after={}",
                res.status(),
                header("x-circuit-breaker-state"),
                header("retry-after"),
            );
            let body = res.text().await?;
            Ok::<_, reqwest::Error>(format!("{line} body={:?}", body.trim()))
        }
    };
    for path in [
        "/hello", "/missing", "/fail", "/fail", "/hello", "/fail", "/fail", "/fail", "/hello",
        "/missing",
    ] {
        log(get(path).await?);
    }
    log(format!("waiting {OPEN_WAIT:?} for the open wait to end"));
    tokio::time::sleep(OPEN_WAIT).await;
    for path in ["/hello", "/hello"] {
        log(get(path).await?);
    }
    let m = breaker.metrics();
    log(format!(
        "breaker: state={} calls={} failures={} rejected={}",
        m.state, m.calls, m.failures, m.rejected
    ));
    Ok(())
}
