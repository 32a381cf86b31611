"""Where an SDK gets flag state from: the Shipyard API (polled or streamed), a file, or memory.

A source answers one question, ``fetch(etag)``: a new state (with its ETag) or "not modified".
Polling with ``If-None-Match`` keeps refreshes cheap; the client owns retries and offline mode.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from shipyard.errors import AdapterError

__all__ = [
    "NOT_MODIFIED",
    "FetchResult",
    "FileFlagSource",
    "FlagSource",
    "HttpFlagSource",
    "SseEvent",
    "SseFlagSource",
    "StaticFlagSource",
    "parse_sse",
]


@dataclass(frozen=True, slots=True)
class FetchResult:
    """Outcome of one fetch; ``state`` is set iff ``modified``."""

    modified: bool
    state: Mapping[str, Any] | None = None
    etag: str | None = None


NOT_MODIFIED = FetchResult(modified=False)


class FlagSource(Protocol):
    """Anything that can return the latest flag state, honouring a previous ETag."""

    def fetch(self, etag: str | None) -> FetchResult: ...


def _digest(state: Mapping[str, Any]) -> str:
    text = json.dumps(state, sort_keys=True, separators=(",", ":"))
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def _checked(body: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping) or not isinstance(body.get("features", []), list):
        raise AdapterError(f"{where} did not return a flag state document")
    return body


class StaticFlagSource:
    """An in-memory source: for tests, and for apps that push state in themselves."""

    def __init__(self, state: Mapping[str, Any]) -> None:
        self._lock = threading.Lock()
        self._state = _checked(state, "static source")
        self._etag = _digest(state)

    def update(self, state: Mapping[str, Any]) -> None:
        with self._lock:
            self._state = _checked(state, "static source")
            self._etag = _digest(state)

    def fetch(self, etag: str | None) -> FetchResult:
        with self._lock:
            if etag == self._etag:
                return NOT_MODIFIED
            return FetchResult(True, self._state, self._etag)


class FileFlagSource:
    """A JSON file holding a client-features document (e.g. exported for offline use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def fetch(self, etag: str | None) -> FetchResult:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise AdapterError(f"cannot read flag state file {self.path}: {exc}") from exc
        tag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        if tag == etag:
            return NOT_MODIFIED
        try:
            body = json.loads(data)
        except ValueError as exc:
            raise AdapterError(f"flag state file {self.path} is not JSON: {exc}") from exc
        return FetchResult(True, _checked(body, str(self.path)), tag)


def flags_url(base_url: str, project: str, environment: str, endpoint: str) -> str:
    """One environment's flag endpoint (``state``, ``stream``, ``metrics``), names escaped."""
    return (
        f"{base_url.rstrip('/')}/api/v1/projects/{quote(project, safe='')}"
        f"/environments/{quote(environment, safe='')}/flags/{endpoint}"
    )


class HttpFlagSource:
    """Shipyard's flag-state endpoint for one project and environment, polled with ETags.

    ``GET {base_url}/api/v1/projects/{project}/environments/{environment}/flags/state`` with a
    bearer token; 304 on ``If-None-Match`` means nothing changed.
    """

    def __init__(
        self,
        base_url: str,
        project: str,
        environment: str,
        token: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = flags_url(base_url, project, environment, "state")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._client = httpx.Client(timeout=timeout, transport=transport)

    def fetch(self, etag: str | None) -> FetchResult:
        headers = dict(self._headers)
        if etag:
            headers["If-None-Match"] = etag
        try:
            response = self._client.get(self.url, headers=headers)
        except httpx.HTTPError as exc:
            raise AdapterError(f"flag state fetch failed: {exc}") from exc
        if response.status_code == 304:
            return NOT_MODIFIED
        if response.status_code != 200:
            raise AdapterError(
                f"flag state fetch failed: HTTP {response.status_code} from {self.url}"
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise AdapterError(f"flag state from {self.url} is not JSON") from exc
        return FetchResult(True, _checked(body, self.url), response.headers.get("ETag"))

    def close(self) -> None:
        self._client.close()


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    data: str
    id: str | None


def parse_sse(lines: Iterable[str]) -> Iterator[SseEvent]:
    """Server-sent events from a stream's lines (comments skipped, multi-line data joined)."""
    event, event_id = "message", None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield SseEvent(event, "\n".join(data), event_id)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue  # a comment: the server's keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value


class SseFlagSource:
    """Shipyard's flag stream (``GET .../flags/stream``, server-sent events), polling as fallback.

    A background thread holds the stream open and keeps the newest state it pushed; ``fetch``
    answers from that without any network while the stream is up. When the stream drops, it
    reconnects with exponential backoff (sending ``Last-Event-ID``, so an unchanged state is not
    resent), and ``fetch`` polls ``.../flags/state`` with ETags meanwhile. Either way the client
    keeps its last good state, so evaluation never waits on the network.

    ``subscribe(callback)`` (called by ``FlagClient.start``) starts the thread; ``callback`` runs
    after each pushed state so the client swaps it in at once.
    """

    def __init__(
        self,
        base_url: str,
        project: str,
        environment: str,
        token: str,
        *,
        check_interval: float = 1.0,
        read_timeout: float = 45.0,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.poll = HttpFlagSource(base_url, project, environment, token, transport=transport)
        self.url = flags_url(base_url, project, environment, "stream")
        self._params = {"interval": str(check_interval)}
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        # read_timeout > the server's 15 s keep-alive: a silent connection is a dead one
        timeout = httpx.Timeout(10.0, read=read_timeout)
        self._client = httpx.Client(timeout=timeout, transport=transport)
        self._backoff = (min_backoff, max_backoff)
        self._lock = threading.Lock()
        self._latest: FetchResult | None = None
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._response: httpx.Response | None = None
        self._callback: Callable[[], object] | None = None
        self.last_error: Exception | None = None
        self.connects = 0  # successful (re)connections, for tests and health pages

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def subscribe(self, callback: Callable[[], object]) -> None:
        self._callback = callback
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="shipyard-flag-sse", daemon=True)
            self._thread.start()

    def fetch(self, etag: str | None) -> FetchResult:
        with self._lock:
            latest = self._latest if self._connected.is_set() else None
        if latest is None:
            result = self.poll.fetch(etag)  # no stream now: poll (the client keeps its state)
            if result.modified:
                with self._lock:
                    self._latest = result
            return result
        return NOT_MODIFIED if latest.etag == etag else latest

    def _run(self) -> None:
        delay = self._backoff[0]
        while not self._stop.is_set():
            try:
                self._listen()
                delay = self._backoff[0]  # it was up: the next drop starts the backoff again
            except (httpx.HTTPError, AdapterError, ValueError) as exc:
                self.last_error = exc
            finally:
                self._connected.clear()
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, self._backoff[1])

    def _listen(self) -> None:
        headers = dict(self._headers)
        with self._lock:
            if self._latest is not None and self._latest.etag:
                headers["Last-Event-ID"] = self._latest.etag.strip('"')
        with self._client.stream("GET", self.url, headers=headers, params=self._params) as resp:
            if resp.status_code != 200:
                raise AdapterError(f"flag stream failed: HTTP {resp.status_code} from {self.url}")
            self._response = resp
            self._connected.set()
            self.connects += 1
            self.last_error = None
            for event in parse_sse(resp.iter_lines()):
                if self._stop.is_set():
                    return
                if event.event == "state":
                    self._take(event)

    def _take(self, event: SseEvent) -> None:
        state = _checked(json.loads(event.data), self.url)
        with self._lock:
            self._latest = FetchResult(True, state, f'"{event.id}"' if event.id else None)
        if self._callback is not None:
            self._callback()

    def close(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            response.close()  # unblocks the reading thread
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._client.close()
        self.poll.close()
