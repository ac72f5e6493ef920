//! Syncing every breaker of a registry ([`FleetConfig::attach_registry`]) and the
//! [`RegistrySync`] handle that stops them.

use super::attach::FleetSync;
use super::config::{FleetConfig, FleetError};
use super::events::FleetEvent;
use crate::clock::Clock;
use crate::registry::Registry;
use std::sync::{Arc, Mutex, MutexGuard};

/// The syncs of a registry's breakers; `None` once stopped.
type Syncs = Mutex<Option<Vec<FleetSync>>>;

fn lock(syncs: &Syncs) -> MutexGuard<'_, Option<Vec<FleetSync>>> {
    // Each update is one push or one take: a panic elsewhere cannot leave it half done.
    syncs.lock().unwrap_or_else(|e| e.into_inner())
}

impl FleetConfig {
    /// Syncs every breaker of `registry` with the fleet: the existing ones now, and each new
    /// one as the registry creates it (the [overflow breaker](Registry::overflow) included),
    /// on the current tokio runtime, until the returned [`RegistrySync`] is dropped.
    ///
    /// Each breaker gets what [`attach`](Self::attach) gives one: its own task and its own
    /// connection, under keys named after it, so instances agree breaker by breaker. A
    /// breaker that cannot be attached (no rate rule under `aggregate(true)`, or a capped
    /// sync of its own already) runs locally and is reported as
    /// [`FleetEvent::NotAttached`]; use [`on_breaker_event`](Self::on_breaker_event) to
    /// learn which breaker an event is about.
    ///
    /// Refused, with nothing attached: a setting out of range ([`FleetError::Invalid`]), or a
    /// call outside a tokio runtime ([`FleetError::NoRuntime`]).
    ///
    /// ```no_run
    /// use breakerbox::{fleet::FleetConfig, Registry};
    ///
    /// # async fn run() -> Result<(), breakerbox::fleet::FleetError> {
    /// let registry = Registry::default();
    /// let _sync = FleetConfig::new("redis://127.0.0.1:6379")
    ///     .on_breaker_event(|name, e| eprintln!("fleet: {name}: {e:?}"))
    ///     .attach_registry(&registry)?;
    /// let _payments = registry.get("payments"); // created now, and synced from now on
    /// # Ok(())
    /// # }
    /// ```
    pub fn attach_registry<C: Clock + Clone>(
        self,
        registry: &Registry<C>,
    ) -> Result<RegistrySync, FleetError> {
        self.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| FleetError::NoRuntime)?;
        let syncs: Arc<Syncs> = Arc::new(Mutex::new(Some(Vec::new())));
        let weak = Arc::downgrade(&syncs);
        registry.on_create(Box::new(move |breaker| {
            // Runs under the registry's lock, then this one: `RegistrySync` takes only this
            // one, so the two are always taken in the same order.
            let Some(syncs) = weak.upgrade() else {
                return false;
            };
            let mut syncs = lock(&syncs);
            let Some(syncs) = syncs.as_mut() else {
                return false;
            };
            let _in_runtime = runtime.enter();
            match self.clone().attach(breaker) {
                Ok(sync) => syncs.push(sync),
                Err(error) => {
                    // Reported from the runtime, as every fleet event is: never under the
                    // registry's lock, so the listener may use the registry.
                    let config = self.clone().named(breaker.name());
                    runtime.spawn(async move { config.emit(&FleetEvent::NotAttached { error }) });
                }
            }
            true
        }));
        Ok(RegistrySync { syncs })
    }
}

/// The fleet syncs of a registry's breakers (see
/// [`FleetConfig::attach_registry`]); dropping it stops every one of them, and breakers the
/// registry creates afterwards are not synced. Each breaker keeps its state.
#[derive(Debug)]
pub struct RegistrySync {
    syncs: Arc<Syncs>,
}

impl RegistrySync {
    /// Stops every sync (as dropping does).
    pub fn stop(self) {}

    /// How many breakers are synced now (those that could not be attached are not counted).
    pub fn attached(&self) -> usize {
        lock(&self.syncs).as_ref().map_or(0, Vec::len)
    }

    /// How many of the syncs are still running.
    pub fn running(&self) -> usize {
        lock(&self.syncs)
            .as_ref()
            .map_or(0, |s| s.iter().filter(|s| s.is_running()).count())
    }
}

impl Drop for RegistrySync {
    fn drop(&mut self) {
        // Taken out first and dropped after the lock is released: dropping a `FleetSync`
        // aborts its task.
        let syncs = lock(&self.syncs).take();
        drop(syncs);
    }
}
