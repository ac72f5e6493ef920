//! The `Permit` class: permission to make one call, reported by hand or as a context
//! manager.

use crate::classify::{outcome_str, Classify};
use breakerbox::OwnedPermit;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::sync::Arc;

/// Permission to make one call. Report with `success()`, `failure()`, `ignore()` or
/// `exception(exc)`; as a context manager it reports by itself. Dropped unreported: nothing is
/// recorded and a half-open trial slot is given back.
#[pyclass(module = "breakerbox_rs._breakerbox")]
pub(crate) struct Permit {
    pub(crate) permit: Option<OwnedPermit<crate::clock::PyClock>>,
    pub(crate) classify: Arc<Classify>,
}

impl Permit {
    fn take(&mut self) -> PyResult<OwnedPermit<crate::clock::PyClock>> {
        self.permit
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("this permit's outcome was already reported"))
    }
}

#[pymethods]
impl Permit {
    /// The call succeeded.
    fn success(&mut self) -> PyResult<()> {
        self.take()?.success();
        Ok(())
    }

    /// The call failed.
    fn failure(&mut self) -> PyResult<()> {
        self.take()?.failure();
        Ok(())
    }

    /// The call failed in a way that says the dependency will not recover soon: the failure
    /// is recorded and the breaker opens at once (from closed or half-open).
    fn trip(&mut self) -> PyResult<()> {
        self.take()?.record(breakerbox::Outcome::Trip);
        Ok(())
    }

    /// The call says nothing about the dependency: nothing is recorded, a trial slot is
    /// given back (also what a cancelled call does).
    fn ignore(&mut self) -> PyResult<()> {
        self.take()?.ignore();
        Ok(())
    }

    /// Reports the call as having raised `exc`, classified by the breaker's rules; returns the
    /// outcome recorded (`"failure"`, `"success"`, `"ignore"` or `"trip"`).
    fn exception(&mut self, py: Python<'_>, exc: Bound<'_, PyAny>) -> PyResult<&'static str> {
        if !exc.is_instance_of::<pyo3::exceptions::PyBaseException>() {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "`exception` takes the exception the call raised, not {}",
                crate::convert::type_name(&exc)
            )));
        }
        let p = self.take()?;
        let o = self.classify.outcome(py, &PyErr::from_value(exc));
        p.record(o);
        Ok(outcome_str(o))
    }

    /// Whether the outcome is still to be reported.
    #[getter]
    fn pending(&self) -> bool {
        self.permit.is_some()
    }

    /// Whether this is a half-open trial permit.
    #[getter]
    fn is_trial(&self) -> bool {
        self.permit.as_ref().is_some_and(|p| p.is_trial())
    }

    /// The generation of the state that admitted the call (`None` once reported).
    #[getter]
    fn generation(&self) -> Option<u32> {
        self.permit.as_ref().map(|p| p.generation())
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Reports success, or the classified exception; never suppresses it.
    fn __exit__(
        &mut self,
        py: Python<'_>,
        _ty: Option<Bound<'_, PyAny>>,
        exc: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if let Some(p) = self.permit.take() {
            match exc {
                Some(e) if !e.is_none() => {
                    p.record(self.classify.outcome(py, &PyErr::from_value(e)))
                }
                _ => p.success(),
            }
        }
        Ok(false)
    }
}
