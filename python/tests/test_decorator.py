"""The Python surface: decorator (sync, async, methods), call(), context managers, fallbacks,
events, registry."""

import asyncio
import gc

import pytest

from breakerbox_rs import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, CircuitBreakerError, Registry


class Down(Exception):
    pass


def test_sync_decorator_counts_and_reraises():
    b = CircuitBreaker(failure_threshold=3, expected_exception=Down)

    @b
    def call(ok=True):
        """doc"""
        if not ok:
            raise Down("x")
        return "ok"

    assert call.__name__ == "call" and call.__doc__ == "doc" and call.__wrapped__.__name__ == "call"
    import inspect

    assert list(inspect.signature(call).parameters) == ["ok"]
    assert call.breaker is b
    assert call() == "ok"
    assert call(ok=True) == "ok"
    for _ in range(3):
        with pytest.raises(Down):
            call(ok=False)
    assert b.state == OPEN
    with pytest.raises(CircuitBreakerError):
        call()
    m = b.metrics()
    assert (m["calls"], m["failures"], m["rejected"]) == (5, 3, 1)


def test_fallback_gets_the_arguments():
    b = CircuitBreaker(failure_threshold=1, fallback=lambda x, y=0: ("fallback", x, y))

    @b
    def call(x, y=0):
        raise Down()

    with pytest.raises(Down):
        call(1)
    assert call(2, y=3) == ("fallback", 2, 3)
    g = b.decorate(lambda: 1, fallback=lambda: "other")
    assert g() == "other"


def test_methods_are_bound():
    b = CircuitBreaker(failure_threshold=5)

    class Client:
        def __init__(self):
            self.n = 0

        @b
        def get(self, k):
            self.n += 1
            return (self, k)

    c = Client()
    assert c.get("a") == (c, "a") and c.n == 1
    assert Client.get(c, "b") == (c, "b")


def test_call_passes_arguments():
    b = CircuitBreaker()
    assert b.call(lambda a, b=2: a + b, 1, b=5) == 6
    assert b.metrics()["calls"] == 1


def test_context_managers():
    b = CircuitBreaker(failure_threshold=2)
    with b:
        pass
    with b.guard() as p:
        assert p.pending
    assert not p.pending
    with pytest.raises(Down):
        with b:
            raise Down()
    with pytest.raises(Down):
        with b.guard():
            raise Down()
    assert b.state == OPEN
    with pytest.raises(CircuitBreakerError):
        with b:
            pytest.fail("must not run")
    m = b.metrics()
    assert (m["calls"], m["failures"]) == (4, 2)


async def test_async_decorator_and_async_with():
    b = CircuitBreaker(failure_threshold=2)

    @b
    async def call(ok):
        await asyncio.sleep(0)
        if not ok:
            raise Down()
        return 7

    assert asyncio.iscoroutinefunction(call) and call.__name__ == "call" and call.breaker is b
    assert await call(True) == 7
    async with b:
        await asyncio.sleep(0)
    assert await b.call_async(call, True) == 7
    with pytest.raises(Down):
        await call(False)
    with pytest.raises(Down):
        await call(False)
    assert b.state == OPEN
    with pytest.raises(CircuitBreakerError):
        await call(True)


async def test_async_fallback_and_timeout():
    b = CircuitBreaker(failure_threshold=1, call_timeout=0.05, fallback=lambda: "fb")

    @b
    async def hang():
        await asyncio.sleep(10)

    with pytest.raises(asyncio.TimeoutError):
        await hang()
    assert b.state == OPEN and b.metrics()["failures"] == 1
    assert await hang() == "fb"

    async def afb():
        return "async fb"

    g = b.decorate(hang, fallback=afb)
    assert await g() == "async fb"


def test_call_timeout_refused_on_sync_functions():
    b = CircuitBreaker(call_timeout=1)
    with pytest.raises(TypeError):
        b(lambda: 1)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_events_reach_the_callback_and_callback_errors_do_not_escape():
    b = CircuitBreaker(name="ev", failure_threshold=1, open_wait=0)
    seen = []
    b.on_event(seen.append)
    b.on_event(lambda e: 1 / 0, kinds=["transition"])  # reported as unraisable, ignored
    with pytest.raises(Down):
        b.call(_raise, Down())
    assert b.state == OPEN
    b.call(lambda: 1)  # the trial
    kinds = [(e["kind"], e.get("to_state") or e.get("outcome")) for e in seen]
    # (the core reports a transition before the outcome that caused it)
    assert kinds == [
        ("transition", OPEN),
        ("recorded", "failure"),
        ("transition", HALF_OPEN),
        ("transition", CLOSED),
        ("recorded", "success"),
    ]
    assert all(e["breaker"] == "ev" for e in seen)
    assert b.metrics()["listener_panics"] == 0
    b.clear_listeners()
    b.call(lambda: 1)
    assert len(seen) == 5
    with pytest.raises(ValueError):
        b.on_event(print, kinds=["nope"])


def _raise(e):
    raise e


def test_registry_shares_breakers_and_reports_all():
    r = Registry(failure_threshold=2, expected_exception=Down)
    r.configure("db", failure_threshold=1)
    db = r.get("db")
    assert r.get("db") is db and r["db"] is db
    with pytest.raises(Down):
        db.call(_raise, Down())
    assert db.state == OPEN
    api = r.get("api")
    with pytest.raises(ValueError):
        api.call(_raise, ValueError())  # not expected: not a failure
    assert api.state == CLOSED
    assert sorted(r.names()) == ["api", "db"] and len(r) == 2
    states = {m["name"]: m["state"] for m in r.metrics()}
    assert states == {"db": OPEN, "api": CLOSED}
    assert 'breakerbox_state{breaker="db",state="open"} 1' in r.prometheus()
    events = []
    r.on_event(events.append, kinds=["transition"])
    r.get("late").force_open()
    assert [e["breaker"] for e in events] == ["late"]


def test_registry_capacity_overflow():
    r = Registry(capacity_limit=1)
    a = r.get("a")
    o = r.get("b")
    assert a.name == "a" and o.name != "b"
    assert len(r) == 1


def test_permit_collected_unreported_records_nothing():
    b = CircuitBreaker(failure_threshold=1)
    b.acquire()
    gc.collect()
    assert b.metrics()["calls"] == 0 and b.metrics()["ignored"] == 1


async def test_async_with_in_interleaved_tasks_reports_each_tasks_own_permit():
    b = CircuitBreaker(failure_threshold=2)
    a_in, b_in = asyncio.Event(), asyncio.Event()

    async def first():
        with pytest.raises(Down):
            async with b:
                a_in.set()
                await b_in.wait()
                raise Down()

    async def second():
        await a_in.wait()
        async with b:
            b_in.set()
            await asyncio.sleep(0)

    await asyncio.gather(first(), second())
    m = b.metrics()
    assert (m["calls"], m["failures"]) == (2, 1)
