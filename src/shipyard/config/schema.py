"""The shape of shipyard.yaml. Unknown fields are errors, so a typo never passes silently.

Cross-field rules raise ``ValueError("<dotted.path>: <reason>")`` from a model validator; the
loader turns the path into the field and line of the error.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from shipyard.config.durations import MAX_SECONDS, parse_duration
from shipyard.config.kinds import RouterKind, TargetKind, check_target_kind
from shipyard.domain.secrets import MAX_VARIABLES, name_problem, value_problem

__all__ = [
    "Analysis",
    "Approval",
    "ApprovalStep",
    "Build",
    "Check",
    "CookieMatch",
    "CronFreeze",
    "Environment",
    "HeaderMatch",
    "Match",
    "Mirror",
    "PathMatch",
    "Pause",
    "Policy",
    "ProjectConfig",
    "RangeFreeze",
    "RequiresAnyOf",
    "Segment",
    "Step",
    "Target",
    "Threshold",
    "Versioning",
]

_DURATION_SCHEMA = {
    "anyOf": [
        {
            "type": "string",
            "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d|w))+$",
            "examples": ["90s", "1h30m"],
        },
        {"type": "number", "minimum": 0, "maximum": MAX_SECONDS},
    ]
}
Seconds = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA)]
"""A duration: ``90s``, ``2m``, ``1h30m``, ``3d`` or a bare number of seconds."""
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def _slug(v: str) -> str:
    if not _SLUG.match(v):
        raise ValueError(f"{v!r} is not a slug: lowercase letters, digits, - and _, at most 63")
    return v


Slug = Annotated[
    str, AfterValidator(_slug), WithJsonSchema({"type": "string", "pattern": _SLUG.pattern})
]
Delivery = Literal["two-step", "single-step"]


def _env_vars(v: dict[str, str]) -> dict[str, str]:
    if len(v) > MAX_VARIABLES:
        raise ValueError(f"at most {MAX_VARIABLES} variables")
    for name, value in v.items():
        problem = name_problem(name) or value_problem(value)
        if problem is not None:
            raise ValueError(f"{name}: {problem}")
    return v


EnvVars = Annotated[dict[str, str], AfterValidator(_env_vars)]
"""Variables an environment hands its processes (names are identifiers, not SHIPYARD_*)."""
UnixUser = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")]
RouterMetric = Literal["error_ratio", "latency_p50", "latency_p95", "latency_p99", "request_rate"]

_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
QUERY_PLACEHOLDERS = ("version", "stable_version", "project", "environment", "interval")
"""The ``{{name}}`` placeholders a prometheus query may use."""
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# --- release management ---------------------------------------------------------------------


class Versioning(Strict):
    """semver: ``MAJOR.MINOR.PATCH``. calver: ``YYYY.MM.DD`` for a day's first release, then
    ``YYYY.MM.DD.1``, ``YYYY.MM.DD.2`` ... (UTC date, zero-padded month and day)."""

    scheme: Literal["semver", "calver"] = "semver"
    initial: str = "0.1.0"
    bump: Literal["major", "minor", "patch"] = "minor"
    tag_prefix: str = ""

    @field_validator("initial")
    @classmethod
    def _initial(cls, v: str) -> str:
        if not _SEMVER.match(v):
            raise ValueError(f"{v!r} is not a semver version like 0.1.0")
        return v

    @field_validator("tag_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if v and not re.fullmatch(r"[A-Za-z0-9._/-]+", v):
            raise ValueError(f"{v!r} cannot start a git tag name")
        return v


class Build(Strict):
    """``command`` absent: external CI registers the artifacts."""

    command: str | None = None
    artifacts: list[str] = Field(default_factory=lambda: ["**/*"], min_length=1)
    timeout: Seconds = 1800.0
    env: dict[str, str] = Field(default_factory=dict)


# --- environments -----------------------------------------------------------------------------


class Target(BaseModel):
    """``kind`` picks the target; the other keys are that target's settings, passed through."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: Annotated[
        str,
        AfterValidator(check_target_kind),
        WithJsonSchema({"enum": [k.value for k in TargetKind]}),
    ] = TargetKind.LOCAL.value

    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @model_validator(mode="before")
    @classmethod
    def _durations_in_seconds(cls, data: Any) -> Any:
        """Targets read plain seconds; the file may say ``30s`` or ``2m``."""
        if isinstance(data, dict) and data.get("kind", "local") in _TARGET_KEYS:
            data = dict(data)
            for key in ("timeout", "health_timeout", "identify_timeout"):
                if key in data:
                    try:
                        data[key] = parse_duration(data[key])
                    except ValueError as exc:
                        raise ValueError(f"{key}: {exc}") from None
        return data

    @model_validator(mode="after")
    def _known_kinds(self) -> Target:
        s = self.settings()
        allowed = _TARGET_KEYS.get(self.kind)
        if allowed is None:
            return self  # another kind: its adapter validates its own settings
        for key in s:
            if key not in allowed:
                raise ValueError(f"{key}: unknown field for a {self.kind} target")
        if self.kind == "local":
            instances = s.get("instances", 1)
            if (
                isinstance(instances, bool)
                or not isinstance(instances, int)
                or not 1 <= instances <= MAX_INSTANCES
            ):
                raise ValueError(f"instances: must be a whole number from 1 to {MAX_INSTANCES}")
        elif not isinstance(s.get("deploy"), str):
            raise ValueError("deploy: the command target needs a deploy command")
        return self


MAX_INSTANCES = 100
"""Instances of one version on one host; more is a typo (``instances: 1e20``)."""
_TARGET_KEYS = {
    "local": {"start", "instances", "health", "health_timeout", "artifact"},
    "command": {
        "deploy",
        "health",
        "rollback",
        "timeout",
        "health_timeout",
        "identify",  # prints the candidate that runs (status); see docs/shipyard-yaml.md
        "identify_timeout",
    },
}


class RequiresAnyOf(Strict):
    any_of: list[str] = Field(min_length=1)
    at_least: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _enough(self) -> RequiresAnyOf:
        if self.at_least > len(self.any_of):
            raise ValueError(
                f"at_least: {self.at_least} is more than the {len(self.any_of)} listed"
            )
        return self


class Approval(Strict):
    required: int = Field(1, ge=1)
    approvers: list[str] = Field(default_factory=list)
    expires_after: Seconds | None = None
    allow_authors: bool = False


class CronFreeze(Strict):
    """Recurring: frozen for ``duration`` from each time ``cron`` fires in ``timezone``."""

    cron: str
    duration: Seconds
    timezone: str = "UTC"
    reason: str = ""
    name: str = ""

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        if len(v.split()) != 5 or not croniter.is_valid(v):
            raise ValueError(f"{v!r} is not a 5-field cron expression like '0 18 * * 5'")
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA time zone like Europe/Berlin") from None
        return v

    @field_validator("duration")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be longer than zero")
        return v


class RangeFreeze(Strict):
    """One-off: frozen from ``from`` to ``to`` (ISO 8601 with a UTC offset)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    reason: str = ""
    name: str = ""

    @model_validator(mode="after")
    def _order(self) -> RangeFreeze:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("from: needs a UTC offset, e.g. 2026-12-24T00:00:00+01:00")
        if self.end <= self.start:
            raise ValueError("to: must be after from")
        return self


def _freeze_kind(v: Any) -> str:
    """Pick the shape by its keys, so an error speaks about the window the user meant."""
    if isinstance(v, RangeFreeze) or (isinstance(v, dict) and ("from" in v or "to" in v)):
        return "Range"
    return "Cron"


Freeze = Annotated[
    Annotated[CronFreeze, Tag("Cron")] | Annotated[RangeFreeze, Tag("Range")],
    Discriminator(_freeze_kind),
]


class Router(Strict):
    """The proxy in front of the environment; every deployment there moves traffic through it."""

    kind: RouterKind = RouterKind.HAPROXY
    port: int = Field(ge=1, le=65535)
    # after traffic leaves a version, its in-flight requests get this long before it is stopped
    drain: Seconds = Field(1.0, ge=0, le=600)


class Environment(Strict):
    name: Slug
    target: Target = Field(default_factory=Target)
    requires: list[str] | RequiresAnyOf = Field(default_factory=list)
    approval: Approval | None = None
    freeze: list[Freeze] = Field(default_factory=list)
    rollback_during_freeze: bool = True
    auto_promote: bool = False
    delivery: Delivery | None = None
    policy: str | None = None
    router: Router | None = None
    # production: deployments need a second person's approval, so do flag changes
    protected: bool = False
    env: EnvVars = Field(default_factory=dict)
    run_as: UnixUser | None = None

    @property
    def required_names(self) -> list[str]:
        return self.requires if isinstance(self.requires, list) else self.requires.any_of


# --- checks -----------------------------------------------------------------------------------


class Threshold(Strict):
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _one(self) -> Threshold:
        if self.max is None and self.min is None:
            raise ValueError("max: give max, min or both")
        return self


class Check(Strict):
    """A metric the canary is judged on. ``router`` metrics come from the traffic router."""

    provider: Literal["router", "prometheus"] = "router"
    metric: RouterMetric | None = None
    query: str | None = None
    judge: Literal["sequential", "mann_whitney", "threshold"] = "sequential"
    threshold: Threshold | None = None
    compare: Literal["baseline"] | None = None
    max_increase: float | None = Field(None, gt=0)
    # an error-ratio increase this small (absolute: 0.001 = 0.1 points) is not harm
    negligible_increase: float | None = Field(None, ge=0, lt=1)
    alpha: float = Field(0.02, gt=0, lt=1)
    failure_limit: int | None = Field(None, ge=0)
    interval: Seconds = 60.0
    dry_run: bool = False
    # measurement errors (a failed query) in a row before the policy's on_error acts
    consecutive_error_limit: int | None = Field(None, ge=1)

    @property
    def effective_failure_limit(self) -> int:
        """``failure_limit`` or the judge's default: 0 for the statistical judges, 1 for threshold."""
        if self.failure_limit is not None:
            return self.failure_limit
        return 1 if self.judge == "threshold" else 0

    @model_validator(mode="before")
    @classmethod
    def _prometheus_judges_thresholds(cls, data: Any) -> Any:
        """A query returns one number per interval, not per-request samples: threshold judging."""
        if isinstance(data, dict) and data.get("provider") == "prometheus" and "judge" not in data:
            return {**data, "judge": "threshold"}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Check:
        if self.provider == "router":
            if self.metric is None:
                raise ValueError("metric: a router check needs a metric")
            if self.query is not None:
                raise ValueError("query: only prometheus checks take a query")
        else:
            if self.query is None:
                raise ValueError("query: a prometheus check needs a query")
            if self.metric is not None:
                raise ValueError("metric: only router checks take a metric; use query")
            for name in _PLACEHOLDER.findall(self.query):
                if name not in QUERY_PLACEHOLDERS:
                    raise ValueError(
                        f"query: unknown placeholder {{{{{name}}}}}; use one of "
                        + ", ".join(QUERY_PLACEHOLDERS)
                    )
        statistical = self.judge != "threshold"
        if statistical and self.provider == "prometheus":
            raise ValueError(
                f"judge: a prometheus query is judged by threshold, not {self.judge}; "
                "compare with the stable version by compare: baseline and max_increase"
            )
        if statistical and self.metric == "request_rate":
            raise ValueError("judge: request_rate is judged by threshold")
        if self.negligible_increase is not None and (
            self.judge != "sequential" or self.metric != "error_ratio"
        ):
            raise ValueError(
                "negligible_increase: only error_ratio checks of the sequential judge take it"
            )
        relative = self.compare is not None and self.max_increase is not None
        if not statistical and self.threshold is None and not relative:
            raise ValueError(
                "threshold: the threshold judge needs threshold.max or .min, "
                "or compare: baseline with max_increase"
            )
        return self


# --- policies ---------------------------------------------------------------------------------


class Pause(Strict):
    """``duration`` None: paused until a human promotes."""

    duration: Seconds | None = None


def _pause(v: Any) -> Any:
    if isinstance(v, str | int | float) and not isinstance(v, bool):
        return {"duration": v}
    return v


class Analysis(Strict):
    checks: list[str | Check] = Field(min_length=1)
    interval: Seconds | None = None
    duration: Seconds | None = None


class ApprovalStep(Strict):
    required: int = Field(1, ge=1)
    approvers: list[str] = Field(default_factory=list)


class HeaderMatch(Strict):
    name: str
    value: str | None = None
    regex: str | None = None
    negate: bool = False

    @model_validator(mode="after")
    def _one(self) -> HeaderMatch:
        if (self.value is None) == (self.regex is None):
            raise ValueError("value: give exactly one of value or regex")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex: not a regular expression: {exc}") from None
        return self


class CookieMatch(Strict):
    name: str
    present: bool = True
    value: str | None = None


class PathMatch(Strict):
    prefix: str = Field(pattern=r"^/")


class Match(Strict):
    header: HeaderMatch | None = None
    cookie: CookieMatch | None = None
    path: PathMatch | None = None

    @model_validator(mode="after")
    def _one(self) -> Match:
        if sum(x is not None for x in (self.header, self.cookie, self.path)) != 1:
            raise ValueError("header: give exactly one of header, cookie or path")
        return self


class Segment(Strict):
    match: Match
    weight: float = Field(100.0, ge=0, le=100)


class Mirror(Strict):
    percent: float = Field(ge=0, le=100)


STEP_KINDS = ("set_weight", "pause", "analysis", "approval", "segment", "mirror")


class Step(Strict):
    """Exactly one of the fields is set."""

    set_weight: float | None = Field(None, ge=0, le=100)
    pause: Annotated[
        Pause | None,
        BeforeValidator(_pause),
        WithJsonSchema(
            {
                "anyOf": [
                    _DURATION_SCHEMA,
                    {
                        "type": "object",
                        "properties": {"duration": _DURATION_SCHEMA},
                        "additionalProperties": False,
                    },
                    {"type": "null"},
                ],
                "description": "a duration, or {} to wait until a human promotes",
            }
        ),
    ] = None
    analysis: Analysis | None = None
    approval: ApprovalStep | None = None
    segment: Segment | None = None
    mirror: Mirror | None = None

    @property
    def kind(self) -> str:
        return next(k for k in STEP_KINDS if getattr(self, k) is not None)

    @model_validator(mode="after")
    def _exactly_one(self) -> Step:
        if sum(getattr(self, k) is not None for k in STEP_KINDS) != 1:
            raise ValueError("each step is exactly one of " + ", ".join(STEP_KINDS))
        return self


FLAG_KEY = r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,99}$"


class Policy(Strict):
    strategy: Literal["canary", "blue_green"] = "canary"
    router: Literal["haproxy", "flag"] = "haproxy"
    # router: flag — the feature flag (in the deployment's environment) whose rollout moves
    flag: str | None = Field(None, pattern=FLAG_KEY)
    steps: list[Step] = Field(default_factory=list)
    preview_checks: list[str | Check] = Field(default_factory=list)
    keep_old_for: Seconds = 3600.0
    auto_switch: bool = False
    # errors in a row (a tick that cannot proceed, a check that cannot be measured) before
    # on_error acts: abort to stable, or pause for a human (as Argo's consecutiveErrorLimit)
    consecutive_error_limit: int = Field(4, ge=1)
    on_error: Literal["abort", "pause"] = "abort"

    @property
    def weights(self) -> list[float]:
        """The canary weights in order, ending with the implied 100."""
        out = [s.set_weight for s in self.steps if s.set_weight is not None]
        return out if out and out[-1] == 100 else [*out, 100.0]

    @model_validator(mode="after")
    def _flag_router(self) -> Policy:
        """A flag router needs its flag, and only weights and waits make sense with it."""
        if self.router == "flag":
            if self.flag is None:
                raise ValueError("flag: router: flag needs the flag to move (flag: KEY)")
            if self.strategy == "blue_green":
                raise ValueError("router: a blue_green policy switches a proxy; use haproxy")
            for i, step in enumerate(self.steps):
                if step.kind in ("segment", "mirror"):
                    raise ValueError(
                        f"steps[{i}]: router: flag cannot {step.kind}; "
                        "target users with the flag's constraints instead"
                    )
                w = step.set_weight
                if w is not None and Decimal(str(w)).as_tuple().exponent < -4:  # type: ignore[operator]
                    raise ValueError(
                        f"steps[{i}].set_weight: a flag rollout takes at most 4 decimals "
                        "(1 in a million users)"
                    )
        elif self.flag is not None:
            raise ValueError("flag: only router: flag policies take a flag")
        return self

    @model_validator(mode="after")
    def _steps(self) -> Policy:
        last = 0.0
        for i, step in enumerate(self.steps):
            w = step.set_weight
            if self.strategy == "blue_green" and step.kind in ("set_weight", "segment", "mirror"):
                raise ValueError(f"steps[{i}]: a blue_green policy cannot use {step.kind}")
            seg = step.segment
            if seg is not None and self.router == "haproxy" and seg.weight != 100:
                raise ValueError(
                    f"steps[{i}].segment.weight: haproxy sends every matching request; use 100"
                )
            cookie = seg.match.cookie if seg is not None else None
            if cookie is not None and cookie.value and not cookie.present:
                raise ValueError(f"steps[{i}].segment.match.cookie: value needs present: true")
            if w is None:
                continue
            if self.router == "haproxy" and w != int(w):
                raise ValueError(
                    f"steps[{i}].set_weight: haproxy takes whole percents; use router: flag"
                )
            if w < last:
                raise ValueError(f"steps[{i}].set_weight: {w:g} is less than the {last:g} before")
            last = w
        if self.strategy == "canary":
            for name in ("preview_checks", "keep_old_for", "auto_switch"):
                if name in self.model_fields_set:
                    raise ValueError(f"{name}: only blue_green policies take {name}")
        return self


# --- the file ---------------------------------------------------------------------------------


class PrometheusSource(Strict):
    """Where prometheus checks are queried (``SHIPYARD_PROMETHEUS_URL`` when absent)."""

    address: str = Field(pattern=r"^https?://")
    timeout: Seconds = 5.0


class ProjectConfig(Strict):
    project: Slug | None = None
    mainline: str = "main"
    versioning: Versioning = Field(default_factory=Versioning)
    build: Build = Field(default_factory=Build)
    delivery: Delivery = "two-step"
    environments: list[Environment] = Field(default_factory=list)
    policies: dict[str, Policy] = Field(default_factory=dict)
    checks: dict[str, Check] = Field(default_factory=dict)
    prometheus: PrometheusSource | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        """``build:`` with nothing under it means the defaults, not an error."""
        if isinstance(data, dict):
            sections = ("versioning", "build", "environments", "policies", "checks")
            return {k: v for k, v in data.items() if not (k in sections and v is None)}
        return data

    def environment(self, name: str) -> Environment | None:
        return next((e for e in self.environments if e.name == name), None)

    @field_validator("mainline")
    @classmethod
    def _branch(cls, v: str) -> str:
        if not v or v.startswith("-") or " " in v or ".." in v:
            raise ValueError("must be a branch name")
        return v

    @model_validator(mode="after")
    def _cross_references(self) -> ProjectConfig:
        seen: list[str] = []
        for i, env in enumerate(self.environments):
            if env.name in seen:
                raise ValueError(f"environments[{i}].name: {env.name!r} is declared twice")
            where = f"environments[{i}].requires"
            for j, req in enumerate(env.required_names):
                if req not in seen:
                    at = (
                        f"{where}[{j}]"
                        if isinstance(env.requires, list)
                        else f"{where}.any_of[{j}]"
                    )
                    raise ValueError(f"{at}: {req!r} must name an earlier environment")
            if env.policy is not None and env.policy not in self.policies:
                raise ValueError(f"environments[{i}].policy: no policy named {env.policy!r}")
            routed = env.policy is not None and self.policies[env.policy].router == "haproxy"
            if routed and env.router is None:
                raise ValueError(
                    f"environments[{i}].router: policy {env.policy!r} moves traffic through "
                    "haproxy; give router: {port: PORT} (where users reach the environment)"
                )
            seen.append(env.name)
        for name, policy in self.policies.items():
            for i, step in enumerate(policy.steps):
                if step.analysis is not None:
                    self._known_checks(step.analysis.checks, f"policies.{name}.steps[{i}].analysis")
            self._known_checks(policy.preview_checks, f"policies.{name}")
        return self

    def _known_checks(self, refs: list[str | Check], where: str) -> None:
        field = "checks" if "steps" in where else "preview_checks"
        for k, ref in enumerate(refs):
            if isinstance(ref, str) and ref not in self.checks:
                raise ValueError(f"{where}.{field}[{k}]: no check named {ref!r}")
