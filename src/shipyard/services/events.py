"""Reading the audit log."""

from __future__ import annotations

from collections.abc import Sequence

from shipyard.domain.auth import Action, Actor
from shipyard.domain.events import Event
from shipyard.services.context import Services


def list_events(
    svc: Services, actor: Actor, *, project: str | None = None, limit: int = 100, after_id: int = 0
) -> Sequence[Event]:
    actor.require(Action.READ)
    with svc.uow() as uow:
        return uow.events.list(project=project, limit=min(max(limit, 1), 1000), after_id=after_id)
