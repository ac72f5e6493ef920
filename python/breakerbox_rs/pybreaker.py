"""pybreaker's API on the breakerbox core: ``import breakerbox_rs.pybreaker as pybreaker``.

The names, arguments and behaviour of pybreaker 1.x: ``CircuitBreaker(fail_max=5,
reset_timeout=60, success_threshold=1, exclude=None, listeners=None, state_storage=None,
name=None, throw_new_error_on_trip=True)``, ``fail_counter``, ``success_counter``,
``current_state`` (``"closed"``, ``"open"``, ``"half-open"``), ``open()`` / ``half_open()`` /
``close()``, ``CircuitBreakerListener``, ``CircuitMemoryStorage``, the decorator, ``calling()``
and guarded generators. As in pybreaker, an excluded exception counts as a success, and the
call that trips the breaker raises ``CircuitBreakerError`` (unless
``throw_new_error_on_trip=False``).

Admission, the open timer and the half-open trials are the core's; the counters and the state
are mirrored into ``state_storage``, and a state written there by someone else (another
breaker sharing the storage) is applied to the core. The differences from pybreaker are listed
in the package README.
"""

import contextlib
import sys
import threading
import types
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional

from . import _breakerbox
from ._errors import ConfigError

__all__ = [
    "CircuitBreaker",
    "CircuitBreakerError",
    "CircuitBreakerListener",
    "CircuitBreakerState",
    "CircuitBreakerStorage",
    "CircuitMemoryStorage",
    "CircuitClosedState",
    "CircuitOpenState",
    "CircuitHalfOpenState",
    "STATE_OPEN",
    "STATE_CLOSED",
    "STATE_HALF_OPEN",
]

STATE_OPEN = "open"
STATE_CLOSED = "closed"
STATE_HALF_OPEN = "half-open"

# Core state -> pybreaker state.
_FROM_CORE = {
    "closed": STATE_CLOSED,
    "open": STATE_OPEN,
    "half_open": STATE_HALF_OPEN,
    "forced_open": STATE_OPEN,
    "disabled": STATE_CLOSED,
    "metrics_only": STATE_CLOSED,
}

_MAX_OPEN_FOR = 86400.0  # the core's bound for a manual opening


def _now() -> datetime:
    return datetime.now(timezone.utc)


class CircuitBreakerError(Exception):
    """A call was not admitted (or it tripped the breaker, with ``throw_new_error_on_trip``)."""


class CircuitBreakerStorage:
    """The interface of a state storage (pybreaker's): ``state``, ``counter``,
    ``success_counter``, ``opened_at`` and their updates."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    state: Any = property(lambda self: None)

    def increment_counter(self) -> None:
        raise NotImplementedError

    def reset_counter(self) -> None:
        raise NotImplementedError

    def increment_success_counter(self) -> None:
        raise NotImplementedError

    def reset_success_counter(self) -> None:
        raise NotImplementedError

    counter: Any = property(lambda self: 0)
    success_counter: Any = property(lambda self: 0)
    opened_at: Any = property(lambda self: None)


class CircuitMemoryStorage(CircuitBreakerStorage):
    """Keeps the breaker's state in memory (the default)."""

    def __init__(self, state: str) -> None:
        super().__init__("memory")
        self._fail_counter = 0
        self._success_counter = 0
        self._opened_at: Optional[datetime] = None
        self._state = state

    @property
    def state(self) -> str:
        return self._state

    @state.setter
    def state(self, state: str) -> None:
        self._state = state

    def increment_counter(self) -> None:
        self._fail_counter += 1

    def reset_counter(self) -> None:
        self._fail_counter = 0

    def increment_success_counter(self) -> None:
        self._success_counter += 1

    def reset_success_counter(self) -> None:
        self._success_counter = 0

    @property
    def counter(self) -> int:
        return self._fail_counter

    @property
    def success_counter(self) -> int:
        return self._success_counter

    @property
    def opened_at(self) -> Optional[datetime]:
        return self._opened_at

    @opened_at.setter
    def opened_at(self, value: datetime) -> None:
        self._opened_at = value


class CircuitBreakerListener:
    """Override the methods to be told about a breaker's calls and transitions."""

    def before_call(self, cb: "CircuitBreaker", func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Before the breaker ``cb`` calls ``func``."""

    def failure(self, cb: "CircuitBreaker", exc: BaseException) -> None:
        """A call through ``cb`` failed with ``exc``."""

    def success(self, cb: "CircuitBreaker") -> None:
        """A call through ``cb`` succeeded."""

    def state_change(self, cb: "CircuitBreaker", old_state: Optional["CircuitBreakerState"], new_state: "CircuitBreakerState") -> None:
        """``cb`` went from ``old_state`` to ``new_state`` (state objects with a ``name``)."""


class CircuitBreakerState:
    """A state, as given to ``CircuitBreakerListener.state_change``; ``name`` is
    ``"closed"``, ``"open"`` or ``"half-open"``."""

    def __init__(self, cb: "CircuitBreaker", name: str) -> None:
        self._breaker = cb
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class CircuitClosedState(CircuitBreakerState):
    def __init__(self, cb: "CircuitBreaker", prev_state: Any = None, notify: bool = False) -> None:
        super().__init__(cb, STATE_CLOSED)


class CircuitOpenState(CircuitBreakerState):
    def __init__(self, cb: "CircuitBreaker", prev_state: Any = None, notify: bool = False) -> None:
        super().__init__(cb, STATE_OPEN)


class CircuitHalfOpenState(CircuitBreakerState):
    def __init__(self, cb: "CircuitBreaker", prev_state: Any = None, notify: bool = False) -> None:
        super().__init__(cb, STATE_HALF_OPEN)


HAS_TORNADO_SUPPORT = False  # pybreaker's Tornado coroutines are not provided


def _check_exclusion(value: Any) -> Any:
    if isinstance(value, type) and issubclass(value, BaseException):
        return value
    if callable(value) and not isinstance(value, type):
        return value
    raise TypeError(
        f"`exclude` items must be exception classes or callables taking the exception, "
        f"not {value!r}"
    )


class CircuitBreaker:
    """pybreaker's ``CircuitBreaker`` on the breakerbox core (see the module docstring)."""

    # The state names as stored (``breakerbox_rs.aiobreaker`` stores its enum members).
    _CLOSED: Any = STATE_CLOSED
    _OPEN: Any = STATE_OPEN
    _HALF_OPEN: Any = STATE_HALF_OPEN
    _TIMEOUT_NAME = "reset_timeout"
    _COUNTED: Any = BaseException  # exceptions judged by the breaker (others record nothing)

    def _from_core(self) -> Any:
        s = self._core.state
        if s == "open" or s == "forced_open":
            return self._OPEN
        if s == "half_open":
            return self._HALF_OPEN
        return self._CLOSED

    @staticmethod
    def _clock() -> datetime:
        return _now()

    def _rejected(self) -> BaseException:
        return CircuitBreakerError("Timeout not elapsed yet, circuit breaker still open")

    def _tripped(self, msg: str, exc: BaseException) -> BaseException:
        return CircuitBreakerError(msg).with_traceback(sys.exc_info()[2])

    def __init__(
        self,
        fail_max: int = 5,
        reset_timeout: float = 60,
        success_threshold: int = 1,
        exclude: Any = None,
        listeners: Any = None,
        state_storage: Optional[CircuitBreakerStorage] = None,
        name: Optional[str] = None,
        throw_new_error_on_trip: bool = True,
    ) -> None:
        self._lock = threading.RLock()
        self._state_storage = state_storage or CircuitMemoryStorage(self._CLOSED)
        if isinstance(exclude, type) or callable(exclude):
            exclude = [exclude]
        self._excluded_exceptions = [_check_exclusion(e) for e in (exclude or [])]
        self._listeners = list(listeners or [])
        self._name = name
        self._throw_new_error_on_trip = throw_new_error_on_trip
        self._fail_max = fail_max
        self._reset_timeout = reset_timeout
        self._success_threshold = success_threshold
        self._core = self._new_core(fail_max, reset_timeout, success_threshold)
        # What the core and the storage agreed on last (None: apply the storage's state).
        self._mirrored: Optional[str] = None
        self._state_name = self._state_storage.state
        self._state = self._create_new_state(self._state_name)
        self._sync(notify=False)

    # ----- the core -----------------------------------------------------------------------------

    def _new_core(self, fail_max: Any, reset_timeout: Any, success_threshold: Any) -> Any:
        names = {
            "consecutive_failures": "fail_max",
            "open_wait": self._TIMEOUT_NAME,
            "half_open_successes": "success_threshold",
        }
        try:
            return _breakerbox.Breaker(
                name=self._name if isinstance(self._name, str) else None,
                consecutive_failures=fail_max,
                open_wait=reset_timeout,
                half_open_successes=success_threshold,
                half_open_permits=1,
                max_half_open_wait=max(60.0, float(reset_timeout) if isinstance(reset_timeout, (int, float)) else 60.0),
            )
        except ConfigError as e:
            field = names.get(e.field, e.field)
            raise ConfigError(str(e).replace(f"`{e.field}`", f"`{field}`"), field) from None
        except TypeError as e:
            msg = str(e)
            for core, mine in names.items():
                msg = msg.replace(f"`{core}`", f"`{mine}`")
            raise TypeError(msg) from None

    def _rebuild(self, **change: Any) -> None:
        settings = {
            "fail_max": self._fail_max,
            "reset_timeout": self._reset_timeout,
            "success_threshold": self._success_threshold,
        }
        settings.update(change)
        with self._lock:
            core = self._new_core(settings["fail_max"], settings["reset_timeout"], settings["success_threshold"])
            self._fail_max = settings["fail_max"]
            self._reset_timeout = settings["reset_timeout"]
            self._success_threshold = settings["success_threshold"]
            self._core = core
            self._mirrored = None  # re-apply the stored state to the new core
            self._sync(notify=False)

    def _timeout_elapsed(self) -> bool:
        opened_at = self._state_storage.opened_at
        if opened_at is None:
            return True
        now = self._clock() if opened_at.tzinfo is not None else datetime.now()
        return now >= opened_at + timedelta(seconds=self._reset_timeout)

    def _apply_to_core(self, state: str) -> None:
        core = self._core
        if state == self._OPEN:
            opened_at = self._state_storage.opened_at
            remaining = 0.0
            if opened_at is not None:
                now = self._clock() if opened_at.tzinfo is not None else datetime.now()
                remaining = (opened_at + timedelta(seconds=self._reset_timeout) - now).total_seconds()
            core.transition_to_open_for(min(max(remaining, 0.001), _MAX_OPEN_FOR))
        elif state == self._HALF_OPEN:
            core.transition_to_half_open()
        elif state == self._CLOSED:
            core.transition_to_closed()
        else:
            raise ValueError(f"Unknown state {state!r}, valid states: closed, open, half-open")

    def _sync(self, notify: bool = True) -> str:
        """Reconciles the core, the storage and the cached state object; notifies listeners of
        a change. Returns the state."""
        with self._lock:
            storage = self._state_storage
            stored = storage.state
            if stored != self._mirrored:
                # Written by someone else (or first sight): the storage wins.
                self._apply_to_core(stored)
                state = stored
            else:
                state = self._from_core()
                if state != stored:
                    # The core moved (tripped, trial admitted, closed): record it.
                    if state == self._OPEN:
                        storage.opened_at = self._clock()
                    storage.state = state
            self._mirrored = state
            if state != self._state_name:
                old = self._state
                self._state = self._create_new_state(state, prev_state=old, notify=notify)
                self._state_name = state
                if notify:
                    if state == self._CLOSED:
                        storage.reset_counter()
                    storage.reset_success_counter()
                    for listener in self._listeners:
                        listener.state_change(self, old, self._state)
            return state

    def _create_new_state(self, new_state: str, prev_state: Any = None, notify: bool = False) -> CircuitBreakerState:
        """The state object of ``new_state`` (``"closed"``, ``"open"``, ``"half-open"``)."""
        state_map = {
            STATE_CLOSED: CircuitClosedState,
            STATE_OPEN: CircuitOpenState,
            STATE_HALF_OPEN: CircuitHalfOpenState,
        }
        try:
            cls = state_map[new_state]  # noqa
        except (KeyError, TypeError):
            raise ValueError(f"Unknown state {new_state!r}, valid states: closed, open, half-open") from None
        return cls(self, prev_state=prev_state, notify=notify)

    # ----- settings -----------------------------------------------------------------------------

    @property
    def fail_counter(self) -> int:
        """Consecutive failures."""
        return self._state_storage.counter

    @property
    def success_counter(self) -> int:
        """Consecutive successes while half-open."""
        return self._state_storage.success_counter

    @property
    def fail_max(self) -> int:
        return self._fail_max

    @fail_max.setter
    def fail_max(self, number: int) -> None:
        self._rebuild(fail_max=number)

    @property
    def reset_timeout(self) -> float:
        return self._reset_timeout

    @reset_timeout.setter
    def reset_timeout(self, timeout: float) -> None:
        self._rebuild(reset_timeout=timeout)

    @property
    def success_threshold(self) -> int:
        return self._success_threshold

    @success_threshold.setter
    def success_threshold(self, threshold: int) -> None:
        self._rebuild(success_threshold=threshold)

    @property
    def state(self) -> CircuitBreakerState:
        """The state object (its ``name`` is the state)."""
        self._sync()
        return self._state

    @state.setter
    def state(self, state_str: str) -> None:
        with self._lock:
            if state_str not in (self._CLOSED, self._OPEN, self._HALF_OPEN):
                raise ValueError(f"Unknown state {state_str!r}, valid states: closed, open, half-open")
            if state_str == self._OPEN:
                self._state_storage.opened_at = self._clock()
            self._state_storage.state = state_str
            self._sync()

    @property
    def current_state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half-open"``."""
        return self._sync()

    @property
    def excluded_exceptions(self) -> tuple:
        return tuple(self._excluded_exceptions)

    def add_excluded_exception(self, exception: Any) -> None:
        with self._lock:
            self._excluded_exceptions.append(_check_exclusion(exception))

    def add_excluded_exceptions(self, *exceptions: Any) -> None:
        for exc in exceptions:
            self.add_excluded_exception(exc)

    def remove_excluded_exception(self, exception: Any) -> None:
        with self._lock:
            self._excluded_exceptions.remove(exception)

    def is_system_error(self, exception: BaseException) -> bool:
        """Whether ``exception`` counts as a failure (it is not excluded)."""
        for exclusion in self._excluded_exceptions:
            if isinstance(exclusion, type):
                if isinstance(exception, exclusion):
                    return False
            elif exclusion(exception):
                return False
        return True

    @property
    def listeners(self) -> tuple:
        return tuple(self._listeners)

    def add_listener(self, listener: CircuitBreakerListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def add_listeners(self, *listeners: CircuitBreakerListener) -> None:
        for listener in listeners:
            self.add_listener(listener)

    def remove_listener(self, listener: CircuitBreakerListener) -> None:
        with self._lock:
            self._listeners.remove(listener)

    @property
    def name(self) -> Optional[str]:
        return self._name

    @name.setter
    def name(self, name: str) -> None:
        self._name = name

    # ----- control ------------------------------------------------------------------------------

    def open(self) -> bool:
        """Opens now for ``reset_timeout``; returns ``throw_new_error_on_trip``."""
        with self._lock:
            self._state_storage.opened_at = self._clock()
            self._state_storage.state = self._OPEN
            self._sync()
            return self._throw_new_error_on_trip

    def half_open(self) -> None:
        """Half-open now: the next call is a trial."""
        with self._lock:
            self._state_storage.state = self._HALF_OPEN
            self._sync()

    def close(self) -> None:
        """Closed now."""
        with self._lock:
            self._state_storage.reset_success_counter()
            self._state_storage.state = self._CLOSED
            self._sync()

    # ----- calls --------------------------------------------------------------------------------

    def _admit(self, func: Any, args: Any, kwargs: Any) -> Any:
        self._sync()
        permit = self._core.try_acquire()
        if permit is None:
            # The core's clock is coarse (1 ms): at the boundary, pybreaker's rule (the stored
            # opened_at plus reset_timeout) decides.
            with self._lock:
                if self._sync() == self._OPEN and self._timeout_elapsed():
                    self._core.transition_to_half_open()
                    permit = self._core.try_acquire()
            if permit is None:
                raise self._rejected()
        self._sync()  # an open breaker whose timeout elapsed is half-open now
        if self._listeners:
            with self._lock:
                for listener in self._listeners:
                    listener.before_call(self, func, *args, **kwargs)
        return permit

    def _succeeded(self, permit: Any) -> None:
        with self._lock:
            storage = self._state_storage
            storage.reset_counter()
            if self._state_name == self._HALF_OPEN:  # noqa: SIM102
                storage.increment_success_counter()
            permit.success()
            self._sync()
            for listener in self._listeners:
                listener.success(self)

    def _failed(self, permit: Any, exc: BaseException) -> bool:
        """Records ``exc``; True when this call tripped the breaker open."""
        if not self.is_system_error(exc):
            self._succeeded(permit)
            return False
        with self._lock:
            if self._state_name == self._OPEN:
                # Admitted before the breaker tripped, reported after: the core records it as
                # late, and the consecutive count stops at fail_max.
                permit.failure()
                return False
            self._state_storage.increment_counter()
            for listener in self._listeners:
                listener.failure(self, exc)
            before = self._state_name
            permit.failure()
            return self._sync() == self._OPEN and before != self._OPEN

    def _raise_trip(self, before: str, exc: BaseException) -> None:
        if self._throw_new_error_on_trip:
            if before == self._HALF_OPEN:
                msg = "Trial call failed, circuit breaker opened"
            else:
                msg = "Failures threshold reached, circuit breaker opened"
            raise self._tripped(msg, exc)

    def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Calls ``func(*args, **kwargs)`` through the breaker. A generator it returns is
        guarded while it is iterated."""
        permit = self._admit(func, args, kwargs)
        before = self._state_name
        try:
            ret = func(*args, **kwargs)
        except BaseException as e:
            if not isinstance(e, self._COUNTED):
                permit.ignore()
                raise
            if self._failed(permit, e):
                self._raise_trip(before, e)
            raise
        if isinstance(ret, types.GeneratorType):
            return self._generator_call(permit, before, ret)
        self._succeeded(permit)
        return ret

    def _generator_call(self, permit: Any, before: str, gen: Any) -> Any:
        try:
            result = yield from gen  # send(), throw() and close() reach the generator
        except GeneratorExit:
            permit.ignore()  # closed before the end: nothing to judge
            raise
        except BaseException as e:
            if self._failed(permit, e):
                self._raise_trip(before, e)
            raise
        self._succeeded(permit)
        return result

    def call_generator(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Iterates the generator ``func(*args, **kwargs)`` through the breaker."""
        return self.call(func, *args, **kwargs)

    @contextlib.contextmanager
    def calling(self) -> Any:
        """``with breaker.calling():`` runs the block through the breaker."""

        def _wrapper() -> Any:
            yield

        yield from self.call(_wrapper)

    def call_async(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """pybreaker's Tornado coroutine support is not provided: use ``breakerbox_rs.CircuitBreaker``
        (``async def`` functions, ``call_async``) for asyncio."""
        raise NotImplementedError(
            "Tornado coroutines are not supported; for asyncio use breakerbox_rs.CircuitBreaker"
        )

    def __call__(self, *call_args: Any, **call_kwargs: Any) -> Any:
        """The decorator: ``@breaker`` or ``@breaker()``."""
        if call_kwargs.pop("__pybreaker_call_async", False) and not HAS_TORNADO_SUPPORT:
            raise ImportError("No module named tornado")

        def _outer_wrapper(func: Callable[..., Any]) -> Callable[..., Any]:
            import functools

            @functools.wraps(func)
            def _inner_wrapper(*args: Any, **kwargs: Any) -> Any:
                return self.call(func, *args, **kwargs)

            return _inner_wrapper

        if call_args:
            return _outer_wrapper(*call_args)
        return _outer_wrapper

    # ----- breakerbox extras --------------------------------------------------------------------

    def metrics(self) -> Any:
        """The core's metrics snapshot (see ``breakerbox_rs.CircuitBreaker.metrics``)."""
        return self._core.metrics()

    def prometheus(self) -> str:
        """The core's metrics in the Prometheus text format."""
        return self._core.prometheus()

    def __str__(self) -> str:
        return self._name or "unnamed_CircuitBreaker"
