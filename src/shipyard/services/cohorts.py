"""Cohort metrics: what apps report per flag variant, and the counters flag rollouts judge.

A ``router: flag`` rollout has no proxy to count requests, so the app's SDK counts them where
the flag is evaluated and reports batches here. A batch carries a client-made id: a retry after
a lost answer is recognised and counted once. Counts are kept cumulative per project,
environment, flag, variant and metric, the shape the judges already read from routers.

Mapping to the judges' per-version counters (documented in docs/flags.md):

- canary = every cohort the flag is on for (``enabled`` or a variant name), stable = ``disabled``;
- ``requests`` = exposures (one evaluation per unit of work), ``errors_5xx`` = the ``error``
  outcome. Latency comes from Prometheus (a check with a ``variant`` label), not from here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.domain.auth import Action, Actor
from shipyard.domain.releases import Project
from shipyard.errors import InvalidError
from shipyard.ports.repositories import CohortCount, UnitOfWork
from shipyard.ports.routers import Counters
from shipyard.services.context import Services
from shipyard.services.releases import get_project

EXPOSURES = "exposures"
ERROR_OUTCOME = "error"
OFF_COHORT = "disabled"
MAX_COUNT = 10**12  # per entry and batch: far above what one app sends between two reports
MAX_ENTRIES = 10_000
_BATCH = re.compile(r"^[A-Za-z0-9._:-]{8,100}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~:-]{0,99}$")


@dataclass(frozen=True)
class Reported:
    duplicate: bool  # the batch was counted before: nothing was added
    counted: int  # entries added
    ignored: tuple[str, ...]  # flags that do not exist in the environment


def _bad(field: str, reason: str) -> InvalidError:
    return InvalidError(f"{field}: {reason}", details={"field": field, "reason": reason})


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise _bad(field, f"must be an integer from 0 to {MAX_COUNT}")
    return value


def _name(value: str, field: str) -> str:
    if not _NAME.match(value):
        raise _bad(field, "must be a name (letters, digits, . _ ~ : -; 1-100 characters)")
    return value


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(field, "must be an object")
    return value


def parse_counts(flags: Any) -> list[CohortCount]:
    """``{flag: {variant: {"exposures": n, "outcomes": {event: n}}}}`` as counts, or the field."""
    out: list[CohortCount] = []
    for flag, variants in _mapping(flags, "flags").items():
        _name(flag, f"flags.{flag}")
        for variant, body in _mapping(variants, f"flags.{flag}").items():
            where = f"flags.{flag}.{variant}"
            _name(variant, where)
            entry = _mapping(body, where)
            unknown = set(entry) - {"exposures", "outcomes"}
            if unknown:
                raise _bad(f"{where}.{sorted(unknown)[0]}", "unknown field")
            n = _count(entry.get("exposures", 0), f"{where}.exposures")
            out.append(CohortCount(flag, variant, EXPOSURES, n))
            for event, k in _mapping(entry.get("outcomes") or {}, f"{where}.outcomes").items():
                at = f"{where}.outcomes.{event}"
                out.append(CohortCount(flag, variant, f"outcome.{_name(event, at)}", _count(k, at)))
    if len(out) > MAX_ENTRIES:
        raise _bad("flags", f"at most {MAX_ENTRIES} counts per batch; report more often")
    return out


def report(
    svc: Services, actor: Actor, project: str, environment: str, batch_id: str, flags: Any
) -> Reported:
    """Add one batch of an app's counts; the same ``batch_id`` again adds nothing.

    Only ``app`` (and ``admin``) tokens may report: these counts decide whether a flag-routed
    canary is rolled back, so a viewer may read them but not write them. Counts for flags the
    environment does not have are ignored, so the table stays bounded. A bad batch is refused
    whole, naming the field, and nothing is counted.
    """
    actor.require(Action.REPORT, project=project, environment=environment)
    if not isinstance(batch_id, str) or not _BATCH.match(batch_id):
        raise _bad("batch_id", "must be 8-100 characters: letters, digits, . _ : -")
    counts = parse_counts(flags)
    with svc.uow() as uow:
        proj = get_project(uow, project)
        known = {f.key for f in uow.flags.list(proj, environment)}
        kept = [c for c in counts if c.flag in known]
        ignored = tuple(sorted({c.flag for c in counts} - known))
        added = uow.cohorts.add_batch(proj, environment, batch_id, kept, svc.clock.now())
        uow.commit()
    return Reported(duplicate=not added, counted=len(kept) if added else 0, ignored=ignored)


def _arm(totals: Mapping[str, Mapping[str, int]], on: bool) -> Counters:
    requests = errors = 0
    for variant, metrics in totals.items():
        if (variant != OFF_COHORT) is on:
            requests += metrics.get(EXPOSURES, 0)
            errors += metrics.get(f"outcome.{ERROR_OUTCOME}", 0)
    return Counters(requests, errors)


def counters(
    uow: UnitOfWork, project: Project, environment: str, flag: str
) -> tuple[Counters, Counters]:
    """(canary, stable) cumulative counters of a flag's on and off cohorts."""
    totals = uow.cohorts.totals(project, environment, flag)
    return _arm(totals, True), _arm(totals, False)


def cohort_counters(
    svc: Services, actor: Actor, project: str, environment: str, flag: str
) -> dict[str, dict[str, int]]:
    """The cumulative counts per variant of one flag, for people and dashboards."""
    actor.require(Action.READ)
    with svc.uow() as uow:
        return uow.cohorts.totals(get_project(uow, project), environment, flag)


__all__: Sequence[str] = ["Reported", "cohort_counters", "counters", "parse_counts", "report"]
