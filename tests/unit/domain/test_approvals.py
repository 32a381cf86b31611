"""Approval rules: N distinct eligible approvers, expiry on a fake clock, void, separation of duties."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.domain.approvals import (
    Approval,
    ApprovalRule,
    Decision,
    barred_users,
    check_can_approve,
    evaluate_approvals,
)
from shipyard.errors import ErrorCode, InvalidError, PermissionDenied, RefusedError

T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
RC = "1.4.0-rc.2"
APPROVER = frozenset({"approver"})
TWO = ApprovalRule(required=2, approvers=("role:approver", "carol"))


def ok(
    user: str, at: datetime = T0, *, roles: frozenset[str] = APPROVER, candidate: str = RC
) -> Approval:
    return Approval(user, roles, at, candidate, Decision.APPROVE, "lgtm")


def no(user: str, at: datetime = T0, *, roles: frozenset[str] = APPROVER) -> Approval:
    return Approval(user, roles, at, RC, Decision.REJECT, "not today")


def test_two_distinct_approvers_satisfy_a_two_approval_rule() -> None:
    one = evaluate_approvals(TWO, [ok("bob")], RC, T0)
    assert (one.satisfied, one.count, one.needed, one.missing) == (False, 1, 2, 1)
    assert one.describe() == "needs 1 more approval (1 of 2) from role:approver, carol"
    two = evaluate_approvals(TWO, [ok("bob"), ok("dan")], RC, T0)
    assert two.satisfied and two.approved_by == ("bob", "dan")
    assert two.describe() == "approved by bob, dan"


def test_a_user_who_approves_twice_counts_once() -> None:
    verdict = evaluate_approvals(
        TWO, [ok("bob"), ok("bob", T0 + timedelta(minutes=1))], RC, T0 + timedelta(hours=1)
    )
    assert verdict.count == 1 and not verdict.satisfied


def test_approvers_match_by_name_or_role() -> None:
    verdict = evaluate_approvals(
        TWO,
        [
            ok("carol", roles=frozenset({"viewer"})),
            ok("eve", roles=frozenset({"deployer"})),
            ok("bob"),
        ],
        RC,
        T0,
    )
    assert verdict.approved_by == ("bob", "carol")
    assert verdict.ineligible == ("eve",)


def test_a_rule_without_approvers_admits_the_approver_and_admin_roles() -> None:
    rule = ApprovalRule(required=1)
    assert rule.admits("x", ["approver"]) and rule.admits("y", ["admin"])
    assert not rule.admits("z", ["deployer"])


def test_approvals_for_another_candidate_are_void() -> None:
    verdict = evaluate_approvals(TWO, [ok("bob", candidate="1.4.0-rc.1"), ok("dan")], RC, T0)
    assert verdict.count == 1 and verdict.void == ("bob",)
    assert verdict.describe().endswith("(for another candidate: bob)")
    again = evaluate_approvals(
        TWO, [ok("bob", candidate="1.4.0-rc.1"), ok("bob"), ok("dan")], RC, T0
    )
    assert again.satisfied and again.void == ()


def test_approvals_expire_on_a_fake_clock() -> None:
    rule = ApprovalRule(required=1, expires_after=timedelta(hours=24))
    approvals = [ok("bob")]
    fresh = evaluate_approvals(rule, approvals, RC, T0 + timedelta(hours=23, minutes=59))
    assert fresh.satisfied and fresh.valid_until == T0 + timedelta(hours=24)
    stale = evaluate_approvals(rule, approvals, RC, T0 + timedelta(hours=24))
    assert not stale.satisfied and stale.expired == ("bob",) and stale.valid_until is None
    assert (
        stale.describe()
        == "needs 1 more approval (0 of 1) from role:approver, role:admin (expired: bob)"
    )


def test_expiry_counts_real_hours_across_a_dst_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    rule = ApprovalRule(required=1, expires_after=timedelta(hours=24))
    at = datetime(
        2026, 3, 28, 12, 0, tzinfo=berlin
    )  # Saturday noon CET; clocks go forward that night
    approvals = [ok("bob", at)]
    # 24 real hours later is Sunday 13:00 CEST, not noon
    assert evaluate_approvals(
        rule, approvals, RC, datetime(2026, 3, 29, 12, 59, tzinfo=berlin)
    ).satisfied
    assert not evaluate_approvals(
        rule, approvals, RC, datetime(2026, 3, 29, 13, 0, tzinfo=berlin)
    ).satisfied


def test_decisions_after_now_do_not_exist_yet() -> None:
    verdict = evaluate_approvals(ApprovalRule(), [ok("bob", T0 + timedelta(seconds=1))], RC, T0)
    assert verdict.count == 0


def test_a_reject_by_an_eligible_approver_rejects() -> None:
    verdict = evaluate_approvals(
        TWO, [ok("bob"), ok("dan"), no("carol", roles=frozenset())], RC, T0
    )
    assert verdict.rejected and not verdict.satisfied and verdict.rejected_by == ("carol",)
    assert verdict.describe() == "rejected by carol"


def test_a_reject_by_someone_not_eligible_does_not_count() -> None:
    verdict = evaluate_approvals(
        TWO, [ok("bob"), ok("dan"), no("eve", roles=frozenset({"viewer"}))], RC, T0
    )
    assert verdict.satisfied and verdict.ineligible == ("eve",)


def test_the_latest_decision_of_a_user_is_their_vote() -> None:
    later = T0 + timedelta(minutes=5)
    assert evaluate_approvals(TWO, [no("bob"), ok("bob", later), ok("dan")], RC, later).satisfied
    assert evaluate_approvals(TWO, [ok("bob"), no("bob", later), ok("dan")], RC, later).rejected


def test_at_the_same_instant_a_reject_wins() -> None:
    for order in ([ok("bob"), no("bob")], [no("bob"), ok("bob")]):
        assert evaluate_approvals(ApprovalRule(), order, RC, T0).rejected_by == ("bob",)


def test_barred_users_do_not_count_but_may_reject() -> None:
    barred = barred_users(RC, cut_by="ada", authors=["bob"])
    verdict = evaluate_approvals(TWO, [ok("ada"), ok("bob"), ok("dan")], RC, T0, barred)
    assert verdict.count == 1 and verdict.barred == ("ada", "bob")
    assert verdict.describe().endswith(
        "(1 of 2) from role:approver, carol (not allowed to approve: ada, bob)"
    )
    assert evaluate_approvals(TWO, [no("ada")], RC, T0, barred).rejected_by == ("ada",)


def test_barred_users_name_the_reason() -> None:
    barred = barred_users(
        RC, cut_by="ada", picked_by=["pat", "ada"], authors=["bob", "pat"], requested_by="rex"
    )
    assert barred == {
        "ada": f"cut {RC}",
        "pat": f"picked a commit into {RC}",
        "rex": f"asked to deploy {RC}",
        "bob": f"wrote commits in {RC}",
    }
    assert barred_users(RC, cut_by="ada", authors=["bob"], allow_authors=True) == {
        "ada": f"cut {RC}"
    }


def test_the_cutter_may_not_approve_with_a_clear_message() -> None:
    barred = barred_users(RC, cut_by="ada")
    with pytest.raises(RefusedError) as err:
        check_can_approve(
            TWO,
            user="ada",
            roles=APPROVER,
            candidate=RC,
            environment="production",
            barred_users=barred,
        )
    assert err.value.code is ErrorCode.SEPARATION_OF_DUTIES
    assert (
        err.value.message == "ada cut 1.4.0-rc.2 and may not approve its deployment to production"
    )
    assert err.value.details == {
        "user": "ada",
        "candidate": RC,
        "environment": "production",
        "reason": f"cut {RC}",
    }
    # rejecting stays allowed
    check_can_approve(
        TWO, user="ada", roles=APPROVER, candidate=RC, environment="production",
        barred_users=barred, decision=Decision.REJECT,
    )  # fmt: skip


def test_a_plain_set_of_barred_users_is_accepted() -> None:
    with pytest.raises(RefusedError, match=r"bob is barred from 1\.4\.0-rc\.2 and may not approve"):
        check_can_approve(
            TWO, user="bob", roles=APPROVER, candidate=RC, environment="prod", barred_users={"bob"}
        )


def test_someone_not_named_by_the_rule_may_not_decide() -> None:
    with pytest.raises(PermissionDenied, match="eve is not an approver for production") as err:
        check_can_approve(
            TWO, user="eve", roles=["deployer"], candidate=RC, environment="production"
        )
    assert err.value.code is ErrorCode.PERMISSION_DENIED
    check_can_approve(TWO, user="carol", roles=[], candidate=RC, environment="production")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"required": 0}, "at least 1"),
        ({"approvers": ("role:",)}, "empty"),
        ({"approvers": (" bob",)}, "padded"),
        ({"expires_after": timedelta(0)}, "positive"),
        ({"approvers": ("role:aprover",)}, "unknown role 'aprover'; use one of: viewer, deployer"),
    ],
)
def test_bad_rules_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidError, match=message):
        ApprovalRule(**kwargs)  # type: ignore[arg-type]


USERS = ["ada", "bob", "carol", "dan", "eve"]
decisions = st.builds(
    Approval,
    user=st.sampled_from(USERS),
    roles=st.frozensets(st.sampled_from(["approver", "deployer", "viewer", "admin"]), max_size=2),
    decided_at=st.integers(0, 48 * 60).map(lambda m: T0 + timedelta(minutes=m)),
    candidate=st.sampled_from([RC, "1.4.0-rc.1"]),
    decision=st.sampled_from(Decision),
    comment=st.just(""),
)


@settings(max_examples=300, deadline=None)
@given(
    approvals=st.lists(decisions, max_size=12),
    required=st.integers(1, 4),
    expires=st.one_of(st.none(), st.integers(1, 48).map(lambda h: timedelta(hours=h))),
    barred=st.frozensets(st.sampled_from(USERS), max_size=2),
    minutes=st.integers(0, 72 * 60),
)
def test_an_approval_is_never_counted_twice(
    approvals: list[Approval],
    required: int,
    expires: timedelta | None,
    barred: frozenset[str],
    minutes: int,
) -> None:
    rule = ApprovalRule(
        required=required, approvers=("role:approver", "carol"), expires_after=expires
    )
    now = T0 + timedelta(minutes=minutes)
    verdict = evaluate_approvals(rule, approvals, RC, now, barred)
    counted = verdict.approved_by
    assert len(counted) == len(set(counted)) == verdict.count
    assert verdict.satisfied is (verdict.count >= required and not verdict.rejected)
    lists = [
        verdict.approved_by,
        verdict.rejected_by,
        verdict.expired,
        verdict.void,
        verdict.barred,
        verdict.ineligible,
    ]
    seen = [u for part in lists for u in part]
    assert len(seen) == len(set(seen)), "a user lands in one list at most"
    for user in counted:
        assert user not in barred
        mine = [
            a for a in approvals if a.user == user and a.candidate == RC and a.decided_at <= now
        ]
        last = max(a.decided_at for a in mine)
        votes = [a for a in mine if a.decided_at == last]
        assert all(v.decision is Decision.APPROVE for v in votes)
        assert any(rule.admits(user, v.roles) for v in votes)
        assert expires is None or now < last + expires
    # adding a duplicate of every counted approval changes nothing
    dupes = [a for a in approvals if a.user in counted]
    assert evaluate_approvals(rule, approvals + dupes, RC, now, barred).count == verdict.count
