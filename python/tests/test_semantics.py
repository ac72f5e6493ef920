"""The Rust tests' cases (tests/transitions.rs), through the Python API. The core's manual
clock is not exposed: open waits are 0 (the next call half-opens) or long (never reached)."""

import time

import pytest

from breakerbox_rs import (
    CLOSED,
    FORCED_OPEN,
    HALF_OPEN,
    OPEN,
    CircuitBreaker,
    CircuitBreakerError,
)


def make(**kw):
    settings = dict(
        failure_rate_threshold=0.5,
        window_size=10,
        minimum_calls=4,
        open_wait=30,
        half_open_permits=2,
        half_open_successes=2,
    )
    settings.update(kw)
    return CircuitBreaker(**settings)


def fail(b):
    b.acquire().failure()


def succeed(b):
    b.acquire().success()


def transitions(b):
    log = []
    b.on_event(lambda e: log.append((e["from_state"], e["to_state"], e["reason"])), kinds=["transition"])
    return log


def test_closed_to_open_on_failure_rate_after_minimum_calls():
    b = make()
    log = transitions(b)
    for _ in range(3):
        fail(b)
    assert b.state == CLOSED, "3 calls < minimum of 4"
    fail(b)
    assert b.state == OPEN
    assert log == [(CLOSED, OPEN, "tripped")]


def test_the_window_slides_rather_than_accumulates():
    b = make()
    for _ in range(1000):
        succeed(b)
    for i in range(5):
        assert b.state == CLOSED, f"after {i} failures"
        fail(b)
    assert b.state == OPEN


def test_open_rejects_with_retry_after():
    b = make()
    for _ in range(4):
        fail(b)
    with pytest.raises(CircuitBreakerError) as e:
        b.acquire()
    assert e.value.state == OPEN
    assert 29.0 < e.value.retry_after <= 30.0
    assert e.value.breaker == b.name
    assert b.try_acquire() is None
    assert b.metrics()["rejected"] == 2
    assert b.opened


def test_half_open_caps_trials_and_closes_after_k_successes():
    b = make(open_wait=0)
    log = transitions(b)
    for _ in range(4):
        fail(b)
    t1 = b.acquire()
    assert t1.is_trial and b.state == HALF_OPEN
    t2 = b.acquire()
    with pytest.raises(CircuitBreakerError) as e:
        b.acquire()
    assert (e.value.state, e.value.retry_after) == (HALF_OPEN, None)
    t1.success()
    assert b.state == HALF_OPEN, "1 of 2 successes"
    t3 = b.acquire()  # t1's slot is free again
    t2.success()
    assert b.state == CLOSED
    t3.failure()  # admitted in the half-open generation: late
    assert b.state == CLOSED
    m = b.metrics()
    assert (m["late"], m["window_calls"], m["window_failures"]) == (1, 0, 0)
    assert [(f, t) for f, t, _ in log] == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]


def test_half_open_failure_reopens():
    b = CircuitBreaker(failure_threshold=1, open_wait=0)
    fail(b)
    for _ in range(5):
        p = b.acquire()
        assert p.is_trial
        p.failure()
        assert b.state == OPEN
    b.acquire().success()
    assert b.state == CLOSED
    assert b.metrics()["times_opened"] == 6


def test_backoff_grows_over_openings():
    b = CircuitBreaker(failure_threshold=1, open_wait=10, open_wait_max=40)
    fail(b)
    with pytest.raises(CircuitBreakerError) as e:
        b.acquire()
    assert 9 < e.value.retry_after <= 10
    opened = []
    b.on_event(lambda e: opened.append(e["open_wait"]), kinds=["transition"])
    b.force_open()
    b.reset()
    fail(b)
    assert opened[-1] == 10.0, "reset restarts the backoff"


def test_dropped_trial_permit_gives_its_slot_back():
    b = CircuitBreaker(failure_threshold=1, open_wait=0)
    fail(b)
    trial = b.acquire()
    assert b.try_acquire() is None
    del trial  # garbage-collected unreported: a cancelled call
    assert b.metrics()["half_open_in_flight"] == 0
    trial = b.acquire()
    trial.ignore()
    assert b.state == HALF_OPEN
    # an exception that is not an Exception (KeyboardInterrupt) gives the slot back too
    with pytest.raises(KeyboardInterrupt):
        b.call(_raise, KeyboardInterrupt())
    assert b.metrics()["half_open_in_flight"] == 0
    assert b.try_acquire() is not None


def _raise(e):
    raise e


def test_consecutive_failures_rule_is_the_classic_five():
    b = CircuitBreaker(failure_threshold=5)
    for _ in range(4):
        fail(b)
    succeed(b)
    for _ in range(4):
        fail(b)
    assert b.state == CLOSED
    fail(b)
    assert b.state == OPEN


def test_slow_calls_trip_the_slow_rate_rule():
    # Call durations are real (the guarded call sleeps); the rule is the core's.
    # (The fast calls would have to stall 300 ms to count as slow.)
    b = CircuitBreaker(slow_call_rate_threshold=0.5, slow_call_duration=0.3, window_size=4, minimum_calls=4)

    @b
    def call(d):
        time.sleep(d)

    for i in range(4):
        call(0.35 if i % 2 == 0 else 0.0)
    assert b.state == OPEN
    m = b.metrics()
    assert (m["slow_calls"], m["failures"], m["successes"]) == (2, 0, 4)


def test_manual_states():
    b = make()
    b.force_open()
    with pytest.raises(CircuitBreakerError) as e:
        b.acquire()
    assert (e.value.state, e.value.retry_after) == (FORCED_OPEN, None)
    b.disable()
    for _ in range(100):
        fail(b)
    assert b.state == "disabled"
    b.metrics_only()
    for _ in range(100):
        fail(b)
    m = b.metrics()
    assert m["state"] == "metrics_only"
    assert (m["window_calls"], m["window_failures"]) == (10, 10)
    b.reset()
    assert b.state == CLOSED
    assert b.metrics()["window_calls"] == 0
    assert b.metrics()["failures"] == 200


def test_outcomes_from_before_a_transition_are_late():
    b = make()
    slow_call = b.acquire()
    for _ in range(4):
        fail(b)
    assert b.state == OPEN
    slow_call.success()
    m = b.metrics()
    assert m["late"] == 1
    assert (m["window_calls"], m["window_failures"]) == (4, 4)


def test_classification_and_errors():
    class NotFound(Exception):
        pass

    b = make(expected_exception=(IOError, LookupError), exclude=NotFound)

    def boom(e):
        raise e

    with pytest.raises(IOError):
        b.call(boom, IOError("down"))
    with pytest.raises(NotFound):
        b.call(boom, NotFound())
    with pytest.raises(ValueError):
        b.call(boom, ValueError("bad input"))  # not expected: the dependency answered
    m = b.metrics()
    assert (m["failures"], m["ignored"], m["calls"]) == (1, 1, 2)
    assert b.classify(KeyError()) == "failure"
    assert b.classify(NotFound()) == "ignore"
    assert b.classify(ValueError()) == "success"
    b.force_open()
    with pytest.raises(CircuitBreakerError):
        b.call(lambda: 1)


def test_predicate_classifier():
    b = CircuitBreaker(failure_threshold=2, expected_exception=lambda e: getattr(e, "status", 0) >= 500)

    class HTTPError(Exception):
        def __init__(self, status):
            self.status = status

    assert b.classify(HTTPError(503)) == "failure"
    assert b.classify(HTTPError(404)) == "success"
    assert b.classify(RuntimeError()) == "success"


def test_permit_reports_once():
    b = make()
    p = b.acquire()
    p.success()
    assert not p.pending
    with pytest.raises(RuntimeError):
        p.failure()


def test_metrics_and_prometheus():
    b = make(name="db")
    for _ in range(3):
        succeed(b)
    fail(b)
    m = b.metrics()
    assert m["name"] == "db" and m["calls"] == 4 and m["failures"] == 1
    assert m["failure_rate"] == 0.25 and m["rates_ready"] is True
    text = b.prometheus()
    assert 'breakerbox_calls_total{breaker="db"} 4' in text
    assert 'breakerbox_state{breaker="db",state="closed"} 1' in text


def test_time_window_forgets_old_failures():
    # The one case on the real clock: a 1 s window; the calls of each phase are microseconds
    # apart, and the pause (1.1 s) is longer than the window, so no assertion races the clock.
    b = CircuitBreaker(failure_rate_threshold=0.5, window_duration=1.0, window_buckets=10, minimum_calls=4)
    for _ in range(3):
        fail(b)
    time.sleep(1.1)  # those failures leave the window
    for _ in range(3):
        succeed(b)
    fail(b)
    assert b.state == CLOSED, "1 of 4 in the last second"
    fail(b)
    fail(b)
    assert b.state == OPEN, "3 of 6 in the last second"
