"""Rollouts and their decision records: domain.rollouts records <-> rows (state as JSON).

The columns are what the engine selects on (phase, due time, lease); everything else of the
rollout, including the policy it runs and the analysis measurements, is one JSON document, so
a restarted engine continues from exactly what was saved.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from shipyard.analysis.checks import CheckResult, CheckSpec, QueryResult, Snapshot
from shipyard.analysis.samples import Verdict
from shipyard.analysis.slices import ArmCounters
from shipyard.domain.releases import Project
from shipyard.domain.rollouts import (
    DEFAULT_ERROR_LIMIT,
    Analysis,
    AnalysisRun,
    Approval,
    ErrorStreak,
    FaultKind,
    Mirror,
    OnError,
    Pause,
    PauseReason,
    Phase,
    PolicySpec,
    Record,
    Rollout,
    Segment,
    SegmentRule,
    SetWeight,
    Step,
    StepKind,
)
from shipyard.errors import NotFoundError
from shipyard.ports.repositories import RolloutRecordEntry
from shipyard.store.audit import AuditTrail
from shipyard.store.tables import ProjectRow, RolloutRecordRow, RolloutRow

__all__ = ["SqlRollouts", "decode_rollout_state", "encode_rollout_state"]


# --- codec ------------------------------------------------------------------------------------


def _time(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _parse_time(s: Any) -> datetime | None:
    return datetime.fromisoformat(s) if isinstance(s, str) else None


def _num(x: float | None) -> float | str | None:
    """JSON has no infinities or NaN."""
    if x is None or math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _unnum(x: Any) -> float | None:
    if x is None:
        return None
    return float(x)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _arm(a: ArmCounters | None) -> dict[str, Any] | None:
    if a is None:
        return None
    return {
        "requests": a.requests,
        "errors": a.errors,
        "buckets": [[_num(le), n] for le, n in sorted(a.buckets.items())],
    }


def _unarm(d: Any) -> ArmCounters | None:
    if d is None:
        return None
    return ArmCounters(
        float(d["requests"]),
        float(d["errors"]),
        {float(le): float(n) for le, n in d.get("buckets", [])},
    )


def _check(c: CheckSpec) -> dict[str, Any]:
    return {
        "name": c.name,
        "provider": c.provider,
        "metric": c.metric,
        "query": c.query,
        "judge": c.judge,
        "max": c.max,
        "min": c.min,
        "compare_baseline": c.compare_baseline,
        "max_increase": c.max_increase,
        "negligible_increase": c.negligible_increase,
        "alpha": c.alpha,
        "failure_limit": c.failure_limit,
        "interval_s": c.interval_s,
        "dry_run": c.dry_run,
        "consecutive_error_limit": c.consecutive_error_limit,
    }


def _uncheck(d: Mapping[str, Any]) -> CheckSpec:
    return CheckSpec(**d)


def _segment(s: SegmentRule | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {"kind": s.kind, "name": s.name, "value": s.value, "regex": s.regex, "negate": s.negate}


def _unsegment(d: Any) -> SegmentRule | None:
    return SegmentRule(**d) if d is not None else None


def _step(s: Step) -> dict[str, Any]:
    """Every step is stored with all the fields of the untyped steps of before, so rows written
    by this version and by older ones read alike."""
    return {
        "kind": s.kind.value,
        "weight": s.weight if isinstance(s, SetWeight) else None,
        "duration_s": s.duration_s if isinstance(s, Pause | Analysis) else None,
        "checks": [_check(c) for c in s.checks] if isinstance(s, Analysis) else [],
        "interval_s": s.interval_s if isinstance(s, Analysis) else None,
        "required": s.required if isinstance(s, Approval) else 1,
        "approvers": list(s.approvers) if isinstance(s, Approval) else [],
        "segment": _segment(s.segment) if isinstance(s, Segment) else None,
        "mirror": s.mirror if isinstance(s, Mirror) else None,
        "label": s.label,
    }


def _unweight(d: Mapping[str, Any]) -> Step:
    return SetWeight(float(d["weight"]), d.get("label", ""))


def _unpause(d: Mapping[str, Any]) -> Step:
    return Pause(d.get("duration_s"), d.get("label", ""))


def _unanalysis_step(d: Mapping[str, Any]) -> Step:
    return Analysis(
        tuple(_uncheck(c) for c in d.get("checks", [])),
        d.get("duration_s"),
        d.get("interval_s"),
        d.get("label", ""),
    )


def _unapproval(d: Mapping[str, Any]) -> Step:
    return Approval(d.get("required", 1), tuple(d.get("approvers", [])), d.get("label", ""))


def _unsegment_step(d: Mapping[str, Any]) -> Step:
    segment = _unsegment(d["segment"])
    assert segment is not None
    return Segment(segment, d.get("label", ""))


def _unmirror(d: Mapping[str, Any]) -> Step:
    return Mirror(float(d["mirror"]), d.get("label", ""))


_STEP_DECODERS = {
    StepKind.SET_WEIGHT: _unweight,
    StepKind.PAUSE: _unpause,
    StepKind.ANALYSIS: _unanalysis_step,
    StepKind.APPROVAL: _unapproval,
    StepKind.SEGMENT: _unsegment_step,
    StepKind.MIRROR: _unmirror,
}


def _unstep(d: Mapping[str, Any]) -> Step:
    return _STEP_DECODERS[StepKind(d["kind"])](d)


def _streak(s: ErrorStreak | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "source": s.source,
        "fault": s.fault.value,
        "message": s.message,
        "count": s.count,
        "first_at": _time(s.first_at),
        "since": _time(s.since),
        "last_at": _time(s.last_at),
        "same": s.same,
    }


def _unstreak(d: Any) -> ErrorStreak | None:
    if d is None:
        return None
    first, since, last = (_parse_time(d[k]) for k in ("first_at", "since", "last_at"))
    assert first is not None and since is not None and last is not None
    return ErrorStreak(
        d["source"], FaultKind(d["fault"]), d["message"], d["count"], first, since, last, d["same"]
    )


def legacy_pause_reason(text: str, step: Step | None) -> PauseReason:
    """What kind of wait a paused row saved before ``paused_for`` existed is, from its words."""
    if not text:
        return PauseReason.NONE
    if text.startswith("paused by"):
        return PauseReason.HUMAN
    if text.startswith("analysis inconclusive"):
        return PauseReason.INCONCLUSIVE
    if isinstance(step, Approval):
        return PauseReason.APPROVAL
    if isinstance(step, Pause):
        return PauseReason.PAUSE_STEP
    return PauseReason.HUMAN


def _result(x: CheckResult) -> dict[str, Any]:
    return _jsonable(x.to_dict())  # type: ignore[no-any-return]


def _unresult(d: Mapping[str, Any]) -> CheckResult:
    return CheckResult(
        name=d["name"],
        verdict=Verdict(d["verdict"]),
        value=_unnum(d["value"]),
        baseline=_unnum(d["baseline"]),
        failures=d["failures"],
        failure_limit=d["failure_limit"],
        measurements=d["measurements"],
        dry_run=d["dry_run"],
        reason=d["reason"],
        evidence=d.get("evidence", {}),
    )


def _analysis(a: AnalysisRun | None) -> dict[str, Any] | None:
    if a is None:
        return None
    return {
        "started_at": _time(a.started_at),
        "last_at": _time(a.last_at),
        "snapshots": [
            {"at": s.at, "canary": _arm(s.canary), "baseline": _arm(s.baseline)}
            for s in a.snapshots
        ],
        "queries": {
            name: [
                {
                    "at": q.at,
                    "canary": _num(q.canary),
                    "baseline": _num(q.baseline),
                    "query": q.query,
                    "reason": q.reason,
                }
                for q in results
            ]
            for name, results in a.queries.items()
        },
        "results": [_result(x) for x in a.results],
        "errors": {name: _streak(e) for name, e in a.errors.items()},
    }


def _unanalysis(d: Any) -> AnalysisRun | None:
    if d is None:
        return None
    started = _parse_time(d["started_at"])
    assert started is not None
    snapshots = []
    for s in d["snapshots"]:
        canary = _unarm(s["canary"])
        assert canary is not None
        snapshots.append(Snapshot(s["at"], canary, _unarm(s["baseline"])))
    return AnalysisRun(
        started_at=started,
        last_at=_parse_time(d["last_at"]),
        snapshots=tuple(snapshots),
        queries={
            name: tuple(
                QueryResult(
                    q["at"], _unnum(q["canary"]), _unnum(q["baseline"]), q["query"], q["reason"]
                )
                for q in results
            )
            for name, results in d["queries"].items()
        },
        results=tuple(_unresult(x) for x in d["results"]),
        errors={
            name: e
            for name, e in ((n, _unstreak(x)) for n, x in d.get("errors", {}).items())
            if e is not None
        },
    )


def _unearlier(items: Sequence[Mapping[str, Any]]) -> tuple[tuple[int, AnalysisRun], ...]:
    out = []
    for item in items:
        run = _unanalysis(item["run"])
        if run is not None:
            out.append((int(item["step"]), run))
    return tuple(out)


def encode_rollout_state(r: Rollout) -> dict[str, Any]:
    p = r.policy
    return {
        "policy": {
            "name": p.name,
            "strategy": p.strategy,
            "steps": [_step(s) for s in p.steps],
            "keep_old_for_s": p.keep_old_for_s,
            "router": p.router,
            "flag": p.flag,
            "consecutive_error_limit": p.consecutive_error_limit,
            "on_error": p.on_error.value,
        },
        "requested_by": r.requested_by,
        "step": r.step,
        "step_started_at": _time(r.step_started_at),
        "weight": r.weight,
        "segment": _segment(r.segment),
        "mirror": r.mirror,
        "analysis": _analysis(r.analysis),
        "earlier_analyses": [{"step": i, "run": _analysis(a)} for i, a in r.earlier_analyses],
        "approvals": list(r.approvals),
        "pause_reason": r.pause_reason,
        "reason": r.reason,
        "retire_at": _time(r.retire_at),
        "old_retired": r.old_retired,
        "finished_at": _time(r.finished_at),
        "paused_for": r.paused_for.value,
        "errors": _streak(r.errors),
        "not_done": list(r.not_done),
    }


def decode_rollout_state(row: RolloutRow, project: str) -> Rollout:
    d = row.state
    p = d["policy"]
    steps = tuple(_unstep(s) for s in p["steps"])
    step = d["step"]
    paused_for = d.get("paused_for")  # absent in rows saved before typed pause reasons
    return Rollout(
        id=row.id,
        deployment_id=row.deployment_id,
        project=project,
        environment=row.environment,
        canary=row.canary,
        stable=row.stable,
        policy=PolicySpec(
            p["name"],
            p["strategy"],
            steps,
            p["keep_old_for_s"],
            p.get("router", "haproxy"),  # rollouts saved before flag routing
            p.get("flag"),
            p.get("consecutive_error_limit", DEFAULT_ERROR_LIMIT),
            OnError(p.get("on_error", OnError.ABORT)),
        ),
        requested_by=d["requested_by"],
        created_at=row.created_at,
        phase=Phase(row.phase),
        step=step,
        step_started_at=_parse_time(d["step_started_at"]),
        weight=d["weight"],
        segment=_unsegment(d["segment"]),
        mirror=d["mirror"],
        analysis=_unanalysis(d["analysis"]),
        earlier_analyses=_unearlier(d.get("earlier_analyses", [])),  # absent in older rows
        approvals=tuple(d["approvals"]),
        pause_reason=d["pause_reason"],
        reason=d["reason"],
        due_at=row.due_at,
        retire_at=_parse_time(d["retire_at"]),
        old_retired=d["old_retired"],
        finished_at=_parse_time(d["finished_at"]),
        revision=row.revision,
        last_error=row.last_error,
        paused_for=(
            PauseReason(paused_for)
            if paused_for is not None
            else legacy_pause_reason(d["pause_reason"], steps[step] if step < len(steps) else None)
        ),
        errors=_unstreak(d.get("errors")),
        not_done=tuple(d.get("not_done", ())),
    )


# --- repository -------------------------------------------------------------------------------


class SqlRollouts:
    def __init__(self, session: Session, trail: AuditTrail) -> None:
        self._s = session
        self._trail = trail

    def _project(self, project_id: int) -> str:
        row = self._s.get(ProjectRow, project_id)
        assert row is not None
        return row.name

    def _decode(self, row: RolloutRow) -> Rollout:
        return decode_rollout_state(row, self._project(row.project_id))

    def add(self, project: Project, r: Rollout, now: datetime) -> Rollout:
        row = RolloutRow(
            deployment_id=r.deployment_id,
            project_id=project.id,
            environment=r.environment,
            canary=r.canary,
            stable=r.stable,
            phase=r.phase.value,
            active=r.active,
            due_at=r.due_at,
            revision=0,
            last_error="",
            state=encode_rollout_state(r),
            created_at=now,
            updated_at=now,
        )
        self._s.add(row)
        self._s.flush()
        return replace(r, id=row.id)

    def get(self, rollout_id: int) -> Rollout:
        row = self._s.get(RolloutRow, rollout_id)
        if row is None:
            raise NotFoundError(f"rollout {rollout_id} not found")
        return self._decode(row)

    def for_deployment(self, deployment_id: int) -> Rollout | None:
        row = self._s.scalar(select(RolloutRow).where(RolloutRow.deployment_id == deployment_id))
        return self._decode(row) if row is not None else None

    def latest(self, project: Project, environment: str) -> Rollout | None:
        row = self._s.scalar(
            select(RolloutRow)
            .where(RolloutRow.project_id == project.id, RolloutRow.environment == environment)
            .order_by(RolloutRow.id.desc())
            .limit(1)
        )
        return self._decode(row) if row is not None else None

    def active_ids(self) -> Sequence[int]:
        return list(self._s.scalars(select(RolloutRow.id).where(RolloutRow.active.is_(True))))

    def save(self, r: Rollout, now: datetime) -> Rollout | None:
        """Compare-and-set on the revision read: None when someone saved in between."""
        res = self._s.execute(
            update(RolloutRow)
            .where(RolloutRow.id == r.id, RolloutRow.revision == r.revision)
            .values(
                phase=r.phase.value,
                active=r.active,
                due_at=r.due_at,
                revision=r.revision + 1,
                last_error=r.last_error[:2000] if r.errors is not None else "",
                state=encode_rollout_state(r),
                updated_at=now,
            )
        )
        if getattr(res, "rowcount", 0) != 1:
            return None
        return replace(r, revision=r.revision + 1)

    def claim(
        self, *, owner: str, now: datetime, lease_s: float, rollout_id: int | None = None
    ) -> int | None:
        """One due rollout whose lease is free or expired, leased to ``owner``; or, with
        ``rollout_id``, that active rollout whether due or not (to re-apply its route)."""
        free = or_(RolloutRow.lease_until.is_(None), RolloutRow.lease_until < now)
        if rollout_id is not None:
            due = and_(RolloutRow.id == rollout_id, RolloutRow.active.is_(True), free)
        else:
            due = and_(
                RolloutRow.active.is_(True),
                RolloutRow.due_at.is_not(None),
                RolloutRow.due_at <= now,
                free,
            )
        q = select(RolloutRow.id).where(due).order_by(RolloutRow.due_at).limit(1)
        if self._s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        rollout_id = self._s.scalar(q)
        if rollout_id is None:
            return None
        won = self._s.execute(
            update(RolloutRow)
            .where(RolloutRow.id == rollout_id, due)
            .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_s))
        )
        return rollout_id if getattr(won, "rowcount", 0) == 1 else None

    def holds_lease(self, rollout_id: int, owner: str, now: datetime) -> bool:
        row = self._s.get(RolloutRow, rollout_id)
        return (
            row is not None
            and row.lease_owner == owner
            and row.lease_until is not None
            and row.lease_until >= now
        )

    def release(self, rollout_id: int, owner: str) -> None:
        self._s.execute(
            update(RolloutRow)
            .where(RolloutRow.id == rollout_id, RolloutRow.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )

    def defer(self, rollout_id: int, owner: str, until: datetime, error: str) -> None:
        row = self._s.get(RolloutRow, rollout_id)
        if row is None or row.lease_owner != owner or not row.active:
            return
        self._s.execute(
            update(RolloutRow)
            .where(RolloutRow.id == rollout_id, RolloutRow.lease_owner == owner)
            .values(due_at=until, last_error=error[:2000])
        )

    def add_records(self, r: Rollout, records: Sequence[Record], now: datetime) -> None:
        for rec in records:
            values = {
                "rollout_id": r.id,
                "at": now,
                "kind": rec.kind,
                "step": rec.step,
                "actor": rec.actor,
                "message": rec.message,
                "evidence": _jsonable(dict(rec.evidence)),
            }
            self._trail.add(RolloutRecordRow.__tablename__, r.project, values)

    def records(self, rollout_id: int, limit: int | None = None) -> Sequence[RolloutRecordEntry]:
        q = select(RolloutRecordRow).where(RolloutRecordRow.rollout_id == rollout_id)
        if limit is not None:
            q = q.order_by(RolloutRecordRow.id.desc()).limit(limit)
        else:
            q = q.order_by(RolloutRecordRow.id)
        rows = list(self._s.scalars(q))
        if limit is not None:
            rows.reverse()
        return [
            RolloutRecordEntry(
                at=row.at,
                record=Record(row.kind, row.step, row.actor, row.message, row.evidence),
            )
            for row in rows
        ]
