//! A registry of named breakers: per-name configuration over a default, concurrent
//! get-or-create, metrics of all.
//!
//! Lookups go through [`papaya`], a lock-free concurrent hash map (hashed with `foldhash`, a
//! fast non-cryptographic hasher; names are chosen by the application, not by attackers):
//! reading an existing breaker takes no lock. Hold on to the returned `Arc` where you can; a
//! lookup per call costs a hash of the name and an `Arc` clone.

use crate::breaker::{CircuitBreaker, DefaultClock};
use crate::clock::Clock;
use crate::config::{Builder, Config, ConfigError};
use crate::events::Listener;
use crate::metrics::Metrics;
use std::sync::Arc;

type Hasher = foldhash::fast::RandomState;

/// Named breakers sharing one clock and, unless overridden per name, one configuration.
///
/// ```
/// use breakerbox::{Config, Registry};
///
/// let registry = Registry::new(Config::default());
/// registry
///     .configure("payments", Config { consecutive_failures: Some(3), ..Config::default() })
///     .unwrap();
/// let payments = registry.get("payments");
/// let again = registry.get("payments");
/// assert!(std::sync::Arc::ptr_eq(&payments, &again));
/// assert_eq!(payments.config().consecutive_failures, Some(3));
/// assert_eq!(registry.get("inventory").config(), &Config::default());
/// assert_eq!(registry.metrics().len(), 2);
/// ```
pub struct Registry<C: Clock + Clone = DefaultClock> {
    default: Config,
    overrides: papaya::HashMap<String, Config, Hasher>,
    breakers: papaya::HashMap<String, Arc<CircuitBreaker<C>>, Hasher>,
    clock: C,
    listeners: arc_swap::ArcSwap<Vec<Listener>>,
}

impl Registry<DefaultClock> {
    /// A registry whose breakers use `default` unless configured by name. The configuration is
    /// validated when a breaker is created; an invalid default falls back to
    /// [`Config::default`] (use [`Registry::try_new`] to be told).
    pub fn new(default: Config) -> Self {
        Self::with_clock(default, DefaultClock::default())
    }

    /// Like [`Registry::new`], but rejects an invalid default configuration.
    pub fn try_new(default: Config) -> Result<Self, ConfigError> {
        default.validate()?;
        Ok(Self::new(default))
    }
}

impl<C: Clock + Clone> Registry<C> {
    /// A registry on a given clock (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn with_clock(default: Config, clock: C) -> Self {
        let default = if default.validate().is_ok() {
            default
        } else {
            Config::default()
        };
        Registry {
            default,
            overrides: papaya::HashMap::with_hasher(Hasher::default()),
            breakers: papaya::HashMap::with_hasher(Hasher::default()),
            clock,
            listeners: arc_swap::ArcSwap::from_pointee(Vec::new()),
        }
    }

    /// Sets the configuration for `name`, validated now. Applies to a breaker created after
    /// this call; an existing breaker of that name keeps its configuration.
    pub fn configure(&self, name: impl Into<String>, config: Config) -> Result<(), ConfigError> {
        config.validate()?;
        self.overrides.pin().insert(name.into(), config);
        Ok(())
    }

    /// Registers a listener on every breaker, existing and future.
    pub fn on_event(&self, listener: impl Fn(&crate::Event<'_>) + Send + Sync + 'static) {
        let l: Listener = Arc::new(listener);
        self.listeners.rcu(|cur| {
            let mut v = Vec::clone(cur);
            v.push(l.clone());
            v
        });
        for (_, b) in self.breakers.pin().iter() {
            b.add_listener(l.clone());
        }
    }

    /// The breaker named `name`, created from its configuration on first use. Concurrent
    /// first calls for one name all get the same breaker.
    pub fn get(&self, name: &str) -> Arc<CircuitBreaker<C>> {
        let map = self.breakers.pin();
        if let Some(b) = map.get(name) {
            return Arc::clone(b);
        }
        let config = self
            .overrides
            .pin()
            .get(name)
            .cloned()
            .unwrap_or_else(|| self.default.clone());
        let created = Builder::with_clock(self.clock.clone())
            .config(config)
            .name(name)
            .build()
            // Both sources were validated (`configure`, `with_clock`).
            .map(Arc::new)
            .unwrap_or_else(|_| {
                Arc::new(CircuitBreaker::from_parts(
                    Config::default(),
                    self.clock.clone(),
                    Some(name.to_string()),
                ))
            });
        for l in self.listeners.load().iter() {
            created.add_listener(l.clone());
        }
        Arc::clone(map.get_or_insert(name.to_string(), created))
    }

    /// The breaker named `name`, if it exists.
    pub fn existing(&self, name: &str) -> Option<Arc<CircuitBreaker<C>>> {
        self.breakers.pin().get(name).cloned()
    }

    /// Names of all breakers.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.breakers.pin().keys().cloned().collect();
        v.sort();
        v
    }

    /// Number of breakers.
    pub fn len(&self) -> usize {
        self.breakers.len()
    }

    /// Whether the registry holds no breaker.
    pub fn is_empty(&self) -> bool {
        self.breakers.is_empty()
    }

    /// Metrics of every breaker, sorted by name.
    pub fn metrics(&self) -> Vec<Metrics> {
        let mut v: Vec<Metrics> = self.breakers.pin().values().map(|b| b.metrics()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}

impl<C: Clock + Clone> std::fmt::Debug for Registry<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("breakers", &self.len())
            .finish()
    }
}
