"""Supervision of the environments' routers between rollouts.

A proxy that dies outside a rollout has no tick to bring it back, so the engine calls
``supervise_routers`` when it starts and then every few seconds: each environment that runs a
candidate behind a router gets ``ensure`` (idempotent: a live proxy is only looked at; a dead one
is started again with the last plan it was given). Active rollouts are re-applied by
``rollouts.resync`` as before.
"""

from __future__ import annotations

import logging

from shipyard.domain.deployments import DeploymentState
from shipyard.errors import ShipyardError
from shipyard.services.context import Services
from shipyard.services.deployments import deploy_spec_for
from shipyard.services.traffic import route_ref

log = logging.getLogger("shipyard.supervision")


def supervise_routers(svc: Services) -> int:
    """``ensure`` the router of every environment that serves a candidate; returns how many are
    up. A router that cannot be brought up is logged and tried again next time."""
    with svc.uow() as uow:
        refs = []
        for project in uow.projects.list():
            seen: set[str] = set()
            for d in uow.deployments.history(project):  # newest first
                if d.environment in seen or d.state is not DeploymentState.SUCCEEDED:
                    continue
                seen.add(d.environment)
                try:
                    env, _, _ = deploy_spec_for(svc, uow, d)
                except ShipyardError:
                    continue
                if env.router_kind is not None and env.router_port is not None:
                    refs.append((env.router_kind, route_ref(svc, project.name, d.environment, env)))
    up = 0
    for kind, ref in refs:  # no I/O inside the unit of work
        try:
            svc.routers(kind).ensure(ref)
            up += 1
        except ShipyardError as exc:
            log.warning("router of %s/%s is down: %s", ref.project, ref.environment, exc.message)
    return up
