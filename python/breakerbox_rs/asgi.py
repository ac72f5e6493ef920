"""ASGI middleware (FastAPI, Starlette, any ASGI app): a breaker around the whole app, per
route, or per host.

    from breakerbox_rs.asgi import BreakerMiddleware
    app.add_middleware(BreakerMiddleware, breaker=CircuitBreaker(failure_threshold=5))
    app.add_middleware(BreakerMiddleware, registry=Registry(failure_threshold=5), key="route")

A rejected request gets ``503`` with ``Retry-After`` (whole seconds, rounded up) and a JSON body
``{"detail": "Circuit breaker open. Retry after N secs", ...}``; every response carries, in
``X-Circuit-Breaker-State``, the breaker's state once the response's outcome is recorded. A
response whose status ``is_failure(status)`` (default ``>= 500``) is a failure, as is an
exception raised by the app before it responds (re-raised); the outcome is recorded when the
response starts; a cancelled request (client gone) records nothing.
"""

import asyncio
import json
import math
from typing import Any, Callable, List, Optional, Tuple, Union

from . import CircuitBreaker, CircuitBreakerError, Registry

__all__ = ["BreakerMiddleware", "rejection_handler", "route_key", "host_key"]


def host_key(scope: Any) -> str:
    """The request's ``Host`` header (per-host breakers)."""
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return value.decode("latin-1")
    server = scope.get("server")
    return f"{server[0]}:{server[1]}" if server else "<unknown>"


def route_key(scope: Any) -> str:
    """The path template of the route that will serve the request (``/items/{id}``), from the
    Starlette/FastAPI app in ``scope["app"]``; ``"<unmatched>"`` when none matches. Template
    keys keep the number of breakers bounded by the number of routes."""
    app = scope.get("app")
    routes = getattr(app, "routes", None) or getattr(getattr(app, "router", None), "routes", ())
    try:
        from starlette.routing import Match
    except ImportError:  # pragma: no cover - plain ASGI without Starlette
        return scope.get("path", "<unmatched>")
    for route in routes:
        try:
            match, _ = route.matches(scope)
        except Exception:
            continue
        if match == Match.FULL:
            return getattr(route, "path", None) or getattr(route, "path_format", "<route>")
    return "<unmatched>"


_KEYS = {"route": route_key, "host": host_key}


def _default_failure(status: int) -> bool:
    return status >= 500


def _rejection(e: CircuitBreakerError, header: Optional[bytes]) -> Tuple[List[Tuple[bytes, bytes]], bytes]:
    """Headers and JSON body of the 503 for a rejection."""
    secs = None if e.retry_after is None else max(1, math.ceil(e.retry_after))
    detail = (
        f"Circuit breaker open. Retry after {secs} secs"
        if secs is not None
        else f"Circuit breaker {e.state}."
    )
    body = json.dumps(
        {"detail": detail, "breaker": e.breaker, "state": e.state, "retry_after": e.retry_after}
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if secs is not None:
        headers.append((b"retry-after", str(secs).encode()))
    if header is not None:
        headers.append((header, e.state.encode()))
    return headers, body


def rejection_handler(state_header: Optional[str] = "X-Circuit-Breaker-State") -> Callable[..., Any]:
    """A Starlette/FastAPI exception handler turning a ``CircuitBreakerError`` raised by an
    endpoint (a route guarded with ``@breaker``) into the middleware's 503:

        app.add_exception_handler(CircuitBreakerError, rejection_handler())
    """
    from starlette.responses import Response

    header = state_header.lower().encode("latin-1") if state_header else None

    async def handle(request: Any, exc: CircuitBreakerError) -> Any:
        headers, body = _rejection(exc, header)
        return Response(
            body,
            status_code=503,
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in headers if k != b"content-length"},
        )

    return handle


class BreakerMiddleware:
    """Guards an ASGI app with a breaker.

    Args:
        app: the ASGI app.
        breaker: one breaker for the whole app, or
        registry: a ``Registry`` with ``key``: ``"route"`` (per route template), ``"host"``
            (per ``Host`` header), or a callable ``scope -> str``.
        is_failure: which response statuses are failures (default ``status >= 500``).
        state_header: the response header carrying the breaker's state (``None``: none).
        exclude_paths: paths that are never guarded (health checks, metrics).
    """

    def __init__(
        self,
        app: Any,
        breaker: Optional[CircuitBreaker] = None,
        registry: Optional[Registry] = None,
        key: Union[str, Callable[[Any], str], None] = None,
        is_failure: Callable[[int], bool] = _default_failure,
        state_header: Optional[str] = "X-Circuit-Breaker-State",
        exclude_paths: Any = (),
    ) -> None:
        if (breaker is None) == (registry is None):
            raise TypeError("give either `breaker` or `registry`")
        if registry is not None:
            if key is None:
                raise TypeError("`registry` needs `key`: 'route', 'host' or a callable")
            key = _KEYS.get(key, key) if isinstance(key, str) else key
            if not callable(key):
                raise ValueError(f"invalid `key`: {key!r} (use 'route', 'host' or a callable)")
        self.app = app
        self.breaker = breaker
        self.registry = registry
        self.key = key
        self.is_failure = is_failure
        self.header = state_header.lower().encode("latin-1") if state_header else None
        self.exclude_paths = frozenset(exclude_paths)

    def _breaker(self, scope: Any) -> CircuitBreaker:
        if self.breaker is not None:
            return self.breaker
        return self.registry.get(self.key(scope))  # type: ignore[union-attr,misc]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exclude_paths:
            await self.app(scope, receive, send)
            return
        breaker = self._breaker(scope)
        try:
            permit = breaker.acquire()
        except CircuitBreakerError as e:
            await self._reject(send, e)
            return
        header = self.header
        is_failure = self.is_failure

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                # The outcome is known from the status: report it now, so that the state
                # header tells the state after this response (and a slow call is one whose
                # headers are slow to come).
                if permit.pending:
                    if is_failure(message["status"]):
                        permit.failure()
                    else:
                        permit.success()
                if header is not None:
                    headers = list(message.get("headers", ()))
                    headers.append((header, breaker.state.encode()))
                    message = dict(message, headers=headers)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except asyncio.CancelledError:
            if permit.pending:
                permit.ignore()
            raise
        except BaseException as e:
            if permit.pending:
                permit.exception(e)
            raise
        if permit.pending:
            permit.success()  # the app sent no response start; it did not fail either

    async def _reject(self, send: Any, e: CircuitBreakerError) -> None:
        headers, body = _rejection(e, self.header)
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
