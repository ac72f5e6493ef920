"""A middleware around all routes: every response with status >= 400 is a failure; when the
breaker is open every route answers 503 "Retry after N secs" without running.

    python python/examples/middleware.py

Starts the app on 127.0.0.1, sends requests until the breaker opens, prints the answers, and
exits (~1 s).
"""

import httpx
from fastapi import FastAPI, HTTPException

from breakerbox_rs import CircuitBreaker
from breakerbox_rs.asgi import BreakerMiddleware

from _serve import serve

breaker = CircuitBreaker(name="app", failure_threshold=3, recovery_timeout=30)
app = FastAPI()
app.add_middleware(BreakerMiddleware, breaker=breaker, is_failure=lambda status: status >= 400)


@app.get("/ok")
async def ok():
    return {"ok": True}


@app.get("/fail")
async def fail():
    raise HTTPException(status_code=500, detail="something broke")


def main():
    with serve(app) as url, httpx.Client(base_url=url) as client:
        plan = ["/ok", "/fail", "/fail", "/fail", "/ok", "/fail"]
        statuses = []
        for path in plan:
            r = client.get(path)
            statuses.append(r.status_code)
            extra = f" Retry-After={r.headers['retry-after']}" if "retry-after" in r.headers else ""
            print(f"GET {path:<6} {r.status_code} state={r.headers['x-circuit-breaker-state']}{extra} {r.json()}")
        assert statuses == [200, 500, 500, 500, 503, 503], statuses
        assert r.json()["detail"] == "Circuit breaker open. Retry after 30 secs"


if __name__ == "__main__":
    main()
