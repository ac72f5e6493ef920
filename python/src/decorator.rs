//! The `Guarded` class: a sync function guarded by a breaker (what the decorator returns).

use crate::breaker::Breaker;
use crate::errors::rejected_error;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyDict, PyTuple};

static METHOD_TYPE: GILOnceCell<Py<PyAny>> = GILOnceCell::new();

/// A function guarded by a breaker (what the decorator returns for a sync function).
#[pyclass(frozen, dict, module = "breakerbox_rs._breakerbox")]
pub(crate) struct Guarded {
    pub(crate) breaker: Py<Breaker>,
    pub(crate) func: Py<PyAny>,
    pub(crate) fallback: Option<Py<PyAny>>,
}

#[pymethods]
impl Guarded {
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let b = self.breaker.get();
        match b.inner.try_acquire() {
            Ok(permit) => b.finish(py, permit, self.func.bind(py).call(args, kwargs)),
            Err(r) => match &self.fallback {
                Some(f) => f.bind(py).call(args, kwargs),
                None => Err(rejected_error(py, &b.py_name, r)),
            },
        }
    }

    /// Binds like a function, so that decorated methods get `self`.
    fn __get__<'py>(
        slf: &Bound<'py, Self>,
        obj: Option<Bound<'py, PyAny>>,
        _owner: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        bind_method(slf.as_any(), obj)
    }
}

/// `types.MethodType(f, obj)`, or `f` itself when there is no instance to bind.
pub(crate) fn bind_method<'py>(
    f: &Bound<'py, PyAny>,
    obj: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = f.py();
    match obj {
        None => Ok(f.clone()),
        Some(o) if o.is_none() => Ok(f.clone()),
        Some(o) => {
            let mt = METHOD_TYPE.get_or_try_init(py, || {
                py.import("types")?.getattr("MethodType").map(Bound::unbind)
            })?;
            mt.bind(py).call1((f, o))
        }
    }
}
