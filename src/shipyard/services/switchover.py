"""A canary needs a stable to be compared with, and a rollback must leave only its candidate.

When an environment's target kind changes between releases (production first deployed by a
`command` hook, then switched to `local` instances behind a router with a canary policy), the
stable candidate does not run on the new target: a canary beside it has nothing to take traffic
from. The first deployment on the new target therefore plans one of two things, and says which
in its log (``plan:`` lines): start the stable candidate on the new target first, then run the
canary; or, when the stable cannot be started there (vetoed, no artifacts), deploy directly,
without a canary. A rollback is checked the same way, by reading the target afterwards: it
retires every other candidate still running and fails, naming what still answers, when the
target does not then run exactly its candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from shipyard.domain.deployments import Deployment, DeploymentMode
from shipyard.domain.releases import Project
from shipyard.domain.rollouts import RouteIntent
from shipyard.errors import AdapterError
from shipyard.ports.repositories import UnitOfWork
from shipyard.ports.targets import ArtifactFile, DeploySpec, DeployTarget, Identity
from shipyard.services.context import Services
from shipyard.services.project_config import EnvironmentSpec, environment_specs
from shipyard.services.traffic import apply_route, drain

PLAN = "plan: "  # how the deployment log marks what a deployment decided to do


@dataclass(frozen=True)
class StablePlan:
    candidate: str
    spec: DeploySpec | None  # the stable on this environment's target as configured now
    because: str  # why it cannot be started there, when ``spec`` is None


def stable_plan(
    svc: Services, uow: UnitOfWork, project: Project, d: Deployment, deploy_spec: DeploySpec
) -> StablePlan | None:
    """What it takes to start the candidate being replaced on the target the new one uses.

    Its artifacts with the *new* candidate's target settings: the environment is configured as
    the new release says. None when nothing is replaced."""
    stable = d.from_candidate
    if stable is None or stable == d.candidate:
        return None
    found = uow.releases.get_candidate(project, stable)
    if found is None:
        return StablePlan(stable, None, "its record is gone")
    if stable in uow.deployments.vetoed(project):
        return StablePlan(stable, None, "it is vetoed")
    if not found.artifacts:
        return StablePlan(stable, None, "it has no artifacts")
    release = uow.releases.get_release_by_id(found.release_id)
    files = tuple(
        ArtifactFile(a.name, a.digest, svc.artifacts.path(a.digest)) for a in found.artifacts
    )
    spec = replace(
        deploy_spec,
        candidate=found.name,
        version=release.version,
        sha=found.sha,
        mode=DeploymentMode.DEPLOY,
        from_candidate=None,
        artifacts=files,
    )
    return StablePlan(stable, spec, "")


def rollback_where(
    uow: UnitOfWork,
    project: Project,
    d: Deployment,
    env: EnvironmentSpec,
    deploy_spec: DeploySpec,
) -> tuple[EnvironmentSpec, DeploySpec, str]:
    """Where a rollback goes: the target and router the environment runs on *now*.

    The candidate rolled back to may have been deployed when the environment had another target
    kind (a command hook, then local instances): redeployed by its own snapshot it would land
    where nothing serves, and the new code would go on answering. So it goes onto the target of
    the newest deployment that touched the environment, with its own artifacts."""
    newest = next(
        (
            h
            for h in uow.deployments.history(project, d.environment)
            if h.id != d.id and h.candidate != d.candidate and h.started_at is not None
        ),
        None,
    )
    if newest is None:
        return env, deploy_spec, ""
    found = uow.releases.get_candidate(project, newest.candidate)
    if found is None:
        return env, deploy_spec, ""
    now = next(
        (s for s in environment_specs(found.config_text) if s.rules.name == env.rules.name), None
    )
    if now is None or now.target_kind == env.target_kind:
        # the same kind of target: the candidate's own snapshot says how (and whether) traffic
        # reaches it, so a rollback onto a routed candidate moves the router too
        return env, deploy_spec, ""
    note = (
        f"{PLAN}{d.environment} runs on target {now.target_kind} now (as {newest.candidate} "
        f"configured it), not {env.target_kind} as when {d.candidate} was cut: "
        f"{d.candidate} is rolled back onto target {now.target_kind}\n"
    )
    return now, replace(deploy_spec, settings=now.target_settings), note


def ensure_stable(
    svc: Services,
    target: DeployTarget,
    env: EnvironmentSpec,
    new: DeploySpec,
    plan: StablePlan,
) -> tuple[str, bool]:
    """Make the stable run on the target before the canary ``new`` starts beside it:
    returns (log, deploy directly without a canary?)."""
    running = {i.candidate for i in target.running(new.project, new.environment, new.state_dir)}
    if plan.candidate in running:
        return "", False
    spec = plan.spec
    kind = env.target_kind
    if spec is None:
        return (
            f"{PLAN}{plan.candidate} does not run on target {kind} and cannot be started there "
            f"({plan.because}): nothing to compare a canary with, so {new.candidate} is deployed "
            "directly, without a canary\n",
            True,
        )
    log = (
        f"{PLAN}{plan.candidate} (stable) does not run on target {kind} (the environment's "
        f"target changed since it was deployed): start it there first, then run the canary of "
        f"{new.candidate}\n"
    )
    try:
        log += target.deploy(spec).log
    except AdapterError as exc:
        raise AdapterError(
            f"could not start {plan.candidate} on target {kind} before the canary of "
            f"{new.candidate}: {exc.message}"
        ) from exc
    if env.router_kind is not None:
        apply_route(svc, env, spec, RouteIntent(stable=plan.candidate))
        log += f"traffic: 100% to {plan.candidate} through {env.router_kind}\n"
    return log, False


def make_sole(svc: Services, target: DeployTarget, env: EnvironmentSpec, spec: DeploySpec) -> str:
    """After a rollback switched traffic: retire every other candidate the target still runs,
    then read it again. AdapterError says what still answers, so a rollback never reports a
    success that did not happen."""
    log = ""
    others = _others(target, spec)
    if others:
        drain(svc, env)
    for other in sorted(others):
        target.retire(spec, other)
        log += f"retired {other}, which still ran on target {env.target_kind}\n"
    left = target.running(spec.project, spec.environment, spec.state_dir)
    still = sorted({f"{i.candidate} at {i.address}" for i in left if i.candidate != spec.candidate})
    if still:
        raise AdapterError(
            f"rollback to {spec.candidate} is incomplete: {', '.join(still)} still answers"
        )
    mine = [i for i in left if i.candidate == spec.candidate]
    if not mine:
        raise AdapterError(
            f"rollback to {spec.candidate} is incomplete: no instance of it answers on target "
            f"{env.target_kind}"
        )
    if all(i.identity is Identity.UNVERIFIED for i in mine):
        log += (
            f"target {env.target_kind} cannot tell what runs (no identify hook): "
            f"{spec.candidate} is what it last deployed\n"
        )
    return log


def _others(target: DeployTarget, spec: DeploySpec) -> set[str]:
    found = target.running(spec.project, spec.environment, spec.state_dir)
    return {i.candidate for i in found} - {spec.candidate}
