"""Helper for the examples: run an ASGI app under uvicorn on 127.0.0.1 (a free port) in a
background thread, and stop it."""

import contextlib
import socket
import threading
import time

import uvicorn


@contextlib.contextmanager
def serve(app):
    """Serves `app`; yields its base URL (http://127.0.0.1:PORT); stops it on exit."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
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
