//! Fleet mode against a real Redis (started here on 127.0.0.1, stopped by PID): three breaker
//! instances, each with its own sync task, sharing one Redis. Without a `redis-server` binary
//! the Redis tests say so and pass, unless `BREAKERBOX_REQUIRE_REDIS` is set (CI sets it).
//!
//! The breakers run on manual clocks (their open waits move only when told); the sync tasks run
//! on real time, so the tests wait for convergence with a generous bound and report, but never
//! assert, how fast it was.
#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/trial_cap.rs"]
mod trial_cap;

use breakerbox::fleet::{FleetConfig, FleetError, FleetEvent, FleetSync, RegistrySync};
use breakerbox::{CircuitBreaker, Config, ManualClock, OpenWait, Registry, State};
use redis_server::RedisServer;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Breaker = Arc<CircuitBreaker<ManualClock>>;

const INTERVAL: Duration = Duration::from_millis(20);
const WAIT: Duration = Duration::from_secs(10);

fn redis() -> Option<RedisServer> {
    redis_server::usable().then(RedisServer::start)
}

struct Instance {
    breaker: Breaker,
    events: Arc<Mutex<Vec<FleetEvent>>>,
    _sync: FleetSync,
}

impl Instance {
    fn saw(&self, pred: impl Fn(&FleetEvent) -> bool) -> bool {
        self.events.lock().unwrap().iter().any(pred)
    }
}

/// Three instances of the breaker `upstream` under `prefix`: opens on one failure, waits
/// `WAIT` (manual clock), one trial permit each.
fn fleet(
    server: &RedisServer,
    prefix: &str,
    clock: &ManualClock,
    trials: Option<u32>,
) -> Vec<Instance> {
    fleet_of(
        server,
        clock,
        |b| b.consecutive_failures(1),
        |f| f.prefix(prefix).fleet_trials(trials),
    )
}

/// Three instances `a`, `b`, `c` of the breaker `upstream` (open wait `WAIT` on `clock`, then
/// `breaker`'s settings), each synced through `server` with `sync`'s settings.
fn fleet_of(
    server: &RedisServer,
    clock: &ManualClock,
    breaker: impl Fn(breakerbox::Builder<ManualClock>) -> breakerbox::Builder<ManualClock>,
    sync: impl Fn(FleetConfig) -> FleetConfig,
) -> Vec<Instance> {
    ["a", "b", "c"]
        .into_iter()
        .map(|id| instance(server, clock, id, &breaker, &sync))
        .collect()
}

/// One instance `id` of the breaker `upstream` (see [`fleet_of`]).
fn instance(
    server: &RedisServer,
    clock: &ManualClock,
    id: &'static str,
    breaker: impl Fn(breakerbox::Builder<ManualClock>) -> breakerbox::Builder<ManualClock>,
    sync: impl Fn(FleetConfig) -> FleetConfig,
) -> Instance {
    let b = CircuitBreaker::builder()
        .name("upstream")
        .open_wait(WAIT)
        .clock(clock.clone());
    let breaker = breaker(b).build_shared().unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let config = FleetConfig::new(server.url())
        .instance(id)
        .sync_interval(INTERVAL)
        .lease_ttl(Duration::from_secs(2))
        .on_event(move |e| {
            if std::env::var_os("FLEET_DEBUG").is_some() {
                eprintln!("{id}: {e:?}");
            }
            sink.lock().unwrap().push(e.clone())
        });
    let sync = sync(config).attach(&breaker).unwrap();
    Instance {
        breaker,
        events,
        _sync: sync,
    }
}

/// Waits (at most 10 s) until `cond` holds; returns how long it took.
async fn until(what: &str, cond: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not within 10 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    start.elapsed()
}

async fn connected(fleet: &[Instance]) {
    until("every instance connected", || {
        fleet
            .iter()
            .all(|i| i.saw(|e| matches!(e, FleetEvent::Connected)))
    })
    .await;
}

fn trip(b: &Breaker) {
    let _ = b.call(|| Err::<(), _>("down"));
    assert_eq!(b.state(), State::Open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trip_on_one_instance_opens_the_others() {
    let Some(server) = redis() else { return };
    let clock = ManualClock::new();
    let fleet = fleet(&server, "trip", &clock, Some(1));
    connected(&fleet).await;
    trip(&fleet[0].breaker);
    let took = until("b and c open", || {
        fleet[1..].iter().all(|i| i.breaker.state() == State::Open)
    })
    .await;
    eprintln!("trip on a -> OPEN on b and c in {took:?} (sync interval {INTERVAL:?})");
    for i in &fleet[1..] {
        // The event follows the transition it reports (the state is visible first).
        until("the applied event", || {
            i.saw(|e| matches!(
                e,
                FleetEvent::Applied { state: State::Open, from, wait: Some(w) } if from == "a" && *w <= WAIT
            ))
        })
        .await;
        // They wait what the fleet record had left, in their own clock.
        let left = i.breaker.try_acquire().unwrap_err().retry_after().unwrap();
        assert!(
            left <= WAIT && left > WAIT - Duration::from_secs(5),
            "{left:?}"
        );
    }
    until("a's published event", || {
        fleet[0].saw(|e| {
            matches!(
                e,
                FleetEvent::Published {
                    state: State::Open,
                    ..
                }
            )
        })
    })
    .await;
    // Applied transitions are not published back: a is the only publisher.
    for i in &fleet[1..] {
        assert!(!i.saw(|e| matches!(e, FleetEvent::Published { .. })));
    }

    // a's trial closes it: the close reaches b and c.
    // (a's callers asking is what makes a's task take the trial lease.)
    clock.advance(WAIT);
    let mut closed = false;
    let start = Instant::now();
    while !closed {
        assert!(start.elapsed() < Duration::from_secs(10), "no trial for a");
        if let Ok(p) = fleet[0].breaker.try_acquire() {
            p.success();
            closed = true;
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    assert_eq!(fleet[0].breaker.state(), State::Closed);
    until("b and c closed", || {
        fleet[1..]
            .iter()
            .all(|i| i.breaker.state() == State::Closed)
    })
    .await;
}

/// Every instance's callers hammer their breaker while the fleet is OPEN past its wait; a
/// trial call holds its permit for a while and then fails (re-opening that instance). Over
/// several rounds, the trial calls in flight across the fleet never exceed `p`.
async fn fleet_trials_cap(p: u32) {
    let Some(server) = redis() else { return };
    let clock = ManualClock::new();
    let fleet = fleet(&server, &format!("cap{p}"), &clock, Some(p));
    connected(&fleet).await;
    let breakers: Vec<_> = fleet.iter().map(|i| i.breaker.clone()).collect();
    let (trials, max) = trial_cap::hammer_half_open(&breakers, &clock, WAIT).await;
    eprintln!("fleet_trials = {p}: {trials} trial calls, at most {max} in flight at once");
    assert!(trials >= 1, "no instance ever got a trial");
    assert!(
        max <= p as usize,
        "{max} trial calls in flight with a fleet cap of {p}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_wide_trials_never_exceed_one() {
    fleet_trials_cap(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_wide_trials_never_exceed_two() {
    fleet_trials_cap(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_redis_leaves_every_instance_local_and_they_converge_after_restart() {
    let Some(mut server) = redis() else { return };
    let clock = ManualClock::new();
    let fleet = fleet(&server, "kill", &clock, Some(1));
    connected(&fleet).await;
    server.kill();
    until("every instance noticed", || {
        fleet
            .iter()
            .all(|i| i.saw(|e| matches!(e, FleetEvent::Unavailable { .. })))
    })
    .await;
    for i in &fleet {
        i.events.lock().unwrap().clear();
    }
    // Locally, everything works: a trips alone, the others keep admitting.
    trip(&fleet[0].breaker);
    tokio::time::sleep(INTERVAL * 5).await;
    for i in &fleet[1..] {
        assert_eq!(i.breaker.state(), State::Closed);
        assert!(i.breaker.call(|| Ok::<_, ()>(())).is_ok());
    }
    // ... and a's own half-open works without a lease (the gate is open while Redis is down).
    clock.advance(WAIT);
    let trial = fleet[0].breaker.try_acquire().expect("a local trial");
    assert!(trial.is_trial());
    trial.success();
    assert_eq!(fleet[0].breaker.state(), State::Closed);

    server.restart();
    let took = until("every instance reconnected", || {
        fleet
            .iter()
            .all(|i| i.saw(|e| matches!(e, FleetEvent::Connected)))
    })
    .await;
    eprintln!("reconnected {took:?} after the restart (backoff at most 5 s)");
    trip(&fleet[2].breaker);
    until("a and b follow c", || {
        fleet[..2].iter().all(|i| i.breaker.state() == State::Open)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_values_give_events_not_panics() {
    let Some(server) = redis() else { return };
    let clock = ManualClock::new();
    let fleet = fleet(&server, "bad", &clock, Some(1));
    connected(&fleet).await;
    let client = redis::Client::open(server.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    for (key, value) in [
        ("bad:{upstream}:state", "garbage"),
        ("bad:{upstream}:state", "open|notanumber|x"),
        ("bad:{upstream}:state", "open|12|"),
        ("bad:{upstream}:trials", "not a sorted set"),
        ("bad:{upstream}:seq", "NaN?"),
    ] {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .query_async(&mut c)
            .await
            .unwrap();
        if key.ends_with(":state") {
            until("a malformed event for the value", || {
                fleet.iter().all(|i| {
                    i.saw(|e| matches!(e, FleetEvent::Malformed { value: v, .. } if v == value))
                })
            })
            .await;
        }
    }
    // The breakers work on: a trips (its publish overwrites the garbage state), the others
    // follow; with the lease key unusable, a's half-open falls back to local.
    trip(&fleet[0].breaker);
    until("b and c follow a", || {
        fleet[1..].iter().all(|i| i.breaker.state() == State::Open)
    })
    .await;
    clock.advance(WAIT);
    until("a admits a trial", || {
        fleet[0].breaker.try_acquire().is_ok()
    })
    .await;
    assert!(fleet[0]
        .saw(|e| matches!(e, FleetEvent::Malformed { key, .. } if key == "bad:{upstream}:trials")));
}

#[test]
fn bad_settings_are_typed_errors() {
    let b = CircuitBreaker::builder().build_shared().unwrap();
    let cases: Vec<(FleetConfig, &str)> = vec![
        (FleetConfig::new("redis://127.0.0.1:1").prefix(""), "prefix"),
        (
            FleetConfig::new("redis://127.0.0.1:1").instance("a|b"),
            "instance",
        ),
        (
            FleetConfig::new("redis://127.0.0.1:1").sync_interval(Duration::ZERO),
            "sync_interval",
        ),
        (
            FleetConfig::new("redis://127.0.0.1:1").fleet_trials(Some(0)),
            "fleet_trials",
        ),
        (
            FleetConfig::new("redis://127.0.0.1:1").lease_ttl(Duration::from_millis(50)),
            "lease_ttl",
        ),
        (
            FleetConfig::new("redis://127.0.0.1:1").timeout(Duration::ZERO),
            "timeout",
        ),
        (FleetConfig::new("not a url"), "url"),
        (
            FleetConfig::new("redis://127.0.0.1:1").prefix("a{b"),
            "prefix",
        ),
        (
            FleetConfig::new("redis://127.0.0.1:1").prefix("}"),
            "prefix",
        ),
        (FleetConfig::cluster(Vec::<String>::new()), "nodes"),
        (
            FleetConfig::cluster(["redis://127.0.0.1:1", "not a url"]),
            "nodes",
        ),
    ];
    for (config, field) in cases {
        match config.attach(&b) {
            Err(FleetError::Invalid { field: f, reason }) => {
                assert_eq!(f, field, "{reason}");
            }
            other => panic!("{field}: expected Invalid, got {other:?}"),
        }
    }
    assert_eq!(
        FleetConfig::new("redis://127.0.0.1:1")
            .attach(&b)
            .unwrap_err(),
        FleetError::NoRuntime
    );
}

#[tokio::test]
async fn a_second_capped_sync_on_one_breaker_is_refused() {
    let b = CircuitBreaker::builder().build_shared().unwrap();
    let _first = FleetConfig::new("redis://127.0.0.1:1").attach(&b).unwrap();
    assert_eq!(
        FleetConfig::new("redis://127.0.0.1:1")
            .attach(&b)
            .unwrap_err(),
        FleetError::AlreadyAttached
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_window_trips_when_no_instance_has_enough_calls_alone() {
    let Some(server) = redis() else { return };
    let clock = ManualClock::new();
    // Each instance: failure rate 50 % once its window holds 10 calls. Four failures on each
    // of three instances: 12 failed calls in the fleet, never 10 on one instance.
    let fleet = fleet_of(
        &server,
        &clock,
        |b| {
            b.failure_rate_threshold(0.5)
                .count_window(20)
                .minimum_calls(10)
        },
        |f| f.prefix("agg").aggregate(true),
    );
    connected(&fleet).await;
    for i in &fleet {
        for _ in 0..4 {
            let _ = i.breaker.call(|| Err::<(), _>("down"));
        }
        assert_eq!(
            i.breaker.state(),
            State::Closed,
            "4 calls: below the local minimum"
        );
    }
    let took = until("the fleet opens", || {
        fleet.iter().all(|i| i.breaker.state() == State::Open)
    })
    .await;
    eprintln!("fleet window: all OPEN {took:?} after the 12th failure");
    let tripper = fleet
        .iter()
        .find(|i| i.saw(|e| matches!(e, FleetEvent::FleetTrip { .. })))
        .expect("one instance tripped on the fleet window");
    // (A round may run while the last failures are being recorded: at least the minimum, all
    // failed, from all three instances, since two alone hold only 8.)
    assert!(tripper.saw(|e| matches!(
        e,
        FleetEvent::FleetTrip { calls, failures, instances: 3, .. } if *calls >= 10 && failures == calls
    )));
}

#[test]
fn aggregation_needs_a_rate_rule() {
    let b = CircuitBreaker::builder()
        .no_failure_rate()
        .consecutive_failures(3)
        .build_shared()
        .unwrap();
    match FleetConfig::new("redis://127.0.0.1:1")
        .aggregate(true)
        .attach(&b)
    {
        Err(FleetError::Invalid { field, .. }) => assert_eq!(field, "aggregate"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// A plain connection for a test to write to the server behind the fleet's back.
async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(server.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

async fn set(c: &mut redis::aio::MultiplexedConnection, key: &str, value: &str) {
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .query_async(c)
        .await
        .unwrap();
}

/// How many `Malformed` events `i` gave for exactly `value`.
fn malformed_count(i: &Instance, value: &str) -> usize {
    i.events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, FleetEvent::Malformed { value: v, .. } if v == value))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trip_while_redis_crashes_is_published_after_the_restart() {
    let Some(mut server) = redis() else { return };
    let clock = ManualClock::new();
    let fleet = fleet(&server, "crash", &clock, None);
    connected(&fleet).await;
    // a trips the moment Redis dies: its task, woken by the trip, tries to publish on a
    // connection that is gone.
    server.kill();
    trip(&fleet[0].breaker);
    until("every instance noticed", || {
        fleet
            .iter()
            .all(|i| i.saw(|e| matches!(e, FleetEvent::Unavailable { .. })))
    })
    .await;
    // Back empty (no persistence): a's opening, still current, reaches the others.
    server.restart();
    until("b and c learn a's opening", || {
        fleet[1..].iter().all(|i| i.breaker.state() == State::Open)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opening_redis_lost_is_published_again() {
    let Some(mut server) = redis() else { return };
    let clock = ManualClock::new();
    let mut fleet = fleet(&server, "lost", &clock, None);
    connected(&fleet).await;
    trip(&fleet[0].breaker);
    until("b and c follow a", || {
        fleet[1..].iter().all(|i| i.breaker.state() == State::Open)
    })
    .await;
    // Redis restarts empty: the record is gone. An instance that starts now learns of a's
    // opening (still current) from a's task, which publishes it again after reconnecting.
    server.restart();
    fleet.push(instance(
        &server,
        &clock,
        "d",
        |b| b.consecutive_failures(1),
        |f| f.prefix("lost").fleet_trials(None),
    ));
    until("d learns a's opening", || {
        fleet[3].breaker.state() == State::Open
    })
    .await;
    // The same when the data goes without a reconnect (FLUSHALL): e starts after it.
    let mut c = raw(&server).await;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut c).await.unwrap();
    fleet.push(instance(
        &server,
        &clock,
        "e",
        |b| b.consecutive_failures(1),
        |f| f.prefix("lost").fleet_trials(None),
    ));
    until("e learns a's opening", || {
        fleet[4].breaker.state() == State::Open
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_epoch_far_in_the_future_is_malformed_not_the_newest() {
    let Some(server) = redis() else { return };
    let clock = ManualClock::new();
    let fleet = fleet(&server, "epoch", &clock, None);
    connected(&fleet).await;
    let mut c = raw(&server).await;
    let poison = "open|18446744073709551615|evil";
    set(&mut c, "epoch:{upstream}:state", poison).await;
    // Give every task a few rounds to read it (the checks below do not depend on timing).
    tokio::time::sleep(INTERVAL * 10).await;
    trip(&fleet[0].breaker);
    until("b and c follow a", || {
        fleet[1..].iter().all(|i| i.breaker.state() == State::Open)
    })
    .await;
    for i in &fleet[1..] {
        assert_eq!(malformed_count(i, poison), 1, "reported once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_sequence_is_overwritten_by_the_next_publish() {
    let Some(server) = redis() else { return };
    let clock = ManualClock::new();
    let fleet = fleet(&server, "seq", &clock, None);
    connected(&fleet).await;
    let mut c = raw(&server).await;
    for garbage in ["1e300", "99999999999999999999", "-5", "0x10"] {
        for i in &fleet {
            i.events.lock().unwrap().clear();
        }
        set(&mut c, "seq:{upstream}:seq", garbage).await;
        trip(&fleet[0].breaker);
        until("b and c follow a", || {
            fleet[1..].iter().all(|i| i.breaker.state() == State::Open)
        })
        .await;
        let seq: String = redis::cmd("GET")
            .arg("seq:{upstream}:seq")
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(
            seq.len() <= 16 && seq.bytes().all(|b| b.is_ascii_digit()),
            "{garbage}: sequence now {seq:?}"
        );
        for i in &fleet {
            assert!(
                !i.saw(|e| matches!(e, FleetEvent::Malformed { .. })),
                "{garbage}"
            );
        }
        // Everyone back to CLOSED for the next value.
        for i in &fleet {
            i.breaker.transition_to_closed();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_counts_entries_are_dropped_not_summed() {
    let Some(server) = redis() else { return };
    let clock = ManualClock::new();
    let fleet = fleet_of(
        &server,
        &clock,
        |b| {
            b.failure_rate_threshold(0.5)
                .count_window(20)
                .minimum_calls(10)
        },
        |f| f.prefix("counts").aggregate(true),
    );
    connected(&fleet).await;
    let mut c = raw(&server).await;
    let far = "99999999999999"; // ms: thousands of years ahead
    let now_ms = {
        let (s, us): (u64, u64) = redis::cmd("TIME").query_async(&mut c).await.unwrap();
        s * 1000 + us / 1000
    };
    let soon = (now_ms + 60_000).to_string();
    let bad = [
        format!("10|1000|0|{far}"), // more failures than calls, never expiring
        format!("10|10|0|{far}"),   // plausible counts, an expiry far beyond any TTL
        format!("10|0|11|{soon}"),  // more slow calls than calls
        format!("2000000000000|2000000000000|0|{soon}"), // beyond any instance's window
        format!("10|10|0|{}", "9".repeat(40)),
    ];
    // All at once (one command), so the first round that sees one sees them all.
    let mut hset = redis::cmd("HSET");
    hset.arg("counts:{upstream}:counts");
    for (n, v) in bad.iter().enumerate() {
        hset.arg(format!("evil{n}")).arg(v);
    }
    let _: () = hset.query_async(&mut c).await.unwrap();
    // A few rounds: nobody trips on counts no instance recorded.
    tokio::time::sleep(INTERVAL * 10).await;
    for i in &fleet {
        assert_eq!(i.breaker.state(), State::Closed);
        assert!(!i.saw(|e| matches!(e, FleetEvent::FleetTrip { .. })));
    }
    until("the entries are reported", || {
        fleet
            .iter()
            .any(|i| i.saw(|e| matches!(e, FleetEvent::Malformed { key, .. } if key == "counts:{upstream}:counts")))
    })
    .await;
    let left: Vec<String> = redis::cmd("HKEYS")
        .arg("counts:{upstream}:counts")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(left.iter().all(|k| !k.starts_with("evil")), "{left:?}");
    // The fleet window still works on real counts.
    for i in &fleet {
        for _ in 0..4 {
            let _ = i.breaker.call(|| Err::<(), _>("down"));
        }
    }
    until("the fleet opens", || {
        fleet.iter().all(|i| i.breaker.state() == State::Open)
    })
    .await;
}

/// What a registry's fleet listener saw: `(breaker, event)`.
type Seen = Arc<Mutex<Vec<(String, FleetEvent)>>>;

fn saw(seen: &Seen, name: &str, pred: impl Fn(&FleetEvent) -> bool) -> bool {
    seen.lock()
        .unwrap()
        .iter()
        .any(|(n, e)| n == name && pred(e))
}

/// One instance's registry synced as a whole.
fn synced_registry(
    server: &RedisServer,
    id: &'static str,
    registry: &Registry<ManualClock>,
) -> (RegistrySync, Seen) {
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let sync = FleetConfig::new(server.url())
        .prefix("whole-registry")
        .instance(id)
        .sync_interval(INTERVAL)
        .lease_ttl(Duration::from_secs(2))
        .on_breaker_event(move |name, e| sink.lock().unwrap().push((name.to_string(), e.clone())))
        .attach_registry(registry)
        .unwrap();
    (sync, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_attached_as_a_whole_syncs_its_existing_and_future_breakers() {
    let Some(server) = redis() else { return };
    let clock = ManualClock::new();
    let config = Config {
        consecutive_failures: Some(1),
        open_wait: OpenWait::Fixed { wait: WAIT },
        ..Config::default()
    };
    let r1 = Registry::with_clock(config.clone(), clock.clone()).unwrap();
    let r2 = Registry::with_clock(config, clock.clone()).unwrap();
    // Before the registry is attached: one breaker on each instance, and on the first
    // instance one that already has a capped sync of its own (it cannot be attached again).
    let early = [r1.get("early"), r2.get("early")];
    let taken = r1.get("taken");
    let _own = FleetConfig::new(server.url()).attach(&taken).unwrap();

    let (sync1, seen1) = synced_registry(&server, "a", &r1);
    let (sync2, seen2) = synced_registry(&server, "b", &r2);
    // After: breakers the registries create now.
    let late = [r1.get("late"), r2.get("late")];
    let quiet = [r1.get("quiet"), r2.get("quiet")];
    until("`taken` reported as not attached", || {
        saw(&seen1, "taken", |e| {
            matches!(
                e,
                FleetEvent::NotAttached {
                    error: FleetError::AlreadyAttached
                }
            )
        })
    })
    .await;
    assert_eq!((sync1.attached(), sync2.attached()), (3, 3));
    for (seen, who) in [(&seen1, "a"), (&seen2, "b")] {
        for name in ["early", "late", "quiet"] {
            until(&format!("{who}'s {name} connected"), || {
                saw(seen, name, |e| matches!(e, FleetEvent::Connected))
            })
            .await;
        }
    }
    assert_eq!((sync1.running(), sync2.running()), (3, 3));

    // A breaker that existed before the attach, tripped on one instance, opens on the other.
    trip(&early[0]);
    until("the trip of `early` reaches the second instance", || {
        early[1].state() == State::Open
    })
    .await;
    // And one created after it, the other way round.
    trip(&late[1]);
    until("the trip of `late` reaches the first instance", || {
        late[0].state() == State::Open
    })
    .await;
    assert!(saw(&seen1, "late", |e| matches!(
        e,
        FleetEvent::Applied {
            state: State::Open,
            ..
        }
    )));
    // Each breaker agrees under its own name only.
    assert_eq!(quiet[0].state(), State::Closed);
    assert_eq!(quiet[1].state(), State::Closed);

    // Stopped: a breaker created afterwards is not synced.
    sync1.stop();
    let after = r1.get("after");
    let _ = r2.get("after");
    tokio::time::sleep(INTERVAL * 10).await;
    assert!(!saw(&seen1, "after", |_| true));
    // The other instance's registry is still synced, new breakers included.
    until("the second instance's `after` connected", || {
        saw(&seen2, "after", |e| matches!(e, FleetEvent::Connected))
    })
    .await;
    assert_eq!(sync2.attached(), 4);
    drop(after);
}

#[test]
fn a_registry_attach_refuses_bad_settings_and_a_missing_runtime() {
    let registry = Registry::default();
    match FleetConfig::new("redis://127.0.0.1:1")
        .sync_interval(Duration::ZERO)
        .attach_registry(&registry)
    {
        Err(FleetError::Invalid { field, .. }) => assert_eq!(field, "sync_interval"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(
        FleetConfig::new("redis://127.0.0.1:1")
            .attach_registry(&registry)
            .unwrap_err(),
        FleetError::NoRuntime
    );
}

/// Breakers created by several threads while the registry is being attached: each one is
/// attached exactly once (a second capped attach of one breaker would be refused and reported
/// as `NotAttached`), whether it was created before or after the attach. No Redis needed: an
/// attach only starts the task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_breaker_is_attached_exactly_once_while_threads_create_them() {
    for round in 0..20 {
        let registry = Arc::new(Registry::default());
        let not_attached = Arc::new(Mutex::new(Vec::new()));
        let sink = not_attached.clone();
        let go = Arc::new(std::sync::Barrier::new(4));
        let creators: Vec<_> = (0..3)
            .map(|t| {
                let (registry, go) = (registry.clone(), go.clone());
                std::thread::spawn(move || {
                    go.wait();
                    for i in 0..100 {
                        registry.get(&format!("r{round}-t{t}-{i}"));
                    }
                })
            })
            .collect();
        go.wait();
        let sync = FleetConfig::new("redis://127.0.0.1:1")
            .on_breaker_event(move |name, e| {
                if let FleetEvent::NotAttached { .. } = e {
                    sink.lock().unwrap().push(name.to_string());
                }
            })
            .attach_registry(&registry)
            .unwrap();
        for c in creators {
            c.join().unwrap();
        }
        assert_eq!(registry.len(), 300);
        assert_eq!(sync.attached(), 300, "round {round}");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(not_attached.lock().unwrap().is_empty(), "round {round}");
    }
}
