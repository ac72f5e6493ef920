//! The registry: its capacity limit, and real threads registering listeners while breakers
//! are created.

use breakerbox::{Config, ConfigError, EventKind, ManualClock, Registry, State, ZeroCapacity};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

/// `on_event` racing `get` of new names: every breaker, whichever side won, ends up with every
/// listener exactly once (a defect once had listeners missing or attached twice).
#[test]
fn listeners_reach_every_breaker_exactly_once_under_races() {
    const GETTERS: usize = 3;
    const NAMES_PER_GETTER: usize = 3_000;
    const REGISTRARS: usize = 2;
    const LISTENERS_PER_REGISTRAR: usize = 40;
    const LISTENERS: usize = REGISTRARS * LISTENERS_PER_REGISTRAR;

    let registry = Arc::new(
        Registry::with_clock(Config::default(), ManualClock::new())
            .unwrap()
            .with_capacity_limit(GETTERS * NAMES_PER_GETTER)
            .expect("non-zero limit"),
    );
    // One counter per listener: how many transition events it has seen.
    let fired: Arc<Vec<AtomicUsize>> =
        Arc::new((0..LISTENERS).map(|_| AtomicUsize::new(0)).collect());
    let barrier = Arc::new(Barrier::new(GETTERS + REGISTRARS));

    let mut handles = Vec::new();
    for g in 0..GETTERS {
        let (registry, barrier) = (registry.clone(), barrier.clone());
        handles.push(std::thread::spawn(move || {
            barrier.wait();
            for i in 0..NAMES_PER_GETTER {
                registry.get(&format!("g{g}-{i}"));
            }
        }));
    }
    for r in 0..REGISTRARS {
        let (registry, barrier, fired) = (registry.clone(), barrier.clone(), fired.clone());
        handles.push(std::thread::spawn(move || {
            barrier.wait();
            for j in 0..LISTENERS_PER_REGISTRAR {
                let id = r * LISTENERS_PER_REGISTRAR + j;
                let fired = fired.clone();
                registry.on_event(move |e| {
                    if let EventKind::Transition(_) = e.kind {
                        fired[id].fetch_add(1, Ordering::Relaxed);
                    }
                });
                // Spread the registrations over the getters' run.
                for _ in 0..200 {
                    std::thread::yield_now();
                }
            }
        }));
    }
    for h in handles {
        h.join().expect("thread panicked");
    }

    assert_eq!(registry.len(), GETTERS * NAMES_PER_GETTER);
    let mut wrong = 0;
    let mut first_wrong = None;
    for name in registry.names() {
        for c in fired.iter() {
            c.store(0, Ordering::Relaxed);
        }
        registry.get(&name).force_open();
        for (id, c) in fired.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            if n != 1 {
                wrong += 1;
                first_wrong.get_or_insert((name.clone(), id, n));
            }
        }
    }
    assert_eq!(
        wrong, 0,
        "(breaker, listener) pairs not attached exactly once; first: {first_wrong:?}"
    );
}

fn registry(limit: usize) -> Registry<ManualClock> {
    Registry::with_clock(Config::default(), ManualClock::new())
        .unwrap()
        .with_capacity_limit(limit)
        .expect("non-zero limit")
}

#[test]
fn capacity_limit_defaults_and_rejects_zero() {
    let r = Registry::default();
    assert_eq!(r.capacity_limit(), Registry::DEFAULT_CAPACITY_LIMIT);
    assert_eq!(Registry::DEFAULT_CAPACITY_LIMIT, 10_000);
    assert_eq!(
        Registry::default().with_capacity_limit(0).err(),
        Some(ZeroCapacity)
    );
}

/// Full: new names are refused by `try_get` (nothing created), `get` hands out the one shared
/// overflow breaker, existing names keep their own breaker.
#[test]
fn full_registry_refuses_new_names_and_shares_the_overflow_breaker() {
    let r = registry(2);
    let a = r.get("a");
    let b = r.try_get("b").expect("room for b");
    let full = r.try_get("c").expect_err("full");
    assert_eq!(full.limit(), 2);
    assert_eq!(
        full.to_string(),
        "the registry holds its maximum of 2 breakers"
    );
    assert!(Arc::ptr_eq(&r.try_get("a").expect("a exists"), &a));
    assert!(Arc::ptr_eq(&r.get("b"), &b));

    let c = r.get("c");
    let d = r.get("d");
    assert!(
        Arc::ptr_eq(&c, &d),
        "one overflow breaker for every new name"
    );
    assert!(Arc::ptr_eq(&c, &r.overflow()));
    assert!(Arc::ptr_eq(&c, &r.get(Registry::OVERFLOW)));
    assert_eq!(c.name(), Registry::OVERFLOW);
    assert_eq!(r.len(), 2);
    assert_eq!(r.names(), ["a", "b"]);
    assert!(r.existing("c").is_none());
    let names: Vec<String> = r.metrics().into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["a", "b", Registry::OVERFLOW]);

    // The overflow breaker trips for the overflow names only.
    c.force_open();
    assert_eq!(r.get("e").state(), State::ForcedOpen);
    assert_eq!(r.get("a").state(), State::Closed);
}

#[test]
fn overflow_breaker_is_configurable_and_gets_listeners_once() {
    let r = registry(1);
    r.configure(
        Registry::OVERFLOW,
        Config {
            consecutive_failures: Some(1),
            ..Config::default()
        },
    )
    .expect("valid config");
    let fired = Arc::new(AtomicUsize::new(0));
    let count = |fired: &Arc<AtomicUsize>| {
        let fired = fired.clone();
        move |e: &breakerbox::Event<'_>| {
            if let EventKind::Transition(_) = e.kind {
                fired.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    r.on_event(count(&fired)); // before the overflow breaker exists
    r.get("a");
    let o = r.get("b");
    r.on_event(count(&fired)); // after
    assert_eq!(o.config().consecutive_failures, Some(1));
    let _ = o.call(|| Err::<(), _>("down"));
    assert_eq!(o.state(), State::Open);
    assert_eq!(fired.load(Ordering::Relaxed), 2);
}

/// Threads creating distinct names concurrently never push the registry past its limit.
#[test]
fn racing_creations_stop_exactly_at_the_limit() {
    for round in 0..20 {
        let r = Arc::new(registry(100));
        let barrier = Arc::new(Barrier::new(4));
        let refused: usize = (0..4)
            .map(|t| {
                let (r, barrier) = (r.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    (0..50)
                        .filter(|i| r.try_get(&format!("{t}-{i}")).is_err())
                        .count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().expect("thread panicked"))
            .sum();
        assert_eq!(r.len(), 100, "round {round}");
        assert_eq!(refused, 100, "round {round}");
    }
}

#[test]
fn an_invalid_default_config_is_refused_with_the_field() {
    let invalid = Config {
        consecutive_failures: None,
        failure_rate_threshold: None,
        slow_call_rate_threshold: None,
        ..Config::default()
    };
    assert_eq!(
        Registry::with_clock(invalid.clone(), ManualClock::new()).err(),
        Some(ConfigError::NoTripRule)
    );
    assert_eq!(Registry::new(invalid).err(), Some(ConfigError::NoTripRule));
    let r = Registry::default();
    assert_eq!(r.default_config(), &Config::default());
}
