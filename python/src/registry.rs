//! The `Registry` class: named breakers created on first use.

use crate::breaker::Breaker;
use crate::classify::Classify;
use crate::clock::{clock_arg, PyClock};
use crate::config::parse_config;
use crate::convert::to_u32;
use crate::errors::{config_error, core_config_error};
use crate::events::listener;
use crate::metrics::metrics_dict;
use breakerbox::Metrics;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::sync::Arc;

/// Named breakers created on first use. `breakerbox_rs.Registry` wraps it.
#[pyclass(frozen, module = "breakerbox_rs._breakerbox", name = "Registry")]
pub(crate) struct Registry {
    pub(crate) inner: breakerbox::Registry<PyClock>,
}

#[pymethods]
impl Registry {
    #[new]
    #[pyo3(signature = (*, capacity_limit=None, clock=None, **kwargs))]
    fn new(
        py: Python<'_>,
        capacity_limit: Option<Bound<'_, PyAny>>,
        clock: Option<Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let (config, name) = parse_config(py, kwargs)?;
        if name.is_some() {
            return Err(PyTypeError::new_err(
                "a registry's breakers are named by `get(name)`; `name` is not a setting",
            ));
        }
        let clock = clock_arg(clock.as_ref())?;
        let mut inner = breakerbox::Registry::with_clock(config, clock)
            .map_err(|e| core_config_error(py, e))?;
        if let Some(l) = capacity_limit {
            let n = to_u32(py, "capacity_limit", &l)?;
            inner = inner.with_capacity_limit(n as usize).map_err(|e| {
                config_error(
                    py,
                    "capacity_limit",
                    format!("invalid `capacity_limit`: {e}"),
                )
            })?;
        }
        Ok(Registry { inner })
    }

    /// Sets the configuration of the breaker `name` (applies when it is created).
    #[pyo3(signature = (name, **kwargs))]
    fn configure(
        &self,
        py: Python<'_>,
        name: String,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let (config, n) = parse_config(py, kwargs)?;
        if n.is_some() {
            return Err(PyTypeError::new_err("`name` is the first argument"));
        }
        self.inner
            .configure(name, config)
            .map_err(|e| core_config_error(py, e))
    }

    /// The breaker `name`, created on first use (the shared overflow breaker once the
    /// registry is full), classifying exceptions with `expected_exception` / `exclude` /
    /// `trip_on`.
    #[pyo3(signature = (name, expected_exception=None, exclude=None, trip_on=None))]
    fn get(
        &self,
        py: Python<'_>,
        name: &str,
        expected_exception: Option<Bound<'_, PyAny>>,
        exclude: Option<Bound<'_, PyAny>>,
        trip_on: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Breaker> {
        let classify = Arc::new(Classify::new(py, expected_exception, exclude, trip_on)?);
        let inner = self.inner.get(name);
        Ok(Breaker {
            py_name: PyString::new(py, inner.name()).unbind(),
            inner,
            classify,
        })
    }

    /// The names of the breakers created so far.
    fn names(&self) -> Vec<String> {
        self.inner.names()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Metrics of every breaker, as dicts.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.inner
            .metrics()
            .iter()
            .map(|m| metrics_dict(py, m))
            .collect()
    }

    /// Metrics of every breaker in the Prometheus text format.
    fn prometheus(&self) -> String {
        Metrics::to_prometheus(&self.inner.metrics())
    }

    /// A listener on every breaker, existing and future (see `Breaker.on_event`).
    #[pyo3(signature = (callback, kinds=None))]
    fn on_event(&self, callback: Bound<'_, PyAny>, kinds: Option<Vec<String>>) -> PyResult<()> {
        if !callback.is_callable() {
            return Err(PyTypeError::new_err("`callback` must be callable"));
        }
        self.inner.on_event(listener(callback.unbind(), kinds)?);
        Ok(())
    }
}
