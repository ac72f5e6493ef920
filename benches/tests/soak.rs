//! Soak test: a flapping upstream under concurrent load. Nothing lost, nothing stuck.
//!
//! ```sh
//! cargo test --release -p breakerbox-bench --test soak -- --nocapture              # ~32 s
//! SOAK_SECONDS=300 cargo test --release -p breakerbox-bench --test soak -- --nocapture
//! ```
//!
//! A real upstream (axum on 127.0.0.1) goes through phases: healthy, 100 % `500`, slow answers
//! (past the slow-call threshold), answers slower than the proxy's invocation timeout, stopped
//! (connection refused; then restarted on the same port), each fault followed by a healthy
//! phase. A proxy (axum) guards its reqwest calls to the upstream with one breaker, and an
//! in-process load generator (32 concurrent clients) drives the proxy. The breaker runs on the
//! real clock (`QuantaClock`) with short timings (open wait 300 ms, time window 1 s) so that
//! every fault phase shows several open / half-open cycles.
//!
//! The proxy handler takes permits with `try_acquire_owned` (rather than the tower layer) so that
//! it knows whether a call is a half-open trial and in which generation it was admitted, and
//! tells the upstream (headers `x-trial`, `x-gen`): the upstream can then attribute every request
//! it sees to a breaker state exactly. (The layer does not expose the permit to the inner
//! service.)
//!
//! Checked (bounds are derived from the configuration below, with the tolerance stated there):
//! - onset of a fault to OPEN within the window + the time a faulty call takes to be known as
//!   one + `TOLERANCE`;
//! - rejections are answered fast (p99 at the proxy handler and at the client);
//! - while OPEN the upstream sees no request admitted in that OPEN generation (only requests
//!   admitted before the breaker opened and still on their way, at most one per client per
//!   opening), and while HALF-OPEN no request but the trials;
//! - per half-open generation, the upstream never has more trials in flight than the permit cap;
//! - after the fault ends the breaker closes within the faulty call's duration + the open wait +
//!   a trial + `TOLERANCE`, and stays closed;
//! - no permit leaked, the breaker admits calls at the end, resident memory stable;
//! - every request gets an answer (success, upstream error or `503`): sent == answered.
//!
//! The run writes a timeline plot to `<target dir>/soak/timeline.svg` and prints a table.

use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use breakerbox::{CircuitBreaker, EventKind, State};
use hdrhistogram::Histogram;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

// ----- configuration ------------------------------------------------------------------------

/// Time OPEN before trials.
const OPEN_WAIT: Duration = Duration::from_millis(300);
/// The sliding time window and its buckets.
const WINDOW: Duration = Duration::from_secs(1);
const BUCKETS: u32 = 10;
const MINIMUM_CALLS: u32 = 20;
const FAILURE_RATE: f64 = 0.5;
const SLOW_RATE: f64 = 0.5;
/// A call taking at least this long is slow.
const SLOW_CALL: Duration = Duration::from_millis(100);
/// Trial calls in flight while HALF-OPEN, and successes that close.
const PERMITS: u32 = 4;
const SUCCESSES: u32 = 4;
/// The proxy's invocation timeout (counted as a failure, answered `504`).
const PROXY_TIMEOUT: Duration = Duration::from_millis(250);

/// The upstream's slow answers: past `SLOW_CALL`, within `PROXY_TIMEOUT`.
const SLOW_ANSWER: Duration = Duration::from_millis(150);
/// The upstream's "timeout" answers: far past `PROXY_TIMEOUT`.
const HANG_ANSWER: Duration = Duration::from_secs(2);

/// Concurrent clients and the total request rate they offer (each client paces itself).
const CLIENTS: usize = 32;
/// Unoptimized builds (CI's `cargo test`) cost ~10x more CPU per request: there the offered
/// rate is lower, so that the 2 cores are not saturated and latencies measure the breaker and
/// HTTP, not the load generator's own queue.
const OFFERED_RATE: f64 = if cfg!(debug_assertions) {
    600.0
} else {
    4_000.0
};
/// The load generator's per-request timeout: 20x the longest legitimate answer
/// (`PROXY_TIMEOUT`), so that it only fires on a hang.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Slack on every time bound: one bucket of the window (the window slides bucket by bucket)
/// plus 150 ms of scheduling delay on a loaded 2-core machine.
const TOLERANCE: Duration = Duration::from_millis(250);
/// Budget for the trials that close the breaker once the upstream is healthy (a healthy round
/// trip takes about a millisecond).
const TRIAL_TIME: Duration = Duration::from_millis(50);
/// Target for the p99 of a rejection, asserted at the proxy handler (server side).
const REJECT_P99: Duration = Duration::from_millis(1);
/// The bound asserted for the p99 of a rejection at the client. The 1 ms target is not met
/// there on a shared 2-core machine: the figure is an HTTP round trip over loopback through a
/// runtime shared by 32 clients, the proxy and the upstream (measured in release: p50 ~0.5 ms,
/// p99 ~2.5 ms; in CI's debug build on a loaded machine, p99 up to ~12 ms). What the client
/// side can show robustly is that a rejection never waits for the upstream, whose faulty
/// answers take at least the slow-call threshold: that is the bound asserted. The 1 ms target
/// itself is asserted at the proxy (server side, the issue's "at the proxy"), and the table
/// prints the client p99 against it as met or NOT met.
const REJECT_P99_CLIENT: Duration = SLOW_CALL;
/// Resident memory may not grow by more than this after the warm-up phase.
const RSS_GROWTH_BOUND: u64 = 8 << 20;

/// Timeline resolution.
const INTERVAL: Duration = Duration::from_millis(100);
/// Default run length (sum of the phase weights); `SOAK_SECONDS` scales every phase.
const BASE_SECONDS: f64 = 32.0;

// ----- phases -------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Healthy = 0,
    Errors = 1,
    Slow = 2,
    Hang = 3,
    Refused = 4,
}

impl Mode {
    fn is_fault(self) -> bool {
        self != Mode::Healthy
    }

    /// How long after the upstream turns faulty a call's outcome shows the fault.
    fn detection(self) -> Duration {
        match self {
            Mode::Slow => SLOW_ANSWER,
            Mode::Hang => PROXY_TIMEOUT,
            _ => Duration::ZERO,
        }
    }
}

const PHASES: [(&str, Mode, f64); 9] = [
    ("healthy", Mode::Healthy, 3.0),
    ("500s", Mode::Errors, 4.0),
    ("healed 1", Mode::Healthy, 3.0),
    ("slow", Mode::Slow, 4.0),
    ("healed 2", Mode::Healthy, 3.0),
    ("timeouts", Mode::Hang, 4.0),
    ("healed 3", Mode::Healthy, 3.0),
    ("refused", Mode::Refused, 4.0),
    ("recovery", Mode::Healthy, 4.0),
];

struct PhaseRun {
    name: &'static str,
    mode: Mode,
    /// Seconds since the start of the run.
    start: f64,
    end: f64,
    onset: Instant,
    state_at_onset: State,
    rss_end: Option<u64>,
}

// ----- upstream -----------------------------------------------------------------------------

/// The upstream, which also attributes every request to the breaker state it arrived in.
struct Upstream {
    breaker: Arc<CircuitBreaker>,
    mode: AtomicU8,
    /// Arrivals by the breaker state at arrival: closed, open, half-open.
    by_state: [AtomicU64; 3],
    /// Arrivals while OPEN admitted in an earlier generation (on their way when it opened).
    open_stragglers: AtomicU64,
    /// Arrivals while OPEN admitted in the current (OPEN) generation: impossible.
    open_admitted: AtomicU64,
    /// Arrivals while HALF-OPEN that are not trials of that generation.
    half_open_non_trials: AtomicU64,
    /// Non-trial arrivals while HALF-OPEN admitted in the current generation: impossible.
    half_open_admitted_non_trials: AtomicU64,
    trials: AtomicU64,
    /// Per half-open generation: (trials in flight, max in flight).
    trial_gens: Mutex<HashMap<u32, (u32, u32)>>,
    /// Trials in flight of any generation (an abandoned trial of an earlier generation may still
    /// be running), and its maximum.
    trials_in_flight: AtomicU32,
    trials_max_any_gen: AtomicU32,
}

struct TrialGuard<'a>(&'a Upstream, u32);

impl Drop for TrialGuard<'_> {
    fn drop(&mut self) {
        self.0.trials_in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(e) = self.0.trial_gens.lock().unwrap().get_mut(&self.1) {
            e.0 -= 1;
        }
    }
}

/// The breaker's state and generation, read consistently (the generation changes on every
/// transition).
fn snapshot(b: &CircuitBreaker) -> (State, u32) {
    loop {
        let g = b.generation();
        let s = b.state();
        if b.generation() == g {
            return (s, g);
        }
    }
}

fn header_u32(h: &HeaderMap, name: &str) -> Option<u32> {
    h.get(name)?.to_str().ok()?.parse().ok()
}

async fn upstream(AxState(up): AxState<Arc<Upstream>>, headers: HeaderMap) -> StatusCode {
    let (state, gen) = snapshot(&up.breaker);
    let trial = header_u32(&headers, "x-trial") == Some(1);
    let admitted = header_u32(&headers, "x-gen").expect("the proxy sends x-gen");
    let _guard = match state {
        State::Closed => {
            up.by_state[0].fetch_add(1, Ordering::SeqCst);
            None
        }
        State::Open => {
            up.by_state[1].fetch_add(1, Ordering::SeqCst);
            if admitted == gen {
                up.open_admitted.fetch_add(1, Ordering::SeqCst);
            } else {
                up.open_stragglers.fetch_add(1, Ordering::SeqCst);
            }
            None
        }
        State::HalfOpen => {
            up.by_state[2].fetch_add(1, Ordering::SeqCst);
            if !(trial && admitted == gen) {
                up.half_open_non_trials.fetch_add(1, Ordering::SeqCst);
                if admitted == gen {
                    up.half_open_admitted_non_trials
                        .fetch_add(1, Ordering::SeqCst);
                }
            }
            None
        }
        other => panic!("unexpected breaker state {other}"),
    }
    .or_else(|| {
        trial.then(|| {
            up.trials.fetch_add(1, Ordering::SeqCst);
            let n = up.trials_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            up.trials_max_any_gen.fetch_max(n, Ordering::SeqCst);
            let mut gens = up.trial_gens.lock().unwrap();
            let e = gens.entry(admitted).or_insert((0, 0));
            e.0 += 1;
            e.1 = e.1.max(e.0);
            TrialGuard(&up, admitted)
        })
    });
    match up.mode.load(Ordering::SeqCst) {
        m if m == Mode::Errors as u8 => StatusCode::INTERNAL_SERVER_ERROR,
        m if m == Mode::Slow as u8 => {
            tokio::time::sleep(SLOW_ANSWER).await;
            StatusCode::OK
        }
        m if m == Mode::Hang as u8 => {
            tokio::time::sleep(HANG_ANSWER).await;
            StatusCode::OK
        }
        _ => StatusCode::OK,
    }
}

struct Server {
    shutdown: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Serves `app` on `addr` (port 0 for any), with `SO_REUSEADDR` so that a stopped server can be
/// restarted on the same port.
async fn serve(addr: SocketAddr, app: Router) -> (SocketAddr, Server) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let listener = loop {
        let attempt = (|| {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(1024)
        })();
        match attempt {
            Ok(l) => break l,
            Err(e) if Instant::now() < deadline => {
                eprintln!("bind {addr}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot bind {addr}: {e}"),
        }
    };
    let local = listener.local_addr().expect("local addr");
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    (local, Server { shutdown: tx, task })
}

impl Server {
    /// Stops accepting, closes idle connections, waits for requests in flight (5 s at most).
    async fn stop(self) {
        let _ = self.shutdown.send(());
        let abort = self.task.abort_handle();
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(joined) => joined.expect("server task").expect("server"),
            Err(_) => {
                abort.abort();
                panic!("the upstream did not shut down within 5 s");
            }
        }
    }
}

// ----- proxy --------------------------------------------------------------------------------

#[derive(Default)]
struct ProxyCounts {
    ok: AtomicU64,
    upstream_errors: AtomicU64,
    timeouts: AtomicU64,
    transport_errors: AtomicU64,
    rejected: AtomicU64,
}

struct Proxy {
    breaker: Arc<CircuitBreaker>,
    client: reqwest::Client,
    url: String,
    counts: ProxyCounts,
    /// Handler entry to the `503` built, for rejections (ns).
    reject_ns: Mutex<Histogram<u64>>,
}

async fn proxy(AxState(p): AxState<Arc<Proxy>>) -> Response {
    let t0 = Instant::now();
    let permit = match p.breaker.try_acquire_owned() {
        Ok(permit) => permit,
        Err(rejected) => {
            let secs = rejected
                .retry_after()
                .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
                .unwrap_or(1)
                .max(1);
            let res = (
                StatusCode::SERVICE_UNAVAILABLE,
                [("retry-after", secs.to_string())],
                "circuit open",
            )
                .into_response();
            let ns = t0.elapsed().as_nanos() as u64;
            p.counts.rejected.fetch_add(1, Ordering::SeqCst);
            p.reject_ns.lock().unwrap().saturating_record(ns.max(1));
            return res;
        }
    };
    let call = p
        .client
        .get(&p.url)
        .header("x-trial", if permit.is_trial() { "1" } else { "0" })
        .header("x-gen", permit.generation().to_string())
        .send();
    let call = async move {
        let res = call.await?;
        let status = res.status();
        res.bytes().await?;
        Ok::<_, reqwest::Error>(status)
    };
    match tokio::time::timeout(PROXY_TIMEOUT, call).await {
        Err(_) => {
            permit.failure();
            p.counts.timeouts.fetch_add(1, Ordering::SeqCst);
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Ok(Err(_)) => {
            permit.failure();
            p.counts.transport_errors.fetch_add(1, Ordering::SeqCst);
            StatusCode::BAD_GATEWAY.into_response()
        }
        Ok(Ok(status)) if status.is_server_error() => {
            permit.failure();
            p.counts.upstream_errors.fetch_add(1, Ordering::SeqCst);
            status.into_response()
        }
        Ok(Ok(status)) => {
            permit.success();
            p.counts.ok.fetch_add(1, Ordering::SeqCst);
            status.into_response()
        }
    }
}

// ----- load generator -----------------------------------------------------------------------

struct Slot {
    ok: u64,
    errors: u64,
    rejected: u64,
    /// Latency of every answer completed in this interval (µs).
    latency: Histogram<u64>,
}

#[derive(Default)]
struct ClientCounts {
    sent: AtomicU64,
    ok: AtomicU64,
    upstream_errors: AtomicU64,
    rejected: AtomicU64,
    other_status: AtomicU64,
    hung: AtomicU64,
    dropped: AtomicU64,
}

struct Load {
    start: Instant,
    end: Instant,
    max_requests: u64,
    url: String,
    counts: ClientCounts,
    slots: Mutex<Vec<Slot>>,
    /// Rejections as the client sees them (ns).
    reject_ns: Mutex<Histogram<u64>>,
    max_latency_ns: AtomicU64,
}

async fn client_loop(load: Arc<Load>, client: reqwest::Client, offset: Duration) {
    let period = Duration::from_secs_f64(CLIENTS as f64 / OFFERED_RATE);
    let mut tick = tokio::time::interval_at((Instant::now() + offset).into(), period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if Instant::now() >= load.end {
            return;
        }
        if load.counts.sent.fetch_add(1, Ordering::SeqCst) >= load.max_requests {
            load.counts.sent.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let t0 = Instant::now();
        let result = async {
            let res = client.get(&load.url).send().await?;
            let status = res.status();
            res.bytes().await?;
            Ok::<_, reqwest::Error>(status)
        }
        .await;
        let done = Instant::now();
        let latency = done - t0;
        load.max_latency_ns
            .fetch_max(latency.as_nanos() as u64, Ordering::SeqCst);
        let c = &load.counts;
        let kind = match result {
            Ok(s) if s.is_success() => {
                c.ok.fetch_add(1, Ordering::SeqCst);
                0
            }
            Ok(StatusCode::SERVICE_UNAVAILABLE) => {
                c.rejected.fetch_add(1, Ordering::SeqCst);
                load.reject_ns
                    .lock()
                    .unwrap()
                    .saturating_record(latency.as_nanos() as u64);
                2
            }
            Ok(s) if s == 500 || s == 502 || s == 504 => {
                c.upstream_errors.fetch_add(1, Ordering::SeqCst);
                1
            }
            Ok(s) => {
                eprintln!("unexpected status {s}");
                c.other_status.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            Err(e) if e.is_timeout() => {
                eprintln!("request hung: {e}");
                c.hung.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            Err(e) => {
                eprintln!("request dropped: {e}");
                c.dropped.fetch_add(1, Ordering::SeqCst);
                continue;
            }
        };
        let idx = ((done - load.start).as_nanos() / INTERVAL.as_nanos()) as usize;
        let mut slots = load.slots.lock().unwrap();
        let last = slots.len() - 1;
        let slot = &mut slots[idx.min(last)];
        match kind {
            0 => slot.ok += 1,
            1 => slot.errors += 1,
            _ => slot.rejected += 1,
        }
        slot.latency
            .saturating_record((latency.as_micros() as u64).max(1));
    }
}

// ----- helpers ------------------------------------------------------------------------------

/// Resident set size in bytes (Linux; 4 KiB pages), or `None` elsewhere.
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn state_code(s: State) -> u8 {
    match s {
        State::Closed => 0,
        State::HalfOpen => 1,
        _ => 2,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn us(ns: u64) -> String {
    format!("{:.0} µs", ns as f64 / 1e3)
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

fn soak_seconds() -> f64 {
    std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 8.0)
        .unwrap_or(BASE_SECONDS)
}

// ----- the test -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_upstream_under_concurrent_load() {
    let scale = soak_seconds() / BASE_SECONDS;
    let total_secs: f64 = PHASES.iter().map(|p| p.2 * scale).sum();
    let max_requests = (OFFERED_RATE * total_secs).ceil() as u64;

    let breaker = Arc::new(
        CircuitBreaker::builder()
            .name("upstream")
            .failure_rate_threshold(FAILURE_RATE)
            .slow_calls(SLOW_CALL, SLOW_RATE)
            .time_window(WINDOW, BUCKETS)
            .minimum_calls(MINIMUM_CALLS)
            .open_wait(OPEN_WAIT)
            .half_open_permits(PERMITS)
            .half_open_successes(SUCCESSES)
            .build()
            .expect("valid config"),
    );
    let transitions = Arc::new(Mutex::new(Vec::<(Instant, State, State)>::with_capacity(
        100_000,
    )));
    let log = transitions.clone();
    breaker.on_event(move |e| {
        if let EventKind::Transition(t) = e.kind {
            log.lock().unwrap().push((Instant::now(), t.from, t.to));
        }
    });

    // Upstream.
    let up = Arc::new(Upstream {
        breaker: breaker.clone(),
        mode: AtomicU8::new(Mode::Healthy as u8),
        by_state: Default::default(),
        open_stragglers: AtomicU64::new(0),
        open_admitted: AtomicU64::new(0),
        half_open_non_trials: AtomicU64::new(0),
        half_open_admitted_non_trials: AtomicU64::new(0),
        trials: AtomicU64::new(0),
        trial_gens: Mutex::new(HashMap::new()),
        trials_in_flight: AtomicU32::new(0),
        trials_max_any_gen: AtomicU32::new(0),
    });
    let upstream_app = || {
        Router::new()
            .route("/work", get(upstream))
            .with_state(up.clone())
    };
    let (up_addr, mut up_server) = serve("127.0.0.1:0".parse().unwrap(), upstream_app()).await;

    // Proxy.
    let proxy_state = Arc::new(Proxy {
        breaker: breaker.clone(),
        client: reqwest::Client::builder()
            .connect_timeout(PROXY_TIMEOUT)
            .build()
            .expect("client"),
        url: format!("http://{up_addr}/work"),
        counts: ProxyCounts::default(),
        reject_ns: Mutex::new(Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap()),
    });
    let proxy_app = Router::new()
        .route("/work", get(proxy))
        .with_state(proxy_state.clone());
    let (proxy_addr, proxy_server) = serve("127.0.0.1:0".parse().unwrap(), proxy_app).await;

    // Load generator.
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(total_secs);
    let n_slots = (total_secs / INTERVAL.as_secs_f64()).ceil() as usize + 1;
    let load = Arc::new(Load {
        start,
        end,
        max_requests,
        url: format!("http://{proxy_addr}/work"),
        counts: ClientCounts::default(),
        slots: Mutex::new(
            (0..n_slots)
                .map(|_| Slot {
                    ok: 0,
                    errors: 0,
                    rejected: 0,
                    latency: Histogram::new_with_bounds(1, 60_000_000, 2).unwrap(),
                })
                .collect(),
        ),
        reject_ns: Mutex::new(Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap()),
        max_latency_ns: AtomicU64::new(0),
    });
    let client = reqwest::Client::builder()
        .timeout(CLIENT_TIMEOUT)
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .expect("client");
    let mut clients = JoinSet::new();
    for i in 0..CLIENTS {
        let offset = Duration::from_secs_f64(i as f64 / OFFERED_RATE);
        clients.spawn(client_loop(load.clone(), client.clone(), offset));
    }

    // Sampler: the most trials in flight the breaker reports (every millisecond).
    let max_breaker_in_flight = Arc::new(AtomicU32::new(0));
    let sampler = {
        let (breaker, max_in_flight) = (breaker.clone(), max_breaker_in_flight.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            while Instant::now() < end {
                tick.tick().await;
                let m = breaker.metrics();
                max_in_flight.fetch_max(m.half_open_in_flight, Ordering::SeqCst);
            }
        })
    };

    // The phases.
    let mut phases = Vec::new();
    let mut at = 0.0;
    for &(name, mode, weight) in &PHASES {
        let (begin, finish) = (at, at + weight * scale);
        at = finish;
        let prev = phases.last().map(|p: &PhaseRun| p.mode);
        if prev == Some(Mode::Refused) {
            // Recovery from refused: restart the upstream on the same port.
            up.mode.store(Mode::Healthy as u8, Ordering::SeqCst);
            let (addr, server) = serve(up_addr, upstream_app()).await;
            assert_eq!(addr, up_addr, "restarted on the same port");
            up_server = server;
        }
        if mode == Mode::Refused {
            let stopped = std::mem::replace(
                &mut up_server,
                Server {
                    shutdown: oneshot::channel().0,
                    task: tokio::spawn(async { Ok(()) }),
                },
            );
            stopped.stop().await;
        } else {
            up.mode.store(mode as u8, Ordering::SeqCst);
        }
        let onset = Instant::now();
        let state_at_onset = breaker.state();
        tokio::time::sleep_until((start + Duration::from_secs_f64(finish)).into()).await;
        phases.push(PhaseRun {
            name,
            mode,
            start: (onset - start).as_secs_f64().max(begin),
            end: finish,
            onset,
            state_at_onset,
            rss_end: rss(),
        });
    }

    // Drain: every client returns once its last request is answered.
    while let Some(r) = clients.join_next().await {
        r.expect("client task");
    }
    sampler.await.expect("sampler");
    let wall = start.elapsed();

    // ----- figures and assertions ---------------------------------------------------------
    let transitions = transitions.lock().unwrap().clone();
    let c = &load.counts;
    let sent = c.sent.load(Ordering::SeqCst);
    let (ok, errors, rejected) = (
        c.ok.load(Ordering::SeqCst),
        c.upstream_errors.load(Ordering::SeqCst),
        c.rejected.load(Ordering::SeqCst),
    );
    let (other, hung, dropped) = (
        c.other_status.load(Ordering::SeqCst),
        c.hung.load(Ordering::SeqCst),
        c.dropped.load(Ordering::SeqCst),
    );
    let pc = &proxy_state.counts;
    let m = breaker.metrics();
    let mut failures = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            failures.push(what);
        }
    };

    let mut table = String::new();
    let mut row = |what: &str, figure: String, bound: String, pass: bool| {
        let _ = writeln!(
            table,
            "| {what} | {figure} | {bound} | {} |",
            if pass { "ok" } else { "FAIL" }
        );
    };

    // Every request answered.
    let answered = ok + errors + rejected;
    let all_answered = sent == answered && other == 0 && hung == 0 && dropped == 0;
    row(
        "requests sent / answered",
        format!("{sent} / {answered} (ok {ok}, upstream error {errors}, 503 {rejected})"),
        format!("equal; none hung (client timeout {CLIENT_TIMEOUT:?}) or dropped; ≤ {max_requests} sent"),
        all_answered && sent <= max_requests,
    );
    check(
        all_answered,
        format!("sent {sent}, answered {answered}, other {other}, hung {hung}, dropped {dropped}"),
    );
    check(
        sent <= max_requests,
        format!("sent {sent} > cap {max_requests}"),
    );
    let proxy_same = pc.ok.load(Ordering::SeqCst) == ok
        && pc.upstream_errors.load(Ordering::SeqCst)
            + pc.timeouts.load(Ordering::SeqCst)
            + pc.transport_errors.load(Ordering::SeqCst)
            == errors
        && pc.rejected.load(Ordering::SeqCst) == rejected
        && m.rejected == rejected;
    row(
        "proxy answers by kind",
        format!(
            "ok {}, 500 {}, 504 timeout {}, 502 refused/transport {}, 503 {} (breaker rejected {})",
            pc.ok.load(Ordering::SeqCst),
            pc.upstream_errors.load(Ordering::SeqCst),
            pc.timeouts.load(Ordering::SeqCst),
            pc.transport_errors.load(Ordering::SeqCst),
            pc.rejected.load(Ordering::SeqCst),
            m.rejected
        ),
        "same as the client counts".into(),
        proxy_same,
    );
    check(proxy_same, "proxy and client counts differ".into());

    // Onset of each fault to OPEN; recovery to CLOSED.
    let mut fault = None;
    for p in &phases {
        let first = |to: State| {
            transitions
                .iter()
                .find(|(t, _, s)| *t >= p.onset && *s == to)
                .map(|(t, _, _)| *t - p.onset)
        };
        let opens_in_phase = transitions
            .iter()
            .filter(|(t, _, s)| {
                *t >= p.onset && *t < start + Duration::from_secs_f64(p.end) && *s == State::Open
            })
            .count();
        if p.mode.is_fault() {
            let bound = WINDOW + p.mode.detection() + TOLERANCE;
            let took = first(State::Open);
            let pass = p.state_at_onset == State::Closed && took.is_some_and(|d| d <= bound);
            row(
                &format!("{}: onset → OPEN", p.name),
                format!(
                    "{} ({opens_in_phase} openings in the phase)",
                    took.map(ms).unwrap_or("never".into())
                ),
                format!(
                    "≤ window {} + detection {} + tolerance {} = {}",
                    ms(WINDOW),
                    ms(p.mode.detection()),
                    ms(TOLERANCE),
                    ms(bound)
                ),
                pass,
            );
            check(
                pass,
                format!(
                    "{}: closed at onset: {}, opened after {took:?} (bound {bound:?})",
                    p.name, p.state_at_onset
                ),
            );
            fault = Some(p.mode);
        } else if let Some(f) = fault.take() {
            let bound = f.detection() + OPEN_WAIT + TRIAL_TIME + TOLERANCE;
            let took = if p.state_at_onset == State::Closed {
                Some(Duration::ZERO)
            } else {
                first(State::Closed)
            };
            // Openings after the breaker closed (before it, a faulty call still in flight at
            // the onset may re-open it: the bound accounts for that).
            let reopened = took.map_or(0, |d| {
                transitions
                    .iter()
                    .filter(|(t, _, s)| {
                        *t > p.onset + d
                            && *t < start + Duration::from_secs_f64(p.end)
                            && *s == State::Open
                    })
                    .count()
            });
            let pass = took.is_some_and(|d| d <= bound) && reopened == 0;
            row(
                &format!("{}: upstream healthy → CLOSED", p.name),
                format!(
                    "{} ({opens_in_phase} openings before, {reopened} after)",
                    took.map(ms).unwrap_or("never".into())
                ),
                format!(
                    "≤ faulty call {} + open wait {} + trials {} + tolerance {} = {}; stays closed",
                    ms(f.detection()),
                    ms(OPEN_WAIT),
                    ms(TRIAL_TIME),
                    ms(TOLERANCE),
                    ms(bound)
                ),
                pass,
            );
            check(
                pass,
                format!(
                    "{}: closed after {took:?} (bound {bound:?}), reopened {reopened}",
                    p.name
                ),
            );
        } else {
            let pass = opens_in_phase == 0;
            row(
                &format!("{}: stays CLOSED", p.name),
                format!("{opens_in_phase} openings"),
                "0".into(),
                pass,
            );
            check(pass, format!("{}: opened while healthy", p.name));
        }
    }

    // Rejections are fast.
    let server_p99 = proxy_state
        .reject_ns
        .lock()
        .unwrap()
        .value_at_quantile(0.99);
    let server_max = proxy_state.reject_ns.lock().unwrap().max();
    let client_hist = load.reject_ns.lock().unwrap().clone();
    let (client_p50, client_p99) = (
        client_hist.value_at_quantile(0.5),
        client_hist.value_at_quantile(0.99),
    );
    let target = REJECT_P99.as_nanos() as u64;
    row(
        "503 latency at the proxy handler (entry → response built)",
        format!("p99 {} (max {})", us(server_p99), us(server_max)),
        format!("p99 < {}", ms(REJECT_P99)),
        server_p99 < target,
    );
    check(
        server_p99 < target,
        format!("server-side rejection p99 {server_p99} ns"),
    );
    row(
        "503 latency at the client (HTTP round trip over loopback)",
        format!(
            "p50 {}, p99 {} ({} rejections)",
            us(client_p50),
            us(client_p99),
            client_hist.len()
        ),
        format!(
            "target p99 < {}: {}; asserted p99 < {} (see REJECT_P99_CLIENT)",
            ms(REJECT_P99),
            if client_p99 < target {
                "met"
            } else {
                "NOT met"
            },
            ms(REJECT_P99_CLIENT)
        ),
        client_p99 < REJECT_P99_CLIENT.as_nanos() as u64,
    );
    check(
        client_p99 < REJECT_P99_CLIENT.as_nanos() as u64,
        format!("client-side rejection p99 {client_p99} ns"),
    );

    // Upstream traffic per breaker state.
    let by = |i: usize| up.by_state[i].load(Ordering::SeqCst);
    let openings = m.times_opened;
    let stragglers = up.open_stragglers.load(Ordering::SeqCst);
    let open_admitted = up.open_admitted.load(Ordering::SeqCst);
    let pass = open_admitted == 0 && stragglers <= openings * CLIENTS as u64;
    row(
        "upstream requests arriving while OPEN",
        format!(
            "{} (admitted while open: {open_admitted}; admitted before it opened and still on their way: {stragglers}; {openings} openings)",
            by(1)
        ),
        format!("admitted while open 0; on their way ≤ {CLIENTS} clients × openings"),
        pass,
    );
    check(
        pass,
        format!("open: admitted {open_admitted}, stragglers {stragglers}, openings {openings}"),
    );
    let ho_admitted = up.half_open_admitted_non_trials.load(Ordering::SeqCst);
    let ho_others = up.half_open_non_trials.load(Ordering::SeqCst);
    row(
        "upstream requests arriving while HALF-OPEN",
        format!(
            "{} (trials {}; admitted earlier and on their way {ho_others}, of which admitted in the half-open generation but not as trials: {ho_admitted})",
            by(2),
            by(2) - ho_others
        ),
        "only trials admitted in half-open".into(),
        ho_admitted == 0,
    );
    check(
        ho_admitted == 0,
        format!("half-open non-trials: {ho_admitted}"),
    );
    row(
        "upstream requests arriving while CLOSED",
        format!("{}", by(0)),
        "—".into(),
        true,
    );

    // Trials in flight per half-open generation.
    let gens = up.trial_gens.lock().unwrap().clone();
    let worst = gens.values().map(|e| e.1).max().unwrap_or(0);
    let at_cap = gens.values().filter(|e| e.1 == PERMITS).count();
    let leaked_at_upstream: u32 = gens.values().map(|e| e.0).sum();
    let breaker_max = max_breaker_in_flight.load(Ordering::SeqCst);
    let pass = !gens.is_empty() && worst <= PERMITS && breaker_max <= PERMITS;
    row(
        "trials in flight at the upstream, per half-open period",
        format!(
            "max {worst} over {} periods ({at_cap} reached the cap; {} trials in all); any generation at once: {}; breaker-reported max {breaker_max}",
            gens.len(),
            up.trials.load(Ordering::SeqCst),
            up.trials_max_any_gen.load(Ordering::SeqCst),
        ),
        format!("≤ permit cap {PERMITS}"),
        pass,
    );
    check(
        pass,
        format!("trials in flight: per generation {worst}, breaker {breaker_max}"),
    );

    // No permit leaked; the breaker admits calls.
    let in_flight = m.half_open_in_flight;
    let admits = match breaker.try_acquire() {
        Ok(p) => {
            p.success();
            true
        }
        Err(_) => false,
    };
    let pass =
        in_flight == 0 && admits && breaker.state() == State::Closed && leaked_at_upstream == 0;
    row(
        "end: permits in flight / state / admits",
        format!("{in_flight} / {} / {admits}", breaker.state()),
        "0 / closed / true".into(),
        pass,
    );
    check(
        pass,
        format!(
            "end: in flight {in_flight}, admits {admits}, upstream trials {leaked_at_upstream}"
        ),
    );

    // Resident memory.
    if let Some(base) = phases[0].rss_end {
        let peak = phases
            .iter()
            .filter_map(|p| p.rss_end)
            .max()
            .unwrap_or(base);
        let last = phases.last().and_then(|p| p.rss_end).unwrap_or(base);
        let per_phase: Vec<String> = phases
            .iter()
            .map(|p| format!("{:.1}", p.rss_end.unwrap_or(0) as f64 / (1 << 20) as f64))
            .collect();
        let pass = peak <= base + RSS_GROWTH_BOUND;
        row(
            "resident memory at the end of each phase (MiB)",
            format!(
                "{} (after warm-up {}, peak {}, end {})",
                per_phase.join(" → "),
                mib(base),
                mib(peak),
                mib(last)
            ),
            format!("peak ≤ after warm-up + {}", mib(RSS_GROWTH_BOUND)),
            pass,
        );
        check(pass, format!("rss grew from {base} to {peak}"));
    }
    let max_latency = Duration::from_nanos(load.max_latency_ns.load(Ordering::SeqCst));
    row(
        "longest answer at the client",
        ms(max_latency),
        format!("< client timeout {CLIENT_TIMEOUT:?}"),
        max_latency < CLIENT_TIMEOUT,
    );
    row(
        "breaker counters",
        format!(
            "calls {}, failures {}, slow {}, rejected {}, late {}, ignored {}, opened {}",
            m.calls, m.failures, m.slow_calls, m.rejected, m.late, m.ignored, m.times_opened
        ),
        "—".into(),
        true,
    );
    row(
        "wall time / offered load",
        format!(
            "{:.1} s, {:.0} req/s answered",
            wall.as_secs_f64(),
            answered as f64 / wall.as_secs_f64()
        ),
        format!("{CLIENTS} clients pacing {OFFERED_RATE:.0} req/s"),
        true,
    );

    let header = "| check | figure | bound | |\n|---|---|---|---|\n";
    let report = format!("{header}{table}");
    println!("\n{report}");

    // The plot.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|p| p.join("soak"))
        .unwrap_or_else(|| PathBuf::from("target/soak"));
    std::fs::create_dir_all(&dir).expect("create the plot's directory");
    let _ = std::fs::write(dir.join("figures.md"), &report);
    let path = dir.join("timeline.svg");
    let slots = std::mem::take(&mut *load.slots.lock().unwrap());
    let used = ((wall.as_secs_f64() / INTERVAL.as_secs_f64()).ceil() as usize).min(slots.len());
    plot(
        &path,
        &slots[..used],
        &std::iter::once((0.0, 0))
            .chain(
                transitions
                    .iter()
                    .map(|(t, _, to)| ((*t - start).as_secs_f64(), state_code(*to))),
            )
            .collect::<Vec<_>>(),
        &phases,
        total_secs,
    )
    .expect("write the timeline plot");
    println!("timeline: {}", path.display());

    // Stop the servers.
    drop(client);
    proxy_server.stop().await;
    up_server.stop().await;

    assert!(
        failures.is_empty(),
        "soak checks failed:\n{}",
        failures.join("\n")
    );
}

// ----- the plot -----------------------------------------------------------------------------

fn plot(
    path: &std::path::Path,
    slots: &[Slot],
    states: &[(f64, u8)],
    phases: &[PhaseRun],
    total: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;

    let dt = INTERVAL.as_secs_f64();
    let mid = |i: usize| (i as f64 + 0.5) * dt;
    let per_sec = |n: u64| n as f64 / dt;
    let fault_color = |m: Mode| match m {
        Mode::Errors => RGBColor(255, 120, 120),
        Mode::Slow => RGBColor(255, 200, 90),
        Mode::Hang => RGBColor(200, 140, 255),
        Mode::Refused => RGBColor(130, 130, 130),
        Mode::Healthy => RGBColor(255, 255, 255),
    };
    let orange = RGBColor(230, 120, 0);
    let gray = RGBColor(110, 110, 110);

    let root = SVGBackend::new(path, (1200, 1100)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(40);
    title.draw(&Text::new(
        format!(
            "breakerbox soak: {CLIENTS} clients, open wait {} ms, time window {} s, {PERMITS} half-open permits, proxy timeout {} ms",
            OPEN_WAIT.as_millis(),
            WINDOW.as_secs(),
            PROXY_TIMEOUT.as_millis()
        ),
        (20, 12),
        ("sans-serif", 18).into_font(),
    ))?;
    let panels = body.split_evenly((4, 1));

    macro_rules! shade {
        ($chart:expr, $lo:expr, $hi:expr) => {
            $chart.draw_series(phases.iter().filter(|p| p.mode.is_fault()).map(|p| {
                Rectangle::new(
                    [(p.start, $lo), (p.end, $hi)],
                    fault_color(p.mode).mix(0.25).filled(),
                )
            }))?;
        };
    }

    // 1. Request rate.
    let peak = slots
        .iter()
        .map(|s| per_sec(s.ok + s.errors + s.rejected))
        .fold(1.0, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(&panels[0])
        .margin(8)
        .x_label_area_size(25)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..total, 0.0..peak)?;
    chart
        .configure_mesh()
        .y_desc("answers / s")
        .light_line_style(WHITE)
        .draw()?;
    shade!(chart, 0.0, peak);
    for p in phases {
        chart.draw_series(std::iter::once(Text::new(
            p.name.to_string(),
            (p.start + 0.1, peak * 0.97),
            ("sans-serif", 13).into_font(),
        )))?;
    }
    type Series = (&'static str, RGBColor, fn(&Slot) -> u64);
    let series: [Series; 4] = [
        ("all", BLACK, |s| s.ok + s.errors + s.rejected),
        ("success", GREEN, |s| s.ok),
        ("upstream error", RED, |s| s.errors),
        ("503 rejected", BLUE, |s| s.rejected),
    ];
    for (name, color, f) in series {
        chart
            .draw_series(LineSeries::new(
                slots
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (mid(i), per_sec(f(s)))),
                color.stroke_width(if name == "all" { 2 } else { 1 }),
            ))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;

    // 2. Failure rate.
    let mut chart = ChartBuilder::on(&panels[1])
        .margin(8)
        .x_label_area_size(25)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..total, 0.0..1.05)?;
    chart
        .configure_mesh()
        .y_desc("share of answers")
        .light_line_style(WHITE)
        .draw()?;
    shade!(chart, 0.0, 1.05);
    let ratio = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    // Only intervals with admitted calls (none while open): one line per run of them.
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (i, s) in slots.iter().enumerate() {
        if s.ok + s.errors == 0 {
            if runs.last().is_some_and(|r| !r.is_empty()) {
                runs.push(Vec::new());
            }
            continue;
        }
        if let Some(run) = runs.last_mut() {
            run.push((mid(i), ratio(s.errors, s.ok + s.errors)));
        }
    }
    for (k, run) in runs.into_iter().enumerate() {
        let series = chart.draw_series(LineSeries::new(run, RED.stroke_width(2)))?;
        if k == 0 {
            series
                .label("failure rate of admitted calls (intervals with any)")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED));
        }
    }
    chart
        .draw_series(LineSeries::new(
            slots
                .iter()
                .enumerate()
                .map(|(i, s)| (mid(i), ratio(s.rejected, s.ok + s.errors + s.rejected))),
            BLUE,
        ))?
        .label("rejected share")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;

    // 3. Breaker state.
    let mut chart = ChartBuilder::on(&panels[2])
        .margin(8)
        .x_label_area_size(25)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..total, -0.2..2.3)?;
    chart
        .configure_mesh()
        .y_desc("breaker state")
        .y_labels(3)
        .y_label_formatter(&|v: &f64| match v.round() as i64 {
            0 => "closed".into(),
            1 => "half-open".into(),
            2 => "open".into(),
            _ => String::new(),
        })
        .light_line_style(WHITE)
        .draw()?;
    shade!(chart, -0.2, 2.3);
    let mut steps = Vec::with_capacity(states.len() * 2 + 1);
    let mut prev = None;
    for &(t, s) in states {
        if let Some(p) = prev {
            steps.push((t, p as f64));
        }
        steps.push((t, s as f64));
        prev = Some(s);
    }
    if let Some(p) = prev {
        steps.push((total, p as f64));
    }
    chart
        .draw_series(LineSeries::new(steps, orange.stroke_width(1)))?
        .label("state (every transition)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], orange));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;

    // 4. Latency percentiles.
    let mut chart = ChartBuilder::on(&panels[3])
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..total, (0.01f64..5_000.0).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("latency (ms)")
        .light_line_style(WHITE)
        .draw()?;
    shade!(chart, 0.01, 5_000.0);
    for (name, q, color) in [("p50", 0.5, gray), ("p99", 0.99, BLACK)] {
        chart
            .draw_series(LineSeries::new(
                slots
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| !s.latency.is_empty())
                    .map(|(i, s)| (mid(i), s.latency.value_at_quantile(q) as f64 / 1e3)),
                color,
            ))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;

    root.present()?;
    Ok(())
}
