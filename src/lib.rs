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
//! ## Guides
//!
//! In the repository, beside the README (every Rust snippet in them is compiled as a doc test
//! of this crate, features as each guide states):
//!
//! - `docs/semantics.md`: the calls, states and transitions, windows, generations, listeners;
//! - `docs/configuration.md`: every setting, its default and range; config files;
//! - `docs/http.md`: the `tower` layer, the `reqwest` middleware, the dashboard;
//! - `docs/fleet.md`: fleet mode through Redis (and `docs/fleet-guarantees.md`);
//! - `python/README.md`: the Python package over the same core;
//! - `docs/verification.md`: loom models, fuzzing, Miri;
//! - `docs/benchmarks.md` (and `BENCHMARKS.md`): the figures against the peers, the soak test;
//! - `docs/resilience4j.md`: coming from resilience4j;
//! - `docs/limits.md`: known limits;
//! - `docs/design.md`: where the code lives and how the hot paths stay lock-free.
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
mod classify;
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

// The README and the guides: every Rust snippet in them is a doc test. The HTTP and fleet
// guides need their features (`cargo test --all-features` runs them all).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/semantics.md")]
struct SemanticsDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/configuration.md")]
struct ConfigurationDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/resilience4j.md")]
struct Resilience4jDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/limits.md")]
struct LimitsDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/design.md")]
struct DesignDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/verification.md")]
struct VerificationDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/benchmarks.md")]
struct BenchmarksDoctests;
#[cfg(all(doctest, feature = "axum", feature = "reqwest"))]
#[doc = include_str!("../docs/http.md")]
struct HttpDoctests;
#[cfg(all(doctest, feature = "redis"))]
#[doc = include_str!("../docs/fleet.md")]
struct FleetDoctests;

#[cfg(feature = "redis")]
pub mod fleet;
#[cfg(feature = "metrics")]
pub mod observe;
#[cfg(feature = "reqwest")]
pub mod reqwest;
#[cfg(feature = "tower")]
pub mod tower;

pub use backoff::{OpenWait, WaitFn};
pub use breaker::Builder;
pub use breaker::{CircuitBreaker, DefaultClock};
pub use classify::{Classification, Rule, MAX_SOURCE_DEPTH};
#[cfg(not(breakerbox_loom))]
pub use clock::QuantaClock;
pub use clock::{Clock, ManualClock, COARSE_GRANULARITY};
pub use config::{Config, ConfigError, HalfOpenDecision, WindowConfig};
pub use error::{CallError, InvalidOpenWait, RegistryFull, Rejected, ZeroCapacity};
pub use events::{Event, EventKind, Listener, Outcome, Transition, TransitionReason};
pub use metrics::{Metrics, PrometheusText};
#[cfg(feature = "metrics")]
pub use observe::{install_metrics, metrics_listener};
pub use permit::{OwnedPermit, Permit};
pub use policy::TripReason;
pub use registry::Registry;
pub use state::{State, UnknownState, MAX_HALF_OPEN, MAX_OPEN_WAIT, MAX_RATE_TRIALS};
