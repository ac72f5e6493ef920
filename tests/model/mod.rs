//! A sequential reference model of the breaker and a differential runner.
//!
//! The model is written from the semantics table (docs/semantics.md) with plain data structures (a
//! `VecDeque` for the window, integers for the state) and no atomics. [`run`] drives the real
//! breaker (on a [`ManualClock`]) and the model through the same operations and reports the
//! first divergence in an admission decision or in the metrics. Used by the proptest in
//! `tests/model_test.rs` and by the fuzz target `fuzz/fuzz_targets/differential.rs`.
#![allow(dead_code)]

use breakerbox::{
    CircuitBreaker, Config, HalfOpenDecision, ManualClock, OpenWait, Outcome, Permit, State,
    WindowConfig,
};
use std::collections::VecDeque;
use std::time::Duration;

/// The window of a [`Setup`].
#[derive(Clone, Copy, Debug)]
pub enum WindowSetup {
    /// Last `n` calls.
    Count(u32),
    /// `buckets` buckets of `bucket_ms` each.
    Time { buckets: u32, bucket_ms: u64 },
}

/// The open wait of a [`Setup`].
#[derive(Clone, Copy, Debug)]
pub enum WaitSetup {
    Fixed(u64),
    /// Doubling from `initial` ms, capped at `max` ms.
    Exp {
        initial: u64,
        max: u64,
    },
}

/// A breaker configuration the model understands (always valid).
#[derive(Clone, Debug)]
pub struct Setup {
    pub failure_rate: Option<f64>,
    pub slow_rate: Option<f64>,
    pub slow_ms: u64,
    pub consecutive: Option<u32>,
    pub minimum_calls: u32,
    pub window: WindowSetup,
    pub wait: WaitSetup,
    pub permits: u32,
    pub successes: u32,
    /// HALF-OPEN decided by the rates over all permitted trials (`HalfOpenDecision::Rate`).
    pub by_rate: bool,
}

impl Setup {
    pub fn config(&self) -> Config {
        Config {
            failure_rate_threshold: self.failure_rate,
            slow_call_rate_threshold: self.slow_rate,
            slow_call_duration: Duration::from_millis(self.slow_ms),
            consecutive_failures: self.consecutive,
            minimum_calls: self.minimum_calls,
            window: match self.window {
                WindowSetup::Count(n) => WindowConfig::Count { size: n },
                WindowSetup::Time { buckets, bucket_ms } => WindowConfig::Time {
                    duration: Duration::from_millis(bucket_ms * buckets as u64),
                    buckets,
                },
            },
            open_wait: match self.wait {
                WaitSetup::Fixed(ms) => OpenWait::fixed(Duration::from_millis(ms)),
                WaitSetup::Exp { initial, max } => OpenWait::exponential(
                    Duration::from_millis(initial),
                    Duration::from_millis(max),
                ),
            },
            half_open_permits: self.permits,
            half_open_successes: self.successes,
            half_open_decision: if self.by_rate {
                HalfOpenDecision::Rate
            } else {
                HalfOpenDecision::FirstFailure
            },
            ..Config::default()
        }
    }

    /// Makes a generated setup valid (every rule the builder enforces).
    pub fn normalise(mut self) -> Setup {
        if self.failure_rate.is_none() && self.slow_rate.is_none() && self.consecutive.is_none() {
            self.consecutive = Some(3);
        }
        if self.by_rate {
            // The rate decision needs a rate rule and leaves `half_open_successes` at 1.
            if self.failure_rate.is_none() && self.slow_rate.is_none() {
                self.failure_rate = Some(0.5);
            }
            self.successes = 1;
        }
        if let WindowSetup::Count(n) = self.window {
            self.minimum_calls = self.minimum_calls.min(n);
        }
        self.minimum_calls = self.minimum_calls.max(1);
        self.slow_ms = self.slow_ms.max(1);
        if let WaitSetup::Exp { initial, max } = self.wait {
            self.wait = WaitSetup::Exp {
                initial,
                max: max.max(initial),
            };
        }
        self
    }
}

/// One step of a scenario. Permit indices wrap around the permits currently held.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Acquire,
    Success(u8),
    Failure(u8),
    /// Advance the clock by the slow-call duration, then report success.
    SlowSuccess(u8),
    Ignore(u8),
    /// Report `Outcome::Trip`: a failure that opens a CLOSED or HALF-OPEN breaker at once.
    Trip(u8),
    /// Drop the permit without reporting.
    Drop(u8),
    /// Advance the clock by this many milliseconds.
    Advance(u16),
    ForceOpen,
    Disable,
    MetricsOnly,
    Reset,
    /// `transition_to_open_for` this many ms (at least 1).
    OpenFor(u16),
    /// `transition_to_half_open`.
    ToHalfOpen,
    /// `transition_to_closed`.
    ToClosed,
    /// `half_open_if_due`.
    HalfOpenIfDue,
}

/// Decodes arbitrary bytes into a valid setup and a scenario (for fuzzing).
pub fn decode(bytes: &[u8]) -> (Setup, Vec<Op>) {
    let mut it = bytes.iter().copied();
    let mut next = move || it.next().unwrap_or(0);
    let rate = |b: u8| (!b.is_multiple_of(5)).then(|| f64::from(b % 10 + 1) / 10.0);
    let failure_rate = rate(next());
    let slow_rate = if next() % 3 == 0 { rate(next()) } else { None };
    let slow_ms = u64::from(next() % 50) + 1;
    let consecutive = (next() % 2 == 0).then(|| u32::from(next() % 6) + 1);
    let minimum_calls = u32::from(next() % 12) + 1;
    let window = if next() % 2 == 0 {
        WindowSetup::Count(u32::from(next() % 16) + 1)
    } else {
        WindowSetup::Time {
            buckets: u32::from(next() % 8) + 1,
            bucket_ms: u64::from(next() % 20) + 1,
        }
    };
    let wait = if next() % 2 == 0 {
        WaitSetup::Fixed(u64::from(next() % 100))
    } else {
        WaitSetup::Exp {
            initial: u64::from(next() % 50),
            max: u64::from(next()) * 4,
        }
    };
    let permits = u32::from(next() % 4) + 1;
    let successes = u32::from(next() % 4) + 1;
    let by_rate = next() % 3 == 0;
    let setup = Setup {
        failure_rate,
        slow_rate,
        slow_ms,
        consecutive,
        minimum_calls,
        window,
        wait,
        permits,
        successes,
        by_rate,
    }
    .normalise();
    let mut ops = Vec::new();
    for _ in 0..bytes.len().saturating_sub(16) / 2 {
        let (a, b) = (next(), next());
        ops.push(match a % 16 {
            0..=3 => Op::Acquire,
            4..=5 => Op::Success(b),
            6..=7 => Op::Failure(b),
            8 => Op::SlowSuccess(b),
            9 => Op::Ignore(b),
            10 => Op::Drop(b),
            11..=12 => Op::Advance(u16::from(b) * 2),
            13 => match b % 8 {
                0 => Op::ForceOpen,
                1 => Op::Disable,
                2 => Op::MetricsOnly,
                3 => Op::OpenFor(u16::from(b / 8) + 1),
                4 => Op::ToHalfOpen,
                5 => Op::ToClosed,
                6 => Op::HalfOpenIfDue,
                _ => Op::Advance(u16::from(b)),
            },
            14 => Op::Reset,
            _ if b % 4 == 0 => Op::Trip(b / 4),
            _ => Op::Acquire,
        });
    }
    (setup, ops)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Window,
    Trial,
    Pass,
}

#[derive(Clone, Copy, Debug)]
struct MPermit {
    gen: u32,
    kind: Kind,
    start_ms: u64,
}

/// The sequential reference model.
pub struct Model {
    s: Setup,
    state: State,
    gen: u32,
    now_ms: u64,
    deadline_ms: u64,
    /// When the current HALF-OPEN period began (for `max_half_open_wait`, default 60 s).
    half_open_since_ms: u64,
    inflight: u32,
    trial_successes: u32,
    /// HALF-OPEN by rate: trial outcomes recorded, of which failures and slow.
    trial_recorded: u32,
    trial_failures: u64,
    trial_slow: u64,
    /// Outcomes of the current closed generation: (time in ms, failed, slow).
    window: VecDeque<(u64, bool, bool)>,
    streak: u64,
    opens_in_row: u32,
    calls: u64,
    failures: u64,
    slow: u64,
    ignored: u64,
    rejected: u64,
    /// `rejected` when the current state began.
    rejected_mark: u64,
    slow_failures: u64,
    late: u64,
    opened: u64,
}

const GEN_MASK: u32 = (1 << 21) - 1;

impl Model {
    pub fn new(s: &Setup) -> Self {
        Model {
            s: s.clone(),
            state: State::Closed,
            gen: 0,
            now_ms: 0,
            deadline_ms: 0,
            half_open_since_ms: 0,
            inflight: 0,
            trial_successes: 0,
            trial_recorded: 0,
            trial_failures: 0,
            trial_slow: 0,
            window: VecDeque::new(),
            streak: 0,
            opens_in_row: 0,
            calls: 0,
            failures: 0,
            slow: 0,
            ignored: 0,
            rejected: 0,
            rejected_mark: 0,
            slow_failures: 0,
            late: 0,
            opened: 0,
        }
    }

    fn enter(&mut self, state: State) {
        self.gen = (self.gen + 1) & GEN_MASK;
        self.state = state;
        self.rejected_mark = self.rejected;
        if state == State::HalfOpen {
            self.half_open_since_ms = self.now_ms;
            self.inflight = 0;
            self.trial_successes = 0;
            self.trial_recorded = 0;
            self.trial_failures = 0;
            self.trial_slow = 0;
        }
        if matches!(state, State::Closed | State::MetricsOnly) {
            self.window.clear();
            self.streak = 0;
            self.opens_in_row = 0;
        }
    }

    /// The wait of opening number `n` in a row.
    fn wait_of(&self, n: u32) -> u64 {
        match self.s.wait {
            WaitSetup::Fixed(ms) => ms,
            WaitSetup::Exp { initial, max } => {
                let f = 2f64.powi(n.saturating_sub(1).min(1024) as i32);
                let v = initial as f64 * f;
                if v >= max as f64 {
                    max
                } else {
                    v as u64
                }
            }
        }
    }

    /// The next opening's number: one more than the current one from OPEN or HALF-OPEN (the
    /// step lives in those states' words), 1 from any other state.
    fn next_step(&self) -> u32 {
        if matches!(self.state, State::Open | State::HalfOpen) {
            (self.opens_in_row + 1).min(255)
        } else {
            1
        }
    }

    fn open(&mut self) {
        let n = self.next_step();
        let wait = self.wait_of(n);
        self.enter(State::Open);
        self.opens_in_row = n;
        self.opened += 1;
        self.deadline_ms = self.now_ms + wait;
    }

    /// (calls, failures, slow) in the window now.
    fn counts(&self) -> (u64, u64, u64) {
        let live: Vec<_> = match self.s.window {
            WindowSetup::Count(n) => self.window.iter().rev().take(n as usize).copied().collect(),
            WindowSetup::Time { buckets, bucket_ms } => {
                let epoch = self.now_ms / bucket_ms;
                let oldest = epoch.saturating_sub(buckets as u64 - 1);
                self.window
                    .iter()
                    .filter(|r| r.0 / bucket_ms >= oldest)
                    .copied()
                    .collect()
            }
        };
        let f = live.iter().filter(|r| r.1).count() as u64;
        let s = live.iter().filter(|r| r.2).count() as u64;
        (live.len() as u64, f, s)
    }

    fn reaches(bad: u64, calls: u64, t: f64) -> bool {
        bad as f64 >= t * calls as f64 - 1e-9
    }

    fn should_trip(&self) -> bool {
        if let Some(n) = self.s.consecutive {
            if self.streak >= n as u64 {
                return true;
            }
        }
        let (calls, f, s) = self.counts();
        if calls == 0 || calls < self.s.minimum_calls as u64 {
            return false;
        }
        self.s
            .failure_rate
            .is_some_and(|t| Self::reaches(f, calls, t))
            || self.s.slow_rate.is_some_and(|t| Self::reaches(s, calls, t))
    }

    fn acquire(&mut self) -> Result<MPermit, (State, Option<Duration>)> {
        let p = |gen, kind, start_ms| {
            Ok(MPermit {
                gen,
                kind,
                start_ms,
            })
        };
        match self.state {
            State::Closed | State::MetricsOnly => p(self.gen, Kind::Window, self.now_ms),
            State::Disabled => p(self.gen, Kind::Pass, self.now_ms),
            State::ForcedOpen => {
                self.rejected += 1;
                Err((State::ForcedOpen, None))
            }
            State::Open if self.now_ms < self.deadline_ms => {
                self.rejected += 1;
                Err((
                    State::Open,
                    Some(Duration::from_millis(self.deadline_ms - self.now_ms)),
                ))
            }
            State::Open => {
                self.enter(State::HalfOpen);
                self.inflight = 1;
                p(self.gen, Kind::Trial, self.now_ms)
            }
            // By rate, each permit runs once per period: in flight plus recorded.
            State::HalfOpen
                if self.s.by_rate && self.inflight + self.trial_recorded < self.s.permits =>
            {
                self.inflight += 1;
                p(self.gen, Kind::Trial, self.now_ms)
            }
            State::HalfOpen if !self.s.by_rate && self.inflight < self.s.permits => {
                self.inflight += 1;
                p(self.gen, Kind::Trial, self.now_ms)
            }
            // Full for `max_half_open_wait` (the default, 60 s): re-open at the next step.
            State::HalfOpen if self.now_ms - self.half_open_since_ms >= 60_000 => {
                self.open();
                self.rejected += 1;
                Err((
                    State::Open,
                    (self.deadline_ms > self.now_ms)
                        .then(|| Duration::from_millis(self.deadline_ms - self.now_ms)),
                ))
            }
            State::HalfOpen => {
                self.rejected += 1;
                Err((State::HalfOpen, None))
            }
        }
    }

    fn complete(&mut self, p: MPermit, o: Outcome) {
        if o == Outcome::Ignore {
            self.ignored += 1;
            if p.kind == Kind::Trial
                && self.state == State::HalfOpen
                && self.gen == p.gen
                && self.inflight > 0
            {
                self.inflight -= 1;
            }
            return;
        }
        let trip = o == Outcome::Trip;
        let failed = o == Outcome::Failure || trip;
        let slow = self.s.slow_rate.is_some()
            && p.kind != Kind::Pass
            && self.now_ms - p.start_ms >= self.s.slow_ms;
        let current = self.gen == p.gen;
        match p.kind {
            Kind::Window => {
                if !current {
                    self.late += 1;
                    return;
                }
                self.window.push_back((self.now_ms, failed, slow));
                if self.s.consecutive.is_some() {
                    self.streak = if failed { self.streak + 1 } else { 0 };
                }
                // The specification: after every recorded outcome, the breaker trips if the
                // rules hold on the window as it is now. (The breaker evaluates only when a rate
                // can newly reach its threshold; sequentially that must be the same thing.)
                if self.state == State::Closed && self.should_trip() {
                    self.open();
                }
                // A trip result opens what the rules left CLOSED (after recording it).
                if trip && self.state == State::Closed {
                    self.open();
                }
            }
            Kind::Trial => {
                if !(current && self.state == State::HalfOpen) {
                    self.late += 1;
                    return;
                }
                if trip {
                    self.open();
                } else if self.s.by_rate {
                    self.inflight -= 1;
                    self.trial_recorded += 1;
                    self.trial_failures += u64::from(failed);
                    self.trial_slow += u64::from(slow);
                    if self.trial_recorded == self.s.permits {
                        let n = u64::from(self.trial_recorded);
                        let exceeded = self
                            .s
                            .failure_rate
                            .is_some_and(|t| Self::reaches(self.trial_failures, n, t))
                            || self
                                .s
                                .slow_rate
                                .is_some_and(|t| Self::reaches(self.trial_slow, n, t));
                        if exceeded {
                            self.open();
                        } else {
                            self.enter(State::Closed);
                        }
                    }
                } else if failed || slow {
                    self.open();
                } else if self.trial_successes + 1 >= self.s.successes {
                    self.enter(State::Closed);
                } else {
                    self.inflight -= 1;
                    self.trial_successes += 1;
                }
            }
            Kind::Pass => {
                if !current {
                    self.late += 1;
                    return;
                }
            }
        }
        self.calls += 1;
        if failed {
            self.failures += 1;
        }
        if slow {
            self.slow += 1;
            if failed {
                self.slow_failures += 1;
            }
        }
    }

    fn force(&mut self, state: State) {
        if self.state != state {
            if state == State::HalfOpen && !matches!(self.state, State::Open | State::HalfOpen) {
                // Manual HALF-OPEN from a state without a backoff step: the next opening is
                // the first.
                self.opens_in_row = 0;
            }
            self.enter(state);
        }
    }

    /// `transition_to_open_for(ms)`: from any state, at the next backoff step, not counted in
    /// `times_opened` (a manual transition).
    fn open_for(&mut self, ms: u64) {
        let n = self.next_step();
        self.enter(State::Open);
        self.opens_in_row = n;
        self.deadline_ms = self.now_ms + ms;
    }
}

fn check(m: &Model, b: &CircuitBreaker<ManualClock>, step: usize, op: &Op) -> Result<(), String> {
    let r = b.metrics();
    let ctx = || format!("step {step} ({op:?})");
    macro_rules! same {
        ($real:expr, $model:expr, $what:literal) => {
            if $real != $model {
                return Err(format!(
                    "{}: {} differs: real {:?}, model {:?}",
                    ctx(),
                    $what,
                    $real,
                    $model
                ));
            }
        };
    }
    same!(r.state, m.state, "state");
    same!(b.generation(), m.gen, "generation");
    same!(r.calls, m.calls, "calls");
    same!(r.failures, m.failures, "failures");
    same!(r.successes, m.calls - m.failures, "successes");
    same!(r.slow_calls, m.slow, "slow calls");
    same!(r.slow_failures, m.slow_failures, "slow failures");
    same!(
        r.rejected_in_state,
        m.rejected - m.rejected_mark,
        "rejected in state"
    );
    same!(r.ignored, m.ignored, "ignored");
    same!(r.rejected, m.rejected, "rejected");
    same!(r.late, m.late, "late");
    same!(r.times_opened, m.opened, "times opened");
    let inflight = if m.state == State::HalfOpen {
        m.inflight
    } else {
        0
    };
    same!(r.half_open_in_flight, inflight, "half-open in flight");
    if matches!(m.state, State::Closed | State::MetricsOnly) {
        let (calls, f, s) = m.counts();
        same!(
            (r.window_calls, r.window_failures, r.window_slow_calls),
            (calls, f, s),
            "window counts"
        );
    }
    if m.state == State::Open {
        let left = m.deadline_ms.saturating_sub(m.now_ms);
        let expect = (left > 0).then(|| Duration::from_millis(left));
        same!(r.retry_after, expect, "retry_after");
    }
    Ok(())
}

/// Runs `ops` against the real breaker and the model; `Err` describes the first divergence.
pub fn run(setup: &Setup, ops: &[Op]) -> Result<(), String> {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder()
        .config(setup.config())
        .clock(clock.clone())
        .build()
        .map_err(|e| format!("setup {setup:?} rejected: {e}"))?;
    let mut model = Model::new(setup);
    let mut held: Vec<(Permit<'_, ManualClock>, MPermit)> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Acquire => match (breaker.try_acquire(), model.acquire()) {
                (Ok(real), Ok(m)) => {
                    if real.is_trial() != (m.kind == Kind::Trial) || real.generation() != m.gen {
                        return Err(format!(
                            "step {step}: admitted differently: real trial={} gen={}, model {m:?}",
                            real.is_trial(),
                            real.generation()
                        ));
                    }
                    held.push((real, m));
                }
                (Err(real), Err((state, retry))) => {
                    if real.state() != state || real.retry_after() != retry {
                        return Err(format!(
                            "step {step}: rejected differently: real {real:?}, model {state:?} {retry:?}"
                        ));
                    }
                }
                (real, m) => {
                    return Err(format!(
                        "step {step}: decision differs: real admitted={}, model admitted={} (model state {:?})",
                        real.is_ok(),
                        m.is_ok(),
                        model.state
                    ))
                }
            },
            Op::Success(i)
            | Op::Failure(i)
            | Op::Ignore(i)
            | Op::Drop(i)
            | Op::SlowSuccess(i)
            | Op::Trip(i) => {
                if !held.is_empty() {
                    let (real, m) = held.remove(i as usize % held.len());
                    if let Op::SlowSuccess(_) = op {
                        clock.advance(Duration::from_millis(setup.slow_ms));
                        model.now_ms += setup.slow_ms;
                    }
                    let outcome = match op {
                        Op::Failure(_) => Outcome::Failure,
                        Op::Trip(_) => Outcome::Trip,
                        Op::Ignore(_) | Op::Drop(_) => Outcome::Ignore,
                        _ => Outcome::Success,
                    };
                    if let Op::Drop(_) = op {
                        drop(real);
                    } else {
                        real.record(outcome);
                    }
                    model.complete(m, outcome);
                }
            }
            Op::Advance(ms) => {
                clock.advance(Duration::from_millis(ms as u64));
                model.now_ms += ms as u64;
            }
            Op::ForceOpen => {
                breaker.force_open();
                model.force(State::ForcedOpen);
            }
            Op::Disable => {
                breaker.disable();
                model.force(State::Disabled);
            }
            Op::MetricsOnly => {
                breaker.metrics_only();
                model.force(State::MetricsOnly);
            }
            Op::Reset => {
                breaker.reset();
                model.enter(State::Closed);
            }
            Op::OpenFor(ms) => {
                breaker
                    .transition_to_open_for(Duration::from_millis(u64::from(ms)))
                    .map_err(|e| format!("step {step}: {e}"))?;
                model.open_for(u64::from(ms));
            }
            Op::ToHalfOpen => {
                breaker.transition_to_half_open();
                model.force(State::HalfOpen);
            }
            Op::ToClosed => {
                breaker.transition_to_closed();
                model.force(State::Closed);
            }
            Op::HalfOpenIfDue => {
                let real = breaker.half_open_if_due();
                let due = model.state == State::Open && model.now_ms >= model.deadline_ms;
                if due {
                    model.enter(State::HalfOpen);
                }
                if real != due {
                    return Err(format!(
                        "step {step}: half_open_if_due: real {real}, model {due}"
                    ));
                }
            }
        }
        check(&model, &breaker, step, op)?;
    }
    Ok(())
}
