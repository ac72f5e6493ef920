"""The manual clock: open waits driven by hand, without sleeping."""

import datetime

import pytest

from breakerbox_rs import CircuitBreaker, CircuitBreakerError, ConfigError, ManualClock, Registry


def fail():
    raise RuntimeError("down")


def test_open_wait_then_half_open_then_closed_without_sleeping():
    clock = ManualClock()
    b = CircuitBreaker(name="svc", failure_threshold=1, recovery_timeout=30, clock=clock)
    with pytest.raises(RuntimeError):
        b.call(fail)
    assert b.state == "open"
    with pytest.raises(CircuitBreakerError) as e:
        b.call(lambda: 1)
    assert e.value.retry_after == pytest.approx(30, abs=0.01)

    clock.advance(29.5)
    assert not b.would_admit()
    with pytest.raises(CircuitBreakerError) as e:
        b.call(lambda: 1)
    assert e.value.retry_after == pytest.approx(0.5, abs=0.01)

    clock.advance(datetime.timedelta(seconds=0.5))
    assert b.would_admit()
    permit = b.acquire()
    assert permit.is_trial
    assert b.state == "half_open"
    permit.success()
    assert b.state == "closed"


def test_a_failed_trial_reopens_for_the_next_backoff_step():
    clock = ManualClock()
    b = CircuitBreaker(failure_threshold=1, recovery_timeout=10, open_wait_max=40, clock=clock)
    with pytest.raises(RuntimeError):
        b.call(fail)
    clock.advance(10)
    with pytest.raises(RuntimeError):
        b.call(fail)  # the trial fails
    assert b.state == "open"
    clock.advance(10)
    assert not b.would_admit()  # the second opening waits 20 s
    clock.advance(10)
    assert b.call(lambda: "ok") == "ok"
    assert b.state == "closed"


def test_breakers_given_one_clock_share_its_time_and_a_registry_takes_one_too():
    clock = ManualClock()
    reg = Registry(failure_threshold=1, recovery_timeout=5, clock=clock)
    a, b = reg.get("a"), reg.get("b")
    for br in (a, b):
        with pytest.raises(RuntimeError):
            br.call(fail)
    assert not a.would_admit() and not b.would_admit()
    clock.set(5)
    assert a.would_admit() and b.would_admit()


def test_set_never_goes_back_and_now_reads_the_time():
    clock = ManualClock()
    assert clock.now() == 0
    clock.advance(1.5)
    assert clock.now() == pytest.approx(1.5)
    assert clock.set(3) is True
    assert clock.set(2) is False
    assert clock.now() == pytest.approx(3)
    assert "ManualClock" in repr(clock)


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), 1e30])
def test_out_of_range_moves_are_config_errors(bad):
    clock = ManualClock()
    with pytest.raises(ConfigError) as e:
        clock.advance(bad)
    assert e.value.field == "seconds"
    with pytest.raises(ConfigError):
        clock.set(bad)
    assert clock.now() == 0


@pytest.mark.parametrize("bad", ["1", None, True, [1]])
def test_moves_of_the_wrong_type_are_type_errors(bad):
    with pytest.raises(TypeError):
        ManualClock().advance(bad)


@pytest.mark.parametrize("bad", ["manual", 1, object()])
def test_clock_must_be_a_manual_clock(bad):
    with pytest.raises(TypeError, match="clock"):
        CircuitBreaker(clock=bad)
    with pytest.raises(TypeError, match="clock"):
        Registry(clock=bad)


def test_the_default_clock_is_real_time():
    b = CircuitBreaker(failure_threshold=1, recovery_timeout=30, clock=None)
    with pytest.raises(RuntimeError):
        b.call(fail)
    assert not b.would_admit()
