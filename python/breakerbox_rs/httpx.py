"""An httpx transport that guards outbound requests, one breaker per host (or one for all).

    import httpx
    from breakerbox_rs import Registry
    from breakerbox_rs.httpx import BreakerTransport, AsyncBreakerTransport

    client = httpx.Client(transport=BreakerTransport(registry=Registry(failure_threshold=5)))
    aclient = httpx.AsyncClient(transport=AsyncBreakerTransport(breaker=my_breaker))

A rejected request raises ``CircuitBreakerError`` without touching the network. A response whose
status ``is_failure(status)`` (default ``>= 500``) is a failure, and so is a transport error
(``httpx.TransportError``: connect errors, timeouts), which is re-raised; a cancelled request
records nothing.
"""

import asyncio
from typing import Any, Callable, Optional

import httpx

from . import CircuitBreaker, Registry

__all__ = ["BreakerTransport", "AsyncBreakerTransport"]


def _default_failure(status: int) -> bool:
    return status >= 500


def _host(request: httpx.Request) -> str:
    url = request.url
    return f"{url.host}:{url.port}" if url.port else url.host


class _Base:
    def __init__(
        self,
        breaker: Optional[CircuitBreaker],
        registry: Optional[Registry],
        key: Optional[Callable[[httpx.Request], str]],
        is_failure: Callable[[int], bool],
    ) -> None:
        if (breaker is None) == (registry is None):
            raise TypeError("give either `breaker` or `registry`")
        self.breaker = breaker
        self.registry = registry
        self.key = key or _host
        self.is_failure = is_failure

    def _breaker_for(self, request: httpx.Request) -> CircuitBreaker:
        if self.breaker is not None:
            return self.breaker
        return self.registry.get(self.key(request))  # type: ignore[union-attr]


class BreakerTransport(_Base, httpx.BaseTransport):
    """Wraps a sync transport (default ``httpx.HTTPTransport()``); see the module doc."""

    def __init__(
        self,
        transport: Optional[httpx.BaseTransport] = None,
        *,
        breaker: Optional[CircuitBreaker] = None,
        registry: Optional[Registry] = None,
        key: Optional[Callable[[httpx.Request], str]] = None,
        is_failure: Callable[[int], bool] = _default_failure,
    ) -> None:
        super().__init__(breaker, registry, key, is_failure)
        self.transport = transport or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        permit = self._breaker_for(request).acquire()
        try:
            response = self.transport.handle_request(request)
        except httpx.TransportError:
            permit.failure()
            raise
        except BaseException as e:
            permit.exception(e)
            raise
        if self.is_failure(response.status_code):
            permit.failure()
        else:
            permit.success()
        return response

    def close(self) -> None:
        self.transport.close()


class AsyncBreakerTransport(_Base, httpx.AsyncBaseTransport):
    """Wraps an async transport (default ``httpx.AsyncHTTPTransport()``); see the module doc."""

    def __init__(
        self,
        transport: Optional[httpx.AsyncBaseTransport] = None,
        *,
        breaker: Optional[CircuitBreaker] = None,
        registry: Optional[Registry] = None,
        key: Optional[Callable[[httpx.Request], str]] = None,
        is_failure: Callable[[int], bool] = _default_failure,
    ) -> None:
        super().__init__(breaker, registry, key, is_failure)
        self.transport = transport or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        permit = self._breaker_for(request).acquire()
        try:
            response = await self.transport.handle_async_request(request)
        except asyncio.CancelledError:
            permit.ignore()
            raise
        except httpx.TransportError:
            permit.failure()
            raise
        except BaseException as e:
            permit.exception(e)
            raise
        if self.is_failure(response.status_code):
            permit.failure()
        else:
            permit.success()
        return response

    async def aclose(self) -> None:
        await self.transport.aclose()
