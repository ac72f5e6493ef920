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
    """

    def __init__(self, message: str, breaker: str, state: str, retry_after: Optional[float]):
        super().__init__(message)
        self.breaker = breaker
        self.state = state
        self.retry_after = retry_after


class ConfigError(ValueError):
    """An invalid setting; ``field`` names it (as the keyword argument is spelled)."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field
