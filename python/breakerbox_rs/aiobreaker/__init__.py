"""aiobreaker's API on the breakerbox core: ``import breakerbox_rs.aiobreaker as aiobreaker``.

``CircuitBreaker``, ``CircuitBreakerListener``, ``CircuitBreakerError``,
``CircuitBreakerState`` and the ``storage`` package (``CircuitMemoryStorage``), with
aiobreaker's behaviour; see ``breakerbox_rs.aiobreaker.circuitbreaker`` and the package
README for the differences.
"""

from . import storage
from .circuitbreaker import CircuitBreaker
from .listener import CircuitBreakerListener
from .state import CircuitBreakerError, CircuitBreakerState

__all__ = ["CircuitBreaker", "CircuitBreakerListener", "CircuitBreakerError", "CircuitBreakerState", "storage"]

# Submodules, for code (and test suites) importing aiobreaker's module paths.
_SUBMODULES = ("circuitbreaker", "listener", "state", "storage", "storage.base", "storage.memory", "storage.redis")
