"""Validation: a ConfigError (ValueError) naming the field, TypeError for wrong types, never a
panic. The cases of the Rust tests' `invalid_config_names_the_field` and config unit tests."""

import datetime

import pytest

from breakerbox_rs import CircuitBreaker, ConfigError, Registry


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"failure_rate_threshold": 0.0}, "failure_rate_threshold"),
        ({"failure_rate_threshold": 1.5}, "failure_rate_threshold"),
        ({"failure_rate_threshold": float("nan")}, "failure_rate_threshold"),
        ({"slow_call_rate_threshold": 2.0}, "slow_call_rate_threshold"),
        ({"slow_call_rate_threshold": 0.5, "slow_call_duration": 0}, "slow_call_duration"),
        ({"consecutive_failures": 0}, "consecutive_failures"),
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"fail_max": 0}, "fail_max"),
        ({"failure_threshold": -3}, "failure_threshold"),
        ({"failure_rate_threshold": None}, "failure_rate_threshold"),  # no trip rule
        ({"minimum_calls": 0}, "minimum_calls"),
        ({"window_size": 0}, "window_size"),
        ({"window_size": 10, "minimum_calls": 20}, "minimum_calls"),
        ({"window_size": 2**23}, "window_size"),
        ({"window_duration": 0}, "window_duration"),
        ({"window_duration": 10, "window_buckets": 0}, "window_buckets"),
        ({"window_duration": 0.005, "window_buckets": 10}, "window_buckets"),
        ({"window_size": 10, "window_duration": 10}, "window_size"),
        ({"window_buckets": 10}, "window_buckets"),
        ({"recovery_timeout": -1}, "recovery_timeout"),
        ({"reset_timeout": float("inf")}, "reset_timeout"),
        ({"open_wait": 2 * 86400}, "open_wait"),
        ({"open_wait": 10, "open_wait_max": 5}, "open_wait_max"),
        ({"open_wait": 1, "open_wait_max": 5, "open_wait_multiplier": 0.5}, "open_wait_multiplier"),
        ({"open_wait_multiplier": 3}, "open_wait_multiplier"),
        ({"jitter": 1.0}, "jitter"),
        ({"jitter": -0.1}, "jitter"),
        ({"half_open_permits": 0}, "half_open_permits"),
        ({"half_open_permits": 70000}, "half_open_permits"),
        ({"half_open_successes": 0}, "half_open_successes"),
        ({"success_threshold": 0}, "success_threshold"),
        ({"max_half_open_wait": 0}, "max_half_open_wait"),
        ({"call_timeout": 0}, "call_timeout"),
        ({"failure_threshold": 5, "fail_max": 5}, "fail_max"),
    ],
)
def test_invalid_values_name_the_field(kwargs, field):
    with pytest.raises(ConfigError) as e:
        CircuitBreaker(**kwargs)
    assert isinstance(e.value, ValueError)
    assert e.value.field == field
    assert f"`{field}`" in str(e.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failure_threshold": "5"},
        {"failure_threshold": 5.0},
        {"failure_threshold": True},
        {"recovery_timeout": "60"},
        {"failure_rate_threshold": "0.5"},
        {"name": 3},
        {"expected_exception": 3},
        {"exclude": "ValueError"},
        {"fallback": 3},
        {"call_timeout": "1"},
        {"no_such_setting": 1},
    ],
)
def test_wrong_types_are_type_errors(kwargs):
    with pytest.raises(TypeError):
        CircuitBreaker(**kwargs)


def test_type_error_names_the_alias():
    with pytest.raises(TypeError, match="failure_threshold"):
        CircuitBreaker(failure_threshold="5")


def test_valid_settings_and_aliases_map_onto_the_core():
    b = CircuitBreaker(name="x", failure_threshold=5, recovery_timeout=60, success_threshold=2)
    c = b.config()
    assert c["consecutive_failures"] == 5
    assert c["open_wait"] == 60.0
    assert c["half_open_successes"] == 2
    # failure_threshold alone: five in a row, no failure-rate rule on top
    assert c["failure_rate_threshold"] is None
    d = CircuitBreaker().config()
    assert d["failure_rate_threshold"] == 0.5 and d["window_size"] == 100 and d["minimum_calls"] == 10
    # a small count window pulls the default minimum down with it (as the Rust builder)
    assert CircuitBreaker(window_size=5).config()["minimum_calls"] == 5
    t = CircuitBreaker(window_duration=datetime.timedelta(seconds=30), window_buckets=30).config()
    assert t["window_duration"] == 30.0 and t["window_buckets"] == 30
    e = CircuitBreaker(open_wait=1, open_wait_max=30, open_wait_multiplier=3).config()
    assert (e["open_wait"], e["open_wait_max"], e["open_wait_multiplier"]) == (1.0, 30.0, 3.0)


def test_registry_validates_too():
    with pytest.raises(ConfigError) as e:
        Registry(failure_threshold=0)
    assert e.value.field == "failure_threshold"
    r = Registry(failure_threshold=3)
    with pytest.raises(ConfigError) as e:
        r.configure("db", window_size=0)
    assert e.value.field == "window_size"
    with pytest.raises(ConfigError) as e:
        Registry(capacity_limit=0)
    assert e.value.field == "capacity_limit"
