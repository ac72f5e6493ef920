//! The fleet's events: what a sync task reports ([`FleetEvent`]), and the callback that
//! receives them.

use super::config::FleetError;
use crate::state::State;
use std::sync::Arc;
use std::time::Duration;

/// A fleet event callback.
pub(super) type FleetListener = Arc<dyn Fn(&FleetEvent) + Send + Sync>;

/// A fleet event callback that is also given the breaker's name.
pub(super) type NamedFleetListener = Arc<dyn Fn(&str, &FleetEvent) + Send + Sync>;

/// What a fleet sync task reports.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum FleetEvent {
    /// Connected (or reconnected) to Redis; syncing.
    Connected,
    /// Redis could not be reached or did not answer in time. The breaker works locally (its
    /// half-open gate is open) until the next attempt, `retry_in` from now.
    Unavailable {
        /// What failed.
        error: String,
        /// Backoff before the next attempt.
        retry_in: Duration,
    },
    /// A value under the namespace could not be used (unparseable, or a key of the wrong
    /// type). Ignored; reported once per distinct value.
    Malformed {
        /// The key.
        key: String,
        /// The value, or the error Redis returned.
        value: String,
    },
    /// This instance's transition was published to the fleet.
    Published {
        /// The state published.
        state: State,
        /// Its epoch.
        epoch: u64,
    },
    /// Another instance's transition was applied here.
    Applied {
        /// The state applied.
        state: State,
        /// The instance that published it.
        from: String,
        /// OPEN: the wait applied (the time the fleet record had left).
        wait: Option<Duration>,
    },
    /// A fleet-wide trial lease was taken (`true`) or given back (`false`).
    TrialLease {
        /// Taken or given back.
        held: bool,
    },
    /// The fleet window's sums reached a trip rule (with `aggregate(true)`): this instance
    /// opened and publishes it.
    FleetTrip {
        /// Calls in the fleet window.
        calls: u64,
        /// Failures among them.
        failures: u64,
        /// Slow calls among them.
        slow: u64,
        /// Instances whose counts were summed.
        instances: u64,
    },
    /// A breaker of a registry synced with
    /// [`attach_registry`](super::FleetConfig::attach_registry) could not be attached (for
    /// example a breaker with no rate rule under `aggregate(true)`, or one that already has a
    /// capped sync of its own); it runs locally. Reported through
    /// [`on_breaker_event`](super::FleetConfig::on_breaker_event) (with its name) and
    /// [`on_event`](super::FleetConfig::on_event).
    NotAttached {
        /// Why.
        error: FleetError,
    },
}
