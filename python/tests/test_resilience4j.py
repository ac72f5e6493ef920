"""resilience4j's controls through the Python API: manual transitions, the automatic
open -> half-open timer, half-open decided by rate, the initial state, the new metrics."""

import time

import pytest

from breakerbox_rs import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, CircuitBreakerError, ConfigError


def fail(b):
    b.acquire().failure()


def succeed(b):
    b.acquire().success()


def test_manual_transitions():
    b = CircuitBreaker(open_wait=1)
    b.transition_to_open_for(300)
    assert b.state == OPEN
    with pytest.raises(CircuitBreakerError):
        b.acquire()
    assert 299 < b.metrics()["retry_after"] <= 300
    b.transition_to_half_open()
    assert b.state == HALF_OPEN
    p = b.acquire()
    assert p.is_trial
    p.success()
    assert b.state == CLOSED
    gen = b.generation
    b.transition_to_closed()  # closed already: nothing
    assert b.generation == gen
    assert not b.half_open_if_due()


@pytest.mark.parametrize("seconds", [0, -1, 86401])
def test_open_for_refuses_bad_waits(seconds):
    b = CircuitBreaker()
    with pytest.raises(ConfigError) as e:
        b.transition_to_open_for(seconds)
    assert e.value.field == "seconds"
    assert b.state == CLOSED


def test_rate_decision_closes_on_f_s_s_s():
    b = CircuitBreaker(
        failure_rate_threshold=0.5,
        window_size=4,
        minimum_calls=4,
        half_open_permits=4,
        half_open_decision="rate",
    )
    b.transition_to_half_open()
    fail(b)
    assert b.state == HALF_OPEN
    for _ in range(3):
        succeed(b)
    assert b.state == CLOSED
    b.transition_to_half_open()
    fail(b)
    fail(b)
    succeed(b)
    succeed(b)
    assert b.state == OPEN  # 2 of 4 reach 0.5


def test_initial_state_and_config():
    b = CircuitBreaker(initial_state="open", open_wait=60)
    assert b.state == OPEN
    with pytest.raises(CircuitBreakerError):
        b.acquire()
    c = b.config()
    assert c["initial_state"] == "open"
    assert c["half_open_decision"] == "first_failure"
    assert c["automatic_half_open"] is False


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"half_open_decision": "sometimes"}, "half_open_decision"),
        ({"initial_state": "ajar"}, "initial_state"),
        ({"half_open_decision": "rate", "half_open_permits": 256}, "half_open_permits"),
        ({"half_open_decision": "rate", "half_open_successes": 2}, "half_open_successes"),
    ],
)
def test_new_settings_are_validated(kw, field):
    with pytest.raises(ConfigError) as e:
        CircuitBreaker(**kw)
    assert e.value.field == field


def test_automatic_half_open_needs_no_caller():
    b = CircuitBreaker(consecutive_failures=1, open_wait=0.05, automatic_half_open=True)
    fail(b)
    assert b.state == OPEN
    deadline = time.monotonic() + 20
    while b.state == OPEN:
        assert time.monotonic() < deadline, "the timer never moved it"
        time.sleep(0.005)
    assert b.state == HALF_OPEN
    assert b.metrics()["half_open_in_flight"] == 0


def test_new_metrics():
    b = CircuitBreaker(consecutive_failures=1, open_wait=60)
    fail(b)
    for _ in range(3):
        with pytest.raises(CircuitBreakerError):
            b.acquire()
    m = b.metrics()
    assert (m["rejected"], m["rejected_in_state"]) == (3, 3)
    assert m["slow_failures"] == 0
    b.transition_to_half_open()
    assert b.metrics()["rejected_in_state"] == 0


def test_half_open_timeout_state_and_no_limit():
    c = CircuitBreaker().config()
    assert (c["max_half_open_wait"], c["half_open_timeout_state"]) == (60.0, "open")
    c = CircuitBreaker(max_half_open_wait=None, half_open_timeout_state="closed").config()
    assert (c["max_half_open_wait"], c["half_open_timeout_state"]) == (None, "closed")
    with pytest.raises(ConfigError) as e:
        CircuitBreaker(half_open_timeout_state="half_open")
    assert e.value.field == "half_open_timeout_state"


def test_a_timed_out_half_open_period_closes_without_a_caller():
    b = CircuitBreaker(
        consecutive_failures=1,
        open_wait=0.01,
        max_half_open_wait=0.05,
        half_open_timeout_state="closed",
        automatic_half_open=True,
    )
    fail(b)
    deadline = time.monotonic() + 20
    while b.state != HALF_OPEN:
        assert time.monotonic() < deadline, "never half-open"
        time.sleep(0.005)
    hung = b.acquire()  # the one trial, never reported
    assert b.metrics()["half_open_in_flight"] == 1
    while b.state != CLOSED:
        assert time.monotonic() < deadline, "the timed-out period never closed"
        time.sleep(0.005)
    del hung


def test_trial_metrics_while_half_open():
    b = CircuitBreaker(consecutive_failures=1, open_wait=60, half_open_permits=3, half_open_successes=3)
    fail(b)
    b.transition_to_half_open()
    succeed(b)
    m = b.metrics()
    assert (m["half_open_trials"], m["half_open_trial_failures"]) == (1, 0)


def test_trip_on_opens_at_once_after_exclude_and_before_expected_exception():
    b = CircuitBreaker(failure_threshold=5, exclude=(FileNotFoundError,), trip_on=(ConnectionError,))

    @b
    def call(exc):
        raise exc

    # A subclass of an excluded type that is also a trip type: exclude wins.
    class Both(FileNotFoundError, ConnectionError):
        pass

    for _ in range(3):
        with pytest.raises(Both):
            call(Both())
    with pytest.raises(ValueError):
        call(ValueError())  # an ordinary failure: one of five
    assert b.state == CLOSED
    assert b.classify(ConnectionRefusedError()) == "trip"
    with pytest.raises((ConnectionRefusedError, CircuitBreakerError)):
        call(ConnectionRefusedError())
    assert b.state == OPEN
    m = b.metrics()
    assert (m["failures"], m["ignored"]) == (2, 3)


@pytest.mark.parametrize("bad", [int, "ConnectionError", (ConnectionError, 3)])
def test_trip_on_takes_exception_classes_only(bad):
    with pytest.raises(TypeError, match="trip_on"):
        CircuitBreaker(trip_on=bad)


def test_a_permit_reported_as_a_trip_opens_at_once():
    b = CircuitBreaker(failure_threshold=5)
    b.acquire().trip()
    assert b.state == OPEN
    assert b.metrics()["failures"] == 1
    b.transition_to_half_open()
    b.acquire().trip()  # a trial: re-opens
    assert b.state == OPEN


def test_open_wait_as_a_function_of_the_opening_in_a_row():
    # resilience4j's waitIntervalFunctionInOpenState: any callable of n (1 for the first
    # opening in a row), returning seconds or a timedelta, capped at open_wait_max.
    import datetime

    from breakerbox_rs import ManualClock

    clock = ManualClock()
    seen = []

    def wait(n):
        seen.append(n)
        return 10 * n if n < 2 else datetime.timedelta(seconds=10 * n)

    b = CircuitBreaker(failure_threshold=1, recovery_timeout=wait, open_wait_max=25, clock=clock)
    assert b.config()["open_wait"] == "function" and b.config()["open_wait_max"] == 25
    waits = []
    fail(b)
    for _ in range(3):
        w = b.metrics()["retry_after"]
        waits.append(round(w))
        clock.advance(w)
        fail(b)  # the trial fails: the next opening in a row
    assert waits == [10, 20, 25]
    assert seen[:3] == [1, 2, 3]


@pytest.mark.parametrize("bad", [lambda n: "soon", lambda n: -1, lambda n: float("nan"), lambda n: 1 / 0, lambda n: True])
def test_a_bad_open_wait_function_gives_the_cap_and_reports_it(bad, monkeypatch):
    import sys

    from breakerbox_rs import ManualClock

    hooks = []
    monkeypatch.setattr(sys, "unraisablehook", hooks.append)
    b = CircuitBreaker(failure_threshold=1, open_wait=bad, open_wait_max=7, clock=ManualClock())
    fail(b)
    assert b.state == OPEN
    assert b.metrics()["retry_after"] == pytest.approx(7, abs=0.01)
    assert len(hooks) >= 1


def test_an_open_wait_function_needs_its_cap():
    with pytest.raises(ConfigError) as e:
        CircuitBreaker(open_wait=lambda n: n)
    assert e.value.field == "open_wait_max"
    with pytest.raises(ConfigError) as e:
        CircuitBreaker(open_wait=lambda n: n, open_wait_max=10, open_wait_multiplier=3)
    assert e.value.field == "open_wait_multiplier"
