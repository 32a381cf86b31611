"""The engine loop. Killable at any instant: all progress lives in the database."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from shipyard.services import builds
from shipyard.services.context import Services

log = logging.getLogger("shipyard.engine")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Polls for jobs; a build keeps its lease alive from a side thread while it runs."""

    def __init__(self, svc: Services, *, poll_s: float = 0.2, owner: str | None = None) -> None:
        self._svc = svc
        self._poll_s = poll_s
        self.owner = owner or worker_id()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="shipyard-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # the loop must survive anything one job does
                log.exception("engine step failed")
                busy = False
            if not busy:
                self._stop.wait(self._poll_s)

    def run_once(self) -> bool:
        """Do one unit of work if any is due; True when something was done."""
        claimed = builds.claim_build(self._svc, self.owner)
        if claimed is None:
            return False
        job_id, candidate_id = claimed
        done = threading.Event()
        keeper = threading.Thread(
            target=self._keep_lease, args=(job_id, done), name="shipyard-lease", daemon=True
        )
        keeper.start()
        try:
            builds.run_build(self._svc, job_id, candidate_id, self.owner)
        finally:
            done.set()
            keeper.join()
        return True

    def _keep_lease(self, job_id: int, done: threading.Event) -> None:
        while not done.wait(builds.LEASE_S / 3):
            if not builds.renew_build(self._svc, job_id, self.owner):
                log.warning("lost the lease on job %s", job_id)
                return
