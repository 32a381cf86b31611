"""Schemathesis over the OpenAPI, as an admin and as a viewer: no 500, every answer as documented.

Seeded (derandomized), so a CI failure replays; bounded by examples per operation."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from shipyard.api.app import create_app
from tests.integration.web.conftest import ADA, CONFIG
from tests.support.gitrepo import GitRepo
from tests.support.runtime import first_candidate, memory_runtime, role_tokens
from shipyard.services import deployments

EXAMPLES = 50
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture
def fuzzed(tmp_path: Path) -> Iterator[tuple[Any, dict[str, str]]]:
    repo = GitRepo(tmp_path / "shop")
    repo.commit("chore: set up shipyard", {"shipyard.yaml": CONFIG, "app.py": "PRICE = 10\n"})
    with memory_runtime(tmp_path) as rt:
        made = role_tokens(rt.services)
        rc = first_candidate(rt, repo, ADA)
        deployments.deploy(rt.services, ADA, "shop", rc, "staging")
        rt.worker().drain()
        yield create_app(rt.services), made


def _run(app: Any, token: str) -> tuple[int, list[str]]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    cases = 0
    for result in schema.get_all_operations():
        op = result.ok()

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        @given(case=op.as_strategy())
        def one(case: Any) -> None:
            nonlocal cases
            cases += 1
            try:
                case.call_and_validate(
                    headers={"Authorization": f"Bearer {token}"}, checks=CHECKS
                )
            except Exception as exc:  # collect, do not stop: we want the whole list
                failures.append(f"{op.label}: {str(exc)[:600]}")

        one()
    return cases, failures


@pytest.mark.slow
@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_openapi_fuzz_finds_no_server_error(fuzzed: tuple[Any, dict[str, str]], role: str) -> None:
    app, made = fuzzed
    began = time.monotonic()
    cases, failures = _run(app, made[role])
    print(f"{role}: {cases} cases in {time.monotonic() - began:.1f}s")
    kinds = Counter(f.split(":")[0] for f in failures)
    assert not failures, "\n".join([str(kinds), *failures[:40]])
