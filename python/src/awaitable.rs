//! The `AsyncGuarded` and `GuardedCall` classes: an `async def` function guarded by a breaker
//! without a Python coroutine of its own.
//!
//! `AsyncGuarded(*args)` returns a `GuardedCall`, an awaitable (a coroutine: `__await__`,
//! `send`, `throw`, `close`) that, when first stepped, takes a permit, calls the function and
//! drives the coroutine it returns, step by step, with `send` and `throw`. When that coroutine
//! returns, the call is a success; when it raises, the exception is classified and recorded
//! (cancellation and the other exceptions that are not `Exception` record nothing and give a
//! half-open trial permit back); closed or collected before the end, nothing is recorded and the
//! permit is given back. A rejection (the function not called) raises `CircuitBreakerError` at
//! the first step, as an `async def` wrapper would, or awaits the fallback's result.

use crate::breaker::Breaker;
use crate::decorator::bind_method;
use crate::errors::{raise_rejected, rejected_error};
use breakerbox::{DefaultClock, OwnedPermit, Rejected};
use pyo3::exceptions::{PyRuntimeError, PyStopIteration, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyDict, PyTuple, PyType};
use pyo3::{ffi, intern};

static COROUTINE_TYPE: GILOnceCell<Py<PyType>> = GILOnceCell::new();

/// An `async def` function guarded by a breaker (what the decorator returns for one).
#[pyclass(frozen, dict, module = "breakerbox_rs._breakerbox")]
pub(crate) struct AsyncGuarded {
    pub(crate) breaker: Py<Breaker>,
    pub(crate) func: Py<PyAny>,
    pub(crate) fallback: Option<Py<PyAny>>,
}

#[pymethods]
impl AsyncGuarded {
    /// A `GuardedCall`: nothing runs until it is awaited.
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        slf: &Bound<'_, Self>,
        args: Py<PyTuple>,
        kwargs: Option<Py<PyDict>>,
    ) -> GuardedCall {
        GuardedCall {
            guarded: slf.clone().unbind(),
            stage: Stage::Pending { args, kwargs },
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

enum Stage {
    /// Created, not yet stepped: nothing taken, nothing called.
    Pending {
        args: Py<PyTuple>,
        kwargs: Option<Py<PyDict>>,
    },
    /// Driving `inner` (the function's coroutine, or its `__await__` iterator). `permit` is
    /// `None` when `inner` is the fallback's awaitable (nothing to record).
    Running {
        inner: Py<PyAny>,
        /// `inner` is a native coroutine or has `send` (else only `__next__`).
        has_send: bool,
        permit: Option<OwnedPermit<DefaultClock>>,
    },
    /// Finished (returned, raised, closed).
    Done,
}

/// One call of a guarded `async def` function: await it (once).
#[pyclass(module = "breakerbox_rs._breakerbox")]
pub(crate) struct GuardedCall {
    guarded: Py<AsyncGuarded>,
    stage: Stage,
}

/// Python's own message for a coroutine stepped after it finished.
fn reused() -> PyErr {
    PyRuntimeError::new_err("cannot reuse already awaited coroutine")
}

impl GuardedCall {
    /// Records the end of `inner` (`err` is what its last step raised: `StopIteration` when it
    /// returned) and finishes.
    fn finish(&mut self, py: Python<'_>, err: PyErr) -> PyErr {
        if let Stage::Running {
            permit: Some(p), ..
        } = std::mem::replace(&mut self.stage, Stage::Done)
        {
            if err.is_instance_of::<PyStopIteration>(py) {
                p.success();
            } else {
                let b = self.guarded.get().breaker.get();
                p.record(b.classify.outcome(py, &err));
            }
        }
        err
    }

    /// The first step: take a permit and call the function (or the fallback), leaving the
    /// stage `Running`, or `Done` with what to return or raise.
    fn start(&mut self, py: Python<'_>) -> PyResult<Started> {
        let Stage::Pending { args, kwargs } = std::mem::replace(&mut self.stage, Stage::Done)
        else {
            return Err(reused());
        };
        let g = self.guarded.get();
        let b = g.breaker.get();
        let args = args.bind(py);
        let kwargs = kwargs.as_ref().map(|k| k.bind(py));
        let (target, permit) = match b.inner.try_acquire_owned() {
            Ok(p) => (&g.func, Some(p)),
            Err(r) => match &g.fallback {
                Some(f) => (f, None),
                None => return Ok(Started::Rejected(r)),
            },
        };
        let result = match target.bind(py).call(args, kwargs) {
            Ok(r) => r,
            Err(e) => {
                if let Some(p) = permit {
                    p.record(b.classify.outcome(py, &e));
                }
                return Err(e);
            }
        };
        let coro_type = COROUTINE_TYPE.get_or_try_init(py, || {
            py.import("types")?
                .getattr("CoroutineType")?
                .downcast_into::<PyType>()
                .map(Bound::unbind)
                .map_err(PyErr::from)
        })?;
        let (inner, has_send) = if result.get_type().is(coro_type.bind(py)) {
            (result, true)
        } else {
            match awaitable_iter(py, &result) {
                Ok(Some(it)) => {
                    let has_send = it.hasattr(intern!(py, "send"))?;
                    (it, has_send)
                }
                // The fallback's plain value: the call's result.
                Ok(None) if permit.is_none() => return Ok(Started::Value(result.unbind())),
                Ok(None) => {
                    let e = PyTypeError::new_err(format!(
                        "object {} can't be used in 'await' expression",
                        crate::convert::type_name(&result)
                    ));
                    if let Some(p) = permit {
                        p.record(b.classify.outcome(py, &e));
                    }
                    return Err(e);
                }
                Err(e) => {
                    if let Some(p) = permit {
                        p.record(b.classify.outcome(py, &e));
                    }
                    return Err(e);
                }
            }
        };
        self.stage = Stage::Running {
            inner: inner.unbind(),
            has_send,
            permit,
        };
        Ok(Started::Running)
    }

    /// One step: `inner.send(value)` (or `next(inner)`).
    fn step(&mut self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Step> {
        let (inner, has_send) = match &self.stage {
            // (`inner` stays alive through the call: the stage changes only through `&mut self`.)
            Stage::Running {
                inner, has_send, ..
            } => (inner.as_ptr(), *has_send),
            _ => return Err(reused()),
        };
        let out = if has_send {
            // SAFETY: all three are valid objects, the GIL is held, and the argument list ends
            // with NULL; the call returns a new reference or NULL with an exception set.
            unsafe {
                ffi::PyObject_CallMethodObjArgs(
                    inner,
                    intern!(py, "send").as_ptr(),
                    value.as_ptr(),
                    std::ptr::null_mut::<ffi::PyObject>(),
                )
            }
        } else if value.is_none() {
            // SAFETY: as above, without arguments.
            unsafe {
                ffi::PyObject_CallMethodObjArgs(
                    inner,
                    intern!(py, "__next__").as_ptr(),
                    std::ptr::null_mut::<ffi::PyObject>(),
                )
            }
        } else {
            // SAFETY: `inner` is a valid object (see above).
            let inner = unsafe { Bound::from_borrowed_ptr(py, inner) };
            let e = PyTypeError::new_err(format!(
                "can't send a value into an awaitable's iterator without `send` ({})",
                crate::convert::type_name(&inner)
            ));
            return Err(self.finish(py, e));
        };
        if !out.is_null() {
            // SAFETY: a new reference.
            return Ok(Step::Yielded(unsafe { PyObject::from_owned_ptr(py, out) }));
        }
        // SAFETY: the GIL is held; the exception set by the failed call is read.
        if unsafe { ffi::PyErr_ExceptionMatches(ffi::PyExc_StopIteration) } != 0 {
            // Returned: the value, read without building a StopIteration when there is none.
            let value = stop_iteration_value(py)?;
            if let Stage::Running {
                permit: Some(p), ..
            } = std::mem::replace(&mut self.stage, Stage::Done)
            {
                p.success();
            }
            return Ok(Step::Returned(value));
        }
        let err = PyErr::fetch(py);
        Err(self.finish(py, err))
    }

    /// `send(value)`: the first step starts the call.
    fn advance(&mut self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Step> {
        if let Stage::Pending { .. } = self.stage {
            if !value.is_none() {
                return Err(PyTypeError::new_err(
                    "can't send non-None value to a just-started coroutine",
                ));
            }
            match self.start(py)? {
                Started::Running => {}
                Started::Value(v) => return Ok(Step::Returned(v)),
                Started::Rejected(r) => {
                    let b = self.guarded.get().breaker.get();
                    return Err(rejected_error(py, &b.py_name, r));
                }
            }
        }
        self.step(py, value)
    }
}

/// What the first step did.
enum Started {
    /// The function was called: its coroutine is driven from now on.
    Running,
    /// Rejected, and the fallback returned this (not an awaitable).
    Value(PyObject),
    /// Rejected, no fallback.
    Rejected(Rejected),
}

/// What a step of the guarded coroutine did.
enum Step {
    Yielded(PyObject),
    Returned(PyObject),
}

/// Takes the `StopIteration` set and returns its value.
fn stop_iteration_value(py: Python<'_>) -> PyResult<PyObject> {
    let (mut t, mut v, mut tb) = (
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    );
    // SAFETY: the GIL is held; PyErr_Fetch hands over the three (possibly NULL) references,
    // which are owned below.
    unsafe {
        ffi::PyErr_Fetch(&mut t, &mut v, &mut tb);
        let lazy_value = !v.is_null()
            && ffi::PyObject_TypeCheck(v, ffi::PyExc_StopIteration.cast()) == 0
            && ffi::PyTuple_Check(v) == 0;
        if v.is_null() || v == ffi::Py_None() || lazy_value {
            // No value (None), or the value itself (set but not yet normalized).
            drop(PyObject::from_owned_ptr_or_opt(py, t));
            drop(PyObject::from_owned_ptr_or_opt(py, tb));
            return Ok(PyObject::from_owned_ptr_or_opt(py, v).unwrap_or_else(|| py.None()));
        }
        ffi::PyErr_NormalizeException(&mut t, &mut v, &mut tb);
        drop(PyObject::from_owned_ptr_or_opt(py, t));
        drop(PyObject::from_owned_ptr_or_opt(py, tb));
        match PyObject::from_owned_ptr_or_opt(py, v) {
            Some(exc) => exc
                .bind(py)
                .getattr(intern!(py, "value"))
                .map(Bound::unbind),
            None => Ok(py.None()),
        }
    }
}

/// Sets the `StopIteration` that returns `value` (not None) from `__next__` and returns NULL
/// for the slot to return: no exception object is made for a plain value before Python 3.12.
fn set_returned(py: Python<'_>, value: PyObject) -> *mut ffi::PyObject {
    // SAFETY: the GIL is held; PyErr_SetNone / PyErr_SetObject take their own references.
    unsafe {
        if ffi::PyTuple_Check(value.as_ptr()) != 0
            || ffi::PyExceptionInstance_Check(value.as_ptr()) != 0
        {
            // Would be taken as the arguments or as the exception itself: wrap it.
            match py.get_type::<PyStopIteration>().call1((value,)) {
                Ok(exc) => ffi::PyErr_SetObject(ffi::PyExc_StopIteration, exc.as_ptr()),
                Err(e) => e.restore(py),
            }
        } else {
            ffi::PyErr_SetObject(ffi::PyExc_StopIteration, value.as_ptr());
        }
    }
    std::ptr::null_mut()
}

/// `obj.__await__()`, or `None` when `obj` is not awaitable.
fn awaitable_iter<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    match obj.get_type().getattr(intern!(py, "__await__")) {
        Ok(m) => m.call1((obj,)).map(Some),
        Err(_) => Ok(None),
    }
}

#[pymethods]
impl GuardedCall {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// One step (what `await` calls): a coroutine returning None ends with NULL and no
    /// exception, which the interpreter reads as a return of None.
    fn __next__(&mut self, py: Python<'_>) -> PyResult<*mut ffi::PyObject> {
        if let Stage::Pending { .. } = self.stage {
            // (A rejection is raised without building a PyErr: the path to keep short.)
            match self.start(py)? {
                Started::Running => {}
                Started::Value(v) if v.is_none(py) => return Ok(std::ptr::null_mut()),
                Started::Value(v) => return Ok(set_returned(py, v)),
                Started::Rejected(r) => {
                    let b = self.guarded.get().breaker.get();
                    return Ok(raise_rejected(py, &b.py_name, r));
                }
            }
        }
        Ok(match self.advance(py, &py.None().into_bound(py))? {
            Step::Yielded(v) => v.into_ptr(),
            Step::Returned(v) if v.is_none(py) => std::ptr::null_mut(),
            Step::Returned(v) => set_returned(py, v),
        })
    }

    /// Sends `value` into the guarded coroutine (a coroutine's `send`).
    fn send(&mut self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        match self.advance(py, value)? {
            Step::Yielded(v) => Ok(v),
            Step::Returned(v) if v.is_none(py) => Err(PyStopIteration::new_err(())),
            Step::Returned(v) => Err(PyStopIteration::new_err((v,))),
        }
    }

    /// Raises an exception in the guarded coroutine (a coroutine's `throw`): raised here at
    /// once when it has not started (nothing recorded) or has finished.
    #[pyo3(signature = (typ, val=None, tb=None))]
    fn throw(
        &mut self,
        py: Python<'_>,
        typ: Bound<'_, PyAny>,
        val: Option<Bound<'_, PyAny>>,
        tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        let inner = match &self.stage {
            Stage::Running { inner, .. } => Some(inner.clone_ref(py)),
            _ => None,
        };
        let Some(inner) = inner else {
            self.stage = Stage::Done;
            return Err(exception_from(py, &typ, val.as_ref())?);
        };
        let inner = inner.bind(py);
        let out = match inner.getattr(intern!(py, "throw")) {
            Ok(throw) => match (val, tb) {
                (None, None) => throw.call1((typ,)),
                (val, None) => throw.call1((typ, val)),
                (val, tb) => throw.call1((typ, val, tb)),
            },
            // A plain iterator: the exception ends the call where it is.
            Err(_) => Err(exception_from(py, &typ, val.as_ref())?),
        };
        match out {
            Ok(v) => Ok(v.unbind()),
            Err(e) => Err(self.finish(py, e)),
        }
    }

    /// Closes the guarded coroutine: nothing is recorded, the permit is given back.
    fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        if let Stage::Running { inner, .. } = std::mem::replace(&mut self.stage, Stage::Done) {
            let inner = inner.bind(py);
            if inner.hasattr(intern!(py, "close"))? {
                inner.call_method0(intern!(py, "close"))?;
            }
        }
        Ok(())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let stage = match self.stage {
            Stage::Pending { .. } => "pending",
            Stage::Running { .. } => "running",
            Stage::Done => "done",
        };
        let name = self
            .guarded
            .get()
            .breaker
            .get()
            .py_name
            .bind(py)
            .to_string();
        format!("<breakerbox GuardedCall breaker={name:?} {stage}>")
    }
}

/// The exception `throw(typ, val)` raises: `typ` itself when it is an exception instance,
/// else `typ(val)` / `typ()`.
fn exception_from(
    py: Python<'_>,
    typ: &Bound<'_, PyAny>,
    val: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyErr> {
    let base = py.get_type::<pyo3::exceptions::PyBaseException>();
    if typ.is_instance_of::<pyo3::exceptions::PyBaseException>() {
        return Ok(PyErr::from_value(typ.clone()));
    }
    let is_class = typ
        .downcast::<PyType>()
        .map(|t| t.is_subclass(&base).unwrap_or(false))
        .unwrap_or(false);
    if !is_class {
        return Err(PyTypeError::new_err(format!(
            "exceptions must be classes or instances deriving from BaseException, not {}",
            crate::convert::type_name(typ)
        )));
    }
    let exc = match val {
        Some(v) if v.is_instance(typ)? => v.clone(),
        Some(v) if !v.is_none() => typ.call1((v,))?,
        _ => typ.call0()?,
    };
    Ok(PyErr::from_value(exc))
}
