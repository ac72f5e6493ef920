"""circuitbreaker's API on the breakerbox core: ``import breakerbox_rs.circuitbreaker as circuitbreaker``.

The names, arguments and behaviour of circuitbreaker 2.x: ``@circuit``,
``circuit(failure_threshold, recovery_timeout, expected_exception, name, fallback_function,
cls)``, ``CircuitBreaker`` (subclass attributes ``FAILURE_THRESHOLD``, ``RECOVERY_TIMEOUT``,
``EXPECTED_EXCEPTION``, ``FALLBACK_FUNCTION``), ``CircuitBreakerMonitor``, ``state``,
``failure_count``, ``last_failure``, ``open_remaining``, ``open_until``; sync and async
functions and generators. A two-argument ``expected_exception`` predicate is called with
``(type, value)``; an exception it does not match counts as a success.

Admission, tripping and the open timer are the core's (``half_open_permits`` is unlimited,
as circuitbreaker lets every call through once the timeout elapsed).
"""

import contextvars
from datetime import datetime, timedelta, timezone
from functools import wraps
from inspect import isasyncgenfunction, isclass, iscoroutinefunction, isgeneratorfunction
from math import ceil, floor
from time import monotonic
from typing import Any, Iterable, Optional

from . import _breakerbox
from ._errors import ConfigError

__all__ = [
    "CircuitBreaker",
    "CircuitBreakerError",
    "CircuitBreakerMonitor",
    "circuit",
    "STATE_CLOSED",
    "STATE_OPEN",
    "STATE_HALF_OPEN",
]

STRING_TYPES = (bytes, str)
STATE_CLOSED = "closed"
STATE_OPEN = "open"
STATE_HALF_OPEN = "half_open"

_FROM_CORE = {
    "closed": STATE_CLOSED,
    "open": STATE_OPEN,
    "half_open": STATE_HALF_OPEN,
    "forced_open": STATE_OPEN,
    "disabled": STATE_CLOSED,
    "metrics_only": STATE_CLOSED,
}

_held: contextvars.ContextVar = contextvars.ContextVar("breakerbox_circuitbreaker_held", default=())


class ExpectedExceptionError(TypeError, ValueError):
    """``expected_exception`` is not an exception class, a list of them, or a predicate (a
    ``TypeError``, and a ``ValueError`` as circuitbreaker raised)."""


def in_exception_list(*exc_types: Any) -> Any:
    """A predicate ``(type, value) -> bool``: the type is a subclass of one of ``exc_types``."""

    def matches_types(thrown_type: Any, _: Any) -> bool:
        return issubclass(thrown_type, exc_types)

    return matches_types


def build_failure_predicate(expected_exception: Any) -> Any:
    """The failure predicate ``(type, value) -> bool`` of an exception class, an iterable of
    them, or a predicate (returned as it is)."""
    if isclass(expected_exception) and issubclass(expected_exception, BaseException):
        return in_exception_list(expected_exception)
    if isinstance(expected_exception, STRING_TYPES):
        raise ExpectedExceptionError("expected_exception cannot be a string. Did you mean name?")
    try:
        items = list(expected_exception)
    except TypeError:
        if not callable(expected_exception) or isclass(expected_exception):
            raise ExpectedExceptionError(
                "expected_exception does not look like a predicate: give an exception class, "
                f"a list of them, or a callable (type, value) -> bool, not {expected_exception!r}"
            ) from None
        return expected_exception
    for item in items:
        if not (isclass(item) and issubclass(item, BaseException)):
            raise ExpectedExceptionError(
                f"expected_exception items must be exception classes, not {item!r}"
            )
    return in_exception_list(*items)


class CircuitBreaker:
    """circuitbreaker's ``CircuitBreaker`` on the breakerbox core (see the module docstring)."""

    FAILURE_THRESHOLD = 5
    RECOVERY_TIMEOUT = 30
    EXPECTED_EXCEPTION: Any = Exception
    FALLBACK_FUNCTION: Any = None

    def __init__(
        self,
        failure_threshold: Optional[int] = None,
        recovery_timeout: Optional[float] = None,
        expected_exception: Any = None,
        name: Optional[str] = None,
        fallback_function: Any = None,
    ) -> None:
        self._last_failure: Optional[BaseException] = None
        self._failure_count = 0
        self._failure_threshold = failure_threshold or self.FAILURE_THRESHOLD
        self._recovery_timeout = recovery_timeout or self.RECOVERY_TIMEOUT
        if not expected_exception:
            try:
                expected_exception = type(self).__dict__["EXPECTED_EXCEPTION"]
            except KeyError:
                expected_exception = CircuitBreaker.EXPECTED_EXCEPTION
        self.is_failure = build_failure_predicate(expected_exception)
        self._fallback_function = fallback_function or self.FALLBACK_FUNCTION
        self._name = name
        self._opened = monotonic()
        try:
            self._core = _breakerbox.Breaker(
                name=name if isinstance(name, str) else None,
                consecutive_failures=self._failure_threshold,
                open_wait=self._recovery_timeout,
                half_open_permits=65535,  # the core's most
                half_open_successes=1,
            )
        except ConfigError as e:
            field = {"consecutive_failures": "failure_threshold", "open_wait": "recovery_timeout"}.get(e.field, e.field)
            raise ConfigError(str(e).replace(f"`{e.field}`", f"`{field}`"), field) from None
        except TypeError as e:
            msg = str(e).replace("`consecutive_failures`", "`failure_threshold`").replace("`open_wait`", "`recovery_timeout`")
            raise TypeError(msg) from None

    # ----- outcomes -----------------------------------------------------------------------------

    def _acquire(self) -> Any:
        permit = self._core.try_acquire()
        if permit is None:
            self._half_open_if_due()
            permit = self._core.try_acquire()
            if permit is None:
                raise CircuitBreakerError(self)
        return permit

    def _half_open_if_due(self) -> None:
        # The core's clock is coarse (1 ms): at the boundary, circuitbreaker's rule (monotonic
        # time since the trip against recovery_timeout) decides.
        core = self._core
        if core.state == "open" and self._opened + self._recovery_timeout <= monotonic():
            core.transition_to_half_open()

    def _record(self, permit: Any, exc_type: Any, exc_value: Any) -> None:
        if exc_type and self.is_failure(exc_type, exc_value):
            self._last_failure = exc_value
            self._failure_count += 1
            generation = self._core.generation
            permit.failure()
            if self._core.generation != generation and self._core.state == "open":
                self._opened = monotonic()
        else:
            permit.success()
            self._last_failure = None
            self._failure_count = 0

    def __enter__(self) -> None:
        _held.set(_held.get() + ((self, self._acquire()),))
        return None

    def __exit__(self, exc_type: Any, exc_value: Any, _traceback: Any) -> bool:
        held = _held.get()
        for i in range(len(held) - 1, -1, -1):
            if held[i][0] is self:
                permit = held[i][1]
                _held.set(held[:i] + held[i + 1 :])
                self._record(permit, exc_type, exc_value)
                return False
        raise RuntimeError("breaker context exited without a matching enter")

    # ----- decorating ---------------------------------------------------------------------------

    def __call__(self, wrapped: Any) -> Any:
        return self.decorate(wrapped)

    def decorate(self, function: Any) -> Any:
        """Guards ``function`` (sync or async, function or generator)."""
        if self._name is None:
            try:
                self._name = function.__qualname__
            except AttributeError:
                self._name = function.__name__
        CircuitBreakerMonitor.register(self)
        if iscoroutinefunction(function) or isasyncgenfunction(function):
            return self._decorate_async(function)
        return self._decorate_sync(function)

    def _decorate_sync(self, function: Any) -> Any:
        @wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self.opened:
                if self.fallback_function:
                    return self.fallback_function(*args, **kwargs)
                raise CircuitBreakerError(self)
            return self.call(function, *args, **kwargs)

        @wraps(function)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            if self.opened:
                if self.fallback_function:
                    yield from self.fallback_function(*args, **kwargs)
                    return
                raise CircuitBreakerError(self)
            yield from self.call_generator(function, *args, **kwargs)

        return gen_wrapper if isgeneratorfunction(function) else wrapper

    def _decorate_async(self, function: Any) -> Any:
        @wraps(function)
        async def awrapper(*args: Any, **kwargs: Any) -> Any:
            if self.opened:
                if self.fallback_function:
                    return await self.fallback_function(*args, **kwargs)
                raise CircuitBreakerError(self)
            return await self.call_async(function, *args, **kwargs)

        @wraps(function)
        async def gen_awrapper(*args: Any, **kwargs: Any) -> Any:
            if self.opened:
                if self.fallback_function:
                    async for el in self.fallback_function(*args, **kwargs):
                        yield el
                    return
                raise CircuitBreakerError(self)
            async for el in self.call_async_generator(function, *args, **kwargs):
                yield el

        return gen_awrapper if isasyncgenfunction(function) else awrapper

    def call(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Calls ``func`` through the breaker."""
        permit = self._acquire()
        try:
            result = func(*args, **kwargs)
        except BaseException as e:
            self._record(permit, type(e), e)
            raise
        self._record(permit, None, None)
        return result

    def call_generator(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Iterates the generator ``func(*args, **kwargs)`` through the breaker: an exception
        while iterating is a failure."""
        permit = self._acquire()
        try:
            for el in func(*args, **kwargs):
                yield el
        except BaseException as e:
            self._record(permit, type(e), e)
            raise
        self._record(permit, None, None)

    async def call_async(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Awaits ``func(*args, **kwargs)`` through the breaker."""
        permit = self._acquire()
        try:
            result = await func(*args, **kwargs)
        except BaseException as e:
            self._record(permit, type(e), e)
            raise
        self._record(permit, None, None)
        return result

    async def call_async_generator(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Iterates the async generator ``func(*args, **kwargs)`` through the breaker."""
        permit = self._acquire()
        try:
            async for el in func(*args, **kwargs):
                yield el
        except BaseException as e:
            self._record(permit, type(e), e)
            raise
        self._record(permit, None, None)

    # ----- state --------------------------------------------------------------------------------

    def reset(self) -> None:
        """Closes the circuit and resets the failure count."""
        self._core.transition_to_closed()
        self._last_failure = None
        self._failure_count = 0

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"`` (open and the timeout elapsed)."""
        self._half_open_if_due()
        return _FROM_CORE[self._core.state]

    @property
    def open_until(self) -> datetime:
        """About when the circuit will let a trial call through."""
        return datetime.now(timezone.utc) + timedelta(seconds=self.open_remaining)

    @property
    def open_remaining(self) -> int:
        """Seconds (rounded away from zero) until the circuit lets a trial call through;
        negative once the timeout elapsed."""
        remain = (self._opened + self._recovery_timeout) - monotonic()
        return ceil(remain) if remain > 0 else floor(remain)

    @property
    def failure_count(self) -> int:
        return self._failure_count

    @property
    def closed(self) -> bool:
        return self.state == STATE_CLOSED

    @property
    def opened(self) -> bool:
        return self.state == STATE_OPEN

    @property
    def name(self) -> Optional[str]:
        return self._name

    @property
    def last_failure(self) -> Optional[BaseException]:
        return self._last_failure

    @property
    def fallback_function(self) -> Any:
        return self._fallback_function

    def metrics(self) -> Any:
        """The core's metrics snapshot (see ``breakerbox_rs.CircuitBreaker.metrics``)."""
        return self._core.metrics()

    def prometheus(self) -> str:
        """The core's metrics in the Prometheus text format."""
        return self._core.prometheus()

    def __str__(self, *args: Any, **kwargs: Any) -> str:
        return self.name or "unnamed_CircuitBreaker"


class CircuitBreakerError(Exception):
    """A call was not admitted (the circuit is open)."""

    def __init__(self, circuit_breaker: CircuitBreaker, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._circuit_breaker = circuit_breaker

    def __str__(self, *args: Any, **kwargs: Any) -> str:
        cb = self._circuit_breaker
        return 'Circuit "%s" OPEN until %s (%d failures, %d sec remaining) (last_failure: %r)' % (
            cb.name,
            cb.open_until,
            cb.failure_count,
            round(cb.open_remaining),
            cb.last_failure,
        )


class CircuitBreakerMonitor:
    """Every breaker that decorated a function, by name."""

    circuit_breakers: dict = {}

    @classmethod
    def register(cls, circuit_breaker: CircuitBreaker) -> None:
        cls.circuit_breakers[circuit_breaker.name] = circuit_breaker

    @classmethod
    def all_closed(cls) -> bool:
        return len(list(cls.get_open())) == 0

    @classmethod
    def get_circuits(cls) -> Iterable[CircuitBreaker]:
        return cls.circuit_breakers.values()

    @classmethod
    def get(cls, name: Any) -> Optional[CircuitBreaker]:
        return cls.circuit_breakers.get(name)

    @classmethod
    def get_open(cls) -> Iterable[CircuitBreaker]:
        for c in cls.get_circuits():
            if c.opened:
                yield c

    @classmethod
    def get_closed(cls) -> Iterable[CircuitBreaker]:
        for c in cls.get_circuits():
            if c.closed:
                yield c


def circuit(
    failure_threshold: Any = None,
    recovery_timeout: Optional[float] = None,
    expected_exception: Any = None,
    name: Optional[str] = None,
    fallback_function: Any = None,
    cls: Any = CircuitBreaker,
) -> Any:
    """``@circuit`` or ``@circuit(...)``: a breaker of class ``cls`` guarding the function."""
    if callable(failure_threshold):
        return cls().decorate(failure_threshold)
    return cls(
        failure_threshold=failure_threshold,
        recovery_timeout=recovery_timeout,
        expected_exception=expected_exception,
        name=name,
        fallback_function=fallback_function,
    )
