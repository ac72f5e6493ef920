//! Counters and gauges through the [`metrics`] facade (feature `metrics`), fed by an
//! event listener.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `breakerbox_calls_total` | counter | `breaker`, `outcome` (`success`, `failure`) |
//! | `breakerbox_slow_calls_total` | counter | `breaker` |
//! | `breakerbox_rejected_total` | counter | `breaker`, `state` |
//! | `breakerbox_late_total` | counter | `breaker` |
//! | `breakerbox_transitions_total` | counter | `breaker`, `from`, `to` |
//! | `breakerbox_state` | gauge, 1 for the current state and 0 for the one left | `breaker`, `state` |
//!
//! ```
//! use breakerbox::{install_metrics, metrics_listener, CircuitBreaker, Config, Registry};
//!
//! let breaker = CircuitBreaker::builder().name("db").build().unwrap();
//! install_metrics(&breaker); // listener + the initial state gauge
//!
//! let registry = Registry::new(Config::default());
//! registry.on_event(metrics_listener()); // every breaker, existing and future
//! ```
//!
//! The listener runs on the calling thread for every recorded outcome and rejection, and the
//! facade looks the metric up by name and labels each time: a few hundred nanoseconds per call
//! with a typical recorder. Breakers without listeners pay nothing.

use crate::{CircuitBreaker, Clock, Event, EventKind, Outcome, State};

const STATES: [State; 6] = [
    State::Closed,
    State::Open,
    State::HalfOpen,
    State::ForcedOpen,
    State::Disabled,
    State::MetricsOnly,
];

/// A listener that reports every event of the breakers it is registered on to the `metrics`
/// facade (see the [module documentation](self)). Register it with
/// [`CircuitBreaker::on_event`] or [`Registry::on_event`](crate::Registry::on_event).
pub fn metrics_listener() -> impl Fn(&Event<'_>) + Send + Sync + 'static {
    record_event
}

/// Registers [`metrics_listener`] on `breaker` and sets its state gauge to the current state
/// (the gauge otherwise only moves on the first transition).
pub fn install_metrics<C: Clock>(breaker: &CircuitBreaker<C>) {
    set_state_gauge(breaker.name(), breaker.state());
    breaker.on_event(metrics_listener());
}

fn set_state_gauge(breaker: &str, current: State) {
    for s in STATES {
        ::metrics::gauge!(
            "breakerbox_state",
            "breaker" => breaker.to_string(),
            "state" => s.as_str()
        )
        .set(if s == current { 1.0 } else { 0.0 });
    }
}

fn record_event(e: &Event<'_>) {
    let breaker = e.breaker.to_string();
    match e.kind {
        EventKind::Recorded { outcome, slow } => {
            let outcome = match outcome {
                Outcome::Success => "success",
                Outcome::Failure => "failure",
                // Ignored outcomes are not reported as `Recorded`.
                Outcome::Ignore => return,
            };
            ::metrics::counter!(
                "breakerbox_calls_total",
                "breaker" => breaker.clone(),
                "outcome" => outcome
            )
            .increment(1);
            if slow {
                ::metrics::counter!("breakerbox_slow_calls_total", "breaker" => breaker)
                    .increment(1);
            }
        }
        EventKind::Rejected { state, .. } => {
            ::metrics::counter!(
                "breakerbox_rejected_total",
                "breaker" => breaker,
                "state" => state.as_str()
            )
            .increment(1);
        }
        EventKind::Late { .. } => {
            ::metrics::counter!("breakerbox_late_total", "breaker" => breaker).increment(1);
        }
        EventKind::Transition(t) => {
            ::metrics::counter!(
                "breakerbox_transitions_total",
                "breaker" => breaker.clone(),
                "from" => t.from.as_str(),
                "to" => t.to.as_str()
            )
            .increment(1);
            ::metrics::gauge!(
                "breakerbox_state",
                "breaker" => breaker.clone(),
                "state" => t.from.as_str()
            )
            .set(0.0);
            ::metrics::gauge!(
                "breakerbox_state",
                "breaker" => breaker,
                "state" => t.to.as_str()
            )
            .set(1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    /// Keeps every counter and gauge, keyed by `name{label=value,...}`.
    #[derive(Default)]
    struct TestRecorder(Mutex<HashMap<String, Arc<AtomicU64>>>);

    impl TestRecorder {
        fn cell(&self, key: &Key) -> Arc<AtomicU64> {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let k = format!("{}{{{}}}", key.name(), labels.join(","));
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(map.entry(k).or_default())
        }

        fn get(&self, k: &str) -> u64 {
            let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            map.get(k).map_or(0, |c| c.load(Ordering::SeqCst))
        }

        fn gauge(&self, k: &str) -> f64 {
            f64::from_bits(self.get(k))
        }
    }

    impl Recorder for TestRecorder {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(self.cell(key))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(self.cell(key))
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    #[test]
    fn counters_and_state_gauge() {
        let rec = TestRecorder::default();
        ::metrics::with_local_recorder(&rec, || {
            let b = CircuitBreaker::builder()
                .name("db")
                .consecutive_failures(2)
                .clock(crate::ManualClock::new())
                .build()
                .expect("valid config");
            install_metrics(&b);
            assert_eq!(rec.gauge("breakerbox_state{breaker=db,state=closed}"), 1.0);
            let _ = b.call(|| Ok::<_, ()>(()));
            let _ = b.call(|| Err::<(), _>(()));
            let _ = b.call(|| Err::<(), _>(()));
            let _ = b.call(|| Ok::<_, ()>(()));
        });
        assert_eq!(
            rec.get("breakerbox_calls_total{breaker=db,outcome=success}"),
            1
        );
        assert_eq!(
            rec.get("breakerbox_calls_total{breaker=db,outcome=failure}"),
            2
        );
        assert_eq!(
            rec.get("breakerbox_rejected_total{breaker=db,state=open}"),
            1
        );
        assert_eq!(
            rec.get("breakerbox_transitions_total{breaker=db,from=closed,to=open}"),
            1
        );
        assert_eq!(rec.gauge("breakerbox_state{breaker=db,state=closed}"), 0.0);
        assert_eq!(rec.gauge("breakerbox_state{breaker=db,state=open}"), 1.0);
    }
}
