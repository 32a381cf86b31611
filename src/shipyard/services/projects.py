"""Project use cases: register a repository, list and show projects."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath

from shipyard.config.loader import decode_config
from shipyard.domain.auth import Action, Actor
from shipyard.domain.releases import Project
from shipyard.errors import ConflictError, InvalidError, NotFoundError
from shipyard.ports.git import GitRepository
from shipyard.services.config_check import check_servable
from shipyard.services.context import Services
from shipyard.services.project_config import CONFIG_FILE, project_config
from shipyard.services.releases import get_project

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


def _default_name(source: str) -> str:
    stem = PurePosixPath(source.rstrip("/")).name
    stem = stem.removesuffix(".git")
    return re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-") or "project"


def _head(git: GitRepository) -> str:
    try:
        return git.resolve("HEAD")
    except NotFoundError as exc:
        raise InvalidError("the repository has no commits yet") from exc


def _check_source(source: str) -> None:
    if "://" in source or source.startswith("git@") or PurePosixPath(source).is_absolute():
        return
    raise InvalidError(f"project source {source!r} must be an absolute path or a URL")


def add_project(svc: Services, actor: Actor, source: str, *, name: str | None = None) -> Project:
    """Register a repository; its mainline comes from shipyard.yaml on the default branch."""
    actor.require(Action.ADMINISTER)
    _check_source(source)
    git = svc.git(source)
    git.refresh()
    text = decode_config(git.read_file(_head(git), CONFIG_FILE), CONFIG_FILE)
    cfg = project_config(text)
    check_servable(svc, text)
    chosen = name or cfg.project or _default_name(source)
    if not _NAME.match(chosen):
        raise InvalidError(
            f"project name {chosen!r} must be lower-case letters, digits, '.', '_' or '-'"
        )
    if git.branch_tip(cfg.mainline) is None:
        raise NotFoundError(
            f"mainline branch {cfg.mainline!r} not found in {source}",
            hint="set `mainline:` in shipyard.yaml",
        )
    with svc.uow() as uow:
        if uow.projects.get(chosen) is not None:
            raise ConflictError(f"project {chosen!r} already exists")
        now = svc.clock.now()
        project = uow.projects.add(name=chosen, source=source, mainline=cfg.mainline, now=now)
        uow.events.append(
            actor=actor.user,
            kind="project.added",
            subject=chosen,
            project=chosen,
            now=now,
            payload={"source": source, "mainline": cfg.mainline},
        )
        uow.commit()
    return project


def list_projects(svc: Services, actor: Actor) -> Sequence[Project]:
    actor.require(Action.READ)
    with svc.uow() as uow:
        return uow.projects.list()


def show_project(svc: Services, actor: Actor, name: str) -> Project:
    actor.require(Action.READ)
    with svc.uow() as uow:
        return get_project(uow, name)
