//! The configuration as keyword arguments: parsed and validated into a core `Config`, and
//! a `Config` rendered back as a dict.

use crate::convert::Kw;
use crate::errors::{config_error, core_config_error};
use breakerbox::{Config, State, WindowConfig};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::time::Duration;

const CONFIG_KEYS: &[&str] = &[
    "name",
    "failure_rate_threshold",
    "slow_call_rate_threshold",
    "slow_call_duration",
    "consecutive_failures",
    "minimum_calls",
    "window_size",
    "window_duration",
    "window_buckets",
    "open_wait",
    "open_wait_max",
    "open_wait_multiplier",
    "jitter",
    "half_open_permits",
    "half_open_successes",
    "max_half_open_wait",
    "half_open_timeout_state",
    "half_open_decision",
    "initial_state",
    "automatic_half_open",
];

/// A fixed or exponential open wait from `open_wait` (seconds), `open_wait_max` and
/// `open_wait_multiplier`.
fn open_wait(
    py: Python<'_>,
    wait: Option<Duration>,
    max: Option<Duration>,
    multiplier: Option<f64>,
) -> PyResult<breakerbox::OpenWait> {
    Ok(match (wait, max) {
        (w, Some(max)) => breakerbox::OpenWait::Exponential {
            initial: w.unwrap_or(Duration::from_secs(1)),
            multiplier: multiplier.unwrap_or(2.0),
            max,
        },
        (w, None) => {
            if multiplier.is_some() {
                return Err(config_error(
                    py,
                    "open_wait_multiplier",
                    "invalid `open_wait_multiplier`: only with `open_wait_max` (exponential \
                     backoff)"
                        .into(),
                ));
            }
            breakerbox::OpenWait::fixed(w.unwrap_or(Duration::from_secs(60)))
        }
    })
}

/// The wait a Python `open_wait` function gives for the `n`-th opening in a row: seconds (a
/// number) or a `timedelta`, capped at `max`. Anything else (an exception, another type, a
/// negative or NaN number) gives `max`, and the error goes to `sys.unraisablehook`. So does a
/// call while the interpreter shuts down (see `gil`).
fn call_wait_fn(f: &Py<PyAny>, n: u32, max: Duration) -> Duration {
    crate::gil::with_gil(|py| {
        let f = f.bind(py);
        let secs = f.call1((n,)).and_then(|v| {
            let secs = crate::convert::to_secs("open_wait", &v)?;
            if secs.is_nan() || secs < 0.0 {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "`open_wait` returned {v}: not a wait (seconds >= 0 or a timedelta)"
                )));
            }
            Ok(secs)
        });
        match secs {
            Ok(s) if s >= max.as_secs_f64() => max,
            Ok(s) => Duration::from_secs_f64(s),
            Err(e) => {
                e.write_unraisable(py, Some(f));
                max
            }
        }
    })
    .unwrap_or(max)
}

/// Builds and validates a configuration from keyword arguments (see `CircuitBreaker`'s
/// docstring for their meaning).
pub(crate) fn parse_config(
    py: Python<'_>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<(Config, Option<String>)> {
    if let Some(d) = kwargs {
        for k in d.keys() {
            let k: String = k.extract()?;
            if !CONFIG_KEYS.contains(&k.as_str()) {
                return Err(PyTypeError::new_err(format!(
                    "unexpected keyword argument `{k}`"
                )));
            }
        }
    }
    let kw = Kw { dict: kwargs };
    let mut c = Config::default();
    let name = match kw.raw("name")? {
        Some(Some(n)) => Some(
            n.extract::<String>()
                .map_err(|_| PyTypeError::new_err("`name` must be a str"))?,
        ),
        _ => None,
    };
    let consecutive = kw.int(py, "consecutive_failures")?;
    let slow_rate = kw.float("slow_call_rate_threshold")?;
    match kw.float("failure_rate_threshold")? {
        Some(v) => c.failure_rate_threshold = v,
        // Another rule named and the failure rate not: the named rules alone (a
        // `failure_threshold=5` user means five in a row, not also a 50 % rate).
        None if matches!(consecutive, Some(Some(_))) || matches!(slow_rate, Some(Some(_))) => {
            c.failure_rate_threshold = None
        }
        None => {}
    }
    if let Some(v) = slow_rate {
        c.slow_call_rate_threshold = v;
    }
    if let Some(Some(d)) = kw.secs(py, "slow_call_duration")? {
        c.slow_call_duration = d;
    }
    if let Some(v) = consecutive {
        c.consecutive_failures = v;
    }
    let minimum = kw.int(py, "minimum_calls")?.flatten();
    let size = kw.int(py, "window_size")?.flatten();
    let duration = kw.secs(py, "window_duration")?.flatten();
    let buckets = kw.int(py, "window_buckets")?.flatten();
    match (size, duration) {
        (Some(_), Some(_)) => {
            return Err(config_error(
                py,
                "window_size",
                "invalid `window_size`: give either `window_size` (a count window) or \
                 `window_duration` (a time window), not both"
                    .into(),
            ))
        }
        (Some(size), None) => {
            if buckets.is_some() {
                return Err(config_error(
                    py,
                    "window_buckets",
                    "invalid `window_buckets`: only for a time window (`window_duration`)".into(),
                ));
            }
            c.window = WindowConfig::Count { size };
            if minimum.is_none() && size >= 1 && size < c.minimum_calls {
                c.minimum_calls = size; // as the Rust builder: the default follows a small window
            }
        }
        (None, Some(duration)) => {
            c.window = WindowConfig::Time {
                duration,
                buckets: buckets.unwrap_or(10),
            }
        }
        (None, None) => {
            if buckets.is_some() {
                return Err(config_error(
                    py,
                    "window_buckets",
                    "invalid `window_buckets`: only for a time window (`window_duration`)".into(),
                ));
            }
        }
    }
    if let Some(m) = minimum {
        c.minimum_calls = m;
    }
    let wait_fn = kw
        .raw("open_wait")?
        .flatten()
        .filter(|v| v.is_callable() && !v.hasattr("total_seconds").unwrap_or(false));
    let wait = match wait_fn {
        Some(_) => None,
        None => kw.secs(py, "open_wait")?.flatten(),
    };
    let max = kw.secs(py, "open_wait_max")?.flatten();
    let multiplier = kw.float("open_wait_multiplier")?.flatten();
    c.open_wait = match (wait_fn, wait, max) {
        (Some(f), _, max) => {
            let Some(max) = max else {
                return Err(config_error(
                    py,
                    "open_wait_max",
                    "invalid `open_wait_max`: a function as `open_wait` needs its cap, \
                     `open_wait_max` (seconds)"
                        .into(),
                ));
            };
            if multiplier.is_some() {
                return Err(config_error(
                    py,
                    "open_wait_multiplier",
                    "invalid `open_wait_multiplier`: not with a function as `open_wait`".into(),
                ));
            }
            let f = f.unbind();
            breakerbox::OpenWait::custom(move |n| call_wait_fn(&f, n, max), max)
        }
        (None, w, max) => open_wait(py, w, max, multiplier)?,
    };

    if let Some(Some(j)) = kw.float("jitter")? {
        c.jitter = j;
    }
    if let Some(Some(n)) = kw.int(py, "half_open_permits")? {
        c.half_open_permits = n;
    }
    if let Some(Some(n)) = kw.int(py, "half_open_successes")? {
        c.half_open_successes = n;
    }
    match kw.secs(py, "max_half_open_wait")? {
        Some(Some(d)) => c.max_half_open_wait = Some(d),
        // An explicit None: no limit (resilience4j's 0).
        Some(None) => c.max_half_open_wait = None,
        None => {}
    }
    if let Some(Some(v)) = kw.raw("half_open_timeout_state")? {
        c.half_open_timeout_state = match v.extract::<String>().ok().as_deref() {
            Some("open") => State::Open,
            Some("closed") => State::Closed,
            _ => {
                return Err(config_error(
                    py,
                    "half_open_timeout_state",
                    format!(
                        "invalid `half_open_timeout_state`: {} is not \"open\" or \"closed\"",
                        v.repr()?
                    ),
                ))
            }
        };
    }
    if let Some(Some(v)) = kw.raw("half_open_decision")? {
        c.half_open_decision = match v.extract::<String>().ok().as_deref() {
            Some("first_failure") => breakerbox::HalfOpenDecision::FirstFailure,
            Some("rate") => breakerbox::HalfOpenDecision::Rate,
            _ => {
                return Err(config_error(
                    py,
                    "half_open_decision",
                    format!(
                        "invalid `half_open_decision`: {} is not \"first_failure\" or \"rate\"",
                        v.repr()?
                    ),
                ))
            }
        };
    }
    if let Some(Some(v)) = kw.raw("initial_state")? {
        let name = v.extract::<String>().ok();
        c.initial_state = name.and_then(|n| n.parse::<State>().ok()).ok_or_else(|| {
            config_error(
                py,
                "initial_state",
                format!(
                    "invalid `initial_state`: {} is not one of closed, open, half_open, \
                     forced_open, disabled, metrics_only",
                    v.repr().map(|r| r.to_string()).unwrap_or_default()
                ),
            )
        })?;
    }
    if let Some(Some(v)) = kw.raw("automatic_half_open")? {
        if !v.is_instance_of::<pyo3::types::PyBool>() {
            return Err(PyTypeError::new_err("`automatic_half_open` must be a bool"));
        }
        c.automatic_half_open = v.extract::<bool>()?;
    }
    c.validate().map_err(|e| core_config_error(py, e))?;
    Ok((c, name))
}

pub(crate) fn config_dict<'py>(py: Python<'py>, c: &Config) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("failure_rate_threshold", c.failure_rate_threshold)?;
    d.set_item("slow_call_rate_threshold", c.slow_call_rate_threshold)?;
    d.set_item("slow_call_duration", c.slow_call_duration.as_secs_f64())?;
    d.set_item("consecutive_failures", c.consecutive_failures)?;
    d.set_item("minimum_calls", c.minimum_calls)?;
    match c.window {
        WindowConfig::Count { size } => d.set_item("window_size", size)?,
        WindowConfig::Time { duration, buckets } => {
            d.set_item("window_duration", duration.as_secs_f64())?;
            d.set_item("window_buckets", buckets)?;
        }
    }
    match c.open_wait {
        breakerbox::OpenWait::Fixed { wait } => d.set_item("open_wait", wait.as_secs_f64())?,
        breakerbox::OpenWait::Exponential {
            initial,
            multiplier,
            max,
        } => {
            d.set_item("open_wait", initial.as_secs_f64())?;
            d.set_item("open_wait_multiplier", multiplier)?;
            d.set_item("open_wait_max", max.as_secs_f64())?;
        }
        // A function: shown as "function", with its cap.
        breakerbox::OpenWait::Custom { max, .. } => {
            d.set_item("open_wait", "function")?;
            d.set_item("open_wait_max", max.as_secs_f64())?;
        }
    }
    d.set_item("jitter", c.jitter)?;
    d.set_item("half_open_permits", c.half_open_permits)?;
    d.set_item("half_open_successes", c.half_open_successes)?;
    d.set_item(
        "max_half_open_wait",
        c.max_half_open_wait.map(|w| w.as_secs_f64()),
    )?;
    d.set_item(
        "half_open_timeout_state",
        c.half_open_timeout_state.as_str(),
    )?;
    d.set_item(
        "half_open_decision",
        match c.half_open_decision {
            breakerbox::HalfOpenDecision::Rate => "rate",
            _ => "first_failure",
        },
    )?;
    d.set_item("initial_state", c.initial_state.as_str())?;
    d.set_item("automatic_half_open", c.automatic_half_open)?;
    Ok(d)
}
