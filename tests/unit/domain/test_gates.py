"""Gates: requires, freezes with override, approvals, and the continuous-deployment rule."""

from datetime import UTC, datetime, timedelta

import pytest

from shipyard.domain.approvals import Approval, ApprovalRule, Decision, barred_users
from shipyard.domain.deployments import (
    Deployment,
    DeploymentMode,
    DeploymentState,
    Failed,
    FreezeOverride,
    GatesOpened,
    NeedsApproval,
    Rejected,
    request_deployment,
    transition,
)
from shipyard.domain.environments import EnvironmentRules, Requires
from shipyard.domain.freezes import OneOffFreeze, RecurringFreeze
from shipyard.domain.gates import (
    GateContext,
    GateOutcome,
    apply_gates,
    auto_promotions,
    auto_promotions_after,
    evaluate_gates,
    evaluate_requires,
)
from shipyard.errors import ErrorCode, RefusedError

RC = "1.4.0-rc.2"
FRIDAY_EVENING = datetime(
    2026, 3, 27, 19, 0, tzinfo=UTC
)  # 20:00 in Berlin: inside the weekend freeze
TUESDAY = datetime(2026, 3, 31, 10, 0, tzinfo=UTC)
WEEKEND = RecurringFreeze("0 18 * * 5", timedelta(hours=63), "Europe/Berlin", reason="weekend")
APPROVER = frozenset({"approver"})

SANDBOX = EnvironmentRules("sandbox", 0, auto_promote=True)
STAGING = EnvironmentRules("staging", 1, requires=Requires(("sandbox",)), auto_promote=True)
PRODUCTION = EnvironmentRules(
    "production",
    2,
    requires=Requires(("staging",)),
    approval=ApprovalRule(required=2, approvers=("role:approver",)),
    freezes=(WEEKEND,),
)
ENVS = [SANDBOX, STAGING, PRODUCTION]


def ok(user: str, at: datetime = TUESDAY) -> Approval:
    return Approval(user, APPROVER, at - timedelta(minutes=1), RC, Decision.APPROVE)


def ctx(**kw: object) -> GateContext:
    base: dict[str, object] = {
        "candidate": RC,
        "requested_by": "ada",
        "succeeded_in": frozenset({"sandbox", "staging"}),
    }
    return GateContext(**(base | kw))  # type: ignore[arg-type]


# ---- requires ------------------------------------------------------------------------------------


def test_requires_names_what_is_missing() -> None:
    assert evaluate_requires(Requires(), set()).open
    one = evaluate_requires(Requires(("staging",)), {"sandbox"})
    assert one.outcome is GateOutcome.CLOSED and one.code is ErrorCode.GATE_CLOSED
    assert one.reasons == ("requires staging (not yet succeeded there)",)
    assert one.missing_envs == ("staging",)
    both = evaluate_requires(Requires(("qa", "staging")), {"qa"})
    assert both.reasons == ("requires staging (not yet succeeded there)",)
    none = evaluate_requires(Requires(("qa", "staging")), set())
    assert none.reasons == ("requires qa, staging (not yet succeeded in qa, staging)",)
    assert evaluate_requires(Requires(("qa", "staging")), {"qa", "staging"}).open


def test_requires_at_least_n() -> None:
    rule = Requires(("eu", "us", "ap"), at_least=2)
    assert evaluate_requires(rule, {"eu", "ap"}).open
    closed = evaluate_requires(rule, {"eu"})
    assert closed.reasons == ("requires at least 2 of eu, us, ap (succeeded in: eu)",)
    assert closed.missing_envs == ("us", "ap")
    assert evaluate_requires(rule, set()).reasons == (
        "requires at least 2 of eu, us, ap (succeeded in: none)",
    )


# ---- combined ------------------------------------------------------------------------------------


def test_open_when_everything_holds() -> None:
    verdict = evaluate_gates(PRODUCTION, ctx(approvals=(ok("bob"), ok("dan"))), TUESDAY)
    assert verdict.open and verdict.reasons == () and verdict.describe() == "all gates hold"
    assert verdict.event() == GatesOpened()
    verdict.raise_if_closed()


def test_unmet_requires_refuse_the_request() -> None:
    verdict = evaluate_gates(PRODUCTION, ctx(succeeded_in=frozenset({"sandbox"})), TUESDAY)
    assert verdict.outcome is GateOutcome.CLOSED and verdict.event() is None
    with pytest.raises(RefusedError) as err:
        verdict.raise_if_closed("production")
    assert err.value.code is ErrorCode.GATE_CLOSED
    assert err.value.message.startswith(
        "production: requires staging (not yet succeeded there); needs 2 more"
    )
    assert err.value.details["missing_environments"] == ["staging"]


def test_missing_approvals_make_it_wait() -> None:
    verdict = evaluate_gates(PRODUCTION, ctx(approvals=(ok("bob"),)), TUESDAY)
    assert verdict.outcome is GateOutcome.WAIT
    assert verdict.waiting_for == ("needs 1 more approval (1 of 2) from role:approver",)
    assert verdict.event() == NeedsApproval(verdict.waiting_for)
    assert verdict.approvals is not None and verdict.approvals.count == 1
    verdict.raise_if_closed()


def test_barred_approvals_do_not_open_the_gate() -> None:
    barred = barred_users(RC, cut_by="bob")
    verdict = evaluate_gates(
        PRODUCTION, ctx(approvals=(ok("bob"), ok("dan")), barred=barred), TUESDAY
    )
    assert verdict.outcome is GateOutcome.WAIT
    assert verdict.approvals is not None and verdict.approvals.barred == ("bob",)


def test_a_reject_wins_over_everything() -> None:
    no = Approval("carol", APPROVER, TUESDAY, RC, Decision.REJECT)
    verdict = evaluate_gates(
        PRODUCTION,
        ctx(approvals=(no,), succeeded_in=frozenset()),
        FRIDAY_EVENING + timedelta(days=4),
    )
    assert verdict.outcome is GateOutcome.REJECTED and verdict.event() == Rejected("carol")
    assert "rejected by carol" in verdict.reasons


def test_a_freeze_refuses_with_the_window_and_its_end() -> None:
    approvals = (ok("bob", FRIDAY_EVENING), ok("dan", FRIDAY_EVENING))
    verdict = evaluate_gates(PRODUCTION, ctx(approvals=approvals), FRIDAY_EVENING)
    assert verdict.outcome is GateOutcome.CLOSED and verdict.code is ErrorCode.FROZEN
    assert verdict.unfrozen_at == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    with pytest.raises(RefusedError) as err:
        verdict.raise_if_closed("production")
    assert err.value.code is ErrorCode.FROZEN
    assert err.value.message == (
        "production: production is frozen by 0 18 * * 5 (Europe/Berlin) for 2d15h (weekend) until 2026-03-30 07:00 UTC"
    )
    assert err.value.hint is not None and "--override-freeze" in err.value.hint
    assert err.value.details["frozen_until"] == "2026-03-30T07:00:00+00:00"


def test_chained_freezes_report_when_it_really_ends() -> None:
    holiday = OneOffFreeze(
        datetime(2026, 3, 30, 7, tzinfo=UTC), datetime(2026, 4, 2, tzinfo=UTC), reason="easter"
    )
    env = EnvironmentRules("production", 2, freezes=(WEEKEND, holiday))
    verdict = evaluate_gates(env, ctx(), FRIDAY_EVENING)
    assert verdict.unfrozen_at == datetime(2026, 4, 2, tzinfo=UTC)
    assert verdict.reasons[0].endswith(
        "until 2026-03-30 07:00 UTC, unfrozen at 2026-04-02 00:00 UTC"
    )


def test_requires_and_freeze_both_listed_requires_code_first() -> None:
    verdict = evaluate_gates(PRODUCTION, ctx(succeeded_in=frozenset()), FRIDAY_EVENING)
    assert verdict.code is ErrorCode.GATE_CLOSED
    assert len(verdict.reasons) == 3  # requires, freeze, approvals


def test_a_freeze_override_waits_for_a_second_approver_then_passes() -> None:
    override = FreezeOverride("payment outage", "ada")
    approvals = (ok("bob", FRIDAY_EVENING), ok("dan", FRIDAY_EVENING))
    waiting = evaluate_gates(
        PRODUCTION, ctx(approvals=approvals, override=override), FRIDAY_EVENING
    )
    assert waiting.outcome is GateOutcome.WAIT
    assert waiting.waiting_for == ("a second approver to confirm ada's freeze override",)
    confirmed = FreezeOverride("payment outage", "ada", "bob", FRIDAY_EVENING)
    passed = evaluate_gates(
        PRODUCTION, ctx(approvals=approvals, override=confirmed), FRIDAY_EVENING
    )
    assert passed.open
    assert passed.notes == ("freeze overridden by ada, confirmed by bob: payment outage",)


def test_rollbacks_pass_freezes_by_default_and_skip_requires_and_approvals() -> None:
    rollback = ctx(mode=DeploymentMode.ROLLBACK, succeeded_in=frozenset())
    verdict = evaluate_gates(PRODUCTION, rollback, FRIDAY_EVENING)
    assert verdict.open and verdict.approvals is None
    assert verdict.notes[0].startswith(
        "rollback allowed during the freeze (production is frozen by"
    )
    strict = EnvironmentRules("production", 2, freezes=(WEEKEND,), rollback_during_freeze=False)
    assert evaluate_gates(strict, rollback, FRIDAY_EVENING).code is ErrorCode.FROZEN
    assert evaluate_gates(strict, rollback, TUESDAY).open


def test_context_from_a_deployment() -> None:
    d = request_deployment(
        id=1, project="shop", environment="production", candidate=RC, requested_by="ada", now=TUESDAY,
        override_freeze=FreezeOverride("outage", "ada"),
    )  # fmt: skip
    c = GateContext.for_deployment(
        d, succeeded_in=["staging"], approvals=[ok("bob")], barred={"ada": "cut it"}
    )
    assert (c.candidate, c.requested_by, c.mode, c.succeeded_in) == (
        RC,
        "ada",
        "deploy",
        frozenset({"staging"}),
    )
    assert (
        c.override == d.override_freeze and c.barred == {"ada": "cut it"} and len(c.approvals) == 1
    )


def test_the_verdict_drives_the_state_machine() -> None:
    d = request_deployment(
        id=1,
        project="shop",
        environment="production",
        candidate=RC,
        requested_by="ada",
        now=TUESDAY,
    )
    first = evaluate_gates(PRODUCTION, ctx(), TUESDAY)
    event = first.event()
    assert event is not None
    d = transition(d, event, TUESDAY)
    assert d.state is DeploymentState.AWAITING_APPROVAL
    later = evaluate_gates(PRODUCTION, ctx(approvals=(ok("bob"), ok("dan"))), TUESDAY)
    event = later.event()
    assert event is not None
    assert transition(d, event, TUESDAY).state is DeploymentState.RUNNING


# ---- auto-promotion ------------------------------------------------------------------------------


def dep(env: str, state: DeploymentState, candidate: str = RC) -> Deployment:
    d = request_deployment(
        id=1, project="shop", environment=env, candidate=candidate, requested_by="x", now=TUESDAY
    )
    return d if state is DeploymentState.PENDING else Deployment(**{**_fields(d), "state": state})


def _fields(d: Deployment) -> dict[str, object]:
    return {name: getattr(d, name) for name in d.__slots__}  # type: ignore[attr-defined]


def test_a_success_promotes_to_the_next_auto_environment() -> None:
    assert auto_promotions(ENVS, "sandbox", RC, succeeded_in={"sandbox"}) == ["staging"]
    # production does not auto-promote
    assert auto_promotions(ENVS, "staging", RC, succeeded_in={"sandbox", "staging"}) == []


def test_a_built_candidate_goes_to_the_first_auto_or_single_step_environment() -> None:
    assert auto_promotions(ENVS, None, RC) == ["sandbox"]
    preview = EnvironmentRules("preview", 5, single_step=True)
    assert auto_promotions([*ENVS, preview], None, RC) == ["sandbox", "preview"]
    assert auto_promotions([STAGING, PRODUCTION], None, RC) == []


def test_without_requires_the_next_in_order_is_unlocked() -> None:
    a, b, c = (
        EnvironmentRules("a", 0),
        EnvironmentRules("b", 1, auto_promote=True),
        EnvironmentRules("c", 2, auto_promote=True),
    )
    assert auto_promotions([a, b, c], "a", RC) == ["b"]
    assert auto_promotions([a, b, c], "b", RC) == ["c"]
    assert auto_promotions([a, b, c], "c", RC) == []
    assert auto_promotions([a, b, c], "unknown", RC) == []


def test_at_least_n_promotes_once_enough_regions_succeeded() -> None:
    regions = [EnvironmentRules(name, i) for i, name in enumerate(["eu", "us", "ap"])]
    world = EnvironmentRules(
        "global", 3, requires=Requires(("eu", "us", "ap"), at_least=2), auto_promote=True
    )
    envs = [*regions, world]
    assert auto_promotions(envs, "eu", RC, succeeded_in={"eu"}) == []
    assert auto_promotions(envs, "us", RC, succeeded_in={"eu"}) == ["global"]


def test_auto_promotion_is_idempotent_and_never_promotes_a_vetoed_candidate() -> None:
    def after(*deployments: Deployment, vetoed: frozenset[str] = frozenset()) -> list[str]:
        return auto_promotions(
            ENVS, "sandbox", RC, succeeded_in={"sandbox"}, deployments=deployments, vetoed=vetoed
        )

    live_or_done = (
        DeploymentState.PENDING,
        DeploymentState.RUNNING,
        DeploymentState.SUCCEEDED,
        DeploymentState.ROLLED_BACK,
    )
    for state in live_or_done:
        assert after(dep("staging", state)) == []
    # a failed or canceled manual deployment does not block; an earlier automatic promotion does
    for state in (DeploymentState.FAILED, DeploymentState.CANCELED):
        assert after(dep("staging", state)) == ["staging"]
        promoted = Deployment(**{**_fields(dep("staging", state)), "mode": DeploymentMode.PROMOTE})
        assert after(promoted) == []
    assert after(dep("staging", DeploymentState.RUNNING, "1.4.0-rc.1")) == ["staging"]
    assert after(vetoed=frozenset({RC})) == []


def test_a_rollback_success_promotes_nothing() -> None:
    done = Deployment(
        **{**_fields(dep("sandbox", DeploymentState.SUCCEEDED)), "mode": DeploymentMode.ROLLBACK}
    )
    assert auto_promotions_after(ENVS, done, succeeded_in={"sandbox"}) == []
    forward = Deployment(**{**_fields(done), "mode": DeploymentMode.DEPLOY})
    assert auto_promotions_after(ENVS, forward, succeeded_in={"sandbox"}) == ["staging"]
    running = Deployment(
        **{**_fields(done), "state": DeploymentState.RUNNING, "mode": DeploymentMode.DEPLOY}
    )
    assert auto_promotions_after(ENVS, running) == []


# ---- apply_gates ---------------------------------------------------------------------------------


def waiting(candidate: str = RC, id: int = 1) -> Deployment:
    return request_deployment(
        id=id,
        project="shop",
        environment="production",
        candidate=candidate,
        requested_by="ada",
        now=TUESDAY,
    )


def test_apply_gates_runs_an_open_deployment() -> None:
    verdict = evaluate_gates(PRODUCTION, ctx(approvals=(ok("bob"), ok("dan"))), TUESDAY)
    d = apply_gates(waiting(), verdict, [], vetoed=(), now=TUESDAY)
    assert d.state is DeploymentState.RUNNING and d.started_at == TUESDAY


def test_apply_gates_keeps_it_waiting_while_the_environment_is_busy() -> None:
    busy = transition(waiting("1.4.0-rc.1", id=9), GatesOpened(), TUESDAY)
    verdict = evaluate_gates(PRODUCTION, ctx(approvals=(ok("bob"), ok("dan"))), TUESDAY)
    d = apply_gates(waiting(), verdict, [busy], vetoed=(), now=TUESDAY)
    assert d.state is DeploymentState.PENDING
    assert d.waiting_for == ("production is busy: deployment 9 (1.4.0-rc.1) is running",)


def test_apply_gates_cancels_a_candidate_vetoed_while_it_waited() -> None:
    verdict = evaluate_gates(PRODUCTION, ctx(approvals=(ok("bob"), ok("dan"))), TUESDAY)
    d = apply_gates(waiting(), verdict, [], vetoed={RC}, now=TUESDAY, actor="bob")
    assert d.state is DeploymentState.CANCELED
    assert d.outcome == f"canceled by bob: {RC} is vetoed and will not be deployed to production"


def test_apply_gates_waits_rejects_and_holds_on_closed() -> None:
    assert apply_gates(
        waiting(), evaluate_gates(PRODUCTION, ctx(), TUESDAY), [], (), TUESDAY
    ).state is (DeploymentState.AWAITING_APPROVAL)
    no = Approval("carol", APPROVER, TUESDAY, RC, Decision.REJECT)
    rejected = evaluate_gates(PRODUCTION, ctx(approvals=(no,)), TUESDAY)
    assert apply_gates(waiting(), rejected, [], (), TUESDAY).state is DeploymentState.CANCELED
    # approvals complete, but a freeze began meanwhile: it keeps waiting and says why
    approvals = (ok("bob", FRIDAY_EVENING), ok("dan", FRIDAY_EVENING))
    frozen = evaluate_gates(PRODUCTION, ctx(approvals=approvals), FRIDAY_EVENING)
    held = apply_gates(
        transition(waiting(), NeedsApproval(()), TUESDAY), frozen, [], (), FRIDAY_EVENING
    )
    assert held.state is DeploymentState.AWAITING_APPROVAL
    assert held.waiting_for == frozen.reasons and "frozen" in held.waiting_for[0]


def test_apply_gates_leaves_running_and_finished_deployments_alone() -> None:
    verdict = evaluate_gates(PRODUCTION, ctx(), TUESDAY)
    running = transition(waiting(), GatesOpened(), TUESDAY)
    assert apply_gates(running, verdict, [], (), TUESDAY) is running
    done = transition(running, Failed("x"), TUESDAY)
    assert apply_gates(done, verdict, [], (), TUESDAY) is done
