//! The breakers' time source: the core's quanta clock (the default), or a `ManualClock` that
//! only moves when Python tells it to (for tests: open waits without sleeping).

use crate::convert::{short_number, type_name};
use crate::errors::config_error;
use breakerbox::{Clock, ManualClock as CoreManualClock, QuantaClock};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use std::time::Duration;

/// The clock of every breaker the package builds: one type, so the breaker, its permits and
/// the registry stay one type too. The default is `Quanta`, whose coarse read on the call path
/// is the core's (one relaxed load) behind a well-predicted branch.
#[derive(Clone, Debug)]
pub(crate) enum PyClock {
    Quanta(QuantaClock),
    Manual(CoreManualClock),
}

impl Default for PyClock {
    fn default() -> Self {
        PyClock::Quanta(QuantaClock::new())
    }
}

impl Clock for PyClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        match self {
            PyClock::Quanta(c) => c.now_nanos(),
            PyClock::Manual(c) => c.now_nanos(),
        }
    }

    #[inline(always)]
    fn recent_nanos(&self) -> u64 {
        match self {
            PyClock::Quanta(c) => c.recent_nanos(),
            PyClock::Manual(c) => c.recent_nanos(),
        }
    }
}

/// The `clock=` argument of a breaker or registry: `None` (the default clock) or a
/// `ManualClock`.
pub(crate) fn clock_arg(v: Option<&Bound<'_, PyAny>>) -> PyResult<PyClock> {
    match v {
        None => Ok(PyClock::default()),
        Some(v) => match v.downcast::<ManualClock>() {
            Ok(m) => Ok(PyClock::Manual(m.get().inner.clone())),
            Err(_) => Err(PyTypeError::new_err(format!(
                "`clock` must be a ManualClock or None, not {}",
                type_name(v)
            ))),
        },
    }
}

/// The longest a `ManualClock` may be moved in one step or set to (about 584 years: the
/// clock's nanoseconds fit in 64 bits).
const MAX_SECS: f64 = 18_446_744_073.0;

/// Seconds (int or float, finite, `0 ..= MAX_SECS`) or a `datetime.timedelta`.
fn clock_secs(py: Python<'_>, key: &str, v: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let secs = if v.is_instance_of::<pyo3::types::PyBool>() {
        None
    } else if let Ok(ts) = v.getattr("total_seconds") {
        Some(ts.call0()?.extract::<f64>()?)
    } else {
        v.extract::<f64>().ok()
    };
    let Some(secs) = secs else {
        return Err(PyTypeError::new_err(format!(
            "`{key}` must be a number of seconds or a timedelta, not {}",
            type_name(v)
        )));
    };
    if !(0.0..=MAX_SECS).contains(&secs) {
        return Err(config_error(
            py,
            key,
            format!(
                "invalid `{key}`: {} seconds is outside 0 ..= {MAX_SECS}",
                short_number(secs)
            ),
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A clock that only moves when told to, for tests: give it to a breaker (`clock=`) and move
/// it with `advance(seconds)` or `set(seconds)` instead of sleeping through open waits. It
/// starts at 0; every breaker given the same clock sees the same time.
#[pyclass(frozen, module = "breakerbox_rs._breakerbox", name = "ManualClock")]
pub(crate) struct ManualClock {
    inner: CoreManualClock,
}

#[pymethods]
impl ManualClock {
    #[new]
    fn new() -> Self {
        ManualClock {
            inner: CoreManualClock::new(),
        }
    }

    /// Moves the clock forward by `seconds` (a number >= 0 or a `timedelta`).
    fn advance(&self, py: Python<'_>, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.advance(clock_secs(py, "seconds", seconds)?);
        Ok(())
    }

    /// Sets the clock to `seconds` since its start, if that is not earlier than now (it never
    /// goes back); whether it moved.
    fn set(&self, py: Python<'_>, seconds: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.inner.set(clock_secs(py, "seconds", seconds)?))
    }

    /// The clock's time, in seconds since its start.
    fn now(&self) -> f64 {
        self.inner.elapsed().as_secs_f64()
    }

    fn __repr__(&self) -> String {
        format!("ManualClock(now={})", self.now())
    }
}
