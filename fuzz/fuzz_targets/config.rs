//! Arbitrary configurations, through the builder's setters or a whole `Config`: building never
//! panics; it fails exactly when an independent statement of the documented limits says the
//! configuration is invalid, with a typed `ConfigError` whose `field()` is non-empty and is
//! named by its message; a valid one builds a breaker that takes a few calls.
#![no_main]

use arbitrary::Arbitrary;
use breakerbox::{
    CircuitBreaker, Classification, Config, ConfigError, HalfOpenDecision, ManualClock, OpenWait,
    Rule, State, WindowConfig, MAX_HALF_OPEN, MAX_OPEN_WAIT, MAX_RATE_TRIALS,
};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use std::time::Duration;

/// A float, with the interesting values easy to reach.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum F {
    Raw(f64),
    Tenths(u8),
    Nan,
    Inf,
    NegInf,
    Zero,
    NegZero,
    One,
    JustAboveOne,
    Tiny,
}

impl F {
    fn get(self) -> f64 {
        match self {
            F::Raw(v) => v,
            F::Tenths(n) => f64::from(n) / 10.0,
            F::Nan => f64::NAN,
            F::Inf => f64::INFINITY,
            F::NegInf => f64::NEG_INFINITY,
            F::Zero => 0.0,
            F::NegZero => -0.0,
            F::One => 1.0,
            F::JustAboveOne => 1.0 + f64::EPSILON,
            F::Tiny => f64::MIN_POSITIVE,
        }
    }
}

/// A duration, from zero to `Duration::MAX`.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum D {
    Zero,
    Nanos(u16),
    Millis(u16),
    Secs(u32),
    Raw(Duration),
    Max,
    OneDay,
    JustOverOneDay,
}

impl D {
    fn get(self) -> Duration {
        match self {
            D::Zero => Duration::ZERO,
            D::Nanos(n) => Duration::from_nanos(n.into()),
            D::Millis(n) => Duration::from_millis(n.into()),
            D::Secs(n) => Duration::from_secs(n.into()),
            D::Raw(d) => d,
            D::Max => Duration::MAX,
            D::OneDay => Duration::from_secs(86_400),
            D::JustOverOneDay => Duration::from_secs(86_400) + Duration::from_nanos(1),
        }
    }
}

/// An integer, with the boundaries easy to reach.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum N {
    Small(u8),
    Raw(u32),
    Max,
    MaxHalfOpen,
    MaxCountWindow,
}

impl N {
    fn get(self) -> u32 {
        match self {
            N::Small(n) => n.into(),
            N::Raw(n) => n,
            N::Max => u32::MAX,
            N::MaxHalfOpen => MAX_HALF_OPEN,
            N::MaxCountWindow => (1 << 23) - 1,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Window {
    Count(N),
    Time(D, N),
}

#[derive(Arbitrary, Debug)]
enum Wait {
    Fixed(D),
    Exponential(D, F, D),
}

#[derive(Arbitrary, Debug)]
struct Input {
    via_setters: bool,
    failure_rate: Option<F>,
    slow_rate: Option<F>,
    slow_duration: D,
    consecutive: Option<N>,
    minimum_calls: N,
    window: Window,
    wait: Wait,
    jitter: F,
    permits: N,
    successes: N,
    max_half_open_wait: Option<D>,
    half_open_timeout_state: u8,
    call_timeout: Option<D>,
    by_rate: bool,
    initial_state: u8,
    automatic_half_open: bool,
    /// Classification rules: (list 0 ignore / 1 trip / 2 record, a status range or any error).
    rules: Vec<(u8, Option<(u16, u16)>)>,
    /// Calls to make if the configuration is valid.
    calls: Vec<(bool, u8)>,
}

impl Input {
    /// Every field, spelled out: a field added to `Config` breaks this build until the fuzz
    /// target generates it too.
    fn config(&self) -> Config {
        Config {
            failure_rate_threshold: self.failure_rate.map(F::get),
            slow_call_rate_threshold: self.slow_rate.map(F::get),
            slow_call_duration: self.slow_duration.get(),
            consecutive_failures: self.consecutive.map(N::get),
            minimum_calls: self.minimum_calls.get(),
            window: match self.window {
                Window::Count(n) => WindowConfig::Count { size: n.get() },
                Window::Time(d, n) => WindowConfig::Time {
                    duration: d.get(),
                    buckets: n.get(),
                },
            },
            open_wait: match self.wait {
                Wait::Fixed(d) => OpenWait::fixed(d.get()),
                Wait::Exponential(i, m, x) => OpenWait::Exponential {
                    initial: i.get(),
                    multiplier: m.get(),
                    max: x.get(),
                },
            },
            jitter: self.jitter.get(),
            half_open_permits: self.permits.get(),
            half_open_successes: self.successes.get(),
            max_half_open_wait: self.max_half_open_wait.map(D::get),
            half_open_timeout_state: State::ALL[usize::from(self.half_open_timeout_state % 6)],
            call_timeout: self.call_timeout.map(D::get),
            half_open_decision: if self.by_rate {
                HalfOpenDecision::Rate
            } else {
                HalfOpenDecision::FirstFailure
            },
            initial_state: State::ALL[usize::from(self.initial_state % 6)],
            automatic_half_open: self.automatic_half_open,
            classification: {
                let mut c = Classification::default();
                for &(list, status) in self.rules.iter().take(8) {
                    let rule = match status {
                        Some((from, to)) => Rule::status_range(from, to),
                        None => Rule::any_error(),
                    };
                    match list % 3 {
                        0 => c.ignore.push(rule),
                        1 => c.trip.push(rule),
                        _ => c.record.push(rule),
                    }
                }
                c
            },
        }
    }

    /// The same configuration through the builder's individual setters.
    fn build_via_setters(&self) -> Result<Arc<CircuitBreaker<ManualClock>>, ConfigError> {
        let c = self.config();
        let mut b = CircuitBreaker::builder().clock(ManualClock::new());
        b = match c.failure_rate_threshold {
            Some(t) => b.failure_rate_threshold(t),
            None => b.no_failure_rate(),
        };
        if let Some(t) = c.slow_call_rate_threshold {
            b = b.slow_calls(c.slow_call_duration, t);
        }
        if let Some(n) = c.consecutive_failures {
            b = b.consecutive_failures(n);
        }
        b = b.minimum_calls(c.minimum_calls);
        b = match c.window {
            WindowConfig::Count { size } => b.count_window(size),
            WindowConfig::Time { duration, buckets } => b.time_window(duration, buckets),
        };
        b = match &c.open_wait {
            OpenWait::Fixed { wait } => b.open_wait(*wait),
            w => b.open_wait_backoff(w.clone()),
        };
        b = b
            .jitter(c.jitter)
            .half_open_permits(c.half_open_permits)
            .half_open_successes(c.half_open_successes)
            .half_open_timeout_state(c.half_open_timeout_state)
            .half_open_decision(c.half_open_decision)
            .initial_state(c.initial_state)
            .automatic_half_open(c.automatic_half_open);
        if let Some(t) = c.call_timeout {
            b = b.call_timeout(t);
        }
        for r in &c.classification.ignore {
            b = b.ignore(r.clone());
        }
        for r in &c.classification.trip {
            b = b.trip_on(r.clone());
        }
        for r in &c.classification.record {
            b = b.record(r.clone());
        }
        b = match c.max_half_open_wait {
            Some(w) => b.max_half_open_wait(w),
            None => b.no_max_half_open_wait(),
        };
        // The setters cannot set a slow-call duration without the rule; the rest must match.
        let mut expect = c.clone();
        if expect.slow_call_rate_threshold.is_none() {
            expect.slow_call_duration = Config::default().slow_call_duration;
        }
        // Compared as text: NaN != NaN, but it must be carried over all the same.
        assert_eq!(
            format!("{:?}", b.current_config()),
            format!("{expect:?}"),
            "setters and Config disagree"
        );
        build(b, c.automatic_half_open)
    }
}

/// `build_shared` when the automatic timer is on (`build` must refuse it), `build` otherwise.
fn build(
    b: breakerbox::Builder<ManualClock>,
    automatic: bool,
) -> Result<Arc<CircuitBreaker<ManualClock>>, ConfigError> {
    if !automatic {
        return b.build().map(Arc::new);
    }
    let shared = b.clone().build_shared();
    if shared.is_ok() {
        assert_eq!(b.build().unwrap_err().field(), "automatic_half_open");
    }
    shared
}

/// Every status rule within HTTP statuses (100 ..= 999) and its range not empty, read from
/// each rule's printed form (`status 503`, `status 500-599`), independently of the validation.
fn statuses_ok(c: &Config) -> bool {
    let k = &c.classification;
    k.ignore.iter().chain(&k.trip).chain(&k.record).all(|r| {
        let text = format!("{r:?}");
        let Some(range) = text.strip_prefix("status ") else {
            return true;
        };
        let (from, to) = range.split_once('-').unwrap_or((range, range));
        let (from, to): (u16, u16) = (from.parse().unwrap(), to.parse().unwrap());
        (100..=999).contains(&from) && (100..=999).contains(&to) && from <= to
    })
}

/// The documented limits (`Config` field docs and `Config::validate`), stated independently.
fn valid(c: &Config) -> bool {
    let rate_ok = |r: Option<f64>| r.is_none_or(|r| r > 0.0 && r <= 1.0);
    let day = MAX_OPEN_WAIT;
    let ms = Duration::from_millis(1);
    let rate_rule = c.failure_rate_threshold.is_some() || c.slow_call_rate_threshold.is_some();
    rate_ok(c.failure_rate_threshold)
        && rate_ok(c.slow_call_rate_threshold)
        && (c.slow_call_rate_threshold.is_none() || !c.slow_call_duration.is_zero())
        && c.consecutive_failures != Some(0)
        && (rate_rule || c.consecutive_failures.is_some())
        && c.minimum_calls >= 1
        && match c.window {
            WindowConfig::Count { size } => {
                (1..=(1 << 23) - 1).contains(&size) && !(rate_rule && c.minimum_calls > size)
            }
            WindowConfig::Time { duration, buckets } => {
                (1..=10_000).contains(&buckets)
                    && duration >= ms
                    && duration <= Duration::from_secs(86_400)
                    && duration / buckets >= ms
            }
        }
        && match c.open_wait {
            OpenWait::Fixed { wait } => wait <= day,
            OpenWait::Custom { max, .. } => max <= day,
            OpenWait::Exponential {
                initial,
                multiplier,
                max,
            } => {
                initial <= day
                    && max <= day
                    && multiplier.is_finite()
                    && multiplier >= 1.0
                    && max >= initial
                    // The backoff step saturates at 255: a growing backoff must reach `max`.
                    && (initial.is_zero()
                        || multiplier == 1.0
                        || !(initial.as_secs_f64() * multiplier.powi(254)).is_finite()
                        || initial.as_secs_f64() * multiplier.powi(254) >= max.as_secs_f64())
            }
        }
        && (0.0..1.0).contains(&c.jitter)
        && (1..=MAX_HALF_OPEN).contains(&c.half_open_permits)
        && (1..=MAX_HALF_OPEN).contains(&c.half_open_successes)
        && c.call_timeout.is_none_or(|t| !t.is_zero())
        // breakerbox is built here without its `tokio` feature, so a timeout is refused.
        && c.call_timeout.is_none()
        && c.max_half_open_wait.is_none_or(|w| w >= ms && w <= day)
        && matches!(c.half_open_timeout_state, State::Open | State::Closed)
        && statuses_ok(c)
        && (c.half_open_decision == HalfOpenDecision::FirstFailure
            || (rate_rule
                && c.half_open_permits <= MAX_RATE_TRIALS
                && c.half_open_successes == 1))
}

fuzz_target!(|input: Input| {
    let config = input.config();
    let built = if input.via_setters {
        input.build_via_setters()
    } else {
        build(
            CircuitBreaker::builder()
                .clock(ManualClock::new())
                .config(config.clone()),
            config.automatic_half_open,
        )
    };
    assert_eq!(
        built.as_ref().err(),
        config.validate().err().as_ref(),
        "build and validate disagree"
    );
    let breaker = match built {
        Err(e) => {
            assert!(
                !valid(&config),
                "a valid configuration was rejected: {e}\n{config:?}"
            );
            let field = e.field();
            assert!(!field.is_empty(), "empty field name: {e:?}");
            let msg = e.to_string();
            assert!(
                msg.contains(field),
                "message {msg:?} does not name the field {field:?}"
            );
            return;
        }
        Ok(b) => b,
    };
    assert!(
        valid(&config),
        "an invalid configuration was accepted: {config:?}"
    );
    if !input.via_setters {
        assert_eq!(breaker.config(), &config);
    }
    let clock = breaker.clock().clone();
    for &(fail, step) in input.calls.iter().take(16) {
        if let Ok(p) = breaker.try_acquire() {
            clock.advance(Duration::from_millis(step.into()));
            match (fail, step % 3) {
                (_, 0) => drop(p),
                (true, _) => p.failure(),
                (false, _) => p.success(),
            }
        } else {
            clock.advance(Duration::from_secs(step.into()));
        }
        let m = breaker.metrics();
        assert!(m.window_failures <= m.window_calls, "{m:?}");
        assert!(m.window_slow_calls <= m.window_calls, "{m:?}");
        assert_eq!(m.successes + m.failures, m.calls, "{m:?}");
        assert!(m.half_open_in_flight <= config.half_open_permits, "{m:?}");
    }
});
