//! Configuration: the [`Config`] data and its validation. The [`Builder`](crate::Builder),
//! which builds a breaker from it, sits with what it builds (`src/breaker/builder.rs`).
//!
//! `Config` is plain data (serde-capable behind the `serde` feature, for config files). Nothing
//! builds a breaker from it without [`Config::validate`]: invalid values are rejected with a
//! [`ConfigError`] that names the field.
//!
//! ## Layout
//! - `data.rs` — [`Config`], [`WindowConfig`], [`HalfOpenDecision`] and their defaults;
//! - `off.rs` — how an optional rule is written in a config file (feature `serde`);
//! - `validate.rs` — [`ConfigError`], the limits and [`Config::validate`].

mod data;
#[cfg(feature = "serde")]
mod off;
mod validate;

pub use data::{Config, HalfOpenDecision, WindowConfig};
pub use validate::ConfigError;
