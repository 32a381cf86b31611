"""Where an SDK gets flag state from: the Shipyard API over HTTP, a file, or memory.

A source answers one question, ``fetch(etag)``: a new state (with its ETag) or "not modified".
Polling with ``If-None-Match`` keeps refreshes cheap; the client owns retries and offline mode.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
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
    "StaticFlagSource",
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
        self.url = (
            f"{base_url.rstrip('/')}/api/v1/projects/{quote(project, safe='')}"
            f"/environments/{quote(environment, safe='')}/flags/state"
        )
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
