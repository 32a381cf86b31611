"""Server-side freezes: ``shipyard freeze add | list | end``.

A freeze in shipyard.yaml needs a commit on the mainline; an incident needs one now. These are put
on an environment from the server, audited, and read live by the gates with the yaml's own (see
``live_policy``), so every waiting or new deployment of the environment meets them, whatever its
candidate. Putting one on is safe, so deployers and approvers may; lifting one early opens the
gate, so only an approver (or admin) may, and the event says who.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from shipyard.config.durations import parse_duration
from shipyard.domain.auth import Action, Actor
from shipyard.domain.freezes import require_aware
from shipyard.errors import (
    ConflictError,
    ErrorCode,
    InvalidError,
    NotFoundError,
)
from shipyard.ports.repositories import ServerFreeze, UnitOfWork
from shipyard.services.context import Services
from shipyard.services.live_policy import mainline_config
from shipyard.services.project_config import environment_specs
from shipyard.services.releases import get_project

MAX_FREEZE = timedelta(days=366)
MAX_REASON = 500


def _payload(f: ServerFreeze) -> dict[str, object]:
    return {
        "freeze": f.id,
        "environment": f.environment,
        "start": f.start.isoformat(),
        "end": f.end.isoformat(),
        "reason": f.reason,
        "ended_by": f.ended_by,
    }


def _known_environments(svc: Services, uow: UnitOfWork, project_name: str) -> set[str]:
    """Environments the mainline's or the newest candidate's shipyard.yaml declares."""
    project = get_project(uow, project_name)
    texts = [mainline_config(svc, project) or ""]
    for release in uow.releases.list_releases(project):
        cands = uow.releases.candidates(release)
        if cands:
            texts.append(cands[-1].config_text)
            break
    names: set[str] = set()
    for text in texts:
        try:
            names.update(s.rules.name for s in environment_specs(text))
        except InvalidError:
            continue
    return names


def _end_of(now: datetime, duration: str | None, until: datetime | None) -> datetime:
    if (duration is None) == (until is None):
        raise InvalidError("give either a duration (2h) or an end time (--until), not both")
    if duration is not None:
        try:
            seconds = parse_duration(duration)
        except ValueError as exc:
            raise InvalidError(f"duration: {exc}") from None
        if not 0 < seconds <= MAX_FREEZE.total_seconds():
            raise InvalidError("a freeze lasts more than 0 seconds and at most a year")
        return now + timedelta(seconds=seconds)
    assert until is not None
    end = require_aware(until, "until")
    if not now < end <= now + MAX_FREEZE:
        raise InvalidError("--until must be in the future and at most a year away")
    return end


def add_freeze(
    svc: Services,
    actor: Actor,
    project_name: str,
    environment: str,
    *,
    reason: str,
    duration: str | None = None,
    until: datetime | None = None,
) -> ServerFreeze:
    """Freeze ``environment`` from now for ``duration`` (``2h``) or until ``until``."""
    action = Action.DEPLOY if actor.allows(Action.DEPLOY) else Action.APPROVE
    actor.require(action, project=project_name, environment=environment)
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidError(f"a freeze needs a reason (1-{MAX_REASON} characters)")
    now = svc.clock.now()
    end = _end_of(now, duration, until)
    with svc.uow() as uow:
        known = _known_environments(svc, uow, project_name)
        if environment not in known:
            raise NotFoundError(
                f"unknown environment {environment!r}; known: {', '.join(sorted(known)) or 'none'}"
            )
        project = get_project(uow, project_name)
        f = uow.freezes.add(
            project, environment, start=now, end=end, reason=reason, by=actor.user, now=now
        )
        uow.events.append(
            actor=actor.user,
            kind="freeze.added",
            subject=f"freeze {f.id}",
            project=project.name,
            now=now,
            payload=_payload(f),
        )
        uow.commit()
    return f


def list_freezes(
    svc: Services, actor: Actor, project_name: str | None = None, environment: str | None = None
) -> Sequence[ServerFreeze]:
    """Server freezes, newest first (ended ones too: they are history)."""
    actor.require(Action.READ)
    with svc.uow() as uow:
        project = get_project(uow, project_name) if project_name else None
        return uow.freezes.list(project, environment if project else None)


def end_freeze(svc: Services, actor: Actor, freeze_id: int) -> ServerFreeze:
    """Lift a freeze now; only an approver (or admin) where the freeze is."""
    actor.require(Action.APPROVE)
    with svc.uow() as uow:
        found = uow.freezes.get(freeze_id)
        if found is None:
            raise NotFoundError(f"freeze {freeze_id} not found")
        actor.require(Action.APPROVE, project=found.project, environment=found.environment)
        now = svc.clock.now()
        ended = uow.freezes.end(freeze_id, by=actor.user, now=now)
        if ended is None:
            raise ConflictError(
                f"freeze {freeze_id} is already over", code=ErrorCode.INVALID_TRANSITION
            )
        uow.events.append(
            actor=actor.user,
            kind="freeze.ended",
            subject=f"freeze {freeze_id}",
            project=ended.project,
            now=now,
            payload=_payload(ended),
        )
        uow.commit()
    return ended
