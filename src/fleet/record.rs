//! The one place that parses what the server returns: the state record (`kind|epoch|instance`),
//! the epoch a publish returns, the fleet window's sums, and whether an error is about the
//! data or the connection. Nothing here trusts a reply: what does not parse, or is out of
//! range, is `None` (the task reports it as malformed).

use crate::state::State;

/// How far in the server's future an epoch may lie (µs). Epochs are the server's time, so a
/// later one only comes from the publishing script's `+1` after the server's clock stepped
/// back; anything further ahead is malformed (the publishing script resets a sequence beyond
/// it, and the task forgets a newest-seen epoch beyond it).
pub(super) const MAX_FUTURE_US: u64 = 10_000_000;

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

/// Parses a state record read when the server's clock was at `now_us` (see [`server_time`]);
/// `None` if malformed, including an epoch more than [`MAX_FUTURE_US`] ahead of `now_us`.
pub(super) fn parse(v: &str, now_us: u64) -> Option<Record<'_>> {
    let mut it = v.splitn(3, '|');
    let open = match it.next()? {
        "open" => true,
        "closed" => false,
        _ => return None,
    };
    let epoch = parse_epoch(it.next()?)?;
    if epoch > now_us.saturating_add(MAX_FUTURE_US) {
        return None;
    }
    let instance = it.next().filter(|i| !i.is_empty())?;
    Some(Record {
        open,
        epoch,
        instance,
    })
}

/// Parses an epoch (decimal digits only); `None` if malformed.
pub(super) fn parse_epoch(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok()
}

/// The server's clock in µs from its `TIME` reply (seconds, microseconds); `None` if out of
/// range.
pub(super) fn server_time((secs, micros): (u64, u64)) -> Option<u64> {
    if micros >= 1_000_000 {
        return None;
    }
    secs.checked_mul(1_000_000)?.checked_add(micros)
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
/// if it does not have five numbers, or the sums are impossible (more failures or slow calls
/// than calls). Negative counts read as 0.
pub(super) fn parse_sums(v: &[i64]) -> Option<Sums> {
    let &[calls, failures, slow, instances, dropped] = v else {
        return None;
    };
    let [calls, failures, slow, instances] =
        [calls, failures, slow, instances].map(|n| n.max(0) as u64);
    if failures > calls || slow > calls {
        return None;
    }
    Some(Sums {
        calls,
        failures,
        slow,
        instances,
        dropped,
    })
}

/// Parses the lease script's reply: (whether the lease is held, whether the key was of
/// another type and was deleted); `None` if it is not 0 ..= 3.
pub(super) fn parse_lease(v: i64) -> Option<(bool, bool)> {
    (0..=3).contains(&v).then_some((v & 1 == 1, v & 2 == 2))
}

/// Whether a Redis error is about the data (a server error reply, an unexpected type), not
/// the connection.
pub(super) fn data_error(e: &redis::RedisError) -> bool {
    !(e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_connection_refusal())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000_000;

    #[test]
    fn records_with_an_epoch_far_ahead_of_the_server_are_malformed() {
        let ok = format!("open|{}|a", NOW + MAX_FUTURE_US);
        assert!(parse(&ok, NOW).is_some_and(|r| r.open && r.instance == "a"));
        let ahead = format!("closed|{}|a", NOW + MAX_FUTURE_US + 1);
        assert!(parse(&ahead, NOW).is_none());
        assert!(parse(&format!("open|{}|a", u64::MAX), NOW).is_none());
        assert!(parse(&format!("open|{}|a", u64::MAX), u64::MAX).is_some());
        for bad in [
            "open|+5|a",
            "open||a",
            "open|1e300|a",
            "open|5|",
            "half|5|a",
            "open|5",
        ] {
            assert!(parse(bad, NOW).is_none(), "{bad}");
        }
    }

    #[test]
    fn server_time_and_epochs_are_bounded() {
        assert_eq!(server_time((1, 999_999)), Some(1_999_999));
        assert_eq!(server_time((1, 1_000_000)), None);
        assert_eq!(server_time((u64::MAX, 0)), None);
        assert_eq!(parse_epoch("18446744073709551615"), Some(u64::MAX));
        for bad in ["18446744073709551616", "+1", "-1", " 1", ""] {
            assert_eq!(parse_epoch(bad), None, "{bad}");
        }
    }

    #[test]
    fn impossible_sums_and_lease_replies_are_malformed() {
        assert!(parse_sums(&[10, 5, 5, 2, 0]).is_some());
        assert!(parse_sums(&[10, 11, 0, 2, 0]).is_none());
        assert!(parse_sums(&[10, 0, 11, 2, 0]).is_none());
        assert!(parse_sums(&[10, 0, 0, 2]).is_none());
        assert_eq!(parse_lease(0), Some((false, false)));
        assert_eq!(parse_lease(3), Some((true, true)));
        assert_eq!(parse_lease(4), None);
        assert_eq!(parse_lease(-1), None);
    }
}
