//! The Python exceptions raised by the core: `CircuitBreakerError` for a rejection and
//! `ConfigError` for an invalid setting (classes of `breakerbox_rs._errors`, looked up once).

use breakerbox::{ConfigError, Rejected, State};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyString, PyType};
use pyo3::{ffi, intern};

static REJECTED_CLS: GILOnceCell<Py<PyType>> = GILOnceCell::new();
static CONFIG_ERROR_CLS: GILOnceCell<Py<PyType>> = GILOnceCell::new();

fn errors_class<'py>(
    py: Python<'py>,
    cell: &'static GILOnceCell<Py<PyType>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyType>> {
    cell.get_or_try_init(py, || {
        py.import("breakerbox_rs._errors")?
            .getattr(name)?
            .downcast_into::<PyType>()
            .map(Bound::unbind)
            .map_err(PyErr::from)
    })
    .map(|t| t.bind(py))
}

/// The Python name of a core configuration field.
fn py_field(field: &str) -> &str {
    match field {
        "window.size" => "window_size",
        "window.duration" => "window_duration",
        "window.buckets" => "window_buckets",
        "open_wait.wait" | "open_wait.initial" => "open_wait",
        "open_wait.max" => "open_wait_max",
        "open_wait.multiplier" => "open_wait_multiplier",
        f => f,
    }
}

/// A `breakerbox_rs.ConfigError` (a `ValueError`) naming `field`.
pub(crate) fn config_error(py: Python<'_>, field: &str, message: String) -> PyErr {
    match errors_class(py, &CONFIG_ERROR_CLS, "ConfigError") {
        Ok(cls) => match cls.call1((message, field)) {
            Ok(e) => PyErr::from_value(e),
            Err(e) => e,
        },
        Err(e) => e,
    }
}

pub(crate) fn core_config_error(py: Python<'_>, e: ConfigError) -> PyErr {
    let field = py_field(e.field());
    let message = e
        .to_string()
        .replace(&format!("`{}`", e.field()), &format!("`{field}`"));
    config_error(py, field, message)
}

/// Sets `CircuitBreakerError(name, state, retry_after)` as the exception being raised (as a
/// `raise` statement would: chained to an exception being handled) and returns NULL, for a slot
/// to return; no `PyErr` is built on the way.
pub(crate) fn raise_rejected(
    py: Python<'_>,
    name: &Py<PyString>,
    r: Rejected,
) -> *mut ffi::PyObject {
    let cls = match errors_class(py, &REJECTED_CLS, "CircuitBreakerError") {
        Ok(cls) => cls,
        Err(e) => {
            e.restore(py);
            return std::ptr::null_mut();
        }
    };
    let state = match r.state() {
        State::Open => intern!(py, "open").clone(),
        State::HalfOpen => intern!(py, "half_open").clone(),
        State::ForcedOpen => intern!(py, "forced_open").clone(),
        s => PyString::new(py, s.as_str()),
    };
    // SAFETY: the GIL is held; PyTuple_SetItem steals the references it is given (a NULL item,
    // from a failed PyFloat_FromDouble, leaves the exception set and the tuple dropped);
    // PyErr_SetObject takes its own references.
    unsafe {
        let retry = match r.retry_after() {
            Some(d) => ffi::PyFloat_FromDouble(d.as_secs_f64()),
            None => {
                ffi::Py_IncRef(ffi::Py_None());
                ffi::Py_None()
            }
        };
        if retry.is_null() {
            return std::ptr::null_mut();
        }
        let args = ffi::PyTuple_New(3);
        if args.is_null() {
            ffi::Py_DecRef(retry);
            return std::ptr::null_mut();
        }
        ffi::PyTuple_SetItem(args, 0, name.clone_ref(py).into_ptr());
        ffi::PyTuple_SetItem(args, 1, state.into_ptr());
        ffi::PyTuple_SetItem(args, 2, retry);
        ffi::PyErr_SetObject(cls.as_ptr(), args);
        ffi::Py_DecRef(args);
    }
    std::ptr::null_mut()
}

pub(crate) fn rejected_error(py: Python<'_>, name: &Py<PyString>, r: Rejected) -> PyErr {
    let state = match r.state() {
        State::Open => intern!(py, "open"),
        State::HalfOpen => intern!(py, "half_open"),
        State::ForcedOpen => intern!(py, "forced_open"),
        s => &PyString::new(py, s.as_str()),
    };
    let retry = r.retry_after().map(|d| d.as_secs_f64());
    match errors_class(py, &REJECTED_CLS, "CircuitBreakerError") {
        Ok(cls) => match cls.call1((name.bind(py), state, retry)) {
            Ok(e) => PyErr::from_value(e),
            Err(e) => e,
        },
        Err(e) => e,
    }
}
