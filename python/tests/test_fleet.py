"""Fleet mode against a real redis-server (or the binary BREAKERBOX_REDIS_SERVER names, such as
valkey-server), started here on 127.0.0.1 (a free port) and killed by its PID. Without a
redis-server binary these tests skip, unless BREAKERBOX_REQUIRE_REDIS is set (then they fail).

The breakers run on manual clocks; the sync tasks on real time, so the tests wait for
convergence with a generous bound (never a fixed sleep)."""

import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from breakerbox_rs import CircuitBreaker, ConfigError, Fleet, FleetSync, ManualClock, Registry, RegistrySync

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "examples", "fleet.py")
BOUND = 15.0  # seconds: a generous bound on any convergence


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _need_redis() -> str:
    # BREAKERBOX_REDIS_SERVER: another server binary (valkey-server), as for the Rust tests.
    exe = os.environ.get("BREAKERBOX_REDIS_SERVER") or shutil.which("redis-server")
    if exe is None:
        if os.environ.get("BREAKERBOX_REQUIRE_REDIS"):
            pytest.fail("BREAKERBOX_REQUIRE_REDIS is set but there is no redis-server")
        pytest.skip("no redis-server on PATH (install redis-server to run this test)")
    return exe


@pytest.fixture
def redis_url():
    exe = _need_redis()
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start in 10 s"
                assert proc.poll() is None, "redis-server exited"
                time.sleep(0.01)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.kill()  # by its PID
        proc.wait()


def until(what, cond, bound=BOUND):
    start = time.monotonic()
    while not cond():
        assert time.monotonic() - start < bound, f"not within {bound} s: {what}"
        time.sleep(0.002)
    return time.monotonic() - start


class Events:
    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def __call__(self, e):
        with self.lock:
            self.items.append(e)

    def saw(self, **fields):
        with self.lock:
            return any(all(e.get(k) == v for k, v in fields.items()) for e in self.items)


def test_two_breakers_of_one_name_agree_on_a_trip_and_a_close(redis_url):
    clock = ManualClock()
    ev_a, ev_b = Events(), Events()
    a = CircuitBreaker(name="payments", failure_threshold=1, recovery_timeout=30, clock=clock)
    b = CircuitBreaker(name="payments", failure_threshold=1, recovery_timeout=30, clock=clock)
    sync_a = Fleet(redis_url, prefix="agree", instance="a", sync_interval=0.02, on_event=ev_a).attach(a)
    sync_b = Fleet(redis_url, prefix="agree", instance="b", sync_interval=0.02, on_event=ev_b).attach(b)
    assert isinstance(sync_a, FleetSync) and sync_a.running
    until("both connected", lambda: ev_a.saw(kind="connected") and ev_b.saw(kind="connected"))

    with pytest.raises(RuntimeError):
        a.call(lambda: (_ for _ in ()).throw(RuntimeError("down")))
    assert a.state == "open"
    took = until("b opens", lambda: b.state == "open")
    print(f"trip on a -> OPEN on b in {took * 1000:.1f} ms")
    until("b's applied event", lambda: ev_b.saw(kind="applied", state="open", from_instance="a", breaker="payments"))
    assert ev_a.saw(kind="published", state="open")
    assert not b.would_admit()

    # a's wait ends (manual clock); its callers ask for a trial, its task takes the fleet's
    # trial lease, the trial succeeds: a closes, and so does b.
    clock.advance(30)
    start = time.monotonic()
    while True:
        assert time.monotonic() - start < BOUND, "a never got a trial"
        p = a.try_acquire()
        if p is not None:
            assert p.is_trial
            p.success()
            break
        time.sleep(0.002)
    assert a.state == "closed"
    until("b closes", lambda: b.state == "closed")
    assert ev_a.saw(kind="trial_lease", held=True)

    sync_a.stop()
    sync_b.stop()
    until("stopped", lambda: not sync_a.running and not sync_b.running)
    sync_a.stop()  # twice: nothing


PEER = r"""
import sys, threading
from breakerbox_rs import CircuitBreaker, Fleet

url = sys.argv[1]
published = threading.Event()
b = CircuitBreaker(name="orders", failure_threshold=1, recovery_timeout=30)
sync = Fleet(url, prefix="procs", instance="peer", sync_interval=0.02,
             on_event=lambda e: e["kind"] == "published" and published.set()).attach(b)
try:
    b.call(lambda: 1 / 0)
except ZeroDivisionError:
    pass
assert published.wait(30), "never published"
print("peer tripped and published")
"""


def test_a_trip_in_another_process_opens_this_one(redis_url, tmp_path):
    ev = Events()
    b = CircuitBreaker(name="orders", failure_threshold=1, recovery_timeout=30)
    with Fleet(redis_url, prefix="procs", instance="here", sync_interval=0.02, on_event=ev).attach(b):
        until("connected", lambda: ev.saw(kind="connected"))
        r = subprocess.run(
            [sys.executable, "-c", PEER, redis_url], capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        assert r.returncode == 0, r.stdout + r.stderr
        until("this process opens", lambda: b.state == "open")
        assert ev.saw(kind="applied", from_instance="peer", state="open")


def test_the_fleet_window_trips_every_instance(redis_url):
    clock = ManualClock()
    settings = dict(failure_rate_threshold=0.5, window_size=20, minimum_calls=10, clock=clock)
    breakers = [CircuitBreaker(name="upstream", **settings) for _ in range(3)]
    events = [Events() for _ in breakers]
    syncs = [
        Fleet(redis_url, prefix="agg", instance=f"i{n}", sync_interval=0.02, aggregate=True, on_event=ev).attach(br)
        for n, (br, ev) in enumerate(zip(breakers, events))
    ]
    until("connected", lambda: all(ev.saw(kind="connected") for ev in events))
    for br in breakers:
        for _ in range(4):
            p = br.acquire()
            p.failure()
        assert br.state == "closed"  # 4 calls: below the local minimum
    until("every instance opens", lambda: all(br.state == "open" for br in breakers))
    assert any(ev.saw(kind="fleet_trip", instances=3) for ev in events)
    for s in syncs:
        s.stop()


def test_redis_down_leaves_the_breaker_local(redis_url):
    ev = Events()
    port = _free_port()  # nothing listens there
    b = CircuitBreaker(name="alone", failure_threshold=1)
    with Fleet(f"redis://127.0.0.1:{port}", sync_interval=0.01, timeout=0.2, on_event=ev).attach(b):
        until("unavailable", lambda: ev.saw(kind="unavailable"))
        assert b.call(lambda: 7) == 7


def test_a_callback_that_raises_changes_nothing(redis_url):
    def boom(e):
        raise ValueError("callback bug")

    b = CircuitBreaker(name="cb", failure_threshold=1)
    other = CircuitBreaker(name="cb")  # kept: a sync ends with its breaker
    seen = Events()
    hooks = []
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: hooks.append(u)
    try:
        with Fleet(redis_url, prefix="cb", sync_interval=0.01, on_event=boom).attach(b):
            with Fleet(redis_url, prefix="cb", sync_interval=0.01, on_event=seen).attach(other):
                until("reported", lambda: len(hooks) > 0)
                until("the other sync runs", lambda: seen.saw(kind="connected"))
    finally:
        sys.unraisablehook = old
    assert isinstance(hooks[0].exc_value, ValueError)


def test_a_registry_synced_as_a_whole_includes_breakers_created_later(redis_url):
    clock = ManualClock()
    regs = [Registry(failure_threshold=1, recovery_timeout=30, clock=clock) for _ in range(2)]
    events = [Events(), Events()]
    early = [r.get("early") for r in regs]  # exists before the attach
    syncs = [
        Fleet(redis_url, prefix="whole", instance=f"i{n}", sync_interval=0.02, on_event=ev).attach_registry(r)
        for n, (r, ev) in enumerate(zip(regs, events))
    ]
    assert isinstance(syncs[0], RegistrySync)
    late = [r.get("late") for r in regs]  # created after it: synced as it is created
    assert [s.attached for s in syncs] == [2, 2]
    until(
        "every breaker connected",
        lambda: all(ev.saw(kind="connected", breaker=n) for ev in events for n in ("early", "late")),
    )

    with pytest.raises(ZeroDivisionError):
        early[0].call(lambda: 1 / 0)
    until("early opens on the other instance", lambda: early[1].state == "open")
    with pytest.raises(ZeroDivisionError):
        late[1].call(lambda: 1 / 0)
    until("late opens on the other instance", lambda: late[0].state == "open")
    assert events[0].saw(kind="applied", breaker="late", state="open", from_instance="i1")

    with syncs[0]:
        pass  # leaving the block stops it
    assert syncs[0].running == 0 and syncs[0].attached == 0
    regs[0].get("after")
    assert syncs[0].attached == 0  # not synced any more
    syncs[1].stop()
    with pytest.raises(TypeError):
        Fleet(redis_url).attach_registry(object())


def test_a_registry_breaker_that_cannot_be_attached_is_reported(redis_url):
    ev = Events()
    reg = Registry(failure_threshold=1)  # no rate rule: cannot join a fleet window
    with Fleet(redis_url, prefix="na", aggregate=True, on_event=ev).attach_registry(reg) as sync:
        reg.get("plain")
        until("reported", lambda: ev.saw(kind="not_attached", breaker="plain"))
        assert sync.attached == 0
        assert "rate rule" in next(e["error"] for e in ev.items if e["kind"] == "not_attached")
        assert reg.get("plain").call(lambda: 5) == 5  # runs alone


def _pybreaker():
    from breakerbox_rs import pybreaker

    return pybreaker.CircuitBreaker(fail_max=1, reset_timeout=30, name="dropin"), lambda b: b.current_state


def _circuitbreaker():
    from breakerbox_rs import circuitbreaker

    return circuitbreaker.CircuitBreaker(failure_threshold=1, recovery_timeout=30, name="dropin"), lambda b: b.state


def _aiobreaker():
    import datetime

    from breakerbox_rs import aiobreaker

    b = aiobreaker.CircuitBreaker(fail_max=1, timeout_duration=datetime.timedelta(seconds=30), name="dropin")
    return b, lambda b: b.current_state.name.lower()


@pytest.mark.parametrize("make", [_pybreaker, _circuitbreaker, _aiobreaker], ids=["pybreaker", "circuitbreaker", "aiobreaker"])
def test_the_drop_in_breakers_share_state_through_fleet_mode(redis_url, make):
    # What the peers' Redis storage gives (state shared by processes), through fleet mode.
    (a, state), (b, _) = make(), make()
    events = [Events(), Events()]
    syncs = [
        Fleet(redis_url, prefix=f"dropin-{make.__name__}", instance=i, sync_interval=0.02, on_event=ev).attach(br)
        for i, br, ev in (("a", a, events[0]), ("b", b, events[1]))
    ]
    until("connected", lambda: all(ev.saw(kind="connected") for ev in events))
    with pytest.raises(Exception):
        a.call(lambda: 1 / 0)
    assert state(a) == "open"
    until("the other instance opens", lambda: state(b) == "open")
    for s in syncs:
        s.stop()


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(url="not a url"), "url"),
        (dict(url="redis://127.0.0.1:1", prefix=""), "prefix"),
        (dict(url="redis://127.0.0.1:1", prefix="a{b"), "prefix"),
        (dict(url="redis://127.0.0.1:1", instance="a|b"), "instance"),
        (dict(url="redis://127.0.0.1:1", sync_interval=0), "sync_interval"),
        (dict(url="redis://127.0.0.1:1", sync_interval=61), "sync_interval"),
        (dict(url="redis://127.0.0.1:1", sync_interval=-1), "sync_interval"),
        (dict(url="redis://127.0.0.1:1", timeout=0), "timeout"),
        (dict(url="redis://127.0.0.1:1", fleet_trials=0), "fleet_trials"),
        (dict(url="redis://127.0.0.1:1", fleet_trials=-1), "fleet_trials"),
        (dict(url="redis://127.0.0.1:1", fleet_trials=2**40), "fleet_trials"),
        (dict(url="redis://127.0.0.1:1", lease_ttl=0.05), "lease_ttl"),
        (dict(url="redis://127.0.0.1:1", lease_ttl=3601), "lease_ttl"),
        (dict(nodes=[]), "nodes"),
        (dict(nodes=["redis://127.0.0.1:1", "not a url"]), "nodes"),
    ],
)
def test_bad_settings_are_config_errors_naming_the_argument(kwargs, field):
    with pytest.raises(ConfigError) as e:
        Fleet(**kwargs)
    assert e.value.field == field
    assert f"`{field}`" in str(e.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(url="redis://127.0.0.1:1", nodes=["redis://127.0.0.1:2"]),
        dict(url=6379),
        dict(nodes="redis://127.0.0.1:1"),
        dict(nodes=5),
        dict(nodes=[1]),
        dict(url="redis://127.0.0.1:1", prefix=1),
        dict(url="redis://127.0.0.1:1", sync_interval="fast"),
        dict(url="redis://127.0.0.1:1", fleet_trials=1.5),
        dict(url="redis://127.0.0.1:1", fleet_trials=True),
        dict(url="redis://127.0.0.1:1", aggregate=1),
        dict(url="redis://127.0.0.1:1", on_event=3),
        dict(url="redis://127.0.0.1:1", interval=1),
    ],
)
def test_wrong_types_are_type_errors(kwargs):
    with pytest.raises(TypeError):
        Fleet(**kwargs)


def test_a_sync_ends_with_its_breaker(redis_url):
    ev = Events()
    b = CircuitBreaker(name="gone")
    s = Fleet(redis_url, sync_interval=0.01, on_event=ev).attach(b)
    until("connected", lambda: ev.saw(kind="connected"))
    del b
    until("the task ended", lambda: not s.running)


def test_attach_checks_the_breaker():
    fleet = Fleet("redis://127.0.0.1:1", aggregate=True)
    with pytest.raises(TypeError, match="breaker"):
        fleet.attach(object())
    # The fleet window needs a rate rule.
    with pytest.raises(ConfigError) as e:
        fleet.attach(CircuitBreaker(failure_threshold=3))
    assert e.value.field == "aggregate"
    # One trial-capped sync per breaker.
    b = CircuitBreaker()
    s = Fleet("redis://127.0.0.1:1").attach(b)
    with pytest.raises(RuntimeError, match="already"):
        Fleet("redis://127.0.0.1:1").attach(b)
    s.stop()
    # No trial cap: another sync may be attached.
    Fleet("redis://127.0.0.1:1", fleet_trials=None).attach(b).stop()
    assert "redis://127.0.0.1:1" in repr(fleet)
    assert "secret" not in repr(Fleet("redis://user:secret@127.0.0.1:1"))


def test_the_example_runs():
    _need_redis()
    r = subprocess.run([sys.executable, EXAMPLE], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OPEN" in r.stdout
