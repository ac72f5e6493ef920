//! `breakerbox_rs._breakerbox`: the native core of the Python package.
//!
//! Everything here runs with the GIL held: the breaker's operations are a few atomic
//! instructions that never block, so releasing the GIL around them would cost more than they
//! do. No Rust lock is held while Python code runs (the guarded function, a classifier, an
//! event callback); errors raised by an event callback are reported as unraisable and never
//! unwind into the core.

mod awaitable;
mod breaker;
mod classify;
mod clock;
mod config;
mod convert;
mod decorator;
mod errors;
mod events;
mod fleet;
mod gil;
mod metrics;
mod permit;
mod registry;

use awaitable::AsyncGuarded;
use breaker::Breaker;
use breakerbox::State;
use decorator::Guarded;
use permit::Permit;
use pyo3::prelude::*;
use registry::Registry;

/// States, for comparisons: `breaker.state == OPEN`.
fn add_states(m: &Bound<'_, PyModule>) -> PyResult<()> {
    for s in State::ALL {
        m.add(s.as_str().to_uppercase().as_str(), s.as_str())?;
    }
    Ok(())
}

#[pymodule]
fn _breakerbox(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Breaker>()?;
    m.add_class::<Guarded>()?;
    m.add_class::<AsyncGuarded>()?;
    awaitable::add_call_type(m)?;
    m.add_class::<Permit>()?;
    m.add_class::<Registry>()?;
    m.add_class::<clock::ManualClock>()?;
    fleet::register(m)?;
    gil::register(m)?;
    add_states(m)?;
    Ok(())
}
