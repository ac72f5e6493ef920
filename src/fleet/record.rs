//! The one place that parses what the server returns: the state record (`kind|epoch|instance`),
//! the epoch a publish returns, the fleet window's sums, and whether an error is about the
//! data or the connection. Nothing here trusts a reply: what does not parse is `None` (the
//! task reports it as malformed).

use crate::state::State;

/// A fleet record: `kind|epoch|instance`.
pub(super) struct Record<'a> {
    pub(super) open: bool,
    pub(super) epoch: u64,
    pub(super) instance: &'a str,
}

/// The `kind` of a record for `state` (OPEN or CLOSED).
pub(super) fn kind(state: State) -> &'static str {
    if state == State::Open {
        "open"
    } else {
        "closed"
    }
}

/// Parses a state record; `None` if malformed.
pub(super) fn parse(v: &str) -> Option<Record<'_>> {
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

/// Parses the epoch a publish returned; `None` if malformed.
pub(super) fn parse_epoch(s: &str) -> Option<u64> {
    s.parse::<u64>().ok()
}

/// The fleet window's sums over every unexpired instance, as the aggregate script returns them.
pub(super) struct Sums {
    pub(super) calls: u64,
    pub(super) failures: u64,
    pub(super) slow: u64,
    pub(super) instances: u64,
    /// Unparseable entries the script dropped.
    pub(super) dropped: i64,
}

/// Parses the aggregate script's reply `{calls, failures, slow, instances, dropped}`; `None`
/// if it does not have five numbers. Negative counts read as 0.
pub(super) fn parse_sums(v: &[i64]) -> Option<Sums> {
    let &[calls, failures, slow, instances, dropped] = v else {
        return None;
    };
    let [calls, failures, slow, instances] =
        [calls, failures, slow, instances].map(|n| n.max(0) as u64);
    Some(Sums {
        calls,
        failures,
        slow,
        instances,
        dropped,
    })
}

/// Whether a Redis error is about the data (a server error reply, an unexpected type), not
/// the connection.
pub(super) fn data_error(e: &redis::RedisError) -> bool {
    !(e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_connection_refusal())
}
