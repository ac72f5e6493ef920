"""The drop-in modules keep the peers' semantics (their own suites run in .ci/python.sh via
tests/peers/run_peers.py; these are the rules users most depend on)."""

import pytest

import breakerbox_rs.circuitbreaker as circuitbreaker
import breakerbox_rs.pybreaker as pybreaker


def test_pybreaker_excluded_exception_counts_as_success():
    b = pybreaker.CircuitBreaker(fail_max=2, exclude=[KeyError])
    with pytest.raises(ValueError):
        b.call(lambda: (_ for _ in ()).throw(ValueError()))
    assert b.fail_counter == 1
    with pytest.raises(KeyError):
        b.call(lambda: {}["x"])
    assert b.fail_counter == 0  # a success resets the consecutive count


def test_pybreaker_predicate_in_exclude_and_changes_at_run_time():
    b = pybreaker.CircuitBreaker(exclude=[lambda e: isinstance(e, ValueError) and e.args == ("ok",)])

    def boom(arg):
        raise ValueError(arg)

    with pytest.raises(ValueError):
        b.call(boom, "ok")
    assert b.fail_counter == 0
    b.add_excluded_exception(ValueError)
    with pytest.raises(ValueError):
        b.call(boom, "bad")
    assert b.fail_counter == 0
    b.remove_excluded_exception(ValueError)
    with pytest.raises(ValueError):
        b.call(boom, "bad")
    assert b.fail_counter == 1


def test_pybreaker_the_tripping_call_raises_circuit_breaker_error():
    b = pybreaker.CircuitBreaker(fail_max=2, name="svc")

    def fail():
        raise OSError("down")

    with pytest.raises(OSError):
        b.call(fail)
    with pytest.raises(pybreaker.CircuitBreakerError):
        b.call(fail)
    assert b.current_state == "open"
    assert b.metrics()["times_opened"] == 1  # the core's metrics


def test_pybreaker_throw_new_error_on_trip_false_reraises():
    b = pybreaker.CircuitBreaker(fail_max=1, throw_new_error_on_trip=False)
    with pytest.raises(OSError):
        b.call(lambda: (_ for _ in ()).throw(OSError()))
    assert b.current_state == "open"


def test_pybreaker_bad_settings_name_the_argument():
    with pytest.raises(ValueError, match=r"`fail_max`: -1 is outside 1 \.\.= 4294967295"):
        pybreaker.CircuitBreaker(fail_max=-1)
    with pytest.raises(ValueError, match=r"`reset_timeout`.*over the limit"):
        pybreaker.CircuitBreaker(reset_timeout=1e20)
    with pytest.raises(TypeError, match=r"`exclude`"):
        pybreaker.CircuitBreaker(exclude=[int])


def test_pybreaker_guards_generator_functions():
    b = pybreaker.CircuitBreaker(fail_max=5)

    @b
    def gen():
        yield 1
        raise OSError("mid-stream")

    it = gen()
    assert next(it) == 1
    with pytest.raises(OSError):
        next(it)
    assert b.fail_counter == 1


def test_circuitbreaker_two_argument_predicate_gets_type_and_value():
    seen = []

    def is_failure(exc_type, exc):
        seen.append((exc_type, exc))
        return exc.args == ("bad",)

    cb = circuitbreaker.CircuitBreaker(failure_threshold=1, expected_exception=is_failure)

    def boom(arg):
        raise ValueError(arg)

    with pytest.raises(ValueError):
        cb.call(boom, "fine")
    assert cb.closed and seen[0][0] is ValueError
    with pytest.raises(ValueError):
        cb.call(boom, "bad")
    assert cb.opened


def test_circuitbreaker_generator_failure_while_iterating_counts():
    cb = circuitbreaker.CircuitBreaker(failure_threshold=1, name="gen")

    @cb
    def gen():
        yield 1
        raise OSError("mid-stream")

    with pytest.raises(OSError):
        list(gen())
    assert cb.opened
    with pytest.raises(circuitbreaker.CircuitBreakerError):
        list(gen())


def test_circuitbreaker_bad_expected_exception_is_a_type_error():
    with pytest.raises(TypeError, match="expected_exception"):
        circuitbreaker.CircuitBreaker(expected_exception=[int])


async def test_aiobreaker_async_calls_and_trip():
    from datetime import timedelta

    import breakerbox_rs.aiobreaker as aiobreaker

    b = aiobreaker.CircuitBreaker(fail_max=2, timeout_duration=timedelta(seconds=30))

    @b
    async def fail():
        raise OSError("down")

    with pytest.raises(OSError):
        await fail()
    with pytest.raises(aiobreaker.CircuitBreakerError) as e:
        await fail()  # the tripping call
    assert isinstance(e.value.__cause__, OSError)
    assert b.current_state == aiobreaker.CircuitBreakerState.OPEN
    assert b.time_until_open is not None


def test_aiobreaker_timeout_duration_must_be_a_timedelta():
    import breakerbox_rs.aiobreaker as aiobreaker

    with pytest.raises(TypeError, match="`timeout_duration` must be a datetime.timedelta"):
        aiobreaker.CircuitBreaker(timeout_duration=5)


def test_breakerbox_decorator_guards_generator_functions():
    from breakerbox_rs import CircuitBreaker, CircuitBreakerError

    b = CircuitBreaker(failure_threshold=1, recovery_timeout=60)

    @b
    def gen(fail):
        yield 1
        if fail:
            raise OSError("mid-stream")
        yield 2

    assert list(gen(False)) == [1, 2]
    assert b.metrics()["successes"] == 1
    it = gen(True)
    assert next(it) == 1
    with pytest.raises(OSError):
        next(it)
    assert b.state == "open"
    with pytest.raises(CircuitBreakerError):
        next(gen(False))


def test_breakerbox_generator_closed_early_records_nothing():
    from breakerbox_rs import CircuitBreaker

    b = CircuitBreaker(failure_threshold=1)

    @b
    def gen():
        yield 1
        yield 2

    it = gen()
    next(it)
    it.close()
    m = b.metrics()
    assert (m["successes"], m["failures"]) == (0, 0)


async def test_breakerbox_decorator_guards_async_generator_functions():
    from breakerbox_rs import CircuitBreaker, CircuitBreakerError

    b = CircuitBreaker(failure_threshold=1)

    @b
    async def agen():
        yield 1
        raise OSError("mid-stream")

    with pytest.raises(OSError):
        async for _ in agen():
            pass
    assert b.state == "open"
    with pytest.raises(CircuitBreakerError):
        async for _ in agen():
            pass
