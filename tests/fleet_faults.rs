//! Fleet mode under faults injected into a real Redis (started here on 127.0.0.1, stopped by
//! PID): a crash with and without persistence, `FLUSHALL`, garbage in every key, a slow server
//! (`DEBUG SLEEP`), `CLIENT PAUSE`, and a frozen process (SIGSTOP, then SIGCONT). Every fault
//! ends within about a second.
//!
//! Each test runs three instances `a`, `b`, `c`, each with two breakers: `x`, opened by `a`
//! before the fault (so its record must survive or be published again), and `y`, which every
//! instance's callers use during the fault and which `a` trips during it (so its publication
//! must not be lost). The checker, once the fault has ended:
//!
//! - every instance agrees (`x` and `y` OPEN everywhere, and an instance started after the
//!   fault learns both) within [`AGREE`]: the longest reconnect backoff plus 25 sync intervals;
//! - no instance trips on the fleet window (only successes and `a`'s one failure are recorded,
//!   so any fleet trip would be on counts no instance recorded);
//! - no call waited on Redis: the slowest `try_acquire` + report during the fault took less
//!   than [`CALL_BOUND`] (generous: a call takes microseconds; the bound only has to absorb
//!   the scheduler of a loaded machine, while any Redis round trip would take the timeout).
//!
//! Without a `redis-server` binary the tests say so and pass, unless
//! `BREAKERBOX_REQUIRE_REDIS` is set (CI sets it).
#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;

use breakerbox::fleet::{FleetConfig, FleetEvent, FleetSync};
use breakerbox::{CircuitBreaker, ManualClock, State};
use redis_server::RedisServer;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Breaker = Arc<CircuitBreaker<ManualClock>>;

const INTERVAL: Duration = Duration::from_millis(20);
/// Each Redis round trip's timeout: every fault below outlasts it.
const TIMEOUT: Duration = Duration::from_millis(100);
/// The open wait (on manual clocks that never move here: OPEN stays OPEN).
const WAIT: Duration = Duration::from_secs(60);
/// How long after a fault ends every instance must agree: the longest reconnect backoff (5 s)
/// plus 25 sync intervals.
const AGREE: Duration = Duration::from_millis(5000 + 25 * 20);
/// The slowest a call (`try_acquire` + report) may take during a fault.
const CALL_BOUND: Duration = Duration::from_millis(50);
/// How long each fault lasts (where the test decides).
const FAULT: Duration = Duration::from_millis(1000);

fn redis_available() -> bool {
    redis_server::usable()
}

/// One service instance: its breakers `x` and `y`, and every fleet event of both.
struct Node {
    x: Breaker,
    y: Breaker,
    events: Arc<Mutex<Vec<(&'static str, FleetEvent)>>>,
    _syncs: Vec<FleetSync>,
}

impl Node {
    fn start(server: &RedisServer, clock: &ManualClock, id: &'static str) -> Node {
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut syncs = Vec::new();
        let mut breaker = |name: &'static str| {
            let b = CircuitBreaker::builder()
                .name(name)
                .open_wait(WAIT)
                .clock(clock.clone())
                .consecutive_failures(1)
                .failure_rate_threshold(0.5)
                .count_window(20)
                .minimum_calls(10)
                .build_shared()
                .unwrap();
            let sink = events.clone();
            let sync = FleetConfig::new(server.url())
                .prefix("f")
                .instance(id)
                .sync_interval(INTERVAL)
                .timeout(TIMEOUT)
                .fleet_trials(None)
                .aggregate(true)
                .on_event(move |e| {
                    if std::env::var_os("FLEET_DEBUG").is_some() {
                        eprintln!("{id}/{name}: {e:?}");
                    }
                    sink.lock().unwrap().push((name, e.clone()))
                })
                .attach(&b)
                .unwrap();
            syncs.push(sync);
            b
        };
        let (x, y) = (breaker("x"), breaker("y"));
        Node {
            x,
            y,
            events,
            _syncs: syncs,
        }
    }

    fn count(&self, pred: impl Fn(&FleetEvent) -> bool) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| pred(e))
            .count()
    }
}

/// Waits (at most `bound`) until `cond` holds; returns how long it took.
async fn until(what: &str, bound: Duration, cond: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < bound, "not within {bound:?}: {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    start.elapsed()
}

fn trip(b: &Breaker) {
    let _ = b.call(|| Err::<(), _>("down"));
    assert_eq!(b.state(), State::Open);
}

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(server.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// A fault: what happens to the server between the start and the end of the fault window.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// SIGKILL, down for `FAULT`, restarted (empty, or with its data if persistent).
    Crash,
    /// `FLUSHALL`.
    Flush,
    /// Garbage strings and keys of the wrong type under every key of both breakers.
    Garbage,
    /// `DEBUG SLEEP` for `FAULT`: the server answers nothing meanwhile.
    Slow,
    /// `CLIENT PAUSE` for `FAULT`.
    Pause,
    /// SIGSTOP, then SIGCONT after `FAULT`.
    Freeze,
}

async fn scenario(mut server: RedisServer, fault: Fault) {
    let clock = ManualClock::new();
    let nodes: Vec<Node> = ["a", "b", "c"]
        .into_iter()
        .map(|id| Node::start(&server, &clock, id))
        .collect();
    until("every sync connected", Duration::from_secs(10), || {
        nodes
            .iter()
            .all(|n| n.count(|e| matches!(e, FleetEvent::Connected)) >= 2)
    })
    .await;
    // x: a's opening, agreed before the fault.
    trip(&nodes[0].x);
    until("b and c follow a on x", Duration::from_secs(10), || {
        nodes[1..].iter().all(|n| n.x.state() == State::Open)
    })
    .await;

    // Callers on every instance, timed, for the whole fault.
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = nodes
        .iter()
        .map(|n| {
            let (x, y, stop) = (n.x.clone(), n.y.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut slowest, mut calls) = (Duration::ZERO, 0u32);
                while !stop.load(Ordering::SeqCst) {
                    for b in [&x, &y] {
                        let t = Instant::now();
                        if let Ok(p) = b.try_acquire() {
                            p.success();
                        }
                        slowest = slowest.max(t.elapsed());
                        calls += 1;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                (slowest, calls)
            })
        })
        .collect();

    let mut c = raw(&server).await;
    match fault {
        Fault::Crash => {
            server.kill();
            trip(&nodes[0].y);
            tokio::time::sleep(FAULT).await;
            server.restart();
        }
        Fault::Flush => {
            let _: () = redis::cmd("FLUSHALL").query_async(&mut c).await.unwrap();
            trip(&nodes[0].y);
            tokio::time::sleep(FAULT).await;
        }
        Fault::Garbage => {
            let mut p = redis::pipe();
            for name in ["x", "y"] {
                p.cmd("SET").arg(format!("f:{{{name}}}:seq")).arg("1e300");
                p.cmd("SET")
                    .arg(format!("f:{{{name}}}:trials"))
                    .arg("garbage");
                p.cmd("HSET")
                    .arg(format!("f:{{{name}}}:counts"))
                    .arg("evil")
                    .arg("10|1000|0|99999999999999");
            }
            p.cmd("SET")
                .arg("f:{x}:state")
                .arg("open|18446744073709551615|evil");
            p.cmd("DEL").arg("f:{y}:state");
            p.cmd("RPUSH").arg("f:{y}:state").arg("a list");
            let _: () = p.query_async(&mut c).await.unwrap();
            trip(&nodes[0].y);
            tokio::time::sleep(FAULT).await;
        }
        Fault::Slow => {
            let url = server.url();
            let sleeper = tokio::spawn(async move {
                let client = redis::Client::open(url).unwrap();
                let mut c = client.get_multiplexed_async_connection().await.unwrap();
                let _: redis::RedisResult<()> = redis::cmd("DEBUG")
                    .arg("SLEEP")
                    .arg(FAULT.as_secs_f64())
                    .query_async(&mut c)
                    .await;
            });
            tokio::time::sleep(FAULT / 10).await;
            trip(&nodes[0].y);
            let _ = sleeper.await;
        }
        Fault::Pause => {
            let _: () = redis::cmd("CLIENT")
                .arg("PAUSE")
                .arg(FAULT.as_millis() as u64)
                .arg("ALL")
                .query_async(&mut c)
                .await
                .unwrap();
            trip(&nodes[0].y);
            tokio::time::sleep(FAULT).await;
        }
        Fault::Freeze => {
            server.signal("STOP");
            trip(&nodes[0].y);
            tokio::time::sleep(FAULT).await;
            server.signal("CONT");
        }
    }

    // Every instance agrees: x and y OPEN everywhere ...
    let took = until("every instance agrees", AGREE, || {
        nodes
            .iter()
            .all(|n| n.x.state() == State::Open && n.y.state() == State::Open)
    })
    .await;
    // ... and an instance started now learns both from Redis.
    let d = Node::start(&server, &clock, "d");
    let took_d = until("d learns x and y", AGREE, || {
        d.x.state() == State::Open && d.y.state() == State::Open
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let mut slowest = Duration::ZERO;
    let mut calls = 0;
    for h in callers {
        let (s, n) = h.join().unwrap();
        slowest = slowest.max(s);
        calls += n;
    }
    eprintln!(
        "{fault:?}: agreed {took:?} after the fault ended, a new instance {took_d:?} after it \
         started; slowest of {calls} calls {slowest:?}"
    );
    assert!(
        slowest < CALL_BOUND,
        "{fault:?}: a call took {slowest:?} (of {calls})"
    );
    for n in nodes.iter().chain([&d]) {
        assert_eq!(
            n.count(|e| matches!(e, FleetEvent::FleetTrip { .. })),
            0,
            "{fault:?}: a fleet trip on counts no instance recorded"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_without_persistence() {
    if redis_available() {
        scenario(RedisServer::start(), Fault::Crash).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_with_persistence() {
    if redis_available() {
        scenario(RedisServer::start_persistent(), Fault::Crash).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushall() {
    if redis_available() {
        scenario(RedisServer::start(), Fault::Flush).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_every_key() {
    if redis_available() {
        scenario(RedisServer::start(), Fault::Garbage).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_server() {
    if redis_available() {
        // `DEBUG` is off by default from Redis 7 on (and the setting unknown before it).
        let server = if redis_server::version().is_some_and(|v| v >= (7, 0)) {
            RedisServer::start_with(&["--enable-debug-command", "yes"])
        } else {
            RedisServer::start()
        };
        scenario(server, Fault::Slow).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_pause() {
    if redis_available() {
        scenario(RedisServer::start(), Fault::Pause).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstop_then_sigcont() {
    if redis_available() {
        scenario(RedisServer::start(), Fault::Freeze).await;
    }
}
