"""Shared fixtures: a real uvicorn server on 127.0.0.1 (a free port), in a thread.

Also: ``python -m pytest`` run from python/ puts this folder first on ``sys.path``, where
``breakerbox_rs/`` is the source without its compiled core. When the package is installed (a
wheel), that entry is dropped so the installed one is tested; with ``maturin develop`` (the
package is this folder) it stays.
"""

import os
import sys
import importlib.util

_SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _prefer_installed() -> None:
    if "breakerbox_rs" in sys.modules:
        return
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _SOURCE]
    if importlib.util.find_spec("breakerbox_rs") is None:
        sys.path[:] = saved  # not installed elsewhere: the source folder (maturin develop)


_prefer_installed()

import socket
import threading
import time
import contextlib

import pytest
import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(app):
    """Runs `app` under uvicorn in a thread; yields its base URL; stops it."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def server():
    return serve
