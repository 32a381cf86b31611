"""A background thread that does one unit of work at a time and waits when there is none."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("shipyard.engine")


class PollingLoop:
    """Subclasses define ``run_once`` (True when it did something); the loop survives anything
    one unit of work raises, and waits ``poll_s`` only when there was nothing to do."""

    thread_name = "shipyard-loop"

    def __init__(self, poll_s: float) -> None:
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Claim no further work; ``stop`` waits for the current one."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # the loop must survive anything one unit of work does
                log.exception("%s: step failed", self.thread_name)
                busy = False
            if not busy:
                self._stop.wait(self._poll_s)
