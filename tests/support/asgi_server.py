"""The real ASGI app served by uvicorn in a thread, for tests that fire requests at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from shipyard.api.app import create_app
from shipyard.services.context import Services
from tests.support.server import free_port


@contextmanager
def serving(svc: Services) -> Iterator[str]:
    """The app of ``svc`` on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(svc), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def at_once(calls: Sequence[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run every call on its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def fire(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait(10)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(fire, calls))


def post(base: str, path: str, token: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        base + path,
        json=body,
        headers={"Authorization": f"Bearer {token}", **headers},
        timeout=60,
    )
