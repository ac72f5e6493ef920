"""A real uvicorn server on 127.0.0.1, hit with httpx until the breaker opens; per-route and
per-host breakers; the httpx transport."""

import asyncio

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.responses import PlainTextResponse

from breakerbox_rs import CLOSED, OPEN, CircuitBreaker, CircuitBreakerError, Registry
from breakerbox_rs.asgi import BreakerMiddleware, host_key, rejection_handler, route_key
from breakerbox_rs.httpx import AsyncBreakerTransport, BreakerTransport

from conftest import serve


def flaky_app(**middleware):
    app = FastAPI()
    app.state.fail = True

    @app.get("/items/{item_id}")
    async def item(item_id: int):
        if app.state.fail:
            raise HTTPException(status_code=500, detail="upstream down")
        return {"id": item_id}

    @app.get("/health")
    async def health():
        return {"ok": True}

    @app.get("/missing")
    async def missing():
        raise HTTPException(status_code=404)

    @app.get("/boom")
    async def boom():
        raise RuntimeError("boom")

    app.add_middleware(BreakerMiddleware, **middleware)
    return app


def test_uvicorn_server_opens_after_failures_and_answers_503():
    breaker = CircuitBreaker(name="app", failure_threshold=5, recovery_timeout=60)
    app = flaky_app(breaker=breaker)
    with serve(app) as url, httpx.Client(base_url=url) as client:
        statuses = []
        states = []
        for _ in range(20):
            r = client.get("/items/1")
            statuses.append(r.status_code)
            states.append(r.headers["x-circuit-breaker-state"])
            if r.status_code == 503:
                break
        assert states == [CLOSED] * 4 + [OPEN] * 2, "the fifth failure's answer says open"
        assert statuses == [500] * 5 + [503], "five failures open it; the sixth is rejected"
        assert r.headers["retry-after"] == "60"
        assert r.headers["x-circuit-breaker-state"] == OPEN
        body = r.json()
        assert body["detail"] == "Circuit breaker open. Retry after 60 secs"
        assert body["state"] == OPEN and body["breaker"] == "app"
        assert breaker.metrics()["failures"] == 5 and breaker.metrics()["rejected"] == 1
        assert client.get("/health").status_code == 503, "the whole app is guarded"
        breaker.reset()
        app.state.fail = False
        r = client.get("/items/2")
        assert r.status_code == 200 and r.json() == {"id": 2}
        assert r.headers["x-circuit-breaker-state"] == CLOSED


def test_status_rule_and_exceptions():
    breaker = CircuitBreaker(failure_threshold=2)
    app = flaky_app(breaker=breaker, is_failure=lambda s: s >= 400, exclude_paths={"/health"})
    with serve(app) as url, httpx.Client(base_url=url) as client:
        assert client.get("/missing").status_code == 404
        assert breaker.metrics()["failures"] == 1, "status >= 400 is a failure here"
        assert client.get("/health").status_code == 200
        assert breaker.metrics()["calls"] == 1, "excluded paths are not guarded"
        r = client.get("/boom", headers={"connection": "close"})
        assert r.status_code == 500  # the app's exception: a failure, re-raised
        assert breaker.state == OPEN
        assert client.get("/health").status_code == 200
        assert client.get("/missing").status_code == 503


def test_per_route_breakers():
    registry = Registry(failure_threshold=3)
    app = flaky_app(registry=registry, key="route")
    with serve(app) as url, httpx.Client(base_url=url) as client:
        for i in range(3):
            assert client.get(f"/items/{i}").status_code == 500
        assert client.get("/items/99").status_code == 503, "one breaker for the route template"
        assert client.get("/health").status_code == 200, "other routes have their own"
        assert client.get("/nowhere").status_code == 404
        assert registry.get("/items/{item_id}").state == OPEN
        assert registry.get("/health").state == CLOSED
        assert "<unmatched>" in registry.names()


def test_per_host_breakers():
    registry = Registry(failure_threshold=2)
    app = flaky_app(registry=registry, key="host")
    with serve(app) as url, httpx.Client(base_url=url) as client:
        for _ in range(2):
            client.get("/items/1", headers={"host": "a.example"})
        assert client.get("/health", headers={"host": "a.example"}).status_code == 503
        assert client.get("/health", headers={"host": "b.example"}).status_code == 200
        assert sorted(registry.names()) == ["a.example", "b.example"]


def test_middleware_arguments():
    with pytest.raises(TypeError):
        BreakerMiddleware(None)
    with pytest.raises(TypeError):
        BreakerMiddleware(None, registry=Registry())
    assert host_key({"headers": [(b"host", b"x:1")]}) == "x:1"
    assert route_key({"type": "http", "path": "/"}) == "<unmatched>"


def upstream():
    app = FastAPI()
    app.state.status = 503

    @app.get("/")
    async def root():
        return PlainTextResponse("x", status_code=app.state.status)

    return app


def test_httpx_transport_per_host():
    app = upstream()
    registry = Registry(failure_threshold=2)
    with serve(app) as url, httpx.Client(transport=BreakerTransport(registry=registry)) as client:
        assert client.get(url).status_code == 503
        assert client.get(url).status_code == 503
        with pytest.raises(CircuitBreakerError):
            client.get(url)
        (name,) = registry.names()
        assert name == url.removeprefix("http://")
        # a refused connection is a failure too
        dead = CircuitBreaker(failure_threshold=1)
        with httpx.Client(transport=BreakerTransport(breaker=dead)) as c2:
            with pytest.raises(httpx.ConnectError):
                c2.get("http://127.0.0.1:9/")
            assert dead.state == OPEN


async def test_async_httpx_transport_and_cancellation():
    app = upstream()
    app.state.status = 200
    breaker = CircuitBreaker(failure_threshold=1)
    with serve(app) as url:
        async with httpx.AsyncClient(transport=AsyncBreakerTransport(breaker=breaker)) as client:
            assert (await client.get(url)).status_code == 200
            app.state.status = 500
            assert (await client.get(url)).status_code == 500
            assert breaker.state == OPEN
            with pytest.raises(CircuitBreakerError):
                await client.get(url)


def test_decorated_route_with_the_rejection_handler():
    # Per route without the middleware: the endpoint itself is decorated.
    app = FastAPI()
    app.add_exception_handler(CircuitBreakerError, rejection_handler())
    breaker = CircuitBreaker(name="orders", failure_threshold=2, recovery_timeout=30)

    @app.get("/orders/{order_id}")
    @breaker
    async def order(order_id: int):
        raise HTTPException(status_code=502)

    @app.get("/other")
    async def other():
        return {"ok": True}

    with serve(app) as url, httpx.Client(base_url=url) as client:
        assert [client.get("/orders/1").status_code for _ in range(2)] == [502, 502]
        r = client.get("/orders/2")
        assert r.status_code == 503
        assert r.headers["retry-after"] == "30"
        assert r.headers["x-circuit-breaker-state"] == OPEN
        assert r.json()["detail"] == "Circuit breaker open. Retry after 30 secs"
        assert client.get("/other").status_code == 200
