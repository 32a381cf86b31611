"""A stand-in "version" for router tests: answers every request with its name.

Run: ``python backend.py NAME [ERROR_RATE [DELAY_MS]]``; it binds 127.0.0.1 on an ephemeral port
and prints the port on its first stdout line. Every answer carries ``X-Version: NAME`` and the body
``NAME``; with ERROR_RATE (0..1) that share of answers is a 500; DELAY_MS delays every answer
(``GET /?delay_ms=N`` delays that one request instead). ``GET /_mirrored`` answers how many
requests carried ``x-shipyard-mirror`` (copies sent by the router's mirror). Stdlib only.
Keep-alive fixes from the reference: no Nagle, a deep accept queue, quiet connection resets.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    name = "?"
    error_rate = 0.0
    delay_ms = 0.0
    mirrored = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        if self.path == "/_mirrored":  # how many mirrored copies reached this version
            body = str(Handler.mirrored).encode()
            status = 200
        else:
            if self.headers.get("x-shipyard-mirror"):
                with Handler.lock:
                    Handler.mirrored += 1
            query = parse_qs(urlsplit(self.path).query)
            delay = float(query.get("delay_ms", [self.delay_ms])[0])
            if delay > 0:
                time.sleep(delay / 1000)
            status = 500 if random.random() < self.error_rate else 200
            body = self.name.encode()
        self.send_response(status)
        self.send_header("X-Version", self.name)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None


def main() -> None:
    Handler.name = sys.argv[1]
    Handler.error_rate = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    Handler.delay_ms = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
