//! Starting a fleet sync ([`FleetConfig::attach`]: the gate, the transition hook, the task)
//! and the [`FleetSync`] handle that stops it.

use super::config::{FleetConfig, FleetError};
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
        let c = breaker.config();
        if self.aggregate
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
            open: AtomicBool::new(self.fleet_trials.is_none()),
            demand: AtomicBool::new(false),
        });
        if self.fleet_trials.is_some() && !breaker.set_half_open_gate(gate.clone()) {
            return Err(FleetError::AlreadyAttached);
        }
        let shared = Arc::new(Shared {
            notify: tokio::sync::Notify::new(),
            pending: Mutex::new(None),
        });
        hook::publish_on_transition(breaker, &shared);
        let keys = Keys::new(&self.prefix, breaker.name());
        let task = Task::new(
            Arc::downgrade(breaker),
            shared.clone(),
            gate,
            client,
            keys,
            self,
        );
        Ok(FleetSync {
            task: runtime.spawn(task.run()),
            _shared: shared,
        })
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
