"""SQLAlchemy implementation of the flag port: flags, their history, per-environment revisions."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shipyard.domain.releases import Project
from shipyard.ports.repositories import FlagChangeRecord, FlagRecord
from shipyard.store.audit import AuditTrail
from shipyard.store.tables import FlagChangeRow, FlagEnvironmentRow, FlagRow


def _flag(project: Project, env: FlagEnvironmentRow, row: FlagRow) -> FlagRecord:
    return FlagRecord(
        id=row.id,
        project=project.name,
        environment=env.environment,
        key=row.key,
        description=row.description,
        definition=copy.deepcopy(row.definition),
        version=row.version,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


class SqlFlags:
    def __init__(self, session: Session, trail: AuditTrail) -> None:
        self._s = session
        self._trail = trail

    def _env(self, project: Project, environment: str) -> FlagEnvironmentRow | None:
        return self._s.scalar(
            select(FlagEnvironmentRow).where(
                FlagEnvironmentRow.project_id == project.id,
                FlagEnvironmentRow.environment == environment,
            )
        )

    def _env_or_new(self, project: Project, environment: str, now: datetime) -> FlagEnvironmentRow:
        env = self._env(project, environment)
        if env is None:
            env = FlagEnvironmentRow(
                project_id=project.id,
                environment=environment,
                revision=0,
                segments=[],
                updated_at=now,
            )
            self._s.add(env)
            self._s.flush()
        return env

    def revision(self, project: Project, environment: str) -> int:
        rev = self._s.scalar(
            select(FlagEnvironmentRow.revision).where(
                FlagEnvironmentRow.project_id == project.id,
                FlagEnvironmentRow.environment == environment,
            )
        )
        return int(rev or 0)

    def next_revision(self, project: Project, environment: str, now: datetime) -> int:
        env = self._env_or_new(project, environment, now)
        # one UPDATE: atomic on SQLite, and it row-locks on PostgreSQL until commit
        self._s.execute(
            update(FlagEnvironmentRow)
            .where(FlagEnvironmentRow.id == env.id)
            .values(revision=FlagEnvironmentRow.revision + 1, updated_at=now)
        )
        self._s.refresh(env)
        return env.revision

    def lock(self, project: Project, environment: str, now: datetime) -> None:
        env = self._env_or_new(project, environment, now)
        # a no-op UPDATE: a row lock on PostgreSQL, the write lock on SQLite, until commit
        self._s.execute(
            update(FlagEnvironmentRow)
            .where(FlagEnvironmentRow.id == env.id)
            .values(revision=FlagEnvironmentRow.revision)
        )

    def get(self, project: Project, environment: str, key: str) -> FlagRecord | None:
        env = self._env(project, environment)
        if env is None:
            return None
        row = self._s.scalar(
            select(FlagRow).where(FlagRow.environment_id == env.id, FlagRow.key == key)
        )
        return _flag(project, env, row) if row else None

    def list(self, project: Project, environment: str) -> Sequence[FlagRecord]:
        env = self._env(project, environment)
        if env is None:
            return []
        rows = self._s.scalars(
            select(FlagRow).where(FlagRow.environment_id == env.id).order_by(FlagRow.key)
        )
        return [_flag(project, env, r) for r in rows]

    def segments(self, project: Project, environment: str) -> Sequence[dict[str, Any]]:
        env = self._env(project, environment)
        return copy.deepcopy(list(env.segments or [])) if env else []

    def set_segments(
        self, project: Project, environment: str, segments: Sequence[dict[str, Any]]
    ) -> None:
        env = self._env(project, environment)
        if env is None:
            raise LookupError("call next_revision first: it creates the environment")
        env.segments = copy.deepcopy(list(segments))
        self._s.flush()

    def save(
        self,
        *,
        project: Project,
        environment: str,
        key: str,
        description: str,
        definition: dict[str, Any],
        actor: str,
        now: datetime,
    ) -> FlagRecord:
        env = self._env_or_new(project, environment, now)
        row = self._s.scalar(
            select(FlagRow).where(FlagRow.environment_id == env.id, FlagRow.key == key)
        )
        if row is None:
            row = FlagRow(
                environment_id=env.id,
                key=key,
                description=description,
                definition=copy.deepcopy(definition),
                version=1,
                created_by=actor,
                created_at=now,
                updated_by=actor,
                updated_at=now,
            )
            self._s.add(row)
        else:
            row.description = description
            row.definition = copy.deepcopy(definition)  # a new object, so the JSON is rewritten
            row.version = row.version + 1
            row.updated_by = actor
            row.updated_at = now
        self._s.flush()
        return _flag(project, env, row)

    def add_change(
        self,
        flag: FlagRecord,
        *,
        revision: int,
        kind: str,
        actor: str,
        now: datetime,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        values = {
            "flag_id": flag.id,
            "revision": revision,
            "kind": kind,
            "actor": actor,
            "at": now,
            "before": copy.deepcopy(before),
            "after": copy.deepcopy(after),
        }
        self._trail.add(FlagChangeRow.__tablename__, flag.project, values)

    def changes(self, flag: FlagRecord, limit: int = 100) -> Sequence[FlagChangeRecord]:
        rows = self._s.scalars(
            select(FlagChangeRow)
            .where(FlagChangeRow.flag_id == flag.id)
            .order_by(FlagChangeRow.id.desc())
            .limit(limit)
        )
        return [
            FlagChangeRecord(r.id, r.revision, r.kind, r.actor, r.at, r.before, r.after)
            for r in rows
        ]
