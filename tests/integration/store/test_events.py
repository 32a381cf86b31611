"""Reading the audit log in the store, on SQLite and PostgreSQL: filters, paging, kinds.

The dashboard and ``shipyard events --before`` page back through a log that only grows, so each
page must be one bounded query whatever the log's length, and both databases must agree on what
a kind filter matches (LIKE wildcards and SQLite's case-insensitive LIKE are the traps).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import event, text

from shipyard.store.database import make_engine, migrate, session_factory
from shipyard.store.unit_of_work import SqlUnitOfWork

Log = Callable[[], SqlUnitOfWork]

KINDS = [
    "deployment.requested",
    "deploymentx.y",
    "deployment.approved",
    "release.cut",
    "a_b.c",
    "axb.c",
    "p%q.r",
    "pzq.r",
    "Deployment.loud",
    "deployment",
]


@pytest.fixture
def engine(database_url: str) -> Iterator[Any]:
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def log(engine: Any) -> Log:
    factory = session_factory(engine)
    return lambda: SqlUnitOfWork(factory)


def _append(log: Log, t0: datetime, kinds: list[str], project: str | None = "shop") -> None:
    with log() as uow:
        for i, kind in enumerate(kinds):
            uow.events.append(
                actor="ada", kind=kind, subject=f"s{i}", payload={}, now=t0, project=project
            )
        uow.commit()


def _kinds(log: Log, **filters: Any) -> list[str]:
    with log() as uow:
        return [e.kind for e in uow.events.newest(limit=1000, **filters).events]


def test_kind_is_whole_or_a_prefix_that_ends_at_a_dot(log: Log, t0: datetime) -> None:
    _append(log, t0, KINDS)
    assert _kinds(log, kind="deployment") == [
        "deployment",
        "deployment.approved",
        "deployment.requested",
    ]
    assert _kinds(log, kind="deployment.approved") == ["deployment.approved"]
    assert _kinds(log, kind="deploy") == []  # a prefix ends at a dot
    assert _kinds(log, kind="Deployment") == ["Deployment.loud"]  # case counts, SQLite too
    with log() as uow:
        assert [e.kind for e in uow.events.list(kind="deployment")] == [
            "deployment.requested",
            "deployment.approved",
            "deployment",
        ]


def test_like_wildcards_in_a_kind_are_literal(log: Log, t0: datetime) -> None:
    _append(log, t0, KINDS)
    assert _kinds(log, kind="a_b") == ["a_b.c"]
    assert _kinds(log, kind="p%q") == ["p%q.r"]
    assert _kinds(log, kind="%") == []
    assert _kinds(log, kind="_") == []


def test_paging_back_has_no_gaps_and_no_duplicates(log: Log, t0: datetime) -> None:
    _append(log, t0, [f"k{i % 3}.x" for i in range(23)])
    seen: list[int] = []
    before: int | None = None
    while True:
        with log() as uow:
            page = uow.events.newest(kind="k1", before=before, limit=3)
        seen += [e.id for e in page.events]
        if not page.older:
            break
        before = page.events[-1].id
    with log() as uow:
        everything = [e.id for e in uow.events.list(limit=1000) if e.kind == "k1.x"]
    assert seen == sorted(everything, reverse=True) and len(seen) == 8
    with log() as uow:
        last = uow.events.newest(kind="k1", before=min(seen), limit=3)
    assert (last.events, last.older) == ((), False)


def test_older_is_exact_at_the_page_boundary(log: Log, t0: datetime) -> None:
    _append(log, t0, ["a.x"] * 4)
    with log() as uow:
        full = uow.events.newest(limit=4)
        short = uow.events.newest(limit=3)
        one = uow.events.newest(limit=1)
    assert (len(full.events), full.older) == (4, False)
    assert (len(short.events), short.older) == (3, True)
    assert (len(one.events), one.older) == (1, True)


def test_project_filter(log: Log, t0: datetime) -> None:
    _append(log, t0, ["release.cut", "deployment.requested"], project="shop")
    _append(log, t0, ["release.cut"], project="blog")
    _append(log, t0, ["token.created"], project=None)
    with log() as uow:
        shop = uow.events.newest(project="shop")
        blog_cuts = uow.events.newest(project="blog", kind="release")
        assert uow.events.kinds(project="blog") == ["release.cut"]
        assert uow.events.kinds() == ["deployment.requested", "release.cut", "token.created"]
    assert {e.project for e in shop.events} == {"shop"} and len(shop.events) == 2
    assert [(e.project, e.kind) for e in blog_cuts.events] == [("blog", "release.cut")]


def test_kinds_are_distinct_sorted_and_bounded(log: Log, t0: datetime) -> None:
    _append(log, t0, KINDS * 2)
    with log() as uow:
        # sorted as the database sorts (PostgreSQL's collation need not be bytewise)
        plain = text("SELECT DISTINCT kind FROM events ORDER BY kind")
        assert uow.events.kinds() == list(uow.session.scalars(plain))
        assert len(uow.events.kinds()) == len(set(KINDS))
        assert uow.events.kinds(limit=3) == uow.events.kinds()[:3]
        assert uow.events.kinds(project="nope") == []


def test_a_page_is_one_query_however_long_the_log(log: Log, engine: Any, t0: datetime) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    def queries_for_one_page() -> int:
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            with log() as uow:
                page = uow.events.newest(kind="deployment", before=10_000, limit=2)
                uow.events.kinds(project="shop")
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert len(page.events) == 2
        return len([s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))])

    _append(log, t0, KINDS)
    few = queries_for_one_page()
    _append(log, t0, KINDS * 50)
    assert queries_for_one_page() == few == 2
