"""Each example program runs to completion on its own (it asserts what it shows)."""

import os
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


@pytest.mark.parametrize("name", ["proxy", "decorator", "middleware", "registry", "timeout_monitor"])
def test_example_runs(name):
    r = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, f"{name}.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip()
