//! Fleet mode: three instances of a service, each with its own `payments` breaker, agree
//! through Redis.
//!
//! ```sh
//! cargo run --release --example fleet --features redis
//! ```
//!
//! Starts its own `redis-server` on 127.0.0.1 (a free port, persistence off; stopped by PID at
//! the end), or uses `REDIS_URL` if set. Then, with a sync interval of 50 ms:
//! 1. instance `a` trips; the time until `b` and `c` are OPEN is measured;
//! 2. the open wait ends while every instance's workers keep calling: the fleet sends at most
//!    one trial call at a time (`fleet_trials = 1`), and its success closes all three;
//! 3. Redis is killed: each instance reports it and keeps working alone (`b` trips, `a` and
//!    `c` keep serving); Redis restarts, they reconnect, and a trip on `c` reaches the others
//!    again.
//!
//! Finally the per-call cost of a closed breaker with and without its fleet sync, measured in
//! this run (the sync never touches the call path).

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

use breakerbox::fleet::{FleetConfig, FleetEvent, FleetSync};
use breakerbox::{CircuitBreaker, State};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const INTERVAL: Duration = Duration::from_millis(50);
const OPEN_WAIT: Duration = Duration::from_millis(500);

struct Instance {
    id: &'static str,
    breaker: Arc<CircuitBreaker>,
    _sync: FleetSync,
}

fn instance(id: &'static str, url: &str, t0: Instant) -> Instance {
    let breaker = CircuitBreaker::builder()
        .name("payments")
        .consecutive_failures(3)
        .open_wait(OPEN_WAIT)
        .build_shared()
        .expect("valid config");
    let sync = FleetConfig::new(url)
        .prefix("fleet-demo")
        .instance(id)
        .sync_interval(INTERVAL)
        .fleet_trials(Some(1))
        .on_event(move |e| match e {
            FleetEvent::Unavailable { error, retry_in } => println!(
                "[{:>5} ms] {id}: redis unavailable ({error}); local only, retry in {retry_in:?}",
                t0.elapsed().as_millis()
            ),
            FleetEvent::Connected => {
                println!("[{:>5} ms] {id}: connected", t0.elapsed().as_millis())
            }
            FleetEvent::Applied { state, from, .. } => println!(
                "[{:>5} ms] {id}: {state} (from {from})",
                t0.elapsed().as_millis()
            ),
            _ => {}
        })
        .attach(&breaker)
        .expect("valid fleet config");
    Instance {
        id,
        breaker,
        _sync: sync,
    }
}

fn trip(b: &CircuitBreaker) {
    while b.state() == State::Closed {
        let _ = b.call(|| Err::<(), _>("payment provider down"));
    }
}

async fn wait_until(cond: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no convergence in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    start.elapsed()
}

/// A closed call through `b`, in ns (median of 5 runs of 2,000,000 calls).
fn closed_call_ns(b: &CircuitBreaker) -> f64 {
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let n = 2_000_000;
            let start = Instant::now();
            for i in 0..n {
                let _ = std::hint::black_box(b.call(|| Ok::<_, ()>(std::hint::black_box(i))));
            }
            start.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let t0 = Instant::now();
    let mut own = None;
    let url = match std::env::var("REDIS_URL") {
        Ok(url) => url,
        Err(_) => {
            if !redis_server::available() {
                eprintln!(
                    "needs redis-server on the PATH (apt-get install redis-server) or REDIS_URL"
                );
                std::process::exit(2);
            }
            let server = redis_server::RedisServer::start();
            let url = server.url();
            own = Some(server);
            url
        }
    };
    println!("redis at {url}; sync interval {INTERVAL:?}, open wait {OPEN_WAIT:?}, fleet_trials 1");
    let fleet: Vec<Instance> = ["a", "b", "c"]
        .into_iter()
        .map(|id| instance(id, &url, t0))
        .collect();
    tokio::time::sleep(INTERVAL * 3).await;

    // 1. A trip on one instance reaches the others.
    trip(&fleet[0].breaker);
    println!("[{:>5} ms] a: tripped", t0.elapsed().as_millis());
    let took = wait_until(|| fleet.iter().all(|i| i.breaker.state() == State::Open)).await;
    println!("==> b and c OPEN {took:?} after a tripped (sync interval {INTERVAL:?})");

    // 2. Half-open across the fleet: workers on every instance keep calling; a trial call
    //    takes 100 ms and succeeds.
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = fleet
        .iter()
        .flat_map(|i| (0..4).map(move |_| i))
        .map(|i| {
            let (b, in_flight, max) = (i.breaker.clone(), in_flight.clone(), max.clone());
            let id = i.id;
            tokio::spawn(async move {
                let stop = Instant::now() + Duration::from_secs(3);
                while Instant::now() < stop {
                    match b.try_acquire_owned() {
                        Ok(p) if p.is_trial() => {
                            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                            max.fetch_max(now, Ordering::SeqCst);
                            println!("[{:>5} ms] {id}: trial call", t0.elapsed().as_millis());
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            in_flight.fetch_sub(1, Ordering::SeqCst);
                            p.success();
                        }
                        Ok(p) => {
                            p.success();
                            // A worker that never awaits would starve the runtime (and with it
                            // the fleet's sync tasks).
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
            })
        })
        .collect();
    wait_until(|| fleet.iter().any(|i| i.breaker.state() == State::Closed)).await;
    let took = wait_until(|| fleet.iter().all(|i| i.breaker.state() == State::Closed)).await;
    println!(
        "==> all CLOSED {took:?} after the first instance closed; trial calls in flight across the fleet: at most {}",
        max.load(Ordering::SeqCst)
    );
    for w in workers {
        let _ = w.await;
    }

    // 3. Redis dies and comes back.
    if let Some(server) = own.as_mut() {
        server.kill();
        println!("[{:>5} ms] redis killed", t0.elapsed().as_millis());
        tokio::time::sleep(INTERVAL * 4).await;
        trip(&fleet[1].breaker);
        println!(
            "[{:>5} ms] b tripped alone: a {}, b {}, c {} (each works locally)",
            t0.elapsed().as_millis(),
            fleet[0].breaker.state(),
            fleet[1].breaker.state(),
            fleet[2].breaker.state()
        );
        assert!(fleet[0].breaker.call(|| Ok::<_, ()>(())).is_ok());
        let restarted = Instant::now();
        server.restart();
        println!("[{:>5} ms] redis restarted", t0.elapsed().as_millis());
        fleet[1].breaker.reset();
        // Reconnection backs off exponentially (at most 5 s); wait for a trip to propagate.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let converged = loop {
            trip(&fleet[2].breaker);
            if wait_until_or(Duration::from_millis(500), || {
                fleet.iter().all(|i| i.breaker.state() != State::Closed)
            })
            .await
            {
                break restarted.elapsed();
            }
            fleet[2].breaker.reset();
        };
        println!(
            "==> converged again {converged:?} after the restart (a trip on c reached a and b)"
        );
    }

    // The call path does not know the fleet exists.
    let plain = CircuitBreaker::builder().build().unwrap();
    let with_fleet = &fleet[0].breaker;
    with_fleet.reset();
    let (off, on) = (closed_call_ns(&plain), closed_call_ns(with_fleet));
    println!(
        "==> closed call: {off:.2} ns without fleet sync, {on:.2} ns with it ({:.2}x)",
        on / off
    );
}

async fn wait_until_or(limit: Duration, cond: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    true
}
