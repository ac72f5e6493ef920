//! Fleet mode on a real Redis Cluster (three primaries started here on 127.0.0.1, stopped by
//! PID): breakers' keys spread over every primary, trips reach other instances through the
//! cluster, the fleet-wide trial cap holds, the fleet window sums. Without a `redis-server`
//! binary the tests say so and pass, unless `BREAKERBOX_REQUIRE_REDIS` is set (CI sets it).
//!
//! The breakers run on manual clocks; the sync tasks on real time, so the tests wait with a
//! generous bound and report, but never assert, how fast it was.
#![cfg(feature = "redis")]

#[path = "support/redis_cluster.rs"]
mod redis_cluster;
#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/trial_cap.rs"]
mod trial_cap;

use breakerbox::fleet::{FleetConfig, FleetEvent, FleetSync};
use breakerbox::{CircuitBreaker, ManualClock, State};
use redis_cluster::{cli, RedisCluster};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Breaker = Arc<CircuitBreaker<ManualClock>>;

const WAIT: Duration = Duration::from_secs(10);

fn cluster() -> Option<RedisCluster> {
    redis_server::usable().then(RedisCluster::start)
}

/// One instance of a breaker and every fleet event of its sync.
struct Instance {
    breaker: Breaker,
    events: Arc<Mutex<Vec<FleetEvent>>>,
    _sync: FleetSync,
}

impl Instance {
    /// An instance `id` of breaker `name` (open wait `WAIT` on `clock`, then `breaker`'s
    /// settings), synced through `seeds` (some of the cluster's nodes) every `interval`, with
    /// `sync`'s settings.
    fn start(
        seeds: Vec<String>,
        name: &str,
        id: &str,
        clock: &ManualClock,
        interval: Duration,
        breaker: impl Fn(breakerbox::Builder<ManualClock>) -> breakerbox::Builder<ManualClock>,
        sync: impl Fn(FleetConfig) -> FleetConfig,
    ) -> Instance {
        let b = CircuitBreaker::builder()
            .name(name)
            .open_wait(WAIT)
            .clock(clock.clone());
        let breaker = breaker(b).build_shared().unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let who = format!("{name}/{id}");
        let config = FleetConfig::cluster(seeds)
            .instance(id)
            .sync_interval(interval)
            // Generous: a loaded 2-core machine and a cluster connection's first discovery.
            .timeout(Duration::from_secs(2))
            .lease_ttl(Duration::from_secs(5))
            .on_event(move |e| {
                if std::env::var_os("FLEET_DEBUG").is_some() {
                    eprintln!("{who}: {e:?}");
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

    fn saw(&self, pred: impl Fn(&FleetEvent) -> bool) -> bool {
        self.events.lock().unwrap().iter().any(pred)
    }
}

/// Waits (at most 15 s) until `cond` holds; returns how long it took.
async fn until(what: &str, cond: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "not within 15 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    start.elapsed()
}

async fn connected(instances: &[&Instance]) {
    until("every instance connected", || {
        instances
            .iter()
            .all(|i| i.saw(|e| matches!(e, FleetEvent::Connected)))
    })
    .await;
}

fn trip(b: &Breaker) {
    let _ = b.call(|| Err::<(), _>("down"));
    assert_eq!(b.state(), State::Open);
}

/// The ports of the primaries and, for each, the keys it holds (`KEYS <pattern>`).
fn keys_by_node(cluster: &RedisCluster, pattern: &str) -> BTreeMap<u16, Vec<String>> {
    cluster
        .ports
        .iter()
        .map(|&p| {
            let keys = cli(p, &["KEYS", pattern]).unwrap_or_default();
            let keys = keys
                .lines()
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect();
            (p, keys)
        })
        .collect()
}

/// 64 breakers (a few with braces and percent signs in their names), two instances each: a
/// trip on every breaker of instance `a` reaches instance `b` through the cluster, and the
/// breakers' keys are on all three primaries, each breaker's keys in one slot on one node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breakers_spread_over_every_primary_and_trips_reach_the_other_instance() {
    let Some(cluster) = cluster() else { return };
    let started = Instant::now();
    let clock = ManualClock::new();
    let mut names: Vec<String> = (0..60).map(|i| format!("svc-{i}")).collect();
    names.extend(["a{b}c", "}", "{", "50%"].map(String::from));
    let interval = Duration::from_millis(100);
    let urls = cluster.urls();
    let pairs: Vec<(Instance, Instance)> = names
        .iter()
        .map(|n| {
            // `a` knows one node (the rest are discovered), `b` all three.
            let a = Instance::start(
                urls[..1].to_vec(),
                n,
                "a",
                &clock,
                interval,
                |b| b.consecutive_failures(1),
                |f| f.prefix("spread").fleet_trials(None),
            );
            let b = Instance::start(
                urls.clone(),
                n,
                "b",
                &clock,
                interval,
                |b| b.consecutive_failures(1),
                |f| f.prefix("spread").fleet_trials(None),
            );
            (a, b)
        })
        .collect();
    let all: Vec<&Instance> = pairs.iter().flat_map(|(a, b)| [a, b]).collect();
    connected(&all).await;
    for (a, _) in &pairs {
        trip(&a.breaker);
    }
    let took = until("every b open", || {
        pairs.iter().all(|(_, b)| b.breaker.state() == State::Open)
    })
    .await;
    eprintln!(
        "{} trips on a -> OPEN on b in {took:?} (sync interval {interval:?})",
        names.len()
    );
    for (_, b) in &pairs {
        until("b's applied event", || {
            b.saw(|e| matches!(e, FleetEvent::Applied { state: State::Open, from, .. } if from == "a"))
        })
        .await;
    }

    // Where the keys are: every primary holds some breakers' records, and all the keys of one
    // breaker (record and sequence) are on one node, in the slot of its hash tag.
    let by_node = keys_by_node(&cluster, "spread:*");
    let records: Vec<usize> = by_node
        .values()
        .map(|k| k.iter().filter(|k| k.ends_with(":state")).count())
        .collect();
    eprintln!("state records per primary: {records:?}");
    assert_eq!(records.iter().sum::<usize>(), names.len(), "{by_node:?}");
    assert!(records.iter().all(|&n| n > 0), "{records:?}");
    for (port, keys) in &by_node {
        for key in keys.iter().filter(|k| k.ends_with(":state")) {
            let seq = format!("{}:seq", key.strip_suffix(":state").unwrap());
            assert!(keys.contains(&seq), "{key} on {port} without {seq}");
            let slot = cli(*port, &["CLUSTER", "KEYSLOT", key]).unwrap();
            assert_eq!(
                cli(*port, &["CLUSTER", "KEYSLOT", &seq]),
                Some(slot.clone())
            );
            let here = cli(*port, &["CLUSTER", "COUNTKEYSINSLOT", &slot]).unwrap();
            assert!(here.parse::<u32>().unwrap() >= 2, "{key}: slot {slot}");
        }
    }
    eprintln!("test took {:?}", started.elapsed());
}

/// Three instances hammer half-open: at most `fleet_trials` (1) trial calls in flight across
/// them, the lease living on the primary that owns the breaker's slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_wide_trial_cap_holds_on_a_cluster() {
    let Some(cluster) = cluster() else { return };
    let clock = ManualClock::new();
    let urls = cluster.urls();
    let fleet: Vec<Instance> = ["a", "b", "c"]
        .into_iter()
        .map(|id| {
            Instance::start(
                urls.clone(),
                "upstream",
                id,
                &clock,
                Duration::from_millis(20),
                |b| b.consecutive_failures(1),
                |f| f.prefix("cap").fleet_trials(Some(1)),
            )
        })
        .collect();
    connected(&fleet.iter().collect::<Vec<_>>()).await;
    let breakers: Vec<_> = fleet.iter().map(|i| i.breaker.clone()).collect();
    let (trials, max) = trial_cap::hammer_half_open(&breakers, &clock, WAIT).await;
    eprintln!("cluster, fleet_trials = 1: {trials} trial calls, at most {max} in flight at once");
    assert!(trials >= 1, "no instance ever got a trial");
    assert!(
        max <= 1,
        "{max} trial calls in flight with a fleet cap of 1"
    );
    assert!(
        fleet
            .iter()
            .any(|i| i.saw(|e| matches!(e, FleetEvent::TrialLease { held: true }))),
        "no lease was ever taken"
    );
}

/// The fleet window on a cluster: four failures on each of three instances (below the local
/// minimum of 10) trip them all, summed by the aggregate script on the slot's primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_window_sums_on_a_cluster() {
    let Some(cluster) = cluster() else { return };
    let clock = ManualClock::new();
    let urls = cluster.urls();
    let fleet: Vec<Instance> = ["a", "b", "c"]
        .into_iter()
        .map(|id| {
            Instance::start(
                urls.clone(),
                "upstream",
                id,
                &clock,
                Duration::from_millis(20),
                |b| {
                    b.failure_rate_threshold(0.5)
                        .count_window(20)
                        .minimum_calls(10)
                },
                |f| f.prefix("agg").aggregate(true),
            )
        })
        .collect();
    connected(&fleet.iter().collect::<Vec<_>>()).await;
    for i in &fleet {
        for _ in 0..4 {
            let _ = i.breaker.call(|| Err::<(), _>("down"));
        }
        assert_eq!(i.breaker.state(), State::Closed, "below the local minimum");
    }
    let took = until("the fleet opens", || {
        fleet.iter().all(|i| i.breaker.state() == State::Open)
    })
    .await;
    eprintln!("cluster fleet window: all OPEN {took:?} after the 12th failure");
    assert!(fleet.iter().any(|i| i.saw(|e| matches!(
        e,
        FleetEvent::FleetTrip { calls, failures, instances: 3, .. } if *calls >= 10 && failures == calls
    ))));
    // The counts hash is on exactly one primary.
    let holders = keys_by_node(&cluster, "agg:{upstream}:counts")
        .values()
        .filter(|k| !k.is_empty())
        .count();
    assert_eq!(holders, 1);
}

/// Two instances `a` and `b` of breaker `upstream` (one failure opens, no fleet trial cap)
/// synced through `seeds` every 20 ms under `prefix`.
fn pair(seeds: &[String], prefix: &'static str, clock: &ManualClock) -> [Instance; 2] {
    ["a", "b"].map(|id| {
        Instance::start(
            seeds.to_vec(),
            "upstream",
            id,
            clock,
            Duration::from_millis(20),
            |b| b.consecutive_failures(1),
            |f| f.prefix(prefix).fleet_trials(None),
        )
    })
}

/// a (CLOSED) trips, and b (CLOSED) follows.
async fn a_trips_and_b_follows(fleet: &[Instance; 2], what: &str) {
    let [a, b] = fleet;
    assert_eq!(b.breaker.state(), State::Closed);
    trip(&a.breaker);
    let took = until(what, || b.breaker.state() == State::Open).await;
    eprintln!("{what}: {took:?}");
}

/// a's wait ends, its trial closes it, and b (OPEN) follows.
async fn a_closes_and_b_follows(fleet: &[Instance; 2], clock: &ManualClock, what: &str) {
    let [a, b] = fleet;
    clock.advance(WAIT);
    let trial = a.breaker.try_acquire().expect("a's trial");
    assert!(trial.is_trial());
    trial.success();
    assert_eq!(a.breaker.state(), State::Closed);
    let took = until(what, || b.breaker.state() == State::Closed).await;
    eprintln!("{what}: {took:?}");
}

/// The scripts run with EVALSHA: after `SCRIPT FLUSH` on every node, a node answers NOSCRIPT,
/// the script is loaded on the primaries and run again, and trips still propagate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_are_loaded_again_after_a_script_flush() {
    let Some(cluster) = cluster() else { return };
    let clock = ManualClock::new();
    let fleet = pair(&cluster.urls(), "flush", &clock);
    connected(&fleet.iter().collect::<Vec<_>>()).await;
    a_trips_and_b_follows(&fleet, "first trip").await;
    for &p in &cluster.ports {
        assert_eq!(cli(p, &["SCRIPT", "FLUSH"]).as_deref(), Some("OK"));
    }
    // Published through a script every node forgot, and then again.
    a_closes_and_b_follows(&fleet, &clock, "close after SCRIPT FLUSH").await;
    a_trips_and_b_follows(&fleet, "trip after SCRIPT FLUSH").await;
}

/// Three primaries with a replica each: the primary that holds the breaker's slot is killed;
/// once a replica has taken over, a trip on one instance reaches the other again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trip_reaches_the_other_instance_after_a_primary_fails_over() {
    let Some(mut cluster) = redis_server::usable().then(|| RedisCluster::start_with(1)) else {
        return;
    };
    let started = Instant::now();
    let clock = ManualClock::new();
    let fleet = pair(&cluster.urls(), "failover", &clock);
    connected(&fleet.iter().collect::<Vec<_>>()).await;
    a_trips_and_b_follows(&fleet, "trip before the failover").await;
    a_closes_and_b_follows(&fleet, &clock, "close before the failover").await;

    let any = cluster.ports[0];
    let slot: u16 = cli(any, &["CLUSTER", "KEYSLOT", "failover:{upstream}:state"])
        .and_then(|s| s.parse().ok())
        .unwrap();
    let old = cluster.primary_of(any, slot).expect("the slot's primary");
    cluster.kill(old);
    let live = *cluster.ports.iter().find(|&&p| p != old).unwrap();
    let took = until("a replica takes over the slot", || {
        cluster.primary_of(live, slot).is_some_and(|p| p != old)
            && cli(live, &["CLUSTER", "INFO"]).is_some_and(|s| s.contains("cluster_state:ok"))
    })
    .await;
    eprintln!("primary {old} killed: replica took over slot {slot} in {took:?}");

    // Redis replication is asynchronous: the new primary may lack the last record; a's next
    // trip is published on it either way.
    let bound = Instant::now();
    a_trips_and_b_follows(&fleet, "trip after the failover").await;
    a_closes_and_b_follows(&fleet, &clock, "close after the failover").await;
    eprintln!(
        "converged {:?} after the takeover; test took {:?}",
        bound.elapsed(),
        started.elapsed()
    );
}
