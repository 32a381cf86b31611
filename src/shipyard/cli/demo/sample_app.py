"""hello: the small web service of the `shipyard demo` repository (copied there as ``app.py``).

Stdlib only: it runs from its built artifact with a bare interpreter, not inside Shipyard.
``PORT`` is set by the local target, ``SHIPYARD_CANDIDATE`` says which candidate runs.

- ``GET /``        → 200 JSON greeting, or a 500 for ``FAILURE_SHARE`` of the answers: 0 in a
  good version (it never fails); the demo's bug commit raises it, its fix puts it back.
- ``GET /healthz`` → 200 ``ok``, always: a buggy version passes its health checks, and only the
  canary analysis of its live traffic can catch it.
- Every answer carries ``X-Version``, so a client sees which version served it.
"""

from __future__ import annotations

import json
import os
import random
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAILURE_SHARE = 0.0
GREETING = "hello"
VERSION = os.environ.get("SHIPYARD_CANDIDATE") or os.environ.get("SHIPYARD_VERSION") or "dev"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as HAProxy and the load generator expect
    disable_nagle_algorithm = True  # headers and body go out in two sends: avoid a 40 ms stall

    def _send(self, status: int, body: dict[str, Any] | str) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("X-Version", VERSION)
        self.send_header(
            "Content-Type", "text/plain" if isinstance(body, str) else "application/json"
        )
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._send(200, "ok")
        elif path != "/":
            self._send(404, {"error": "not found"})
        elif random.random() < FAILURE_SHARE:
            self._send(500, {"error": "greeting failed"})
        else:
            user = "friend" if "session=" in self.headers.get("Cookie", "") else "stranger"
            self._send(200, {GREETING: user, "version": VERSION})

    def log_message(self, format: str, *args: Any) -> None:
        return None  # quiet under load


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops connections under a few dozen at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # resets by the proxy and the load generator are expected


def main() -> None:
    server = Server(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Handler)
    print(f"hello {VERSION} on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
