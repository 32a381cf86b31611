from datetime import timedelta

import pytest

from shipyard.domain.approvals import ApprovalRule
from shipyard.domain.environments import (
    EnvironmentRules,
    Requires,
    check_environments,
    environment_named,
    in_order,
)
from shipyard.domain.freezes import RecurringFreeze
from shipyard.errors import InvalidError, NotFoundError

SANDBOX = EnvironmentRules("sandbox", 0, auto_promote=True)
STAGING = EnvironmentRules("staging", 1, requires=Requires(("sandbox",)), auto_promote=True)
PRODUCTION = EnvironmentRules(
    "production",
    2,
    requires=Requires(("staging",)),
    approval=ApprovalRule(
        required=2, approvers=("role:approver",), expires_after=timedelta(days=1)
    ),
    freezes=(RecurringFreeze("0 18 * * 5", timedelta(hours=63), "Europe/Berlin"),),
)


def test_defaults_are_the_permissive_ones() -> None:
    env = EnvironmentRules("dev", 0)
    assert env.requires == Requires() and env.requires.needed == 0
    assert env.approval is None and env.freezes == ()
    assert env.rollback_during_freeze and not env.auto_promote and not env.single_step


def test_requires_needs_all_unless_at_least_is_given() -> None:
    assert Requires(("a", "b", "c")).needed == 3
    assert Requires(("a", "b", "c"), at_least=2).needed == 2


@pytest.mark.parametrize(
    ("envs", "at_least", "message"),
    [(("a", "a"), 0, "twice"), (("a",), 2, "between 0 and 1"), (("a",), -1, "between 0 and 1")],
)
def test_bad_requires_are_refused(envs: tuple[str, ...], at_least: int, message: str) -> None:
    with pytest.raises(InvalidError, match=message):
        Requires(envs, at_least)


def test_an_environment_may_not_require_itself_or_be_nameless() -> None:
    with pytest.raises(InvalidError, match="requires itself"):
        EnvironmentRules("a", 0, requires=Requires(("a",)))
    with pytest.raises(InvalidError, match="needs a name"):
        EnvironmentRules(" ", 0)


def test_environments_sort_and_resolve_by_name() -> None:
    envs = [PRODUCTION, SANDBOX, STAGING]
    assert [e.name for e in in_order(envs)] == ["sandbox", "staging", "production"]
    assert environment_named(envs, "staging") is STAGING
    with pytest.raises(
        NotFoundError, match="unknown environment 'qa'; known: sandbox, staging, production"
    ):
        environment_named(envs, "qa")


def test_check_environments_refuses_duplicates_unknown_and_backward_requires() -> None:
    check_environments([SANDBOX, STAGING, PRODUCTION])
    with pytest.raises(InvalidError, match="declared twice"):
        check_environments([SANDBOX, SANDBOX])
    with pytest.raises(InvalidError, match="requires unknown environment staging"):
        check_environments([SANDBOX, PRODUCTION])
    backwards = EnvironmentRules("staging", 1, requires=Requires(("production",)))
    with pytest.raises(InvalidError, match="requires production, which does not come before it"):
        check_environments([SANDBOX, backwards, EnvironmentRules("production", 2)])
