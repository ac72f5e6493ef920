//! The settings of a fleet sync: [`FleetConfig`], its setters and its validation, and
//! [`FleetError`].

use super::conn::{redacted, Client, Servers};
use super::events::{FleetEvent, FleetListener, NamedFleetListener};
use std::sync::Arc;
use std::time::Duration;

/// Settings of a breaker's fleet sync. Build with [`FleetConfig::new`] (one Redis server) or
/// [`FleetConfig::cluster`] (a Redis Cluster) and the setters, then
/// [`attach`](FleetConfig::attach).
#[derive(Clone)]
pub struct FleetConfig {
    pub(super) servers: Servers,
    pub(super) prefix: String,
    pub(super) instance: String,
    pub(super) sync_interval: Duration,
    pub(super) fleet_trials: Option<u32>,
    pub(super) lease_ttl: Duration,
    pub(super) timeout: Duration,
    pub(super) aggregate: bool,
    pub(super) on_event: Option<FleetListener>,
    pub(super) on_breaker_event: Option<NamedFleetListener>,
}

impl std::fmt::Debug for FleetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("FleetConfig");
        match &self.servers {
            Servers::Single(url) => d.field("url", &redacted(url)),
            Servers::Cluster(nodes) => d.field(
                "nodes",
                &nodes.iter().map(|n| redacted(n)).collect::<Vec<_>>(),
            ),
        };
        d.field("prefix", &self.prefix)
            .field("instance", &self.instance)
            .field("sync_interval", &self.sync_interval)
            .field("fleet_trials", &self.fleet_trials)
            .field("lease_ttl", &self.lease_ttl)
            .field("timeout", &self.timeout)
            .field("aggregate", &self.aggregate)
            .finish_non_exhaustive()
    }
}

/// A fleet setting that cannot work, or an attach that cannot start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// A setting out of range; names the setting.
    #[error("invalid fleet setting `{field}`: {reason}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// `attach` was called outside a tokio runtime.
    #[error("fleet sync needs a tokio runtime (call attach from within one)")]
    NoRuntime,
    /// The breaker already has a fleet sync with a trial cap.
    #[error("this breaker already has a fleet sync with fleet_trials")]
    AlreadyAttached,
}

const DEFAULT_INTERVAL: Duration = Duration::from_millis(50);

impl FleetConfig {
    /// Sync through the Redis at `url` (`redis://127.0.0.1:6379`), with defaults: prefix
    /// `breakerbox`, a random instance id, `sync_interval` 50 ms, a fleet-wide cap of one
    /// instance in HALF-OPEN, `lease_ttl` 5 s, a 250 ms timeout per Redis round trip.
    pub fn new(url: impl Into<String>) -> Self {
        Self::with_servers(Servers::Single(url.into()))
    }

    /// Sync through a Redis Cluster, reached first through `nodes` (URLs of some of its nodes,
    /// `redis://127.0.0.1:7000`; the others are discovered), with the defaults of
    /// [`new`](Self::new). Each breaker's keys live in one hash slot, and its scripts and
    /// reads run on the primary that owns it (see the module doc). `attach` refuses an empty
    /// list, more than 1000 nodes, or an address that does not parse (`FleetError::Invalid`
    /// naming `nodes`).
    pub fn cluster<I, S>(nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_servers(Servers::Cluster(
            nodes.into_iter().map(Into::into).collect(),
        ))
    }

    fn with_servers(servers: Servers) -> Self {
        FleetConfig {
            servers,
            prefix: "breakerbox".into(),
            instance: format!("{}-{:08x}", std::process::id(), fastrand::u32(..)),
            sync_interval: DEFAULT_INTERVAL,
            fleet_trials: Some(1),
            lease_ttl: Duration::from_secs(5),
            timeout: Duration::from_millis(250),
            aggregate: false,
            on_event: None,
            on_breaker_event: None,
        }
    }

    /// Trip on the fleet's window as well as the local one: see the module doc. Needs a rate
    /// rule in the breaker's configuration (`attach` refuses otherwise). Off by default.
    pub fn aggregate(mut self, on: bool) -> Self {
        self.aggregate = on;
        self
    }

    /// Key namespace, so several services can share one Redis (not empty; no `|`, `{` or `}`:
    /// the keys' hash tag is the breaker's name).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// This instance's id in published records (no `|`, not empty; unique in the fleet).
    pub fn instance(mut self, id: impl Into<String>) -> Self {
        self.instance = id.into();
        self
    }

    /// How often the task reads the fleet state (1 ms ..= 60 s). Other instances apply a trip
    /// within about one interval.
    pub fn sync_interval(mut self, d: Duration) -> Self {
        self.sync_interval = d;
        self
    }

    /// At most `p` instances HALF-OPEN at once across the fleet (`None`: no fleet cap, each
    /// instance's own `half_open_permits` only).
    pub fn fleet_trials(mut self, p: Option<u32>) -> Self {
        self.fleet_trials = p;
        self
    }

    /// Lifetime of a trial lease not refreshed (a crashed holder's lease lapses after this);
    /// more than two sync intervals.
    pub fn lease_ttl(mut self, d: Duration) -> Self {
        self.lease_ttl = d;
        self
    }

    /// Timeout of each Redis round trip (and of connecting); 1 ms ..= 60 s.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Receives the task's [`FleetEvent`]s (on the task; keep it quick). A panic is caught.
    pub fn on_event(mut self, f: impl Fn(&FleetEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(f));
        self
    }

    /// Receives the task's [`FleetEvent`]s with the name of the breaker they are about (as
    /// [`on_event`](Self::on_event), which is called too when set): the listener to use when
    /// one configuration syncs many breakers, as
    /// [`attach_registry`](Self::attach_registry) does.
    pub fn on_breaker_event(
        mut self,
        f: impl Fn(&str, &FleetEvent) + Send + Sync + 'static,
    ) -> Self {
        self.on_breaker_event = Some(Arc::new(f));
        self
    }

    /// Checks every setting, as [`attach`](Self::attach) does first (without connecting):
    /// `FleetError::Invalid` naming the first setting out of range.
    pub fn check(&self) -> Result<(), FleetError> {
        self.validate().map(drop)
    }

    /// Checks every setting; the client for the servers.
    pub(super) fn validate(&self) -> Result<Client, FleetError> {
        let invalid = |field, reason: &str| {
            Err(FleetError::Invalid {
                field,
                reason: reason.to_string(),
            })
        };
        let ms = Duration::from_millis(1);
        let minute = Duration::from_secs(60);
        if self.prefix.is_empty() || self.prefix.contains(['|', '{', '}']) {
            return invalid("prefix", "must be non-empty, without `|`, `{` or `}`");
        }
        if self.instance.is_empty() || self.instance.contains('|') {
            return invalid("instance", "must be non-empty, without `|`");
        }
        if !(ms..=minute).contains(&self.sync_interval) {
            return invalid("sync_interval", "must be within 1ms ..= 60s");
        }
        if !(ms..=minute).contains(&self.timeout) {
            return invalid("timeout", "must be within 1ms ..= 60s");
        }
        if self.fleet_trials == Some(0) {
            return invalid(
                "fleet_trials",
                "must be at least 1 (or None for no fleet cap)",
            );
        }
        if self.lease_ttl <= 2 * self.sync_interval || self.lease_ttl > Duration::from_secs(3600) {
            return invalid(
                "lease_ttl",
                "must be more than two sync intervals and at most 1h",
            );
        }
        Client::open(&self.servers, self.timeout)
    }
}
