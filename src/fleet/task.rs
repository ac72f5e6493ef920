//! The sync task: its loop (connect, reconnect with backoff), one sync round (publish, read
//! and apply, the fleet window, the trial lease), and applying another instance's record.

use super::config::FleetConfig;
use super::conn::{Client, Connection};
use super::events::FleetEvent;
use super::hook::{applying, Publish, Shared};
use super::record::{self, data_error};
use super::scripts::{self, Keys};
use crate::breaker::{CircuitBreaker, HalfOpenGate};
use crate::clock::Clock;
use crate::state::State;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How long a `closed` record stays in Redis (an instance that was away longer has nothing to
/// close: its own trials decide).
const CLOSED_TTL_MS: u64 = 10 * 60 * 1000;
/// The longest backoff between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why one sync round stopped.
enum Failure {
    /// The connection: reconnect.
    Connection(String),
}

impl From<redis::RedisError> for Failure {
    fn from(e: redis::RedisError) -> Self {
        Failure::Connection(e.to_string())
    }
}

/// One breaker's sync task (see the module doc of `fleet`).
pub(super) struct Task<C: Clock> {
    breaker: Weak<CircuitBreaker<C>>,
    shared: Arc<Shared>,
    gate: Arc<HalfOpenGate>,
    client: Client,
    keys: Keys,
    config: FleetConfig,
    /// The newest epoch seen (published or read).
    last_epoch: u64,
    /// This instance's last transition Redis acknowledged (to publish again if Redis lost it).
    acked: Option<Publish>,
    /// A transition to publish again: Redis may have lost it (a reconnect, or the state key
    /// found missing). Published only if still current.
    republish: Option<Publish>,
    /// The transition still to publish when the connection was lost (decided while connected).
    interrupted: Option<Publish>,
    /// Whether this instance holds a trial lease.
    lease: bool,
    /// The last malformed value reported (reported once).
    malformed: Option<String>,
}

impl<C: Clock> Task<C> {
    pub(super) fn new(
        breaker: Weak<CircuitBreaker<C>>,
        shared: Arc<Shared>,
        gate: Arc<HalfOpenGate>,
        client: Client,
        keys: Keys,
        config: FleetConfig,
    ) -> Self {
        Task {
            breaker,
            shared,
            gate,
            client,
            keys,
            config,
            last_epoch: 0,
            acked: None,
            republish: None,
            interrupted: None,
            lease: false,
            malformed: None,
        }
    }

    fn emit(&self, e: FleetEvent) {
        self.config.emit(&e);
    }

    /// The gate: open (plain local breaker) unless connected with a fleet cap and no lease.
    /// SeqCst: one side of the Dekker pattern described at `CircuitBreaker::gate_revoked`.
    fn set_gate(&self, open: bool) {
        self.gate.open.store(open, Ordering::SeqCst);
    }

    pub(super) async fn run(mut self) {
        let mut conn: Option<Connection> = None;
        let mut backoff = self.config.sync_interval;
        let mut next_try = Instant::now();
        loop {
            let _ = tokio::time::timeout(self.config.sync_interval, self.shared.notify.notified())
                .await;
            let Some(breaker) = self.breaker.upgrade() else {
                return;
            };
            let c = match conn.as_mut() {
                Some(c) => c,
                None => {
                    if Instant::now() < next_try {
                        continue;
                    }
                    let attempt =
                        tokio::time::timeout(self.config.timeout, self.client.connect()).await;
                    match attempt {
                        Ok(Ok(c)) => {
                            backoff = self.config.sync_interval;
                            if self.config.fleet_trials.is_some() {
                                // Leases count again: none is held yet.
                                self.set_gate(false);
                            }
                            // A close that happened while Redis was away is stale: it could
                            // overwrite a newer opening by another instance. (One made while
                            // connected, whose publication the lost connection interrupted, is
                            // not: it is still published if current.) An opening still current
                            // is worth sharing (opening is the safe direction).
                            let mut pending = self
                                .shared
                                .pending
                                .lock()
                                .unwrap_or_else(|e| e.into_inner());
                            let interrupted = self.interrupted.take();
                            if matches!(*pending, Some(Publish::Closed(_)))
                                && *pending != interrupted
                            {
                                *pending = None;
                            }
                            drop(pending);
                            // Redis may have lost this instance's opening (a restart without
                            // persistence): publish it again if it is still current.
                            self.republish = self.acked.filter(|p| matches!(p, Publish::Open(_)));
                            self.emit(FleetEvent::Connected);
                            conn.insert(c)
                        }
                        Ok(Err(e)) => {
                            self.unavailable(e.to_string(), &mut backoff, &mut next_try);
                            continue;
                        }
                        Err(_) => {
                            self.unavailable(
                                "connect timed out".into(),
                                &mut backoff,
                                &mut next_try,
                            );
                            continue;
                        }
                    }
                }
            };
            // A whole round is bounded too (each round trip already is).
            let round = tokio::time::timeout(
                4 * self.config.timeout,
                Self::sync_once(&mut self, &breaker, c),
            )
            .await;
            let failure = match round {
                Ok(Ok(())) => continue,
                Ok(Err(Failure::Connection(e))) => e,
                Err(_) => "sync round timed out".into(),
            };
            conn = None;
            self.interrupted = *self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            self.unavailable(failure, &mut backoff, &mut next_try);
        }
    }

    fn unavailable(&mut self, error: String, backoff: &mut Duration, next_try: &mut Instant) {
        // Local again: the breaker's own trials, no lease (a held one lapses in Redis).
        self.lease = false;
        self.set_gate(true);
        self.emit(FleetEvent::Unavailable {
            error,
            retry_in: *backoff,
        });
        *next_try = Instant::now() + *backoff;
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
    }

    fn malformed(&mut self, key: &str, value: String) {
        if self.malformed.as_deref() != Some(value.as_str()) {
            self.emit(FleetEvent::Malformed {
                key: key.to_string(),
                value: value.clone(),
            });
            self.malformed = Some(value);
        }
    }

    /// One round: publish, read and apply, lease.
    async fn sync_once(
        &mut self,
        b: &CircuitBreaker<C>,
        c: &mut Connection,
    ) -> Result<(), Failure> {
        // 1. This instance's latest automatic transition, if still current.
        self.publish_own(b, c).await?;

        // 2. The fleet's latest record.
        match scripts::read_state(c, &self.keys).await {
            Ok((value, pttl, time)) => self.read(b, value, pttl, time),
            Err(e) if data_error(&e) => {
                self.malformed(&self.keys.state.clone(), e.to_string());
                self.lost(b);
            }
            Err(e) => return Err(e.into()),
        }

        // 3. The fleet window.
        if self.config.aggregate && b.state() == State::Closed {
            self.aggregate(b, c).await?;
        }

        // 4. The fleet-wide trial lease.
        let Some(cap) = self.config.fleet_trials else {
            return Ok(());
        };
        // A lease is wanted while callers ask for trials the closed gate refuses, and kept while
        // trials run under it. Before giving one back, the gate closes and the trials in flight
        // are looked at after a fence (see `CircuitBreaker::gate_revoked`): a trial that got in
        // keeps the lease.
        // Relaxed: a hint (see `CircuitBreaker::gate_closed`).
        let demand = self.gate.demand.swap(false, Ordering::Relaxed);
        let mut wants = demand && (b.state() == State::HalfOpen || b.open_wait_over());
        if !wants && self.lease {
            self.set_gate(false);
            std::sync::atomic::fence(Ordering::SeqCst);
            wants = b.trials_in_flight() > 0;
        }
        if wants {
            let ttl_ms = self.config.lease_ttl.as_millis() as u64;
            match scripts::lease(c, &self.keys, &self.config.instance, ttl_ms, cap).await {
                Ok(reply) => {
                    let Some((held, reset)) = record::parse_lease(reply) else {
                        self.malformed(&self.keys.trials.clone(), reply.to_string());
                        self.lease = false;
                        self.set_gate(true);
                        return Ok(());
                    };
                    if reset {
                        self.malformed(&self.keys.trials.clone(), "a key of another type".into());
                    }
                    if held != self.lease {
                        self.emit(FleetEvent::TrialLease { held });
                    }
                    self.lease = held;
                    self.set_gate(held);
                }
                Err(e) if data_error(&e) => {
                    // Cannot take a lease: behave locally rather than stay OPEN for good.
                    self.malformed(&self.keys.trials.clone(), e.to_string());
                    self.lease = false;
                    self.set_gate(true);
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            if self.lease {
                match scripts::release_lease(c, &self.keys, &self.config.instance).await {
                    Ok(_) => {}
                    Err(e) if data_error(&e) => {
                        self.malformed(&self.keys.trials.clone(), e.to_string())
                    }
                    Err(e) => return Err(e.into()),
                }
                self.lease = false;
                self.emit(FleetEvent::TrialLease { held: false });
            }
            self.set_gate(false);
        }
        Ok(())
    }

    /// Publishes this instance's latest automatic transition (or one Redis may have lost) if
    /// it is still current, recomputed from the breaker; it stays to publish until Redis has
    /// acknowledged it, so a failed round trip loses nothing.
    async fn publish_own(
        &mut self,
        b: &CircuitBreaker<C>,
        c: &mut Connection,
    ) -> Result<(), Failure> {
        let pending = *self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(p) = pending.or(self.republish) else {
            return Ok(());
        };
        if let Some((state, ttl_ms)) = current(b, p) {
            if !self.publish(c, state, ttl_ms).await? {
                // Not acknowledged (a data error, reported): try again next round.
                return Ok(());
            }
            self.acked = Some(p);
        }
        // Published, or no longer current: done with it (unless the hook has replaced it).
        let mut pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if *pending == Some(p) {
            *pending = None;
        }
        drop(pending);
        if self.republish == Some(p) {
            self.republish = None;
        }
        Ok(())
    }

    /// Step 2 of a round: checks the fleet's record (`value`, its key's `pttl`, read at the
    /// server's `time`) and applies it if it is newer and another instance's.
    fn read(&mut self, b: &CircuitBreaker<C>, value: Option<String>, pttl: i64, time: (u64, u64)) {
        let Some(now) = record::server_time(time) else {
            self.malformed("TIME", format!("{time:?}"));
            return;
        };
        // A newest-seen epoch beyond what any record may now hold (the server's clock stepped
        // back by more than the allowed skew) would hide every later record: forget it.
        if self.last_epoch > now.saturating_add(record::MAX_FUTURE_US) {
            self.last_epoch = 0;
        }
        let Some(v) = value else {
            // No record: Redis lost it (a flush, a restart without persistence) or it expired.
            self.lost(b);
            return;
        };
        match record::parse(&v, now) {
            None => {
                self.malformed(&self.keys.state.clone(), v);
                self.lost(b);
            }
            Some(r) if r.epoch > self.last_epoch => {
                self.last_epoch = r.epoch;
                if r.instance != self.config.instance {
                    let from = r.instance.to_string();
                    self.apply(b, r.open, pttl, from);
                }
            }
            Some(_) => {}
        }
    }

    /// The fleet's record is gone or unusable: this instance's opening, if still current, is
    /// published again next round (overwriting what is there).
    fn lost(&mut self, b: &CircuitBreaker<C>) {
        if self.republish.is_none() {
            self.republish = self
                .acked
                .filter(|p| matches!(p, Publish::Open(_)) && current(b, *p).is_some());
        }
    }

    /// Shares this instance's window counts and trips on the fleet's sums.
    async fn aggregate(
        &mut self,
        b: &CircuitBreaker<C>,
        c: &mut Connection,
    ) -> Result<(), Failure> {
        let m = b.metrics();
        let gen = b.generation();
        let counts = (m.window_calls, m.window_failures, m.window_slow_calls);
        let ttl = 3 * self.config.sync_interval.as_millis() as u64;
        let r = scripts::aggregate(c, &self.keys, &self.config.instance, counts, ttl.max(1)).await;
        let sums = match r {
            Ok(v) => match record::parse_sums(&v) {
                Some(sums) => sums,
                None => {
                    self.malformed(&self.keys.counts.clone(), format!("{v:?}"));
                    return Ok(());
                }
            },
            Err(e) if data_error(&e) => {
                self.malformed(&self.keys.counts.clone(), e.to_string());
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        if sums.dropped > 0 {
            self.malformed(
                &self.keys.counts.clone(),
                format!("{} unparseable entries dropped", sums.dropped),
            );
        }
        let record::Sums {
            calls,
            failures,
            slow,
            instances,
            ..
        } = sums;
        let cfg = b.config();
        if calls == 0 || calls < u64::from(cfg.minimum_calls) {
            return Ok(());
        }
        let reaches =
            |bad: u64, t: Option<f64>| t.is_some_and(|t| bad as f64 >= t * calls as f64 - 1e-9);
        if !(reaches(failures, cfg.failure_rate_threshold)
            || reaches(slow, cfg.slow_call_rate_threshold))
        {
            return Ok(());
        }
        // Still the CLOSED generation whose counts were shared: trip it, as the fleet's.
        if b.generation() != gen || b.state() != State::Closed {
            return Ok(());
        }
        let wait = cfg.open_wait.base_wait(1).max(Duration::from_millis(1));
        if applying(|| b.transition_to_open_for(wait)).is_err() {
            return Ok(());
        }
        self.emit(FleetEvent::FleetTrip {
            calls,
            failures,
            slow,
            instances,
        });
        // Published like the breaker's own trips: until Redis has acknowledged it.
        *self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Publish::Open(b.generation()));
        self.publish_own(b, c).await
    }

    /// Publishes this instance's `state` (OPEN or CLOSED) with a key expiry of `ttl_ms`;
    /// whether Redis acknowledged it with an epoch.
    async fn publish(
        &mut self,
        c: &mut Connection,
        state: State,
        ttl_ms: u64,
    ) -> Result<bool, Failure> {
        let kind = record::kind(state);
        match scripts::publish(c, &self.keys, kind, &self.config.instance, ttl_ms).await {
            Ok(s) => match record::parse_epoch(&s) {
                Some(epoch) => {
                    self.last_epoch = self.last_epoch.max(epoch);
                    self.emit(FleetEvent::Published { state, epoch });
                    Ok(true)
                }
                None => {
                    self.malformed(&self.keys.seq.clone(), s);
                    Ok(false)
                }
            },
            Err(e) if data_error(&e) => {
                self.malformed(&self.keys.seq.clone(), e.to_string());
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Applies another instance's record to the local breaker.
    fn apply(&mut self, b: &CircuitBreaker<C>, open: bool, pttl: i64, from: String) {
        let local = b.state();
        if open {
            // Only a CLOSED breaker needs telling. One that is OPEN keeps its own wait; a
            // HALF-OPEN one lets its trials decide (re-opening it would make calls still in
            // flight late, so they would no longer hold the trial lease they run under);
            // forced or disabled states are the operator's.
            if local != State::Closed || pttl <= 0 {
                return;
            }
            let wait = Duration::from_millis(pttl as u64);
            if applying(|| b.transition_to_open_for(wait)).is_ok() {
                self.emit(FleetEvent::Applied {
                    state: State::Open,
                    from,
                    wait: Some(wait),
                });
            }
        } else if matches!(local, State::Open | State::HalfOpen) {
            applying(|| b.transition_to_closed());
            self.emit(FleetEvent::Applied {
                state: State::Closed,
                from,
                wait: None,
            });
        }
    }
}

/// `p` as it is to be published now, if the breaker is still in the state and generation `p`
/// entered: the state and the record's expiry (OPEN: the wait it has left).
fn current<C: Clock>(b: &CircuitBreaker<C>, p: Publish) -> Option<(State, u64)> {
    let (gen, state, ttl_ms) = match p {
        Publish::Open(gen) => {
            let left = b.metrics().retry_after.unwrap_or_default();
            (gen, State::Open, left.as_millis() as u64)
        }
        Publish::Closed(gen) => (gen, State::Closed, CLOSED_TTL_MS),
    };
    (b.generation() == gen && b.state() == state && ttl_ms > 0).then_some((state, ttl_ms))
}
