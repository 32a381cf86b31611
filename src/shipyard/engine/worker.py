"""The engine loop. Killable at any instant: all progress lives in the database."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence

from shipyard.domain.jobs import DEFAULT_BACKOFF_S, DEFAULT_MAX_ATTEMPTS, RetryPolicy
from shipyard.engine.loop import PollingLoop
from shipyard.engine.rollouts import RolloutRunner
from shipyard.errors import ShipyardError
from shipyard.ports.builds import BuildInterrupted
from shipyard.services import builds, deployments, jobs
from shipyard.services.context import Services
from shipyard.services.deployments import DEPLOY_JOB
from shipyard.services.releases import BUILD_JOB

log = logging.getLogger("shipyard.engine")

DEFAULT_LEASE_S = 30.0
REEVALUATE_EVERY_S = 2.0

RUN: Mapping[str, Callable[[Services, int, int, str], object]] = {
    BUILD_JOB: builds.run_build,
    DEPLOY_JOB: deployments.run_deployment,
}


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def retry_policy_from_env() -> RetryPolicy:
    """SHIPYARD_JOB_MAX_ATTEMPTS (default 5) and SHIPYARD_JOB_BACKOFF_SECONDS (default 2)."""
    return RetryPolicy(
        max_attempts=int(os.environ.get("SHIPYARD_JOB_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)),
        backoff_s=float(os.environ.get("SHIPYARD_JOB_BACKOFF_SECONDS", DEFAULT_BACKOFF_S)),
    )


def _describe(exc: Exception) -> str:
    if isinstance(exc, ShipyardError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"[:2000]


class Lane(PollingLoop):
    """One thread claiming jobs of some kinds: builds never hold up deployments and rollbacks."""

    def __init__(self, worker: Worker, kinds: Sequence[str], name: str) -> None:
        super().__init__(worker.poll_s)
        self.thread_name = name
        self._worker = worker
        self.kinds = tuple(kinds)

    def run_once(self) -> bool:
        if DEPLOY_JOB in self.kinds:
            self._worker.reevaluate()
        return self._worker.run_job(self.kinds)


class Worker(PollingLoop):
    """Runs jobs in lanes (a build lane, a deploy lane) and the rollout loop, each a thread.

    A job's lease is kept alive from a side thread while it runs. A job that raises is retried
    after a backoff and given up (dead) past the retry policy's attempt cap."""

    thread_name = "shipyard-engine"

    def __init__(
        self,
        svc: Services,
        *,
        poll_s: float = 0.2,
        owner: str | None = None,
        lease_s: float | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(poll_s)
        self._svc = svc
        self.poll_s = poll_s
        self.lease_s = lease_s or float(os.environ.get("SHIPYARD_LEASE_SECONDS", DEFAULT_LEASE_S))
        self.owner = owner or worker_id()
        self.retry = retry_policy or retry_policy_from_env()
        self._last_reevaluation = 0.0
        self._reevaluating = threading.Lock()
        self.rollouts = RolloutRunner(svc, owner=self.owner, lease_s=self.lease_s)
        self.lanes = (
            Lane(self, [DEPLOY_JOB], "shipyard-deploys"),
            Lane(self, [BUILD_JOB], "shipyard-builds"),
        )

    def start(self) -> None:
        try:  # before any job or rollout runs: what an earlier server started is watched again
            deployments.resume_supervision(self._svc)
        except ShipyardError as exc:
            log.warning("could not resume supervising instances: %s", exc)
        for lane in self.lanes:
            lane.start()
        self.rollouts.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loops; builds still running are killed (they run again on the next start)."""
        self.rollouts.stop(timeout)
        for lane in self.lanes:
            lane.request_stop()
        self._svc.builder.stop()
        for lane in self.lanes:
            lane.stop(timeout)

    def run_once(self) -> bool:
        """Do one unit of work of any kind if one is due; True when something was done."""
        self.reevaluate()
        return self.run_job(tuple(RUN))

    def reevaluate(self) -> None:
        """Let waiting deployments whose gates opened with time start (every few seconds)."""
        with self._reevaluating:
            if time.monotonic() - self._last_reevaluation <= REEVALUATE_EVERY_S:
                return
            self._last_reevaluation = time.monotonic()
        deployments.reevaluate_waiting(self._svc)

    def run_job(self, kinds: Sequence[str]) -> bool:
        """Claim and run one due job of these kinds; a job that raises is retried or dead."""
        claimed = jobs.claim(self._svc, kinds, self.owner, self.lease_s, self.retry)
        if claimed is None:
            return False
        job_id, kind, subject = claimed
        try:
            self._leased(job_id, lambda: RUN[kind](self._svc, job_id, subject, self.owner))
        except Exception as exc:  # a poison job must not wedge its lane: count it, back off
            log.warning(
                "%s job %s failed: %s",
                kind,
                job_id,
                _describe(exc),
                exc_info=not isinstance(exc, BuildInterrupted),
            )
            if jobs.fail(self._svc, claimed, self.owner, _describe(exc), self.retry):
                log.error(
                    "%s job %s is dead after %d attempts", kind, job_id, self.retry.max_attempts
                )
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
