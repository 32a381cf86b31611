"""The rollout loop: claim a due rollout with a lease, run one tick, release it.

A tick that fails is recorded as the rollout's error streak (``services.rollouts.fault``), so
it is retried with a bounded backoff and then aborted or paused, never looped on.
It runs on its own thread beside the job loop, so a long deployment (a target waiting for health)
never delays an abort: a rollout made due by a command is picked up within one poll.
"""

from __future__ import annotations

import logging
import time

from shipyard.engine.loop import PollingLoop
from shipyard.ports.routers import RoutePlan
from shipyard.services import rollouts
from shipyard.services.context import Services
from shipyard.services.supervision import supervise_routers

log = logging.getLogger("shipyard.engine")

RETRY_AFTER_S = 2.0  # only when even recording a tick's error failed (the database is down)
RESYNC_EVERY_S = 30.0  # re-apply every active route this often, to heal a proxy that restarted
SUPERVISE_EVERY_S = 5.0  # look at every environment's router this often (and at start)


class RolloutRunner(PollingLoop):
    thread_name = "shipyard-rollouts"

    def __init__(self, svc: Services, *, owner: str, lease_s: float, poll_s: float = 0.1) -> None:
        super().__init__(poll_s)
        self._svc = svc
        self.owner = owner
        self.lease_s = lease_s
        # what this process last applied per rollout; empty after a restart, so the first tick
        # re-applies the route the database holds
        self._applied: dict[int, RoutePlan] = {}
        self._last_resync: float | None = None
        self._last_supervised: float | None = None

    def run_once(self) -> bool:
        if self._last_resync is None or time.monotonic() - self._last_resync > RESYNC_EVERY_S:
            self._last_resync = time.monotonic()
            rollouts.resync(self._svc, self.owner, self.lease_s, self._applied)
        if (
            self._last_supervised is None
            or time.monotonic() - self._last_supervised > SUPERVISE_EVERY_S
        ):
            self._last_supervised = time.monotonic()
            supervise_routers(self._svc)
        rollout_id = rollouts.claim(self._svc, self.owner, self.lease_s)
        if rollout_id is None:
            return False
        try:
            rollouts.tick(self._svc, rollout_id, self.owner, self._applied)
        except Exception as exc:  # a failed tick is a decision, never a loop
            self._applied.pop(rollout_id, None)
            log.warning("rollout %s: tick failed: %s", rollout_id, exc, exc_info=True)
            try:
                rollouts.fault(self._svc, rollout_id, self.owner, exc)
            except Exception as again:
                log.warning("rollout %s: could not record the error: %s", rollout_id, again)
                rollouts.defer(self._svc, rollout_id, self.owner, RETRY_AFTER_S, str(exc))
        finally:
            rollouts.release(self._svc, rollout_id, self.owner)
        return True

    def drain(self, timeout: float = 30.0) -> None:
        """Tick until nothing is due (tests); rollouts waiting on time stay waiting."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.run_once():
            pass
