//! Fleet mode: breakers of one name in several processes agree through Redis (the core's
//! `breakerbox::fleet`). `Fleet` holds the settings (keyword arguments, checked when it is
//! made); `Fleet.attach(breaker)` starts the breaker's sync task and returns a `FleetSync`.
//!
//! The sync tasks run on a tokio runtime this module owns: one worker thread, started the
//! first time a breaker is attached and shared by every sync of the process. No call ever
//! waits on it; fleet events reach the Python callback on that thread (with the GIL taken).

use crate::breaker::Breaker;
use crate::convert::{to_u32, type_name, Kw};
use crate::errors::config_error;
use crate::registry::Registry;
use breakerbox::fleet::{FleetConfig, FleetError, FleetEvent};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::sync::{Mutex, OnceLock};

const FLEET_KEYS: &[&str] = &[
    "url",
    "nodes",
    "prefix",
    "instance",
    "sync_interval",
    "fleet_trials",
    "lease_ttl",
    "timeout",
    "aggregate",
    "on_event",
];

/// The most cluster nodes `nodes` may list (as the core allows).
const MAX_NODES: usize = 1000;

static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();

/// The runtime of every sync task: multi-thread with one worker, created on first use.
fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("breakerbox-fleet")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the fleet runtime: {e}")))
}

fn str_arg(key: &str, v: &Bound<'_, PyAny>) -> PyResult<String> {
    v.downcast::<PyString>()
        .map(|s| s.to_string())
        .map_err(|_| PyTypeError::new_err(format!("`{key}` must be a str, not {}", type_name(v))))
}

/// The core's error as a `ConfigError` naming the keyword argument, with ranges in seconds.
fn fleet_error(py: Python<'_>, e: FleetError) -> PyErr {
    match e {
        FleetError::Invalid { field, reason } => {
            let reason = match field {
                "sync_interval" | "timeout" => "must be within 0.001 ..= 60 seconds".to_string(),
                "lease_ttl" => {
                    "must be more than two sync intervals and at most 3600 seconds".to_string()
                }
                _ => reason,
            };
            config_error(py, field, format!("invalid `{field}`: {reason}"))
        }
        FleetError::AlreadyAttached => PyRuntimeError::new_err(e.to_string()),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}

/// Fleet settings: breakers of one name in several processes agree through Redis. Give `url`
/// (one Redis server) or `nodes` (some nodes of a Redis Cluster), then `attach(breaker)`.
#[pyclass(frozen, module = "breakerbox_rs._breakerbox", name = "Fleet")]
pub(crate) struct Fleet {
    config: FleetConfig,
    on_event: Option<Py<PyAny>>,
}

#[pymethods]
impl Fleet {
    #[new]
    #[pyo3(signature = (url=None, **kwargs))]
    fn new(
        py: Python<'_>,
        url: Option<Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        if let Some(d) = kwargs {
            for k in d.keys() {
                let k: String = k.extract()?;
                if !FLEET_KEYS.contains(&k.as_str()) || k == "url" {
                    return Err(PyTypeError::new_err(format!(
                        "unexpected keyword argument `{k}`"
                    )));
                }
            }
        }
        let kw = Kw { dict: kwargs };
        let mut config = match (url, kw.raw("nodes")?.flatten()) {
            (Some(url), None) => FleetConfig::new(str_arg("url", &url)?),
            (None, Some(nodes)) => {
                if nodes.is_instance_of::<PyString>() {
                    return Err(PyTypeError::new_err(
                        "`nodes` must be a list of URLs, not a str",
                    ));
                }
                let mut list = Vec::new();
                for node in nodes.try_iter().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "`nodes` must be a list of URLs, not {}",
                        type_name(&nodes)
                    ))
                })? {
                    if list.len() == MAX_NODES {
                        return Err(config_error(
                            py,
                            "nodes",
                            format!("invalid `nodes`: must list 1 ..= {MAX_NODES} cluster nodes"),
                        ));
                    }
                    list.push(str_arg("nodes", &node?)?);
                }
                FleetConfig::cluster(list)
            }
            _ => {
                return Err(PyTypeError::new_err(
                    "give `url` (one Redis server) or `nodes` (a Redis Cluster), one of them",
                ))
            }
        };
        if let Some(v) = kw.raw("prefix")?.flatten() {
            config = config.prefix(str_arg("prefix", &v)?);
        }
        if let Some(v) = kw.raw("instance")?.flatten() {
            config = config.instance(str_arg("instance", &v)?);
        }
        if let Some(Some(d)) = kw.secs(py, "sync_interval")? {
            config = config.sync_interval(d);
        }
        if let Some(Some(d)) = kw.secs(py, "lease_ttl")? {
            config = config.lease_ttl(d);
        }
        if let Some(Some(d)) = kw.secs(py, "timeout")? {
            config = config.timeout(d);
        }
        match kw.raw("fleet_trials")? {
            None => {}
            Some(None) => config = config.fleet_trials(None),
            Some(Some(v)) => config = config.fleet_trials(Some(to_u32(py, "fleet_trials", &v)?)),
        }
        if let Some(v) = kw.raw("aggregate")?.flatten() {
            let on = v
                .downcast::<pyo3::types::PyBool>()
                .map_err(|_| {
                    PyTypeError::new_err(format!(
                        "`aggregate` must be a bool, not {}",
                        type_name(&v)
                    ))
                })?
                .is_true();
            config = config.aggregate(on);
        }
        let on_event = match kw.raw("on_event")?.flatten() {
            Some(f) if f.is_callable() => Some(f.unbind()),
            Some(f) => {
                return Err(PyTypeError::new_err(format!(
                    "`on_event` must be callable, not {}",
                    type_name(&f)
                )))
            }
            None => None,
        };
        config.check().map_err(|e| fleet_error(py, e))?;
        Ok(Fleet { config, on_event })
    }

    /// Starts syncing `breaker` (a `CircuitBreaker`) with the fleet; returns the `FleetSync`
    /// that stops it (`stop()`, or when it is garbage-collected; the sync also ends when the
    /// breaker is). Fleet events go to `on_event(event)` with the breaker's name under
    /// `"breaker"`.
    fn attach(&self, py: Python<'_>, breaker: &Bound<'_, PyAny>) -> PyResult<FleetSync> {
        let native = native::<Breaker>(breaker, "_core", "breaker", "CircuitBreaker")?;
        let inner = native.get().inner.clone();
        let rt = runtime()?;
        let _entered = rt.enter();
        let sync = self
            .with_listener(py)
            .attach(&inner)
            .map_err(|e| fleet_error(py, e))?;
        Ok(FleetSync {
            sync: Mutex::new(Some(sync)),
        })
    }

    /// Syncs every breaker of `registry` (a `Registry`) with the fleet: those it holds now,
    /// and each one it creates later, as it is created; returns the `RegistrySync` that stops
    /// them. A breaker that cannot be attached runs alone and gives an event of kind
    /// `not_attached`.
    fn attach_registry(
        &self,
        py: Python<'_>,
        registry: &Bound<'_, PyAny>,
    ) -> PyResult<RegistrySync> {
        let native = native::<Registry>(registry, "_native", "registry", "Registry")?;
        let rt = runtime()?;
        let _entered = rt.enter();
        let sync = self
            .with_listener(py)
            .attach_registry(&native.get().inner)
            .map_err(|e| fleet_error(py, e))?;
        Ok(RegistrySync {
            sync: Mutex::new(Some(sync)),
        })
    }

    fn __repr__(&self) -> String {
        format!("Fleet({:?})", self.config)
    }
}

/// The native object behind `obj`: `obj` itself, or the Python wrapper's `attr` (the argument
/// `arg` must be a `what` otherwise: `TypeError`).
fn native<'py, T: pyo3::PyClass>(
    obj: &Bound<'py, PyAny>,
    attr: &str,
    arg: &str,
    what: &str,
) -> PyResult<Bound<'py, T>> {
    if let Ok(t) = obj.downcast::<T>() {
        return Ok(t.clone());
    }
    obj.getattr(attr)
        .ok()
        .and_then(|a| a.downcast_into::<T>().ok())
        .ok_or_else(|| {
            PyTypeError::new_err(format!("`{arg}` must be a {what}, not {}", type_name(obj)))
        })
}

impl Fleet {
    /// The settings, with `on_event` called (with the GIL taken) on a dict of each event that
    /// names its breaker; an exception it raises goes to `sys.unraisablehook`.
    fn with_listener(&self, py: Python<'_>) -> FleetConfig {
        let config = self.config.clone();
        let Some(cb) = &self.on_event else {
            return config;
        };
        let cb = cb.clone_ref(py);
        config.on_breaker_event(move |name, e| {
            crate::gil::with_gil(|py| {
                let cb = cb.bind(py);
                if let Err(err) = event_dict(py, name, e).and_then(|d| cb.call1((d,))) {
                    err.write_unraisable(py, Some(cb));
                }
            });
        })
    }
}

/// A fleet event as a dict: `kind` (`connected`, `unavailable`, `malformed`, `published`,
/// `applied`, `trial_lease`, `fleet_trip`, `not_attached`), `breaker`, and the kind's fields.
fn event_dict<'py>(py: Python<'py>, breaker: &str, e: &FleetEvent) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("breaker", breaker)?;
    let kind = match e {
        FleetEvent::Connected => "connected",
        FleetEvent::Unavailable { error, retry_in } => {
            d.set_item("error", error)?;
            d.set_item("retry_in", retry_in.as_secs_f64())?;
            "unavailable"
        }
        FleetEvent::Malformed { key, value } => {
            d.set_item("key", key)?;
            d.set_item("value", value)?;
            "malformed"
        }
        FleetEvent::Published { state, epoch } => {
            d.set_item("state", state.as_str())?;
            d.set_item("epoch", epoch)?;
            "published"
        }
        FleetEvent::Applied { state, from, wait } => {
            d.set_item("state", state.as_str())?;
            d.set_item("from_instance", from)?;
            d.set_item("wait", wait.map(|w| w.as_secs_f64()))?;
            "applied"
        }
        FleetEvent::TrialLease { held } => {
            d.set_item("held", held)?;
            "trial_lease"
        }
        FleetEvent::NotAttached { error } => {
            d.set_item("error", error.to_string())?;
            "not_attached"
        }
        FleetEvent::FleetTrip {
            calls,
            failures,
            slow,
            instances,
        } => {
            d.set_item("calls", calls)?;
            d.set_item("failures", failures)?;
            d.set_item("slow_calls", slow)?;
            d.set_item("instances", instances)?;
            "fleet_trip"
        }
        other => {
            d.set_item("description", format!("{other:?}"))?;
            "other"
        }
    };
    d.set_item("kind", kind)?;
    Ok(d)
}

/// A running fleet sync. `stop()` ends it (so does garbage collection); the breaker keeps its
/// state.
#[pyclass(frozen, module = "breakerbox_rs._breakerbox", name = "FleetSync")]
pub(crate) struct FleetSync {
    sync: Mutex<Option<breakerbox::fleet::FleetSync>>,
}

#[pymethods]
impl FleetSync {
    /// Stops the sync task (nothing if already stopped).
    fn stop(&self) {
        let sync = self.sync.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(sync);
    }

    /// Whether the sync task is running.
    #[getter]
    fn running(&self) -> bool {
        self.sync
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|s| s.is_running())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) {
        self.stop();
    }
}

/// The fleet syncs of a registry's breakers (`Fleet.attach_registry`). `stop()` ends them (so
/// does garbage collection); breakers the registry creates afterwards are not synced.
#[pyclass(frozen, module = "breakerbox_rs._breakerbox", name = "RegistrySync")]
pub(crate) struct RegistrySync {
    sync: Mutex<Option<breakerbox::fleet::RegistrySync>>,
}

#[pymethods]
impl RegistrySync {
    /// Stops every sync (nothing if already stopped).
    fn stop(&self) {
        let sync = self.sync.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(sync);
    }

    /// How many breakers are synced (those that could not be attached are not counted).
    #[getter]
    fn attached(&self) -> usize {
        self.sync
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |s| s.attached())
    }

    /// How many of the syncs are running.
    #[getter]
    fn running(&self) -> usize {
        self.sync
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |s| s.running())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) {
        self.stop();
    }
}

/// Registers the fleet classes.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Fleet>()?;
    m.add_class::<FleetSync>()?;
    m.add_class::<RegistrySync>()?;
    Ok(())
}
