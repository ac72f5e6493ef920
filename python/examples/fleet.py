"""Fleet mode: three breakers named `payments` (standing for three service instances, each
with its own fleet sync) agree through Redis. A trip on one opens the others; after the open
wait, one instance's trial (at most one in the whole fleet at a time) closes them all.

    python python/examples/fleet.py                          # starts its own redis-server
    python python/examples/fleet.py redis://127.0.0.1:6379   # or uses yours

Prints what happens and how long each step took, and exits (~1 s).
"""

import shutil
import socket
import subprocess
import sys
import time

from breakerbox_rs import CircuitBreaker, CircuitBreakerError, Fleet


def start_redis():
    """A throwaway redis-server on a free 127.0.0.1 port: (url, process)."""
    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("no redis-server on PATH: install it, or pass a Redis URL")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return f"redis://127.0.0.1:{port}", proc
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                sys.exit("redis-server did not start")
            time.sleep(0.01)


def wait_for(cond, bound=10.0):
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > bound:
            raise SystemExit("the fleet did not converge in time")
        time.sleep(0.001)
    return (time.monotonic() - start) * 1000


def main():
    url, proc = (sys.argv[1], None) if len(sys.argv) > 1 else start_redis()
    try:
        instances = {}
        syncs = []
        for name in ("a", "b", "c"):
            breaker = CircuitBreaker(name="payments", failure_threshold=3, recovery_timeout=0.3)
            fleet = Fleet(url, prefix="example", instance=name, sync_interval=0.02, fleet_trials=1,
                          on_event=lambda e, n=name: e["kind"] in ("applied", "trial_lease")
                          and print(f"  [{n}] fleet event: {e}"))
            syncs.append(fleet.attach(breaker))
            instances[name] = breaker

        a, others = instances["a"], [instances["b"], instances["c"]]
        time.sleep(0.1)  # let the syncs connect (not needed for correctness)
        for _ in range(3):
            try:
                a.call(lambda: 1 / 0)
            except ZeroDivisionError:
                pass
        print(f"a tripped: {a.state.upper()}")
        ms = wait_for(lambda: all(b.state == "open" for b in others))
        print(f"b and c OPEN {ms:.1f} ms later (sync interval 20 ms)")
        try:
            instances["b"].call(lambda: "never runs")
        except CircuitBreakerError as e:
            print(f"b rejects: {e}")

        time.sleep(0.3)  # the open wait
        start = time.monotonic()
        while True:  # callers on every instance ask; one holds the fleet's trial lease
            for name, b in instances.items():
                p = b.try_acquire()
                if p is not None:
                    p.success()
                    print(f"{name}'s trial succeeded: {b.state.upper()}")
                    break
            else:
                if time.monotonic() - start > 10:
                    raise SystemExit("no trial")
                time.sleep(0.001)
                continue
            break
        ms = wait_for(lambda: all(b.state == "closed" for b in instances.values()))
        print(f"all three CLOSED {ms:.1f} ms later")
        for s in syncs:
            s.stop()
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
