"""The parts of a candidate's shipyard.yaml the release use cases need, read in one place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from shipyard.analysis.checks import CheckSpec
from shipyard.config.loader import load_config
from shipyard.config.schema import Check, CronFreeze, Policy, ProjectConfig, RangeFreeze, Step
from shipyard.domain import rollouts as ro
from shipyard.domain.approvals import ApprovalRule
from shipyard.domain.environments import EnvironmentRules, Requires
from shipyard.domain.freezes import FreezeWindow, OneOffFreeze, RecurringFreeze
from shipyard.domain.rollouts import PolicySpec, SegmentRule
from shipyard.domain.versions import Bump, Scheme
from shipyard.errors import InvalidError

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
    router_kind: str | None = None  # a proxy in front of the environment moves its traffic
    router_port: int | None = None
    router_drain_s: float = 0.0
    env: tuple[tuple[str, str], ...] = ()  # `env:` handed to the environment's processes
    run_as: str | None = None


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
        approval = ApprovalRule() if env.protected else None  # protected: a second person
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
            protected=env.protected,
        )
        router = env.router
        out.append(
            EnvironmentSpec(
                rules,
                env.target.kind,
                env.target.settings(),
                env.policy,
                router.kind if router is not None else None,
                router.port if router is not None else None,
                float(router.drain) if router is not None else 0.0,
                env=tuple(sorted(env.env.items())),
                run_as=env.run_as,
            )
        )
    return tuple(out)


def environment_specs(text: str) -> list[EnvironmentSpec]:
    """The environments a candidate's shipyard.yaml declares, in promotion order, as domain rules."""
    return list(_specs(text))


# --- release policies -------------------------------------------------------------------------


def _check_spec(name: str, c: Check) -> CheckSpec:
    t = c.threshold
    return CheckSpec(
        name=name,
        provider=c.provider,
        metric=c.metric,
        query=c.query,
        judge=c.judge,
        max=t.max if t is not None else None,
        min=t.min if t is not None else None,
        compare_baseline=c.compare == "baseline" or c.judge != "threshold",
        max_increase=c.max_increase,
        negligible_increase=c.negligible_increase,
        alpha=c.alpha,
        failure_limit=c.effective_failure_limit,
        interval_s=float(c.interval),
        dry_run=c.dry_run,
        consecutive_error_limit=c.consecutive_error_limit,
    )


def _checks(cfg: ProjectConfig, refs: list[str | Check], where: str) -> tuple[CheckSpec, ...]:
    out = []
    for k, ref in enumerate(refs):
        if isinstance(ref, str):
            out.append(_check_spec(ref, cfg.checks[ref]))
        else:
            out.append(_check_spec(f"{where}[{k}]", ref))
    return tuple(out)


def _segment(step: Step) -> SegmentRule | None:
    seg = step.segment
    if seg is None:
        return None
    m = seg.match
    if m.header is not None:
        h = m.header
        return SegmentRule("header", h.name, h.value, h.regex, h.negate)
    if m.cookie is not None:
        c = m.cookie
        return SegmentRule("cookie", c.name, c.value, None, not c.present)
    assert m.path is not None
    return SegmentRule("path", value=m.path.prefix)


def _set_weight(cfg: ProjectConfig, where: str, step: Step) -> ro.Step:
    assert step.set_weight is not None
    return ro.SetWeight(step.set_weight)


def _pause(cfg: ProjectConfig, where: str, step: Step) -> ro.Step:
    assert step.pause is not None
    return ro.Pause(step.pause.duration)


def _analysis(cfg: ProjectConfig, where: str, step: Step) -> ro.Step:
    a = step.analysis
    assert a is not None
    return ro.Analysis(_checks(cfg, a.checks, where), a.duration, a.interval)


def _approval(cfg: ProjectConfig, where: str, step: Step) -> ro.Step:
    assert step.approval is not None
    return ro.Approval(step.approval.required, tuple(step.approval.approvers))


def _segment_step(cfg: ProjectConfig, where: str, step: Step) -> ro.Step:
    rule = _segment(step)
    assert rule is not None
    return ro.Segment(rule)


def _mirror(cfg: ProjectConfig, where: str, step: Step) -> ro.Step:
    assert step.mirror is not None
    return ro.Mirror(step.mirror.percent)


_STEP_BUILDERS: dict[ro.StepKind, Callable[[ProjectConfig, str, Step], ro.Step]] = {
    ro.StepKind.SET_WEIGHT: _set_weight,
    ro.StepKind.PAUSE: _pause,
    ro.StepKind.ANALYSIS: _analysis,
    ro.StepKind.APPROVAL: _approval,
    ro.StepKind.SEGMENT: _segment_step,
    ro.StepKind.MIRROR: _mirror,
}


def _step(cfg: ProjectConfig, name: str, i: int, step: Step) -> ro.Step:
    return _STEP_BUILDERS[ro.StepKind(step.kind)](cfg, f"{name}.steps[{i}]", step)


def _policy(cfg: ProjectConfig, name: str, p: Policy) -> PolicySpec:
    steps = [_step(cfg, name, i, s) for i, s in enumerate(p.steps)]
    if p.strategy == "blue_green":
        return PolicySpec.blue_green(
            name,
            steps,
            _checks(cfg, p.preview_checks, f"{name}.preview_checks"),
            keep_old_for_s=p.keep_old_for,
            auto_switch=p.auto_switch,
            consecutive_error_limit=p.consecutive_error_limit,
            on_error=ro.OnError(p.on_error),
        )
    return PolicySpec(
        name,
        ro.Strategy.CANARY,
        tuple(steps),
        router=p.router,
        flag=p.flag,
        consecutive_error_limit=p.consecutive_error_limit,
        on_error=ro.OnError(p.on_error),
    )


def policy_names(text: str) -> list[str]:
    return list(project_config(text).policies)


def rollout_policy(text: str, environment: str, override: str | None = None) -> PolicySpec | None:
    """The policy a deployment into ``environment`` runs: the override, else the environment's."""
    cfg = project_config(text)
    env = cfg.environment(environment)
    name = override or (env.policy if env is not None else None)
    if name is None:
        return None
    policy = cfg.policies.get(name)
    if policy is None:
        known = ", ".join(sorted(cfg.policies)) or "none"
        raise InvalidError(
            f"no release policy named {name!r} in this candidate's shipyard.yaml (known: {known})"
        )
    if policy.router == "haproxy" and (env is None or env.router is None):
        raise InvalidError(
            f"policy {name!r} moves traffic through haproxy, but environment {environment!r} "
            "has no router",
            hint="add router: {port: PORT} to the environment in shipyard.yaml",
        )
    return _policy(cfg, name, policy)


def prometheus_source(text: str) -> dict[str, Any] | None:
    """Where this candidate's prometheus checks are queried, if its shipyard.yaml says."""
    p = project_config(text).prometheus
    return {"address": p.address, "timeout": p.timeout} if p is not None else None
