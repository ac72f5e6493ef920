"""A proxy that guards its upstream: FastAPI forwards /api/* to an upstream through an httpx
client whose transport is a breaker; when the upstream fails, the breaker opens and the proxy
answers 503 at once (Retry-After, state header) instead of waiting on a dead upstream.

    python python/examples/proxy.py

Starts a flaky upstream and the proxy on 127.0.0.1, drives requests through the proxy while
the upstream goes down and comes back, prints what happens, and exits (~2 s).
"""

import math
import time

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from breakerbox_rs import CircuitBreaker, CircuitBreakerError
from breakerbox_rs.httpx import AsyncBreakerTransport

from _serve import serve

# --- the upstream: healthy until told otherwise ------------------------------------------------
upstream = FastAPI()
upstream.state.healthy = True


@upstream.get("/items/{item_id}")
async def item(item_id: int):
    if not upstream.state.healthy:
        return JSONResponse({"error": "upstream down"}, status_code=502)
    return {"id": item_id, "name": f"item {item_id}"}


# --- the proxy ---------------------------------------------------------------------------------
breaker = CircuitBreaker(name="upstream", failure_threshold=3, recovery_timeout=0.5)
breaker.on_event(lambda e: print(f"  [breaker] {e['from_state']} -> {e['to_state']}: {e['description']}"), kinds=["transition"])
proxy = FastAPI()


def make_client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, transport=AsyncBreakerTransport(breaker=breaker), timeout=2)


@proxy.api_route("/api/{path:path}", methods=["GET"])
async def forward(path: str, request: Request):
    try:
        r = await request.app.state.client.get("/" + path)
    except CircuitBreakerError as e:
        secs = max(1, math.ceil(e.retry_after or 1))
        return JSONResponse(
            {"error": "upstream unavailable", "retry_after": e.retry_after},
            status_code=503,
            headers={"Retry-After": str(secs), "X-Circuit-Breaker-State": e.state},
        )
    except httpx.TransportError as e:
        return JSONResponse({"error": f"upstream unreachable: {e}"}, status_code=502)
    return Response(r.content, status_code=r.status_code, media_type=r.headers.get("content-type"),
                    headers={"X-Circuit-Breaker-State": breaker.state})


def main():
    with serve(upstream) as upstream_url:
        proxy.state.client = make_client(upstream_url)
        with serve(proxy) as proxy_url, httpx.Client(base_url=proxy_url) as client:
            def hit(label):
                r = client.get("/api/items/7")
                print(f"{label:<28} {r.status_code} state={r.headers.get('x-circuit-breaker-state')} {r.text[:60]}")
                return r

            assert hit("upstream healthy").status_code == 200
            upstream.state.healthy = False
            statuses = [hit("upstream down").status_code for _ in range(5)]
            assert statuses == [502, 502, 502, 503, 503], statuses
            upstream.state.healthy = True
            time.sleep(0.6)  # the open wait (0.5 s) passes
            r = hit("upstream back (trial call)")
            assert r.status_code == 200 and breaker.state == "closed"
            m = breaker.metrics()
            print(f"metrics: calls={m['calls']} failures={m['failures']} rejected={m['rejected']}")


if __name__ == "__main__":
    main()
