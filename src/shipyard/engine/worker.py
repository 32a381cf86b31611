"""The engine loop. Killable at any instant: all progress lives in the database."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from shipyard.engine.loop import PollingLoop
from shipyard.engine.rollouts import RolloutRunner
from shipyard.errors import ShipyardError
from shipyard.services import builds, deployments, jobs
from shipyard.services.context import Services
from shipyard.services.deployments import DEPLOY_JOB
from shipyard.services.releases import BUILD_JOB

log = logging.getLogger("shipyard.engine")

DEFAULT_LEASE_S = 30.0
REEVALUATE_EVERY_S = 2.0


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker(PollingLoop):
    """Claims one job at a time; its lease is kept alive from a side thread while the job runs."""

    thread_name = "shipyard-engine"

    def __init__(
        self,
        svc: Services,
        *,
        poll_s: float = 0.2,
        owner: str | None = None,
        lease_s: float | None = None,
    ) -> None:
        super().__init__(poll_s)
        self._svc = svc
        self.lease_s = lease_s or float(os.environ.get("SHIPYARD_LEASE_SECONDS", DEFAULT_LEASE_S))
        self.owner = owner or worker_id()
        self._last_reevaluation = 0.0
        self.rollouts = RolloutRunner(svc, owner=self.owner, lease_s=self.lease_s)

    def start(self) -> None:
        try:  # before any job or rollout runs: what an earlier server started is watched again
            deployments.resume_supervision(self._svc)
        except ShipyardError as exc:
            log.warning("could not resume supervising instances: %s", exc)
        super().start()
        self.rollouts.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.rollouts.stop(timeout)
        super().stop(timeout)

    def run_once(self) -> bool:
        """Do one unit of work if any is due; True when something was done."""
        if time.monotonic() - self._last_reevaluation > REEVALUATE_EVERY_S:
            self._last_reevaluation = time.monotonic()
            deployments.reevaluate_waiting(self._svc)
        claimed = jobs.claim(self._svc, [DEPLOY_JOB, BUILD_JOB], self.owner, self.lease_s)
        if claimed is None:
            return False
        job_id, kind, subject = claimed
        if kind == DEPLOY_JOB:
            self._leased(
                job_id, lambda: deployments.run_deployment(self._svc, job_id, subject, self.owner)
            )
        else:
            self._leased(job_id, lambda: builds.run_build(self._svc, job_id, subject, self.owner))
        return True

    def drain(self, timeout: float = 60.0) -> None:
        """Run until no job is due (tests and the demo use this instead of sleeping)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs_done = self.run_once()
            ticked = self.rollouts.run_once()
            if not (jobs_done or ticked):
                break

    def _leased(self, job_id: int, work: Callable[[], object]) -> None:
        done = threading.Event()
        keeper = threading.Thread(
            target=self._keep_lease, args=(job_id, done), name="shipyard-lease", daemon=True
        )
        keeper.start()
        try:
            work()
        finally:
            done.set()
            keeper.join()

    def _keep_lease(self, job_id: int, done: threading.Event) -> None:
        while not done.wait(self.lease_s / 3):
            if not jobs.renew(self._svc, job_id, self.owner, self.lease_s):
                log.warning("lost the lease on job %s", job_id)
                return
