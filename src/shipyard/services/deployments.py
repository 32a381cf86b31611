"""Deployment use cases: deploy, approve, reject, rollback, veto; and running a deployment.

Requests, decisions and outcomes are each one transaction that also writes the event and, when a
deployment may start, the job that runs it; so a restart never misses or repeats a promotion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from shipyard.domain import deployments as dm
from shipyard.domain.approvals import Approval, Decision, barred_users, check_can_approve
from shipyard.domain.auth import Action, Actor
from shipyard.domain.commits import Commit
from shipyard.domain.deployments import (
    Deployment,
    DeploymentMode,
    DeploymentState,
    FreezeOverride,
)
from shipyard.domain.environments import EnvironmentRules, environment_named
from shipyard.domain.freezes import active_freeze, next_unfrozen
from shipyard.domain.gates import (
    GateContext,
    GateVerdict,
    apply_gates,
    auto_promotions,
    auto_promotions_after,
    evaluate_gates,
)
from shipyard.domain.releases import Candidate, Project, Veto
from shipyard.domain.rollouts import PolicySpec, RouteIntent
from shipyard.errors import ErrorCode, NotFoundError, RefusedError, ShipyardError
from shipyard.ports.repositories import UnitOfWork
from shipyard.ports.routers import RoutePlan
from shipyard.ports.targets import ArtifactFile, DeploySpec, Instance
from shipyard.services.context import Services
from shipyard.services.flags import routed_flag
from shipyard.services.identities import author_users
from shipyard.services.live_policy import live_rules, mainline_rules
from shipyard.services.project_config import EnvironmentSpec, environment_specs, rollout_policy
from shipyard.services.readings import Reading, read
from shipyard.services.releases import get_project
from shipyard.services.secrets import environment_secrets
from shipyard.services.switchover import (
    StablePlan,
    ensure_stable,
    make_sole,
    rollback_where,
    stable_plan,
)
from shipyard.services.traffic import (
    abort_rollout_of,
    apply_route,
    begin,
    drain,
    observe_route,
    take_over_warm_colour,
)

DEPLOY_JOB = "deploy"
AUTO = "shipyard"  # the actor of automatic promotions


@dataclass(frozen=True)
class Placement:
    """What one environment runs now (as its target reads it) and what waits to go there."""

    environment: str
    candidate: str | None  # what answers there (see ``reading``), not only what was recorded
    since: datetime | None
    by: str | None
    pending: Sequence[Deployment]
    frozen_until: str | None
    instances: Sequence[Instance] = ()
    routing: RoutePlan | None = None  # read back from the environment's router now
    reading: Reading | None = None
    vetoed: Mapping[str, Veto] = field(default_factory=dict)  # running candidates now vetoed


def _candidate(uow: UnitOfWork, project: Project, name: str) -> Candidate:
    found = uow.releases.get_candidate(project, name)
    if found is None:
        raise NotFoundError(f"candidate {name} of {project.name} not found")
    return found


def _spec(candidate: Candidate, environment: str) -> EnvironmentSpec:
    """Environments come from the candidate's own shipyard.yaml: config is part of the release
    (the gates then read approval rules, freezes and protection live: ``live_rules``)."""
    specs = environment_specs(candidate.config_text)
    rules = environment_named([s.rules for s in specs], environment)
    return next(s for s in specs if s.rules.name == rules.name)


def _succeeded_in(history: Sequence[Deployment], candidate: str) -> frozenset[str]:
    return frozenset(
        d.environment
        for d in history
        if d.candidate == candidate and d.state is DeploymentState.SUCCEEDED
    )


def _current(history: Sequence[Deployment], environment: str) -> Deployment | None:
    """The deployment whose candidate serves the environment now (history newest first)."""
    for d in history:
        if d.environment == environment and d.state is DeploymentState.SUCCEEDED:
            return d
    return None


def _barred(
    svc: Services,
    uow: UnitOfWork,
    project: Project,
    candidate: Candidate,
    env: EnvironmentRules,
    requested_by: str,
) -> dict[str, str]:
    """Who may not approve: who asked for the deployment, who cut or picked the candidate and the
    authors it brings in. The requester is barred whatever their roles (an admin included)."""
    release = uow.releases.get_release_by_id(candidate.release_id)
    pickers = [
        c.created_by
        for c in uow.releases.candidates(release)
        if c.picks and c.number <= candidate.number
    ]
    authors: set[str] = set()
    rule = env.approval
    if rule is not None and not rule.allow_authors:
        current = _current(uow.deployments.history(project, env.name), env.name)
        since = _candidate(uow, project, current.candidate).sha if current else None
        authors = author_users(uow, svc.git(project.source).authors(candidate.sha, since))
    return barred_users(
        candidate.name,
        cut_by=release.created_by,
        picked_by=pickers,
        authors=sorted(authors),
        requested_by=requested_by,
    )


def _gates(
    svc: Services,
    uow: UnitOfWork,
    project: Project,
    d: Deployment,
    candidate: Candidate,
    now: datetime,
) -> GateVerdict:
    rules = live_rules(svc, uow, project, _spec(candidate, d.environment).rules, now)
    history = uow.deployments.history(project)
    ctx = GateContext(
        candidate=d.candidate,
        requested_by=d.requested_by,
        mode=d.mode,
        succeeded_in=_succeeded_in(history, d.candidate),
        approvals=tuple(uow.deployments.approvals(d.id)) if d.id else (),
        barred=(
            _barred(svc, uow, project, candidate, rules, d.requested_by) if rules.approval else {}
        ),
        override=d.override_freeze,
    )
    return evaluate_gates(rules, ctx, now)


def _advance(
    svc: Services,
    uow: UnitOfWork,
    project: Project,
    d: Deployment,
    verdict: GateVerdict,
    actor: str,
    now: datetime,
) -> Deployment:
    """Apply the gate verdict to a waiting deployment; queue it when it may start."""
    nxt = apply_gates(
        d,
        verdict,
        uow.deployments.history(project, d.environment),
        uow.deployments.vetoed(project),
        now,
        actor=actor,
    )
    if nxt == d:
        return d
    uow.deployments.save(nxt)
    if nxt.state is DeploymentState.RUNNING:
        uow.jobs.enqueue(kind=DEPLOY_JOB, subject_id=nxt.id, now=now)
    if nxt.state is not d.state:
        uow.events.append(
            actor=actor,
            kind=f"deployment.{nxt.state.value}",
            subject=f"deployment {nxt.id}",
            project=project.name,
            now=now,
            payload=_payload(nxt) | {"gates": list(verdict.reasons), "notes": list(verdict.notes)},
        )
    return nxt


def _payload(d: Deployment) -> dict[str, object]:
    return {
        "deployment": d.id,
        "environment": d.environment,
        "candidate": d.candidate,
        "mode": d.mode.value,
        "from": d.from_candidate,
        "state": d.state.value,
        "waiting_for": list(d.waiting_for),
        "outcome": d.outcome,
        "policy": d.policy,
    }


def _check_policy(
    uow: UnitOfWork, project: Project, candidate: Candidate, environment: str, policy: str | None
) -> None:
    spec = rollout_policy(candidate.config_text, environment, policy)
    if spec is not None and spec.flag_routed:
        assert spec.flag is not None
        routed_flag(uow, project, environment, spec.flag)


def _request(
    svc: Services,
    uow: UnitOfWork,
    project: Project,
    candidate: Candidate,
    environment: str,
    *,
    requested_by: str,
    mode: DeploymentMode,
    reason: str = "",
    override: FreezeOverride | None = None,
    policy: str | None = None,
    now: datetime,
) -> Deployment:
    """Create a deployment and evaluate its gates at once; CLOSED gates refuse it (nothing stored)."""
    uow.deployments.lock_environments(project)  # parallel requests: one deployment, not seven
    vetoed = uow.deployments.vetoed(project)
    dm.check_deployable(candidate.status, candidate.name in vetoed, candidate=candidate.name)
    _spec(candidate, environment)  # an unknown environment is refused with the known ones
    if policy is not None or mode is not DeploymentMode.ROLLBACK:
        # an unknown policy, one the environment cannot run, or a missing flag is refused
        _check_policy(uow, project, candidate, environment, policy)
    history = uow.deployments.history(project)
    dm.check_can_request(project.name, environment, candidate.name, history)
    current = _current(history, environment)
    if mode is DeploymentMode.DEPLOY and _succeeded_in(history, candidate.name):
        mode = DeploymentMode.PROMOTE
    draft = dm.request_deployment(
        id=0,
        project=project.name,
        environment=environment,
        candidate=candidate.name,
        requested_by=requested_by,
        now=now,
        mode=mode,
        from_candidate=current.candidate if current else None,
        reason=reason,
        override_freeze=override,
        policy=policy,
    )
    verdict = _gates(svc, uow, project, draft, candidate, now)
    verdict.raise_if_closed(environment)
    d = uow.deployments.add(project, candidate.id, draft)
    uow.events.append(
        actor=requested_by,
        kind="deployment.requested",
        subject=f"deployment {d.id}",
        project=project.name,
        now=now,
        payload=_payload(d) | {"reason": reason, "override_freeze": bool(override)},
    )
    return _advance(svc, uow, project, d, verdict, requested_by, now)


def deploy(
    svc: Services,
    actor: Actor,
    project_name: str,
    candidate_name: str,
    environment: str,
    *,
    override_freeze: bool = False,
    reason: str = "",
    policy: str | None = None,
) -> Deployment:
    """Ask for a deployment; it starts at once, waits for approval, or is refused with why.

    ``policy`` picks a release policy of the candidate's shipyard.yaml instead of the
    environment's (a ``hotfix`` policy with shorter steps, say)."""
    actor.require(Action.DEPLOY, project=project_name, environment=environment)
    override = FreezeOverride(reason=reason, requested_by=actor.user) if override_freeze else None
    with svc.uow() as uow:
        project = get_project(uow, project_name)
        candidate = _candidate(uow, project, candidate_name)
        d = _request(
            svc,
            uow,
            project,
            candidate,
            environment,
            requested_by=actor.user,
            mode=DeploymentMode.DEPLOY,
            reason=reason,
            override=override,
            policy=policy,
            now=svc.clock.now(),
        )
        uow.commit()
    return d


def decide(
    svc: Services, actor: Actor, deployment_id: int, *, approve: bool, comment: str = ""
) -> Deployment:
    """Record an approval or a rejection; the deployment starts by itself once the rule is met.

    An approver's approval also confirms a pending freeze override (the second person)."""
    actor.require(Action.APPROVE)
    with svc.uow() as uow:
        d = uow.deployments.lock(deployment_id)
        actor.require(Action.APPROVE, project=d.project, environment=d.environment)
        project = get_project(uow, d.project)
        candidate = _candidate(uow, project, d.candidate)
        if d.state not in (DeploymentState.PENDING, DeploymentState.AWAITING_APPROVAL):
            raise RefusedError(
                f"deployment {d.id} is {d.state.value}; only a waiting deployment takes decisions",
                code=ErrorCode.INVALID_TRANSITION,
            )
        now = svc.clock.now()
        rules = live_rules(svc, uow, project, _spec(candidate, d.environment).rules, now)
        roles = frozenset({actor.role.value})
        if approve and d.override_freeze is not None and not d.override_freeze.confirmed:
            d = dm.transition(d, dm.OverrideConfirmed(by=actor.user, roles=roles), now)
            uow.deployments.save(d)
        if rules.approval is not None:
            check_can_approve(
                rules.approval,
                user=actor.user,
                roles=roles,
                barred_users=_barred(svc, uow, project, candidate, rules, d.requested_by),
                candidate=d.candidate,
                environment=d.environment,
                decision=Decision.APPROVE if approve else Decision.REJECT,
            )
            uow.deployments.add_approval(
                d.id,
                Approval(
                    user=actor.user,
                    roles=roles,
                    decided_at=now,
                    candidate=d.candidate,
                    decision=Decision.APPROVE if approve else Decision.REJECT,
                    comment=comment,
                ),
            )
        elif not approve:
            d = dm.transition(d, dm.Rejected(by=actor.user, comment=comment), now)
            uow.deployments.save(d)
        uow.events.append(
            actor=actor.user,
            kind="deployment.approved" if approve else "deployment.rejected",
            subject=f"deployment {d.id}",
            project=project.name,
            now=now,
            payload=_payload(d) | {"comment": comment},
        )
        if d.active:
            d = _advance(
                svc, uow, project, d, _gates(svc, uow, project, d, candidate, now), actor.user, now
            )
        uow.commit()
    return d


def _cancel(
    uow: UnitOfWork, project: Project, d: Deployment, *, by: str, reason: str, now: datetime
) -> None:
    """Cancel a waiting deployment, or stop a running one.

    A running deployment whose rollout still steers traffic is not canceled under it: its
    rollout aborts in this transaction, and the rollout's ending ends the deployment. Until
    then the environment stays busy, so what comes next (the rollback itself) waits for the
    traffic to be back on stable instead of racing the abort for the router."""
    if d.state is DeploymentState.RUNNING and abort_rollout_of(
        uow, d, by=by, reason=reason, now=now
    ):
        return
    canceled = dm.transition(d, dm.Canceled(by=by, reason=reason), now)
    uow.deployments.save(canceled)
    held = uow.rollouts.for_deployment(d.id) if d.started_at is not None else None
    if held is not None and held.active:  # due now: the engine aborts it (even when paused)
        uow.rollouts.save(replace(held, due_at=now), now)
    uow.events.append(
        actor=by,
        kind="deployment.canceled",
        subject=f"deployment {d.id}",
        project=project.name,
        now=now,
        payload=_payload(canceled),
    )


def rollback(
    svc: Services,
    actor: Actor,
    project_name: str,
    environment: str,
    *,
    reason: str = "",
    to: str | None = None,
) -> Deployment:
    """Redeploy the previous good candidate (or ``to``, a named one that succeeded there before);
    cancels what is in flight first. Never rebuilds."""
    actor.require(Action.DEPLOY, project=project_name, environment=environment)
    with svc.uow() as uow:
        project = get_project(uow, project_name)
        history = uow.deployments.history(project, environment)
        if to is not None:
            plan: dm.RollbackPlan | None = _named_rollback(uow, project, environment, history, to)
        else:
            plan = dm.plan_rollback(history, uow.deployments.vetoed(project))
        if plan is None:
            raise RefusedError(
                f"nothing to roll back to in {environment}: no earlier candidate succeeded there",
                code=ErrorCode.GATE_CLOSED,
            )
        now = svc.clock.now()
        for live in dm.to_cancel_before_rollback(history):
            _cancel(uow, project, live, by=actor.user, reason="rollback", now=now)
        candidate = _candidate(uow, project, plan.candidate)
        d = _request(
            svc,
            uow,
            project,
            candidate,
            environment,
            requested_by=actor.user,
            mode=DeploymentMode.ROLLBACK,
            reason=reason or plan.because,
            now=now,
        )
        uow.commit()
    return d


def _named_rollback(
    uow: UnitOfWork, project: Project, environment: str, history: Sequence[Deployment], name: str
) -> dm.RollbackPlan:
    """``rollback --to NAME``: only a known, unvetoed candidate that succeeded there before."""
    candidate = _candidate(uow, project, name)  # NotFoundError names the unknown one
    if candidate.veto is not None or name in uow.deployments.vetoed(project):
        veto = candidate.veto
        why = f" by {veto.by}" + (f": {veto.reason}" if veto.reason else "") if veto else ""
        raise RefusedError(
            f"cannot roll {environment} back to {name}: it is vetoed{why}",
            code=ErrorCode.VETOED,
            hint="vetoed candidates are never rolled back to; name another with --to",
        )
    good = sorted(_succeeded_before(history, environment))
    if name not in good:
        raise RefusedError(
            f"cannot roll {environment} back to {name}: it never succeeded there"
            + (f" (candidates that did: {', '.join(good)})" if good else ""),
            code=ErrorCode.GATE_CLOSED,
            hint="rollback only redeploys a candidate that already ran in the environment",
        )
    current = _current(history, environment)
    return dm.RollbackPlan(
        candidate=name,
        replaces=current.candidate if current else "",
        because=f"rollback to {name}, as asked",
    )


def _succeeded_before(history: Sequence[Deployment], environment: str) -> set[str]:
    """Candidates that succeeded in the environment, rolled back since or not."""
    done = (DeploymentState.SUCCEEDED, DeploymentState.ROLLED_BACK)
    return {d.candidate for d in history if d.environment == environment and d.state in done}


def veto(
    svc: Services, actor: Actor, project_name: str, candidate_name: str, *, reason: str = ""
) -> None:
    """Mark a candidate bad: never deployed, promoted or rolled back to again."""
    actor.require(Action.DEPLOY, project=project_name)
    with svc.uow() as uow:
        project = get_project(uow, project_name)
        candidate = _candidate(uow, project, candidate_name)
        now = svc.clock.now()
        if not uow.deployments.veto(project, candidate.name, by=actor.user, reason=reason, now=now):
            raise RefusedError(f"{candidate.name} is already vetoed", code=ErrorCode.VETOED)
        for live in uow.deployments.history(project):
            waiting = live.active and live.state is not DeploymentState.RUNNING
            if waiting and live.candidate == candidate.name:
                _cancel(uow, project, live, by=actor.user, reason="vetoed", now=now)
        uow.events.append(
            actor=actor.user,
            kind="candidate.vetoed",
            subject=candidate.name,
            project=project.name,
            now=now,
            payload={"candidate": candidate.name, "reason": reason},
        )
        uow.commit()


def promote_new_candidate(
    svc: Services, uow: UnitOfWork, project: Project, candidate: Candidate, now: datetime
) -> list[Deployment]:
    """Single-step delivery: a freshly built candidate goes to the first environment(s) at once.

    Called inside the transaction that marks the candidate built, so it happens exactly once."""
    specs = environment_specs(candidate.config_text)
    history = uow.deployments.history(project)
    targets = auto_promotions(
        [s.rules for s in specs],
        None,
        candidate.name,
        deployments=history,
        vetoed=uow.deployments.vetoed(project),
    )
    return _auto_requests(svc, uow, project, candidate, targets, "built", now)


def _auto_requests(
    svc: Services,
    uow: UnitOfWork,
    project: Project,
    candidate: Candidate,
    environments: Sequence[str],
    trigger: str,
    now: datetime,
) -> list[Deployment]:
    made = []
    for env in environments:
        try:
            made.append(
                _request(
                    svc,
                    uow,
                    project,
                    candidate,
                    env,
                    requested_by=AUTO,
                    mode=DeploymentMode.PROMOTE,
                    reason=f"auto-promote: {candidate.name} {trigger}",
                    now=now,
                )
            )
        except ShipyardError as exc:  # a closed gate is an outcome to record, not a crash
            uow.events.append(
                actor=AUTO,
                kind="promotion.blocked",
                subject=candidate.name,
                project=project.name,
                now=now,
                payload={"candidate": candidate.name, "environment": env, "reason": exc.message},
            )
    return made


def deploy_spec_for(
    svc: Services, uow: UnitOfWork, d: Deployment
) -> tuple[EnvironmentSpec, DeploySpec, Candidate]:
    """The environment and what the target is told, for a deployment (one definition of both)."""
    project = get_project(uow, d.project)
    candidate = _candidate(uow, project, d.candidate)
    spec = _spec(candidate, d.environment)
    release = uow.releases.get_release_by_id(candidate.release_id)
    files = tuple(
        ArtifactFile(a.name, a.digest, svc.artifacts.path(a.digest)) for a in candidate.artifacts
    )
    return (
        spec,
        DeploySpec(
            project=project.name,
            environment=d.environment,
            candidate=candidate.name,
            version=release.version,
            sha=candidate.sha,
            mode=d.mode,
            from_candidate=d.from_candidate,
            artifacts=files,
            settings=spec.target_settings,
            state_dir=svc.state_dir / project.name / d.environment,
            # what its processes are handed: `env:` (live secrets win) and nothing of the server
            env=dict(spec.env)
            | environment_secrets(svc, uow, project.id, project.name, d.environment),
            run_as=spec.run_as,
            work_dir=svc.work_dir / project.name / d.environment,
        ),
        candidate,
    )


@dataclass(frozen=True)
class _Prepared:
    deploy_spec: DeploySpec
    env: EnvironmentSpec
    policy: PolicySpec | None
    stable: StablePlan | None = None  # a canary's stable, to start on the target if absent
    plan: str = ""  # "plan: ..." lines decided while preparing, for the log


def _prepare(svc: Services, uow: UnitOfWork, d: Deployment) -> _Prepared:
    env, deploy_spec, candidate = deploy_spec_for(svc, uow, d)
    if env.router_kind is not None:  # a router that cannot run here fails the deployment now
        svc.routers(env.router_kind)
    policy = None
    if d.mode is not DeploymentMode.ROLLBACK:  # a rollback restores at once, no policy
        policy = rollout_policy(candidate.config_text, d.environment, d.policy)
    if policy is not None and policy.flag is not None and policy.flag_routed:
        routed_flag(uow, get_project(uow, d.project), d.environment, policy.flag)  # still there?
    stable, plan = None, ""
    if policy is not None and not policy.flag_routed:
        stable = stable_plan(svc, uow, get_project(uow, d.project), d, deploy_spec)
    if d.mode is DeploymentMode.ROLLBACK:
        env, deploy_spec, plan = rollback_where(
            uow, get_project(uow, d.project), d, env, deploy_spec
        )
    return _Prepared(deploy_spec, env, policy, stable, plan)


def _execute(svc: Services, d: Deployment, p: _Prepared) -> tuple[str, bool]:
    """Start the candidate beside the old; without a policy, switch traffic and stop the old.

    Returns the log and whether a rollout takes over. A canary whose stable does not run on the
    target (its kind changed) starts the stable there first, or deploys directly (switchover)."""
    target = svc.targets(p.env.target_kind)
    log, policy = p.plan, p.policy
    if p.stable is not None:
        said, direct = ensure_stable(svc, target, p.env, p.deploy_spec, p.stable)
        log += said
        policy = None if direct else policy
    log += target.deploy(p.deploy_spec).log
    if policy is not None and not policy.flag_routed:
        return log, True  # the rollout moves traffic and retires the loser
    if policy is not None:  # the new code ships dark: the rollout moves its flag
        log += f"the rollout moves flag {policy.flag}; the new version takes over now\n"
    if p.env.router_kind is not None:
        apply_route(svc, p.env, p.deploy_spec, RouteIntent(stable=d.candidate))
        log += f"traffic: 100% to {d.candidate} through {p.env.router_kind}\n"
    if d.from_candidate and d.from_candidate != d.candidate:
        drain(svc, p.env)
        target.retire(p.deploy_spec, d.from_candidate)
    if d.mode is DeploymentMode.ROLLBACK:  # read the target back: never a false success
        log += make_sole(svc, target, p.env, p.deploy_spec)
    return log, policy is not None


def run_deployment(svc: Services, job_id: int, deployment_id: int, owner: str) -> Deployment:
    """Execute one running deployment through its target, then record the outcome with the job.

    With a release policy the deployment stays running: a rollout takes over, started in the same
    transaction that completes the job, and it records the outcome when it is decided.
    """
    with svc.uow() as uow:
        d = uow.deployments.get(deployment_id)
        prepared: _Prepared | None = None
        failure = ""
        code = ""
        if d.state is DeploymentState.RUNNING:
            try:
                prepared = _prepare(svc, uow, d)
            except ShipyardError as exc:
                failure, code = exc.message, exc.code.value
    log, rollout = "", False
    if prepared is not None:
        try:
            log, rollout = _execute(svc, d, prepared)
        except ShipyardError as exc:
            failure, code = exc.message, exc.code.value
    with svc.uow() as uow:
        now = svc.clock.now()
        d = uow.deployments.lock(deployment_id)
        uow.jobs.complete(job_id, owner=owner, now=now)
        if d.state is not DeploymentState.RUNNING:  # canceled meanwhile: nothing to record
            uow.commit()
            return d
        if not failure and prepared is not None and prepared.policy is not None and rollout:
            if uow.rollouts.for_deployment(d.id) is None:
                uow.deployments.append_log(d.id, log)
                begin(uow, get_project(uow, d.project), d, prepared.policy, now)
            uow.commit()
            return d
        done = complete_deployment(
            svc, uow, deployment_id, failure=failure or None, log=log, now=now, code=code
        )
        uow.commit()
    return done


def complete_deployment(
    svc: Services,
    uow: UnitOfWork,
    deployment_id: int,
    *,
    failure: str | None,
    log: str,
    now: datetime,
    code: str = "",
) -> Deployment:
    """Record a running deployment's outcome, and what follows a success (in the caller's
    transaction): the replaced deployment of a rollback, the automatic promotions. ``code`` is
    the failure's ``ErrorCode`` value, kept so clients can tell why it failed."""
    d = uow.deployments.lock(deployment_id)
    if d.state is not DeploymentState.RUNNING:
        return d
    project = get_project(uow, d.project)
    before = _current(uow.deployments.history(project, d.environment), d.environment)
    done = dm.transition(d, dm.Failed(failure, code) if failure else dm.Succeeded(), now)
    uow.deployments.save(done)
    uow.deployments.append_log(done.id, log)
    uow.events.append(
        actor=AUTO,
        kind=f"deployment.{done.state.value}",
        subject=f"deployment {done.id}",
        project=project.name,
        now=now,
        payload=_payload(done),
    )
    if done.state is DeploymentState.SUCCEEDED:
        take_over_warm_colour(uow, project, done, now)  # a rollback to the kept blue-green colour
        replaced = before if before is not None and before.candidate != done.candidate else None
        if done.mode is DeploymentMode.ROLLBACK and replaced is not None:
            uow.deployments.save(dm.transition(replaced, dm.RolledBack(by_deployment=done.id), now))
        candidate = _candidate(uow, project, done.candidate)
        specs = environment_specs(candidate.config_text)
        history = uow.deployments.history(project)
        nxt = auto_promotions_after(
            [s.rules for s in specs],
            done,
            succeeded_in=_succeeded_in(history, done.candidate),
            deployments=history,
            vetoed=uow.deployments.vetoed(project),
        )
        _auto_requests(svc, uow, project, candidate, nxt, f"succeeded in {done.environment}", now)
    return done


def reevaluate_waiting(svc: Services) -> int:
    """Let waiting deployments start when time opened their gates (a freeze ended); returns how many moved."""
    moved = 0
    with svc.uow() as uow:
        waiting = [d for d in uow.deployments.active() if d.state is not DeploymentState.RUNNING]
    for d in waiting:
        with svc.uow() as uow:
            d = uow.deployments.lock(d.id)
            if d.state is DeploymentState.RUNNING or not d.active:
                continue
            project = get_project(uow, d.project)
            candidate = _candidate(uow, project, d.candidate)
            now = svc.clock.now()
            nxt = _advance(
                svc, uow, project, d, _gates(svc, uow, project, d, candidate, now), AUTO, now
            )
            if nxt.state is not d.state:
                moved += 1
            uow.commit()
    return moved


def get_deployment(svc: Services, actor: Actor, deployment_id: int) -> tuple[Deployment, str]:
    actor.require(Action.READ)
    with svc.uow() as uow:
        return uow.deployments.get(deployment_id), uow.deployments.log(deployment_id)


def history(
    svc: Services, actor: Actor, project_name: str, environment: str | None
) -> Sequence[Deployment]:
    actor.require(Action.READ)
    with svc.uow() as uow:
        return uow.deployments.history(get_project(uow, project_name), environment)


def status(svc: Services, actor: Actor, project_name: str) -> tuple[list[str], list[Placement]]:
    """The environment matrix: what runs where since when, and what is pending there."""
    actor.require(Action.READ)
    now = svc.clock.now()
    with svc.uow() as uow:
        project = get_project(uow, project_name)
        history_all = uow.deployments.history(project)
        specs = environment_specs(_latest_config(uow, project))
        mainline = mainline_rules(svc, project)
        live = {s.rules.name: live_rules(svc, uow, project, s.rules, now, mainline) for s in specs}
    rows = []
    for spec in specs:
        name = spec.rules.name
        current = _current(history_all, name)
        pending = [d for d in history_all if d.environment == name and d.active]
        freezes = live[name].freezes
        freeze = freezes and active_freeze(freezes, now)
        until = next_unfrozen(freezes, now) if freeze else None
        instances = _instances(svc, spec, project.name)
        reading = read(current.candidate if current else None, instances, _configured(svc, spec))
        rows.append(
            Placement(
                environment=name,
                candidate=reading.candidate,
                since=current.finished_at if current else None,
                by=current.requested_by if current else None,
                pending=pending,
                frozen_until=(until.isoformat() if until else "indefinitely") if freeze else None,
                instances=instances,
                routing=observe_route(svc, project.name, spec)[0],
                reading=reading,
                vetoed=_vetoes(svc, project_name, {i.candidate for i in instances}),
            )
        )
    return [s.rules.name for s in specs], rows


def resume_supervision(svc: Services) -> int:
    """At server start, ask each environment's target what runs there: a target adopts (and
    supervises, never reaps) the instances an earlier server started. Returns how many run."""
    with svc.uow() as uow:
        configs = [(p.name, _latest_config(uow, p)) for p in uow.projects.list()]
    found = 0
    for project, config in configs:
        for spec in environment_specs(config):
            found += len(_instances(svc, spec, project))
    return found


def _configured(svc: Services, spec: EnvironmentSpec) -> int | None:
    try:
        return svc.targets(spec.target_kind).configured(spec.target_settings)
    except ShipyardError:
        return None


def _vetoes(svc: Services, project_name: str, running: set[str]) -> dict[str, Veto]:
    """Which of the candidates running there are vetoed, with who, when and why."""
    if not running:
        return {}
    with svc.uow() as uow:
        project = get_project(uow, project_name)
        found = (uow.releases.get_candidate(project, name) for name in sorted(running))
        return {c.name: c.veto for c in found if c is not None and c.veto is not None}


def _instances(svc: Services, spec: EnvironmentSpec, project: str) -> Sequence[Instance]:
    """What the target reports running there now; a target that cannot tell reports nothing."""
    name = spec.rules.name
    try:
        return svc.targets(spec.target_kind).running(project, name, svc.state_dir / project / name)
    except ShipyardError:
        return ()


def _latest_config(uow: UnitOfWork, project: Project) -> str:
    """The newest candidate's shipyard.yaml names the environments the project has now."""
    for release in uow.releases.list_releases(project):
        cands = uow.releases.candidates(release)
        if cands:
            return cands[-1].config_text
    return ""


def diff(
    svc: Services, actor: Actor, project_name: str, environment: str, candidate_name: str
) -> tuple[str | None, list[Commit]]:
    """What promoting the candidate would bring into the environment, from what runs there now.

    Patch-id aware: a fix already running there as a cherry-pick is not listed again."""
    actor.require(Action.READ)
    with svc.uow() as uow:
        project = get_project(uow, project_name)
        target = _candidate(uow, project, candidate_name)
        current = _current(uow.deployments.history(project, environment), environment)
        running = _candidate(uow, project, current.candidate) if current else None
    git = svc.git(project.source)
    if running is None:
        return None, git.log(target.sha)[:2000]
    fresh = set(git.missing_changes(upstream=running.sha, head=target.sha, base=running.sha))
    return running.name, [c for c in git.log(target.sha, running.sha) if c.sha in fresh]
