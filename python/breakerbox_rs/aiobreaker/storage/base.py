"""The storage interface (``aiobreaker.storage.base``)."""

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any, Optional


class CircuitBreakerStorage(ABC):
    """Where a breaker keeps its state, failure counter and opening time."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    @abstractmethod
    def state(self) -> Any: ...

    @state.setter
    @abstractmethod
    def state(self, state: Any) -> None: ...

    @abstractmethod
    def increment_counter(self) -> None: ...

    @abstractmethod
    def reset_counter(self) -> None: ...

    @property
    @abstractmethod
    def counter(self) -> int: ...

    @property
    @abstractmethod
    def opened_at(self) -> Optional[datetime]: ...

    @opened_at.setter
    @abstractmethod
    def opened_at(self, date_time: datetime) -> None: ...

    # Not in aiobreaker's interface (it has no success threshold): no-ops by default.
    def increment_success_counter(self) -> None:
        pass

    def reset_success_counter(self) -> None:
        pass

    @property
    def success_counter(self) -> int:
        return 0
