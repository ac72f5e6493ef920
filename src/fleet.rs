//! Fleet mode (feature `redis`): breakers of the same name in several service instances agree
//! through Redis, without any call ever waiting on it.
//!
//! Each attached breaker gets one background tokio task. The local lock-free breaker makes every
//! per-call decision as before; the task only watches and steers it:
//!
//! - **Transitions out.** A transition listener ([`CircuitBreaker::on_transition`], which costs
//!   the calls nothing) wakes the task when the breaker trips or a trial closes it; the task
//!   publishes the new state under `{prefix}:{name}:state` as `open|epoch|instance` (with the
//!   time left as the key's expiry) or `closed|epoch|instance`.
//! - **Transitions in.** Every `sync_interval` the task reads that key. A record newer than any it
//!   has seen, from another instance, is applied with a manual transition: a CLOSED breaker
//!   goes OPEN for the time the key has left
//!   ([`transition_to_open_for`](CircuitBreaker::transition_to_open_for)); an OPEN or
//!   HALF-OPEN one goes CLOSED ([`transition_to_closed`](CircuitBreaker::transition_to_closed)).
//!   (A HALF-OPEN breaker is not re-opened by another instance's record: its own trials, run
//!   under a fleet lease, decide.) Epochs are Redis
//!   server time in µs, made strictly increasing by the publishing script, so they survive a
//!   Redis restart and no instance's clock is involved.
//! - **Fleet-wide trials.** With `fleet_trials = Some(p)`, an OPEN breaker whose wait has ended
//!   stays OPEN until its task holds one of `p` trial leases (a sorted set under
//!   `{prefix}:{name}:trials`, scored by expiry and taken by an atomic script, so a crashed
//!   instance's lease lapses after `lease_ttl`). So at most `p` instances are HALF-OPEN at once,
//!   and the fleet has at most `p * half_open_permits` trial calls in flight (set
//!   `half_open_permits = 1` to make `p` the number of trial calls). The lease is refreshed
//!   while HALF-OPEN and given back when the breaker leaves it.
//! - **Redis down, slow or wrong.** Every Redis round trip has a timeout. On a connection error
//!   the task emits [`FleetEvent::Unavailable`], opens the gate (the breaker is plain local
//!   again: its own trials, no lease) and reconnects with exponential backoff; when Redis is
//!   back it emits [`FleetEvent::Connected`] and syncs again. A value it cannot parse, or a
//!   key of the wrong type, gives [`FleetEvent::Malformed`] (once per distinct value) and is
//!   otherwise ignored. Nothing panics; a panicking event callback is caught.
//!
//! - **Fleet window (optional, `aggregate(true)`).** Each round a CLOSED instance writes its
//!   window counts (calls, failures, slow calls) into the hash `{prefix}:{name}:counts`, stamped
//!   with an expiry of three sync intervals, and gets back the sum over every unexpired instance
//!   (one atomic script; expired and unparseable entries are dropped). Once the fleet holds
//!   `minimum_calls` calls and a rate rule's threshold is reached on the sums, the instance
//!   trips (a fleet trip: OPEN for the first backoff step's wait) and publishes it, so the
//!   fleet opens even when no single instance has seen enough calls. The fleet window is the
//!   union of the instances' own windows.
//!
//! Only automatic transitions are published (trips, failed or timed-out trials, trial
//! closes, fleet trips); other manual ones, including those the task applies, are not, so two
//! instances never echo each other.

use crate::breaker::{CircuitBreaker, HalfOpenGate};
use crate::clock::Clock;
use crate::events::{EventKind, TransitionReason};
use crate::state::State;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Settings of a breaker's fleet sync. Build with [`FleetConfig::new`] and the setters, then
/// [`attach`](FleetConfig::attach).
#[derive(Clone)]
pub struct FleetConfig {
    url: String,
    prefix: String,
    instance: String,
    sync_interval: Duration,
    fleet_trials: Option<u32>,
    lease_ttl: Duration,
    timeout: Duration,
    aggregate: bool,
    on_event: Option<FleetListener>,
}

/// A fleet event callback.
type FleetListener = Arc<dyn Fn(&FleetEvent) + Send + Sync>;

impl std::fmt::Debug for FleetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetConfig")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .field("instance", &self.instance)
            .field("sync_interval", &self.sync_interval)
            .field("fleet_trials", &self.fleet_trials)
            .field("lease_ttl", &self.lease_ttl)
            .field("timeout", &self.timeout)
            .field("aggregate", &self.aggregate)
            .finish_non_exhaustive()
    }
}

/// What a fleet sync task reports.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum FleetEvent {
    /// Connected (or reconnected) to Redis; syncing.
    Connected,
    /// Redis could not be reached or did not answer in time. The breaker works locally (its
    /// half-open gate is open) until the next attempt, `retry_in` from now.
    Unavailable {
        /// What failed.
        error: String,
        /// Backoff before the next attempt.
        retry_in: Duration,
    },
    /// A value under the namespace could not be used (unparseable, or a key of the wrong
    /// type). Ignored; reported once per distinct value.
    Malformed {
        /// The key.
        key: String,
        /// The value, or the error Redis returned.
        value: String,
    },
    /// This instance's transition was published to the fleet.
    Published {
        /// The state published.
        state: State,
        /// Its epoch.
        epoch: u64,
    },
    /// Another instance's transition was applied here.
    Applied {
        /// The state applied.
        state: State,
        /// The instance that published it.
        from: String,
        /// OPEN: the wait applied (the time the fleet record had left).
        wait: Option<Duration>,
    },
    /// A fleet-wide trial lease was taken (`true`) or given back (`false`).
    TrialLease {
        /// Taken or given back.
        held: bool,
    },
    /// The fleet window's sums reached a trip rule (with `aggregate(true)`): this instance
    /// opened and publishes it.
    FleetTrip {
        /// Calls in the fleet window.
        calls: u64,
        /// Failures among them.
        failures: u64,
        /// Slow calls among them.
        slow: u64,
        /// Instances whose counts were summed.
        instances: u64,
    },
}

/// A fleet setting that cannot work, or an attach that cannot start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// A setting out of range; names the setting.
    #[error("invalid fleet setting `{field}`: {reason}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// `attach` was called outside a tokio runtime.
    #[error("fleet sync needs a tokio runtime (call attach from within one)")]
    NoRuntime,
    /// The breaker already has a fleet sync with a trial cap.
    #[error("this breaker already has a fleet sync with fleet_trials")]
    AlreadyAttached,
}

const DEFAULT_INTERVAL: Duration = Duration::from_millis(50);
/// How long a `closed` record stays in Redis (an instance that was away longer has nothing to
/// close: its own trials decide).
const CLOSED_TTL_MS: u64 = 10 * 60 * 1000;
/// The longest backoff between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl FleetConfig {
    /// Sync through the Redis at `url` (`redis://127.0.0.1:6379`), with defaults: prefix
    /// `breakerbox`, a random instance id, `sync_interval` 50 ms, a fleet-wide cap of one
    /// instance in HALF-OPEN, `lease_ttl` 5 s, a 250 ms timeout per Redis round trip.
    pub fn new(url: impl Into<String>) -> Self {
        FleetConfig {
            url: url.into(),
            prefix: "breakerbox".into(),
            instance: format!("{}-{:08x}", std::process::id(), fastrand::u32(..)),
            sync_interval: DEFAULT_INTERVAL,
            fleet_trials: Some(1),
            lease_ttl: Duration::from_secs(5),
            timeout: Duration::from_millis(250),
            aggregate: false,
            on_event: None,
        }
    }

    /// Trip on the fleet's window as well as the local one: see the module doc. Needs a rate
    /// rule in the breaker's configuration (`attach` refuses otherwise). Off by default.
    pub fn aggregate(mut self, on: bool) -> Self {
        self.aggregate = on;
        self
    }

    /// Key namespace, so several services can share one Redis (no `|`, not empty).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// This instance's id in published records (no `|`, not empty; unique in the fleet).
    pub fn instance(mut self, id: impl Into<String>) -> Self {
        self.instance = id.into();
        self
    }

    /// How often the task reads the fleet state (1 ms ..= 60 s). Other instances apply a trip
    /// within about one interval.
    pub fn sync_interval(mut self, d: Duration) -> Self {
        self.sync_interval = d;
        self
    }

    /// At most `p` instances HALF-OPEN at once across the fleet (`None`: no fleet cap, each
    /// instance's own `half_open_permits` only).
    pub fn fleet_trials(mut self, p: Option<u32>) -> Self {
        self.fleet_trials = p;
        self
    }

    /// Lifetime of a trial lease not refreshed (a crashed holder's lease lapses after this);
    /// more than two sync intervals.
    pub fn lease_ttl(mut self, d: Duration) -> Self {
        self.lease_ttl = d;
        self
    }

    /// Timeout of each Redis round trip (and of connecting); 1 ms ..= 60 s.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Receives the task's [`FleetEvent`]s (on the task; keep it quick). A panic is caught.
    pub fn on_event(mut self, f: impl Fn(&FleetEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(f));
        self
    }

    fn validate(&self) -> Result<(), FleetError> {
        let invalid = |field, reason: &str| {
            Err(FleetError::Invalid {
                field,
                reason: reason.to_string(),
            })
        };
        let ms = Duration::from_millis(1);
        let minute = Duration::from_secs(60);
        if self.prefix.is_empty() || self.prefix.contains('|') {
            return invalid("prefix", "must be non-empty, without `|`");
        }
        if self.instance.is_empty() || self.instance.contains('|') {
            return invalid("instance", "must be non-empty, without `|`");
        }
        if !(ms..=minute).contains(&self.sync_interval) {
            return invalid("sync_interval", "must be within 1ms ..= 60s");
        }
        if !(ms..=minute).contains(&self.timeout) {
            return invalid("timeout", "must be within 1ms ..= 60s");
        }
        if self.fleet_trials == Some(0) {
            return invalid(
                "fleet_trials",
                "must be at least 1 (or None for no fleet cap)",
            );
        }
        if self.lease_ttl <= 2 * self.sync_interval || self.lease_ttl > Duration::from_secs(3600) {
            return invalid(
                "lease_ttl",
                "must be more than two sync intervals and at most 1h",
            );
        }
        if let Err(e) = redis::Client::open(self.url.as_str()) {
            return Err(FleetError::Invalid {
                field: "url",
                reason: e.to_string(),
            });
        }
        Ok(())
    }

    /// Starts syncing `breaker` with the fleet, on the current tokio runtime. The task stops
    /// when the returned [`FleetSync`] is dropped (or the breaker is).
    pub fn attach<C: Clock>(
        self,
        breaker: &Arc<CircuitBreaker<C>>,
    ) -> Result<FleetSync, FleetError> {
        self.validate()?;
        let c = breaker.config();
        if self.aggregate
            && c.failure_rate_threshold.is_none()
            && c.slow_call_rate_threshold.is_none()
        {
            return Err(FleetError::Invalid {
                field: "aggregate",
                reason: "the breaker has no rate rule to evaluate on the fleet window".into(),
            });
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| FleetError::NoRuntime)?;
        // The URL parsed in `validate`.
        let client = redis::Client::open(self.url.as_str()).map_err(|e| FleetError::Invalid {
            field: "url",
            reason: e.to_string(),
        })?;
        // Closed until the first round decides (or finds Redis unreachable and opens it).
        let gate = Arc::new(HalfOpenGate {
            open: AtomicBool::new(self.fleet_trials.is_none()),
            demand: AtomicBool::new(false),
        });
        if self.fleet_trials.is_some() && !breaker.set_half_open_gate(gate.clone()) {
            return Err(FleetError::AlreadyAttached);
        }
        let shared = Arc::new(Shared {
            notify: tokio::sync::Notify::new(),
            pending: Mutex::new(None),
        });
        let hook = Arc::downgrade(&shared);
        breaker.on_transition(move |e| {
            if APPLYING.with(Cell::get) {
                return;
            }
            let (EventKind::Transition(t), Some(shared)) = (e.kind, hook.upgrade()) else {
                return;
            };
            let publish = match (t.to, t.reason) {
                (
                    State::Open,
                    TransitionReason::Tripped(_)
                    | TransitionReason::TrialFailed { .. }
                    | TransitionReason::TrialRate(_)
                    | TransitionReason::HalfOpenTimedOut,
                ) => Publish::Open(t.generation),
                (State::Closed, TransitionReason::TrialsSucceeded { .. }) => {
                    Publish::Closed(t.generation)
                }
                _ => return,
            };
            *shared.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(publish);
            shared.notify.notify_one();
        });
        let name = breaker.name().to_string();
        let keys = Keys {
            state: format!("{}:{}:state", self.prefix, name),
            seq: format!("{}:{}:seq", self.prefix, name),
            trials: format!("{}:{}:trials", self.prefix, name),
            counts: format!("{}:{}:counts", self.prefix, name),
        };
        let task = Task {
            breaker: Arc::downgrade(breaker),
            shared: shared.clone(),
            gate,
            client,
            keys,
            config: self,
            last_epoch: 0,
            lease: false,
            malformed: None,
        };
        Ok(FleetSync {
            task: runtime.spawn(task.run()),
            _shared: shared,
        })
    }
}

/// A running fleet sync; dropping it stops the task (a held trial lease then lapses after
/// `lease_ttl`, and the breaker's half-open gate stays where it was: call
/// [`stop`](Self::stop) to leave the breaker plain local).
#[derive(Debug)]
pub struct FleetSync {
    task: tokio::task::JoinHandle<()>,
    _shared: Arc<Shared>,
}

impl FleetSync {
    /// Stops the task. The breaker keeps its state.
    pub fn stop(self) {}

    /// Whether the task is still running.
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }
}

impl Drop for FleetSync {
    fn drop(&mut self) {
        self.task.abort();
    }
}

thread_local! {
    /// Set while the sync task applies a fleet transition, so the transition listener (which
    /// runs synchronously inside that call, on this thread) does not publish it back.
    static APPLYING: Cell<bool> = const { Cell::new(false) };
}

fn applying<T>(f: impl FnOnce() -> T) -> T {
    APPLYING.with(|a| a.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    APPLYING.with(|a| a.set(false));
    r.unwrap_or_else(|p| std::panic::resume_unwind(p))
}

#[derive(Debug)]
struct Shared {
    notify: tokio::sync::Notify,
    pending: Mutex<Option<Publish>>,
}

/// A local transition to publish: the generation it entered.
#[derive(Clone, Copy, Debug)]
enum Publish {
    Open(u32),
    Closed(u32),
}

struct Keys {
    state: String,
    seq: String,
    trials: String,
    counts: String,
}

/// A fleet record: `kind|epoch|instance`.
struct Record<'a> {
    open: bool,
    epoch: u64,
    instance: &'a str,
}

fn parse(v: &str) -> Option<Record<'_>> {
    let mut it = v.splitn(3, '|');
    let open = match it.next()? {
        "open" => true,
        "closed" => false,
        _ => return None,
    };
    let epoch = it.next()?.parse().ok()?;
    let instance = it.next().filter(|i| !i.is_empty())?;
    Some(Record {
        open,
        epoch,
        instance,
    })
}

/// Publishes `kind` for `instance` with a key expiry of `ttl_ms`; returns the epoch: the
/// server's time in µs, or one more than the last epoch if that is not later (the clock
/// stepped back, or two publishes in one µs). Lua numbers are doubles: exact below 2^53 µs
/// (year 2255).
const PUBLISH: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', KEYS[2])) or 0
local e = now
if e <= last then e = last + 1 end
local s = string.format('%.0f', e)
redis.call('SET', KEYS[2], s)
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. s .. '|' .. ARGV[2], 'PX', ARGV[3])
return s
";

/// Takes or refreshes `instance`'s trial lease if fewer than `cap` unexpired leases exist;
/// 1 if held afterwards, else 0. Scores are expiry times (server ms).
const LEASE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if held or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// Stores `instance`'s window counts (`calls|failures|slow`) with an expiry `ttl_ms` from now
/// (server ms) in hash KEYS[1], drops expired and unparseable entries, and returns the sums
/// over the rest: `{calls, failures, slow, instances, dropped_malformed}`.
const AGGREGATE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. string.format('%.0f', now + tonumber(ARGV[3])))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 10)
local all = redis.call('HGETALL', KEYS[1])
local c, f, s, n, bad = 0, 0, 0, 0, 0
for i = 1, #all, 2 do
  local a, b, d, e = string.match(all[i + 1], '^(%d+)|(%d+)|(%d+)|(%d+)$')
  if not a then
    redis.call('HDEL', KEYS[1], all[i]); bad = bad + 1
  elseif tonumber(e) <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    c = c + tonumber(a); f = f + tonumber(b); s = s + tonumber(d); n = n + 1
  end
end
return {c, f, s, n, bad}
";

struct Task<C: Clock> {
    breaker: Weak<CircuitBreaker<C>>,
    shared: Arc<Shared>,
    gate: Arc<HalfOpenGate>,
    client: redis::Client,
    keys: Keys,
    config: FleetConfig,
    /// The newest epoch seen (published or read).
    last_epoch: u64,
    /// Whether this instance holds a trial lease.
    lease: bool,
    /// The last malformed value reported (reported once).
    malformed: Option<String>,
}

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

/// Whether a Redis error is about the data (a server error reply, an unexpected type), not
/// the connection.
fn data_error(e: &redis::RedisError) -> bool {
    !(e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_connection_refusal())
}

impl<C: Clock> Task<C> {
    fn emit(&self, e: FleetEvent) {
        if let Some(f) = &self.config.on_event {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&e)));
        }
    }

    /// The gate: open (plain local breaker) unless connected with a fleet cap and no lease.
    /// SeqCst: one side of the Dekker pattern described at `CircuitBreaker::gate_revoked`.
    fn set_gate(&self, open: bool) {
        self.gate.open.store(open, Ordering::SeqCst);
    }

    async fn run(mut self) {
        let mut conn: Option<redis::aio::MultiplexedConnection> = None;
        let mut backoff = self.config.sync_interval;
        let mut next_try = Instant::now();
        let connect_config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.timeout))
            .set_response_timeout(Some(self.config.timeout));
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
                    let attempt = tokio::time::timeout(
                        self.config.timeout,
                        self.client
                            .get_multiplexed_async_connection_with_config(&connect_config),
                    )
                    .await;
                    match attempt {
                        Ok(Ok(c)) => {
                            backoff = self.config.sync_interval;
                            if self.config.fleet_trials.is_some() {
                                // Leases count again: none is held yet.
                                self.set_gate(false);
                            }
                            // A close that happened while Redis was away is stale: it could
                            // overwrite a newer opening by another instance. An opening still
                            // current is worth sharing (opening is the safe direction).
                            let mut pending = self
                                .shared
                                .pending
                                .lock()
                                .unwrap_or_else(|e| e.into_inner());
                            if matches!(*pending, Some(Publish::Closed(_))) {
                                *pending = None;
                            }
                            drop(pending);
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
        c: &mut redis::aio::MultiplexedConnection,
    ) -> Result<(), Failure> {
        // 1. This instance's latest automatic transition, if still current.
        let pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(p) = pending {
            let (gen, state, ttl_ms) = match p {
                Publish::Open(gen) => {
                    let left = b.metrics().retry_after.unwrap_or_default();
                    (gen, State::Open, left.as_millis() as u64)
                }
                Publish::Closed(gen) => (gen, State::Closed, CLOSED_TTL_MS),
            };
            if b.generation() == gen && b.state() == state && ttl_ms > 0 {
                self.publish(c, state, ttl_ms).await?;
            }
        }

        // 2. The fleet's latest record.
        let read: Result<(Option<String>, i64), _> = redis::pipe()
            .get(&self.keys.state)
            .cmd("PTTL")
            .arg(&self.keys.state)
            .query_async(c)
            .await;
        match read {
            Ok((Some(v), pttl)) => match parse(&v) {
                None => self.malformed(&self.keys.state.clone(), v),
                Some(r) if r.epoch > self.last_epoch => {
                    self.last_epoch = r.epoch;
                    if r.instance != self.config.instance {
                        let from = r.instance.to_string();
                        self.apply(b, r.open, pttl, from);
                    }
                }
                Some(_) => {}
            },
            Ok((None, _)) => {}
            Err(e) if data_error(&e) => self.malformed(&self.keys.state.clone(), e.to_string()),
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
            let r: Result<i64, _> = redis::Script::new(LEASE)
                .key(&self.keys.trials)
                .arg(&self.config.instance)
                .arg(self.config.lease_ttl.as_millis() as u64)
                .arg(cap)
                .invoke_async(c)
                .await;
            match r {
                Ok(held) => {
                    let held = held == 1;
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
                let r: Result<i64, _> = redis::cmd("ZREM")
                    .arg(&self.keys.trials)
                    .arg(&self.config.instance)
                    .query_async(c)
                    .await;
                match r {
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

    /// Shares this instance's window counts and trips on the fleet's sums.
    async fn aggregate(
        &mut self,
        b: &CircuitBreaker<C>,
        c: &mut redis::aio::MultiplexedConnection,
    ) -> Result<(), Failure> {
        let m = b.metrics();
        let gen = b.generation();
        let value = format!(
            "{}|{}|{}",
            m.window_calls, m.window_failures, m.window_slow_calls
        );
        let ttl = 3 * self.config.sync_interval.as_millis() as u64;
        let r: Result<Vec<i64>, _> = redis::Script::new(AGGREGATE)
            .key(&self.keys.counts)
            .arg(&self.config.instance)
            .arg(value)
            .arg(ttl.max(1))
            .invoke_async(c)
            .await;
        let sums = match r {
            Ok(v) if v.len() == 5 => v,
            Ok(v) => {
                self.malformed(&self.keys.counts.clone(), format!("{v:?}"));
                return Ok(());
            }
            Err(e) if data_error(&e) => {
                self.malformed(&self.keys.counts.clone(), e.to_string());
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        if sums[4] > 0 {
            self.malformed(
                &self.keys.counts.clone(),
                format!("{} unparseable entries dropped", sums[4]),
            );
        }
        let [calls, failures, slow, instances] = [0, 1, 2, 3].map(|i| sums[i].max(0) as u64);
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
        self.publish(c, State::Open, wait.as_millis() as u64).await
    }

    /// Publishes this instance's `state` (OPEN or CLOSED) with a key expiry of `ttl_ms`.
    async fn publish(
        &mut self,
        c: &mut redis::aio::MultiplexedConnection,
        state: State,
        ttl_ms: u64,
    ) -> Result<(), Failure> {
        let kind = if state == State::Open {
            "open"
        } else {
            "closed"
        };
        let r: Result<String, _> = redis::Script::new(PUBLISH)
            .key(&self.keys.state)
            .key(&self.keys.seq)
            .arg(kind)
            .arg(&self.config.instance)
            .arg(ttl_ms)
            .invoke_async(c)
            .await;
        match r {
            Ok(s) => match s.parse::<u64>() {
                Ok(epoch) => {
                    self.last_epoch = self.last_epoch.max(epoch);
                    self.emit(FleetEvent::Published { state, epoch });
                }
                Err(_) => self.malformed(&self.keys.seq.clone(), s),
            },
            Err(e) if data_error(&e) => self.malformed(&self.keys.seq.clone(), e.to_string()),
            Err(e) => return Err(e.into()),
        }
        Ok(())
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
