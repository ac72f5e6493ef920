//! Every round trip to the server: the keys of a breaker, the Lua scripts (publish, lease,
//! aggregate) and the plain commands (read the record, give a lease back).

use super::conn::Connection;
use redis::RedisResult;

/// The keys of one breaker's fleet state, `<prefix>:{<tag>}:state` and so on, where `<tag>` is
/// the breaker's name as a hash tag (see [`hash_tag`]): on a Redis Cluster every key of one
/// breaker is in one hash slot, so its scripts run there.
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
    /// The keys of breaker `name` under `prefix` (which has no `{` or `}`, so that the hash
    /// tag is the name's).
    pub(super) fn new(prefix: &str, name: &str) -> Self {
        let tag = hash_tag(name);
        Keys {
            state: format!("{prefix}:{{{tag}}}:state"),
            seq: format!("{prefix}:{{{tag}}}:seq"),
            trials: format!("{prefix}:{{{tag}}}:trials"),
            counts: format!("{prefix}:{{{tag}}}:counts"),
        }
    }
}

/// A breaker name as the content of a Redis hash tag: `%`, `{` and `}` are percent-escaped
/// (`%25`, `%7B`, `%7D`), so the tag ends where the name does and two names never share
/// keys; an empty name is `%` (which no escaped name can be), since an empty tag would not
/// be a tag at all.
pub(super) fn hash_tag(name: &str) -> String {
    if name.is_empty() {
        return "%".into();
    }
    let mut tag = String::with_capacity(name.len());
    for ch in name.chars() {
        match ch {
            '%' => tag.push_str("%25"),
            '{' => tag.push_str("%7B"),
            '}' => tag.push_str("%7D"),
            c => tag.push(c),
        }
    }
    tag
}

/// The most calls one instance's counts entry in the fleet window may hold (2^40): it keeps
/// the sums of thousands of entries exact in Lua's doubles. An entry above it is malformed.
pub(super) const MAX_ENTRY_CALLS: u64 = 1 << 40;

/// The longest a counts entry may still have to live (ms): three of the longest sync interval
/// any configuration allows, since instances of one breaker may sync at different intervals.
/// An entry that expires later than this from the server's now is malformed.
pub(super) const MAX_COUNTS_TTL_MS: u64 = 3 * 60 * 1000;

/// The longest `lease_ttl` a configuration allows (ms): a lease expiring later is malformed.
pub(super) const MAX_LEASE_TTL_MS: u64 = 60 * 60 * 1000;

/// Runs [`PUBLISH`]: this instance's record of `kind`; returns the epoch, unparsed.
pub(super) async fn publish(
    c: &mut Connection,
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
        .arg(super::record::MAX_FUTURE_US)
        .invoke_async(c)
        .await
}

/// Reads the fleet's record, the time its key has left (ms; negative: no expiry or no key)
/// and the server's clock (`TIME`: seconds, microseconds).
pub(super) async fn read_state(
    c: &mut Connection,
    keys: &Keys,
) -> RedisResult<(Option<String>, i64, (u64, u64))> {
    redis::pipe()
        .get(&keys.state)
        .cmd("PTTL")
        .arg(&keys.state)
        .cmd("TIME")
        .query_async(c)
        .await
}

/// Runs [`LEASE`]: takes or refreshes `instance`'s trial lease; the reply, unparsed (see
/// `record::parse_lease`).
pub(super) async fn lease(
    c: &mut Connection,
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
        .arg(MAX_LEASE_TTL_MS)
        .invoke_async(c)
        .await
}

/// Gives `instance`'s trial lease back.
pub(super) async fn release_lease(
    c: &mut Connection,
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
/// fleet's sums, unparsed. The counts are clamped to what the script accepts (calls at most
/// [`MAX_ENTRY_CALLS`], failures and slow calls at most calls).
pub(super) async fn aggregate(
    c: &mut Connection,
    keys: &Keys,
    instance: &str,
    (calls, failures, slow): (u64, u64, u64),
    ttl_ms: u64,
) -> RedisResult<Vec<i64>> {
    let calls = calls.min(MAX_ENTRY_CALLS);
    let (failures, slow) = (failures.min(calls), slow.min(calls));
    redis::Script::new(AGGREGATE)
        .key(&keys.counts)
        .arg(instance)
        .arg(format!("{calls}|{failures}|{slow}"))
        .arg(ttl_ms.min(MAX_COUNTS_TTL_MS))
        .arg(MAX_COUNTS_TTL_MS)
        .arg(MAX_ENTRY_CALLS)
        .invoke_async(c)
        .await
}

/// Publishes `kind` for `instance` with a key expiry of `ttl_ms`; returns the epoch: the
/// server's time in µs, or one more than the last epoch if that is not later (the clock
/// stepped back, or two publishes in one µs). The last epoch (KEYS[2]) is untrusted: unless it
/// is a plain integer of at most 16 digits no more than ARGV[4] µs ahead of the server's
/// clock, it is ignored (and overwritten), so garbage there heals on the next publish. Lua
/// numbers are doubles: exact below 2^53 µs (year 2255). Any type of key is overwritten.
const PUBLISH: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = 0
local raw = redis.pcall('GET', KEYS[2])
if type(raw) == 'string' and #raw <= 16 and string.match(raw, '^%d+$') then
  last = tonumber(raw)
  if last > now + tonumber(ARGV[4]) then last = 0 end
end
local e = now
if e <= last then e = last + 1 end
local s = string.format('%.0f', e)
redis.call('SET', KEYS[2], s)
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. s .. '|' .. ARGV[2], 'PX', ARGV[3])
return s
";

/// Takes or refreshes `instance`'s trial lease if fewer than `cap` unexpired leases exist;
/// 1 if held afterwards, else 0, plus 2 if the key was of another type (and deleted). Scores are expiry times (server ms). A key of another type
/// is deleted first, and so are leases expiring more than ARGV[4] ms from now (the longest
/// `lease_ttl` a configuration allows), so a planted lease holds a slot for at most that.
const LEASE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ty = redis.call('TYPE', KEYS[1])['ok']
local reset = 0
if ty ~= 'zset' and ty ~= 'none' then redis.call('DEL', KEYS[1]); reset = 2 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '(' .. string.format('%.0f', now + tonumber(ARGV[4])), '+inf')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if held or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1 + reset
end
return reset
";

/// Stores `instance`'s window counts (`calls|failures|slow`) with an expiry `ttl_ms` from now
/// (server ms) in hash KEYS[1], drops expired and malformed entries, and returns the sums
/// over the rest: `{calls, failures, slow, instances, dropped_malformed}`. Every entry is
/// untrusted: it must be `calls|failures|slow|expiry` (digits, at most 15 each) with
/// failures and slow calls at most calls, calls at most ARGV[5], and an expiry at most
/// ARGV[4] ms from now; anything else is deleted. A key of another type is deleted too.
const AGGREGATE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
local horizon = now + tonumber(ARGV[4])
local cap = tonumber(ARGV[5])
local bad = 0
local ty = redis.call('TYPE', KEYS[1])['ok']
if ty ~= 'hash' and ty ~= 'none' then
  redis.call('DEL', KEYS[1]); bad = bad + 1
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. string.format('%.0f', now + ttl))
redis.call('PEXPIRE', KEYS[1], ttl * 10)
local all = redis.call('HGETALL', KEYS[1])
local c, f, s, n = 0, 0, 0, 0
for i = 1, #all, 2 do
  local a, b, d, e = string.match(all[i + 1], '^(%d+)|(%d+)|(%d+)|(%d+)$')
  local ok = a ~= nil and #a <= 15 and #b <= 15 and #d <= 15 and #e <= 15
  if ok then
    a, b, d, e = tonumber(a), tonumber(b), tonumber(d), tonumber(e)
    ok = a <= cap and b <= a and d <= a and e <= horizon
  end
  if not ok then
    redis.call('HDEL', KEYS[1], all[i]); bad = bad + 1
  elseif e <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    c = c + a; f = f + b; s = s + d; n = n + 1
  end
end
return {c, f, s, n, bad}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_breaker_carries_its_name_as_one_hash_tag() {
        let k = Keys::new("p", "payments");
        assert_eq!(k.state, "p:{payments}:state");
        assert_eq!(k.seq, "p:{payments}:seq");
        assert_eq!(k.trials, "p:{payments}:trials");
        assert_eq!(k.counts, "p:{payments}:counts");
        // Braces and percent signs are escaped: the tag is the whole name, and distinct names
        // have distinct tags.
        assert_eq!(Keys::new("p", "a}b{c").state, "p:{a%7Db%7Bc}:state");
        assert_eq!(hash_tag("%7D"), "%257D");
        assert_ne!(hash_tag("}"), hash_tag("%7D"));
        assert_eq!(Keys::new("p", "").state, "p:{%}:state");
        for name in ["", "}", "{", "{}", "a}b{c", "%", "x:y|z"] {
            let k = Keys::new("p", name);
            for key in [&k.state, &k.seq, &k.trials, &k.counts] {
                // Redis's rule: the tag is between the first `{` and the next `}`.
                let open = key.find('{').unwrap();
                let close = open + 1 + key[open + 1..].find('}').unwrap();
                assert_eq!(&key[open + 1..close], hash_tag(name), "{name:?}: {key}");
                assert!(close > open + 1, "{name:?}: empty tag in {key}");
            }
        }
    }
}
