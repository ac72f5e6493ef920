"""aiobreaker's ``CircuitBreaker`` on the breakerbox core (``aiobreaker.circuitbreaker``).

The same machinery as ``breakerbox_rs.pybreaker`` (aiobreaker is a fork of pybreaker for
asyncio), with aiobreaker's names: ``timeout_duration`` (a ``timedelta``), states as
``CircuitBreakerState`` members, ``call_async``, ``opens_at`` / ``time_until_open``, and only
``Exception`` counted (cancellation records nothing).
"""

import asyncio
import inspect
from datetime import datetime, timedelta, timezone
from functools import wraps
from typing import Any, Callable, Optional

from .. import pybreaker as _pb
from .state import CircuitBreakerError, CircuitBreakerState
from .storage.memory import CircuitMemoryStorage

__all__ = ["CircuitBreaker"]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)  # naive UTC, as aiobreaker


class CircuitBreaker(_pb.CircuitBreaker):
    """aiobreaker's ``CircuitBreaker(fail_max=5, timeout_duration=None, exclude=None,
    listeners=None, state_storage=None, name=None)``."""

    _CLOSED = CircuitBreakerState.CLOSED
    _OPEN = CircuitBreakerState.OPEN
    _HALF_OPEN = CircuitBreakerState.HALF_OPEN
    _TIMEOUT_NAME = "timeout_duration"
    _COUNTED = Exception

    def __init__(
        self,
        fail_max: int = 5,
        timeout_duration: Optional[timedelta] = None,
        exclude: Any = None,
        listeners: Any = None,
        state_storage: Any = None,
        name: Optional[str] = None,
    ) -> None:
        duration = timeout_duration if timeout_duration else timedelta(seconds=60)
        if not isinstance(duration, timedelta):
            raise TypeError(
                f"`timeout_duration` must be a datetime.timedelta, not {type(duration).__name__}"
            )
        self._timeout_duration = duration
        super().__init__(
            fail_max=fail_max,
            reset_timeout=duration.total_seconds(),
            exclude=exclude,
            listeners=listeners,
            state_storage=state_storage or CircuitMemoryStorage(CircuitBreakerState.CLOSED),
            name=name,
            throw_new_error_on_trip=True,
        )

    # ----- aiobreaker's names -------------------------------------------------------------------

    @staticmethod
    def _clock() -> datetime:
        return _utcnow()

    def _create_new_state(self, new_state: Any, prev_state: Any = None, notify: bool = False) -> Any:
        if not isinstance(new_state, CircuitBreakerState):
            raise ValueError(
                f"Unknown state {new_state!r}, valid states: "
                + ", ".join(s.name for s in CircuitBreakerState)
            )
        return new_state.value(self, prev_state=prev_state, notify=notify)

    def _rejected(self) -> BaseException:
        return CircuitBreakerError("Timeout not elapsed yet, circuit breaker still open", self.opens_at)

    def _tripped(self, msg: str, exc: BaseException) -> BaseException:
        err = CircuitBreakerError(msg + ".", self.opens_at)
        err.__cause__ = exc
        return err

    @property
    def timeout_duration(self) -> timedelta:
        return self._timeout_duration

    @timeout_duration.setter
    def timeout_duration(self, timeout: timedelta) -> None:
        if not isinstance(timeout, timedelta):
            raise TypeError(
                f"`timeout_duration` must be a datetime.timedelta, not {type(timeout).__name__}"
            )
        self._rebuild(reset_timeout=timeout.total_seconds())
        self._timeout_duration = timeout

    @property
    def opens_at(self) -> Optional[datetime]:
        """When trial calls are let through again (naive UTC), or ``None`` if already due."""
        opened_at = self._state_storage.opened_at
        if opened_at is None:
            return None
        at = opened_at + self._timeout_duration
        return None if at < _utcnow() else at

    @property
    def time_until_open(self) -> Optional[timedelta]:
        at = self.opens_at
        if at is None:
            return None
        left = at - _utcnow()
        return None if left < timedelta(0) else left

    async def sleep_until_open(self) -> None:
        left = self.time_until_open
        if left is not None:
            await asyncio.sleep(left.total_seconds())

    # ----- calls --------------------------------------------------------------------------------

    def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if getattr(func, "_ignore_on_call", False):
            return func(*args, **kwargs)  # already guarded by this decorator
        return super().call(func, *args, **kwargs)

    async def call_async(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Awaits ``func(*args, **kwargs)`` through the breaker."""
        if getattr(func, "_ignore_on_call", False):
            return await func(*args, **kwargs)
        permit = self._admit(func, args, kwargs)
        before = self._state_name
        try:
            ret = await func(*args, **kwargs)
        except BaseException as e:
            if not isinstance(e, Exception):
                permit.ignore()  # cancelled: nothing recorded, the trial slot goes back
                raise
            if self._failed(permit, e):
                self._raise_trip(before, e)
            raise
        self._succeeded(permit)
        return ret

    def __call__(self, *call_args: Any, ignore_on_call: bool = True) -> Any:  # type: ignore[override]
        """The decorator, for functions and ``async def`` functions: ``@breaker`` or
        ``@breaker()``."""

        def _outer_wrapper(func: Callable[..., Any]) -> Callable[..., Any]:
            @wraps(func)
            def _inner_wrapper(*args: Any, **kwargs: Any) -> Any:
                return self.call(func, *args, **kwargs)

            @wraps(func)
            async def _inner_wrapper_async(*args: Any, **kwargs: Any) -> Any:
                return await self.call_async(func, *args, **kwargs)

            wrapper: Any = _inner_wrapper_async if inspect.iscoroutinefunction(func) else _inner_wrapper
            wrapper._ignore_on_call = ignore_on_call
            return wrapper

        if len(call_args) == 1 and inspect.isfunction(call_args[0]):
            return _outer_wrapper(*call_args)
        if not call_args:
            return _outer_wrapper
        raise TypeError("Decorator does not accept positional arguments.")
