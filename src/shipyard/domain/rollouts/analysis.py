"""The analysis step's handler: measure, judge every check, pass / fail / wait / ask a human.

A measurement that could not be taken (a failed query, unreadable router counters) is an error of
that check, kept as a streak in the run; ``consecutive_error_limit`` of them in a row make the
policy's ``on_error`` act, like a failed check. Nothing of it fails the tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from shipyard.analysis.checks import CheckResult, CheckSpec, Snapshot, evaluate
from shipyard.analysis.samples import Verdict
from shipyard.domain.rollouts.faults import give_up
from shipyard.domain.rollouts.kinds import PauseReason, Phase, RecordKind
from shipyard.domain.rollouts.model import (
    ENGINE,
    AnalysisRun,
    Decision,
    ErrorStreak,
    Observation,
    Record,
    Rollout,
)
from shipyard.domain.rollouts.progress import advance
from shipyard.domain.rollouts.steps import Analysis


def measurement_due(r: Rollout, now: datetime) -> bool:
    step = r.current_step
    if r.phase is not Phase.PROGRESSING or not isinstance(step, Analysis):
        return False
    run = r.analysis
    if run is None or run.last_at is None:
        return True
    return now >= run.last_at + timedelta(seconds=step.interval)


def _measured(check: CheckSpec, obs: Observation) -> bool:
    if check.provider == "router":
        return obs.canary is not None
    return check.name in obs.queries


def _measure(r: Rollout, step: Analysis, obs: Observation, now: datetime) -> AnalysisRun:
    run = r.analysis or AnalysisRun(started_at=now)
    at = (now - run.started_at).total_seconds()
    snapshots = run.snapshots
    if obs.canary is not None:
        snapshots = (*snapshots, Snapshot(at, obs.canary, obs.baseline))
    queries = dict(run.queries)
    for name, result in obs.queries.items():
        queries[name] = (*queries.get(name, ()), replace(result, at=at))
    errors = dict(run.errors)
    for check in step.checks:
        got = obs.errors.get(check.name)
        if got is not None:
            fault, message = got
            old = errors.get(check.name)
            source = f"check {check.name}"
            errors[check.name] = (
                old.then(fault, message, now)
                if old
                else ErrorStreak.first(source, fault, message, now)
            )
        elif _measured(check, obs):
            errors.pop(check.name, None)
    return replace(run, last_at=now, snapshots=snapshots, queries=queries, errors=errors)


def _judge(run: AnalysisRun, step: Analysis, final: bool) -> tuple[CheckResult, ...]:
    return tuple(
        evaluate(c, run.snapshots, run.queries.get(c.name, ()), final=final) for c in step.checks
    )


def _evidence(results: Sequence[CheckResult], run: AnalysisRun) -> dict[str, Any]:
    out: dict[str, Any] = {
        "checks": [x.to_dict() for x in results],
        "window_s": (run.last_at - run.started_at).total_seconds() if run.last_at else 0.0,
    }
    if run.errors:
        out["errors"] = {name: s.evidence(s.count) for name, s in run.errors.items()}
    return out


def _error_records(r: Rollout, step: Analysis, run: AnalysisRun, obs: Observation) -> list[Record]:
    out = []
    for check in step.checks:
        streak = run.errors.get(check.name)
        if streak is None or check.name not in obs.errors or streak.same != 1:
            continue  # one record per distinct streak; its count lives in the run
        limit = r.policy.error_limit(check)
        message = (
            f"check {check.name} could not be measured ({streak.count}/{limit}): {streak.message}"
        )
        out.append(Record(RecordKind.ERROR, r.step, ENGINE, message, streak.evidence(limit)))
    return out


def decide_analysis(r: Rollout, step: Analysis, obs: Observation | None, now: datetime) -> Decision:
    if obs is None or not measurement_due(r, now):
        run = r.analysis
        if run is None:  # first look: ask the engine to measure right away
            return Decision(replace(r, analysis=AnalysisRun(started_at=now), due_at=now))
        nxt_at = (run.last_at or now) + timedelta(seconds=step.interval)
        return Decision(replace(r, due_at=nxt_at))
    run = _measure(r, step, obs, now)
    final = (now - run.started_at).total_seconds() >= step.window - 1e-6
    results = _judge(run, step, final)
    run = replace(run, results=results)
    acting = [x for x in results if not x.dry_run]
    records = _error_records(r, step, run, obs)
    # a dry-run failure is recorded once per analysis, when first seen; it never acts
    prior = {
        x.name for x in (r.analysis.results if r.analysis else ()) if x.verdict is Verdict.FAIL
    }
    for x in results:
        if x.dry_run and x.verdict is Verdict.FAIL and x.name not in prior:
            records.append(
                Record(
                    RecordKind.DRY_RUN,
                    r.step,
                    ENGINE,
                    f"dry-run check {x.name} failed: {x.reason}",
                    {"check": x.to_dict()},
                )
            )
    evidence = _evidence(results, run)
    erroring = [
        c
        for c in step.checks
        if not c.dry_run
        and c.name in run.errors
        and run.errors[c.name].count >= r.policy.error_limit(c)
    ]
    if erroring:
        why = "; ".join(
            f"check {c.name}: {run.errors[c.name].count} measurement errors in a row: "
            f"{run.errors[c.name].message}"
            for c in erroring
        )
        d = give_up(replace(r, analysis=run), now, why, evidence)
        return Decision(d.rollout, (*records, *d.records))
    failed = [x for x in acting if x.verdict is Verdict.FAIL]
    if failed:
        why = "; ".join(f"{x.name}: {x.reason}" for x in failed)
        nxt = replace(
            r, analysis=run, phase=Phase.ABORTING, due_at=now, reason=f"analysis failed: {why}"
        )
        records.append(
            Record(RecordKind.ABORTING, r.step, ENGINE, f"analysis failed: {why}", evidence)
        )
        return Decision(nxt, tuple(records))
    verdicts = [x.verdict for x in acting]
    if (acting and all(v is Verdict.PASS for v in verdicts)) or (final and not acting):
        records.append(Record(RecordKind.ANALYSIS, r.step, ENGINE, "analysis passed", evidence))
        return Decision(advance(replace(r, analysis=run), now), tuple(records))
    if final:  # some check could neither pass nor fail: a human decides
        unsure = [x for x in acting if x.verdict is not Verdict.PASS]
        why = "analysis inconclusive: " + "; ".join(f"{x.name}: {x.reason}" for x in unsure)
        nxt = replace(
            r,
            analysis=run,
            phase=Phase.PAUSED,
            due_at=None,
            pause_reason=why,
            paused_for=PauseReason.INCONCLUSIVE,
        )
        records.append(Record(RecordKind.PAUSED, r.step, ENGINE, why, evidence))
        return Decision(nxt, tuple(records))
    nxt_at = now + timedelta(seconds=step.interval)
    return Decision(replace(r, analysis=run, due_at=nxt_at), tuple(records))
