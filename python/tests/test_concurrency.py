"""Threads racing half-open (never more trials in flight than the cap), and asyncio
cancellation giving half-open permits back."""

import asyncio
import random
import threading
import time

import pytest

from breakerbox_rs import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, CircuitBreakerError

THREADS = 16
CAP = 3


def test_threads_racing_half_open_never_exceed_the_cap():
    # open_wait 0: every failed trial re-opens and the next caller half-opens again, so the
    # threads race through many half-open generations. Trials of one generation in flight at
    # once are counted under a lock; there must never be more than the cap.
    b = CircuitBreaker(failure_threshold=1, open_wait=0, half_open_permits=CAP, half_open_successes=60000)
    b.acquire().failure()
    lock = threading.Lock()
    inflight = {}  # generation -> trials in flight
    peak = [0]
    admitted = [0]
    barrier = threading.Barrier(THREADS)
    errors = []

    def worker(seed):
        rng = random.Random(seed)
        try:
            barrier.wait()
            for _ in range(200):
                p = b.try_acquire()
                if p is None:
                    time.sleep(0)
                    continue
                assert p.is_trial, "the breaker never closes in this test"
                g = p.generation
                with lock:
                    inflight[g] = inflight.get(g, 0) + 1
                    peak[0] = max(peak[0], inflight[g])
                    admitted[0] += 1
                time.sleep(rng.random() * 0.0005)  # lets the other threads race
                with lock:
                    inflight[g] -= 1
                r = rng.random()
                if r < 0.2:
                    p.failure()  # re-opens: a new generation
                elif r < 0.4:
                    p.ignore()  # gives the slot back
                else:
                    p.success()
                m = b.metrics()
                assert m["half_open_in_flight"] <= CAP
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    print(f"peak {peak[0]}, trials {admitted[0]}, generations {len(inflight)}")
    assert 1 <= peak[0] <= CAP
    assert admitted[0] > 0


def test_threads_racing_the_decorator_in_half_open():
    b = CircuitBreaker(failure_threshold=1, open_wait=0, half_open_permits=CAP, half_open_successes=60000)
    b.acquire().failure()
    lock = threading.Lock()
    state = {"now": 0, "peak": 0, "ran": 0}
    barrier = threading.Barrier(THREADS)

    @b
    def trial():
        with lock:
            state["now"] += 1
            state["ran"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.0002)
        with lock:
            state["now"] -= 1

    def worker():
        barrier.wait()
        for _ in range(100):
            try:
                trial()
            except CircuitBreakerError:
                pass

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert b.state == HALF_OPEN
    assert 1 <= state["peak"] <= CAP
    m = b.metrics()
    assert m["half_open_in_flight"] == 0
    assert m["rejected"] + state["ran"] == THREADS * 100


async def test_cancelled_task_gives_its_half_open_permit_back():
    b = CircuitBreaker(failure_threshold=1, open_wait=0, half_open_permits=1)
    b.acquire().failure()
    started = asyncio.Event()

    @b
    async def trial():
        started.set()
        await asyncio.Event().wait()  # never set

    task = asyncio.ensure_future(trial())
    await started.wait()
    assert b.state == HALF_OPEN and b.metrics()["half_open_in_flight"] == 1
    with pytest.raises(CircuitBreakerError):
        await trial()  # the only slot is held
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    m = b.metrics()
    assert m["half_open_in_flight"] == 0, "the cancelled task gave its slot back"
    assert m["failures"] == 1 and b.state == HALF_OPEN

    @b
    async def ok():
        return 1

    assert await ok() == 1
    assert b.state == CLOSED


async def test_cancellation_via_async_with_and_call_async():
    b = CircuitBreaker(failure_threshold=1, open_wait=0, half_open_permits=1)
    b.acquire().failure()
    started = asyncio.Event()

    async def hold():
        async with b:
            started.set()
            await asyncio.Event().wait()

    for coro in (hold, lambda: b.call_async(_hang, started)):
        started.clear()
        task = asyncio.ensure_future(coro())
        await started.wait()
        assert b.metrics()["half_open_in_flight"] == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert b.metrics()["half_open_in_flight"] == 0
    assert b.state == HALF_OPEN


async def _hang(started):
    started.set()
    await asyncio.Event().wait()


async def test_many_cancelled_tasks_in_half_open():
    b = CircuitBreaker(failure_threshold=1, open_wait=0, half_open_permits=CAP, half_open_successes=60000)
    b.acquire().failure()
    running = [0]
    peak = [0]

    @b
    async def trial():
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        try:
            await asyncio.sleep(3600)
        finally:
            running[0] -= 1

    tasks = [asyncio.ensure_future(trial()) for _ in range(50)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    admitted = [t for t in tasks if not t.done()]
    assert len(admitted) == CAP and peak[0] == CAP
    for t in admitted:
        t.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(isinstance(r, CircuitBreakerError) for r in results) == 50 - CAP
    assert sum(isinstance(r, asyncio.CancelledError) for r in results) == CAP
    assert b.metrics()["half_open_in_flight"] == 0
    assert b.state == HALF_OPEN


def test_threads_getting_one_new_name_share_one_breaker():
    from breakerbox_rs import Registry

    r = Registry(failure_threshold=1)
    barrier = threading.Barrier(THREADS)
    got = []

    def worker():
        barrier.wait()
        got.append(r.get("shared"))

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == THREADS and all(b is got[0] for b in got)
    assert r.names() == ["shared"]
    got[0].acquire().failure()
    assert r.get("shared").state == OPEN


def test_event_loops_in_threads_share_a_breaker_through_the_native_awaitable():
    """Four threads, each with its own event loop, drive guarded calls through one half-open
    breaker: some succeed, some fail, some are cancelled while suspended, some are closed
    unfinished. Every permit comes back and nothing but the expected exceptions escapes."""
    import random

    b = CircuitBreaker(
        failure_threshold=1_000_000, open_wait=0, half_open_permits=CAP, half_open_successes=60000
    )
    b.transition_to_half_open()
    errors = []

    class Down(Exception):
        pass

    @b
    async def call(kind):
        await asyncio.sleep(0)
        if kind == "fail":
            raise Down()
        if kind == "hang":
            await asyncio.sleep(3600)
        return kind

    async def one_loop(seed):
        rng = random.Random(seed)
        for _ in range(40):
            kinds = [rng.choice(["ok", "fail", "hang"]) for _ in range(8)]
            tasks = [asyncio.ensure_future(call(k)) for k in kinds]
            await asyncio.sleep(0)
            for t, k in zip(tasks, kinds):
                if k == "hang" or rng.random() < 0.2:
                    t.cancel()
            for r in await asyncio.gather(*tasks, return_exceptions=True):
                if not isinstance(r, (str, Down, CircuitBreakerError, asyncio.CancelledError)):
                    errors.append(r)
            c = call("hang")  # stepped once, then closed unfinished
            try:
                c.send(None)
            except CircuitBreakerError:
                pass
            c.close()

    def run(seed):
        try:
            asyncio.run(one_loop(seed))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert b.metrics()["half_open_in_flight"] == 0
    assert b.state in (HALF_OPEN, OPEN)  # (a failed trial re-opens; open_wait=0)
