"""Schemathesis over the OpenAPI, as an admin and as a viewer: no 500, every answer as documented.

Each operation gets ``EXAMPLES`` positive and negative cases, then the stateful phase chains
calls through the links schemathesis infers. Derandomized, so a CI failure replays; bounded by
counts (50 cases per operation: 2,802 and ~350 stateful calls, ~35 s per role on 2 cores)."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from shipyard.api.app import create_app
from shipyard.services import deployments, flags
from tests.integration.web.conftest import ADA, CONFIG
from tests.support.gitrepo import GitRepo
from tests.support.runtime import first_candidate, memory_runtime, role_tokens

EXAMPLES = 50
ENDLESS = {"GET /api/v1/projects/{project}/environments/{environment}/flags/stream"}
STATEFUL_EXAMPLES = 30
CHECKS = [not_a_server_error, response_schema_conformance]
SETTINGS = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[Any, dict[str, str], dict[str, Any]]]:
    """The running example: a built candidate in staging, so every route has something to find."""
    repo = GitRepo(tmp_path / "shop")
    repo.commit("chore: set up shipyard", {"shipyard.yaml": CONFIG, "app.py": "PRICE = 10\n"})
    with memory_runtime(tmp_path) as rt:
        made = role_tokens(rt.services)
        rc = first_candidate(rt, repo, ADA)
        deployments.deploy(rt.services, ADA, "shop", rc, "staging")
        rt.worker().drain()
        flags.create_flag(rt.services, ADA, "shop", "staging", "checkout", enabled=True)
        known = {
            "project": "shop",
            "environment": "staging",
            "candidate": rc,
            "version": rc.split("-")[0],
            "key": "checkout",
            "deployment_id": 1,
            "token_id": 1,
        }
        yield create_app(rt.services), made, known


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500]


def _per_operation(
    schema: Any, headers: dict[str, str], known: dict[str, Any]
) -> tuple[int, list[str]]:
    """Random cases, and cases whose path names the running example's real objects."""
    failures: list[str] = []
    cases = 0
    statuses: Counter[int] = Counter()
    spent: dict[str, float] = {}
    for result in schema.get_all_operations():
        op = result.ok()
        names = re.findall(r"\{(\w+)\}", op.path)
        # an event stream to a real environment never ends: fuzz only the errors before it
        # (the stream itself is tested in tests/e2e/test_flags_cli.py)
        real = {} if op.label in ENDLESS else {n: known[n] for n in names if n in known}
        modes = st.one_of(
            op.as_strategy(GenerationMode.POSITIVE),
            op.as_strategy(GenerationMode.NEGATIVE),
            op.as_strategy(GenerationMode.POSITIVE, path_parameters=real),
            op.as_strategy(GenerationMode.NEGATIVE, path_parameters=real),
        )

        @settings(SETTINGS, max_examples=EXAMPLES)
        @given(case=modes)
        def one(case: Any) -> None:
            nonlocal cases
            cases += 1
            try:
                answer = case.call_and_validate(headers=headers, checks=CHECKS)
                statuses[answer.status_code] += 1
            except Exception as exc:  # collect them all: the report lists every distinct one
                failures.append(f"{case.operation.label}: {_short(exc)}")

        began = time.monotonic()
        one()
        spent[op.label] = time.monotonic() - began
    slowest = sorted(spent.items(), key=lambda kv: -kv[1])[:3]
    print(f"answers by status: {sorted(statuses.items())}; slowest: {slowest}")
    return cases, failures


def _stateful(schema: Any, headers: dict[str, str]) -> tuple[int, list[str]]:
    failures: list[str] = []
    calls = 0

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": headers}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            nonlocal calls
            calls += 1
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except Exception as exc:
                failures.append(f"{case.operation.label}: {_short(exc)}")

    Machine.run(settings=settings(SETTINGS, max_examples=STATEFUL_EXAMPLES, stateful_step_count=10))
    return calls, failures


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_openapi_fuzz_finds_no_server_error_nor_undocumented_answer(
    app: tuple[Any, dict[str, str], dict[str, Any]], role: str
) -> None:
    asgi, made, known = app
    schema = schemathesis.openapi.from_asgi("/openapi.json", asgi)
    headers = {"Authorization": f"Bearer {made[role]}"}
    began, cpu = time.monotonic(), time.process_time()
    cases, failures = _per_operation(schema, headers, known)
    calls, more = _stateful(schema, headers)
    wall, used = time.monotonic() - began, time.process_time() - cpu
    print(f"\n{role}: {cases} cases + {calls} stateful calls in {wall:.1f}s ({used:.1f}s CPU)")
    failures += more
    distinct = Counter(f.split(":")[0] + ":" + f.split(":", 1)[1][:120] for f in failures)
    assert not failures, "\n".join(f"{n}x {f}" for f, n in distinct.most_common(60))
