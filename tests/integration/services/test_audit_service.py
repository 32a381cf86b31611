"""The audit services over a real release: events and rollout decisions in one project chain."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from shipyard.adapters.clock import FixedClock
from shipyard.adapters.routers.memory import MemoryRouter
from shipyard.bootstrap import Runtime
from shipyard.domain.auth import Actor, Role
from shipyard.errors import IntegrityError, InvalidError, NotFoundError
from shipyard.services import audit
from tests.integration.services.test_rollouts_service import CONFIG, T0, release_two
from tests.support.gitrepo import GitRepo
from tests.support.runtime import memory_runtime, shop_repo

VERA = Actor("vera", Role.VIEWER)


@pytest.fixture
def rt(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    with memory_runtime(tmp_path, database_url, clock=FixedClock(T0), router=MemoryRouter()) as r:
        yield r


def test_a_release_seals_its_events_and_rollout_decisions_in_its_projects_chain(
    rt: Runtime, tmp_path: Path
) -> None:
    repo: GitRepo = shop_repo(tmp_path, CONFIG)
    release_two(rt, repo)
    report = audit.verify(rt.services, VERA)
    shop = audit.head(rt.services, VERA, "shop")
    assert report.broken is None
    assert {c.chain: c.length for c in report.checks}["shop"] == shop.seq > 0
    assert next(c.last for c in report.checks if c.chain == "shop") == shop.hash
    with rt.engine.connect() as conn:
        records = conn.execute(text("SELECT chain, chain_seq FROM rollout_records")).all()
    assert records and all(chain == "shop" and seq for chain, seq in records)
    assert audit.verify(rt.services, VERA, project="shop", anchor=shop.hash).broken is None

    with pytest.raises(InvalidError, match="64 hexadecimal"):
        audit.verify(rt.services, VERA, anchor="abc")
    with pytest.raises(NotFoundError):
        audit.verify(rt.services, VERA, project="nope")
    with pytest.raises(NotFoundError):
        audit.head(rt.services, VERA, "nope")
    with pytest.raises(IntegrityError) as broken:
        audit.verify(rt.services, VERA, project="shop", anchor="0" * 64)
    assert broken.value.details["kind"] == "anchor"
