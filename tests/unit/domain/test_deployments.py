"""The deployment state machine and the deploy / rollback rules around it."""

from datetime import UTC, datetime, timedelta

import pytest

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
    check_can_start,
    check_deployable,
    confirm_override,
    plan_rollback,
    request_deployment,
    rollback_target,
    to_cancel_before_rollback,
    transition,
)
from shipyard.domain.releases import CandidateStatus
from shipyard.errors import ConflictError, ErrorCode, InvalidError, PermissionDenied, RefusedError

T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
S = DeploymentState
APPROVER = frozenset({"approver"})


def new(
    candidate: str = "1.4.0-rc.2", env: str = "production", id: int = 1, **kw: object
) -> Deployment:
    return request_deployment(
        id=id,
        project="shop",
        environment=env,
        candidate=candidate,
        requested_by="ada",
        now=T0,
        **kw,  # type: ignore[arg-type]
    )


def at(
    state: S, candidate: str = "1.4.0-rc.2", id: int = 1, env: str = "production", minutes: int = 0
) -> Deployment:
    d = new(candidate, env, id)
    started = T0 + timedelta(minutes=minutes)
    if state in (S.RUNNING, S.SUCCEEDED, S.FAILED, S.ROLLED_BACK):
        d = transition(d, GatesOpened(), started)
    if state is S.AWAITING_APPROVAL:
        d = transition(d, NeedsApproval(("2 approvals",)), started)
    if state in (S.SUCCEEDED, S.ROLLED_BACK):
        d = transition(d, Succeeded(), started + timedelta(minutes=1))
    if state is S.FAILED:
        d = transition(d, Failed("health check"), started + timedelta(minutes=1))
    if state is S.ROLLED_BACK:
        d = transition(d, RolledBack(9), started + timedelta(minutes=2))
    if state is S.CANCELED:
        d = transition(d, Canceled("ada"), started)
    assert d.state is state
    return d


def test_a_request_starts_pending() -> None:
    d = new(mode=DeploymentMode.PROMOTE, from_candidate="1.4.0-rc.1", reason="staging succeeded")
    assert (d.state, d.mode, d.requested_at, d.started_at, d.finished_at) == (
        S.PENDING,
        "promote",
        T0,
        None,
        None,
    )
    assert d.active and not d.terminal
    assert d.label == "deployment 1 (1.4.0-rc.2 to production, pending)"


def test_happy_path_through_approval() -> None:
    d = transition(new(), NeedsApproval(("needs 2 more approvals",)), T0)
    assert d.state is S.AWAITING_APPROVAL and d.waiting_for == ("needs 2 more approvals",)
    assert transition(d, Approved("bob", satisfied=False), T0) == d
    d = transition(d, Approved("dan", satisfied=True), T0 + timedelta(minutes=5))
    assert (
        d.state is S.RUNNING and d.started_at == T0 + timedelta(minutes=5) and d.waiting_for == ()
    )
    d = transition(d, Succeeded(), T0 + timedelta(minutes=9))
    assert d.state is S.SUCCEEDED and d.finished_at == T0 + timedelta(minutes=9)
    d = transition(d, RolledBack(by_deployment=7), T0 + timedelta(hours=1))
    assert d.state is S.ROLLED_BACK and d.outcome == "rolled back by deployment 7"
    assert d.finished_at == T0 + timedelta(minutes=9)


def test_gates_opened_or_started_run_a_waiting_deployment() -> None:
    for event in (GatesOpened(), Started()):
        assert transition(new(), event, T0).state is S.RUNNING
        assert transition(at(S.AWAITING_APPROVAL), event, T0).state is S.RUNNING


def test_reject_and_cancel_record_who_and_why() -> None:
    d = transition(at(S.AWAITING_APPROVAL), Rejected("carol", "breaks checkout"), T0)
    assert (
        d.state is S.CANCELED
        and d.outcome == "rejected by carol: breaks checkout"
        and d.finished_at == T0
    )
    d = transition(at(S.RUNNING), Canceled("ada", "rollback"), T0)
    assert d.state is S.CANCELED and d.outcome == "canceled by ada: rollback"
    assert transition(at(S.RUNNING), Failed(), T0).outcome == "failed"


# every (state, event) pair: the table the state machine must follow
EVENTS: list[DeploymentEvent] = [
    GatesOpened(),
    Started(),
    NeedsApproval(("x",)),
    Approved("bob", True),
    Approved("bob", False),
    Rejected("bob"),
    Succeeded(),
    Failed("boom"),
    Canceled("ada"),
    RolledBack(3),
]
ALLOWED: dict[tuple[S, str], S] = {
    (S.PENDING, "GatesOpened"): S.RUNNING,
    (S.PENDING, "Started"): S.RUNNING,
    (S.PENDING, "NeedsApproval"): S.AWAITING_APPROVAL,
    (S.PENDING, "Rejected"): S.CANCELED,
    (S.PENDING, "Canceled"): S.CANCELED,
    (S.AWAITING_APPROVAL, "GatesOpened"): S.RUNNING,
    (S.AWAITING_APPROVAL, "Started"): S.RUNNING,
    (S.AWAITING_APPROVAL, "NeedsApproval"): S.AWAITING_APPROVAL,
    (S.AWAITING_APPROVAL, "Approved+"): S.RUNNING,
    (S.AWAITING_APPROVAL, "Approved-"): S.AWAITING_APPROVAL,
    (S.AWAITING_APPROVAL, "Rejected"): S.CANCELED,
    (S.AWAITING_APPROVAL, "Canceled"): S.CANCELED,
    (S.RUNNING, "Succeeded"): S.SUCCEEDED,
    (S.RUNNING, "Failed"): S.FAILED,
    (S.RUNNING, "Canceled"): S.CANCELED,
    (S.SUCCEEDED, "RolledBack"): S.ROLLED_BACK,
}


def key(event: DeploymentEvent) -> str:
    if isinstance(event, Approved):
        return "Approved+" if event.satisfied else "Approved-"
    return type(event).__name__


@pytest.mark.parametrize("state", list(S))
@pytest.mark.parametrize("event", EVENTS, ids=key)
def test_transition_table(state: S, event: DeploymentEvent) -> None:
    d = at(state)
    expected = ALLOWED.get((state, key(event)))
    if expected is None:
        with pytest.raises(ConflictError) as err:
            transition(d, event, T0)
        assert err.value.code is ErrorCode.INVALID_TRANSITION
        assert (
            err.value.message
            == f"deployment 1 is {state.value}; {type(event).__name__} does not apply"
        )
        assert err.value.details == {
            "deployment": 1,
            "state": state.value,
            "event": type(event).__name__,
        }
    else:
        assert transition(d, event, T0).state is expected


def test_terminal_states_are_terminal() -> None:
    assert {S.SUCCEEDED, S.FAILED, S.CANCELED, S.ROLLED_BACK} == TERMINAL
    assert {S.PENDING, S.AWAITING_APPROVAL, S.RUNNING} == ACTIVE
    leaving = {state for (state, _), to in ALLOWED.items() if to is not state}
    assert leaving & TERMINAL == {S.SUCCEEDED}


def test_naive_now_is_refused() -> None:
    with pytest.raises(InvalidError, match="aware"):
        transition(new(), GatesOpened(), datetime(2026, 1, 1))  # noqa: DTZ001


# ---- freeze override ------------------------------------------------------------------------------


def test_a_freeze_override_needs_a_reason() -> None:
    with pytest.raises(InvalidError, match="needs a reason"):
        FreezeOverride("  ", "ada")


def test_a_second_approver_confirms_the_override() -> None:
    d = new(override_freeze=FreezeOverride("payment outage", "ada"))
    with pytest.raises(
        RefusedError, match="ada asked to override the freeze and may not confirm it"
    ) as err:
        transition(d, OverrideConfirmed("ada", APPROVER), T0)
    assert err.value.code is ErrorCode.SEPARATION_OF_DUTIES
    with pytest.raises(PermissionDenied, match="needs the approver role"):
        transition(d, OverrideConfirmed("rex", frozenset({"deployer"})), T0)
    d = transition(d, OverrideConfirmed("bob", APPROVER), T0)
    assert d.state is S.PENDING and d.override_freeze is not None and d.override_freeze.confirmed
    assert (d.override_freeze.confirmed_by, d.override_freeze.confirmed_at) == ("bob", T0)
    with pytest.raises(ConflictError, match="already confirmed by bob"):
        confirm_override(d.override_freeze, user="carol", roles=APPROVER, now=T0)


def test_confirming_without_an_override_is_invalid() -> None:
    with pytest.raises(ConflictError) as err:
        transition(new(), OverrideConfirmed("bob", APPROVER), T0)
    assert err.value.code is ErrorCode.INVALID_TRANSITION
    with pytest.raises(ConflictError):
        transition(at(S.RUNNING), OverrideConfirmed("bob", APPROVER), T0)


# ---- deployable, request, start -----------------------------------------------------------------


def test_a_vetoed_candidate_is_never_deployable() -> None:
    with pytest.raises(RefusedError, match=r"1\.4\.0-rc\.2 is vetoed: leaks memory") as err:
        check_deployable(CandidateStatus.BUILT, True, candidate="1.4.0-rc.2", reason="leaks memory")
    assert err.value.code is ErrorCode.VETOED


@pytest.mark.parametrize(
    "status", [CandidateStatus.BUILDING, CandidateStatus.FAILED, CandidateStatus.AWAITING_ARTIFACTS]
)
def test_an_unbuilt_or_failed_candidate_is_refused(status: CandidateStatus) -> None:
    with pytest.raises(RefusedError, match="is not deployable: its build is") as err:
        check_deployable(status, False, candidate="1.4.0-rc.2")
    assert err.value.code is ErrorCode.GATE_CLOSED and err.value.details["status"] == status.value
    check_deployable(CandidateStatus.BUILT, False)


def test_a_second_live_request_for_the_same_candidate_and_environment_is_a_conflict() -> None:
    live = at(S.AWAITING_APPROVAL, id=4)
    with pytest.raises(
        ConflictError,
        match=r"already being deployed to production \(deployment 4, awaiting_approval\)",
    ):
        check_can_request("shop", "production", "1.4.0-rc.2", [live])
    check_can_request("shop", "staging", "1.4.0-rc.2", [live])
    check_can_request("shop", "production", "1.4.0-rc.3", [live])
    check_can_request("other", "production", "1.4.0-rc.2", [live])
    check_can_request(
        "shop", "production", "1.4.0-rc.2", [at(S.SUCCEEDED, id=4)]
    )  # a redeploy is fine


def test_only_one_deployment_runs_per_environment() -> None:
    running = at(S.RUNNING, "1.4.0-rc.1", id=2)
    waiting = new(id=3)
    with pytest.raises(
        ConflictError, match=r"production is busy: deployment 2 \(1.4.0-rc.1\) is running"
    ):
        check_can_start(waiting, [running, waiting], vetoed=())
    check_can_start(waiting, [at(S.SUCCEEDED, id=2), waiting], vetoed=())
    check_can_start(running, [running], vetoed=())  # itself does not count
    with pytest.raises(
        RefusedError, match="is vetoed and will not be deployed to production"
    ) as err:
        check_can_start(waiting, [], vetoed={"1.4.0-rc.2"})
    assert err.value.code is ErrorCode.VETOED


# ---- rollback ------------------------------------------------------------------------------------


def hist(*items: tuple[str, S]) -> list[Deployment]:
    """History newest first: ids and times descending."""
    n = len(items)
    return [
        at(state, cand, id=n - i, minutes=(n - i) * 10) for i, (cand, state) in enumerate(items)
    ]


def test_after_a_success_rollback_goes_to_the_candidate_before_it() -> None:
    history = hist(("rc3", S.SUCCEEDED), ("rc2", S.SUCCEEDED), ("rc1", S.SUCCEEDED))
    plan = plan_rollback(history)
    assert plan is not None and (plan.candidate, plan.replaces, plan.from_candidate) == (
        "rc2",
        "rc3",
        "rc3",
    )
    assert (
        plan.because
        == "the last deployment (rc3) succeeded; going back to rc2, which ran before it"
    )


def test_after_a_failure_rollback_goes_to_the_last_success() -> None:
    history = hist(("rc4", S.FAILED), ("rc3", S.SUCCEEDED), ("rc2", S.SUCCEEDED))
    plan = plan_rollback(history)
    assert plan is not None and (plan.candidate, plan.replaces) == ("rc3", "rc4")
    assert (
        plan.because
        == "the last deployment (rc4) failed; going back to rc3, the last candidate that succeeded there"
    )


def test_rollback_skips_vetoed_rolled_back_and_current_candidates() -> None:
    history = hist(
        ("rc5", S.SUCCEEDED),
        ("rc5", S.SUCCEEDED),  # a redeploy of the current one
        ("rc4", S.SUCCEEDED),  # vetoed
        ("rc3", S.ROLLED_BACK),
        ("rc2", S.FAILED),
        ("rc1", S.SUCCEEDED),
    )
    assert rollback_target(history, vetoed={"rc4"}) == "rc1"
    assert rollback_target(history) == "rc4"


def test_a_second_rollback_does_not_return_to_the_rolled_back_candidate() -> None:
    # rc3 deployed, rolled back to rc2 (rc3 marked rolled_back), rollback again
    history = hist(
        ("rc2", S.SUCCEEDED), ("rc3", S.ROLLED_BACK), ("rc2", S.SUCCEEDED), ("rc1", S.SUCCEEDED)
    )
    assert rollback_target(history) == "rc1"


def test_a_rolled_back_last_deployment_is_what_gets_replaced() -> None:
    history = hist(("rc3", S.ROLLED_BACK), ("rc2", S.SUCCEEDED))
    plan = plan_rollback(history)
    assert (
        plan is not None
        and plan.candidate == "rc2"
        and plan.because == "rc3 was rolled back; going back to rc2"
    )


def test_deployments_that_never_started_are_ignored_but_started_ones_count() -> None:
    never = [at(S.CANCELED, "rc9", id=9), at(S.AWAITING_APPROVAL, "rc8", id=8)]
    history = [*never, *hist(("rc3", S.SUCCEEDED), ("rc2", S.SUCCEEDED))]
    assert rollback_target(history) == "rc2"
    started_then_canceled = transition(at(S.RUNNING, "rc4", id=10), Canceled("ada"), T0)
    plan = plan_rollback([started_then_canceled, *history])
    assert plan is not None and plan.because.startswith(
        "the last deployment (rc4) was canceled while running"
    )
    plan = plan_rollback([at(S.RUNNING, "rc4", id=10), *history])
    assert plan is not None and plan.because.startswith(
        "the last deployment (rc4) is still running"
    )
    assert rollback_target([started_then_canceled, *history]) == "rc3"


def test_no_rollback_target_without_an_earlier_success() -> None:
    assert rollback_target([]) is None
    assert rollback_target(hist(("rc1", S.SUCCEEDED))) is None
    assert rollback_target(hist(("rc2", S.FAILED), ("rc1", S.FAILED))) is None
    assert rollback_target(hist(("rc2", S.SUCCEEDED), ("rc1", S.SUCCEEDED)), vetoed={"rc1"}) is None


def test_a_rollback_cancels_every_live_deployment_first() -> None:
    history = [at(S.PENDING, "rc5", id=5), at(S.RUNNING, "rc4", id=4), at(S.SUCCEEDED, "rc3", id=3)]
    assert [d.id for d in to_cancel_before_rollback(history)] == [4, 5]
