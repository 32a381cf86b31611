"""The shape of shipyard.yaml. Unknown fields are errors, so a typo never passes silently."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from shipyard.config.durations import parse_duration

Seconds = Annotated[float, BeforeValidator(parse_duration)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Versioning(Strict):
    scheme: Literal["semver", "calver"] = "semver"
    initial: str = "0.1.0"
    bump: Literal["major", "minor", "patch"] = "minor"


class Build(Strict):
    command: str | None = None
    artifacts: list[str] = Field(default_factory=lambda: ["**/*"])
    timeout: Seconds = 1800.0
    env: dict[str, str] = Field(default_factory=dict)


class Target(BaseModel):
    """``kind`` picks the target; the other keys are that target's settings."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: str = "local"

    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class RequiresAnyOf(Strict):
    any_of: list[str]
    at_least: int = Field(1, ge=1)


class Approval(Strict):
    required: int = Field(1, ge=1)
    approvers: list[str] = Field(default_factory=list)
    expires_after: Seconds | None = None
    allow_authors: bool = False


class CronFreeze(Strict):
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


class RangeFreeze(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    reason: str = ""
    name: str = ""


class Environment(Strict):
    name: Slug
    target: Target = Field(default_factory=Target)
    requires: list[str] | RequiresAnyOf = Field(default_factory=list)
    approval: Approval | None = None
    freeze: list[CronFreeze | RangeFreeze] = Field(default_factory=list)
    rollback_during_freeze: bool = True
    auto_promote: bool = False
    delivery: Literal["two-step", "single-step"] | None = None
    policy: str | None = None


class ProjectConfig(Strict):
    project: Slug | None = None
    mainline: str = "main"
    versioning: Versioning = Field(default_factory=Versioning)
    build: Build = Field(default_factory=Build)
    delivery: Literal["two-step", "single-step"] = "two-step"
    environments: list[Environment] = Field(default_factory=list)
    policies: dict[str, dict[str, Any]] = Field(default_factory=dict)
    checks: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("mainline")
    @classmethod
    def _branch(cls, v: str) -> str:
        if not v or v.startswith("-") or " " in v:
            raise ValueError("must be a branch name")
        return v

    @model_validator(mode="after")
    def _cross_references(self) -> ProjectConfig:
        seen: list[str] = []
        for i, env in enumerate(self.environments):
            if env.name in seen:
                raise ValueError(f"environments[{i}].name: {env.name!r} is declared twice")
            names = env.requires if isinstance(env.requires, list) else env.requires.any_of
            for req in names:
                if req not in seen:
                    raise ValueError(
                        f"environments[{i}].requires: {req!r} must name an earlier environment"
                    )
            if env.policy is not None and env.policy not in self.policies:
                raise ValueError(f"environments[{i}].policy: no policy named {env.policy!r}")
            seen.append(env.name)
        return self
