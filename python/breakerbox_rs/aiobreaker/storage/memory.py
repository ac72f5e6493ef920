"""In-memory storage (``aiobreaker.storage.memory``), the default."""

from datetime import datetime
from typing import Any, Optional

from .base import CircuitBreakerStorage


class CircuitMemoryStorage(CircuitBreakerStorage):
    def __init__(self, state: Any) -> None:
        super().__init__("memory")
        self._fail_counter = 0
        self._opened_at: Optional[datetime] = None
        self._state = state

    @property
    def state(self) -> Any:
        return self._state

    @state.setter
    def state(self, state: Any) -> None:
        self._state = state

    def increment_counter(self) -> None:
        self._fail_counter += 1

    def reset_counter(self) -> None:
        self._fail_counter = 0

    @property
    def counter(self) -> int:
        return self._fail_counter

    @property
    def opened_at(self) -> Optional[datetime]:
        return self._opened_at

    @opened_at.setter
    def opened_at(self, date_time: datetime) -> None:
        self._opened_at = date_time
