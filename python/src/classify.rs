//! Exception classification: which exceptions a breaker counts as failures, ignores, or
//! counts as successes.

use crate::convert::type_name;
use breakerbox::Outcome;
use pyo3::exceptions::{PyException, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple, PyType};

/// Which exceptions count against the dependency.
pub(crate) struct Classify {
    /// A type or tuple of types (`isinstance`), or `None` with `predicate` set.
    expected: Option<Py<PyAny>>,
    /// A callable `exc -> bool` (`True`: failure).
    predicate: Option<Py<PyAny>>,
    /// Types whose exceptions record nothing.
    exclude: Option<Py<PyAny>>,
    /// Types whose exceptions are failures that open the breaker at once (`Outcome::Trip`).
    trip: Option<Py<PyAny>>,
}

impl Classify {
    pub(crate) fn new(
        py: Python<'_>,
        expected: Option<Bound<'_, PyAny>>,
        exclude: Option<Bound<'_, PyAny>>,
        trip: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let (expected, predicate) = match expected {
            None => (Some(py.get_type::<PyException>().into_any().unbind()), None),
            Some(v) => match exception_types(py, &v) {
                Some(Ok(t)) => (Some(t), None),
                Some(Err(bad)) => return Err(not_exception_class("expected_exception", &bad)),
                None if v.is_callable() && !v.is_instance_of::<PyType>() => {
                    (None, Some(v.unbind()))
                }
                None => {
                    return Err(PyTypeError::new_err(format!(
                        "`expected_exception` must be an exception class, a tuple or list of \
                         them, or a callable taking the exception, not {}",
                        describe(&v)
                    )))
                }
            },
        };
        let exclude = match exclude {
            None => None,
            Some(v) => match exception_types(py, &v) {
                Some(Ok(t)) => Some(t),
                Some(Err(bad)) => return Err(not_exception_class("exclude", &bad)),
                None => {
                    return Err(PyTypeError::new_err(format!(
                        "`exclude` must be an exception class or a tuple or list of them, not {}",
                        describe(&v)
                    )))
                }
            },
        };
        let trip = match trip {
            None => None,
            Some(v) => match exception_types(py, &v) {
                Some(Ok(t)) => Some(t),
                Some(Err(bad)) => return Err(not_exception_class("trip_on", &bad)),
                None => {
                    return Err(PyTypeError::new_err(format!(
                        "`trip_on` must be an exception class or a tuple or list of them, not {}",
                        describe(&v)
                    )))
                }
            },
        };
        Ok(Classify {
            expected,
            predicate,
            exclude,
            trip,
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
        // After `exclude` (ignore first), before `expected_exception`: as the core's
        // `Classification` orders ignore, trip and record rules.
        if let Some(t) = &self.trip {
            if err.is_instance(py, t.bind(py)) {
                return Outcome::Trip;
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
        Outcome::Trip => "trip",
    }
}

/// `v` as exception classes for `isinstance`: `None` when it is neither a class nor a tuple or
/// list; `Some(Err(item))` naming the first item that is a class but not an exception class
/// (or not a class at all, inside a tuple or list).
fn exception_types<'py>(
    py: Python<'py>,
    v: &Bound<'py, PyAny>,
) -> Option<Result<Py<PyAny>, Bound<'py, PyAny>>> {
    let base = py.get_type::<pyo3::exceptions::PyBaseException>();
    let is_exc = |x: &Bound<'py, PyAny>| {
        x.downcast::<PyType>()
            .map(|t| t.is_subclass(&base).unwrap_or(false))
            .unwrap_or(false)
    };
    if v.is_instance_of::<PyType>() {
        return Some(if is_exc(v) {
            Ok(v.clone().unbind())
        } else {
            Err(v.clone())
        });
    }
    let items: Vec<Bound<'py, PyAny>> = if let Ok(t) = v.downcast::<PyTuple>() {
        t.iter().collect()
    } else if let Ok(l) = v.downcast::<PyList>() {
        l.iter().collect()
    } else {
        return None;
    };
    if let Some(bad) = items.iter().find(|x| !is_exc(x)) {
        return Some(Err(bad.clone()));
    }
    Some(
        PyTuple::new(py, items)
            .map(|t| t.into_any().unbind())
            .map_err(|_| v.clone()),
    )
}

fn describe(v: &Bound<'_, PyAny>) -> String {
    match v.downcast::<PyType>() {
        Ok(t) => format!(
            "the class {}",
            t.name().map(|n| n.to_string()).unwrap_or_default()
        ),
        Err(_) => type_name(v),
    }
}

fn not_exception_class(arg: &str, bad: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!(
        "`{arg}` must name exception classes (subclasses of BaseException); {} is not one",
        describe(bad)
    ))
}
