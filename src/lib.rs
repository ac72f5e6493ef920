//! # breakerbox
//!
//! A lock-free circuit breaker. One atomic word holds the state; sliding windows in lock-free
//! rings hold recent outcomes; a coarse clock keeps time off the hot path.
//!
//! ```
//! use breakerbox::{CallError, CircuitBreaker};
//! use std::time::Duration;
//!
//! let breaker = CircuitBreaker::builder()
//!     .failure_rate_threshold(0.5)   // open when half the calls in the window fail,
//!     .count_window(20)              // over the last 20 calls,
//!     .minimum_calls(10)             // once there are at least 10 of them;
//!     .open_wait(Duration::from_secs(30))
//!     .build()?;
//!
//! match breaker.call(|| fetch_quote()) {
//!     Ok(quote) => println!("{quote}"),
//!     Err(CallError::Rejected(r)) => println!("not calling: {r}"),
//!     Err(CallError::Failed(e)) => println!("call failed: {e}"),
//!     Err(CallError::Timeout(_)) => unreachable!("sync calls have no timeout"),
//! }
//! # fn fetch_quote() -> Result<String, std::io::Error> { Ok("ok".into()) }
//! # Ok::<(), breakerbox::ConfigError>(())
//! ```
//!
//! ## States
//!
//! | state | admits | moves to |
//! |---|---|---|
//! | CLOSED | every call; outcomes go to the window | OPEN when a trip rule fires |
//! | OPEN | none; the rejection says when to retry | HALF-OPEN at the first call after the wait |
//! | HALF-OPEN | at most `half_open_permits` trial calls in flight | CLOSED after `half_open_successes` successes; OPEN on a failure |
//! | FORCED_OPEN | none | CLOSED on `reset` |
//! | DISABLED | every call; never trips | CLOSED on `reset` |
//! | METRICS_ONLY | every call; records, never trips | CLOSED on `reset` |
//!
//! Every transition increments a generation stored in the state word; a permit remembers its
//! generation, and an outcome reported after the breaker moved on is *late* and ignored.
//!
//! ## Layout
//! - [`state`](crate::State) — the packed atomic word and its CAS transitions (`src/state.rs`);
//! - windows — count and time sliding windows (`src/window/`);
//! - trip rules — pure functions over window counts (`src/policy.rs`);
//! - [`OpenWait`] — fixed or exponential open waits (`src/backoff.rs`);
//! - [`Config`], [`ConfigError`] (`src/config/`), [`Builder`] (`src/breaker/builder.rs`);
//! - [`Clock`], [`QuantaClock`], [`ManualClock`] (`src/clock.rs`);
//! - [`Permit`], [`OwnedPermit`] — the drop guard (`src/permit.rs`);
//! - events, [`Metrics`], [`Registry`].

#![warn(missing_docs)]
#![forbid(unsafe_code)]
// docs.rs (all features, `--cfg docsrs`): label every feature-gated item with its feature.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(docsrs, doc(auto_cfg(hide(breakerbox_loom))))]

mod backoff;
mod breaker;
mod clock;
mod config;
mod error;
mod events;
mod metrics;
mod permit;
mod policy;
mod registry;
mod state;
mod stripes;
mod sync;
#[cfg(not(breakerbox_loom))]
mod timer;
mod window;

/// loom models of the fleet trial gate (only under `--cfg breakerbox_loom`).
#[cfg(breakerbox_loom)]
#[doc(hidden)]
pub use breaker::gate_models as __loom_gate_models;
/// loom models of the windows (only under `--cfg breakerbox_loom`; run by `loom-tests`).
#[cfg(breakerbox_loom)]
#[doc(hidden)]
pub use window::models as __loom_window_models;

#[cfg(feature = "redis")]
pub mod fleet;
#[cfg(feature = "metrics")]
pub mod observe;
#[cfg(feature = "reqwest")]
pub mod reqwest;
#[cfg(feature = "tower")]
pub mod tower;

pub use backoff::OpenWait;
pub use breaker::Builder;
pub use breaker::{CircuitBreaker, DefaultClock};
#[cfg(not(breakerbox_loom))]
pub use clock::QuantaClock;
pub use clock::{Clock, ManualClock, COARSE_GRANULARITY};
pub use config::{Config, ConfigError, HalfOpenDecision, WindowConfig};
pub use error::{CallError, InvalidOpenWait, RegistryFull, Rejected, ZeroCapacity};
pub use events::{Event, EventKind, Listener, Outcome, Transition, TransitionReason};
pub use metrics::Metrics;
#[cfg(feature = "metrics")]
pub use observe::{install_metrics, metrics_listener};
pub use permit::{OwnedPermit, Permit};
pub use policy::TripReason;
pub use registry::Registry;
pub use state::{State, UnknownState, MAX_HALF_OPEN, MAX_OPEN_WAIT, MAX_RATE_TRIALS};
