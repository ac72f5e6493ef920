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
//!
//! `GuardedCall` is a type made here with `PyType_FromSpec` rather than a `#[pyclass]`: on
//! Python 3.10+ it has the `am_send` slot, so `await` steps it (and it steps a native coroutine)
//! by a C call that returns the value, with no `StopIteration` and no method lookup either way;
//! every step is a slot, not a method call. (Python 3.9 has no `am_send`: there it is stepped
//! through `__next__` and steps the coroutine through its `send` method.)

use crate::breaker::Breaker;
use crate::clock::PyClock;
use crate::decorator::bind_method;
use crate::errors::{raise_rejected, rejected_error};
use breakerbox::{OwnedPermit, Rejected};
use pyo3::exceptions::{PyRuntimeError, PyStopIteration, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};
use pyo3::{ffi, intern};
use std::cell::{Cell, UnsafeCell};
use std::ffi::c_int;
use std::ptr::null_mut;

static COROUTINE_TYPE: GILOnceCell<Py<PyType>> = GILOnceCell::new();
/// The `GuardedCall` type, made at import.
static CALL_TYPE: GILOnceCell<Py<PyType>> = GILOnceCell::new();

/// `am_send`: `PySendResult (*)(PyObject *, PyObject *, PyObject **)` (Python 3.10+).
type SendFn =
    unsafe extern "C" fn(*mut ffi::PyObject, *mut ffi::PyObject, *mut *mut ffi::PyObject) -> c_int;
const PYGEN_RETURN: c_int = 0;
const PYGEN_ERROR: c_int = -1;
const PYGEN_NEXT: c_int = 1;
/// The slot number of `am_send` (not in the 3.9 stable ABI's headers).
const PY_AM_SEND: c_int = 81;
/// The native coroutine type's `am_send` (Python 3.10+), read at import.
static CORO_SEND: GILOnceCell<Option<SendFn>> = GILOnceCell::new();

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
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        args: Py<PyTuple>,
        kwargs: Option<Py<PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        new_call(
            slf.py(),
            Call {
                guarded: slf.clone().unbind(),
                executing: Cell::new(false),
                result: Cell::new(null_mut()),
                stage: UnsafeCell::new(Stage::Pending { args, kwargs }),
            },
        )
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

/// How the inner coroutine (or awaitable's iterator) is stepped.
#[derive(Clone, Copy)]
enum Drive {
    /// A native coroutine, through its `am_send` slot (Python 3.10+).
    AmSend(SendFn),
    /// Its `send` method.
    SendMethod,
    /// An iterator without `send`: `__next__` only.
    NextOnly,
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
        drive: Drive,
        permit: Option<OwnedPermit<PyClock>>,
    },
    /// Finished (returned, raised, closed).
    Done,
}

/// The state of one `GuardedCall`.
struct Call {
    guarded: Py<AsyncGuarded>,
    /// Set while the inner coroutine runs: a step from inside it is refused (as a coroutine
    /// refuses to be resumed while it runs) and the stage is not touched.
    executing: Cell<bool>,
    /// Where `am_send` puts its result (set by the slot for its body).
    result: Cell<*mut *mut ffi::PyObject>,
    stage: UnsafeCell<Stage>,
}

/// The Python object: a header and the state.
#[repr(C)]
struct CallObject {
    ob_base: ffi::PyObject,
    call: Call,
}

/// Python's own message for a coroutine stepped after it finished.
fn reused() -> PyErr {
    PyRuntimeError::new_err("cannot reuse already awaited coroutine")
}

impl Call {
    /// Records the end of `inner` (`err` is what its last step raised: `StopIteration` when it
    /// returned) and finishes.
    fn finish(&self, stage: &mut Stage, py: Python<'_>, err: PyErr) -> PyErr {
        if let Stage::Running { inner, permit, .. } = std::mem::replace(stage, Stage::Done) {
            drop(inner.into_bound(py));
            if let Some(p) = permit {
                if err.is_instance_of::<PyStopIteration>(py) {
                    p.success();
                } else {
                    let b = self.guarded.get().breaker.get();
                    p.record(b.classify.outcome(py, &err));
                }
            }
        }
        err
    }

    /// The first step: take a permit and call the function (or the fallback), leaving the
    /// stage `Running`, or `Done` with what to return or raise.
    fn start(&self, stage: &mut Stage, py: Python<'_>) -> PyResult<Started> {
        let Stage::Pending { args, kwargs } = std::mem::replace(stage, Stage::Done) else {
            return Err(reused());
        };
        let g = self.guarded.get();
        let b = g.breaker.get();
        // Bound: released at the end of this step with a plain decref (a `Py` dropped asks
        // first, through a thread-local, whether the GIL is held).
        let args = &args.into_bound(py);
        let kwargs = kwargs.map(|k| k.into_bound(py));
        let kwargs = kwargs.as_ref();
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
        let (inner, drive) = if result.get_type().is(coro_type.bind(py)) {
            let drive = match CORO_SEND.get(py) {
                Some(Some(f)) => Drive::AmSend(*f),
                _ => Drive::SendMethod,
            };
            (result, drive)
        } else {
            match awaitable_iter(py, &result) {
                Ok(Some(it)) => {
                    let drive = if it.hasattr(intern!(py, "send"))? {
                        Drive::SendMethod
                    } else {
                        Drive::NextOnly
                    };
                    (it, drive)
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
        *stage = Stage::Running {
            inner: inner.unbind(),
            drive,
            permit,
        };
        Ok(Started::Running)
    }

    /// One step: `inner.send(value)` (or `next(inner)`).
    fn step(&self, stage: &mut Stage, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Step> {
        let (inner, drive) = match &*stage {
            // (`inner` stays alive through the call: `executing` keeps the stage as it is.)
            Stage::Running { inner, drive, .. } => (inner.as_ptr(), *drive),
            _ => return Err(reused()),
        };
        if let Drive::AmSend(send) = drive {
            let mut result = null_mut();
            // SAFETY: `inner` is a native coroutine and `send` its type's am_send; the GIL is
            // held; `result` receives a new reference (or NULL on error).
            let status = unsafe { send(inner, value.as_ptr(), &mut result) };
            return match status {
                // SAFETY: a new reference.
                PYGEN_NEXT => Ok(Step::Yielded(unsafe {
                    PyObject::from_owned_ptr(py, result)
                })),
                PYGEN_RETURN => {
                    returned(stage, py);
                    // SAFETY: a new reference.
                    Ok(Step::Returned(unsafe {
                        PyObject::from_owned_ptr(py, result)
                    }))
                }
                _ => {
                    let err = PyErr::fetch(py);
                    Err(self.finish(stage, py, err))
                }
            };
        }
        let out = if let Drive::SendMethod = drive {
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
            return Err(self.finish(stage, py, e));
        };
        if !out.is_null() {
            // SAFETY: a new reference.
            return Ok(Step::Yielded(unsafe { PyObject::from_owned_ptr(py, out) }));
        }
        // SAFETY: the GIL is held; the exception set by the failed call is read.
        if unsafe { ffi::PyErr_ExceptionMatches(ffi::PyExc_StopIteration) } != 0 {
            // Returned: the value, read without building a StopIteration when there is none.
            let value = stop_iteration_value(py)?;
            returned(stage, py);
            return Ok(Step::Returned(value));
        }
        let err = PyErr::fetch(py);
        Err(self.finish(stage, py, err))
    }

    /// `send(value)`: the first step starts the call.
    fn advance(
        &self,
        stage: &mut Stage,
        py: Python<'_>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<Step> {
        if let Stage::Pending { .. } = stage {
            if !value.is_none() {
                return Err(PyTypeError::new_err(
                    "can't send non-None value to a just-started coroutine",
                ));
            }
            match self.start(stage, py)? {
                Started::Running => {}
                Started::Value(v) => return Ok(Step::Returned(v)),
                Started::Rejected(r) => {
                    let b = self.guarded.get().breaker.get();
                    return Err(rejected_error(py, &b.py_name, r));
                }
            }
        }
        self.step(stage, py, value)
    }
}

/// The inner coroutine returned: the stage is `Done` and the permit (if any) reports a
/// success. `inner` is released as a `Bound` (a plain decref: a `Py` dropped asks first,
/// through a thread-local, whether the GIL is held).
fn returned(stage: &mut Stage, py: Python<'_>) {
    if let Stage::Running { inner, permit, .. } = std::mem::replace(stage, Stage::Done) {
        drop(inner.into_bound(py));
        if let Some(p) = permit {
            p.success();
        }
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

// ----- the GuardedCall type ------------------------------------------------------------------

/// Runs a slot's body on the call's state, refusing a step from inside the running coroutine
/// (as a coroutine refuses to be resumed while it runs). The slots below run in PyO3's slot
/// trampolines (`pyo3::impl_::trampoline`, what `#[pymethods]` expand to): the GIL marked as
/// held, an error set as the exception, a panic turned into an exception, never unwound into C.
///
/// # Safety
/// `obj` is a live `GuardedCall`, and the GIL is held.
unsafe fn with_state<R>(
    obj: *mut ffi::PyObject,
    body: impl FnOnce(&Call, &mut Stage) -> PyResult<R>,
) -> PyResult<R> {
    struct Reset<'a>(&'a Cell<bool>);
    impl Drop for Reset<'_> {
        fn drop(&mut self) {
            self.0.set(false);
        }
    }
    // SAFETY: `obj` is a live CallObject (the caller's promise).
    let call = unsafe { &(*obj.cast::<CallObject>()).call };
    if call.executing.get() {
        return Err(PyValueError::new_err("coroutine already executing"));
    }
    call.executing.set(true);
    let _reset = Reset(&call.executing);
    // SAFETY: `executing` makes this the only reference to the stage until it is reset.
    body(call, unsafe { &mut *call.stage.get() })
}

/// A new `GuardedCall` object holding `call`.
fn new_call(py: Python<'_>, call: Call) -> PyResult<Bound<'_, PyAny>> {
    let tp = CALL_TYPE
        .get(py)
        .ok_or_else(|| PyRuntimeError::new_err("breakerbox's GuardedCall type is not ready"))?;
    // SAFETY: the GIL is held; PyType_GenericAlloc returns a zeroed object of the type's
    // basicsize (a CallObject) with one reference, tracked by the collector, or NULL with an
    // exception set. The state is written before the collector can look at it: nothing runs in
    // between (it cannot collect before this returns).
    unsafe {
        let obj = ffi::PyType_GenericAlloc(tp.as_ptr().cast(), 0);
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        std::ptr::addr_of_mut!((*obj.cast::<CallObject>()).call).write(call);
        Ok(Bound::from_owned_ptr(py, obj))
    }
}

/// One step as `await` takes it (Python 3.10+): no exception for a return.
unsafe extern "C" fn call_am_send(
    obj: *mut ffi::PyObject,
    arg: *mut ffi::PyObject,
    presult: *mut *mut ffi::PyObject,
) -> c_int {
    // SAFETY: called by the interpreter with a live GuardedCall, an argument and a result slot
    // (handed to the body through the object: the trampoline takes a plain function).
    unsafe {
        *presult = null_mut();
        (*obj.cast::<CallObject>()).call.result.set(presult);
        pyo3::impl_::trampoline::objobjproc(obj, arg, am_send_body)
    }
}

unsafe fn am_send_body(
    py: Python<'_>,
    obj: *mut ffi::PyObject,
    arg: *mut ffi::PyObject,
) -> PyResult<c_int> {
    // SAFETY: see `call_am_send`.
    unsafe {
        with_state(obj, |call, stage| {
            let presult = call.result.get();
            let value = Bound::from_borrowed_ptr(py, arg);
            if let Stage::Pending { .. } = stage {
                if value.is_none() {
                    match call.start(stage, py)? {
                        Started::Running => {}
                        Started::Value(v) => {
                            *presult = v.into_ptr();
                            return Ok(PYGEN_RETURN);
                        }
                        Started::Rejected(r) => {
                            // (Raised without a PyErr: a rejection is the path to keep short.)
                            let b = call.guarded.get().breaker.get();
                            raise_rejected(py, &b.py_name, r);
                            return Ok(PYGEN_ERROR);
                        }
                    }
                }
            }
            Ok(match call.advance(stage, py, &value)? {
                Step::Yielded(v) => {
                    *presult = v.into_ptr();
                    PYGEN_NEXT
                }
                Step::Returned(v) => {
                    *presult = v.into_ptr();
                    PYGEN_RETURN
                }
            })
        })
    }
}

/// `__next__` (how Python 3.9 awaits it): a return of None ends with NULL and no exception.
unsafe extern "C" fn call_iternext(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: called by the interpreter with a live GuardedCall.
    unsafe { pyo3::impl_::trampoline::iternextfunc(obj, iternext_body) }
}

unsafe fn iternext_body(py: Python<'_>, obj: *mut ffi::PyObject) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: see `call_iternext`.
    unsafe {
        with_state(obj, |call, stage| {
            if let Stage::Pending { .. } = stage {
                match call.start(stage, py)? {
                    Started::Running => {}
                    Started::Value(v) if v.is_none(py) => return Ok(null_mut()),
                    Started::Value(v) => return Ok(set_returned(py, v)),
                    Started::Rejected(r) => {
                        let b = call.guarded.get().breaker.get();
                        return Ok(raise_rejected(py, &b.py_name, r));
                    }
                }
            }
            let none = py.None().into_bound(py);
            Ok(match call.advance(stage, py, &none)? {
                Step::Yielded(v) => v.into_ptr(),
                Step::Returned(v) if v.is_none(py) => null_mut(),
                Step::Returned(v) => set_returned(py, v),
            })
        })
    }
}

/// `send(value)`: a coroutine's.
unsafe extern "C" fn call_send(
    obj: *mut ffi::PyObject,
    arg: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: METH_O: a live GuardedCall and one argument.
    unsafe { pyo3::impl_::trampoline::binaryfunc(obj, arg, send_body) }
}

unsafe fn send_body(
    py: Python<'_>,
    obj: *mut ffi::PyObject,
    arg: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: see `call_send`.
    unsafe {
        with_state(obj, |call, stage| {
            let value = Bound::from_borrowed_ptr(py, arg);
            Ok(match call.advance(stage, py, &value)? {
                Step::Yielded(v) => v.into_ptr(),
                Step::Returned(v) if v.is_none(py) => {
                    ffi::PyErr_SetNone(ffi::PyExc_StopIteration);
                    null_mut()
                }
                Step::Returned(v) => set_returned(py, v),
            })
        })
    }
}

/// `throw(typ, val=None, tb=None)`: raises an exception in the guarded coroutine; raised here
/// at once when it has not started (nothing recorded) or has finished.
unsafe extern "C" fn call_throw(
    obj: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: METH_VARARGS: a live GuardedCall and a tuple.
    unsafe { pyo3::impl_::trampoline::binaryfunc(obj, args, throw_body) }
}

unsafe fn throw_body(
    py: Python<'_>,
    obj: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: see `call_throw`.
    unsafe {
        with_state(obj, |call, stage| {
            let args = Bound::from_borrowed_ptr(py, args).downcast_into::<PyTuple>()?;
            if args.is_empty() || args.len() > 3 {
                return Err(PyTypeError::new_err(format!(
                    "throw expected 1 to 3 arguments, got {}",
                    args.len()
                )));
            }
            let typ = args.get_item(0)?;
            let val = args.get_item(1).ok().filter(|v| !v.is_none());
            let inner = match &*stage {
                Stage::Running { inner, .. } => Some(inner.clone_ref(py)),
                _ => None,
            };
            let Some(inner) = inner else {
                *stage = Stage::Done;
                return Err(exception_from(py, &typ, val.as_ref())?);
            };
            let inner = inner.bind(py);
            let out = match inner.getattr(intern!(py, "throw")) {
                Ok(throw) => throw.call1(args),
                // A plain iterator: the exception ends the call where it is.
                Err(_) => Err(exception_from(py, &typ, val.as_ref())?),
            };
            match out {
                Ok(v) => Ok(v.into_ptr()),
                Err(e) => Err(call.finish(stage, py, e)),
            }
        })
    }
}

/// `close()`: closes the guarded coroutine; nothing is recorded, the permit is given back.
unsafe extern "C" fn call_close(
    obj: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: METH_NOARGS: a live GuardedCall.
    unsafe { pyo3::impl_::trampoline::noargs(obj, args, close_body) }
}

unsafe fn close_body(py: Python<'_>, obj: *mut ffi::PyObject) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: see `call_close`.
    unsafe {
        with_state(obj, |_call, stage| {
            if let Stage::Running { inner, .. } = std::mem::replace(stage, Stage::Done) {
                let inner = inner.bind(py);
                if inner.hasattr(intern!(py, "close"))? {
                    inner.call_method0(intern!(py, "close"))?;
                }
            }
            Ok(py.None().into_ptr())
        })
    }
}

/// `__await__` and `__iter__`: itself.
unsafe extern "C" fn call_self(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: a live object.
    unsafe { ffi::Py_IncRef(obj) };
    obj
}

unsafe extern "C" fn call_repr(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: a live GuardedCall.
    unsafe { pyo3::impl_::trampoline::reprfunc(obj, repr_body) }
}

unsafe fn repr_body(py: Python<'_>, obj: *mut ffi::PyObject) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: a live GuardedCall; the state is only read, and not while a step runs.
    let call = unsafe { &(*obj.cast::<CallObject>()).call };
    let stage = if call.executing.get() {
        "running"
    } else {
        match unsafe { &*call.stage.get() } {
            Stage::Pending { .. } => "pending",
            Stage::Running { .. } => "suspended",
            Stage::Done => "done",
        }
    };
    let name = call
        .guarded
        .get()
        .breaker
        .get()
        .py_name
        .bind(py)
        .to_string();
    let s = format!("<breakerbox GuardedCall breaker={name:?} {stage}>");
    Ok(PyString::new(py, &s).into_ptr())
}

/// Drops the state (an unreported permit gives its trial slot back; the coroutine is released)
/// and frees the object.
unsafe extern "C" fn call_dealloc(obj: *mut ffi::PyObject) {
    // SAFETY: the last reference to a GuardedCall is gone (a trampoline for the GIL's
    // bookkeeping: the state's references are released at once).
    unsafe {
        ffi::PyObject_GC_UnTrack(obj.cast());
        pyo3::impl_::trampoline::inquiry(obj, dealloc_body);
    }
}

unsafe fn dealloc_body(py: Python<'_>, obj: *mut ffi::PyObject) -> PyResult<c_int> {
    // SAFETY: the state is moved out once (and dropped below), then the memory freed with the
    // type's tp_free, and the reference the object held on its (heap) type released.
    unsafe {
        let call = std::ptr::read(std::ptr::addr_of!((*obj.cast::<CallObject>()).call));
        // The references are released as `Bound`s: a plain decref (a `Py` dropped asks
        // first, through a thread-local, whether the GIL is held).
        drop(call.guarded.into_bound(py));
        match call.stage.into_inner() {
            Stage::Pending { args, kwargs } => {
                drop(args.into_bound(py));
                drop(kwargs.map(|k| k.into_bound(py)));
            }
            Stage::Running { inner, permit, .. } => {
                drop(permit);
                drop(inner.into_bound(py));
            }
            Stage::Done => {}
        }
        let tp = ffi::Py_TYPE(obj);
        let free = ffi::PyType_GetSlot(tp, ffi::Py_tp_free);
        if free.is_null() {
            ffi::PyObject_GC_Del(obj.cast());
        } else {
            let free: ffi::freefunc = std::mem::transmute(free);
            free(obj.cast());
        }
        ffi::Py_DecRef(tp.cast());
    }
    Ok(0)
}

/// The garbage collector's view: the references the call holds (a cycle through a suspended
/// call, such as a task whose coroutine refers to the task, is collected). While a step runs,
/// nothing is reported (the collector then keeps what it cannot account for).
unsafe extern "C" fn call_traverse(
    obj: *mut ffi::PyObject,
    visit: ffi::visitproc,
    arg: *mut std::ffi::c_void,
) -> c_int {
    // SAFETY: a live GuardedCall; the state is only read, and not while a step runs; `visit`
    // is called on live objects.
    unsafe {
        let call = &(*obj.cast::<CallObject>()).call;
        // (A heap type's instances report their type too.)
        let mut refs: [*mut ffi::PyObject; 5] = [null_mut(); 5];
        refs[0] = call.guarded.as_ptr();
        refs[4] = ffi::Py_TYPE(obj).cast();
        if !call.executing.get() {
            match &*call.stage.get() {
                Stage::Pending { args, kwargs } => {
                    refs[1] = args.as_ptr();
                    refs[2] = kwargs.as_ref().map_or(null_mut(), |k| k.as_ptr());
                }
                Stage::Running { inner, .. } => refs[1] = inner.as_ptr(),
                Stage::Done => {}
            }
        }
        for r in refs {
            if !r.is_null() {
                let rc = visit(r, arg);
                if rc != 0 {
                    return rc;
                }
            }
        }
    }
    0
}

/// Breaks a cycle: the call ends as if closed (nothing recorded, the permit given back).
unsafe extern "C" fn call_clear(obj: *mut ffi::PyObject) -> c_int {
    // SAFETY: a live GuardedCall, with the GIL held.
    unsafe { pyo3::impl_::trampoline::inquiry(obj, clear_body) }
}

unsafe fn clear_body(_py: Python<'_>, obj: *mut ffi::PyObject) -> PyResult<c_int> {
    // SAFETY: a live GuardedCall; the stage is not touched while a step runs.
    unsafe {
        let call = &(*obj.cast::<CallObject>()).call;
        if !call.executing.get() {
            let old = std::mem::replace(&mut *call.stage.get(), Stage::Done);
            drop(old);
        }
    }
    Ok(0)
}

/// Makes the `GuardedCall` type (with `am_send` on Python 3.10+) and adds it to the module.
pub(crate) fn add_call_type(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let coro_type = COROUTINE_TYPE.get_or_try_init(py, || {
        py.import("types")?
            .getattr("CoroutineType")?
            .downcast_into::<PyType>()
            .map(Bound::unbind)
            .map_err(PyErr::from)
    })?;
    let has_am_send = py.version_info() >= (3, 10);
    let coro_send = if has_am_send {
        // SAFETY: the GIL is held; on 3.10+ PyType_GetSlot accepts static types; the slot, when
        // set, is an am_send function.
        unsafe {
            let f = ffi::PyType_GetSlot(coro_type.as_ptr().cast(), PY_AM_SEND);
            (!f.is_null()).then(|| std::mem::transmute::<*mut std::ffi::c_void, SendFn>(f))
        }
    } else {
        None
    };
    let _ = CORO_SEND.set(py, coro_send);

    // Leaked once per process: the type keeps pointers to them.
    let methods: &'static mut [ffi::PyMethodDef] = Box::leak(Box::new([
        ffi::PyMethodDef {
            ml_name: c"send".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunction: call_send,
            },
            ml_flags: ffi::METH_O,
            ml_doc: c"send(value): sends a value into the guarded coroutine.".as_ptr(),
        },
        ffi::PyMethodDef {
            ml_name: c"throw".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunction: call_throw,
            },
            ml_flags: ffi::METH_VARARGS,
            ml_doc: c"throw(typ[, val[, tb]]): raises an exception in the guarded coroutine."
                .as_ptr(),
        },
        ffi::PyMethodDef {
            ml_name: c"close".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunction: call_close,
            },
            ml_flags: ffi::METH_NOARGS,
            ml_doc: c"close(): closes the guarded coroutine; nothing is recorded.".as_ptr(),
        },
        ffi::PyMethodDef::zeroed(),
    ]));
    let mut slots = vec![
        ffi::PyType_Slot {
            slot: ffi::Py_tp_dealloc,
            pfunc: call_dealloc as *mut _,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_am_await,
            pfunc: call_self as *mut _,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_iter,
            pfunc: call_self as *mut _,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_iternext,
            pfunc: call_iternext as *mut _,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_traverse,
            pfunc: call_traverse as *mut _,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_clear,
            pfunc: call_clear as *mut _,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_repr,
            pfunc: call_repr as *mut _,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_methods,
            pfunc: methods.as_mut_ptr().cast(),
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_doc,
            pfunc: c"One call of a guarded async def function: await it once.".as_ptr() as *mut _,
        },
    ];
    if has_am_send {
        slots.push(ffi::PyType_Slot {
            slot: PY_AM_SEND,
            pfunc: call_am_send as *mut _,
        });
    }
    slots.push(ffi::PyType_Slot {
        slot: 0,
        pfunc: null_mut(),
    });
    let slots: &'static mut [ffi::PyType_Slot] = Box::leak(slots.into_boxed_slice());
    let spec: &'static mut ffi::PyType_Spec = Box::leak(Box::new(ffi::PyType_Spec {
        name: c"breakerbox_rs._breakerbox.GuardedCall".as_ptr(),
        basicsize: c_int::try_from(std::mem::size_of::<CallObject>())
            .map_err(|_| PyRuntimeError::new_err("GuardedCall is too large"))?,
        itemsize: 0,
        flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_HAVE_GC) as _,
        slots: slots.as_mut_ptr(),
    }));
    // SAFETY: the GIL is held; the spec and everything it points to live for the process.
    let tp = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpec(spec))?.downcast_into::<PyType>()?
    };
    m.add("GuardedCall", &tp)?;
    let _ = CALL_TYPE.set(py, tp.unbind());
    Ok(())
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
