"""Per-call overhead of a circuit-breaker decorator: breakerbox vs pybreaker, circuitbreaker and
aiobreaker, each used as its documentation shows (a decorator on the function).

Overhead = time per call of the decorated no-op minus time per call of the bare no-op, measured
in the same loop; the best of several interleaved repeats of each is kept. Cases:

- closed: the call is admitted and succeeds;
- open: the call is rejected (each library raises its CircuitBreakerError; the loop catches it;
  the bare baseline raises nothing, so raising and catching is part of the rejection's cost);
- threads: the closed case, with the calls split over THREADS threads started together;
- asyncio: an ``async def`` no-op, awaited in a loop, closed and open.

Usage: python bench.py [--calls N] [--repeats R] [--threads T] [--rounds K] [--markdown FILE]
"""

import argparse
import asyncio
import datetime
import os
import platform
import statistics
import sys
import threading
import time

import aiobreaker
import circuitbreaker
import pybreaker

import breakerbox_rs

perf = time.perf_counter_ns


def noop():
    return None


async def anoop():
    return None


def fail():
    raise OSError("down")


async def afail():
    raise OSError("down")


# ----- the floor: what any Python-level decorator pays ---------------------------------------
# A pass-through wrapper (closed) and a wrapper that only raises (open): no breaker at all.


class _Rejected(Exception):
    pass


def floor(func):
    if asyncio.iscoroutinefunction(func):

        async def passthrough(*args, **kwargs):
            return await func(*args, **kwargs)

        return passthrough

    def passthrough(*args, **kwargs):
        return func(*args, **kwargs)

    return passthrough


def floor_open(func):
    if asyncio.iscoroutinefunction(func):

        async def reject(*args, **kwargs):
            raise _Rejected("name", "open", 1.0)

        return reject

    def reject(*args, **kwargs):
        raise _Rejected("name", "open", 1.0)

    return reject


# ----- the libraries ---------------------------------------------------------------------------
# Each entry: name -> factory() returning (decorate, open_it, rejection exception type).


def lib_breakerbox():
    b = breakerbox_rs.CircuitBreaker(failure_threshold=5, recovery_timeout=3600)

    def open_it():
        for _ in range(5):
            try:
                b.call(fail)
            except OSError:
                pass
        assert b.state == "open"

    return b, open_it, breakerbox_rs.CircuitBreakerError


def lib_circuitbreaker():
    b = circuitbreaker.CircuitBreaker(failure_threshold=5, recovery_timeout=3600)

    def open_it():
        for _ in range(5):
            try:
                b.call(fail)
            except OSError:
                pass
        assert b.opened

    return b, open_it, circuitbreaker.CircuitBreakerError


def lib_pybreaker():
    b = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=3600)

    def open_it():
        for _ in range(5):
            try:
                b.call(fail)
            except (OSError, pybreaker.CircuitBreakerError):
                pass
        assert b.current_state == "open"

    return b, open_it, pybreaker.CircuitBreakerError


def lib_aiobreaker():
    b = aiobreaker.CircuitBreaker(fail_max=5, timeout_duration=datetime.timedelta(seconds=3600))

    def open_it():
        for _ in range(5):
            try:
                b.call(fail)
            except (OSError, aiobreaker.CircuitBreakerError):
                pass
        assert b.current_state == aiobreaker.CircuitBreakerState.OPEN

    return b, open_it, aiobreaker.CircuitBreakerError


LIBS = {
    "breakerbox": lib_breakerbox,
    "circuitbreaker": lib_circuitbreaker,
    "pybreaker": lib_pybreaker,
    "aiobreaker": lib_aiobreaker,
}
# pybreaker's async support is Tornado coroutines (`call_async`), not asyncio: not measured.
ASYNC_LIBS = ["breakerbox", "circuitbreaker", "aiobreaker"]


# ----- loops -----------------------------------------------------------------------------------


def loop_closed(f, n):
    t0 = perf()
    for _ in range(n):
        f()
    return perf() - t0


def loop_open(f, n, exc):
    t0 = perf()
    for _ in range(n):
        try:
            f()
        except exc:
            pass
    return perf() - t0


def loop_threads(f, n, threads):
    per = n // threads
    barrier = threading.Barrier(threads + 1)
    done = []

    def work():
        barrier.wait()
        for _ in range(per):
            f()
        done.append(perf())

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    barrier.wait()
    t0 = perf()
    for t in ts:
        t.join()
    return max(done) - t0


async def aloop_closed(f, n):
    t0 = perf()
    for _ in range(n):
        await f()
    return perf() - t0


async def aloop_open(f, n, exc):
    t0 = perf()
    for _ in range(n):
        try:
            await f()
        except exc:
            pass
    return perf() - t0


def best(samples, n):
    return min(samples) / n


def measure(calls, repeats, threads):
    """{case: {lib: overhead_ns}} plus the baselines."""
    cases = ["closed", "open", f"threads x{threads}", "asyncio closed", "asyncio open"]
    raw = {c: {lib: [] for lib in list(LIBS) + ["bare", "floor"]} for c in cases}

    setups = {}
    for name, make in LIBS.items():
        b, open_it, exc = make()
        closed_f = b(noop)
        b2, open_it2, _ = make()
        open_f = b2(noop)
        open_it2()
        setups[name] = (closed_f, open_f, exc)
    asetups = {}
    for name in ASYNC_LIBS:
        b, _, exc = LIBS[name]()
        b2, open_it2, _ = LIBS[name]()
        a_open = b2(anoop)
        open_it2()
        asetups[name] = (b(anoop), a_open, exc)

    for _ in range(repeats):
        raw["closed"]["bare"].append(loop_closed(noop, calls))
        raw["open"]["bare"].append(loop_open(noop, calls, Exception))
        raw[cases[2]]["bare"].append(loop_threads(noop, calls, threads))
        raw["asyncio closed"]["bare"].append(asyncio.run(aloop_closed(anoop, calls)))
        raw["asyncio open"]["bare"].append(asyncio.run(aloop_open(anoop, calls, Exception)))
        raw["closed"]["floor"].append(loop_closed(floor(noop), calls))
        raw["open"]["floor"].append(loop_open(floor_open(noop), calls, _Rejected))
        raw[cases[2]]["floor"].append(loop_threads(floor(noop), calls, threads))
        raw["asyncio closed"]["floor"].append(asyncio.run(aloop_closed(floor(anoop), calls)))
        raw["asyncio open"]["floor"].append(asyncio.run(aloop_open(floor_open(anoop), calls, _Rejected)))
        for name, (closed_f, open_f, exc) in setups.items():
            raw["closed"][name].append(loop_closed(closed_f, calls))
            raw["open"][name].append(loop_open(open_f, calls, exc))
            raw[cases[2]][name].append(loop_threads(closed_f, calls, threads))
        for name, (a_closed, a_open, exc) in asetups.items():
            raw["asyncio closed"][name].append(asyncio.run(aloop_closed(a_closed, calls)))
            raw["asyncio open"][name].append(asyncio.run(aloop_open(a_open, calls, exc)))

    out = {}
    for case in cases:
        base = best(raw[case]["bare"], calls)
        out[case] = {"bare": base}
        for lib, samples in raw[case].items():
            if lib != "bare" and samples:  # (floor included)
                out[case][lib] = max(best(samples, calls) - base, 0.0)
    return cases, out


def ratio_of(r):
    """(fastest other library, its overhead / breakerbox's) in one round's results of a case."""
    others = {lib: r[lib] for lib in list(LIBS)[1:] if lib in r}
    fastest = min(others, key=others.get)
    bb = r["breakerbox"]
    return fastest, (others[fastest] / bb if bb > 0 else float("inf"))


def table(cases, rounds, markdown=False):
    """The table of the median round of each case (by ratio), with the ratio's range over the
    rounds; the verdict is met only if the ratio is at least 5 in every round."""
    libs = list(LIBS)
    many = len(rounds) > 1
    head = (
        ["case"]
        + [f"{lib} (ns)" for lib in libs]
        + ["floor (ns)", "ratio (fastest other / breakerbox)"]
        + ([f"ratio over {len(rounds)} rounds"] if many else [])
        + ["target 5x"]
    )
    rows = []
    summary = []
    for case in cases:
        per_round = sorted((ratio_of(out[case])[1], i) for i, out in enumerate(rounds))
        ratios = [x for x, _ in per_round]
        r = rounds[per_round[(len(per_round) - 1) // 2][1]][case]  # the median round
        fastest, ratio = ratio_of(r)
        met_in = sum(x >= 5 for x in ratios)
        met = "met" if met_in == len(ratios) else ("MISS" if met_in == 0 else f"met in {met_in} of {len(ratios)}")
        summary.append((case, ratio, fastest, met, (ratios[0], ratios[-1])))
        rows.append(
            [case]
            + [f"{r[lib]:.0f}" if lib in r else "n/a" for lib in libs]
            + [f"{r['floor']:.0f}", f"{ratio:.1f}x (vs {fastest})"]
            + ([f"{ratios[0]:.1f}x - {ratios[-1]:.1f}x"] if many else [])
            + [met]
        )
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines), summary
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    return "\n".join([fmt.format(*head)] + [fmt.format(*row) for row in rows]), summary


def _cpu():
    """The processor's model and the number of cores the process may use."""
    model = platform.processor() or "unknown processor"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count()
    return f"{model}, {cores} cores"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=1, help="measure everything this many times")
    ap.add_argument("--markdown", help="write the results to this Markdown file")
    args = ap.parse_args()
    t0 = time.monotonic()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    rounds = []
    for _ in range(max(args.rounds, 1)):
        cases, out = measure(args.calls, args.repeats, args.threads)
        rounds.append(out)
    text, summary = table(cases, rounds)
    print(text)
    print()
    for case, ratio, fastest, met, _ in summary:
        print(f"{case}: breakerbox has {ratio:.1f}x less overhead than {fastest} (target 5x: {met})")
    print(
        f"({args.calls} calls x {args.repeats} repeats per case, {len(rounds)} round(s), "
        f"{time.monotonic() - t0:.1f}s)"
    )
    if args.markdown:
        md, _ = table(cases, rounds, markdown=True)

        def verdict(case, ratio, fastest, met, span):
            lo, hi = span
            text = f"- {case}: {ratio:.1f}x less overhead than {fastest}"
            if len(rounds) > 1:
                text += f" ({lo:.1f}x to {hi:.1f}x over the rounds)"
            if met == "met":
                return text + ": the 5x target is met" + (" in every round." if len(rounds) > 1 else ".")
            if met == "MISS":
                return text + ": the 5x target is **not met**."
            return text + f": the 5x target is **{met} rounds** only."

        verdicts = "\n".join(verdict(*row) for row in summary)
        out = rounds[0]
        import importlib.metadata as md_

        versions = ", ".join(
            f"{p} {md_.version(p)}" for p in ("breakerbox-rs", "pybreaker", "circuitbreaker", "aiobreaker")
        )
        with open(args.markdown, "w") as fh:
            fh.write(
                "# Python benchmark: decorator overhead per call\n\n"
                "Generated by `python/bench/bench.py --rounds 3 --markdown python/BENCHMARKS.md` "
                f"({args.calls} calls x {args.repeats} repeats per case, best repeat kept, "
                f"{args.threads} threads in the threads case; {len(rounds)} round(s) of all of it, "
                "the table showing each case's median round and the ratio's range over the "
                "rounds; a target counts as met only if every round meets it).\n\n"
                f"Python {platform.python_version()} on {platform.machine()}, "
                f"{platform.system()}, {_cpu()}"
                + (f" (load average {load:.1f} when it started)" if load is not None else "")
                + f"; {versions}.\n\n"
                "Overhead = decorated no-op minus bare no-op, in nanoseconds per call. Ratio = "
                "the fastest other library's overhead divided by breakerbox's; the target is 5x. "
                "pybreaker's async support is Tornado-only, so it has no asyncio figure. *Floor* is "
                "no breaker at all: a pass-through `def w(*a, **kw): return f(*a, **kw)` (closed "
                "cases; `async def` + `await` for asyncio) or a wrapper that only raises an "
                "exception (open cases): what any Python-level decorator pays before doing "
                "anything. A 5x ratio is out of reach wherever 5x below the fastest other "
                "library is below the floor.\n\n"
                "breakerbox's paths: a sync function is a native callable; an `async def` "
                "function returns a native awaitable per call (stepped through `am_send` on "
                "Python 3.10+, so `await` needs no `StopIteration` and no Python frame of its "
                "own). In the open cases most of breakerbox's time is the exception itself: "
                "making the `CircuitBreakerError`, the traceback entry as it leaves the call, "
                "catching and freeing it (what the floor's raising wrapper pays too); a rejection "
                "does not reuse one exception object, so that a caught error is never changed "
                "by a later rejection. Runs on a shared VM vary by 10-30% between runs, which is why the "
                "rounds are shown.\n\n"
                + md
                + "\n\n"
                + verdicts
                + "\n\nBaselines (bare no-op, ns per call, first round): "
                + ", ".join(f"{c}: {out[c]['bare']:.0f}" for c in cases)
                + "\n"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
