"""Exceptions raised by breakerbox (the native module raises these classes)."""

from typing import Optional

__all__ = ["CircuitBreakerError", "ConfigError"]


class CircuitBreakerError(Exception):
    """A call was not admitted: the breaker is open, forced open, or half-open with every
    trial permit taken. The guarded function did not run.

    Attributes:
        breaker: the breaker's name.
        state: the state that rejected the call (``"open"``, ``"half_open"``, ``"forced_open"``).
        retry_after: seconds until trial calls are admitted (``None`` when unknown: forced
            open, or half-open and full).

    (Built by the core as ``CircuitBreakerError(breaker, state, retry_after)`` with the C
    constructor, and the message made only when printed: a rejection stays cheap.)
    """

    @property
    def breaker(self) -> str:
        return self.args[0]

    @property
    def state(self) -> str:
        return self.args[1]

    @property
    def retry_after(self) -> Optional[float]:
        return self.args[2] if len(self.args) > 2 else None

    def __str__(self) -> str:
        if len(self.args) < 3:
            return super().__str__()
        name, state, retry = self.args[:3]
        if state == "half_open":
            return f"{name}: circuit breaker is half-open and every trial permit is taken"
        if state == "forced_open":
            return f"{name}: circuit breaker is forced open"
        if retry is not None:
            return f"{name}: circuit breaker is {state}; retry after {retry:.3f}s"
        return f"{name}: circuit breaker is {state}"


class ConfigError(ValueError):
    """An invalid setting; ``field`` names it (as the keyword argument is spelled)."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field
