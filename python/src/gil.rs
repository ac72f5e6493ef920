//! Entering Python from threads Python did not start: the fleet runtime's worker, the core's
//! timer and event threads (event callbacks, an `open_wait` function).
//!
//! When such a thread asks for the GIL while the interpreter is finalizing, CPython 3.11 and
//! older end it with `pthread_exit`, a forced unwind, and its Rust frames (tokio's task
//! harness, the core's guard around a listener) catch it: the process aborts with "FATAL:
//! exception not rethrown" (3.12 and newer hang the thread instead). So the package registers
//! an `atexit` hook ([`close`]), which runs before finalization starts: it closes a gate, so
//! that from then on a callback from such a thread is skipped, and waits, with the GIL
//! released, until the callbacks already inside have returned.

use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Set by [`close`]: no more callbacks.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// Callbacks between their check of `CLOSED` and their end.
static INSIDE: AtomicUsize = AtomicUsize::new(0);
/// Where [`close`] waits for `INSIDE` to reach 0.
static LEFT: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());

/// How long [`close`] waits for callbacks still running (one that never returns must not
/// keep the process from exiting).
const DRAIN: Duration = Duration::from_secs(5);

/// Runs `f` with the GIL, unless the interpreter is shutting down (`None` then).
pub(crate) fn with_gil<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            if INSIDE.fetch_sub(1, Ordering::SeqCst) == 1 {
                let _held = LEFT.0.lock().unwrap_or_else(|e| e.into_inner());
                LEFT.1.notify_all();
            }
        }
    }
    // SeqCst, with `close`'s store and load: a Dekker pair. Either this load sees the gate
    // closed, or `close`'s load of `INSIDE` sees this callback counted and waits for it.
    INSIDE.fetch_add(1, Ordering::SeqCst);
    let _leave = Leave;
    if CLOSED.load(Ordering::SeqCst) {
        return None;
    }
    Some(Python::with_gil(f))
}

/// The `atexit` hook: closes the gate and waits (at most [`DRAIN`], the GIL released) for the
/// callbacks already inside.
#[pyfunction]
fn close(py: Python<'_>) {
    CLOSED.store(true, Ordering::SeqCst);
    py.allow_threads(|| {
        let deadline = Instant::now() + DRAIN;
        let mut held = LEFT.0.lock().unwrap_or_else(|e| e.into_inner());
        while INSIDE.load(Ordering::SeqCst) > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            held = LEFT
                .1
                .wait_timeout(held, left.min(Duration::from_millis(10)))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    });
}

/// Registers [`close`] with `atexit`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let hook = wrap_pyfunction!(close, m)?;
    m.py().import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}
