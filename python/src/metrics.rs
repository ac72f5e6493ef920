//! Metrics rendered as a dict.

use breakerbox::Metrics;
use pyo3::prelude::*;
use pyo3::types::PyDict;

pub(crate) fn metrics_dict<'py>(py: Python<'py>, m: &Metrics) -> PyResult<Bound<'py, PyDict>> {
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
    d.set_item("half_open_trials", m.half_open_trials)?;
    d.set_item("half_open_trial_failures", m.half_open_trial_failures)?;
    d.set_item("half_open_trial_slow_calls", m.half_open_trial_slow_calls)?;
    d.set_item("retry_after", m.retry_after.map(|w| w.as_secs_f64()))?;
    d.set_item("listener_panics", m.listener_panics)?;
    Ok(d)
}
