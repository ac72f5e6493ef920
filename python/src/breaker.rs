//! The `Breaker` class: the core `CircuitBreaker` plus the exception classification.

use crate::awaitable::AsyncGuarded;
use crate::classify::{outcome_str, Classify};
use crate::clock::{clock_arg, PyClock};
use crate::config::{config_dict, parse_config};
use crate::convert::to_duration;
use crate::decorator::Guarded;
use crate::errors::{config_error, core_config_error, rejected_error};
use crate::events::listener;
use crate::metrics::metrics_dict;
use crate::permit::Permit;
use breakerbox::{CircuitBreaker, Metrics};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use std::sync::Arc;

/// The native breaker: the core `CircuitBreaker` plus the exception classification.
/// `breakerbox_rs.CircuitBreaker` wraps it; use that.
#[pyclass(frozen, module = "breakerbox_rs._breakerbox", name = "Breaker")]
pub(crate) struct Breaker {
    pub(crate) inner: Arc<CircuitBreaker<PyClock>>,
    pub(crate) classify: Arc<Classify>,
    /// The name as a Python string, for rejections.
    pub(crate) py_name: Py<PyString>,
}

impl Breaker {
    #[inline]
    pub(crate) fn finish<'py>(
        &self,
        py: Python<'py>,
        permit: breakerbox::Permit<'_, PyClock>,
        result: PyResult<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match result {
            Ok(v) => {
                permit.success();
                Ok(v)
            }
            Err(e) => {
                permit.record(self.classify.outcome(py, &e));
                Err(e)
            }
        }
    }
}

#[pymethods]
impl Breaker {
    #[new]
    #[pyo3(signature = (*, expected_exception=None, exclude=None, trip_on=None, clock=None, **kwargs))]
    fn new(
        py: Python<'_>,
        expected_exception: Option<Bound<'_, PyAny>>,
        exclude: Option<Bound<'_, PyAny>>,
        trip_on: Option<Bound<'_, PyAny>>,
        clock: Option<Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let classify = Arc::new(Classify::new(py, expected_exception, exclude, trip_on)?);
        let (config, name) = parse_config(py, kwargs)?;
        let clock = clock_arg(clock.as_ref())?;
        let mut b = CircuitBreaker::builder().config(config).clock(clock);
        if let Some(n) = name {
            b = b.name(n);
        }
        // Shared from the start: the form that supports `automatic_half_open`.
        let inner = b.build_shared().map_err(|e| core_config_error(py, e))?;
        Ok(Breaker {
            py_name: PyString::new(py, inner.name()).unbind(),
            inner,
            classify,
        })
    }

    /// The breaker's name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The stored state: `closed`, `open`, `half_open`, `forced_open`, `disabled`,
    /// `metrics_only`.
    #[getter]
    fn state(&self) -> &'static str {
        self.inner.state().as_str()
    }

    /// Generation: incremented by every transition.
    #[getter]
    fn generation(&self) -> u32 {
        self.inner.generation()
    }

    /// Whether a call would be admitted now (takes no permit, changes nothing).
    fn would_admit(&self) -> bool {
        self.inner.would_admit()
    }

    /// The effective configuration, as a dict of the keyword arguments.
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        config_dict(py, self.inner.config())
    }

    /// Calls `func(*args, **kwargs)` through the breaker. Raises `CircuitBreakerError` when
    /// it is not admitted; an exception from `func` is classified, recorded and re-raised.
    #[pyo3(signature = (func, /, *args, **kwargs))]
    fn call<'py>(
        &self,
        py: Python<'py>,
        func: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self.inner.try_acquire() {
            Ok(permit) => self.finish(py, permit, func.call(args, kwargs)),
            Err(r) => Err(rejected_error(py, &self.py_name, r)),
        }
    }

    /// A callable that calls `func` through the breaker (the sync decorator); `fallback`, when
    /// given, is called with the same arguments instead of raising `CircuitBreakerError`.
    #[pyo3(signature = (func, fallback=None))]
    fn wrap(
        slf: &Bound<'_, Self>,
        func: Bound<'_, PyAny>,
        fallback: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Guarded> {
        if !func.is_callable() {
            return Err(PyTypeError::new_err("`func` must be callable"));
        }
        Ok(Guarded {
            breaker: slf.clone().unbind(),
            func: func.unbind(),
            fallback: fallback.map(Bound::unbind),
        })
    }

    /// An `async def` function guarded by the breaker: each call returns an awaitable that
    /// takes a permit when first stepped, drives `func`'s coroutine and records its outcome;
    /// `fallback`, when given, is called (and its result awaited when awaitable) instead of
    /// raising `CircuitBreakerError`.
    #[pyo3(signature = (func, fallback=None))]
    fn wrap_async(
        slf: &Bound<'_, Self>,
        func: Bound<'_, PyAny>,
        fallback: Option<Bound<'_, PyAny>>,
    ) -> PyResult<AsyncGuarded> {
        if !func.is_callable() {
            return Err(PyTypeError::new_err("`func` must be callable"));
        }
        if fallback.as_ref().is_some_and(|f| !f.is_callable()) {
            return Err(PyTypeError::new_err("`fallback` must be callable"));
        }
        Ok(AsyncGuarded {
            breaker: slf.clone().unbind(),
            func: func.unbind(),
            fallback: fallback.map(Bound::unbind),
        })
    }

    /// Takes a permit for one call, or raises `CircuitBreakerError`. Report the outcome on the
    /// permit; a permit garbage-collected unreported records nothing and gives a half-open
    /// trial slot back.
    fn acquire(&self, py: Python<'_>) -> PyResult<Permit> {
        match self.inner.try_acquire_owned() {
            Ok(p) => Ok(Permit {
                permit: Some(p),
                classify: Arc::clone(&self.classify),
            }),
            Err(r) => Err(rejected_error(py, &self.py_name, r)),
        }
    }

    /// Like `acquire`, but returns `None` instead of raising.
    fn try_acquire(&self) -> Option<Permit> {
        self.inner.try_acquire_owned().ok().map(|p| Permit {
            permit: Some(p),
            classify: Arc::clone(&self.classify),
        })
    }

    /// The outcome (`"failure"`, `"success"` or `"ignore"`) this breaker gives `exc`.
    fn classify(&self, py: Python<'_>, exc: Bound<'_, PyAny>) -> &'static str {
        outcome_str(self.classify.outcome(py, &PyErr::from_value(exc)))
    }

    /// Forces the breaker open until `reset()`.
    fn force_open(&self) {
        self.inner.force_open()
    }

    /// Admits everything and never trips, until `reset()`.
    fn disable(&self) {
        self.inner.disable()
    }

    /// Records (metrics, events) but never trips, until `reset()`.
    fn metrics_only(&self) {
        self.inner.metrics_only()
    }

    /// Back to CLOSED with an empty window.
    fn reset(&self) {
        self.inner.reset()
    }

    /// OPEN for `seconds` (0.001 ..= 86400) from any state, at the next backoff step.
    fn transition_to_open_for(&self, py: Python<'_>, seconds: Bound<'_, PyAny>) -> PyResult<()> {
        let d = to_duration(py, "seconds", &seconds)?;
        self.inner
            .transition_to_open_for(d)
            .map_err(|e| config_error(py, "seconds", format!("invalid `seconds`: {e}")))
    }

    /// HALF-OPEN now, every trial permit free (nothing if already half-open).
    fn transition_to_half_open(&self) {
        self.inner.transition_to_half_open()
    }

    /// CLOSED with an empty window and the backoff reset (nothing if already closed).
    fn transition_to_closed(&self) {
        self.inner.transition_to_closed()
    }

    /// OPEN -> HALF-OPEN now if the open wait has ended; `True` if this call did it.
    fn half_open_if_due(&self) -> bool {
        self.inner.half_open_if_due()
    }

    /// A snapshot of the counters, as a dict.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        metrics_dict(py, &self.inner.metrics())
    }

    /// The metrics in the Prometheus text format.
    fn prometheus(&self) -> String {
        Metrics::to_prometheus(&[self.inner.metrics()])
    }

    /// Calls `callback(event: dict)` on every event whose kind is in `kinds` (`"transition"`,
    /// `"rejected"`, `"recorded"`, `"late"`; all when `None`).
    #[pyo3(signature = (callback, kinds=None))]
    fn on_event(&self, callback: Bound<'_, PyAny>, kinds: Option<Vec<String>>) -> PyResult<()> {
        if !callback.is_callable() {
            return Err(PyTypeError::new_err("`callback` must be callable"));
        }
        self.inner.on_event(listener(callback.unbind(), kinds)?);
        Ok(())
    }

    /// Removes every event listener.
    fn clear_listeners(&self) {
        self.inner.clear_listeners()
    }

    fn __repr__(&self) -> String {
        format!(
            "<breakerbox Breaker {:?} state={}>",
            self.inner.name(),
            self.inner.state()
        )
    }
}
