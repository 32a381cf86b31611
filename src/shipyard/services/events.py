"""Reading the audit log.

Filtering and paging happen in the store, in one query per page: a face asks for a page and
renders it, however long the log has grown.
"""

from __future__ import annotations

from collections.abc import Sequence

from shipyard.domain.auth import Action, Actor
from shipyard.domain.events import Event, EventPage
from shipyard.services.context import Services

MAX_PAGE = 1000
MAX_KINDS = 200


def _page_size(limit: int) -> int:
    return min(max(limit, 1), MAX_PAGE)


def list_events(
    svc: Services,
    actor: Actor,
    *,
    project: str | None = None,
    limit: int = 100,
    after_id: int = 0,
    kind: str | None = None,
) -> Sequence[Event]:
    """The oldest events above ``after_id``, oldest first: following the log forward."""
    actor.require(Action.READ)
    with svc.uow() as uow:
        return uow.events.list(
            project=project, limit=_page_size(limit), after_id=after_id, kind=kind
        )


def newest_events(
    svc: Services,
    actor: Actor,
    *,
    project: str | None = None,
    kind: str | None = None,
    before: int | None = None,
    limit: int = 100,
) -> EventPage:
    """The newest matching events below ``before``, newest first: paging back through the log.

    ``kind`` is a whole kind or a prefix that ends at a dot (``deployment``: ``deployment.*``)."""
    actor.require(Action.READ)
    with svc.uow() as uow:
        return uow.events.newest(project=project, kind=kind, before=before, limit=_page_size(limit))


def event_kinds(svc: Services, actor: Actor, *, project: str | None = None) -> Sequence[str]:
    """The kinds recorded (in ``project``), sorted: what a kind filter can offer."""
    actor.require(Action.READ)
    with svc.uow() as uow:
        return uow.events.kinds(project=project, limit=MAX_KINDS)
