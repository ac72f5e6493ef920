"""Exiting while threads Python did not start (the core's timer and event threads, the fleet
runtime) are calling into Python: the process must end normally.

CPython 3.11 and older end such a thread with pthread_exit when it asks for the GIL during
finalization; unwinding it through Rust frames aborted the process ("FATAL: exception not
rethrown"), in 26 of 30 runs of this script before the package closed its gate at exit."""

import subprocess
import sys

SCRIPT = r"""
import sys, time
from breakerbox_rs import CircuitBreaker

def listener(e):
    time.sleep(0.0002)  # releases the GIL: the main thread runs on, toward exit

def wait(n):
    time.sleep(0.0001)
    return 0.001

breakers = [
    CircuitBreaker(name=f"b{i}", automatic_half_open=True, open_wait=wait, open_wait_max=0.01,
                   max_half_open_wait=0.001, half_open_timeout_state="open")
    for i in range(50)
]
for b in breakers:
    b.on_event(listener)
end = time.monotonic() + 0.05
while time.monotonic() < end:
    for b in breakers:
        b.transition_to_open_for(0.001)
print("exiting")  # with timer-made transitions still sending events
"""


def test_exit_while_other_threads_call_into_python(tmp_path):
    for run in range(10):
        r = subprocess.run(
            [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        assert r.returncode == 0, f"run {run}: exit status {r.returncode}: {r.stderr[-500:]}"
        assert "exiting" in r.stdout
