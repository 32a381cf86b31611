"""What a rollout looked like over time, for the dashboard: one read, nothing changes.

``rollouts.status`` says where a rollout is now. A page that draws it over time also needs the
traffic weight at every decision and, per measurement, what each version served: those are read
here, in the same transaction as the rollout and all its decisions, so the timeline, the charts
and the evidence always describe the same revision.

Weights come from the decision records (every weight change is one). Per-version error ratio and
latency come from the cumulative router counters the engine stores at every measurement of every
analysis step (``Rollout.analysis`` and ``earlier_analyses``): each pair of consecutive snapshots
is one interval, the same intervals the checks judge. A flag-routed rollout (``router: flag``)
stores the flag's on and off cohorts as those arms, so the same intervals describe its cohorts;
while it runs, its live table is the cohort counters the app's SDK reports, per variant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from shipyard.analysis.checks import Snapshot, interval_value
from shipyard.analysis.slices import ArmCounters, arm_delta
from shipyard.domain.auth import Action, Actor
from shipyard.domain.rollouts import Rollout
from shipyard.errors import NotFoundError, ShipyardError
from shipyard.ports.repositories import RolloutRecordEntry
from shipyard.ports.routers import Counters
from shipyard.services.cohorts import ERROR_OUTCOME, EXPOSURES, OFF_COHORT
from shipyard.services.context import Services
from shipyard.services.deployments import deploy_spec_for
from shipyard.services.project_config import EnvironmentSpec
from shipyard.services.releases import get_project
from shipyard.services.traffic import route_ref

__all__ = [
    "Cohort",
    "Counters",
    "Measurement",
    "RolloutRecordEntry",
    "RolloutWatch",
    "VersionSample",
    "WeightPoint",
    "cohort_rows",
    "has_rollout",
    "measurements",
    "watch",
    "weights",
]

RECORDS = 1000  # the newest decisions a page shows; a rollout rarely has more than a few dozen

# the weight the new version has after a decision of this kind, when the record does not say
_WEIGHT_AFTER = {
    "started": 0.0,
    "promoting": 100.0,
    "promoted": 100.0,
    "aborting": 0.0,
    "rolled_back": 0.0,
}


@dataclass(frozen=True, slots=True)
class WeightPoint:
    at: datetime
    weight: float  # percent of unsegmented traffic on the new version from ``at`` on


@dataclass(frozen=True, slots=True)
class VersionSample:
    """What one version served during one measurement interval."""

    requests: int
    error_ratio: float | None  # None without traffic
    latency_p95_s: float | None  # None without traffic or without a latency histogram


@dataclass(frozen=True, slots=True)
class Measurement:
    at: datetime  # the end of the interval
    step: int
    canary: VersionSample
    stable: VersionSample | None


@dataclass(frozen=True, slots=True)
class Cohort:
    """One variant of a flag-routed rollout's flag: what the app's SDK reported, cumulative."""

    variant: str  # enabled, a variant name, or disabled (the off users)
    on: bool  # in the canary cohort: the flag is on for these users
    exposures: int
    errors: int  # the ``error`` outcome


@dataclass(frozen=True, slots=True)
class RolloutWatch:
    rollout: Rollout
    records: Sequence[RolloutRecordEntry]  # oldest first
    weights: Sequence[WeightPoint]  # oldest first; the last one holds until now (or the end)
    measurements: Sequence[Measurement]  # oldest first
    live: Mapping[str, Counters]  # per candidate from the router now; {} when ended or unreachable
    url: str | None  # where users reach the environment
    now: datetime
    cohorts: Sequence[Cohort] = ()  # a running flag-routed rollout's variants, on ones first


def weights(r: Rollout, records: Sequence[RolloutRecordEntry]) -> tuple[WeightPoint, ...]:
    """The new version's weight after each decision that moved it, from the rollout's start."""
    points = [WeightPoint(r.created_at, 0.0)]
    for entry in records:
        rec = entry.record
        weight = rec.evidence.get("weight") if rec.kind == "weight" else None
        value = float(weight) if isinstance(weight, int | float) else _WEIGHT_AFTER.get(rec.kind)
        if value is None or value == points[-1].weight:
            continue
        points.append(WeightPoint(max(entry.at, points[-1].at), value))
    return tuple(points)


def _sample(before: ArmCounters | None, after: ArmCounters, seconds: float) -> VersionSample:
    return VersionSample(
        requests=arm_delta(before, after, max_latencies=0).requests,
        error_ratio=interval_value("error_ratio", before, after, seconds),
        latency_p95_s=interval_value("latency_p95", before, after, seconds),
    )


def _interval(step: int, started: datetime, a: Snapshot, b: Snapshot) -> Measurement:
    seconds = b.at - a.at
    stable = None
    if b.baseline is not None:
        stable = _sample(a.baseline, b.baseline, seconds)
    return Measurement(
        started + timedelta(seconds=b.at), step, _sample(a.canary, b.canary, seconds), stable
    )


def measurements(r: Rollout) -> tuple[Measurement, ...]:
    """One measurement per interval of every analysis step so far, the current one last."""
    runs = list(r.earlier_analyses)
    if r.analysis is not None:
        runs.append((r.step, r.analysis))
    return tuple(
        _interval(step, run.started_at, a, b)
        for step, run in runs
        for a, b in pairwise(run.snapshots)
    )


def cohort_rows(totals: Mapping[str, Mapping[str, int]]) -> tuple[Cohort, ...]:
    """``{variant: {metric: count}}`` as rows, on cohorts first, each by name.

    Split the way the judges split them (services/cohorts.py): everything but ``disabled`` is on.
    """
    rows = (
        Cohort(
            variant,
            variant != OFF_COHORT,
            metrics.get(EXPOSURES, 0),
            metrics.get(f"outcome.{ERROR_OUTCOME}", 0),
        )
        for variant, metrics in totals.items()
    )
    return tuple(sorted(rows, key=lambda c: (not c.on, c.variant)))


_Found = tuple[Rollout, Sequence[RolloutRecordEntry], EnvironmentSpec, tuple[Cohort, ...]]


def _find(
    svc: Services, project_name: str, environment: str, deployment_id: int | None
) -> _Found | None:
    """The rollout, its records, its environment's settings and, while a flag-routed one runs,
    its cohort counters: one read transaction, so they all describe the same moment.

    Counters are cumulative per flag (not per rollout), so an ended rollout shows none: they
    would mix in whatever came after it."""
    with svc.uow() as uow:
        project = get_project(uow, project_name)
        if deployment_id is None:
            r = uow.rollouts.latest(project, environment)
        else:
            r = uow.rollouts.for_deployment(deployment_id)
            if r is None or r.project != project.name or r.environment != environment:
                raise NotFoundError(
                    f"deployment {deployment_id} had no rollout in {project_name}/{environment}"
                )
        if r is None:
            return None
        records = uow.rollouts.records(r.id, limit=RECORDS)
        env, _, _ = deploy_spec_for(svc, uow, uow.deployments.get(r.deployment_id))
        live: tuple[Cohort, ...] = ()
        if r.active and r.policy.flag is not None and r.policy.flag_routed:
            live = cohort_rows(uow.cohorts.totals(project, environment, r.policy.flag))
        return r, records, env, live


def watch(
    svc: Services,
    actor: Actor,
    project_name: str,
    environment: str,
    *,
    deployment_id: int | None = None,
) -> RolloutWatch | None:
    """The environment's latest rollout (or ``deployment_id``'s) with its history; None when no
    rollout has run there. The router is asked for live counters only while the rollout runs."""
    actor.require(Action.READ)
    found = _find(svc, project_name, environment, deployment_id)
    if found is None:
        return None
    r, records, env, cohorts = found
    live: Mapping[str, Counters] = {}
    url = None
    if env.router_kind is not None and env.router_port is not None:
        url = f"http://127.0.0.1:{env.router_port}/"
        if r.active and not r.policy.flag_routed:  # its proxy only keeps one version at 100%
            try:
                ref = route_ref(svc, r.project, r.environment, env)
                live = svc.counters(env.router_kind).counters(ref)
            except ShipyardError:
                live = {}
    return RolloutWatch(
        r, records, weights(r, records), measurements(r), live, url, svc.clock.now(), cohorts
    )


def has_rollout(svc: Services, actor: Actor, deployment_id: int) -> bool:
    """Whether the deployment handed its traffic to a rollout (so a page can link to it)."""
    actor.require(Action.READ)
    with svc.uow() as uow:
        return uow.rollouts.for_deployment(deployment_id) is not None
