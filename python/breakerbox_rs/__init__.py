"""breakerbox: the lock-free Rust circuit breaker, for Python.

The breaker itself (state word, sliding windows, capped half-open, metrics, events) is the
Rust crate ``breakerbox``, compiled into ``breakerbox_rs._breakerbox``; this package adds the Python
surface: a decorator for sync and ``async def`` functions, context managers, a registry of
named breakers, an ASGI middleware (``breakerbox_rs.asgi``) and an httpx transport
(``breakerbox_rs.httpx``).

    from breakerbox_rs import CircuitBreaker, CircuitBreakerError

    breaker = CircuitBreaker(failure_threshold=5, recovery_timeout=60,
                             expected_exception=requests.RequestException)

    @breaker
    def fetch(url):
        return requests.get(url, timeout=2).json()

A rejected call raises ``CircuitBreakerError`` (or returns the ``fallback``'s value) without
running the function. Exceptions raised by the function are failures when they match
``expected_exception`` (default: ``Exception``), ignored when they match ``exclude``, and
successes otherwise (the dependency answered); exceptions that are not ``Exception``
(``asyncio.CancelledError``, ``KeyboardInterrupt``, ``SystemExit``) record nothing and give a
half-open trial slot back. The exception is always re-raised.
"""

import asyncio
import contextvars
import functools
import inspect
import threading
from typing import Any, Callable, Dict, Optional

from . import _breakerbox
from ._breakerbox import (
    CLOSED,
    DISABLED,
    FORCED_OPEN,
    HALF_OPEN,
    METRICS_ONLY,
    OPEN,
    Fleet,
    FleetSync,
    ManualClock,
    Permit,
    RegistrySync,
)
from ._errors import CircuitBreakerError, ConfigError

__all__ = [
    "CircuitBreaker",
    "CircuitBreakerError",
    "ConfigError",
    "Fleet",
    "FleetSync",
    "ManualClock",
    "Permit",
    "Registry",
    "RegistrySync",
    "CLOSED",
    "OPEN",
    "HALF_OPEN",
    "FORCED_OPEN",
    "DISABLED",
    "METRICS_ONLY",
]

__version__ = "0.1.0"

# Names that `circuitbreaker` and pybreaker users know, and the core setting each one is.
_ALIASES = {
    "failure_threshold": "consecutive_failures",  # circuitbreaker
    "fail_max": "consecutive_failures",  # pybreaker
    "recovery_timeout": "open_wait",  # circuitbreaker
    "reset_timeout": "open_wait",  # pybreaker
    "success_threshold": "half_open_successes",  # pybreaker
}

_markcoroutinefunction = getattr(inspect, "markcoroutinefunction", None)  # Python 3.12+
_asyncio_marker = getattr(getattr(asyncio, "coroutines", None), "_is_coroutine", None)

# Permits taken by `with breaker:` / `async with breaker:`, per thread and per asyncio task.
_held: contextvars.ContextVar = contextvars.ContextVar("breakerbox_held", default=())


def _core_settings(settings: Dict[str, Any]) -> Dict[str, Any]:
    """Maps alias names onto the core's, refusing two names for one setting."""
    out: Dict[str, Any] = {}
    given: Dict[str, str] = {}
    for key, value in settings.items():
        core = _ALIASES.get(key, key)
        if core in given:
            raise ConfigError(
                f"invalid `{key}`: `{given[core]}` already sets `{core}`; give one of them", key
            )
        given[core] = key
        out[core] = value
    return out


def _renamed(err: ConfigError, settings: Dict[str, Any]) -> ConfigError:
    """The error, naming the field as the caller spelled it (`failure_threshold`, ...)."""
    for key in settings:
        if _ALIASES.get(key) == err.field:
            msg = str(err).replace(f"`{err.field}`", f"`{key}`", 1)
            return ConfigError(msg, key)
    return err


def _renamed_type(err: TypeError, settings: Dict[str, Any]) -> TypeError:
    msg = str(err)
    for key in settings:
        core = _ALIASES.get(key)
        if core and f"`{core}`" in msg:
            return TypeError(msg.replace(f"`{core}`", f"`{key}`", 1))
    return err


def _check_timeout(call_timeout: Optional[float]) -> Optional[float]:
    if call_timeout is None:
        return None
    if isinstance(call_timeout, bool) or not isinstance(call_timeout, (int, float)):
        raise TypeError(f"`call_timeout` must be a number of seconds, not {type(call_timeout).__name__}")
    if not call_timeout > 0 or call_timeout == float("inf"):
        raise ConfigError(f"invalid `call_timeout`: {call_timeout} is outside (0, inf)", "call_timeout")
    return float(call_timeout)


class CircuitBreaker:
    """A circuit breaker (the Rust core) with a Python surface.

    Settings (all keyword-only; times in seconds or ``datetime.timedelta``):

    - ``name``: reported in metrics, events and errors.
    - ``failure_threshold`` (alias ``fail_max``; core ``consecutive_failures``): open after this
      many failures in a row.
    - ``failure_rate_threshold``: open when the failure rate over the window reaches this
      (``(0, 1]``; ``None`` turns the rule off). Default 0.5, unless another rule is given
      without it, in which case only the given rules apply.
    - ``slow_call_rate_threshold`` and ``slow_call_duration``: open when this share of the
      window's calls took at least ``slow_call_duration``.
    - ``minimum_calls``: rates are evaluated once the window holds this many calls (10).
    - ``window_size`` (a count window of the last N calls, default 100) or
      ``window_duration`` + ``window_buckets`` (a time window).
    - ``recovery_timeout`` (alias ``reset_timeout``; core ``open_wait``): how long to stay open
      (60). With ``open_wait_max`` (and ``open_wait_multiplier``, default 2) the wait grows
      exponentially over consecutive openings. Or a function of the opening's number in a row
      (1 for the first), returning seconds or a ``timedelta``, capped at ``open_wait_max``
      (required then): ``recovery_timeout=lambda n: 10 * n, open_wait_max=300``; a function
      that raises or returns something else gives the cap (the error goes to
      ``sys.unraisablehook``). ``jitter`` in ``[0, 1)`` shortens it randomly.
    - ``half_open_permits``: trial calls in flight while half-open (1), counted per half-open
      period: a failed trial re-opens, and the earlier period's trials still running do not
      count against the next period's cap (with ``reset_timeout=0`` and a cap of 3, five calls
      can run at once across two periods: each admits up to 3);
      ``half_open_successes`` (alias ``success_threshold``): trial successes that close it (1);
      ``max_half_open_wait``: a half-open period whose every trial permit is held this long
      times out (60; ``None`` for no limit), going to ``half_open_timeout_state``: ``"open"``
      (the default, at the next backoff step) or ``"closed"``.
    - ``expected_exception``: exception type(s) that are failures (``Exception``), or a
      callable ``exc -> bool``; ``exclude``: exception type(s) that record nothing (a class,
      or a tuple or list of them); ``trip_on``: exception type(s) that are failures and open
      the breaker at once (checked after ``exclude``, before ``expected_exception``).
    - ``fallback``: called with the call's arguments instead of raising
      ``CircuitBreakerError`` when the decorator's call is rejected.
    - ``call_timeout``: for ``async def`` functions, a call running longer is cancelled and
      counts as a failure (raises ``asyncio.TimeoutError``). Sync calls cannot be interrupted.
    - ``clock``: a ``ManualClock`` to drive the open waits by hand (tests); by default the
      core's real-time clock.

    A bad value raises ``ConfigError`` (a ``ValueError``) whose ``field`` names it; a value of
    the wrong type raises ``TypeError``.

    Use it as a decorator (``@breaker``, on sync and ``async def`` functions, and on generator
    and async generator functions, guarded while they are iterated), through
    ``breaker.call(func, *args)`` / ``await breaker.call_async(func, *args)``, as a context
    manager (``with breaker:`` / ``async with breaker:``), or by hand with ``acquire()``.
    """

    __slots__ = ("_core", "_fallback", "_call_timeout", "call", "__weakref__")

    def __init__(
        self,
        *,
        expected_exception: Any = None,
        exclude: Any = None,
        trip_on: Any = None,
        fallback: Optional[Callable[..., Any]] = None,
        call_timeout: Optional[float] = None,
        **settings: Any,
    ) -> None:
        core = _core_settings(settings)
        try:
            native = _breakerbox.Breaker(
                expected_exception=expected_exception, exclude=exclude, trip_on=trip_on, **core
            )
        except ConfigError as e:
            raise _renamed(e, settings) from None
        except TypeError as e:
            raise _renamed_type(e, settings) from None
        self._init(native, fallback, _check_timeout(call_timeout))

    def _init(self, native: Any, fallback: Any, call_timeout: Optional[float]) -> None:
        if fallback is not None and not callable(fallback):
            raise TypeError("`fallback` must be callable")
        self._core = native
        self._fallback = fallback
        self._call_timeout = call_timeout
        # The native method itself: `breaker.call(f, *args)` costs no Python frame.
        self.call = native.call

    @classmethod
    def _from_native(cls, native: Any, fallback: Any = None, call_timeout: Any = None) -> "CircuitBreaker":
        self = cls.__new__(cls)
        self._init(native, fallback, _check_timeout(call_timeout))
        return self

    # ----- state and control ------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The breaker's name."""
        return self._core.name

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"``, ``"half_open"``, ``"forced_open"``, ``"disabled"`` or
        ``"metrics_only"`` (an open breaker whose wait elapsed turns half-open at the next call)."""
        return self._core.state

    @property
    def generation(self) -> int:
        """Incremented by every transition."""
        return self._core.generation

    @property
    def opened(self) -> bool:
        """Whether calls are being rejected now (``circuitbreaker``'s ``opened``)."""
        return not self._core.would_admit()

    @property
    def closed(self) -> bool:
        """Whether the state is ``closed``."""
        return self._core.state == CLOSED

    def would_admit(self) -> bool:
        """Whether a call would be admitted now (takes no permit)."""
        return self._core.would_admit()

    def config(self) -> Dict[str, Any]:
        """The effective settings, by their core names."""
        return self._core.config()

    def force_open(self) -> None:
        """Rejects every call until ``reset()``."""
        self._core.force_open()

    def disable(self) -> None:
        """Admits every call and never trips, until ``reset()``."""
        self._core.disable()

    def metrics_only(self) -> None:
        """Records outcomes (metrics, events) but never trips, until ``reset()``."""
        self._core.metrics_only()

    def reset(self) -> None:
        """Back to closed with an empty window; calls in flight report late."""
        self._core.reset()

    def transition_to_open_for(self, seconds: float) -> None:
        """Opens for ``seconds`` (0.001 to 86400) from any state, like resilience4j's
        ``transitionToOpenStateFor``; a bad value raises ``ConfigError`` and changes nothing."""
        self._core.transition_to_open_for(seconds)

    def transition_to_half_open(self) -> None:
        """Half-open now, every trial permit free (nothing if already half-open)."""
        self._core.transition_to_half_open()

    def transition_to_closed(self) -> None:
        """Closed with an empty window and the backoff reset (nothing if already closed)."""
        self._core.transition_to_closed()

    def half_open_if_due(self) -> bool:
        """Moves open -> half-open now if the open wait has ended; ``True`` if this call did."""
        return self._core.half_open_if_due()

    def metrics(self) -> Dict[str, Any]:
        """A snapshot: state, calls, successes, failures, slow_calls, ignored, rejected, late,
        times_opened, window counts and rates, half_open_in_flight, retry_after."""
        return self._core.metrics()

    def prometheus(self) -> str:
        """The metrics in the Prometheus text exposition format."""
        return self._core.prometheus()

    def on_event(self, callback: Callable[[Dict[str, Any]], Any], kinds: Any = None) -> None:
        """Calls ``callback(event)`` (a dict with ``breaker`` and ``kind``: ``"transition"``,
        ``"rejected"``, ``"recorded"`` or ``"late"``, and the kind's fields) on the thread that
        caused the event, for the given ``kinds`` (all when ``None``). Keep it quick; an
        exception in it is reported (``sys.unraisablehook``) and changes nothing."""
        self._core.on_event(callback, None if kinds is None else list(kinds))

    def clear_listeners(self) -> None:
        """Removes every event listener."""
        self._core.clear_listeners()

    def acquire(self) -> Permit:
        """A permit for one call, or ``CircuitBreakerError``. Report on it (``success()``,
        ``failure()``, ``ignore()``, ``exception(exc)``); a permit dropped unreported records
        nothing and gives a half-open trial slot back."""
        return self._core.acquire()

    def try_acquire(self) -> Optional[Permit]:
        """Like ``acquire()``, returning ``None`` when the call is not admitted."""
        return self._core.try_acquire()

    def classify(self, exc: BaseException) -> str:
        """What this breaker records for a call that raised ``exc``."""
        return self._core.classify(exc)

    # ----- calls ------------------------------------------------------------------------------

    async def call_async(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Awaits ``func(*args, **kwargs)`` through the breaker (see the decorator)."""
        permit = self._core.acquire()
        try:
            if self._call_timeout is None:
                result = await func(*args, **kwargs)
            else:
                try:
                    result = await asyncio.wait_for(func(*args, **kwargs), self._call_timeout)
                except asyncio.TimeoutError:
                    permit.failure()
                    raise
        except BaseException as e:
            if permit.pending:
                if isinstance(e, asyncio.CancelledError):
                    permit.ignore()  # cancelled: the trial slot goes back
                else:
                    permit.exception(e)
            raise
        permit.success()
        return result

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """The decorator: ``@breaker`` on a function or an ``async def`` function."""
        return self.decorate(func)

    def decorate(self, func: Callable[..., Any], fallback: Optional[Callable[..., Any]] = None) -> Callable[..., Any]:
        """Guards ``func``; ``fallback`` (default: the breaker's) replaces rejections."""
        fallback = fallback if fallback is not None else self._fallback
        if inspect.isasyncgenfunction(func):
            return self._decorate_async_gen(func, fallback)
        if inspect.iscoroutinefunction(func):
            return self._decorate_async(func, fallback)
        if inspect.isgeneratorfunction(func):
            if self._call_timeout is not None:
                raise TypeError("`call_timeout` applies to `async def` functions only")
            return self._decorate_gen(func, fallback)
        if self._call_timeout is not None:
            raise TypeError("`call_timeout` applies to `async def` functions only")
        guarded = self._core.wrap(func, fallback)
        # name, doc, module, __wrapped__ (for inspect.signature): the native callable has a
        # __dict__ for them.
        functools.update_wrapper(guarded, func)
        guarded.breaker = self
        return guarded

    def _decorate_async(self, func: Callable[..., Any], fallback: Any) -> Callable[..., Any]:
        if self._call_timeout is None:
            # The native awaitable: no Python coroutine or frame of its own per call.
            guarded = self._core.wrap_async(func, fallback)
            functools.update_wrapper(guarded, func)
            # What makes inspect.iscoroutinefunction() (and frameworks that ask it) see an
            # `async def` function: a function-like object with a coroutine's code, or (3.12+)
            # the marker; asyncio.iscoroutinefunction() also takes asyncio's own marker.
            if hasattr(func, "__code__"):
                for attr in ("__code__", "__defaults__", "__kwdefaults__"):
                    setattr(guarded, attr, getattr(func, attr, None))
                if getattr(guarded, "__annotations__", None) is None:
                    guarded.__annotations__ = {}
            if _markcoroutinefunction is not None:
                _markcoroutinefunction(guarded)
            if _asyncio_marker is not None:
                guarded._is_coroutine = _asyncio_marker
            guarded.breaker = self
            return guarded
        acquire = self._core.acquire
        try_acquire = self._core.try_acquire
        timeout = self._call_timeout
        Cancelled = asyncio.CancelledError
        Timeout = asyncio.TimeoutError

        @functools.wraps(func)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            if fallback is None:
                permit = acquire()  # raises CircuitBreakerError when not admitted
            else:
                permit = try_acquire()
                if permit is None:
                    result = fallback(*args, **kwargs)
                    return await result if inspect.isawaitable(result) else result
            try:
                if timeout is None:
                    result = await func(*args, **kwargs)
                else:
                    try:
                        result = await asyncio.wait_for(func(*args, **kwargs), timeout)
                    except Timeout:
                        permit.failure()
                        raise
            except Cancelled:
                if permit.pending:
                    permit.ignore()  # cancelled: nothing recorded, the trial slot goes back
                raise
            except BaseException as e:
                if permit.pending:
                    permit.exception(e)
                raise
            permit.success()
            return result

        guarded.breaker = self  # type: ignore[attr-defined]
        return guarded

    def _decorate_gen(self, func: Callable[..., Any], fallback: Any) -> Callable[..., Any]:
        """A generator function, guarded while it is iterated: the permit is taken at the first
        ``next()``, an exception raised while iterating is classified, reaching the end is a
        success, and closing it early records nothing."""
        acquire = self._core.acquire
        try_acquire = self._core.try_acquire

        @functools.wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if fallback is None:
                permit = acquire()
            else:
                permit = try_acquire()
                if permit is None:
                    result = fallback(*args, **kwargs)
                    if inspect.isgenerator(result):
                        return (yield from result)
                    return result
            try:
                result = yield from func(*args, **kwargs)
            except GeneratorExit:
                permit.ignore()
                raise
            except BaseException as e:
                if permit.pending:
                    permit.exception(e)
                raise
            permit.success()
            return result

        guarded.breaker = self  # type: ignore[attr-defined]
        return guarded

    def _decorate_async_gen(self, func: Callable[..., Any], fallback: Any) -> Callable[..., Any]:
        """An async generator function, guarded while it is iterated (as ``_decorate_gen``)."""
        if self._call_timeout is not None:
            raise TypeError("`call_timeout` applies to `async def` functions, not async generators")
        acquire = self._core.acquire
        try_acquire = self._core.try_acquire

        @functools.wraps(func)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            if fallback is None:
                permit = acquire()
            else:
                permit = try_acquire()
                if permit is None:
                    result = fallback(*args, **kwargs)
                    if inspect.isasyncgen(result):
                        async for item in result:
                            yield item
                    return
            try:
                async for item in func(*args, **kwargs):
                    yield item
            except GeneratorExit:
                permit.ignore()
                raise
            except BaseException as e:
                if permit.pending:
                    permit.exception(e)  # cancellation is not an Exception: nothing recorded
                raise
            permit.success()

        guarded.breaker = self  # type: ignore[attr-defined]
        return guarded

    # ----- context managers -------------------------------------------------------------------

    def guard(self) -> Permit:
        """A permit as a context manager: ``with breaker.guard():`` reports success, or the
        classified exception, at the end of the block. Raises ``CircuitBreakerError`` here
        when the call is not admitted."""
        return self._core.acquire()

    def __enter__(self) -> "CircuitBreaker":
        permit = self._core.acquire()
        _held.set(_held.get() + ((self, permit),))
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        held = _held.get()
        for i in range(len(held) - 1, -1, -1):
            if held[i][0] is self:
                permit = held[i][1]
                _held.set(held[:i] + held[i + 1 :])
                if exc is not None and isinstance(exc, asyncio.CancelledError):
                    permit.ignore()
                else:
                    permit.__exit__(exc_type, exc, tb)
                return False
        raise RuntimeError("breaker context exited without a matching enter")

    async def __aenter__(self) -> "CircuitBreaker":
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        return self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        core = getattr(self, "_core", None)
        if core is None:
            return "<CircuitBreaker (not initialised)>"
        return f"<CircuitBreaker {core.name!r} state={core.state}>"


class Registry:
    """Named breakers, created on first use from a default configuration (the keyword
    arguments of ``CircuitBreaker``) or a per-name one (``configure``). At most
    ``capacity_limit`` breakers (10,000); past that, new names share one overflow breaker.
    Getting an existing name takes no lock."""

    def __init__(
        self,
        *,
        capacity_limit: Optional[int] = None,
        expected_exception: Any = None,
        exclude: Any = None,
        trip_on: Any = None,
        fallback: Optional[Callable[..., Any]] = None,
        call_timeout: Optional[float] = None,
        **settings: Any,
    ) -> None:
        try:
            self._native = _breakerbox.Registry(capacity_limit=capacity_limit, **_core_settings(settings))
        except ConfigError as e:
            raise _renamed(e, settings) from None
        self._default = (expected_exception, exclude, trip_on, fallback, _check_timeout(call_timeout))
        self._per_name: Dict[str, Any] = {}
        self._breakers: Dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def configure(
        self,
        name: str,
        *,
        expected_exception: Any = None,
        exclude: Any = None,
        trip_on: Any = None,
        fallback: Optional[Callable[..., Any]] = None,
        call_timeout: Optional[float] = None,
        **settings: Any,
    ) -> None:
        """Settings of the breaker ``name`` (applies when it is first created)."""
        try:
            self._native.configure(name, **_core_settings(settings))
        except ConfigError as e:
            raise _renamed(e, settings) from None
        self._per_name[name] = (expected_exception, exclude, trip_on, fallback, _check_timeout(call_timeout))

    def get(self, name: str) -> CircuitBreaker:
        """The breaker ``name``, created on first use; every caller gets the same one."""
        b = self._breakers.get(name)
        if b is not None:
            return b
        with self._lock:
            b = self._breakers.get(name)
            if b is None:
                expected, exclude, trip_on, fallback, timeout = self._per_name.get(name, self._default)
                native = self._native.get(name, expected, exclude, trip_on)
                b = CircuitBreaker._from_native(native, fallback, timeout)
                if native.name == name:
                    self._breakers[name] = b
            return b

    __getitem__ = get

    def names(self):
        """The names of the breakers created so far."""
        return self._native.names()

    def __len__(self) -> int:
        return len(self._native)

    def metrics(self):
        """Metrics of every breaker (a list of dicts)."""
        return self._native.metrics()

    def prometheus(self) -> str:
        """Metrics of every breaker in the Prometheus text format."""
        return self._native.prometheus()

    def on_event(self, callback: Callable[[Dict[str, Any]], Any], kinds: Any = None) -> None:
        """A listener on every breaker, existing and future (see ``CircuitBreaker.on_event``)."""
        self._native.on_event(callback, None if kinds is None else list(kinds))
