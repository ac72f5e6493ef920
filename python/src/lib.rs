//! `breakerbox._breakerbox`: the native core of the Python package.
//!
//! Everything here runs with the GIL held: the breaker's operations are a few atomic
//! instructions that never block, so releasing the GIL around them would cost more than they
//! do. No Rust lock is held while Python code runs (the guarded function, a classifier, an
//! event callback); errors raised by an event callback are reported as unraisable and never
//! unwind into the core.

use breakerbox::{
    CircuitBreaker, Config, ConfigError, Event, EventKind, Metrics, Outcome, OwnedPermit, Rejected,
    State, TransitionReason, WindowConfig,
};
use pyo3::exceptions::{PyException, PyRuntimeError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

// ----- errors ------------------------------------------------------------------------------

static REJECTED_CLS: GILOnceCell<Py<PyType>> = GILOnceCell::new();
static CONFIG_ERROR_CLS: GILOnceCell<Py<PyType>> = GILOnceCell::new();
static METHOD_TYPE: GILOnceCell<Py<PyAny>> = GILOnceCell::new();

fn errors_class<'py>(
    py: Python<'py>,
    cell: &'static GILOnceCell<Py<PyType>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyType>> {
    cell.get_or_try_init(py, || {
        py.import("breakerbox._errors")?
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

/// A `breakerbox.ConfigError` (a `ValueError`) naming `field`.
fn config_error(py: Python<'_>, field: &str, message: String) -> PyErr {
    match errors_class(py, &CONFIG_ERROR_CLS, "ConfigError") {
        Ok(cls) => match cls.call1((message, field)) {
            Ok(e) => PyErr::from_value(e),
            Err(e) => e,
        },
        Err(e) => e,
    }
}

fn core_config_error(py: Python<'_>, e: ConfigError) -> PyErr {
    let field = py_field(e.field());
    let message = e
        .to_string()
        .replace(&format!("`{}`", e.field()), &format!("`{field}`"));
    config_error(py, field, message)
}

fn rejected_error(py: Python<'_>, name: &Py<PyString>, r: Rejected) -> PyErr {
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

// ----- configuration -----------------------------------------------------------------------

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
    "half_open_decision",
    "initial_state",
    "automatic_half_open",
];

struct Kw<'a, 'py> {
    dict: Option<&'a Bound<'py, PyDict>>,
}

impl<'py> Kw<'_, 'py> {
    /// `None`: not given; `Some(None)`: given as `None`.
    fn raw(&self, key: &str) -> PyResult<Option<Option<Bound<'py, PyAny>>>> {
        let Some(d) = self.dict else { return Ok(None) };
        Ok(d.get_item(key)?.map(|v| (!v.is_none()).then_some(v)))
    }

    fn float(&self, key: &str) -> PyResult<Option<Option<f64>>> {
        self.raw(key)?
            .map(|v| v.map(|v| to_float(key, &v)).transpose())
            .transpose()
    }

    fn int(&self, py: Python<'_>, key: &str) -> PyResult<Option<Option<u32>>> {
        self.raw(key)?
            .map(|v| v.map(|v| to_u32(py, key, &v)).transpose())
            .transpose()
    }

    fn secs(&self, py: Python<'_>, key: &str) -> PyResult<Option<Option<Duration>>> {
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

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn to_u32(py: Python<'_>, key: &str, v: &Bound<'_, PyAny>) -> PyResult<u32> {
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
fn to_duration(py: Python<'_>, key: &str, v: &Bound<'_, PyAny>) -> PyResult<Duration> {
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

/// Builds and validates a configuration from keyword arguments (see `CircuitBreaker`'s
/// docstring for their meaning).
fn parse_config(
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
    let wait = kw.secs(py, "open_wait")?.flatten();
    let max = kw.secs(py, "open_wait_max")?.flatten();
    let multiplier = kw.float("open_wait_multiplier")?.flatten();
    c.open_wait = match (wait, max) {
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
    if let Some(Some(d)) = kw.secs(py, "max_half_open_wait")? {
        c.max_half_open_wait = d;
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

// ----- classification ----------------------------------------------------------------------

/// Which exceptions count against the dependency.
struct Classify {
    /// A type or tuple of types (`isinstance`), or `None` with `predicate` set.
    expected: Option<Py<PyAny>>,
    /// A callable `exc -> bool` (`True`: failure).
    predicate: Option<Py<PyAny>>,
    /// Types whose exceptions record nothing.
    exclude: Option<Py<PyAny>>,
}

impl Classify {
    fn new(
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
    fn outcome(&self, py: Python<'_>, err: &PyErr) -> Outcome {
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

fn outcome_str(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::Failure => "failure",
        Outcome::Ignore => "ignore",
    }
}

// ----- events and metrics ------------------------------------------------------------------

/// `SomeVariant(..)` / `SomeVariant { .. }` (a `Debug` rendering) as `some_variant`: the names of
/// variants this crate does not know yet (the core's enums are `#[non_exhaustive]`).
fn snake_variant(debug: &str) -> String {
    let mut out = String::new();
    for (i, c) in debug
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .enumerate()
    {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn reason_code(r: &TransitionReason) -> Cow<'static, str> {
    Cow::Borrowed(match r {
        TransitionReason::Tripped(_) => "tripped",
        TransitionReason::OpenWaitElapsed => "open_wait_elapsed",
        TransitionReason::TrialsSucceeded { .. } => "trials_succeeded",
        TransitionReason::TrialFailed { .. } => "trial_failed",
        TransitionReason::HalfOpenTimedOut => "half_open_timed_out",
        TransitionReason::ForcedOpen => "forced_open",
        TransitionReason::Disabled => "disabled",
        TransitionReason::MetricsOnly => "metrics_only",
        TransitionReason::Reset => "reset",
        other => return Cow::Owned(snake_variant(&format!("{other:?}"))),
    })
}

/// The event kinds a callback can ask for by name.
const KINDS: [&str; 4] = ["transition", "rejected", "recorded", "late"];

fn kind_code(k: &EventKind) -> Cow<'static, str> {
    Cow::Borrowed(match k {
        EventKind::Transition(_) => KINDS[0],
        EventKind::Rejected { .. } => KINDS[1],
        EventKind::Recorded { .. } => KINDS[2],
        EventKind::Late { .. } => KINDS[3],
        other => return Cow::Owned(snake_variant(&format!("{other:?}"))),
    })
}

fn event_dict<'py>(py: Python<'py>, e: &Event<'_>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("breaker", e.breaker)?;
    d.set_item("kind", kind_code(&e.kind))?;
    match e.kind {
        EventKind::Transition(t) => {
            d.set_item("from_state", t.from.as_str())?;
            d.set_item("to_state", t.to.as_str())?;
            d.set_item("reason", reason_code(&t.reason))?;
            d.set_item("description", t.reason.to_string())?;
            d.set_item("generation", t.generation)?;
            d.set_item("open_wait", t.open_wait.map(|w| w.as_secs_f64()))?;
        }
        EventKind::Rejected { state, retry_after } => {
            d.set_item("state", state.as_str())?;
            d.set_item("retry_after", retry_after.map(|w| w.as_secs_f64()))?;
        }
        EventKind::Recorded { outcome, slow } => {
            d.set_item("outcome", outcome_str(outcome))?;
            d.set_item("slow", slow)?;
        }
        EventKind::Late { outcome } => {
            d.set_item("outcome", outcome_str(outcome))?;
        }
        ref other => d.set_item("description", format!("{other:?}"))?,
    }
    Ok(d)
}

/// A core listener calling `callback(event_dict)` for the event kinds in `kinds` (all when
/// `None`, including kinds added to the core later). Errors raised by the callback are reported
/// as unraisable, never propagated.
fn listener(
    callback: Py<PyAny>,
    kinds: Option<Vec<String>>,
) -> PyResult<impl Fn(&Event<'_>) + Send + Sync + 'static> {
    let mut mask = 0u8;
    match kinds {
        None => mask = u8::MAX,
        Some(ks) => {
            for k in ks {
                let i = KINDS.iter().position(|x| *x == k).ok_or_else(|| {
                    pyo3::exceptions::PyValueError::new_err(format!(
                        "invalid `kinds`: unknown event kind {k:?} (one of {KINDS:?})"
                    ))
                })?;
                mask |= 1 << i;
            }
        }
    }
    Ok(move |e: &Event<'_>| {
        let bit = match e.kind {
            EventKind::Transition(_) => 1,
            EventKind::Rejected { .. } => 2,
            EventKind::Recorded { .. } => 4,
            EventKind::Late { .. } => 8,
            _ => 16,
        };
        if mask & bit == 0 {
            return;
        }
        Python::with_gil(|py| {
            let cb = callback.bind(py);
            if let Err(err) = event_dict(py, e).and_then(|d| cb.call1((d,))) {
                err.write_unraisable(py, Some(cb));
            }
        });
    })
}

fn metrics_dict<'py>(py: Python<'py>, m: &Metrics) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &m.name)?;
    d.set_item("state", m.state.as_str())?;
    d.set_item("calls", m.calls)?;
    d.set_item("successes", m.successes)?;
    d.set_item("failures", m.failures)?;
    d.set_item("slow_calls", m.slow_calls)?;
    d.set_item("slow_failures", m.slow_failures)?;
    d.set_item("ignored", m.ignored)?;
    d.set_item("rejected", m.rejected)?;
    d.set_item("rejected_in_state", m.rejected_in_state)?;
    d.set_item("late", m.late)?;
    d.set_item("times_opened", m.times_opened)?;
    d.set_item("window_calls", m.window_calls)?;
    d.set_item("window_failures", m.window_failures)?;
    d.set_item("window_slow_calls", m.window_slow_calls)?;
    d.set_item("failure_rate", m.failure_rate)?;
    d.set_item("slow_call_rate", m.slow_call_rate)?;
    d.set_item("rates_ready", m.rates_ready)?;
    d.set_item("half_open_in_flight", m.half_open_in_flight)?;
    d.set_item("retry_after", m.retry_after.map(|w| w.as_secs_f64()))?;
    d.set_item("listener_panics", m.listener_panics)?;
    Ok(d)
}

fn config_dict<'py>(py: Python<'py>, c: &Config) -> PyResult<Bound<'py, PyDict>> {
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
    }
    d.set_item("jitter", c.jitter)?;
    d.set_item("half_open_permits", c.half_open_permits)?;
    d.set_item("half_open_successes", c.half_open_successes)?;
    d.set_item("max_half_open_wait", c.max_half_open_wait.as_secs_f64())?;
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

// ----- the breaker -------------------------------------------------------------------------

/// The native breaker: the core `CircuitBreaker` plus the exception classification.
/// `breakerbox.CircuitBreaker` wraps it; use that.
#[pyclass(frozen, module = "breakerbox._breakerbox", name = "Breaker")]
struct Breaker {
    inner: Arc<CircuitBreaker>,
    classify: Arc<Classify>,
    /// The name as a Python string, for rejections.
    py_name: Py<PyString>,
}

impl Breaker {
    #[inline]
    fn finish<'py>(
        &self,
        py: Python<'py>,
        permit: breakerbox::Permit<'_, breakerbox::DefaultClock>,
        result: PyResult<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match result {
            Ok(v) => {
                permit.success();
                Ok(v)
            }
            Err(e) => {
                permit.record(self.classify.outcome(py, &e));
                Err(e)
            }
        }
    }
}

#[pymethods]
impl Breaker {
    #[new]
    #[pyo3(signature = (*, expected_exception=None, exclude=None, **kwargs))]
    fn new(
        py: Python<'_>,
        expected_exception: Option<Bound<'_, PyAny>>,
        exclude: Option<Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let classify = Arc::new(Classify::new(py, expected_exception, exclude)?);
        let (config, name) = parse_config(py, kwargs)?;
        let mut b = CircuitBreaker::builder().config(config);
        if let Some(n) = name {
            b = b.name(n);
        }
        // Shared from the start: the form that supports `automatic_half_open`.
        let inner = b.build_shared().map_err(|e| core_config_error(py, e))?;
        Ok(Breaker {
            py_name: PyString::new(py, inner.name()).unbind(),
            inner,
            classify,
        })
    }

    /// The breaker's name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The stored state: `closed`, `open`, `half_open`, `forced_open`, `disabled`,
    /// `metrics_only`.
    #[getter]
    fn state(&self) -> &'static str {
        self.inner.state().as_str()
    }

    /// Generation: incremented by every transition.
    #[getter]
    fn generation(&self) -> u32 {
        self.inner.generation()
    }

    /// Whether a call would be admitted now (takes no permit, changes nothing).
    fn would_admit(&self) -> bool {
        self.inner.would_admit()
    }

    /// The effective configuration, as a dict of the keyword arguments.
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        config_dict(py, self.inner.config())
    }

    /// Calls `func(*args, **kwargs)` through the breaker. Raises `CircuitBreakerError` when
    /// it is not admitted; an exception from `func` is classified, recorded and re-raised.
    #[pyo3(signature = (func, /, *args, **kwargs))]
    fn call<'py>(
        &self,
        py: Python<'py>,
        func: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self.inner.try_acquire() {
            Ok(permit) => self.finish(py, permit, func.call(args, kwargs)),
            Err(r) => Err(rejected_error(py, &self.py_name, r)),
        }
    }

    /// A callable that calls `func` through the breaker (the sync decorator); `fallback`, when
    /// given, is called with the same arguments instead of raising `CircuitBreakerError`.
    #[pyo3(signature = (func, fallback=None))]
    fn wrap(
        slf: &Bound<'_, Self>,
        func: Bound<'_, PyAny>,
        fallback: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Guarded> {
        if !func.is_callable() {
            return Err(PyTypeError::new_err("`func` must be callable"));
        }
        Ok(Guarded {
            breaker: slf.clone().unbind(),
            func: func.unbind(),
            fallback: fallback.map(Bound::unbind),
        })
    }

    /// Takes a permit for one call, or raises `CircuitBreakerError`. Report the outcome on the
    /// permit; a permit garbage-collected unreported records nothing and gives a half-open
    /// trial slot back.
    fn acquire(&self, py: Python<'_>) -> PyResult<Permit> {
        match self.inner.try_acquire_owned() {
            Ok(p) => Ok(Permit {
                permit: Some(p),
                classify: Arc::clone(&self.classify),
            }),
            Err(r) => Err(rejected_error(py, &self.py_name, r)),
        }
    }

    /// Like `acquire`, but returns `None` instead of raising.
    fn try_acquire(&self) -> Option<Permit> {
        self.inner.try_acquire_owned().ok().map(|p| Permit {
            permit: Some(p),
            classify: Arc::clone(&self.classify),
        })
    }

    /// The outcome (`"failure"`, `"success"` or `"ignore"`) this breaker gives `exc`.
    fn classify(&self, py: Python<'_>, exc: Bound<'_, PyAny>) -> &'static str {
        outcome_str(self.classify.outcome(py, &PyErr::from_value(exc)))
    }

    /// Forces the breaker open until `reset()`.
    fn force_open(&self) {
        self.inner.force_open()
    }

    /// Admits everything and never trips, until `reset()`.
    fn disable(&self) {
        self.inner.disable()
    }

    /// Records (metrics, events) but never trips, until `reset()`.
    fn metrics_only(&self) {
        self.inner.metrics_only()
    }

    /// Back to CLOSED with an empty window.
    fn reset(&self) {
        self.inner.reset()
    }

    /// OPEN for `seconds` (0.001 ..= 86400) from any state, at the next backoff step.
    fn transition_to_open_for(&self, py: Python<'_>, seconds: Bound<'_, PyAny>) -> PyResult<()> {
        let d = to_duration(py, "seconds", &seconds)?;
        self.inner
            .transition_to_open_for(d)
            .map_err(|e| config_error(py, "seconds", format!("invalid `seconds`: {e}")))
    }

    /// HALF-OPEN now, every trial permit free (nothing if already half-open).
    fn transition_to_half_open(&self) {
        self.inner.transition_to_half_open()
    }

    /// CLOSED with an empty window and the backoff reset (nothing if already closed).
    fn transition_to_closed(&self) {
        self.inner.transition_to_closed()
    }

    /// OPEN -> HALF-OPEN now if the open wait has ended; `True` if this call did it.
    fn half_open_if_due(&self) -> bool {
        self.inner.half_open_if_due()
    }

    /// A snapshot of the counters, as a dict.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        metrics_dict(py, &self.inner.metrics())
    }

    /// The metrics in the Prometheus text format.
    fn prometheus(&self) -> String {
        Metrics::to_prometheus(&[self.inner.metrics()])
    }

    /// Calls `callback(event: dict)` on every event whose kind is in `kinds` (`"transition"`,
    /// `"rejected"`, `"recorded"`, `"late"`; all when `None`).
    #[pyo3(signature = (callback, kinds=None))]
    fn on_event(&self, callback: Bound<'_, PyAny>, kinds: Option<Vec<String>>) -> PyResult<()> {
        if !callback.is_callable() {
            return Err(PyTypeError::new_err("`callback` must be callable"));
        }
        self.inner.on_event(listener(callback.unbind(), kinds)?);
        Ok(())
    }

    /// Removes every event listener.
    fn clear_listeners(&self) {
        self.inner.clear_listeners()
    }

    fn __repr__(&self) -> String {
        format!(
            "<breakerbox Breaker {:?} state={}>",
            self.inner.name(),
            self.inner.state()
        )
    }
}

/// A function guarded by a breaker (what the decorator returns for a sync function).
#[pyclass(frozen, dict, module = "breakerbox._breakerbox")]
struct Guarded {
    breaker: Py<Breaker>,
    func: Py<PyAny>,
    fallback: Option<Py<PyAny>>,
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
        let py = slf.py();
        match obj {
            None => Ok(slf.clone().into_any()),
            Some(o) if o.is_none() => Ok(slf.clone().into_any()),
            Some(o) => {
                let mt = METHOD_TYPE.get_or_try_init(py, || {
                    py.import("types")?.getattr("MethodType").map(Bound::unbind)
                })?;
                mt.bind(py).call1((slf, o))
            }
        }
    }
}

/// Permission to make one call. Report with `success()`, `failure()`, `ignore()` or
/// `exception(exc)`; as a context manager it reports by itself. Dropped unreported: nothing is
/// recorded and a half-open trial slot is given back.
#[pyclass(module = "breakerbox._breakerbox")]
struct Permit {
    permit: Option<OwnedPermit<breakerbox::DefaultClock>>,
    classify: Arc<Classify>,
}

impl Permit {
    fn take(&mut self) -> PyResult<OwnedPermit<breakerbox::DefaultClock>> {
        self.permit
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("this permit's outcome was already reported"))
    }
}

#[pymethods]
impl Permit {
    /// The call succeeded.
    fn success(&mut self) -> PyResult<()> {
        self.take()?.success();
        Ok(())
    }

    /// The call failed.
    fn failure(&mut self) -> PyResult<()> {
        self.take()?.failure();
        Ok(())
    }

    /// The call says nothing about the dependency: nothing is recorded, a trial slot is
    /// given back (also what a cancelled call does).
    fn ignore(&mut self) -> PyResult<()> {
        self.take()?.ignore();
        Ok(())
    }

    /// Reports the call as having raised `exc`, classified by the breaker's rules; returns the
    /// outcome recorded (`"failure"`, `"success"` or `"ignore"`).
    fn exception(&mut self, py: Python<'_>, exc: Bound<'_, PyAny>) -> PyResult<&'static str> {
        let p = self.take()?;
        let o = self.classify.outcome(py, &PyErr::from_value(exc));
        p.record(o);
        Ok(outcome_str(o))
    }

    /// Whether the outcome is still to be reported.
    #[getter]
    fn pending(&self) -> bool {
        self.permit.is_some()
    }

    /// Whether this is a half-open trial permit.
    #[getter]
    fn is_trial(&self) -> bool {
        self.permit.as_ref().is_some_and(|p| p.is_trial())
    }

    /// The generation of the state that admitted the call (`None` once reported).
    #[getter]
    fn generation(&self) -> Option<u32> {
        self.permit.as_ref().map(|p| p.generation())
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Reports success, or the classified exception; never suppresses it.
    fn __exit__(
        &mut self,
        py: Python<'_>,
        _ty: Option<Bound<'_, PyAny>>,
        exc: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if let Some(p) = self.permit.take() {
            match exc {
                Some(e) if !e.is_none() => {
                    p.record(self.classify.outcome(py, &PyErr::from_value(e)))
                }
                _ => p.success(),
            }
        }
        Ok(false)
    }
}

// ----- the registry ------------------------------------------------------------------------

/// Named breakers created on first use. `breakerbox.Registry` wraps it.
#[pyclass(frozen, module = "breakerbox._breakerbox", name = "Registry")]
struct Registry {
    inner: breakerbox::Registry,
}

#[pymethods]
impl Registry {
    #[new]
    #[pyo3(signature = (*, capacity_limit=None, **kwargs))]
    fn new(
        py: Python<'_>,
        capacity_limit: Option<Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let (config, name) = parse_config(py, kwargs)?;
        if name.is_some() {
            return Err(PyTypeError::new_err(
                "a registry's breakers are named by `get(name)`; `name` is not a setting",
            ));
        }
        let mut inner = breakerbox::Registry::new(config).map_err(|e| core_config_error(py, e))?;
        if let Some(l) = capacity_limit {
            let n = to_u32(py, "capacity_limit", &l)?;
            inner = inner.with_capacity_limit(n as usize).map_err(|e| {
                config_error(
                    py,
                    "capacity_limit",
                    format!("invalid `capacity_limit`: {e}"),
                )
            })?;
        }
        Ok(Registry { inner })
    }

    /// Sets the configuration of the breaker `name` (applies when it is created).
    #[pyo3(signature = (name, **kwargs))]
    fn configure(
        &self,
        py: Python<'_>,
        name: String,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let (config, n) = parse_config(py, kwargs)?;
        if n.is_some() {
            return Err(PyTypeError::new_err("`name` is the first argument"));
        }
        self.inner
            .configure(name, config)
            .map_err(|e| core_config_error(py, e))
    }

    /// The breaker `name`, created on first use (the shared overflow breaker once the
    /// registry is full), classifying exceptions with `expected_exception` / `exclude`.
    #[pyo3(signature = (name, expected_exception=None, exclude=None))]
    fn get(
        &self,
        py: Python<'_>,
        name: &str,
        expected_exception: Option<Bound<'_, PyAny>>,
        exclude: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Breaker> {
        let classify = Arc::new(Classify::new(py, expected_exception, exclude)?);
        let inner = self.inner.get(name);
        Ok(Breaker {
            py_name: PyString::new(py, inner.name()).unbind(),
            inner,
            classify,
        })
    }

    /// The names of the breakers created so far.
    fn names(&self) -> Vec<String> {
        self.inner.names()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Metrics of every breaker, as dicts.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.inner
            .metrics()
            .iter()
            .map(|m| metrics_dict(py, m))
            .collect()
    }

    /// Metrics of every breaker in the Prometheus text format.
    fn prometheus(&self) -> String {
        Metrics::to_prometheus(&self.inner.metrics())
    }

    /// A listener on every breaker, existing and future (see `Breaker.on_event`).
    #[pyo3(signature = (callback, kinds=None))]
    fn on_event(&self, callback: Bound<'_, PyAny>, kinds: Option<Vec<String>>) -> PyResult<()> {
        if !callback.is_callable() {
            return Err(PyTypeError::new_err("`callback` must be callable"));
        }
        self.inner.on_event(listener(callback.unbind(), kinds)?);
        Ok(())
    }
}

/// States, for comparisons: `breaker.state == OPEN`.
fn add_states(m: &Bound<'_, PyModule>) -> PyResult<()> {
    for s in State::ALL {
        m.add(s.as_str().to_uppercase().as_str(), s.as_str())?;
    }
    Ok(())
}

#[pymodule]
fn _breakerbox(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Breaker>()?;
    m.add_class::<Guarded>()?;
    m.add_class::<Permit>()?;
    m.add_class::<Registry>()?;
    add_states(m)?;
    Ok(())
}
