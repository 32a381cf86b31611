"""Hostile or careless input gets one problem+json 4xx, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from shipyard.api.app import create_app
from shipyard.cli.client import _problem
from tests.integration.web.conftest import ADA, CONFIG
from tests.support.runtime import first_candidate, memory_runtime, role_tokens, shop_repo

HUGE = 2**70


@dataclass
class Api:
    client: TestClient
    admin: dict[str, str]
    candidate: str

    def call(self, method: str, url: str, **kw: Any) -> Any:
        headers = self.admin | kw.pop("headers", {})
        answer = self.client.request(method, url, headers=headers, **kw)
        assert answer.headers["content-type"].startswith("application/problem+json"), answer.text
        body = answer.json()
        assert {"type", "title", "status", "detail", "code"} <= set(body)
        assert body["status"] == answer.status_code
        return answer.status_code, body


@pytest.fixture
def api(tmp_path: Path, database_url: str) -> Iterator[Api]:
    with memory_runtime(tmp_path, database_url) as rt:
        made = role_tokens(rt.services)
        rc = first_candidate(rt, shop_repo(tmp_path, CONFIG), ADA)
        client = TestClient(create_app(rt.services, max_body_bytes=64 * 1024))
        yield Api(client, {"Authorization": f"Bearer {made['admin']}"}, rc)


@pytest.mark.parametrize(
    "url",
    [
        f"/api/v1/deployments/{HUGE}",
        f"/api/v1/deployments/{HUGE}/approve",
        f"/api/v1/projects/shop/deployments/{HUGE}/rollout",
        f"/api/v1/events?after={HUGE}",
        f"/api/v1/events?before={HUGE}",
        f"/api/v1/events?after={2**31}",
        f"/api/v1/deployments/{2**40}",
        f"/api/v1/projects/shop/environments/staging/rollout?records={HUGE}",
    ],
)
def test_huge_ids_and_offsets_are_422_not_overflow_500(api: Api, url: str) -> None:
    method = "POST" if url.endswith("approve") else "GET"
    status, body = api.call(method, url, json={})
    assert status == 422 and body["code"] == "invalid"
    assert body["errors"] and "less than or equal" in body["errors"][0]["reason"]


def test_huge_token_id_to_revoke_is_422(api: Api) -> None:
    assert api.call("DELETE", f"/api/v1/tokens/{HUGE}")[0] == 422
    assert api.call("DELETE", f"/api/v1/tokens/{2**31}")[0] == 422
    assert api.call("DELETE", f"/api/v1/tokens/{2**31 - 1}")[0] == 404


def test_huge_build_log_offset_is_422(api: Api) -> None:
    url = f"/api/v1/projects/shop/candidates/{api.candidate}/log?offset={HUGE}"
    assert api.call("GET", url)[0] == 422


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/v1/projects/shop/releases/1.0.0/picks", {"shas": ["ab\u0000cd"]}),
        ("/api/v1/projects", {"source": "/tmp/x\u0000y"}),
        (
            "/api/v1/projects/shop/deployments",
            {"candidate": "1.0.0-rc.1", "environment": "staging", "reason": "a\u0000"},
        ),
        ("/api/v1/projects/shop/rollbacks", {"environment": "staging", "reason": "\u0000"}),
        (
            "/api/v1/projects/shop/environments/staging/flags",
            {"key": "k", "definition": {"a\u0000": 1}},
        ),
    ],
)
def test_nul_bytes_in_any_string_are_refused(api: Api, url: str, body: dict[str, Any]) -> None:
    status, problem = api.call("POST", url, json=body)
    assert status == 422
    assert "NUL" in problem["detail"]


def test_nul_bytes_in_the_path_are_refused(api: Api) -> None:
    status, problem = api.call("GET", "/api/v1/projects/sh%00op")
    assert status == 422 and "NUL" in problem["detail"]


def test_a_5mb_reason_is_refused_and_nothing_is_stored(api: Api) -> None:
    before = api.client.get("/api/v1/events?newest=true&limit=1", headers=api.admin).json()
    reason = "x" * 5_000
    status, problem = api.call(
        "POST", "/api/v1/projects/shop/rollbacks", json={"environment": "staging", "reason": reason}
    )
    assert status == 422 and problem["errors"][0]["field"] == "reason"
    after = api.client.get("/api/v1/events?newest=true&limit=1", headers=api.admin).json()
    assert after == before


def test_a_body_past_the_cap_is_413_before_it_is_read(api: Api) -> None:
    big = b'{"source": "' + b"x" * (100 * 1024) + b'"}'
    status, problem = api.call(
        "POST", "/api/v1/projects", content=big, headers={"content-type": "application/json"}
    )
    assert status == 413 and problem["code"] == "too_large"


def test_a_chunked_body_past_the_cap_is_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"source": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    status, _ = api.call(
        "POST", "/api/v1/projects", content=chunks(), headers={"content-type": "application/json"}
    )
    assert status == 413


def test_unparseable_json_is_a_problem(api: Api) -> None:
    status, problem = api.call(
        "POST", "/api/v1/projects", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert status == 422 and problem["detail"].startswith("the body is not valid JSON")


def test_unknown_route_and_wrong_method_are_problems(api: Api) -> None:
    assert api.call("GET", "/api/v1/nope")[1]["code"] == "not_found"
    status, problem = api.call("PUT", "/api/v1/whoami")
    assert status == 405 and problem["code"] == "method_not_allowed"


def test_every_route_documents_its_problems(tmp_path: Path) -> None:
    from shipyard.bootstrap import bootstrap

    rt = bootstrap(tmp_path / "data")
    try:
        doc = create_app(rt.services).openapi()
    finally:
        rt.close()
    for path, item in doc["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, op in item.items():
            for status in ("401", "403", "404", "409", "413", "422"):
                answer = op["responses"][status]
                assert list(answer["content"]) == ["application/problem+json"], (path, method)


@pytest.mark.parametrize(
    ("method", "url", "kw", "code", "exit_code"),
    [
        ("GET", "/api/v1/nope", {}, "not_found", 3),
        ("PUT", "/api/v1/whoami", {}, "method_not_allowed", 5),
        ("GET", f"/api/v1/deployments/{HUGE}", {}, "invalid", 5),
        ("POST", "/api/v1/projects", {"content": b"x" * (100 * 1024)}, "too_large", 5),
    ],
)
def test_the_cli_reads_every_problem_as_one_line_and_an_exit_code(
    api: Api, method: str, url: str, kw: dict[str, Any], code: str, exit_code: int
) -> None:
    answer = api.client.request(method, url, headers=api.admin, **kw)
    err = _problem(
        httpx.Response(answer.status_code, headers=dict(answer.headers), content=answer.content)
    )
    assert (err.code, err.exit_code) == (code, exit_code)
    assert err.message == answer.json()["detail"] and "\n" not in err.message
