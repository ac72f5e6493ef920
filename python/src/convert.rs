//! Conversion of Python arguments: numbers, ints, durations (seconds or `timedelta`),
//! each checked and named in the error, and the keyword-argument reader.

use crate::errors::config_error;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::time::Duration;

pub(crate) struct Kw<'a, 'py> {
    pub(crate) dict: Option<&'a Bound<'py, PyDict>>,
}

impl<'py> Kw<'_, 'py> {
    /// `None`: not given; `Some(None)`: given as `None`.
    pub(crate) fn raw(&self, key: &str) -> PyResult<Option<Option<Bound<'py, PyAny>>>> {
        let Some(d) = self.dict else { return Ok(None) };
        Ok(d.get_item(key)?.map(|v| (!v.is_none()).then_some(v)))
    }

    pub(crate) fn float(&self, key: &str) -> PyResult<Option<Option<f64>>> {
        self.raw(key)?
            .map(|v| v.map(|v| to_float(key, &v)).transpose())
            .transpose()
    }

    pub(crate) fn int(&self, py: Python<'_>, key: &str) -> PyResult<Option<Option<u32>>> {
        self.raw(key)?
            .map(|v| v.map(|v| to_u32(py, key, &v)).transpose())
            .transpose()
    }

    pub(crate) fn secs(&self, py: Python<'_>, key: &str) -> PyResult<Option<Option<Duration>>> {
        self.raw(key)?
            .map(|v| v.map(|v| to_duration(py, key, &v)).transpose())
            .transpose()
    }
}

fn to_float(key: &str, v: &Bound<'_, PyAny>) -> PyResult<f64> {
    if v.is_instance_of::<pyo3::types::PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "`{key}` must be a number, not bool"
        )));
    }
    v.extract::<f64>().map_err(|_| {
        PyTypeError::new_err(format!("`{key}` must be a number, not {}", type_name(v)))
    })
}

pub(crate) fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

pub(crate) fn to_u32(py: Python<'_>, key: &str, v: &Bound<'_, PyAny>) -> PyResult<u32> {
    if v.is_instance_of::<pyo3::types::PyBool>() || !v.is_instance_of::<pyo3::types::PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "`{key}` must be an int, not {}",
            type_name(v)
        )));
    }
    match v.extract::<i128>() {
        Ok(n) if u32::try_from(n).is_ok() => Ok(n as u32),
        // Out of u32 (negative or huge): the setting's real range, as the core would say it.
        n => Err(config_error(
            py,
            key,
            format!(
                "invalid `{key}`: {} is outside {}",
                n.map(|n| n.to_string())
                    .unwrap_or_else(|_| v.repr().map(|r| r.to_string()).unwrap_or_default()),
                int_range(key)
            ),
        )),
    }
}

/// The allowed range of an integer setting (as the core's validation states it).
fn int_range(key: &str) -> &'static str {
    match key {
        "consecutive_failures" | "minimum_calls" => "1 ..= 4294967295",
        "window_size" => "1 ..= 8388607",
        "window_buckets" => "1 ..= 10000",
        "half_open_permits" | "half_open_successes" => "1 ..= 65535",
        "fleet_trials" => "1 ..= 4294967295 (or None for no fleet cap)",
        _ => "0 ..= 4294967295",
    }
}

/// A number as a person reads it: `1e+20`, not twenty-one digits (and never hundreds).
pub(crate) fn short_number(x: f64) -> String {
    let a = x.abs();
    if a != 0.0 && a.is_finite() && !(1e-4..1e15).contains(&a) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// Seconds (int or float, not bool) or a `datetime.timedelta`, as a number of seconds
/// (unchecked: it may be negative, NaN or huge).
pub(crate) fn to_secs(key: &str, v: &Bound<'_, PyAny>) -> PyResult<f64> {
    if let Ok(ts) = v.getattr("total_seconds") {
        ts.call0()?.extract::<f64>()
    } else {
        to_float(key, v)
    }
}

/// Seconds (int or float) or a `datetime.timedelta`.
pub(crate) fn to_duration(py: Python<'_>, key: &str, v: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let secs = to_secs(key, v)?;
    let limit = if key == "slow_call_duration" {
        u64::MAX as f64
    } else {
        MAX_SECS
    };
    if secs.is_finite() && secs > limit {
        return Err(config_error(
            py,
            key,
            format!(
                "invalid `{key}`: {} seconds is over the limit of {} seconds{}",
                short_number(secs),
                short_number(limit),
                if limit == MAX_SECS { " (24h)" } else { "" }
            ),
        ));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| {
        config_error(
            py,
            key,
            format!(
                "invalid `{key}`: {} seconds is not a duration (finite, >= 0)",
                short_number(secs)
            ),
        )
    })
}

/// The core's limit of every duration setting but `slow_call_duration` (24 hours); a larger
/// number is refused here, with the limit in the message, before it becomes a `Duration`.
const MAX_SECS: f64 = 86400.0;
