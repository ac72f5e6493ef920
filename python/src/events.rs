//! Events for Python callbacks: the core's events rendered as dicts, and the listener that
//! calls a callback for the kinds it asked for.

use crate::classify::outcome_str;
use breakerbox::{Event, EventKind, TransitionReason};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::borrow::Cow;

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
pub(crate) fn listener(
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
        crate::gil::with_gil(|py| {
            let cb = callback.bind(py);
            if let Err(err) = event_dict(py, e).and_then(|d| cb.call1((d,))) {
                err.write_unraisable(py, Some(cb));
            }
        });
    })
}
