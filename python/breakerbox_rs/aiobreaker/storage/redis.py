"""aiobreaker's Redis storage is not provided (``aiobreaker.storage.redis``): the name exists so
that imports keep working; creating one raises ``NotImplementedError``."""

from typing import Any


class CircuitRedisStorage:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(
            "CircuitRedisStorage is not provided by breakerbox_rs.aiobreaker; use "
            "CircuitMemoryStorage or a CircuitBreakerStorage subclass of your own"
        )
