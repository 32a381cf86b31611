"""Property tests: random sequences of requests, decisions, outcomes, rollbacks, vetoes, re-delivered
events and clock ticks, driven through the domain rules the way the services use them, never produce

- two deployments running at once in one environment,
- two live deployments of one candidate into one environment, or a promotion made twice,
- a deployment of a vetoed candidate,
- an approval counted twice (or a start without enough distinct, eligible, unbarred approvers),
- a terminal deployment that changes (except succeeded → rolled_back).

A second test drives the bare state machine with random events and checks it against the table.
"""

from __future__ import annotations

from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import event as event_note
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from shipyard.domain.approvals import (
    Approval,
    ApprovalRule,
    Decision,
    barred_users,
    check_can_approve,
)
from shipyard.domain.deployments import (
    ACTIVE,
    TERMINAL,
    Approved,
    Canceled,
    Deployment,
    DeploymentEvent,
    DeploymentMode,
    DeploymentState,
    Failed,
    FreezeOverride,
    GatesOpened,
    NeedsApproval,
    OverrideConfirmed,
    Rejected,
    RolledBack,
    Started,
    Succeeded,
    check_can_request,
    check_deployable,
    plan_rollback,
    request_deployment,
    to_cancel_before_rollback,
    transition,
)
from shipyard.domain.environments import EnvironmentRules, Requires, environment_named
from shipyard.domain.freezes import OneOffFreeze
from shipyard.domain.gates import (
    GateContext,
    GateVerdict,
    apply_gates,
    auto_promotions_after,
    evaluate_gates,
)
from shipyard.domain.releases import CandidateStatus
from shipyard.errors import ShipyardError

T0 = datetime(2026, 3, 27, 9, 0, tzinfo=UTC)
PROJECT = "shop"
RULE = ApprovalRule(
    required=2, approvers=("role:approver", "carol"), expires_after=timedelta(hours=3)
)
ENVS = [
    EnvironmentRules("sandbox", 0, auto_promote=True),
    EnvironmentRules("staging", 1, requires=Requires(("sandbox",)), auto_promote=True),
    EnvironmentRules(
        "production",
        2,
        requires=Requires(("staging",)),
        approval=RULE,
        freezes=(OneOffFreeze(T0 + timedelta(hours=2), T0 + timedelta(hours=4), reason="launch"),),
        auto_promote=True,
    ),
]
ENV_NAMES = [e.name for e in ENVS]
CUT_BY = {"rc1": "ada", "rc2": "bob", "rc3": "ada", "rc4": "dan"}
AUTHORS = {"rc1": ("eve",), "rc2": ("carol",), "rc3": ("bob", "eve"), "rc4": ()}
CANDIDATES = list(CUT_BY)
ROLES = {
    "ada": frozenset({"deployer"}),
    "bob": frozenset({"approver"}),
    "carol": frozenset({"viewer"}),  # approver by name
    "dan": frozenset({"approver"}),
    "fay": frozenset({"approver"}),
    "eve": frozenset({"admin"}),
}
USERS = list(ROLES)


@dataclass
class World:
    """A minimal in-memory 'service layer' that uses the domain rules exactly as the services should."""

    now: datetime = T0
    deployments: dict[int, Deployment] = field(default_factory=dict)
    approvals: dict[str, list[Approval]] = field(default_factory=dict)
    vetoed: set[str] = field(default_factory=set)
    starts: list[tuple[Deployment, frozenset[str], frozenset[str]]] = field(default_factory=list)
    promotions: Counter[tuple[int, str]] = field(default_factory=Counter)

    # ---- helpers -----------------------------------------------------------------------------
    def env(self, name: str) -> EnvironmentRules:
        return environment_named(ENVS, name)

    def succeeded_in(self, candidate: str) -> frozenset[str]:
        return frozenset(
            d.environment
            for d in self.deployments.values()
            if d.candidate == candidate
            and d.state in (DeploymentState.SUCCEEDED, DeploymentState.ROLLED_BACK)
        )

    def barred(self, candidate: str) -> dict[str, str]:
        return barred_users(candidate, cut_by=CUT_BY[candidate], authors=AUTHORS[candidate])

    def context(self, d: Deployment) -> GateContext:
        return GateContext.for_deployment(
            d,
            succeeded_in=self.succeeded_in(d.candidate),
            approvals=self.approvals.get(d.environment, ()),
            barred=self.barred(d.candidate),
        )

    def history(self, env: str) -> list[Deployment]:
        return sorted(
            (d for d in self.deployments.values() if d.environment == env), key=lambda d: -d.id
        )

    def save(self, d: Deployment) -> Deployment:
        self.deployments[d.id] = d
        return d

    # ---- use cases ---------------------------------------------------------------------------
    def request(
        self,
        candidate: str,
        env: str,
        user: str,
        *,
        mode: DeploymentMode = DeploymentMode.DEPLOY,
        override: FreezeOverride | None = None,
        from_candidate: str | None = None,
    ) -> Deployment:
        check_deployable(CandidateStatus.BUILT, candidate in self.vetoed, candidate=candidate)
        check_can_request(PROJECT, env, candidate, self.deployments.values())
        d = request_deployment(
            id=len(self.deployments) + 1,
            project=PROJECT,
            environment=env,
            candidate=candidate,
            requested_by=user,
            now=self.now,
            mode=mode,
            from_candidate=from_candidate,
            override_freeze=override,
        )
        verdict = evaluate_gates(self.env(env), self.context(d), self.now)
        verdict.raise_if_closed(env)  # refused: nothing stored
        self.save(d)
        return self.advance(d, verdict)

    def advance(self, d: Deployment, verdict: GateVerdict) -> Deployment:
        """Apply a gate verdict the way the services do, through apply_gates."""
        nxt = self.save(apply_gates(d, verdict, self.deployments.values(), self.vetoed, self.now))
        if nxt.state is DeploymentState.RUNNING and d.state is not DeploymentState.RUNNING:
            counted = frozenset(verdict.approvals.approved_by) if verdict.approvals else frozenset()
            self.starts.append((nxt, frozenset(self.vetoed), counted))
            event_note(f"start {d.environment} {d.mode.value}")
        elif nxt.state is d.state and nxt.waiting_for and "busy" in nxt.waiting_for[0]:
            event_note("waits for a busy environment")
        return nxt

    def reevaluate(self) -> None:
        for d in sorted(self.deployments.values(), key=lambda d: d.id):
            if d.state in (DeploymentState.PENDING, DeploymentState.AWAITING_APPROVAL):
                self.advance(d, evaluate_gates(self.env(d.environment), self.context(d), self.now))

    def decide(self, d: Deployment, user: str, decision: Decision) -> None:
        if d.state is not DeploymentState.AWAITING_APPROVAL:
            return
        check_can_approve(
            RULE,
            user=user,
            roles=ROLES[user],
            candidate=d.candidate,
            environment=d.environment,
            barred_users=self.barred(d.candidate),
            decision=decision,
        )
        self.approvals.setdefault(d.environment, []).append(
            Approval(user, ROLES[user], self.now, d.candidate, decision)
        )
        self.advance(d, evaluate_gates(self.env(d.environment), self.context(d), self.now))

    def confirm(self, d: Deployment, user: str) -> None:
        self.save(transition(d, OverrideConfirmed(user, ROLES[user]), self.now))
        self.reevaluate()

    def finish(self, d: Deployment, ok: bool) -> None:
        done = self.save(transition(d, Succeeded() if ok else Failed("health"), self.now))
        if ok and done.mode is DeploymentMode.ROLLBACK:
            for old in self.history(done.environment):
                if old.state is DeploymentState.SUCCEEDED and old.candidate == done.from_candidate:
                    self.save(transition(old, RolledBack(done.id), self.now))
        if ok:
            self.promote_after(done)
        self.reevaluate()

    def promote_after(self, done: Deployment) -> None:
        """The success event handler; may be delivered more than once."""
        targets = auto_promotions_after(
            ENVS,
            done,
            succeeded_in=self.succeeded_in(done.candidate),
            deployments=self.deployments.values(),
            vetoed=self.vetoed,
        )
        for env in targets:
            try:
                self.request(done.candidate, env, "shipyard", mode=DeploymentMode.PROMOTE)
            except ShipyardError:
                continue  # refused (frozen, ...): no promotion
            self.promotions[(done.id, env)] += 1
            event_note(f"promoted to {env}")

    def rollback(self, env: str, user: str) -> None:
        for live in to_cancel_before_rollback(self.history(env)):
            self.save(transition(live, Canceled(user, "rollback"), self.now))
        plan = plan_rollback(self.history(env), self.vetoed)
        if plan is not None:
            assert plan.candidate not in self.vetoed
            self.request(
                plan.candidate,
                env,
                user,
                mode=DeploymentMode.ROLLBACK,
                from_candidate=plan.replaces,
            )


def pick(world: World, index: int, *states: DeploymentState) -> Deployment | None:
    """A deployment in one of ``states`` (any state when none given), chosen by ``index``."""
    found = [d for _, d in sorted(world.deployments.items()) if not states or d.state in states]
    return found[index % len(found)] if found else None


class Deployments(RuleBasedStateMachine):
    @initialize(seed=st.booleans())
    def setup(self, seed: bool) -> None:
        self.world = World()
        self.seen: dict[int, DeploymentState] = {}
        if seed:  # rc1 live everywhere, rc2 through staging and awaiting approval for production
            w = self.world
            w.request("rc1", "sandbox", "ada")
            for _ in range(2):
                w.finish(pick(w, 0, DeploymentState.RUNNING), ok=True)  # type: ignore[arg-type]
            for user in ("bob", "carol"):
                w.decide(pick(w, 0, DeploymentState.AWAITING_APPROVAL), user, Decision.APPROVE)  # type: ignore[arg-type]
            w.finish(pick(w, 0, DeploymentState.RUNNING), ok=True)  # type: ignore[arg-type]
            w.request("rc2", "sandbox", "ada")
            for _ in range(2):
                w.finish(pick(w, 0, DeploymentState.RUNNING), ok=True)  # type: ignore[arg-type]
            assert [d.state for d in w.history("production")] == [
                DeploymentState.AWAITING_APPROVAL,
                DeploymentState.SUCCEEDED,
            ]

    def attempt(self, action: object, *args: object, **kwargs: object) -> None:
        with suppress(ShipyardError):  # refused by a rule: the world is unchanged by design
            action(*args, **kwargs)  # type: ignore[operator]

    @rule(
        candidate=st.sampled_from(CANDIDATES),
        env=st.sampled_from(ENV_NAMES),
        user=st.sampled_from(USERS),
    )
    def deploy(self, candidate: str, env: str, user: str) -> None:
        self.attempt(self.world.request, candidate, env, user)

    @rule(candidate=st.sampled_from(CANDIDATES), user=st.sampled_from(USERS))
    def deploy_overriding_the_freeze(self, candidate: str, user: str) -> None:
        override = FreezeOverride("hotfix", user)
        self.attempt(self.world.request, candidate, "production", user, override=override)

    @rule(index=st.integers(0, 40), user=st.sampled_from(USERS), decision=st.sampled_from(Decision))
    def decide(self, index: int, user: str, decision: Decision) -> None:
        d = pick(self.world, index, DeploymentState.AWAITING_APPROVAL)
        if d is not None:
            self.attempt(self.world.decide, d, user, decision)

    @rule(index=st.integers(0, 40), user=st.sampled_from(["bob", "carol", "dan", "fay"]))
    def approve(self, index: int, user: str) -> None:
        """Mostly eligible approvers approving: reaches production starts more often."""
        d = pick(self.world, index, DeploymentState.AWAITING_APPROVAL)
        if d is not None:
            self.attempt(self.world.decide, d, user, Decision.APPROVE)

    @rule(index=st.integers(0, 40), user=st.sampled_from(USERS))
    def unchecked_approval(self, index: int, user: str) -> None:
        """An approval recorded without check_can_approve (imported, or under an older rule): the
        gate must still never count it when the user is barred or not eligible."""
        d = pick(self.world, index, DeploymentState.AWAITING_APPROVAL)
        if d is not None:
            approval = Approval(user, ROLES[user], self.world.now, d.candidate, Decision.APPROVE)
            self.world.approvals.setdefault(d.environment, []).append(approval)
            self.world.reevaluate()

    @rule(index=st.integers(0, 40), user=st.sampled_from(USERS))
    def confirm_override(self, index: int, user: str) -> None:
        d = pick(self.world, index, DeploymentState.PENDING, DeploymentState.AWAITING_APPROVAL)
        if d is not None:
            self.attempt(self.world.confirm, d, user)

    @rule(index=st.integers(0, 40), ok=st.sampled_from([True, True, True, False]))
    def finish(self, index: int, ok: bool) -> None:
        d = pick(self.world, index, DeploymentState.RUNNING)
        if d is not None:
            self.attempt(self.world.finish, d, ok)

    @rule(index=st.integers(0, 40))
    def redeliver_success(self, index: int) -> None:
        d = pick(self.world, index, DeploymentState.SUCCEEDED)
        if d is not None and d.state is DeploymentState.SUCCEEDED:
            self.world.promote_after(d)

    @rule()
    def replay_every_success(self) -> None:
        """A restarted worker re-delivers every success event it ever saw."""
        for d in list(self.world.deployments.values()):
            if d.state is DeploymentState.SUCCEEDED:
                self.world.promote_after(d)

    @rule(index=st.integers(0, 40), user=st.sampled_from(USERS))
    def cancel(self, index: int, user: str) -> None:
        d = pick(self.world, index, *ACTIVE)
        if d is not None:
            self.attempt(lambda: self.world.save(transition(d, Canceled(user), self.world.now)))
            self.world.reevaluate()

    @rule(env=st.sampled_from(ENV_NAMES), user=st.sampled_from(USERS))
    def rollback(self, env: str, user: str) -> None:
        self.attempt(self.world.rollback, env, user)
        self.world.reevaluate()

    @rule(candidate=st.sampled_from(CANDIDATES))
    def veto(self, candidate: str) -> None:
        self.world.vetoed.add(candidate)

    @rule(minutes=st.sampled_from([1, 30, 90, 200]))
    def tick(self, minutes: int) -> None:
        self.world.now += timedelta(minutes=minutes)
        self.world.reevaluate()

    # ---- invariants --------------------------------------------------------------------------
    @invariant()
    def one_running_per_environment(self) -> None:
        running = Counter(
            d.environment
            for d in self.world.deployments.values()
            if d.state is DeploymentState.RUNNING
        )
        assert all(n <= 1 for n in running.values()), running

    @invariant()
    def one_live_deployment_per_candidate_and_environment(self) -> None:
        live = Counter(
            (d.candidate, d.environment)
            for d in self.world.deployments.values()
            if d.state in ACTIVE
        )
        assert all(n <= 1 for n in live.values()), live

    @invariant()
    def never_a_double_promotion(self) -> None:
        assert all(n <= 1 for n in self.world.promotions.values()), self.world.promotions
        promoted = Counter(
            (d.candidate, d.environment)
            for d in self.world.deployments.values()
            if d.mode is DeploymentMode.PROMOTE
        )
        assert all(n <= 1 for n in promoted.values()), promoted

    @invariant()
    def never_a_vetoed_candidate_started(self) -> None:
        for started, vetoed_then, _ in self.world.starts:
            assert started.candidate not in vetoed_then

    @invariant()
    def approvals_counted_once_and_enough(self) -> None:
        for started, _, counted in self.world.starts:
            if started.environment != "production" or started.mode is DeploymentMode.ROLLBACK:
                continue
            at = started.started_at
            assert at is not None
            votes: dict[str, Approval] = {}
            for a in self.world.approvals.get("production", []):
                if a.candidate == started.candidate and a.decided_at <= at:
                    votes[a.user] = a  # appended in time order: the last one is the latest
            barred = self.world.barred(started.candidate)
            distinct = {
                user
                for user, a in votes.items()
                if a.decision is Decision.APPROVE
                and RULE.admits(user, a.roles)
                and user not in barred
                and RULE.expires_after is not None
                and at < a.decided_at + RULE.expires_after
            }
            assert counted == distinct
            assert len(distinct) >= RULE.required

    @invariant()
    def terminal_states_only_roll_back(self) -> None:
        for d in self.world.deployments.values():
            before = self.seen.get(d.id)
            if before in TERMINAL and before is not d.state:
                assert (before, d.state) == (DeploymentState.SUCCEEDED, DeploymentState.ROLLED_BACK)
            self.seen[d.id] = d.state


Deployments.TestCase.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
TestDeploymentsNeverDoublePromote = Deployments.TestCase


# ---- the bare state machine --------------------------------------------------------------------

S = DeploymentState
events = st.sampled_from(
    [
        GatesOpened(),
        Started(),
        NeedsApproval(("x",)),
        Approved("bob", True),
        Approved("bob", False),
        Rejected("bob"),
        Succeeded(),
        Failed("boom"),
        Canceled("ada"),
        RolledBack(2),
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(events, st.integers(0, 600)), max_size=25))
def test_random_event_sequences_follow_the_state_machine(
    steps: list[tuple[DeploymentEvent, int]],
) -> None:
    d = request_deployment(
        id=1, project=PROJECT, environment="staging", candidate="rc1", requested_by="ada", now=T0
    )
    now = T0
    visited = [d.state]
    for event, minutes in steps:
        now += timedelta(minutes=minutes)
        try:
            nxt = transition(d, event, now)
        except ShipyardError as err:
            assert err.code == "invalid_transition"
            assert d.state.value in err.message and type(event).__name__ in err.message
            continue
        if d.state in TERMINAL:
            assert (d.state, nxt.state) == (S.SUCCEEDED, S.ROLLED_BACK)
        if nxt.state is S.RUNNING and d.state is not S.RUNNING:
            assert nxt.started_at == now
        if nxt.state in TERMINAL and d.state in ACTIVE:
            assert nxt.finished_at == now
        assert nxt.id == d.id and nxt.candidate == d.candidate and nxt.requested_at == T0
        d = nxt
        visited.append(d.state)
    # running is entered at most once: one request never runs twice
    entries = sum(1 for a, b in pairwise(visited) if b is S.RUNNING and a is not S.RUNNING)
    assert entries <= 1
    if d.started_at is not None and d.finished_at is not None:
        assert d.requested_at <= d.started_at <= d.finished_at
