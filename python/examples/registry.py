"""A thread-safe breaker per downstream service from a Registry, with metrics, fallbacks and
an X-Circuit-Breaker-State header: `payment` fails fast (no fallback), `inventory` falls back
to a cached answer; /metrics serves JSON and /metrics/prometheus the Prometheus text; eight
client threads hit the app at once.

    python python/examples/registry.py

Starts the app on 127.0.0.1, runs the clients, prints the metrics, and exits (~2 s).
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from breakerbox_rs import CircuitBreakerError, Registry

from _serve import serve


class DownstreamError(Exception):
    pass


registry = Registry(failure_rate_threshold=0.5, window_size=20, minimum_calls=10, recovery_timeout=30,
                    expected_exception=DownstreamError)
registry.configure("payment", failure_threshold=3, recovery_timeout=30, expected_exception=DownstreamError)
registry.configure("inventory", failure_rate_threshold=0.5, window_size=10, minimum_calls=4,
                   recovery_timeout=30, expected_exception=DownstreamError,
                   fallback=lambda item: {"item": item, "stock": "unknown (cached)", "fallback": True})

healthy = {"payment": False, "inventory": False}
lock = threading.Lock()
calls = {"payment": 0, "inventory": 0}


@registry.get("payment")
def charge(amount: int) -> dict:
    with lock:
        calls["payment"] += 1
    if not healthy["payment"]:
        raise DownstreamError("payment gateway timeout")
    return {"charged": amount}


@registry.get("inventory")
def stock(item: str) -> dict:
    with lock:
        calls["inventory"] += 1
    if not healthy["inventory"]:
        raise DownstreamError("inventory db down")
    return {"item": item, "stock": 3}


app = FastAPI()


def answer(name: str, body: dict, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status, headers={"X-Circuit-Breaker-State": registry.get(name).state})


@app.post("/pay/{amount}")
def pay(amount: int):
    try:
        return answer("payment", charge(amount))
    except CircuitBreakerError as e:
        return answer("payment", {"error": "payment unavailable", "retry_after": e.retry_after}, 503)
    except DownstreamError as e:
        return answer("payment", {"error": str(e)}, 502)


@app.get("/stock/{item}")
def get_stock(item: str):
    try:
        return answer("inventory", stock(item))
    except DownstreamError as e:
        return answer("inventory", {"error": str(e)}, 502)


@app.get("/metrics")
def metrics():
    return registry.metrics()


@app.get("/metrics/prometheus")
def prometheus():
    return PlainTextResponse(registry.prometheus())


def main():
    with serve(app) as url:
        def client(i):
            with httpx.Client(base_url=url) as c:
                return [c.post(f"/pay/{i}").status_code, c.get(f"/stock/widget{i}").status_code]

        with ThreadPoolExecutor(8) as pool:
            results = [s for r in pool.map(client, range(40)) for s in r]
        with httpx.Client(base_url=url) as c:
            r = c.get("/stock/widget")
            print("inventory answer while open:", r.status_code, r.headers["x-circuit-breaker-state"], r.json())
            assert r.json().get("fallback") is True
            ms = {m["name"]: m for m in c.get("/metrics").json()}
            for name, m in sorted(ms.items()):
                print(f"{name:<10} state={m['state']:<6} calls={m['calls']:<3} failures={m['failures']:<3} rejected={m['rejected']}")
            prom = c.get("/metrics/prometheus").text
            print("\n".join(line for line in prom.splitlines() if line.startswith("breakerbox_state") and line.endswith(" 1")))
        assert ms["payment"]["state"] == "open" and ms["payment"]["failures"] >= 3
        assert ms["inventory"]["state"] == "open"
        # Once open, the breakers stop the calls: most of the 40 never reached the downstreams
        # (calls admitted before the trip, racing it, still ran: their outcomes came late).
        print("downstream calls that ran:", calls)
        assert calls["payment"] < 40 and calls["inventory"] < 40, calls
        print("statuses:", {s: results.count(s) for s in sorted(set(results))})


if __name__ == "__main__":
    main()
