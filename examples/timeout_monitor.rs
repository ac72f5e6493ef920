//! An invocation timeout that counts as a failure, and a listener that alerts when the
//! breaker opens and when it closes again (after successful trials or a manual reset).
//!
//! ```sh
//! cargo run --example timeout_monitor --features axum            # scripted run, then exit
//! cargo run --example timeout_monitor --features axum -- --serve # keep serving
//! ```
//!
//! The breaker's `call_timeout` (200 ms) applies to the tower layer (and to
//! `CircuitBreaker::call_async`): a request still running after it is dropped, answered
//! `504 Gateway Timeout`, and recorded as a failure. `POST /admin/reset` resets the breaker.

use axum::error_handling::HandleErrorLayer;
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use breakerbox::tower::{handle_error, CircuitBreakerLayer};
use breakerbox::{CallError, CircuitBreaker, EventKind, State as BreakerState, TransitionReason};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::{BoxError, ServiceBuilder};

const CALL_TIMEOUT: Duration = Duration::from_millis(200);
const OPEN_WAIT: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let serve_forever = std::env::args().any(|a| a == "--serve");
    let start = Instant::now();
    let log = move |msg: String| println!("[{:>5} ms] {msg}", start.elapsed().as_millis());

    let breaker = Arc::new(
        CircuitBreaker::builder()
            .name("reports")
            .consecutive_failures(2)
            .call_timeout(CALL_TIMEOUT)
            .open_wait(OPEN_WAIT)
            .build()?,
    );
    // The monitor: alert on open, resolve on close (trials succeeded or manual reset).
    breaker.on_event(move |e| {
        if let EventKind::Transition(t) = e.kind {
            let at = start.elapsed().as_millis();
            match (t.to, t.reason) {
                (BreakerState::Open, reason) => println!(
                    "[{at:>5} ms] ALERT    breaker {:?} opened ({reason:?}); next trial in {:?}",
                    e.breaker,
                    t.open_wait.unwrap_or_default()
                ),
                (BreakerState::Closed, TransitionReason::Reset) => {
                    println!(
                        "[{at:>5} ms] RESOLVED breaker {:?} was reset by an operator",
                        e.breaker
                    )
                }
                (BreakerState::Closed, _) => {
                    println!(
                        "[{at:>5} ms] RESOLVED breaker {:?} closed after successful trials",
                        e.breaker
                    )
                }
                (to, _) => println!("[{at:>5} ms] info     breaker {:?} is now {to}", e.breaker),
            }
        }
    });

    // How long the report takes to build, in ms (the scripted run changes it).
    let delay_ms = Arc::new(AtomicU64::new(10));
    let app = Router::new()
        .route("/report", get(report))
        .with_state(delay_ms.clone())
        // The layer picks up the breaker's `call_timeout`; `.timeout(d)` would override it.
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(handle_error))
                .layer(CircuitBreakerLayer::new(breaker.clone())),
        )
        .route(
            "/admin/reset",
            post(|State(b): State<Arc<CircuitBreaker>>| async move {
                b.reset();
                "reset\n"
            }),
        )
        .with_state(breaker.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    log(format!(
        "app on http://{addr}/report; timeout {CALL_TIMEOUT:?}, 2 consecutive failures open the breaker for {OPEN_WAIT:?}"
    ));

    if serve_forever {
        delay_ms.store(500, Ordering::SeqCst);
        log(format!(
            "serving with a 500 ms report; try: curl -i http://{addr}/report"
        ));
        log(format!("reset: curl -XPOST http://{addr}/admin/reset"));
        tokio::signal::ctrl_c().await?;
        return Ok(());
    }

    let client = reqwest::Client::new();
    let get = || async {
        let t = Instant::now();
        let res = client.get(format!("http://{addr}/report")).send().await?;
        let status = res.status();
        let body = res.text().await?;
        Ok::<_, reqwest::Error>(format!(
            "GET /report -> {status} in {} ms: {}",
            t.elapsed().as_millis(),
            body.trim()
        ))
    };
    log(get().await?);
    log("the report gets slow (1 s)".into());
    delay_ms.store(1_000, Ordering::SeqCst);
    for _ in 0..3 {
        log(get().await?);
    }
    log(format!("the report is fast again; waiting {OPEN_WAIT:?}"));
    delay_ms.store(10, Ordering::SeqCst);
    tokio::time::sleep(OPEN_WAIT).await;
    log(get().await?);

    log("slow again; then an operator resets the breaker".into());
    delay_ms.store(1_000, Ordering::SeqCst);
    for _ in 0..2 {
        log(get().await?);
    }
    delay_ms.store(10, Ordering::SeqCst);
    let res = client
        .post(format!("http://{addr}/admin/reset"))
        .send()
        .await?;
    log(format!("POST /admin/reset -> {}", res.status()));
    log(get().await?);

    // The same timeout without tower: `call_async`.
    let r: Result<(), CallError<std::io::Error>> = breaker
        .call_async(async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(())
        })
        .await;
    log(format!("call_async with a 1 s future -> {r:?}"));
    let m = breaker.metrics();
    log(format!(
        "breaker: state={} calls={} failures={} rejected={} opened={}",
        m.state, m.calls, m.failures, m.rejected, m.times_opened
    ));
    Ok(())
}

async fn report(State(delay_ms): State<Arc<AtomicU64>>) -> String {
    let ms = delay_ms.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("report built in {ms} ms\n")
}
