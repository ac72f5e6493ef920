"""The `circuitbreaker` decorator on a `requests` call, in breakerbox: failure threshold 5,
recovery timeout 60 s, an expected exception, and a FastAPI endpoint answering 503 with JSON
when the breaker is open.

    python python/examples/decorator.py

Starts a failing upstream and the app on 127.0.0.1, calls the endpoint until the breaker
opens, prints each answer, and exits (~1 s).
"""

import httpx
import requests
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from breakerbox_rs import CircuitBreaker, CircuitBreakerError

from _serve import serve

upstream = FastAPI()


@upstream.get("/quote")
async def quote():
    return JSONResponse({"error": "maintenance"}, status_code=500)


UPSTREAM = {"url": ""}


class UpstreamError(Exception):
    """The upstream failed: the only exception the breaker counts."""


@CircuitBreaker(name="quotes", failure_threshold=5, recovery_timeout=60, expected_exception=UpstreamError)
def fetch_quote() -> dict:
    try:
        r = requests.get(UPSTREAM["url"] + "/quote", timeout=2)
        r.raise_for_status()
    except requests.RequestException as e:
        raise UpstreamError(str(e)) from e
    return r.json()


app = FastAPI()


@app.get("/quote")
def quote_endpoint():
    try:
        return fetch_quote()
    except CircuitBreakerError as e:
        return JSONResponse(
            {"error": "Service temporarily unavailable", "state": e.state, "retry_after": round(e.retry_after or 0)},
            status_code=503,
        )
    except UpstreamError as e:
        return JSONResponse({"error": f"upstream failed: {e}"}, status_code=502)


def main():
    with serve(upstream) as up, serve(app) as url, httpx.Client(base_url=url) as client:
        UPSTREAM["url"] = up
        statuses = []
        for i in range(7):
            r = client.get("/quote")
            statuses.append(r.status_code)
            print(f"call {i + 1}: {r.status_code} {r.json()}")
        assert statuses == [502] * 5 + [503] * 2, statuses
        print("breaker:", fetch_quote.breaker.metrics()["state"], "after", fetch_quote.breaker.metrics()["failures"], "failures")


if __name__ == "__main__":
    main()
