//! Exception classification: which exceptions a breaker counts as failures, ignores, or
//! counts as successes.

use crate::convert::type_name;
use breakerbox::Outcome;
use pyo3::exceptions::{PyException, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyTuple, PyType};

/// Which exceptions count against the dependency.
pub(crate) struct Classify {
    /// A type or tuple of types (`isinstance`), or `None` with `predicate` set.
    expected: Option<Py<PyAny>>,
    /// A callable `exc -> bool` (`True`: failure).
    predicate: Option<Py<PyAny>>,
    /// Types whose exceptions record nothing.
    exclude: Option<Py<PyAny>>,
}

impl Classify {
    pub(crate) fn new(
        py: Python<'_>,
        expected: Option<Bound<'_, PyAny>>,
        exclude: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let is_types = |v: &Bound<'_, PyAny>| -> bool {
            v.is_instance_of::<PyType>()
                || v.downcast::<PyTuple>()
                    .map(|t| t.iter().all(|x| x.is_instance_of::<PyType>()))
                    .unwrap_or(false)
        };
        let (expected, predicate) = match expected {
            None => (Some(py.get_type::<PyException>().into_any().unbind()), None),
            Some(v) if is_types(&v) => (Some(v.unbind()), None),
            Some(v) if v.is_callable() => (None, Some(v.unbind())),
            Some(v) => {
                return Err(PyTypeError::new_err(format!(
                    "`expected_exception` must be an exception type, a tuple of them, or a \
                     callable taking the exception, not {}",
                    type_name(&v)
                )))
            }
        };
        let exclude = match exclude {
            None => None,
            Some(v) if is_types(&v) => Some(v.unbind()),
            Some(v) => {
                return Err(PyTypeError::new_err(format!(
                    "`exclude` must be an exception type or a tuple of them, not {}",
                    type_name(&v)
                )))
            }
        };
        Ok(Classify {
            expected,
            predicate,
            exclude,
        })
    }

    /// The outcome of a call that raised `err`.
    pub(crate) fn outcome(&self, py: Python<'_>, err: &PyErr) -> Outcome {
        // Not an `Exception`: cancellation, KeyboardInterrupt, SystemExit, GeneratorExit.
        // They say nothing about the dependency: nothing recorded, a trial slot given back.
        if !err.is_instance_of::<PyException>(py) {
            return Outcome::Ignore;
        }
        if let Some(ex) = &self.exclude {
            if err.is_instance(py, ex.bind(py)) {
                return Outcome::Ignore;
            }
        }
        if let Some(p) = &self.predicate {
            return match p
                .bind(py)
                .call1((err.value(py),))
                .and_then(|r| r.is_truthy())
            {
                Ok(true) => Outcome::Failure,
                Ok(false) => Outcome::Success,
                Err(e) => {
                    // A broken classifier: the call counts as failed, the error is reported.
                    e.write_unraisable(py, Some(p.bind(py)));
                    Outcome::Failure
                }
            };
        }
        match &self.expected {
            Some(t) if err.is_instance(py, t.bind(py)) => Outcome::Failure,
            // Raised, but not an expected exception: the dependency answered (as
            // `circuitbreaker` and pybreaker count it).
            _ => Outcome::Success,
        }
    }
}

pub(crate) fn outcome_str(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::Failure => "failure",
        Outcome::Ignore => "ignore",
    }
}
