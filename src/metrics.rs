//! Metrics: lifetime counters and a point-in-time [`Metrics`] snapshot.
//!
//! Counting is arranged so that the common paths pay nothing extra: successful calls are
//! counted by the window's own position counter, so only failures, slow calls, rejections and
//! rarer events have counters of their own. Each counter is a statistic that publishes no other
//! memory, so it is updated with `Relaxed` `fetch_add`s and read with `Relaxed` loads.

use crate::state::State;
use crate::sync::{atomic_u64, AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use std::fmt::Write as _;
use std::time::Duration;

/// A snapshot of one breaker's state and counters.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Metrics {
    /// The breaker's name.
    pub name: String,
    /// The stored state (an OPEN breaker whose wait has elapsed turns HALF-OPEN at the next
    /// acquire).
    pub state: State,
    /// Outcomes recorded (successes and failures; ignored and late outcomes are not). Never
    /// decreases from one snapshot to the next (see [`Metrics::successes`]).
    pub calls: u64,
    /// Successful calls: `calls - failures`. Derived, not counted (counting every success would
    /// put a shared counter on the hot path), so a snapshot taken while a failure is in flight
    /// (claimed in the window, not yet counted as a failure) shows it as a success, and the next
    /// snapshot corrects it: this one field can step back. Every counter exported to Prometheus
    /// is monotone.
    pub successes: u64,
    /// Failed calls (including timeouts).
    pub failures: u64,
    /// Slow calls (successful or not).
    pub slow_calls: u64,
    /// Slow calls that failed (so `slow_calls - slow_failures` were slow successes).
    pub slow_failures: u64,
    /// Calls whose outcome was `Ignore`.
    pub ignored: u64,
    /// Calls rejected without running, over the breaker's life (a Prometheus counter).
    pub rejected: u64,
    /// Calls rejected since the current state began (resilience4j's not-permitted count,
    /// which restarts with each state). Read as the lifetime count minus its value at the
    /// transition, so a rejection racing the transition may land on either side.
    pub rejected_in_state: u64,
    /// Outcomes that arrived after the breaker had moved to another generation.
    pub late: u64,
    /// How many times the breaker opened (automatically).
    pub times_opened: u64,
    /// Calls in the current window.
    pub window_calls: u64,
    /// Failures in the current window.
    pub window_failures: u64,
    /// Slow calls in the current window.
    pub window_slow_calls: u64,
    /// Failure rate over the current window (0 when it is empty).
    pub failure_rate: f64,
    /// Slow-call rate over the current window (0 when it is empty).
    pub slow_call_rate: f64,
    /// Whether the window holds at least `minimum_calls` calls, so that the rates above are
    /// evaluated against their thresholds. Before that they are plain ratios, shown but not
    /// acted on (resilience4j reports -1 instead): a dashboard should not show 100 % after one
    /// failure as if it were a verdict.
    pub rates_ready: bool,
    /// HALF-OPEN: trial calls in flight.
    pub half_open_in_flight: u32,
    /// HALF-OPEN: trial calls of the current half-open period that have reported (0 in any
    /// other state). With the default decision every one of them succeeded (a failed trial
    /// ends the period); with `half_open_decision = rate` they include failures and slow calls.
    pub half_open_trials: u32,
    /// HALF-OPEN: failed trial calls of the current period (`half_open_decision = rate` only;
    /// with the first-failure decision a failed trial re-opens the breaker at once).
    pub half_open_trial_failures: u32,
    /// HALF-OPEN: slow trial calls of the current period (`half_open_decision = rate` only).
    pub half_open_trial_slow_calls: u32,
    /// OPEN: time left before trial calls are admitted.
    pub retry_after: Option<Duration>,
    /// Event-listener calls that panicked (caught and counted; the breaker carried on).
    pub listener_panics: u64,
}

impl Metrics {
    /// Renders snapshots in the Prometheus text exposition format.
    ///
    /// ```
    /// let breaker = breakerbox::CircuitBreaker::builder().name("db").build().unwrap();
    /// let text = breakerbox::Metrics::to_prometheus(&[breaker.metrics()]);
    /// assert!(text.contains("breakerbox_state{breaker=\"db\",state=\"closed\"} 1"));
    /// ```
    ///
    /// As a method, on one snapshot or on a slice of them (a registry's), through
    /// [`PrometheusText`]:
    ///
    /// ```
    /// use breakerbox::{Config, PrometheusText, Registry};
    ///
    /// let registry = Registry::new(Config::default()).unwrap();
    /// let db = registry.get("db");
    /// let one = db.metrics().to_prometheus();
    /// let all = registry.metrics().to_prometheus();
    /// assert!(one.contains("breakerbox_state{breaker=\"db\",state=\"closed\"} 1"));
    /// assert_eq!(one, all);
    /// ```
    pub fn to_prometheus(all: &[Metrics]) -> String {
        let mut out = String::new();
        let counters: [Series<u64>; 8] = [
            ("calls_total", "Outcomes recorded.", |m| m.calls),
            ("failures_total", "Failed calls.", |m| m.failures),
            ("slow_calls_total", "Slow calls.", |m| m.slow_calls),
            ("slow_failures_total", "Slow calls that failed.", |m| {
                m.slow_failures
            }),
            ("ignored_total", "Ignored outcomes.", |m| m.ignored),
            ("rejected_total", "Calls rejected without running.", |m| {
                m.rejected
            }),
            ("late_total", "Outcomes from an earlier generation.", |m| {
                m.late
            }),
            ("opened_total", "Times the breaker opened.", |m| {
                m.times_opened
            }),
        ];
        for (name, help, get) in counters {
            let _ = writeln!(out, "# HELP breakerbox_{name} {help}");
            let _ = writeln!(out, "# TYPE breakerbox_{name} counter");
            for m in all {
                let _ = writeln!(
                    out,
                    "breakerbox_{name}{{breaker=\"{}\"}} {}",
                    escape(&m.name),
                    get(m)
                );
            }
        }
        let gauges: [Series<f64>; 2] = [
            ("failure_rate", "Failure rate over the window.", |m| {
                m.failure_rate
            }),
            ("slow_call_rate", "Slow-call rate over the window.", |m| {
                m.slow_call_rate
            }),
        ];
        for (name, help, get) in gauges {
            let _ = writeln!(out, "# HELP breakerbox_{name} {help}");
            let _ = writeln!(out, "# TYPE breakerbox_{name} gauge");
            for m in all {
                let _ = writeln!(
                    out,
                    "breakerbox_{name}{{breaker=\"{}\"}} {}",
                    escape(&m.name),
                    get(m)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP breakerbox_state Current state (1 for the current one)."
        );
        let _ = writeln!(out, "# TYPE breakerbox_state gauge");
        for m in all {
            for s in State::ALL {
                let _ = writeln!(
                    out,
                    "breakerbox_state{{breaker=\"{}\",state=\"{}\"}} {}",
                    escape(&m.name),
                    s,
                    u8::from(m.state == s)
                );
            }
        }
        out
    }
}

/// A metric series: name, help text, and how to read it from a snapshot.
type Series<T> = (&'static str, &'static str, fn(&Metrics) -> T);

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Lifetime counters of the rarer events, on one cache line of their own.
pub(crate) struct Totals {
    pub failures: AtomicU64,
    pub slow: AtomicU64,
    pub slow_failures: AtomicU64,
    pub ignored: AtomicU64,
    pub late: AtomicU64,
    pub opened: AtomicU64,
    /// Outcomes of trial (half-open) calls.
    pub trial_calls: AtomicU64,
    /// Outcomes of calls admitted while disabled.
    pub pass_calls: AtomicU64,
}

/// A `Relaxed` counter (see the module doc).
#[inline]
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Reads a counter (see the module doc).
#[inline]
pub(crate) fn read(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

pub(crate) fn new_totals() -> CachePadded<Totals> {
    CachePadded::new(Totals {
        failures: atomic_u64(0),
        slow: atomic_u64(0),
        slow_failures: atomic_u64(0),
        ignored: atomic_u64(0),
        late: atomic_u64(0),
        opened: atomic_u64(0),
        trial_calls: atomic_u64(0),
        pass_calls: atomic_u64(0),
    })
}

/// Renders metrics in the Prometheus text exposition format as a method:
/// `breaker.metrics().to_prometheus()` for one breaker, `registry.metrics().to_prometheus()`
/// for all of a registry's. The same text as [`Metrics::to_prometheus`].
pub trait PrometheusText {
    /// The Prometheus text exposition of these metrics.
    fn to_prometheus(&self) -> String;
}

impl PrometheusText for Metrics {
    fn to_prometheus(&self) -> String {
        Metrics::to_prometheus(std::slice::from_ref(self))
    }
}

impl PrometheusText for [Metrics] {
    fn to_prometheus(&self) -> String {
        Metrics::to_prometheus(self)
    }
}
