"""aiobreaker's states and error (``aiobreaker.state``)."""

import asyncio
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Optional

__all__ = [
    "CircuitBreakerError",
    "CircuitBreakerBaseState",
    "CircuitClosedState",
    "CircuitOpenState",
    "CircuitHalfOpenState",
    "CircuitBreakerState",
]


class CircuitBreakerError(Exception):
    """A call was not admitted, or it tripped the breaker. ``reopen_time`` is when trial calls
    are let through again (naive UTC, as aiobreaker; ``None`` when already due)."""

    def __init__(self, message: str, reopen_time: Optional[datetime]) -> None:
        super().__init__(message)
        self.message = message
        self.reopen_time = reopen_time

    @property
    def time_remaining(self) -> timedelta:
        if self.reopen_time is None:
            return timedelta(0)
        return self.reopen_time - datetime.utcnow()

    async def sleep_until_open(self) -> None:
        await asyncio.sleep(max(0.0, self.time_remaining.total_seconds()))


class CircuitBreakerBaseState:
    """A state object, as given to listeners; ``state`` is its ``CircuitBreakerState``."""

    def __init__(self, breaker: Any, state: "CircuitBreakerState") -> None:
        self._breaker = breaker
        self._state = state

    @property
    def state(self) -> "CircuitBreakerState":
        return self._state

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class CircuitClosedState(CircuitBreakerBaseState):
    def __init__(self, breaker: Any, prev_state: Any = None, notify: bool = False) -> None:
        super().__init__(breaker, CircuitBreakerState.CLOSED)


class CircuitOpenState(CircuitBreakerBaseState):
    def __init__(self, breaker: Any, prev_state: Any = None, notify: bool = False) -> None:
        super().__init__(breaker, CircuitBreakerState.OPEN)


class CircuitHalfOpenState(CircuitBreakerBaseState):
    def __init__(self, breaker: Any, prev_state: Any = None, notify: bool = False) -> None:
        super().__init__(breaker, CircuitBreakerState.HALF_OPEN)


class CircuitBreakerState(Enum):
    """The states; each member's value is its state class."""

    CLOSED = CircuitClosedState
    OPEN = CircuitOpenState
    HALF_OPEN = CircuitHalfOpenState
