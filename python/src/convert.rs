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
    let n: i128 = v.extract().unwrap_or(i128::MAX);
    u32::try_from(n).map_err(|_| {
        config_error(
            py,
            key,
            format!("invalid `{key}`: {n} is outside 0 ..= 4294967295"),
        )
    })
}

/// Seconds (int or float) or a `datetime.timedelta`.
pub(crate) fn to_duration(py: Python<'_>, key: &str, v: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let secs = if let Ok(ts) = v.getattr("total_seconds") {
        ts.call0()?.extract::<f64>()?
    } else {
        to_float(key, v)?
    };
    Duration::try_from_secs_f64(secs).map_err(|_| {
        config_error(
            py,
            key,
            format!("invalid `{key}`: {secs} seconds is not a duration (finite, >= 0)"),
        )
    })
}
