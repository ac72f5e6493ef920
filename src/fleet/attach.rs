//! Starting a fleet sync ([`FleetConfig::attach`]: the gate, the transition hook, the task)
//! and the [`FleetSync`] handle that stops it.

use super::config::{FleetConfig, FleetError};
use super::events::FleetEvent;
use super::hook::{self, Shared};
use super::scripts::Keys;
use super::task::Task;
use crate::breaker::{CircuitBreaker, HalfOpenGate};
use crate::clock::Clock;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

impl FleetConfig {
    /// Starts syncing `breaker` with the fleet, on the current tokio runtime. The task stops
    /// when the returned [`FleetSync`] is dropped (or the breaker is).
    pub fn attach<C: Clock>(
        self,
        breaker: &Arc<CircuitBreaker<C>>,
    ) -> Result<FleetSync, FleetError> {
        let client = self.validate()?;
        let this = self.named(breaker.name());
        let c = breaker.config();
        if this.aggregate
            && c.failure_rate_threshold.is_none()
            && c.slow_call_rate_threshold.is_none()
        {
            return Err(FleetError::Invalid {
                field: "aggregate",
                reason: "the breaker has no rate rule to evaluate on the fleet window".into(),
            });
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| FleetError::NoRuntime)?;
        // Closed until the first round decides (or finds Redis unreachable and opens it).
        let gate = Arc::new(HalfOpenGate {
            open: AtomicBool::new(this.fleet_trials.is_none()),
            demand: AtomicBool::new(false),
        });
        if this.fleet_trials.is_some() && !breaker.set_half_open_gate(gate.clone()) {
            return Err(FleetError::AlreadyAttached);
        }
        let shared = Arc::new(Shared {
            notify: tokio::sync::Notify::new(),
            pending: Mutex::new(None),
        });
        hook::publish_on_transition(breaker, &shared);
        let keys = Keys::new(&this.prefix, breaker.name());
        let task = Task::new(
            Arc::downgrade(breaker),
            shared.clone(),
            gate,
            client,
            keys,
            this,
        );
        Ok(FleetSync {
            task: runtime.spawn(task.run()),
            _shared: shared,
        })
    }

    /// This configuration with `on_breaker_event` folded into `on_event` for the breaker
    /// named `name`, so that the task has one listener to call.
    pub(super) fn named(mut self, name: &str) -> FleetConfig {
        if let Some(named) = self.on_breaker_event.take() {
            let plain = self.on_event.take();
            let name = name.to_string();
            self.on_event = Some(Arc::new(move |e: &FleetEvent| {
                if let Some(f) = &plain {
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(e)));
                }
                named(&name, e);
            }));
        }
        self
    }

    /// Gives `e` to the event listener; a panic in it is caught.
    pub(super) fn emit(&self, e: &FleetEvent) {
        if let Some(f) = &self.on_event {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(e)));
        }
    }
}

/// A running fleet sync; dropping it stops the task (a held trial lease then lapses after
/// `lease_ttl`, and the breaker's half-open gate stays where it was: call
/// [`stop`](Self::stop) to leave the breaker plain local).
#[derive(Debug)]
pub struct FleetSync {
    task: tokio::task::JoinHandle<()>,
    _shared: Arc<Shared>,
}

impl FleetSync {
    /// Stops the task. The breaker keeps its state.
    pub fn stop(self) {}

    /// Whether the task is still running.
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }
}

impl Drop for FleetSync {
    fn drop(&mut self) {
        self.task.abort();
    }
}
