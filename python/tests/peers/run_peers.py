"""Runs the test suites of pybreaker, circuitbreaker and aiobreaker against the drop-in modules
``breakerbox_rs.pybreaker``, ``breakerbox_rs.circuitbreaker`` and ``breakerbox_rs.aiobreaker``.

Each peer's source distribution is fetched from PyPI with pip, its own package is deleted from
the unpacked copy, and a ``conftest.py``
at its root makes ``import pybreaker`` (etc.) import the breakerbox module instead. The run
fails when a test fails that is not listed in ``EXPECTED_FAILURES`` (with the reason), or when
a listed one passes (so the list stays true).

    python tests/peers/run_peers.py [--work DIR] [--pybreaker-tests FILE]

pybreaker's source distribution has no tests; its suite (``tests/pybreaker_test.py`` of the
same release) is vendored in ``vendor/pybreaker/`` (with pybreaker's license; see the README
there), or read from ``--pybreaker-tests`` / ``$PYBREAKER_TESTS`` when given. The run fails
when the file is missing.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.request
import xml.etree.ElementTree as ET

PEERS = {
    # name: (version, tests folder in the sdist, module(s) to delete from the copy)
    "pybreaker": ("1.4.1", None, ["src"]),
    "circuitbreaker": ("2.1.3", "tests", ["circuitbreaker.py"]),
    "aiobreaker": ("1.2.0", "test", ["aiobreaker"]),
}

# pybreaker's tests/pybreaker_test.py at tag v1.4.1, unchanged (see vendor/pybreaker/README.md).
PYBREAKER_TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor", "pybreaker", "pybreaker_test.py")

_REDIS = "the peer's Redis storage (redis-py / fakeredis), which breakerbox does not provide"
_TORNADO = "Tornado coroutines (pybreaker's async support), not provided: breakerbox supports asyncio"

# Tests that legitimately fail, by peer, as "file::class::test" (class optional), with why.
EXPECTED_FAILURES = {
    "pybreaker": {
        **{f"pybreaker_test.py::CircuitBreakerRedisTestCase::{t}": _REDIS for t in [
            "test_successful_call", "test_one_failed_call", "test_one_successful_call_after_failed_call",
            "test_several_failed_calls_setting_absent", "test_throw_new_error_on_trip_false",
            "test_throw_new_error_on_trip_true", "test_traceback_in_circuitbreaker_error",
            "test_failed_call_after_timeout", "test_successful_after_timeout",
            "test_failed_call_when_halfopen", "test_successful_call_when_halfopen", "test_close",
            "test_transition_events", "test_call_events", "test_generator", "test_contextmanager",
            "test_namespace", "test_fallback_state", "test_missing_state", "test_cluster_mode",
        ]},
        **{f"pybreaker_test.py::CircuitBreakerRedisConcurrencyTestCase::{t}": _REDIS for t in [
            "test_fail_thread_safety", "test_success_thread_safety", "test_half_open_thread_safety",
            "test_fail_max_thread_safety",
        ]},
        **{f"pybreaker_test.py::CircuitBreakerTestCase::{t}": _TORNADO for t in [
            "test_decorator_call_future",
        ]},
    },
    "circuitbreaker": {},
    "aiobreaker": {},
}

# The same, by pattern: (regex over the test id, why).
EXPECTED_PATTERNS = {
    "pybreaker": [],
    "circuitbreaker": [],
    "aiobreaker": [(r"\[redis_storage\]$", _REDIS)],
}


# Tests whose outcome depends on thread scheduling with the peer's own code as well (either
# outcome is accepted), with why.
MAY_FAIL = {
    "pybreaker": {
        "pybreaker_test.py::CircuitBreakerThreadsTestCase::test_half_open_thread_safety": (
            "expects one half-open period across 5 threads with reset_timeout=0.01: on a loaded "
            "machine a thread starting more than 10 ms late sees a second one (pybreaker 1.4.1 "
            "itself fails it then: 34 of 300 runs of the test's body with 3 busy processes on 2 "
            "cores)"
        ),
    },
    "circuitbreaker": {},
    "aiobreaker": {},
}


def fetch_sdist(name, version, dest):
    """The sdist's path, downloaded with pip (``--no-binary :all:``). When pip cannot prepare
    it (aiobreaker's setup.py reads a file its sdist lacks), the download URL pip found is
    taken from its log and fetched directly."""
    os.makedirs(dest, exist_ok=True)
    want = os.path.join(dest, f"{name}-{version}.tar.gz")
    if os.path.exists(want):
        return want
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-vvv", "--no-cache-dir", "--no-deps",
         "--no-binary", ":all:", "--disable-pip-version-check", "-d", dest, f"{name}=={version}"],
        capture_output=True, text=True,
    )
    if os.path.exists(want):
        return want
    urls = re.findall(r"https://\S+/" + re.escape(f"{name}-{version}.tar.gz"), proc.stdout + proc.stderr)
    if not urls:
        raise SystemExit(f"could not download the {name} {version} sdist:\n{proc.stderr[-2000:]}")
    urllib.request.urlretrieve(urls[0].split("#")[0], want)
    return want


def prepare(name, version, tests, remove, work, pybreaker_tests):
    __import__(f"breakerbox_rs.{name}")  # every peer has its drop-in module: none is skipped
    sdist = fetch_sdist(name, version, os.path.join(work, "sdists"))
    root = os.path.join(work, f"{name}-{version}")
    shutil.rmtree(root, ignore_errors=True)
    with tarfile.open(sdist) as tf:
        tf.extractall(work)
    for r in remove:  # their package: the suite must import ours
        p = os.path.join(root, r)
        shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    if tests is None:  # pybreaker: tests not in the sdist
        dst = os.path.join(root, "pybreaker_test.py")
        src = pybreaker_tests or os.environ.get("PYBREAKER_TESTS") or PYBREAKER_TESTS
        if not os.path.isfile(src):
            raise SystemExit(f"{name}: its test suite {src} is missing (its sdist has no tests)")
        shutil.copy(src, dst)
        target = dst
    else:
        target = os.path.join(root, tests)
    with open(os.path.join(root, "conftest.py"), "w") as f:
        f.write(
            "# Written by breakerbox's run_peers.py: the suite imports breakerbox's module.\n"
            "import importlib, sys\n"
            f"sys.modules[{name!r}] = importlib.import_module('breakerbox_rs.{name}')\n"
            f"for sub in getattr(sys.modules[{name!r}], '_SUBMODULES', ()):\n"
            f"    sys.modules[{name!r} + '.' + sub] = importlib.import_module('breakerbox_rs.{name}.' + sub)\n"
            "# aiobreaker's test_listener.py imports `raises` from `_pytest.python_api`, which\n"
            "# pytest 8 removed: give it pytest.raises there.\n"
            "try:\n"
            "    import _pytest.python_api\n"
            "except ImportError:\n"
            "    import types, pytest\n"
            "    sys.modules['_pytest.python_api'] = types.SimpleNamespace(raises=pytest.raises)\n"
        )
    with open(os.path.join(root, "pytest.ini"), "w") as f:
        f.write("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    return root, target


def run(name, root, target):
    xml = os.path.join(root, "report.xml")
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--continue-on-collection-errors", f"--junitxml={xml}", target],
        cwd=root, capture_output=True, text=True,
    )
    passed, failed = [], []
    if not os.path.exists(xml):
        raise SystemExit(f"{name}: pytest wrote no report")
    for case in ET.parse(xml).iter("testcase"):
        # classname is "package.module[.Class]"; reported as module.py[::Class]::test
        parts = case.get("classname", "").split(".")
        mods = [p for p in parts if not p[:1].isupper()]
        classes = [p for p in parts if p[:1].isupper()]
        test_id = "::".join([f"{mods[-1]}.py" if mods[-1] else "collection", *classes, case.get("name")])
        if case.find("skipped") is not None:
            continue
        bad = case.find("failure") is not None or case.find("error") is not None
        (failed if bad else passed).append(test_id)
    return passed, failed


def _has_timeout():
    try:
        import pytest_timeout  # noqa: F401
        return True
    except ImportError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "peers"))
    ap.add_argument("--pybreaker-tests")
    ap.add_argument("--only", action="append")
    args = ap.parse_args()
    work = os.path.abspath(args.work)
    ok = True
    for name, (version, tests, remove) in PEERS.items():
        if args.only and name not in args.only:
            continue
        passed, failed = run(name, *prepare(name, version, tests, remove, work, args.pybreaker_tests))
        expected = EXPECTED_FAILURES[name]
        may = MAY_FAIL[name]
        base = lambda t: re.sub(r"\[.*\]$", "", t)  # noqa: E731
        patterns = [re.compile(p) for p, _ in EXPECTED_PATTERNS[name]]
        unexpected = [
            t for t in failed
            if not ({t, base(t)} & (set(expected) | set(may))) and not any(p.search(t) for p in patterns)
        ]
        fixed = sorted(t for t in expected if t not in failed and not any(base(f) == t for f in failed))
        print(f"  {name} {version}: {len(passed)} of {len(passed) + len(failed)} pass; "
              f"{len(failed) - len(unexpected)} expected failures (Redis storage, Tornado, timing)")
        for t in unexpected:
            print(f"    UNEXPECTED FAILURE {t}")
        for t in fixed:
            print(f"    listed as failing but passed or absent: {t}")
        ok = ok and not unexpected and not fixed
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
