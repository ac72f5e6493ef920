//! A registry of named breakers: per-name configuration over a default, concurrent
//! get-or-create, metrics of all.
//!
//! Lookups go through [`papaya`], a lock-free concurrent hash map (hashed with `foldhash`, a
//! fast non-cryptographic hasher): reading an existing breaker takes no lock. Hold on to the
//! returned `Arc` where you can; a lookup per call costs a hash of the name and an `Arc` clone.

use crate::breaker::Builder;
use crate::breaker::{CircuitBreaker, DefaultClock};
use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::error::{RegistryFull, ZeroCapacity};
use crate::events::Listener;
use crate::metrics::Metrics;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

type Hasher = foldhash::fast::RandomState;

/// Called with each breaker a registry creates; returns `false` when it wants no more.
pub(crate) type CreateHook<C> = Box<dyn FnMut(&Arc<CircuitBreaker<C>>) -> bool + Send>;

/// What a registry runs on each breaker it creates (see `Registry::hooks`).
struct Hooks<C: Clock> {
    listeners: Vec<Listener>,
    created: Vec<CreateHook<C>>,
}

const DEFAULT_CAPACITY_LIMIT: usize = 10_000;
const OVERFLOW: &str = "(overflow)";

/// Named breakers sharing one clock and, unless overridden per name, one configuration.
///
/// ```
/// use breakerbox::{Config, Registry};
///
/// let registry = Registry::new(Config::default())?; // an invalid default is a ConfigError
/// registry
///     .configure("payments", Config { consecutive_failures: Some(3), ..Config::default() })
///     .unwrap();
/// let payments = registry.get("payments");
/// let again = registry.get("payments");
/// assert!(std::sync::Arc::ptr_eq(&payments, &again));
/// assert_eq!(payments.config().consecutive_failures, Some(3));
/// assert_eq!(registry.get("inventory").config(), &Config::default());
/// assert_eq!(registry.metrics().len(), 2);
/// # Ok::<(), breakerbox::ConfigError>(())
/// ```
///
/// At most [`capacity_limit`](Self::capacity_limit) breakers:
///
/// ```
/// use breakerbox::{Config, Registry};
///
/// let registry = Registry::default().with_capacity_limit(2).unwrap();
/// registry.get("a");
/// registry.get("b");
/// assert!(registry.try_get("c").is_err()); // full: nothing created
/// assert!(registry.try_get("a").is_ok()); // existing names keep working
/// assert_eq!(registry.get("c").name(), Registry::OVERFLOW); // the shared overflow breaker
/// assert_eq!(registry.len(), 2);
/// ```
///
/// # Bounded
/// A registry holds at most [`capacity_limit`](Registry::capacity_limit) breakers
/// ([`Registry::DEFAULT_CAPACITY_LIMIT`](Registry::<DefaultClock>::DEFAULT_CAPACITY_LIMIT),
/// 10,000, unless set with
/// [`with_capacity_limit`](Registry::with_capacity_limit)); breakers are never removed. Once
/// full, [`try_get`](Registry::try_get) of a new name returns [`RegistryFull`] and
/// [`get`](Registry::get) of a new name returns the shared [overflow breaker](Registry::overflow).
/// Names that already have a breaker keep working. Keys taken from requests (hosts, paths) can be
/// chosen by an attacker; the bound keeps them from growing the registry without end (and bounds
/// the cost of colliding names: `foldhash` is only minimally resistant to hash flooding).
///
/// # Creation and listeners
/// Creating a breaker and registering a listener ([`on_event`](Registry::on_event)) take one
/// registry-wide lock, so a listener reaches every breaker, existing or future, exactly once.
/// Getting an existing breaker takes no lock.
pub struct Registry<C: Clock + Clone = DefaultClock> {
    default: Config,
    overrides: papaya::HashMap<String, Config, Hasher>,
    breakers: papaya::HashMap<String, Arc<CircuitBreaker<C>>, Hasher>,
    clock: C,
    /// The registry's listeners and creation hooks. The lock also serialises every change of
    /// the breaker set (creating a breaker, attaching listeners to it, inserting it; `overflow`
    /// included) with every registration: that is what makes "each breaker gets each listener
    /// (and hook) once" hold. Lookups of existing breakers never take it.
    hooks: Mutex<Hooks<C>>,
    /// Breakers in `breakers`. Written only under `hooks`' lock, after the insert; it never
    /// decreases (breakers are never removed).
    count: AtomicUsize,
    limit: usize,
    /// Shared by the names that found the registry full; set only under `hooks`' lock.
    overflow: OnceLock<Arc<CircuitBreaker<C>>>,
}

impl Registry<DefaultClock> {
    /// The capacity limit of a new registry: 10,000 breakers.
    pub const DEFAULT_CAPACITY_LIMIT: usize = DEFAULT_CAPACITY_LIMIT;

    /// The name of the [overflow breaker](Self::overflow): [`get`](Self::get) of this name
    /// returns it, and [`configure`](Self::configure) of this name configures it.
    pub const OVERFLOW: &'static str = OVERFLOW;

    /// A registry whose breakers use `default` unless configured by name, holding at most
    /// [`DEFAULT_CAPACITY_LIMIT`](Self::DEFAULT_CAPACITY_LIMIT) breakers (see
    /// [`with_capacity_limit`](Self::with_capacity_limit)). An invalid `default` is refused
    /// with the [`ConfigError`] that names its field (never replaced behind your back);
    /// [`Registry::default`] is the registry of [`Config::default`].
    pub fn new(default: Config) -> Result<Self, ConfigError> {
        Self::with_clock(default, DefaultClock::default())
    }
}

impl Default for Registry<DefaultClock> {
    /// A registry of [`Config::default`] breakers.
    fn default() -> Self {
        Self::from_valid(Config::default(), DefaultClock::default())
    }
}

impl<C: Clock + Clone> Registry<C> {
    /// A registry on a given clock (a [`ManualClock`](crate::ManualClock) in tests); an invalid
    /// `default` is refused, as in [`Registry::new`].
    pub fn with_clock(default: Config, clock: C) -> Result<Self, ConfigError> {
        default.validate()?;
        Ok(Self::from_valid(default, clock))
    }

    fn from_valid(default: Config, clock: C) -> Self {
        Registry {
            default,
            overrides: papaya::HashMap::with_hasher(Hasher::default()),
            breakers: papaya::HashMap::with_hasher(Hasher::default()),
            clock,
            hooks: Mutex::new(Hooks {
                listeners: Vec::new(),
                created: Vec::new(),
            }),
            count: AtomicUsize::new(0),
            limit: DEFAULT_CAPACITY_LIMIT,
            overflow: OnceLock::new(),
        }
    }

    /// Sets the maximum number of breakers (the [overflow breaker](Self::overflow) not
    /// counted); `0` is refused. Breakers already created stay, even above the new limit.
    pub fn with_capacity_limit(mut self, limit: usize) -> Result<Self, ZeroCapacity> {
        if limit == 0 {
            return Err(ZeroCapacity);
        }
        self.limit = limit;
        Ok(self)
    }

    /// The maximum number of breakers.
    pub fn capacity_limit(&self) -> usize {
        self.limit
    }

    /// The configuration of breakers not configured by name.
    pub fn default_config(&self) -> &Config {
        &self.default
    }

    /// Sets the configuration for `name`, validated now. Applies to a breaker created after
    /// this call; an existing breaker of that name keeps its configuration.
    pub fn configure(&self, name: impl Into<String>, config: Config) -> Result<(), ConfigError> {
        config.validate()?;
        self.overrides.pin().insert(name.into(), config);
        Ok(())
    }

    /// Registers a listener on every breaker, existing and future (the overflow breaker
    /// included), exactly once each.
    pub fn on_event(&self, listener: impl Fn(&crate::Event<'_>) + Send + Sync + 'static) {
        let l: Listener = Arc::new(listener);
        let mut hooks = self.lock();
        hooks.listeners.push(l.clone());
        // A breaker created after we release the lock copies `listeners`, which now holds `l`.
        self.each_breaker(&hooks, |b| {
            b.add_listener(l.clone());
            true
        });
    }

    /// Runs `f` on every breaker (the overflow breaker included, if created) while `f` returns
    /// `true`; `false` if it stopped. The caller holds the lock (`_held`): every insert into
    /// `breakers` happened under it, so the iteration sees them all.
    fn each_breaker(
        &self,
        _held: &MutexGuard<'_, Hooks<C>>,
        mut f: impl FnMut(&Arc<CircuitBreaker<C>>) -> bool,
    ) -> bool {
        self.breakers.pin().iter().all(|(_, b)| f(b)) && self.overflow.get().is_none_or(f)
    }

    /// The breaker named `name`, created from its configuration on first use. Concurrent
    /// first calls for one name all get the same breaker.
    ///
    /// When the registry is full (see [`capacity_limit`](Self::capacity_limit)) and `name` has
    /// no breaker, returns the shared [overflow breaker](Self::overflow) instead of creating
    /// one; [`try_get`](Self::try_get) reports that case. Never panics.
    pub fn get(&self, name: &str) -> Arc<CircuitBreaker<C>> {
        self.try_get(name).unwrap_or_else(|_| self.overflow())
    }

    /// Runs `f` on the breaker named `name` (created on first use, or the overflow breaker when
    /// full, as [`get`](Self::get)) without cloning its `Arc`: the lookup borrows it from the
    /// map, so a per-request lookup pays the hash and the probe but no shared reference-count
    /// write. On a hot path where the name is fixed, keep the `Arc` from `get` instead: a held
    /// handle costs nothing per call.
    ///
    /// ```
    /// let registry = breakerbox::Registry::default();
    /// let admitted = registry.with("inventory", |b| b.try_acquire().map(|p| p.success()).is_ok());
    /// assert!(admitted);
    /// ```
    pub fn with<R>(&self, name: &str, f: impl FnOnce(&CircuitBreaker<C>) -> R) -> R {
        {
            let map = self.breakers.pin();
            if let Some(b) = map.get(name) {
                return f(b);
            }
        }
        f(&self.get(name))
    }

    /// The breaker named `name`, created from its configuration on first use, or
    /// [`RegistryFull`] when `name` has no breaker and the registry holds
    /// [`capacity_limit`](Self::capacity_limit) breakers.
    ///
    /// [`Registry::OVERFLOW`](Registry::<DefaultClock>::OVERFLOW) names the overflow breaker,
    /// which always exists.
    pub fn try_get(&self, name: &str) -> Result<Arc<CircuitBreaker<C>>, RegistryFull> {
        let map = self.breakers.pin();
        if let Some(b) = map.get(name) {
            return Ok(Arc::clone(b));
        }
        if name == OVERFLOW {
            return Ok(self.overflow());
        }
        // Acquire: pairs with the Release store in `create`, so when we see the registry full,
        // every insert (all happen before that store) is visible to the lookup below. A full
        // registry stays full, so new names are refused here without taking the lock.
        if self.count.load(Ordering::Acquire) >= self.limit {
            return match map.get(name) {
                Some(b) => Ok(Arc::clone(b)),
                None => Err(self.full()),
            };
        }
        let mut hooks = self.lock();
        if let Some(b) = map.get(name) {
            return Ok(Arc::clone(b));
        }
        // Relaxed: under the lock, which every writer of `count` holds; the lock's
        // acquire/release orders it.
        let count = self.count.load(Ordering::Relaxed);
        if count >= self.limit {
            return Err(self.full());
        }
        let created = self.create(name, &mut hooks);
        map.insert(name.to_string(), Arc::clone(&created));
        // Release: publishes the insert to the Acquire load above (see there).
        self.count.store(count + 1, Ordering::Release);
        Ok(created)
    }

    /// The breaker shared by every name that found the registry full (named
    /// [`Registry::OVERFLOW`](Registry::<DefaultClock>::OVERFLOW), configured like any name), created on first use. It is not one
    /// of [`names`](Self::names) and not counted in [`len`](Self::len); [`metrics`](Self::metrics)
    /// shows it once created.
    ///
    /// Sharing one breaker makes the overflow names fail together: when they trip it, all of
    /// them are rejected until it closes. Names that have their own breaker are unaffected.
    pub fn overflow(&self) -> Arc<CircuitBreaker<C>> {
        if let Some(b) = self.overflow.get() {
            return Arc::clone(b);
        }
        let mut hooks = self.lock();
        Arc::clone(
            self.overflow
                .get_or_init(|| self.create(OVERFLOW, &mut hooks)),
        )
    }

    /// A new breaker for `name` with the registry's listeners, passed to its creation hooks
    /// (a hook that says it is done is dropped). Called under the lock that guards `hooks`.
    fn create(&self, name: &str, hooks: &mut Hooks<C>) -> Arc<CircuitBreaker<C>> {
        let config = self
            .overrides
            .pin()
            .get(name)
            .cloned()
            .unwrap_or_else(|| self.default.clone());
        let created = Builder::with_clock(self.clock.clone())
            .config(config)
            .name(name)
            .build_shared()
            // Both sources were validated (`configure`, `with_clock`).
            .unwrap_or_else(|_| {
                Arc::new(CircuitBreaker::from_parts(
                    Config::default(),
                    self.clock.clone(),
                    Some(name.to_string()),
                ))
            });
        for l in &hooks.listeners {
            created.add_listener(l.clone());
        }
        hooks.created.retain_mut(|hook| hook(&created));
        created
    }

    fn full(&self) -> RegistryFull {
        RegistryFull { limit: self.limit }
    }

    fn lock(&self) -> MutexGuard<'_, Hooks<C>> {
        // A panic under this lock leaves the lists and the map consistent (each is updated
        // by one call that completes or not), so a poisoned lock is still usable.
        self.hooks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `hook` on every breaker, existing and future (the overflow breaker included),
    /// exactly once each, until it returns `false`. It runs under the registry's lock (as a
    /// breaker is created), so it must not use the registry.
    #[cfg(feature = "redis")]
    pub(crate) fn on_create(&self, mut hook: CreateHook<C>) {
        let mut hooks = self.lock();
        // A breaker created after we release the lock runs the hook from `hooks.created`.
        if self.each_breaker(&hooks, &mut hook) {
            hooks.created.push(hook);
        }
    }

    /// The breaker named `name`, if it exists.
    pub fn existing(&self, name: &str) -> Option<Arc<CircuitBreaker<C>>> {
        self.breakers.pin().get(name).cloned()
    }

    /// Names of all breakers (not the overflow breaker).
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.breakers.pin().keys().cloned().collect();
        v.sort();
        v
    }

    /// Number of breakers (not the overflow breaker).
    pub fn len(&self) -> usize {
        self.breakers.len()
    }

    /// Whether the registry holds no breaker.
    pub fn is_empty(&self) -> bool {
        self.breakers.is_empty()
    }

    /// Metrics of every breaker, sorted by name, then of the overflow breaker if it was created.
    pub fn metrics(&self) -> Vec<Metrics> {
        let mut v: Vec<Metrics> = self.breakers.pin().values().map(|b| b.metrics()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v.extend(self.overflow.get().map(|b| b.metrics()));
        v
    }
}

impl<C: Clock + Clone> std::fmt::Debug for Registry<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("breakers", &self.len())
            .field("capacity_limit", &self.limit)
            .finish()
    }
}
