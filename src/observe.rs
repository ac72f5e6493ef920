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
//! let registry = Registry::new(Config::default()).unwrap();
//! registry.on_event(metrics_listener()); // every breaker, existing and future
//! ```
//!
//! The listener runs on the calling thread for every recorded outcome and rejection, and the
//! facade looks the metric up by name and labels each time: a few hundred nanoseconds per call
//! with a typical recorder. Breakers without listeners pay nothing.
//!
//! # The state gauge under racing transitions
//! Transition events of racing threads can reach a listener out of order. Each listener keeps,
//! per breaker name and under a lock taken for transitions only, the generation of the last
//! state it exported, and ignores a transition older than that (generations wrap; one more
//! than 2^20 transitions behind counts as newer). Once transitions stop, `breakerbox_state`
//! shows the breaker's state.

use crate::{CircuitBreaker, Clock, Event, EventKind, Outcome, State};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const STATES: [State; 6] = State::ALL;

/// The width of [`Transition::generation`](crate::Transition::generation).
use crate::state::GEN_BITS;
const GEN_MASK: u32 = (1 << GEN_BITS) - 1;

/// Whether generation `g` is not older than `last`, modulo 2^GEN_BITS: `g` is at most half the
/// range ahead of `last`.
fn not_older(g: u32, last: u32) -> bool {
    g.wrapping_sub(last) & GEN_MASK < 1 << (GEN_BITS - 1)
}

/// Per breaker name, the generation of the state last exported to `breakerbox_state`.
#[derive(Default)]
struct StateGauge {
    last: Mutex<HashMap<String, u32>>,
}

impl StateGauge {
    /// Exports `state` as the state of `breaker` unless a newer generation was exported.
    fn apply(&self, breaker: &str, generation: u32, state: State) {
        // A panic under the lock (in a recorder) leaves the map consistent.
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match last.get_mut(breaker) {
            Some(g) if !not_older(generation, *g) => return,
            Some(g) => *g = generation,
            None => {
                last.insert(breaker.to_string(), generation);
            }
        }
        // Under the lock: two transitions never interleave their gauge writes.
        set_state_gauge(breaker, state);
    }
}

/// A listener that reports every event of the breakers it is registered on to the `metrics`
/// facade (see the [module documentation](self)). Register it with
/// [`CircuitBreaker::on_event`] or [`Registry::on_event`](crate::Registry::on_event).
pub fn metrics_listener() -> impl Fn(&Event<'_>) + Send + Sync + 'static {
    let gauge = StateGauge::default();
    move |e| record_event(&gauge, e)
}

/// Registers [`metrics_listener`] on `breaker` and sets its state gauge to the current state
/// (the gauge otherwise only moves on the first transition).
pub fn install_metrics<C: Clock>(breaker: &CircuitBreaker<C>) {
    let gauge = Arc::new(StateGauge::default());
    let listener_gauge = Arc::clone(&gauge);
    breaker.on_event(move |e| record_event(&listener_gauge, e));
    // The generation first, then the state: the state read is of that generation or a later
    // one (two loads of one atomic), so a transition event carrying a later generation still
    // replaces it, and one the listener already applied makes this stale snapshot ignored.
    let generation = breaker.generation();
    gauge.apply(breaker.name(), generation, breaker.state());
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

fn record_event(gauge: &StateGauge, e: &Event<'_>) {
    let breaker = e.breaker.to_string();
    match e.kind {
        EventKind::Recorded { outcome, slow } => {
            let outcome = match outcome {
                Outcome::Success => "success",
                // A trip is recorded as a failure (and reported as one).
                Outcome::Failure | Outcome::Trip => "failure",
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
                ::metrics::counter!(
                    "breakerbox_slow_calls_total",
                    "breaker" => breaker,
                    "outcome" => outcome
                )
                .increment(1);
            }
        }
        EventKind::Ignored => {
            ::metrics::counter!("breakerbox_ignored_total", "breaker" => breaker).increment(1);
        }
        EventKind::RateExceeded(reason) => {
            let rule = match reason {
                crate::TripReason::SlowCallRate { .. } => "slow_call_rate",
                _ => "failure_rate",
            };
            ::metrics::counter!(
                "breakerbox_rate_exceeded_total",
                "breaker" => breaker,
                "rule" => rule
            )
            .increment(1);
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
                "breaker" => breaker,
                "from" => t.from.as_str(),
                "to" => t.to.as_str()
            )
            .increment(1);
            gauge.apply(e.breaker, t.generation, t.to);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };
    use std::sync::atomic::{AtomicU64, Ordering};

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

    /// The exported state of every breaker: the state gauge that is 1, and the number of
    /// gauges that are 1.
    fn exported_state(rec: &TestRecorder, breaker: &str) -> (Option<State>, usize) {
        let on: Vec<State> = STATES
            .into_iter()
            .filter(|s| {
                rec.gauge(&format!(
                    "breakerbox_state{{breaker={breaker},state={}}}",
                    s.as_str()
                )) == 1.0
            })
            .collect();
        (on.first().copied(), on.len())
    }

    /// Threads racing manual transitions deliver their events in any order; once they stop,
    /// the state gauge shows the breaker's state (a regression test: a late event of an older
    /// transition overwrote it).
    #[test]
    fn state_gauge_is_the_final_state_after_racing_transitions() {
        const THREADS: usize = 4;
        let rec = Arc::new(TestRecorder::default());
        for round in 0..300 {
            let name = format!("race{round}");
            let b = Arc::new(
                CircuitBreaker::builder()
                    .name(name.as_str())
                    .clock(crate::ManualClock::new())
                    .build()
                    .expect("valid config"),
            );
            ::metrics::with_local_recorder(&*rec, || install_metrics(&b));
            let barrier = Arc::new(std::sync::Barrier::new(THREADS));
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (b, rec, barrier) = (b.clone(), rec.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        ::metrics::with_local_recorder(&*rec, || {
                            barrier.wait();
                            for i in 0..20 {
                                match (t + i) % 4 {
                                    0 => b.force_open(),
                                    1 => b.disable(),
                                    2 => b.metrics_only(),
                                    _ => b.reset(),
                                }
                            }
                        });
                    })
                })
                .collect();
            for h in handles {
                h.join().expect("thread panicked");
            }
            assert_eq!(
                exported_state(&rec, &name),
                (Some(b.state()), 1),
                "round {round}"
            );
        }
    }

    /// `GEN_BITS` here is the width of the generations breakers report: they wrap to 0 after
    /// 2^GEN_BITS transitions.
    #[test]
    fn generation_width() {
        let b = CircuitBreaker::builder()
            .clock(crate::ManualClock::new())
            .build()
            .expect("valid config");
        for _ in 0..(1u32 << (GEN_BITS - 1)) - 1 {
            b.force_open();
            b.reset();
        }
        b.force_open();
        assert_eq!(b.generation(), GEN_MASK);
        b.reset();
        assert_eq!(b.generation(), 0);
    }

    #[test]
    fn generation_order_wraps() {
        assert!(not_older(5, 5));
        assert!(not_older(6, 5));
        assert!(!not_older(4, 5));
        assert!(not_older(0, GEN_MASK));
        assert!(!not_older(GEN_MASK, 0));
        assert!(not_older(3, GEN_MASK - 2));
        assert!(not_older((1 << (GEN_BITS - 1)) - 1, 0));
        assert!(!not_older(1 << (GEN_BITS - 1), 0));
    }

    /// A transition event older than the state already exported changes no gauge.
    #[test]
    fn late_transition_event_is_ignored() {
        let rec = TestRecorder::default();
        let gauge = StateGauge::default();
        ::metrics::with_local_recorder(&rec, || {
            gauge.apply("db", 7, State::Open);
            gauge.apply("db", 6, State::Closed);
        });
        assert_eq!(exported_state(&rec, "db"), (Some(State::Open), 1));
    }
}
