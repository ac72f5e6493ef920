"""Bad input gets a clear, typed error naming the argument (never a panic, never a wall of
digits)."""

import pytest

from breakerbox_rs import CircuitBreaker, ConfigError


@pytest.mark.parametrize("bad", [int, object, str])
def test_expected_exception_must_be_an_exception_class(bad):
    with pytest.raises(TypeError, match=r"`expected_exception`.*exception classes.*" + bad.__name__):
        CircuitBreaker(expected_exception=bad)


def test_expected_exception_tuple_with_a_non_exception_class():
    with pytest.raises(TypeError, match=r"`expected_exception`.*int is not one"):
        CircuitBreaker(expected_exception=(ValueError, int))


@pytest.mark.parametrize("bad", [int, object])
def test_exclude_must_be_an_exception_class(bad):
    with pytest.raises(TypeError, match=r"`exclude`.*exception classes.*" + bad.__name__):
        CircuitBreaker(exclude=bad)


def test_exclude_accepts_a_list():
    b = CircuitBreaker(exclude=[KeyError, IndexError])
    assert b.classify(KeyError()) == "ignore"
    assert b.classify(IndexError()) == "ignore"
    assert b.classify(ValueError()) == "failure"


@pytest.mark.parametrize("value", [-1, 0, 2**40])
def test_fail_max_states_the_real_range(value):
    with pytest.raises(ConfigError, match=r"`fail_max`: .* is outside 1 \.\.= 4294967295") as e:
        CircuitBreaker(fail_max=value)
    assert e.value.field == "fail_max"


def test_half_open_permits_states_its_range():
    with pytest.raises(ConfigError, match=r"`half_open_permits`: -1 is outside 1 \.\.= 65535"):
        CircuitBreaker(half_open_permits=-1)


@pytest.mark.parametrize("value", [1e20, 1e300, 10**6])
def test_reset_timeout_over_the_limit(value):
    with pytest.raises(ConfigError, match=r"`reset_timeout`: .* over the limit of 86400 seconds") as e:
        CircuitBreaker(reset_timeout=value)
    assert e.value.field == "reset_timeout"
    assert "not a duration" not in str(e.value)
    assert len(str(e.value)) < 120  # no 300-digit number


def test_negative_timeout_is_not_a_duration():
    with pytest.raises(ConfigError, match=r"`reset_timeout`: -1 seconds is not a duration"):
        CircuitBreaker(reset_timeout=-1)


def test_permit_exception_refuses_a_string():
    permit = CircuitBreaker().acquire()
    with pytest.raises(TypeError, match=r"`exception` takes the exception.*str"):
        permit.exception("x")
    assert permit.pending  # nothing recorded: it can still be reported
    permit.success()
