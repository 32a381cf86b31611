"""The HTTP source against a real server on 127.0.0.1, plus the static and file sources."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shipyard.errors import AdapterError
from shipyard.sdk import NOT_MODIFIED, FileFlagSource, HttpFlagSource, StaticFlagSource
from tests.unit.flags.conftest import flag_state

PATH = "/api/v1/projects/shop/environments/prod/flags/state"


class _Server:
    """A tiny flag-state endpoint honouring the SDK contract (bearer token, ETag, 304)."""

    def __init__(self) -> None:
        self.body: dict[str, Any] = flag_state()
        self.etag = '"v1"'
        self.requests: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(dict(self.headers))
                if self.path != PATH:
                    self.send_response(404)
                    self.end_headers()
                    return
                if self.headers.get("Authorization") != "Bearer s3cret":
                    self.send_response(401)
                    self.end_headers()
                    return
                if self.headers.get("If-None-Match") == outer.etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                data = json.dumps(outer.body).encode()
                self.send_response(200)
                self.send_header("ETag", outer.etag)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    yield srv
    srv.close()


def test_http_source_fetches_then_gets_not_modified(server: _Server) -> None:
    source = HttpFlagSource(server.url + "/", "shop", "prod", "s3cret", timeout=5)
    first = source.fetch(None)
    assert first.modified and first.etag == '"v1"'
    assert first.state is not None and first.state["features"][0]["name"] == "checkout"
    assert source.fetch('"v1"') is NOT_MODIFIED
    assert server.requests[-1]["If-None-Match"] == '"v1"'
    server.body, server.etag = flag_state(kill=True), '"v2"'
    second = source.fetch('"v1"')
    assert second.modified and second.etag == '"v2"'
    source.close()


def test_http_source_errors_are_adapter_errors(server: _Server) -> None:
    with pytest.raises(AdapterError, match="401"):
        HttpFlagSource(server.url, "shop", "prod", "wrong").fetch(None)
    with pytest.raises(AdapterError, match="404"):
        HttpFlagSource(server.url, "other", "prod", "s3cret").fetch(None)
    dead = HttpFlagSource("http://127.0.0.1:9", "shop", "prod", "s3cret", timeout=1)
    with pytest.raises(AdapterError, match="fetch failed"):
        dead.fetch(None)


def test_static_source_etag_round_trip() -> None:
    source = StaticFlagSource(flag_state())
    first = source.fetch(None)
    assert first.modified
    assert source.fetch(first.etag) is NOT_MODIFIED
    source.update(flag_state(kill=True))
    assert source.fetch(first.etag).modified
    with pytest.raises(AdapterError):
        StaticFlagSource({"features": "nope"})


def test_file_source(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    source = FileFlagSource(path)
    with pytest.raises(AdapterError, match="cannot read"):
        source.fetch(None)
    path.write_text(json.dumps(flag_state()))
    first = source.fetch(None)
    assert first.modified and source.fetch(first.etag) is NOT_MODIFIED
    path.write_text("{nope")
    with pytest.raises(AdapterError, match="not JSON"):
        source.fetch(None)
