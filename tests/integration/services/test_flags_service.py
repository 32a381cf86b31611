"""Flag use cases on real SQLite and PostgreSQL: events, ETags, validation, the kill switch."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from shipyard.adapters.clock import FixedClock
from shipyard.adapters.git.cli import CliGitRepository
from shipyard.domain.auth import Actor, Role
from shipyard.domain.flags import compile_state
from shipyard.domain.releases import CandidateStatus
from shipyard.errors import (
    ConfigError,
    ConflictError,
    InvalidError,
    NotFoundError,
    PermissionDenied,
)
from shipyard.services import flags
from shipyard.services.context import Services
from shipyard.store.database import make_engine, migrate, session_factory
from shipyard.store.unit_of_work import SqlUnitOfWork

ADA = Actor("ada", Role.DEPLOYER)
VIEWER = Actor("vic", Role.VIEWER)
P, ENV = "shop", "production"
DECLARED = "environments:\n  - name: staging\n  - name: production\n"


@pytest.fixture
def svc(database_url: str, t0: datetime, tmp_path: Any) -> Iterator[Services]:
    """Only the store, a clock and git are real: flag use cases touch no builds or targets, and
    read from git only whether the environment is protected (this project has no repository)."""
    engine = make_engine(database_url)
    migrate(engine)
    factory = session_factory(engine)
    unused: dict[str, Any] = {f.name: None for f in dataclasses.fields(Services)}
    services = Services(
        **unused
        | {
            "uow": lambda: SqlUnitOfWork(factory),
            "clock": FixedClock(t0),
            "git": lambda source: CliGitRepository(source, tmp_path / "mirror"),
        }
    )
    with services.uow() as uow:
        project = uow.projects.add(name=P, source="/srv/shop.git", mainline="main", now=t0)
        release = uow.releases.add_release(
            project=project,
            version="1.0.0",
            branch="release/1.0.0",
            base_sha="a" * 40,
            actor="ada",
            now=t0,
        )
        uow.releases.add_candidate(  # flags live in the environments its shipyard.yaml declares
            release=release,
            number=1,
            name="1.0.0-rc.1",
            sha="a" * 40,
            status=CandidateStatus.BUILT,
            actor="ada",
            now=t0,
            config_text=DECLARED,
        )
        uow.commit()
    yield services
    engine.dispose()


def events(svc: Services) -> list[Any]:
    with svc.uow() as uow:
        return [e for e in uow.events.list(project=P) if e.kind.startswith("flag.")]


def users_on(doc: dict[str, Any], key: str, n: int = 2000) -> int:
    state = compile_state(doc)
    return sum(state.is_enabled(key, {"userId": str(i)}) for i in range(n))


def test_create_writes_the_unleash_definition_an_event_and_a_revision(svc: Services) -> None:
    assert flags.state_revision(svc, ADA, P, ENV) == 0
    flag = flags.create_flag(svc, ADA, P, ENV, "checkout.v2", description="new checkout")
    assert flag.definition == {
        "name": "checkout.v2",
        "type": "release",
        "description": "new checkout",
        "project": P,
        "enabled": False,
        "stale": False,
        "impressionData": False,
        "strategies": [{"name": "default", "parameters": {}, "constraints": []}],
        "variants": [],
        "dependencies": [],
    }
    [event] = events(svc)
    assert (event.kind, event.actor, event.subject) == (
        "flag.created",
        "ada",
        "flag production/checkout.v2",
    )
    assert event.payload["before"] is None
    assert event.payload["after"] == flag.definition
    revision, doc = flags.state(svc, VIEWER, P, ENV)
    assert revision == 1 == event.payload["revision"]
    assert doc == {"version": 2, "features": [flag.definition], "segments": []}
    # other environments are separate
    assert flags.state(svc, VIEWER, P, "staging") == (
        0,
        {"version": 2, "features": [], "segments": []},
    )


def test_every_change_records_before_and_after_and_moves_the_etag(svc: Services) -> None:
    flags.create_flag(svc, ADA, P, ENV, "banner", enabled=True, rollout=0)
    rev0, doc0 = flags.state(svc, VIEWER, P, ENV)
    assert users_on(doc0, "banner") == 0

    flags.rollout(svc, ADA, P, ENV, "banner", 100)
    rev1, doc1 = flags.state(svc, VIEWER, P, ENV)
    assert rev1 == rev0 + 1
    assert users_on(doc1, "banner") == 2000

    flags.kill(svc, ADA, P, ENV, "banner")
    rev2, doc2 = flags.state(svc, VIEWER, P, ENV)
    assert rev2 == rev1 + 1
    assert users_on(doc2, "banner") == 0

    kinds = [
        (e.kind, e.payload["before"]["enabled"] if e.payload["before"] else None)
        for e in events(svc)
    ]
    assert kinds == [("flag.created", None), ("flag.rollout", True), ("flag.killed", True)]
    last = events(svc)[-1]
    assert last.payload["after"]["enabled"] is False
    assert last.payload["before"]["strategies"] == last.payload["after"]["strategies"]

    view = flags.show_flag(svc, VIEWER, P, ENV, "banner")
    assert [c.kind for c in view.changes] == ["flag.killed", "flag.rollout", "flag.created"]
    assert [c.revision for c in view.changes] == [rev2, rev1, rev0]
    assert view.flag.version == 3
    assert flags.summarize(view.changes[1].before, view.changes[1].after) == "rollout 0%→100%"
    assert flags.summarize(view.changes[0].before, view.changes[0].after) == "enabled true→false"


def test_a_change_that_changes_nothing_keeps_the_etag(svc: Services) -> None:
    flags.create_flag(svc, ADA, P, ENV, "banner", rollout=5)
    rev = flags.state_revision(svc, VIEWER, P, ENV)
    flags.rollout(svc, ADA, P, ENV, "banner", 5)
    flags.kill(svc, ADA, P, ENV, "banner")  # already off
    flags.set_flag(svc, ADA, P, ENV, "banner", enabled=False)
    assert flags.state_revision(svc, VIEWER, P, ENV) == rev
    assert len(events(svc)) == 1
    flags.set_flag(svc, ADA, P, ENV, "banner", enabled=True)
    assert flags.state_revision(svc, VIEWER, P, ENV) == rev + 1
    assert [e.kind for e in events(svc)] == ["flag.created", "flag.enabled"]


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"enabled": "yes"}, "enabled"),
        ({"name": "other"}, "name"),
        ({"strategies": [{"name": "bogus"}]}, "strategies[0].name"),
        (
            {"strategies": [{"name": "flexibleRollout", "parameters": {"rollout": "150"}}]},
            "strategies[0].parameters.rollout",
        ),
        (
            {
                "strategies": [
                    {
                        "name": "default",
                        "constraints": [{"contextName": "plan", "operator": "LIKE"}],
                    }
                ]
            },
            "strategies[0].constraints[0].operator",
        ),
        ({"strategies": [{"name": "default", "segments": [7]}]}, "strategies[0].segments[0]"),
        ({"variants": [{"name": "blue", "weight": 5000}]}, "variants[0].weight"),
        ({"dependencies": [{"feature": "missing"}]}, "dependencies[0].feature"),
        ({"strategies": "everyone"}, "strategies"),
    ],
)
def test_an_invalid_definition_names_the_field_and_changes_nothing(
    svc: Services, definition: dict[str, Any], field: str
) -> None:
    flags.create_flag(svc, ADA, P, ENV, "banner", enabled=True)
    before = flags.state(svc, VIEWER, P, ENV)
    with pytest.raises(InvalidError) as err:
        flags.set_flag(svc, ADA, P, ENV, "banner", definition=definition)
    assert err.value.details["field"] == field
    assert flags.state(svc, VIEWER, P, ENV) == before
    assert len(events(svc)) == 1
    with pytest.raises(InvalidError):
        flags.create_flag(
            svc,
            ADA,
            P,
            ENV,
            "fresh",
            definition=definition | {"name": "fresh"} if field != "name" else definition,
        )
    assert flags.show_flag(svc, VIEWER, P, ENV, "banner").flag.version == 1
    with pytest.raises(NotFoundError):
        flags.show_flag(svc, VIEWER, P, ENV, "fresh")


def test_a_full_definition_with_segments_variants_and_dependencies(svc: Services) -> None:
    assert (
        flags.set_segments(
            svc,
            ADA,
            P,
            ENV,
            [
                {
                    "id": 1,
                    "name": "pro",
                    "constraints": [{"contextName": "plan", "operator": "IN", "values": ["pro"]}],
                }
            ],
        )
        == 1
    )
    flags.create_flag(svc, ADA, P, ENV, "parent", enabled=True)
    flags.create_flag(
        svc,
        ADA,
        P,
        ENV,
        "child",
        definition={
            "enabled": True,
            "strategies": [
                {
                    "name": "flexibleRollout",
                    "parameters": {"rollout": "100", "stickiness": "userId"},
                    "segments": [1],
                    "constraints": [],
                }
            ],
            "variants": [
                {
                    "name": "blue",
                    "weight": 1000,
                    "weightType": "variable",
                    "payload": {"type": "string", "value": "#00f"},
                }
            ],
            "dependencies": [{"feature": "parent"}],
        },
    )
    _, doc = flags.state(svc, VIEWER, P, ENV)
    state = compile_state(doc)
    assert state.is_enabled("child", {"userId": "1", "properties": {"plan": "pro"}})
    assert not state.is_enabled("child", {"userId": "1", "properties": {"plan": "free"}})
    assert state.get_variant("child", {"userId": "1", "properties": {"plan": "pro"}}).name == "blue"
    flags.kill(svc, ADA, P, ENV, "parent")
    _, doc = flags.state(svc, VIEWER, P, ENV)
    assert not compile_state(doc).is_enabled(
        "child", {"userId": "1", "properties": {"plan": "pro"}}
    )
    with pytest.raises(InvalidError, match="used by child"):
        flags.set_segments(svc, ADA, P, ENV, [])


def test_sub_percent_rollouts_are_exact_and_only_add_users(svc: Services) -> None:
    flags.create_flag(svc, ADA, P, ENV, "risky", enabled=True, rollout=0.1, stickiness="userId")
    params = flags.show_flag(svc, VIEWER, P, ENV, "risky").flag.definition["strategies"][0][
        "parameters"
    ]
    assert params == {
        "rollout": "0",
        "rolloutPpm": "1000",
        "stickiness": "userId",
        "groupId": "risky",
    }
    _, doc = flags.state(svc, VIEWER, P, ENV)
    few = {i for i in range(50_000) if compile_state(doc).is_enabled("risky", {"userId": str(i)})}
    assert 20 < len(few) < 80  # ~0.1 % of 50 000
    flags.rollout(svc, ADA, P, ENV, "risky", 1)
    _, doc = flags.state(svc, VIEWER, P, ENV)
    state = compile_state(doc)
    assert all(state.is_enabled("risky", {"userId": str(i)}) for i in few)
    assert flags.show_flag(svc, VIEWER, P, ENV, "risky").flag.definition["strategies"][0][
        "parameters"
    ] == {"rollout": "1", "stickiness": "userId", "groupId": "risky"}
    with pytest.raises(InvalidError, match="percent"):
        flags.rollout(svc, ADA, P, ENV, "risky", 101)
    with pytest.raises(InvalidError, match="4 decimal"):
        flags.rollout(svc, ADA, P, ENV, "risky", 0.00001)


def test_rollout_replaces_default_but_keeps_other_strategies(svc: Services) -> None:
    flags.create_flag(
        svc,
        ADA,
        P,
        ENV,
        "beta",
        enabled=True,
        definition={
            "enabled": True,
            "strategies": [
                {"name": "userWithId", "parameters": {"userIds": "7"}},
                {"name": "default"},
            ],
        },
    )
    flag = flags.rollout(svc, ADA, P, ENV, "beta", 25)
    assert [s["name"] for s in flag.definition["strategies"]] == ["userWithId", "flexibleRollout"]


def test_rules_roles_and_unknown_names(svc: Services) -> None:
    with pytest.raises(PermissionDenied):
        flags.create_flag(svc, VIEWER, P, ENV, "x")
    with pytest.raises(NotFoundError, match="project 'nope'"):
        flags.create_flag(svc, ADA, "nope", ENV, "x")
    with pytest.raises(NotFoundError, match="project 'nope'"):
        flags.state(svc, VIEWER, "nope", ENV)
    with pytest.raises(InvalidError, match="reserved"):
        flags.create_flag(svc, ADA, P, ENV, "state")
    with pytest.raises(InvalidError, match="flag key"):
        flags.create_flag(svc, ADA, P, ENV, "has space")
    flags.create_flag(svc, ADA, P, ENV, "x")
    with pytest.raises(ConflictError):
        flags.create_flag(svc, ADA, P, ENV, "x")
    with pytest.raises(NotFoundError, match="flag 'y'"):
        flags.kill(svc, ADA, P, ENV, "y")
    assert [f.key for f in flags.list_flags(svc, VIEWER, P, ENV)[1]] == ["x"]


def test_concurrent_writers_lose_no_update(svc: Services) -> None:
    """Writers of one environment serialize: each change's `before` is the previous `after`."""
    import threading

    flags.create_flag(svc, ADA, P, ENV, "hot", enabled=True, rollout=0)
    percents = list(range(1, 41))
    failures: list[BaseException] = []

    def work(mine: list[int]) -> None:
        try:
            for p in mine:
                flags.rollout(svc, ADA, P, ENV, "hot", p)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(percents[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    changes = list(reversed(flags.show_flag(svc, VIEWER, P, ENV, "hot", history=100).changes))
    assert [c.revision for c in changes] == list(range(1, len(percents) + 2))
    for prev, cur in itertools.pairwise(changes):
        assert cur.before == prev.after


def test_the_summary_says_what_changed() -> None:
    base = flags.with_rollout({"name": "f", "enabled": True, "strategies": []}, 10_000)
    assert flags.summarize(None, base) == "created, enabled=true, rollout 1%"
    moved = flags.with_rollout(base, 50_000, stickiness="userId")
    assert flags.summarize(base, moved) == "rollout 1%→5%; strategies changed"
    assert flags.summarize(base, base | {"description": "x"}) == "description changed"
    assert flags.summarize(base, base) == "no visible change"


def test_a_flag_for_an_environment_that_does_not_exist_is_refused(svc: Services) -> None:
    """``flag create shop nope KEY`` used to succeed: flags no application would ever read."""
    with pytest.raises(ConfigError) as caught:
        flags.create_flag(svc, ADA, P, "nope", "checkout")
    assert str(caught.value) == (
        "shipyard.yaml:1: environments: no environment named 'nope'; declared: staging, production"
    )
    with pytest.raises(ConfigError):
        flags.set_segments(svc, ADA, P, "nope", [])
    assert events(svc) == []
