"""Feature flag use cases: create, set, roll out, kill, list, show, and the state apps poll.

A flag lives in one project environment and is stored as the Unleash feature JSON that apps
evaluate (``shipyard.domain.flags``). Every definition is checked field by field and then
compiled by the evaluator before it is stored, so a bad definition changes nothing. Every change
bumps the environment's revision (the ETag of its state), writes the flag's history row and an
event, in one transaction. A change that changes nothing writes nothing, so the ETag only moves
when the state does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from shipyard.domain.auth import Action, Actor
from shipyard.domain.environments import EnvironmentRules
from shipyard.domain.flags import PPM, compile_state, rollout_ppm
from shipyard.domain.flags.constraints import OPERATORS
from shipyard.domain.flags.strategies import STRATEGIES
from shipyard.domain.freezes import active_freeze
from shipyard.domain.releases import Project
from shipyard.errors import (
    ConflictError,
    ErrorCode,
    InvalidError,
    NotFoundError,
    RefusedError,
    ShipyardError,
)
from shipyard.ports.repositories import FlagChangeRecord, FlagRecord, FlagRequest, UnitOfWork
from shipyard.services.config_check import check_declared
from shipyard.services.context import Services
from shipyard.services.live_policy import environment_now
from shipyard.services.releases import get_project

KILLED = "flag.killed"  # the kill switch: the one change a protected environment takes at once
SEGMENTS_UPDATED = "flag.segments_updated"
SEGMENTS = "segments"  # the key of a segments change request's before / after

STATE_VERSION = 2
RESERVED_KEYS = frozenset({"state", "stream"})  # GET .../flags/state and .../flags/stream
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,99}$")
_ENV = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_PER_PERCENT = PPM // 100

PAYLOAD_TYPES = frozenset({"string", "json", "csv", "number"})


@dataclass(frozen=True)
class FlagView:
    flag: FlagRecord
    revision: int
    changes: Sequence[FlagChangeRecord]


# --- names and lookups ------------------------------------------------------------------------


def _check_environment(environment: str) -> None:
    if not _ENV.match(environment):
        raise InvalidError(
            f"environment {environment!r} is not a valid name (letters, digits, . _ -; 1-100)",
            details={"field": "environment"},
        )


def _check_key(key: str) -> None:
    if not _KEY.match(key):
        raise InvalidError(
            f"flag key {key!r} is not valid (letters, digits, . _ ~ -; 1-100 characters)",
            details={"field": "key"},
        )
    if key in RESERVED_KEYS:
        raise InvalidError(f"flag key {key!r} is reserved", details={"field": "key"})


def _get(uow: UnitOfWork, project: Project, environment: str, key: str) -> FlagRecord:
    flag = uow.flags.get(project, environment, key)
    if flag is None:
        raise NotFoundError(
            f"flag {key!r} not found in {project.name}/{environment}",
            hint=f"list them with `shipyard flag list {project.name} {environment}`",
        )
    return flag


# --- validation -------------------------------------------------------------------------------


def _bad(field: str, reason: str) -> InvalidError:
    return InvalidError(f"{field}: {reason}", details={"field": field, "reason": reason})


def _obj(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(field, "must be an object")
    return value


def _items(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(field, "must be a list")
    return value


def _optional(raw: Mapping[str, Any], name: str, kind: type | tuple[type, ...], field: str) -> None:
    if name in raw and raw[name] is not None and not isinstance(raw[name], kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _bad(f"{field}.{name}", f"must be a {names}")


def _check_percent_param(params: Mapping[str, Any], name: str, field: str) -> None:
    if params.get(name) is None:
        return
    try:
        pct = Decimal(str(params[name]).strip())
    except InvalidOperation:
        raise _bad(f"{field}.{name}", "must be a number from 0 to 100") from None
    if not pct.is_finite() or not 0 <= pct <= 100:
        raise _bad(f"{field}.{name}", "must be a number from 0 to 100")


def _check_constraints(value: Any, field: str) -> None:
    for i, raw in enumerate(_items(value, field)):
        where = f"{field}[{i}]"
        c = _obj(raw, where)
        if not isinstance(c.get("contextName"), str) or not c["contextName"]:
            raise _bad(f"{where}.contextName", "is required")
        if c.get("operator") not in OPERATORS:
            raise _bad(f"{where}.operator", f"unknown operator {c.get('operator')!r}")
        for j, v in enumerate(_items(c.get("values"), f"{where}.values")):
            if not isinstance(v, str):
                raise _bad(f"{where}.values[{j}]", "must be a string")
        _optional(c, "value", str, where)
        _optional(c, "inverted", bool, where)
        _optional(c, "caseInsensitive", bool, where)


def _check_variants(value: Any, field: str) -> None:
    for i, raw in enumerate(_items(value, field)):
        where = f"{field}[{i}]"
        v = _obj(raw, where)
        if not isinstance(v.get("name"), str) or not v["name"]:
            raise _bad(f"{where}.name", "is required")
        weight = v.get("weight", 0)
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 1000:
            raise _bad(f"{where}.weight", "must be an integer from 0 to 1000")
        if v.get("weightType", "variable") not in ("variable", "fix"):
            raise _bad(f"{where}.weightType", "must be 'variable' or 'fix'")
        _optional(v, "stickiness", str, where)
        if v.get("payload") is not None:
            payload = _obj(v["payload"], f"{where}.payload")
            if payload.get("type") not in PAYLOAD_TYPES:
                raise _bad(f"{where}.payload.type", f"must be one of {sorted(PAYLOAD_TYPES)}")
            if not isinstance(payload.get("value"), str):
                raise _bad(f"{where}.payload.value", "must be a string")
        for j, o in enumerate(_items(v.get("overrides"), f"{where}.overrides")):
            ov = _obj(o, f"{where}.overrides[{j}]")
            if not isinstance(ov.get("contextName"), str):
                raise _bad(f"{where}.overrides[{j}].contextName", "is required")
            _items(ov.get("values"), f"{where}.overrides[{j}].values")


def _check_strategies(value: Any, segment_ids: set[int]) -> None:
    for i, raw in enumerate(_items(value, "strategies")):
        where = f"strategies[{i}]"
        s = _obj(raw, where)
        if s.get("name") not in STRATEGIES:
            raise _bad(
                f"{where}.name",
                f"unknown strategy {s.get('name')!r}; use one of {', '.join(sorted(STRATEGIES))}",
            )
        params = _obj(s.get("parameters") or {}, f"{where}.parameters")
        for name, param in params.items():
            if not isinstance(param, str | int | float) or isinstance(param, bool):
                raise _bad(f"{where}.parameters.{name}", "must be a string or a number")
        for name in ("rollout", "percentage"):
            _check_percent_param(params, name, f"{where}.parameters")
        if params.get("rolloutPpm") is not None:
            ppm = str(params["rolloutPpm"]).strip()
            if not ppm.isdigit() or int(ppm) > PPM:
                raise _bad(f"{where}.parameters.rolloutPpm", f"must be an integer from 0 to {PPM}")
        _check_constraints(s.get("constraints"), f"{where}.constraints")
        for j, seg in enumerate(_items(s.get("segments"), f"{where}.segments")):
            if isinstance(seg, bool) or not isinstance(seg, int):
                raise _bad(f"{where}.segments[{j}]", "must be a segment id (an integer)")
            if seg not in segment_ids:
                raise _bad(f"{where}.segments[{j}]", f"unknown segment {seg}")
        _check_variants(s.get("variants"), f"{where}.variants")
        _optional(s, "disabled", bool, where)


def _check_dependencies(value: Any, key: str, others: Mapping[str, Mapping[str, Any]]) -> None:
    for i, raw in enumerate(_items(value, "dependencies")):
        where = f"dependencies[{i}]"
        d = _obj(raw, where)
        parent = d.get("feature")
        if not isinstance(parent, str) or not parent:
            raise _bad(f"{where}.feature", "is required")
        if parent == key:
            raise _bad(f"{where}.feature", "a flag cannot depend on itself")
        if parent not in others:
            raise _bad(f"{where}.feature", f"no flag {parent!r} in this environment")
        if others[parent].get("dependencies"):
            raise _bad(f"{where}.feature", f"{parent!r} has dependencies itself (one level only)")
        _optional(d, "enabled", bool, where)
        for j, v in enumerate(_items(d.get("variants"), f"{where}.variants")):
            if not isinstance(v, str):
                raise _bad(f"{where}.variants[{j}]", "must be a string")


def normalize(
    raw: Any,
    *,
    key: str,
    project: str,
    others: Mapping[str, Mapping[str, Any]],
    segments: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """A complete, checked Unleash feature definition, or InvalidError naming the field."""
    given = dict(_obj(raw, "definition"))
    if given.get("name", key) != key:
        raise _bad("name", f"must be the flag key {key!r}")
    feature: dict[str, Any] = {
        "name": key,
        "type": "release",
        "description": "",
        "project": project,
        "enabled": False,
        "stale": False,
        "impressionData": False,
        "strategies": [],
        "variants": [],
        "dependencies": [],
    }
    feature.update(given)
    for name in ("enabled", "stale", "impressionData"):
        if not isinstance(feature[name], bool):
            raise _bad(name, "must be true or false")
    for name in ("type", "description", "project"):
        if not isinstance(feature[name], str):
            raise _bad(name, "must be a string")
    segment_ids = {int(s["id"]) for s in segments}
    _check_strategies(feature["strategies"], segment_ids)
    _check_variants(feature["variants"], "variants")
    _check_dependencies(feature["dependencies"], key, others)
    doc = {
        "version": STATE_VERSION,
        "features": [*(f for k, f in others.items() if k != key), feature],
        "segments": list(segments),
    }
    try:
        compile_state(doc)
    except ShipyardError as exc:
        raise _bad("definition", exc.message) from exc
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise _bad("definition", f"does not compile: {exc}") from exc
    return feature


def check_segments(raw: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for i, s in enumerate(_items(raw, "segments")):
        seg = dict(_obj(s, f"segments[{i}]"))
        seg_id = seg.get("id")
        if isinstance(seg_id, bool) or not isinstance(seg_id, int):
            raise _bad(f"segments[{i}].id", "must be an integer")
        if seg_id in seen:
            raise _bad(f"segments[{i}].id", f"duplicate segment id {seg_id}")
        seen.add(seg_id)
        _check_constraints(seg.get("constraints"), f"segments[{i}].constraints")
        seg.setdefault("constraints", [])
        out.append(seg)
    return out


# --- rollouts ---------------------------------------------------------------------------------


def percent_to_ppm(percent: float | str | Decimal) -> int:
    try:
        pct = Decimal(str(percent).strip())
    except InvalidOperation:
        raise _bad("percent", "must be a number from 0 to 100") from None
    if not pct.is_finite() or not 0 <= pct <= 100:
        raise _bad("percent", "must be a number from 0 to 100")
    ppm = pct * _PER_PERCENT
    if ppm != ppm.to_integral_value():
        raise _bad("percent", "at most 4 decimal places (1 in a million users)")
    return int(ppm)


def _strategy_ppm(strategy: Mapping[str, Any]) -> int:
    params = strategy.get("parameters") or {}
    if params.get("rolloutPpm") is not None:
        return int(str(params["rolloutPpm"]).strip())
    return rollout_ppm(params.get("rollout"))


def rollout_of(definition: Mapping[str, Any]) -> float | None:
    """The percentage of the first active flexibleRollout strategy, if there is one."""
    for s in definition.get("strategies") or ():
        if s.get("name") == "flexibleRollout" and not s.get("disabled", False):
            return _strategy_ppm(s) / _PER_PERCENT
    return None


def with_rollout(
    definition: Mapping[str, Any],
    ppm: int,
    *,
    stickiness: str | None = None,
    group_id: str | None = None,
) -> dict[str, Any]:
    """Set the first flexibleRollout strategy (adding one and dropping `default` if needed).

    Whole percents are written exactly as Unleash does; sub-percents write the floor in
    ``rollout`` and the exact value in ``rolloutPpm``, so stock Unleash SDKs see fewer users,
    never more.
    """
    out = dict(definition)
    strategies = [dict(s) for s in definition.get("strategies") or ()]
    index = next(
        (
            i
            for i, s in enumerate(strategies)
            if s.get("name") == "flexibleRollout" and not s.get("disabled", False)
        ),
        None,
    )
    if index is None:
        strategies = [s for s in strategies if s.get("name") != "default"]
        strategies.append({"name": "flexibleRollout", "parameters": {}, "constraints": []})
        index = len(strategies) - 1
    params = dict(strategies[index].get("parameters") or {})
    params["rollout"] = str(ppm // _PER_PERCENT)
    if ppm % _PER_PERCENT:
        params["rolloutPpm"] = str(ppm)
    else:
        params.pop("rolloutPpm", None)
    params["stickiness"] = stickiness or params.get("stickiness") or "default"
    params["groupId"] = group_id or params.get("groupId") or str(definition["name"])
    strategies[index]["parameters"] = params
    out["strategies"] = strategies
    return out


def _sans_rollout(definition: Mapping[str, Any]) -> list[Any]:
    """The strategies with their rollout percentages left out (those are summarized apart)."""
    out = []
    for s in definition.get("strategies") or ():
        params = {
            k: v
            for k, v in (s.get("parameters") or {}).items()
            if k not in ("rollout", "rolloutPpm")
        }
        out.append({**s, "parameters": params})
    return out


def summarize(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> str:
    """One line a person reads in `flag show`: what changed between two definitions."""
    if before is None and after is not None:
        parts = [f"created, enabled={str(after.get('enabled', False)).lower()}"]
        pct = rollout_of(after)
        if pct is not None:
            parts.append(f"rollout {pct:g}%")
        return ", ".join(parts)
    if before is None or after is None:
        return ""
    parts = []
    if before.get("enabled") != after.get("enabled"):
        parts.append(
            f"enabled {str(before.get('enabled')).lower()}→{str(after.get('enabled')).lower()}"
        )
    old, new = rollout_of(before), rollout_of(after)
    if old != new:
        parts.append(
            f"rollout {'-' if old is None else f'{old:g}%'}→{'-' if new is None else f'{new:g}%'}"
        )
    if _sans_rollout(before) != _sans_rollout(after):
        parts.append("strategies changed")
    for name in ("variants", "dependencies", "description"):
        if before.get(name) != after.get(name):
            parts.append(f"{name} changed")
    return "; ".join(parts) or "no visible change"


# --- writes -----------------------------------------------------------------------------------


def _others(uow: UnitOfWork, project: Project, environment: str) -> dict[str, dict[str, Any]]:
    return {f.key: f.definition for f in uow.flags.list(project, environment)}


def _apply(
    svc: Services,
    uow: UnitOfWork,
    actor: Actor,
    project: Project,
    environment: str,
    key: str,
    before: FlagRecord | None,
    raw: Mapping[str, Any],
    kind: str,
) -> FlagRecord | FlagRequest:
    """Check, store, record and commit: the one path every human flag change goes through.

    In a protected environment the change waits for a second person instead (a FlagRequest),
    and a freeze refuses it; only the kill switch goes through at once, audited as such."""
    now = svc.clock.now()
    rules = environment_now(svc, uow, project, environment, now)
    extra: dict[str, Any] = {}
    if rules is not None and rules.protected:
        if kind != KILLED:
            return _propose(uow, actor, project, rules, key, before, raw, kind, now)
        extra = {"emergency": True, "approval": "skipped: kill switch"}
    flag = _write(uow, actor.user, project, environment, key, before, raw, kind, now, extra)
    uow.commit()
    return flag


def _propose(
    uow: UnitOfWork,
    actor: Actor,
    project: Project,
    rules: EnvironmentRules,
    key: str,
    before: FlagRecord | None,
    raw: Mapping[str, Any],
    kind: str,
    now: datetime,
) -> FlagRecord | FlagRequest:
    """Record a change of a protected environment's flag for a second person to approve."""
    check_not_frozen(rules, now)
    environment = rules.name
    definition = normalize(
        raw,
        key=key,
        project=project.name,
        others=_others(uow, project, environment),
        segments=uow.flags.segments(project, environment),
    )
    if before is not None and before.definition == definition:
        return before
    old = dict(before.definition) if before else None
    return _record_request(uow, actor, project, environment, key, old, definition, kind, now)


def _record_request(
    uow: UnitOfWork,
    actor: Actor,
    project: Project,
    environment: str,
    key: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    kind: str,
    now: datetime,
) -> FlagRequest:
    request = uow.flag_requests.add(
        project, environment, key, kind=kind, before=before, after=after, by=actor.user, now=now
    )
    uow.events.append(
        actor=actor.user,
        kind="flag.change_requested",
        subject=f"flag {environment}/{key}" if key else f"segments {environment}",
        project=project.name,
        now=now,
        payload={"request": request.id, "key": key, "kind": kind, "before": before, "after": after},
    )
    uow.commit()
    return request


def write_change(
    uow: UnitOfWork,
    actor: str,
    project: Project,
    environment: str,
    key: str,
    before: FlagRecord | None,
    raw: Mapping[str, Any],
    kind: str,
    now: datetime,
    extra: Mapping[str, Any] | None = None,
) -> FlagRecord:
    """Apply an approved change in the caller's transaction (flag_requests)."""
    return _write(uow, actor, project, environment, key, before, raw, kind, now, extra)


def check_not_frozen(rules: EnvironmentRules, now: datetime) -> None:
    """Refuse a flag change of a frozen protected environment (the kill switch still works)."""
    freeze = active_freeze(rules.freezes, now) if rules.freezes else None
    if freeze is not None:
        raise RefusedError(
            f"{rules.name} is {freeze.describe()}",
            code=ErrorCode.FROZEN,
            hint="the kill switch (flag kill) still turns a flag off",
        )


def _write(
    uow: UnitOfWork,
    actor: str,
    project: Project,
    environment: str,
    key: str,
    before: FlagRecord | None,
    raw: Mapping[str, Any],
    kind: str,
    now: datetime,
    extra: Mapping[str, Any] | None = None,
) -> FlagRecord:
    """Check, store and record a change in the caller's transaction (it commits); ``extra`` adds
    to the event's payload (an approval, an emergency)."""
    definition = normalize(
        raw,
        key=key,
        project=project.name,
        others=_others(uow, project, environment),
        segments=uow.flags.segments(project, environment),
    )
    if before is not None and before.definition == definition:
        return before  # nothing changed: no revision, no event
    revision = uow.flags.next_revision(project, environment, now)
    flag = uow.flags.save(
        project=project,
        environment=environment,
        key=key,
        description=str(definition.get("description", "")),
        definition=definition,
        actor=actor,
        now=now,
    )
    old = before.definition if before else None
    uow.flags.add_change(
        flag, revision=revision, kind=kind, actor=actor, now=now, before=old, after=definition
    )
    uow.events.append(
        actor=actor,
        kind=kind,
        subject=f"flag {environment}/{key}",
        project=project.name,
        now=now,
        payload={
            "environment": environment,
            "key": key,
            "revision": revision,
            "before": old,
            "after": definition,
        }
        | dict(extra or {}),
    )
    return flag


def create_flag(
    svc: Services,
    actor: Actor,
    project: str,
    environment: str,
    key: str,
    *,
    description: str = "",
    enabled: bool = False,
    rollout: float | None = None,
    stickiness: str = "default",
    group_id: str | None = None,
    definition: Mapping[str, Any] | None = None,
) -> FlagRecord | FlagRequest:
    """A new flag, off by default. With ``rollout`` it gets a flexibleRollout strategy; without,
    a ``default`` strategy (on for everyone once enabled). ``definition`` replaces both."""
    actor.require(Action.DEPLOY, project=project, environment=environment)
    _check_environment(environment)
    _check_key(key)
    with svc.uow() as uow:
        found = get_project(uow, project)
    check_declared(svc, found, environment)
    with svc.uow() as uow:
        proj = get_project(uow, project)
        uow.flags.lock(proj, environment, svc.clock.now())
        if uow.flags.get(proj, environment, key) is not None:
            raise ConflictError(f"flag {key!r} already exists in {project}/{environment}")
        if definition is not None:
            raw: dict[str, Any] = dict(definition)
        else:
            raw = {
                "name": key,
                "description": description,
                "enabled": enabled,
                "strategies": [{"name": "default", "parameters": {}, "constraints": []}],
            }
            if rollout is not None:
                raw = with_rollout(
                    raw, percent_to_ppm(rollout), stickiness=stickiness, group_id=group_id
                )
        return _apply(svc, uow, actor, proj, environment, key, None, raw, "flag.created")


def set_flag(
    svc: Services,
    actor: Actor,
    project: str,
    environment: str,
    key: str,
    *,
    definition: Mapping[str, Any] | None = None,
    enabled: bool | None = None,
    description: str | None = None,
) -> FlagRecord | FlagRequest:
    """Replace the definition (Unleash feature JSON), and/or switch the flag on or off."""
    actor.require(Action.DEPLOY, project=project, environment=environment)
    with svc.uow() as uow:
        proj = get_project(uow, project)
        uow.flags.lock(proj, environment, svc.clock.now())
        before = _get(uow, proj, environment, key)
        raw = dict(before.definition if definition is None else definition)
        if description is not None:
            raw["description"] = description
        if enabled is not None:
            raw["enabled"] = enabled
        if definition is not None:
            kind = "flag.updated"
        elif enabled is not None and enabled != before.definition.get("enabled"):
            kind = "flag.enabled" if enabled else "flag.disabled"
        else:
            kind = "flag.updated"
        return _apply(svc, uow, actor, proj, environment, key, before, raw, kind)


def rollout(
    svc: Services,
    actor: Actor,
    project: str,
    environment: str,
    key: str,
    percent: float | str,
    *,
    stickiness: str | None = None,
    group_id: str | None = None,
) -> FlagRecord | FlagRequest:
    """Set the share of users who get the flag; sub-percent values (0.05) are exact to 1 ppm.

    It does not switch the flag on: a killed flag stays off until it is enabled again.
    """
    actor.require(Action.DEPLOY, project=project, environment=environment)
    ppm = percent_to_ppm(percent)
    with svc.uow() as uow:
        proj = get_project(uow, project)
        uow.flags.lock(proj, environment, svc.clock.now())
        before = _get(uow, proj, environment, key)
        raw = with_rollout(before.definition, ppm, stickiness=stickiness, group_id=group_id)
        return _apply(svc, uow, actor, proj, environment, key, before, raw, "flag.rollout")


def routed_flag(uow: UnitOfWork, project: Project, environment: str, key: str) -> FlagRecord:
    """The flag a ``router: flag`` policy moves, refused when it cannot carry a rollout.

    Checked when a deployment is asked for, so a typo in ``flag:`` is one line and no job."""
    flag = uow.flags.get(project, environment, key)
    if flag is None:
        raise NotFoundError(
            f"policy flag {key!r} does not exist in {project.name}/{environment}",
            hint=f"create it: `shipyard flag create {project.name} {environment} {key} "
            "--enabled --rollout 0`",
        )
    if not flag.definition.get("enabled"):
        raise RefusedError(
            f"flag {key!r} in {project.name}/{environment} is off (kill switch): "
            "a rollout of it would reach nobody",
            hint=f"`shipyard flag set {project.name} {environment} {key} --enable` "
            "(the rollout starts it at 0%)",
        )
    return flag


def follow_rollout(
    uow: UnitOfWork,
    project: Project,
    environment: str,
    key: str,
    percent: float,
    *,
    actor: str,
    now: datetime,
) -> FlagRecord:
    """Set a flag's rollout for the rollout engine, in the caller's transaction.

    The engine saves a decision and the flag percentage it wants together, so a crash cannot
    leave them apart; the change is audited like a human's ``flag rollout`` (a ``flag.rollout``
    event with before/after, by ``actor``). The same percentage twice writes nothing.
    """
    uow.flags.lock(project, environment, now)
    before = _get(uow, project, environment, key)
    raw = with_rollout(before.definition, percent_to_ppm(percent))
    return _write(uow, actor, project, environment, key, before, raw, "flag.rollout", now)


def kill(svc: Services, actor: Actor, project: str, environment: str, key: str) -> FlagRecord:
    """The kill switch: the flag is off for everyone at the next poll, whatever its strategies."""
    actor.require(Action.DEPLOY, project=project, environment=environment)
    with svc.uow() as uow:
        proj = get_project(uow, project)
        uow.flags.lock(proj, environment, svc.clock.now())
        before = _get(uow, proj, environment, key)
        raw = {**before.definition, "enabled": False}
        flag = _apply(svc, uow, actor, proj, environment, key, before, raw, KILLED)
        assert isinstance(flag, FlagRecord)  # the kill switch never waits
        return flag


def set_segments(
    svc: Services, actor: Actor, project: str, environment: str, segments: Any
) -> int | FlagRequest:
    """Replace the environment's segments; returns the new revision (unchanged if identical),
    or the change request a protected environment makes wait for a second person."""
    actor.require(Action.DEPLOY, project=project, environment=environment)
    _check_environment(environment)
    checked = check_segments(segments)
    with svc.uow() as uow:
        found = get_project(uow, project)
    check_declared(svc, found, environment)
    with svc.uow() as uow:
        proj = get_project(uow, project)
        now = svc.clock.now()
        uow.flags.lock(proj, environment, now)
        before = list(uow.flags.segments(proj, environment))
        if before == checked:
            return uow.flags.revision(proj, environment)
        _check_segments_fit(uow, proj, environment, checked)
        rules = environment_now(svc, uow, proj, environment, now)
        if rules is not None and rules.protected:
            check_not_frozen(rules, now)
            return _record_request(
                uow, actor, proj, environment, "", {SEGMENTS: before}, {SEGMENTS: checked},
                SEGMENTS_UPDATED, now,
            )  # fmt: skip
        revision = write_segments(uow, actor.user, proj, environment, checked, now)
        uow.commit()
        return revision


def _check_segments_fit(
    uow: UnitOfWork, project: Project, environment: str, checked: list[dict[str, Any]]
) -> None:
    """Every segment a flag uses is still there, and the state compiles."""
    ids = {s["id"] for s in checked}
    for f in (f.definition for f in uow.flags.list(project, environment)):
        for i, s in enumerate(f.get("strategies") or ()):
            for seg in s.get("segments") or ():
                if seg not in ids:
                    raise _bad("segments", f"segment {seg} is used by {f['name']}.strategies[{i}]")
    try:
        compile_state({"version": STATE_VERSION, "features": [], "segments": checked})
    except ShipyardError as exc:
        raise _bad("segments", exc.message) from exc


def write_segments(
    uow: UnitOfWork,
    actor: str,
    project: Project,
    environment: str,
    checked: list[dict[str, Any]],
    now: datetime,
    extra: Mapping[str, Any] | None = None,
) -> int:
    """Store and record new segments in the caller's transaction (it commits); the revision."""
    _check_segments_fit(uow, project, environment, checked)
    revision = uow.flags.next_revision(project, environment, now)
    before = list(uow.flags.segments(project, environment))
    uow.flags.set_segments(project, environment, checked)
    uow.events.append(
        actor=actor,
        kind=SEGMENTS_UPDATED,
        subject=f"segments {environment}",
        project=project.name,
        now=now,
        payload={
            "environment": environment,
            "revision": revision,
            "before": before,
            "after": checked,
        }
        | dict(extra or {}),
    )
    return revision


# --- reads ------------------------------------------------------------------------------------


def list_flags(
    svc: Services, actor: Actor, project: str, environment: str
) -> tuple[int, Sequence[FlagRecord]]:
    """(revision, flags by key)."""
    actor.require(Action.READ)
    with svc.uow() as uow:
        proj = get_project(uow, project)
        return uow.flags.revision(proj, environment), uow.flags.list(proj, environment)


def show_flag(
    svc: Services, actor: Actor, project: str, environment: str, key: str, *, history: int = 50
) -> FlagView:
    """The flag with its newest ``history`` changes (newest first)."""
    actor.require(Action.READ)
    with svc.uow() as uow:
        proj = get_project(uow, project)
        flag = _get(uow, proj, environment, key)
        return FlagView(
            flag, uow.flags.revision(proj, environment), uow.flags.changes(flag, history)
        )


def state_revision(svc: Services, actor: Actor, project: str, environment: str) -> int:
    """The ETag of the state, read with one small query: pollers that are current stop here."""
    actor.require(Action.READ)
    with svc.uow() as uow:
        return uow.flags.revision(get_project(uow, project), environment)


def state(
    svc: Services, actor: Actor, project: str, environment: str
) -> tuple[int, dict[str, Any]]:
    """(revision, client-features document) read in one transaction, so they agree."""
    actor.require(Action.READ)
    with svc.uow() as uow:
        proj = get_project(uow, project)
        revision = uow.flags.revision(proj, environment)
        features = [f.definition for f in uow.flags.list(proj, environment)]
        segments = list(uow.flags.segments(proj, environment))
    return revision, {"version": STATE_VERSION, "features": features, "segments": segments}
