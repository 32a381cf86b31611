"""Policy that can change after a cut, read live when a gate is evaluated.

What is built into a candidate (target, steps, checks) comes from its own shipyard.yaml; who may
approve, how many, freezes and protection are the environment's *now*: the project's current
``shipyard.yaml`` on the mainline, plus the freezes put on from the server (``shipyard freeze
add``). So a candidate cut before a freeze was added cannot deploy during it, and tightening an
approval rule holds for candidates already cut (GitLab, Octopus and Spinnaker read it live too).

When the mainline's file cannot be read or no longer names the environment, the snapshot's rules
stand: a broken mainline never opens a gate the snapshot closes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Literal

from shipyard.domain.environments import EnvironmentRules
from shipyard.domain.freezes import OneOffFreeze
from shipyard.domain.releases import Project
from shipyard.errors import ShipyardError
from shipyard.ports.repositories import ServerFreeze, UnitOfWork
from shipyard.services.context import Services
from shipyard.services.project_config import CONFIG_FILE, environment_specs


def mainline_config(svc: Services, project: Project) -> str | None:
    """The shipyard.yaml at the mainline's tip (as last fetched), or None when unreadable."""
    try:
        git = svc.git(project.source)
        tip = git.branch_tip(project.mainline)
        raw = git.read_file(tip, CONFIG_FILE) if tip else None
        return raw.decode() if raw is not None else None
    except (ShipyardError, UnicodeDecodeError):
        return None


def mainline_rules(svc: Services, project: Project) -> tuple[EnvironmentRules, ...] | None:
    """The environments the mainline's shipyard.yaml declares now (None: unreadable)."""
    text = mainline_config(svc, project)
    if text is None:
        return None
    try:
        return tuple(s.rules for s in environment_specs(text))
    except ShipyardError:
        return None


def freeze_window(f: ServerFreeze) -> OneOffFreeze | None:
    """A server freeze as a freeze window (None once ended before it began)."""
    if f.end <= f.start:
        return None
    return OneOffFreeze(start=f.start, end=f.end, reason=f.reason, name=f"freeze #{f.id}")


def server_freezes(
    uow: UnitOfWork, project: Project, environment: str, now: datetime
) -> tuple[OneOffFreeze, ...]:
    """The environment's server freezes that hold now or later."""
    windows = (freeze_window(f) for f in uow.freezes.list(project, environment) if f.end > now)
    return tuple(w for w in windows if w is not None)


def live_rules(
    svc: Services,
    uow: UnitOfWork,
    project: Project,
    snapshot: EnvironmentRules,
    now: datetime,
    mainline: Iterable[EnvironmentRules] | Literal["read"] | None = "read",
) -> EnvironmentRules:
    """``snapshot`` with its approval rule, freezes and protection as they are now.

    ``mainline``: the mainline's environments when the caller read them already."""
    envs = mainline_rules(svc, project) if mainline == "read" else mainline
    current = next((r for r in envs or () if r.name == snapshot.name), None)
    rules = snapshot
    if current is not None:
        rules = replace(
            snapshot,
            approval=current.approval,
            freezes=current.freezes,
            rollback_during_freeze=current.rollback_during_freeze,
            protected=current.protected,
        )
    extra = server_freezes(uow, project, snapshot.name, now)
    return replace(rules, freezes=rules.freezes + extra) if extra else rules


def environment_now(
    svc: Services, uow: UnitOfWork, project: Project, environment: str, now: datetime
) -> EnvironmentRules | None:
    """An environment's rules as they are now, without a candidate (flag changes): the mainline's
    shipyard.yaml plus server freezes; None when neither knows the environment."""
    current = next((r for r in mainline_rules(svc, project) or () if r.name == environment), None)
    extra = server_freezes(uow, project, environment, now)
    if current is None:
        return EnvironmentRules(name=environment, order=0, freezes=extra) if extra else None
    return replace(current, freezes=current.freezes + extra) if extra else current
