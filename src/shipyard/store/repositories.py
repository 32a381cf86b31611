"""SQLAlchemy implementations of the repository ports; rows are mapped to domain records here only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, ScalarSelect, Select, and_, func, literal, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from shipyard.domain.auth import Role
from shipyard.domain.events import Event, EventPage
from shipyard.domain.releases import (
    Artifact,
    Candidate,
    CandidateStatus,
    Pick,
    Project,
    Release,
    Veto,
)
from shipyard.errors import NotFoundError
from shipyard.ports.repositories import TokenGrant
from shipyard.store.audit import AuditTrail
from shipyard.store.tables import (
    ArtifactRow,
    CandidateRow,
    EventRow,
    JobRow,
    PickRow,
    ProjectRow,
    ReleaseRow,
    TokenRow,
    VetoRow,
)

_S = TypeVar("_S", bound=Select[Any])


def _veto(row: VetoRow) -> Veto:
    return Veto(by=row.vetoed_by, at=row.vetoed_at, reason=row.reason)


def _project(row: ProjectRow) -> Project:
    return Project(row.id, row.name, row.source, row.mainline, row.created_at)


# Release's fields in order, for queries that build releases from plain rows.
_RELEASE_COLUMNS = (
    ReleaseRow.id,
    ReleaseRow.project_id,
    ReleaseRow.version,
    ReleaseRow.branch,
    ReleaseRow.base_sha,
    ReleaseRow.created_by,
    ReleaseRow.created_at,
)


def _release(row: ReleaseRow) -> Release:
    return Release(
        row.id,
        row.project_id,
        row.version,
        row.branch,
        row.base_sha,
        row.created_by,
        row.created_at,
    )


class SqlProjects:
    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, *, name: str, source: str, mainline: str, now: datetime) -> Project:
        row = ProjectRow(name=name, source=source, mainline=mainline, created_at=now)
        self._s.add(row)
        self._s.flush()
        return _project(row)

    def get(self, name: str) -> Project | None:
        row = self._s.scalar(select(ProjectRow).where(ProjectRow.name == name))
        return _project(row) if row else None

    def get_by_id(self, project_id: int) -> Project:
        row = self._s.get(ProjectRow, project_id)
        if row is None:
            raise NotFoundError(f"project #{project_id} not found")
        return _project(row)

    def list(self) -> Sequence[Project]:
        return [_project(r) for r in self._s.scalars(select(ProjectRow).order_by(ProjectRow.name))]


class SqlReleases:
    def __init__(self, session: Session) -> None:
        self._s = session

    def add_release(
        self,
        *,
        project: Project,
        version: str,
        branch: str,
        base_sha: str,
        actor: str,
        now: datetime,
    ) -> Release:
        row = ReleaseRow(
            project_id=project.id,
            version=version,
            branch=branch,
            base_sha=base_sha,
            created_by=actor,
            created_at=now,
        )
        self._s.add(row)
        self._s.flush()
        return _release(row)

    def get_release(self, project: Project, version: str) -> Release | None:
        row = self._s.scalar(
            select(ReleaseRow).where(
                ReleaseRow.project_id == project.id, ReleaseRow.version == version
            )
        )
        return _release(row) if row else None

    def get_release_by_id(self, release_id: int) -> Release:
        row = self._s.get(ReleaseRow, release_id)
        if row is None:
            raise NotFoundError(f"release #{release_id} not found")
        return _release(row)

    def list_releases(self, project: Project) -> Sequence[Release]:
        # plain columns, no ORM objects: a project's every release is read on each cut and view
        rows = self._s.execute(
            select(*_RELEASE_COLUMNS)
            .where(ReleaseRow.project_id == project.id)
            .order_by(ReleaseRow.id.desc())
        )
        return [Release(*r) for r in rows]

    def add_candidate(
        self,
        *,
        release: Release,
        number: int,
        name: str,
        sha: str,
        status: CandidateStatus,
        actor: str,
        now: datetime,
        config_text: str,
        picks: Sequence[Pick] = (),
    ) -> Candidate:
        row = CandidateRow(
            release_id=release.id,
            project_id=release.project_id,
            name=name,
            number=number,
            sha=sha,
            status=status.value,
            created_by=actor,
            created_at=now,
            config_text=config_text,
            reason="",
        )
        self._s.add(row)
        self._s.flush()
        for p in picks:
            self._s.add(
                PickRow(
                    release_id=release.id,
                    candidate_id=row.id,
                    source_sha=p.source_sha,
                    new_sha=p.new_sha,
                )
            )
        if picks:
            self._s.flush()
        # a new candidate has no artifacts yet and exactly these picks: nothing to read back
        return self._to_candidate(row, (), tuple(Pick(p.source_sha, p.new_sha) for p in picks))

    def _candidate(self, row: CandidateRow) -> Candidate:
        arts = self._s.scalars(
            select(ArtifactRow).where(ArtifactRow.candidate_id == row.id).order_by(ArtifactRow.name)
        )
        picks = self._s.scalars(
            select(PickRow).where(PickRow.candidate_id == row.id).order_by(PickRow.id)
        )
        veto = self._s.scalar(
            select(VetoRow).where(
                VetoRow.project_id == row.project_id, VetoRow.candidate == row.name
            )
        )
        return self._to_candidate(
            row,
            tuple(Artifact(a.name, a.digest, a.size, a.uri) for a in arts),
            tuple(Pick(p.source_sha, p.new_sha) for p in picks),
            _veto(veto) if veto else None,
        )

    @staticmethod
    def _to_candidate(
        row: CandidateRow,
        artifacts: tuple[Artifact, ...],
        picks: tuple[Pick, ...],
        veto: Veto | None = None,
    ) -> Candidate:
        return Candidate(
            id=row.id,
            release_id=row.release_id,
            name=row.name,
            number=row.number,
            sha=row.sha,
            status=CandidateStatus(row.status),
            created_by=row.created_by,
            created_at=row.created_at,
            config_text=row.config_text,
            build_log=row.build_log,
            reason=row.reason,
            built_at=row.built_at,
            artifacts=artifacts,
            picks=picks,
            veto=veto,
        )

    def candidates(self, release: Release) -> Sequence[Candidate]:
        """Four queries however many candidates there are (not three more per candidate)."""
        rows = list(
            self._s.scalars(
                select(CandidateRow)
                .where(CandidateRow.release_id == release.id)
                .order_by(CandidateRow.number)
            )
        )
        if not rows:
            return []
        # the ids read, not a subquery: under READ COMMITTED a subquery sees a candidate that a
        # concurrent pick committed since (then a KeyError, a 500, on main)
        ids = [r.id for r in rows]
        arts: dict[int, list[Artifact]] = {r.id: [] for r in rows}
        for a in self._s.scalars(
            select(ArtifactRow)
            .where(ArtifactRow.candidate_id.in_(ids))
            .order_by(ArtifactRow.candidate_id, ArtifactRow.name)
        ):
            arts[a.candidate_id].append(Artifact(a.name, a.digest, a.size, a.uri))
        picks: dict[int, list[Pick]] = {r.id: [] for r in rows}
        for p in self._s.scalars(
            select(PickRow).where(PickRow.candidate_id.in_(ids)).order_by(PickRow.id)
        ):
            picks[p.candidate_id].append(Pick(p.source_sha, p.new_sha))
        vetoes = {
            v.candidate: _veto(v)
            for v in self._s.scalars(
                select(VetoRow).where(
                    VetoRow.project_id == rows[0].project_id,
                    VetoRow.candidate.in_([r.name for r in rows]),
                )
            )
        }
        return [
            self._to_candidate(r, tuple(arts[r.id]), tuple(picks[r.id]), vetoes.get(r.name))
            for r in rows
        ]

    def get_candidate(self, project: Project, name: str) -> Candidate | None:
        row = self._s.scalar(
            select(CandidateRow).where(
                CandidateRow.project_id == project.id, CandidateRow.name == name
            )
        )
        return self._candidate(row) if row else None

    def get_candidate_by_id(self, candidate_id: int) -> Candidate:
        row = self._s.get(CandidateRow, candidate_id)
        if row is None:
            raise NotFoundError(f"candidate #{candidate_id} not found")
        return self._candidate(row)

    def finish_build(
        self,
        candidate_id: int,
        *,
        status: CandidateStatus,
        reason: str,
        now: datetime,
        artifacts: Sequence[Artifact],
    ) -> Candidate:
        row = self._s.get(CandidateRow, candidate_id)
        if row is None:
            raise NotFoundError(f"candidate #{candidate_id} not found")
        row.status = status.value
        row.reason = reason
        row.built_at = now
        for a in artifacts:
            self.add_artifact(candidate_id, a)
        self._s.flush()
        return self._candidate(row)

    def set_build_log(self, candidate_id: int, location: str) -> None:
        self._s.execute(
            update(CandidateRow).where(CandidateRow.id == candidate_id).values(build_log=location)
        )

    def add_artifact(self, candidate_id: int, artifact: Artifact) -> None:
        self._s.add(
            ArtifactRow(
                candidate_id=candidate_id,
                name=artifact.name,
                digest=artifact.digest,
                size=artifact.size,
                uri=artifact.uri,
            )
        )
        self._s.flush()

    def picks_of_project(self, project: Project) -> Sequence[tuple[Release, Pick]]:
        rows = self._s.execute(
            select(*_RELEASE_COLUMNS, PickRow.source_sha, PickRow.new_sha)
            .join(PickRow, PickRow.release_id == ReleaseRow.id)
            .where(ReleaseRow.project_id == project.id)
            .order_by(PickRow.id)
        )
        return [
            (Release(rid, pid, version, branch, base, by, at), Pick(source, new))
            for rid, pid, version, branch, base, by, at, source, new in rows
        ]


def _grant(row: TokenRow) -> TokenGrant:
    return TokenGrant(
        id=row.id,
        user=row.user,
        role=Role(row.role),
        emails=tuple(row.emails or ()),
        projects=tuple(row.projects or ()),
        environments=tuple(row.environments or ()),
    )


class SqlTokens:
    def __init__(self, session: Session) -> None:
        self._s = session

    def add(
        self,
        *,
        user: str,
        role: Role,
        token_hash: str,
        actor: str,
        now: datetime,
        emails: Sequence[str] = (),
        projects: Sequence[str] = (),
        environments: Sequence[str] = (),
    ) -> int:
        row = TokenRow(
            user=user,
            role=role.value,
            token_hash=token_hash,
            created_by=actor,
            created_at=now,
            emails=list(emails),
            projects=list(projects),
            environments=list(environments),
        )
        self._s.add(row)
        self._s.flush()
        return row.id

    def find(self, token_hash: str) -> tuple[int, str, Role] | None:
        found = self.grant(token_hash)
        return (found.id, found.user, found.role) if found else None

    def grant(self, token_hash: str) -> TokenGrant | None:
        row = self._s.scalar(
            select(TokenRow).where(TokenRow.token_hash == token_hash, TokenRow.revoked_at.is_(None))
        )
        return _grant(row) if row else None

    def get(self, token_id: int) -> TokenGrant | None:
        row = self._s.get(TokenRow, token_id)
        return _grant(row) if row is not None and row.revoked_at is None else None

    def users_by_email(self) -> dict[str, frozenset[str]]:
        found: dict[str, set[str]] = {}
        for user, emails in self._s.execute(select(TokenRow.user, TokenRow.emails)):
            for email in emails or ():
                found.setdefault(email.casefold(), set()).add(user)
        return {email: frozenset(users) for email, users in found.items()}

    def emails_of(self, user: str) -> frozenset[str]:
        rows = self._s.scalars(select(TokenRow.emails).where(TokenRow.user == user))
        return frozenset(e.casefold() for emails in rows for e in emails or ())

    def global_admins(self) -> int:
        live_admins = (TokenRow.role == Role.ADMIN.value, TokenRow.revoked_at.is_(None))
        # a no-op UPDATE first: the write lock on SQLite, row locks on PostgreSQL, until commit;
        # so two revokes at once cannot both count the other's token as the admin left
        self._s.execute(update(TokenRow).where(*live_admins).values(role=TokenRow.role))
        rows = self._s.execute(select(TokenRow.projects, TokenRow.environments).where(*live_admins))
        return sum(1 for projects, envs in rows if not projects and not envs)

    def count(self) -> int:
        return int(self._s.scalar(select(func.count()).select_from(TokenRow)) or 0)

    def list(self) -> Sequence[dict[str, Any]]:
        return [
            {
                "id": r.id,
                "user": r.user,
                "role": r.role,
                "emails": list(r.emails or ()),
                "projects": list(r.projects or ()),
                "environments": list(r.environments or ()),
                "created_by": r.created_by,
                "created_at": r.created_at.isoformat(),
                "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
            }
            for r in self._s.scalars(select(TokenRow).order_by(TokenRow.id))
        ]

    def revoke(self, token_id: int, now: datetime) -> bool:
        row = self._s.get(TokenRow, token_id)
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = now
        return True


class SqlEvents:
    def __init__(self, session: Session, trail: AuditTrail) -> None:
        self._s = session
        self._trail = trail

    def append(
        self,
        *,
        actor: str,
        kind: str,
        subject: str,
        payload: dict[str, Any],
        now: datetime,
        project: str | None = None,
    ) -> None:
        values = {
            "at": now,
            "actor": actor,
            "kind": kind,
            "project": project,
            "subject": subject,
            "payload": payload,
        }
        self._trail.add(EventRow.__tablename__, project, values)

    def list(
        self,
        *,
        project: str | None = None,
        limit: int = 100,
        after_id: int = 0,
        kind: str | None = None,
    ) -> Sequence[Event]:
        q = _matching(select(EventRow), project=project, kind=kind).where(EventRow.id > after_id)
        return [_event(r) for r in self._s.scalars(q.order_by(EventRow.id).limit(limit))]

    def newest(
        self,
        *,
        project: str | None = None,
        kind: str | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> EventPage:
        q = _matching(select(EventRow), project=project, kind=kind)
        if before is not None:
            q = q.where(EventRow.id < before)
        rows = list(self._s.scalars(q.order_by(EventRow.id.desc()).limit(limit + 1)))
        return EventPage(tuple(_event(r) for r in rows[:limit]), older=len(rows) > limit)

    def kinds(self, *, project: str | None = None, limit: int = 200) -> Sequence[str]:
        """A loose index scan: each step seeks the next kind above the last one found.

        ``SELECT DISTINCT kind`` would read every event (neither database skips through an index
        on its own); this reads one index entry per kind, and at most ``limit`` of them."""

        def next_kind(above: ColumnElement[str] | None) -> ScalarSelect[str]:
            q = _matching(select(func.min(EventRow.kind)), project=project, kind=None)
            return (q if above is None else q.where(EventRow.kind > above)).scalar_subquery()

        seed = select(next_kind(None).label("kind"), literal(1).label("n")).cte(
            "kinds", recursive=True
        )
        step = select(next_kind(seed.c.kind), seed.c.n + 1).where(
            seed.c.kind.is_not(None), seed.c.n < limit
        )
        walk = seed.union_all(step)
        found = select(walk.c.kind).where(walk.c.kind.is_not(None)).order_by(walk.c.n)
        return list(self._s.scalars(found))


def _event(r: EventRow) -> Event:
    return Event(r.id, r.at, r.actor, r.kind, r.project, r.subject, r.payload)


def _matching(q: _S, *, project: str | None, kind: str | None) -> _S:
    """``q`` narrowed to the events of ``project`` whose kind is ``kind`` or starts ``kind.``."""
    if project is not None:
        q = q.where(EventRow.project == project)
    if kind:
        q = q.where(or_(EventRow.kind == kind, _starts_with(EventRow.kind, kind + ".")))
    return q


def _starts_with(column: InstrumentedAttribute[str], prefix: str) -> ColumnElement[bool]:
    """``column`` starts with ``prefix``, taken literally, and case-sensitively on both databases.

    ``autoescape`` escapes ``%`` and ``_`` (and the escape character), so a kind such as
    ``a_b`` does not match ``axb.c``. SQLite's LIKE ignores ASCII case, so the comparison of the
    leading characters keeps ``Deployment`` from matching ``deployment.*`` there (as PostgreSQL
    would not)."""
    return and_(
        column.startswith(prefix, autoescape=True),
        func.substr(column, 1, len(prefix)) == prefix,
    )


class SqlJobs:
    def __init__(self, session: Session) -> None:
        self._s = session

    def enqueue(self, *, kind: str, subject_id: int, now: datetime) -> int:
        row = JobRow(
            kind=kind, subject_id=subject_id, state="pending", created_at=now, updated_at=now
        )
        self._s.add(row)
        self._s.flush()
        return row.id

    def claim(
        self, *, kinds: Sequence[str], owner: str, now: datetime, lease_s: float
    ) -> tuple[int, str, int] | None:
        due = and_(
            JobRow.state == "pending",
            JobRow.kind.in_(kinds),
            or_(JobRow.lease_until.is_(None), JobRow.lease_until < now),
        )
        q = select(JobRow).where(due).order_by(JobRow.id).limit(1)
        if self._s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        row = self._s.scalar(q)
        if row is None:
            return None
        # compare-and-set on the lease, so two workers on SQLite cannot both win
        won = self._s.execute(
            update(JobRow)
            .where(JobRow.id == row.id, due)
            .values(
                lease_owner=owner,
                lease_until=now + timedelta(seconds=lease_s),
                attempts=JobRow.attempts + 1,
                updated_at=now,
            )
        )
        if getattr(won, "rowcount", 0) != 1:
            return None
        return row.id, row.kind, row.subject_id

    def renew(self, job_id: int, *, owner: str, now: datetime, lease_s: float) -> bool:
        res = self._s.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.lease_owner == owner, JobRow.state == "pending")
            .values(lease_until=now + timedelta(seconds=lease_s), updated_at=now)
        )
        return getattr(res, "rowcount", 0) == 1

    def complete(self, job_id: int, *, owner: str, now: datetime) -> bool:
        res = self._s.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.lease_owner == owner, JobRow.state == "pending")
            .values(state="done", lease_until=None, updated_at=now)
        )
        return getattr(res, "rowcount", 0) == 1

    def attempts(self, job_id: int) -> int:
        return int(self._s.scalar(select(JobRow.attempts).where(JobRow.id == job_id)) or 0)

    def retry(self, job_id: int, *, owner: str, now: datetime, error: str, at: datetime) -> bool:
        # the lease column doubles as "not before": claim skips a job whose lease_until is ahead
        res = self._s.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.lease_owner == owner, JobRow.state == "pending")
            .values(lease_owner=None, lease_until=at, error=error[:4000], updated_at=now)
        )
        return getattr(res, "rowcount", 0) == 1

    def bury(self, job_id: int, *, owner: str, now: datetime, error: str) -> bool:
        res = self._s.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.lease_owner == owner, JobRow.state == "pending")
            .values(state="dead", lease_until=None, error=error[:4000], updated_at=now)
        )
        return getattr(res, "rowcount", 0) == 1
