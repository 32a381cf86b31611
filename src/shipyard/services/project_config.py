"""The parts of a candidate's shipyard.yaml the release use cases need, read in one place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from shipyard.config.loader import load_config
from shipyard.config.schema import CronFreeze, ProjectConfig, RangeFreeze
from shipyard.domain.approvals import ApprovalRule
from shipyard.domain.environments import EnvironmentRules, Requires
from shipyard.domain.freezes import FreezeWindow, OneOffFreeze, RecurringFreeze
from shipyard.domain.versions import Bump, Scheme

CONFIG_FILE = "shipyard.yaml"


@dataclass(frozen=True)
class ReleaseSettings:
    scheme: Scheme
    bump: Bump
    initial: str
    build_command: str | None
    artifact_globs: tuple[str, ...]
    build_timeout_s: float
    build_env: tuple[tuple[str, str], ...]


@lru_cache(maxsize=256)
def project_config(text: str) -> ProjectConfig:
    """Parsed once per distinct text: candidates snapshot the file, so texts repeat a lot."""
    return load_config(text, CONFIG_FILE)


def release_settings(text: str) -> ReleaseSettings:
    cfg = project_config(text)
    build = cfg.build
    return ReleaseSettings(
        scheme=Scheme(cfg.versioning.scheme),
        bump=Bump(cfg.versioning.bump),
        initial=cfg.versioning.initial,
        build_command=build.command,
        artifact_globs=tuple(build.artifacts),
        build_timeout_s=float(build.timeout),
        build_env=tuple(sorted(build.env.items())),
    )


@dataclass(frozen=True)
class EnvironmentSpec:
    rules: EnvironmentRules
    target_kind: str
    target_settings: dict[str, Any]
    policy: str | None


def _freeze(f: CronFreeze | RangeFreeze) -> FreezeWindow:
    if isinstance(f, CronFreeze):
        return RecurringFreeze(
            cron=f.cron,
            duration=timedelta(seconds=f.duration),
            timezone=f.timezone,
            reason=f.reason,
            name=f.name,
        )
    # the schema refuses from/to without a UTC offset, with the line number
    return OneOffFreeze(start=f.start, end=f.end, reason=f.reason, name=f.name)


@lru_cache(maxsize=256)
def _specs(text: str) -> tuple[EnvironmentSpec, ...]:
    cfg = project_config(text)
    out = []
    for i, env in enumerate(cfg.environments):
        if isinstance(env.requires, list):
            requires = Requires(tuple(env.requires))
        else:
            requires = Requires(tuple(env.requires.any_of), env.requires.at_least)
        approval = None
        if env.approval is not None:
            a = env.approval
            approval = ApprovalRule(
                required=a.required,
                approvers=tuple(a.approvers),
                expires_after=timedelta(seconds=a.expires_after) if a.expires_after else None,
                allow_authors=a.allow_authors,
            )
        delivery = env.delivery or (cfg.delivery if i == 0 else "two-step")
        rules = EnvironmentRules(
            name=env.name,
            order=i,
            requires=requires,
            approval=approval,
            freezes=tuple(_freeze(f) for f in env.freeze),
            rollback_during_freeze=env.rollback_during_freeze,
            auto_promote=env.auto_promote,
            single_step=delivery == "single-step",
        )
        out.append(EnvironmentSpec(rules, env.target.kind, env.target.settings(), env.policy))
    return tuple(out)


def environment_specs(text: str) -> list[EnvironmentSpec]:
    """The environments a candidate's shipyard.yaml declares, in promotion order, as domain rules."""
    return list(_specs(text))
