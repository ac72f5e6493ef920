//! Fleet mode (feature `redis`): breakers of the same name in several service instances agree
//! through Redis, without any call ever waiting on it.
//!
//! Each attached breaker gets one background tokio task. The local lock-free breaker makes every
//! per-call decision as before; the task only watches and steers it:
//!
//! - **Transitions out.** A transition listener ([`CircuitBreaker::on_transition`], which costs
//!   the calls nothing) wakes the task when the breaker trips or a trial closes it; the task
//!   publishes the new state under `<prefix>:{<name>}:state` as `open|epoch|instance` (with the
//!   time left as the key's expiry) or `closed|epoch|instance`.
//! - **Transitions in.** Every `sync_interval` the task reads that key. A record newer than any it
//!   has seen, from another instance, is applied with a manual transition: a CLOSED breaker
//!   goes OPEN for the time the key has left
//!   ([`transition_to_open_for`](CircuitBreaker::transition_to_open_for)); an OPEN or
//!   HALF-OPEN one goes CLOSED ([`transition_to_closed`](CircuitBreaker::transition_to_closed)).
//!   (A HALF-OPEN breaker is not re-opened by another instance's record: its own trials, run
//!   under a fleet lease, decide.) Epochs are Redis
//!   server time in µs, made strictly increasing by the publishing script, so they survive a
//!   Redis restart and no instance's clock is involved.
//! - **Fleet-wide trials.** With `fleet_trials = Some(p)`, an OPEN breaker whose wait has ended
//!   stays OPEN until its task holds one of `p` trial leases (a sorted set under
//!   `<prefix>:{<name>}:trials`, scored by expiry and taken by an atomic script, so a crashed
//!   instance's lease lapses after `lease_ttl`). So at most `p` instances are HALF-OPEN at once,
//!   and the fleet has at most `p * half_open_permits` trial calls in flight (set
//!   `half_open_permits = 1` to make `p` the number of trial calls). The lease is refreshed
//!   while HALF-OPEN and given back when the breaker leaves it.
//! - **Redis down, slow or wrong.** Every Redis round trip has a timeout. On a connection error
//!   the task emits [`FleetEvent::Unavailable`], opens the gate (the breaker is plain local
//!   again: its own trials, no lease) and reconnects with exponential backoff; when Redis is
//!   back it emits [`FleetEvent::Connected`] and syncs again. A transition to publish stays
//!   to publish (recomputed from the breaker each round, so only while still current) until
//!   Redis has acknowledged it; after a reconnect, or when the state key is found missing,
//!   an instance publishes its still-current opening again, since Redis may have lost it.
//!   Every value read from Redis is untrusted: a value it cannot parse or that is out of
//!   range (an epoch more than 10 s ahead of Redis's clock, impossible window counts), or a
//!   key of the wrong type, gives [`FleetEvent::Malformed`] (once per distinct value) and is
//!   otherwise ignored; the scripts overwrite a bad sequence and delete bad counts entries,
//!   leases and keys of the wrong type, and an unusable record is published over.
//!   Nothing panics; a panicking event callback is caught.
//!
//! - **Fleet window (optional, `aggregate(true)`).** Each round a CLOSED instance writes its
//!   window counts (calls, failures, slow calls) into the hash `<prefix>:{<name>}:counts`, stamped
//!   with an expiry of three sync intervals, and gets back the sum over every unexpired instance
//!   (one atomic script; expired and unparseable entries are dropped). Once the fleet holds
//!   `minimum_calls` calls and a rate rule's threshold is reached on the sums, the instance
//!   trips (a fleet trip: OPEN for the first backoff step's wait) and publishes it, so the
//!   fleet opens even when no single instance has seen enough calls. The fleet window is the
//!   union of the instances' own windows.
//!
//! - **Keys and Redis Cluster.** Every key of a breaker carries its name as the hash tag
//!   (`<prefix>:{<name>}:...`, with `%`, `{` and `}` of the name percent-escaped), so all of
//!   them are in one hash slot. With [`FleetConfig::cluster`] the task connects to a Redis
//!   Cluster through the same protocol as to one server: each script and each read (with the
//!   `TIME` that bounds epochs) runs on the primary that owns the breaker's slot.
//!
//! Only automatic transitions are published (trips, failed or timed-out trials, trial
//! closes, fleet trips); other manual ones, including those the task applies, are not, so two
//! instances never echo each other.

// One job per file:
// - `config.rs` — `FleetConfig`: the settings, their setters and their validation;
// - `conn.rs` — the connection, to one server or a cluster, behind one `ConnectionLike`;
// - `attach.rs` — `FleetConfig::attach` and the `FleetSync` handle that stops the task;
// - `registry.rs` — `FleetConfig::attach_registry`: every breaker of a registry, existing and
//   future, and the `RegistrySync` handle that stops them;
// - `hook.rs` — which local transitions are published, and the flag that keeps applied ones
//   from being published back;
// - `task.rs` — the sync task: its loop, one round, applying the fleet's record;
// - `scripts.rs` — the keys, the Lua scripts and every round trip to the server;
// - `record.rs` — the one place that parses and checks what the server returns;
// - `events.rs` — `FleetEvent`, what the task reports.

// The module doc links to the breaker's methods.
#[cfg(doc)]
use crate::CircuitBreaker;

mod attach;
mod config;
mod conn;
mod events;
mod hook;
mod record;
mod registry;
mod scripts;
mod task;

pub use attach::FleetSync;
pub use config::{FleetConfig, FleetError};
pub use events::FleetEvent;
pub use registry::RegistrySync;
