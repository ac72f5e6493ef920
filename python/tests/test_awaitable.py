"""The native awaitable behind ``@breaker`` on ``async def`` functions (``GuardedCall``): it
drives the function's coroutine with ``send``/``throw`` and records the outcome when it ends.
"""

import asyncio
import gc
import inspect
import types

import pytest

from breakerbox_rs import HALF_OPEN, OPEN, CircuitBreaker, CircuitBreakerError


class Down(Exception):
    pass


class NotMine(Exception):
    pass


def counts(b):
    m = b.metrics()
    return m["successes"], m["failures"], m["ignored"], m["half_open_in_flight"]


def half_open(**kw):
    b = CircuitBreaker(failure_threshold=1, half_open_permits=1, **kw)
    b.transition_to_half_open()
    assert b.state == HALF_OPEN
    return b


async def test_success_returns_the_value():
    b = CircuitBreaker()

    @b
    async def f(x, *, y=0):
        await asyncio.sleep(0)
        return x + y

    @b
    async def none():
        return None

    @b
    async def tup():
        return (1, 2)

    @b
    async def exc_value():
        return Down("as a value")

    assert await f(1, y=2) == 3
    assert await none() is None
    assert await tup() == (1, 2)  # a tuple is the value, not StopIteration's arguments
    v = await exc_value()
    assert isinstance(v, Down) and str(v) == "as a value"
    assert counts(b) == (4, 0, 0, 0)


async def test_failure_is_recorded_and_reraised():
    b = CircuitBreaker(failure_threshold=2)

    @b
    async def f():
        await asyncio.sleep(0)
        raise Down("x")

    for _ in range(2):
        with pytest.raises(Down):
            await f()
    assert b.state == OPEN
    assert counts(b)[:2] == (0, 2)
    # Rejected at the await, not at the call: creating the awaitable raises nothing.
    c = f()
    with pytest.raises(CircuitBreakerError):
        await c


async def test_ignored_and_unexpected_exceptions():
    b = CircuitBreaker(failure_threshold=1, expected_exception=Down, exclude=NotMine)

    @b
    async def f(exc):
        raise exc

    with pytest.raises(NotMine):
        await f(NotMine())
    with pytest.raises(KeyError):  # not expected: the dependency answered
        await f(KeyError())
    assert counts(b) == (1, 0, 1, 0)
    assert b.state == "closed"


async def test_cancellation_releases_the_half_open_trial_permit():
    b = half_open()
    started = asyncio.Event()

    @b
    async def hang():
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.ensure_future(hang())
    await started.wait()
    assert counts(b)[3] == 1  # the only trial permit is taken
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert counts(b) == (0, 0, 1, 0)
    assert b.state == HALF_OPEN

    @b
    async def ok():
        return 1

    assert await ok() == 1  # the permit came back: a trial is admitted
    assert b.state == "closed"


async def test_create_task_and_gather_take_it_as_a_coroutine():
    b = CircuitBreaker()

    @b
    async def f(x):
        await asyncio.sleep(0)
        return x

    c = f(1)
    assert asyncio.iscoroutine(c) and inspect.isawaitable(c)
    c.close()
    assert await asyncio.create_task(f(2)) == 2
    assert await asyncio.gather(f(3), f(4)) == [3, 4]
    assert await asyncio.wait_for(f(5), 10) == 5
    gc.collect()


def test_throw_into_it():
    b = CircuitBreaker(failure_threshold=5)

    @types.coroutine
    def suspend():
        return (yield "suspended")

    @b
    async def f(catch):
        try:
            return await suspend()
        except Down:
            if catch:
                return "caught"
            raise

    # Not started: raised at once, nothing taken, nothing recorded.
    c = f(False)
    with pytest.raises(Down):
        c.throw(Down("early"))
    assert counts(b) == (0, 0, 0, 0)
    with pytest.raises(RuntimeError, match="cannot reuse"):
        c.send(None)

    # Suspended, not caught: a failure.
    c = f(False)
    assert c.send(None) == "suspended"
    with pytest.raises(Down):
        c.throw(Down("late"))
    assert counts(b)[:2] == (0, 1)

    # Suspended, caught and returned: a success, returned by StopIteration.
    c = f(True)
    assert c.send(None) == "suspended"
    with pytest.raises(StopIteration) as stop:
        c.throw(Down)
    assert stop.value.value == "caught"
    assert counts(b)[:2] == (1, 1)

    # send() carries values in; the return ends with StopIteration(value).
    c = f(False)
    assert c.send(None) == "suspended"
    with pytest.raises(StopIteration) as stop:
        c.send(42)
    assert stop.value.value == 42
    assert counts(b)[:2] == (2, 1)

    # A value sent into a call that has not started is refused, as a coroutine does.
    c = f(False)
    with pytest.raises(TypeError, match="non-None"):
        c.send(1)
    c.close()


async def test_awaiting_twice_is_an_error():
    b = CircuitBreaker()

    @b
    async def f():
        return 1

    c = f()
    assert await c == 1
    with pytest.raises(RuntimeError, match="cannot reuse already awaited coroutine"):
        await c
    assert counts(b)[0] == 1

    @b
    async def bad():
        raise Down()

    c = bad()
    with pytest.raises(Down):
        await c
    with pytest.raises(RuntimeError, match="cannot reuse"):
        await c


def test_close_and_collection_give_the_permit_back():
    b = half_open()

    @types.coroutine
    def suspend():
        yield

    @b
    async def f():
        await suspend()
        return 1

    c = f()
    c.send(None)
    assert counts(b)[3] == 1
    c.close()
    assert counts(b) == (0, 0, 1, 0)  # given back, as an ignored call
    with pytest.raises(RuntimeError, match="cannot reuse"):
        c.send(None)

    c = f()
    c.send(None)
    assert counts(b)[3] == 1
    del c
    gc.collect()
    assert counts(b) == (0, 0, 2, 0)
    assert b.state == HALF_OPEN

    c = f()  # never started: nothing was taken
    del c
    assert counts(b) == (0, 0, 2, 0)


async def test_fallbacks():
    b = CircuitBreaker(failure_threshold=1)
    b.force_open()

    @b.decorate
    async def f(x):
        return x

    async def afb(x):
        await asyncio.sleep(0)
        return ("async fallback", x)

    g = b.decorate(f.__wrapped__, fallback=lambda x: ("fallback", x))
    h = b.decorate(f.__wrapped__, fallback=afb)
    assert await g(1) == ("fallback", 1)
    assert await h(2) == ("async fallback", 2)
    assert await b.decorate(f.__wrapped__, fallback=lambda x: None)(3) is None
    with pytest.raises(CircuitBreakerError):
        await f(4)


async def test_looks_like_an_async_def_function():
    b = CircuitBreaker()

    async def original(a, b=2, *, c=3) -> int:
        """Doc."""
        return a + b + c

    g = b(original)
    assert inspect.iscoroutinefunction(g) and asyncio.iscoroutinefunction(g)
    assert g.__name__ == "original" and g.__doc__ == "Doc." and g.__wrapped__ is original
    assert str(inspect.signature(g)) == str(inspect.signature(original))
    assert g.breaker is b

    class Client:
        @b
        async def get(self, x):
            return (self, x)

    cl = Client()
    assert await cl.get(1) == (cl, 1)
    assert inspect.iscoroutinefunction(cl.get)

    # A coroutine function that is not a function (a partial): asyncio still sees it.
    import functools

    p = b(functools.partial(original, 1))
    assert asyncio.iscoroutinefunction(p)
    assert await p(c=0) == 3


async def test_a_non_awaitable_result_is_a_failure():
    b = CircuitBreaker(failure_threshold=1)

    async def original():
        return 1

    def not_async():
        return 1

    g = b(original)
    g2 = b._core.wrap_async(not_async)  # (the awaitable awaits whatever the function returns)
    with pytest.raises(TypeError, match="can't be used in 'await' expression"):
        await g2()
    assert b.state == OPEN
    with pytest.raises(CircuitBreakerError):
        await g()


async def test_user_code_raising_leaves_the_breaker_usable():
    b = half_open()

    def broken_fallback(*a):
        raise ValueError("fallback broke")

    b2 = CircuitBreaker(failure_threshold=1, fallback=broken_fallback)
    b2.force_open()

    @b2
    async def f():
        return 1

    with pytest.raises(ValueError, match="fallback broke"):
        await f()
    b2.reset()
    assert await f() == 1

    @b
    async def ok():
        return 2

    assert await ok() == 2 and b.state == "closed"


def drive_with_next(c):
    """Steps it as ``await`` does on Python 3.9 (``__next__`` while the value sent is None)."""
    yielded = []
    try:
        while True:
            yielded.append(next(c))
    except StopIteration as stop:
        return yielded, stop.value


def test_stepped_with_next_as_on_python_3_9():
    b = CircuitBreaker(failure_threshold=5)

    @types.coroutine
    def suspend():
        yield "y"

    @b
    async def f(v):
        await suspend()
        return v

    assert drive_with_next(f(None)) == (["y"], None)
    assert drive_with_next(f(5)) == (["y"], 5)
    assert drive_with_next(f((1, 2))) == (["y"], (1, 2))
    assert counts(b)[0] == 3

    @b
    async def bad():
        await suspend()
        raise Down()

    with pytest.raises(Down):
        drive_with_next(bad())
    assert counts(b)[:2] == (3, 1)
    b.force_open()
    with pytest.raises(CircuitBreakerError):
        next(f(1))


async def test_awaitables_that_are_not_coroutines():
    b = CircuitBreaker(failure_threshold=5)

    class Plain:
        """An awaitable whose iterator has no send()."""

        def __init__(self, value):
            self.value = value

        def __await__(self):
            return iter(())  # returns None at once: the value is not carried

    def returns_future(v):
        fut = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(fut.set_result, v)
        return fut

    def returns_plain(v):
        return Plain(v)

    # (Functions returning awaitables, guarded through the native call directly.)
    fut_g = b._core.wrap_async(returns_future)
    plain_g = b._core.wrap_async(returns_plain)
    assert await fut_g(7) == 7  # a Future's iterator: driven with send()
    assert await plain_g(8) is None  # a plain iterator: driven with __next__
    assert counts(b)[0] == 2


def test_a_cycle_through_a_suspended_call_is_collected():
    import weakref

    b = half_open()

    @types.coroutine
    def suspend():
        yield

    class Holder:
        pass

    @b
    async def f(h):
        await suspend()

    h = Holder()
    c = f(h)
    h.call = c  # c -> its arguments -> h -> c
    c.send(None)  # and c -> the coroutine -> its frame -> h -> c
    assert counts(b)[3] == 1
    ref = weakref.ref(h)
    del c, h
    gc.collect()
    assert ref() is None
    assert counts(b)[3] == 0  # the permit was given back
    assert b.state == HALF_OPEN
