//! Every round trip to the server: the keys of a breaker, the Lua scripts (publish, lease,
//! aggregate) and the plain commands (read the record, give a lease back).

use redis::aio::MultiplexedConnection;
use redis::RedisResult;

/// The keys of one breaker's fleet state, under `{prefix}:{name}:`.
pub(super) struct Keys {
    /// The state record (`kind|epoch|instance`, expiring with the OPEN wait).
    pub(super) state: String,
    /// The last epoch handed out.
    pub(super) seq: String,
    /// The trial leases (a sorted set scored by expiry).
    pub(super) trials: String,
    /// The fleet window (a hash of each instance's counts).
    pub(super) counts: String,
}

impl Keys {
    pub(super) fn new(prefix: &str, name: &str) -> Self {
        Keys {
            state: format!("{prefix}:{name}:state"),
            seq: format!("{prefix}:{name}:seq"),
            trials: format!("{prefix}:{name}:trials"),
            counts: format!("{prefix}:{name}:counts"),
        }
    }
}

/// Runs [`PUBLISH`]: this instance's record of `kind`; returns the epoch, unparsed.
pub(super) async fn publish(
    c: &mut MultiplexedConnection,
    keys: &Keys,
    kind: &str,
    instance: &str,
    ttl_ms: u64,
) -> RedisResult<String> {
    redis::Script::new(PUBLISH)
        .key(&keys.state)
        .key(&keys.seq)
        .arg(kind)
        .arg(instance)
        .arg(ttl_ms)
        .invoke_async(c)
        .await
}

/// Reads the fleet's record and the time its key has left (ms; negative: no expiry or no key).
pub(super) async fn read_state(
    c: &mut MultiplexedConnection,
    keys: &Keys,
) -> RedisResult<(Option<String>, i64)> {
    redis::pipe()
        .get(&keys.state)
        .cmd("PTTL")
        .arg(&keys.state)
        .query_async(c)
        .await
}

/// Runs [`LEASE`]: takes or refreshes `instance`'s trial lease; 1 if held afterwards, else 0.
pub(super) async fn lease(
    c: &mut MultiplexedConnection,
    keys: &Keys,
    instance: &str,
    ttl_ms: u64,
    cap: u32,
) -> RedisResult<i64> {
    redis::Script::new(LEASE)
        .key(&keys.trials)
        .arg(instance)
        .arg(ttl_ms)
        .arg(cap)
        .invoke_async(c)
        .await
}

/// Gives `instance`'s trial lease back.
pub(super) async fn release_lease(
    c: &mut MultiplexedConnection,
    keys: &Keys,
    instance: &str,
) -> RedisResult<i64> {
    redis::cmd("ZREM")
        .arg(&keys.trials)
        .arg(instance)
        .query_async(c)
        .await
}

/// Runs [`AGGREGATE`]: stores this instance's window counts for `ttl_ms` and returns the
/// fleet's sums, unparsed.
pub(super) async fn aggregate(
    c: &mut MultiplexedConnection,
    keys: &Keys,
    instance: &str,
    (calls, failures, slow): (u64, u64, u64),
    ttl_ms: u64,
) -> RedisResult<Vec<i64>> {
    redis::Script::new(AGGREGATE)
        .key(&keys.counts)
        .arg(instance)
        .arg(format!("{calls}|{failures}|{slow}"))
        .arg(ttl_ms)
        .invoke_async(c)
        .await
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
