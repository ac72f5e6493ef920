"""An invocation timeout that counts as a failure, and a monitor that alerts when the breaker
opens and when it closes again.

    python python/examples/timeout_monitor.py

Calls a slow async dependency through a breaker with `call_timeout=0.1`: calls past 100 ms are
cancelled and count as failures; after three the breaker opens and the monitor alerts; once
the dependency is fast again, the trial call after the open wait closes it (alert again).
Exits after ~1 s.
"""

import asyncio
import time

from breakerbox_rs import CircuitBreaker, CircuitBreakerError

alerts = []


def monitor(event):
    """The alerting hook: runs on every state transition (keep it quick; hand off to a queue)."""
    if event["to_state"] == "open":
        msg = f"ALERT: breaker {event['breaker']!r} OPEN ({event['description']}); retry in {event['open_wait']:.1f}s"
    elif event["to_state"] == "closed":
        msg = f"RESOLVED: breaker {event['breaker']!r} closed ({event['description']})"
    else:
        msg = f"info: breaker {event['breaker']!r} {event['from_state']} -> {event['to_state']}"
    alerts.append(msg)
    print(msg)


breaker = CircuitBreaker(name="slow-service", failure_threshold=3, recovery_timeout=0.3, call_timeout=0.1)
breaker.on_event(monitor, kinds=["transition"])
latency = {"s": 0.5}


@breaker
async def call_service(i: int) -> str:
    await asyncio.sleep(latency["s"])
    return f"answer {i}"


async def main():
    t0 = time.monotonic()
    for i in range(5):
        try:
            print(f"call {i}: {await call_service(i)}")
        except asyncio.TimeoutError:
            print(f"call {i}: timed out after 100 ms (a failure)")
        except CircuitBreakerError as e:
            print(f"call {i}: rejected, retry after {e.retry_after:.2f}s")
    latency["s"] = 0.0
    await asyncio.sleep(0.35)  # the open wait passes
    print(f"call 5: {await call_service(5)}")
    m = breaker.metrics()
    print(f"metrics: failures={m['failures']} rejected={m['rejected']} opened={m['times_opened']} "
          f"state={m['state']} ({time.monotonic() - t0:.1f}s)")
    assert m["failures"] == 3 and m["rejected"] == 2 and m["state"] == "closed"
    assert [a.split(":")[0] for a in alerts] == ["ALERT", "info", "RESOLVED"], alerts


if __name__ == "__main__":
    asyncio.run(main())
