"""aiobreaker's listener (``aiobreaker.listener``): override the methods you need."""

from typing import Any, Callable


class CircuitBreakerListener:
    def before_call(self, breaker: Any, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Before ``breaker`` calls ``func``."""

    def failure(self, breaker: Any, exception: Exception) -> None:
        """A call through ``breaker`` failed."""

    def success(self, breaker: Any) -> None:
        """A call through ``breaker`` succeeded."""

    def state_change(self, breaker: Any, old: Any, new: Any) -> None:
        """``breaker`` went from state ``old`` to ``new`` (state objects with ``.state``)."""
