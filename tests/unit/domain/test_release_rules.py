import pytest

from shipyard.domain.auth import Action, Actor, Role, parse_role
from shipyard.domain.releases import (
    check_on_mainline,
    check_picks_carried,
    check_version_free,
    release_branch,
)
from shipyard.errors import ConflictError, ErrorCode, InvalidError, PermissionDenied, RefusedError


def test_an_existing_version_is_refused() -> None:
    with pytest.raises(ConflictError) as err:
        check_version_free("1.2.0", ["1.1.0", "1.2.0"])
    assert err.value.code is ErrorCode.VERSION_EXISTS
    check_version_free("1.3.0", ["1.1.0", "1.2.0"])


def test_a_commit_off_the_mainline_is_refused() -> None:
    with pytest.raises(RefusedError, match="is not on the mainline 'main'") as err:
        check_on_mainline("f" * 40, "main", on_mainline=False)
    assert err.value.code is ErrorCode.NOT_ON_MAINLINE


def test_missing_picks_are_listed_per_release_unless_allowed() -> None:
    missing = {"1.2.0": ["a" * 40], "1.1.0": [], "1.3.0": ["b" * 40, "c" * 40]}
    with pytest.raises(RefusedError) as err:
        check_picks_carried(missing, allow=False)
    assert err.value.code is ErrorCode.MISSING_PICK
    assert "1.2.0: aaaaaaaaaaaa; 1.3.0: bbbbbbbbbbbb, cccccccccccc" in err.value.message
    assert err.value.details["missing"] == {"1.2.0": ["a" * 40], "1.3.0": ["b" * 40, "c" * 40]}
    check_picks_carried(missing, allow=True)
    check_picks_carried({"1.1.0": []}, allow=False)


def test_release_branch_name() -> None:
    assert release_branch("1.4.0") == "release/1.4.0"


@pytest.mark.parametrize(
    ("role", "allowed", "denied"),
    [
        (
            Role.VIEWER,
            [Action.READ],
            [Action.RELEASE, Action.DEPLOY, Action.APPROVE, Action.ADMINISTER],
        ),
        (
            Role.DEPLOYER,
            [Action.READ, Action.RELEASE, Action.DEPLOY],
            [Action.APPROVE, Action.ADMINISTER],
        ),
        (
            Role.APPROVER,
            [Action.READ, Action.APPROVE],
            [Action.RELEASE, Action.DEPLOY, Action.ADMINISTER],
        ),
        (Role.ADMIN, list(Action), []),
    ],
)
def test_roles(role: Role, allowed: list[Action], denied: list[Action]) -> None:
    actor = Actor("ada", role)
    for action in allowed:
        actor.require(action)
    for action in denied:
        with pytest.raises(
            PermissionDenied, match=f"ada \\({role.value}\\) may not {action.value}"
        ):
            actor.require(action)


def test_unknown_role_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidError, match="use one of: viewer, deployer, approver, admin"):
        parse_role("root")
