"""The SDK against a real `shipyard serve`: the SSE stream, and cohort metrics reporting.

- stream: the state arrives on connect, a `flag rollout` arrives as a push (the client's poll
  timer is far too slow to explain it), the client keeps serving the last state while the server
  is down, and it reconnects and gets the next change when the server is back.
- metrics: the endpoint counts a batch once (a retry with the same id adds nothing), refuses a
  bad batch whole with the field named, and wants a token; the SDK's reporter feeds it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from shipyard.sdk import FlagClient, HttpMetricsReporter, SseFlagSource
from tests.support.gitrepo import GitRepo
from tests.support.server import ServerProcess

P, ENV, KEY = "shop", "production", "new-checkout"
USERS = [{"userId": f"user-{i}"} for i in range(200)]
CONFIG = (
    "project: shop\nmainline: main\nversioning: {scheme: semver, initial: 1.0.0}\n"
    "environments:\n  - name: production\n"
)


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    repo = GitRepo(tmp_path / "shop")
    repo.commit("feat: shop", {"shipyard.yaml": CONFIG})
    s = ServerProcess(tmp_path / "data", database_url).start()
    try:
        assert s.cli("project", "add", str(repo.path)).code == 0
        created = s.cli("flag", "create", P, ENV, KEY, "--enabled", "--rollout", "0")
        assert created.code == 0, created
        yield s
    finally:
        s.stop()


def app_token(s: ServerProcess) -> str:
    made = s.cli("token", "create", "--user", "app", "--role", "app", "--json")
    assert made.code == 0, made
    token: str = made.json()["token"]
    return token


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def on(client: FlagClient) -> int:
    return sum(client.is_enabled(KEY, u) for u in USERS)


def test_stream_pushes_changes_and_survives_a_server_restart(server: ServerProcess) -> None:
    source = SseFlagSource(
        server.url, P, ENV, app_token(server), check_interval=0.1, min_backoff=0.1, max_backoff=0.5
    )
    client = FlagClient(source, refresh_interval=300)  # polling cannot explain what follows
    client.start()
    try:
        assert client.ready and on(client) == 0
        eventually(lambda: source.connected)
        assert server.cli("flag", "rollout", P, ENV, KEY, "100").code == 0
        eventually(lambda: on(client) == len(USERS))

        server.stop()
        eventually(lambda: not source.connected)
        assert client.refresh() is False and client.last_error is not None  # poll fails too
        assert on(client) == len(USERS)  # the last good state, offline

        server.start()
        eventually(lambda: source.connected, timeout=20)
        assert source.connects >= 2
        assert server.cli("flag", "kill", P, ENV, KEY).code == 0
        eventually(lambda: on(client) == 0)
    finally:
        client.close()


def _metrics(s: ServerProcess) -> str:
    return f"{s.url}/api/v1/projects/{P}/environments/{ENV}/flags/metrics"


def test_metrics_endpoint_counts_a_batch_once_and_refuses_bad_ones(server: ServerProcess) -> None:
    token = app_token(server)
    url = _metrics(server)
    auth = {"Authorization": f"Bearer {token}"}
    batch = {
        "batch_id": "b-000000001",
        "flags": {KEY: {"enabled": {"exposures": 7, "outcomes": {"error": 1}}}},
    }
    first = httpx.post(url, json=batch, headers=auth)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "batch_id": "b-000000001",
        "duplicate": False,
        "counted": 2,
        "ignored": [],
    }
    retry = httpx.post(url, json=batch, headers=auth)
    assert retry.json()["duplicate"] is True

    bad = {**batch, "batch_id": "b-000000002"}
    bad["flags"] = {KEY: {"enabled": {"exposures": -1}}}
    refused = httpx.post(url, json=bad, headers=auth)
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["details"]["field"] == f"flags.{KEY}.enabled.exposures"
    assert "must be an integer from 0 to" in problem["detail"]
    short = httpx.post(url, json={**batch, "batch_id": "x"}, headers=auth)
    assert short.status_code == 422 and short.json()["details"]["field"] == "batch_id"
    assert httpx.post(url, json=batch).status_code == 401
    made = server.cli("token", "create", "--user", "eve", "--role", "viewer", "--json")
    assert made.code == 0, made
    as_viewer = {"Authorization": f"Bearer {made.json()['token']}"}
    other = {**batch, "batch_id": "b-000000003"}
    assert httpx.post(url, json=other, headers=as_viewer).status_code == 403  # reads, never reports

    counts = httpx.get(url.removesuffix("/metrics") + f"/{KEY}/metrics", headers=auth).json()
    assert counts == {"enabled": {"exposures": 7, "outcome.error": 1}}  # nothing doubled


def test_sdk_reporter_sends_what_the_app_saw(server: ServerProcess) -> None:
    token = app_token(server)
    assert server.cli("flag", "rollout", P, ENV, KEY, "50").code == 0
    reporter = HttpMetricsReporter(server.url, P, ENV, token, app_name="web")
    source = SseFlagSource(server.url, P, ENV, token)
    client = FlagClient(source, refresh_interval=0, reporter=reporter, report_interval=0)
    client.refresh()
    n_on = on(client)
    for u in USERS:
        client.record_outcome(KEY, "error", u)
    assert client.report() is True
    assert client.report() is True  # nothing new: nothing sent
    client.close()
    counts = httpx.get(
        f"{server.url}/api/v1/projects/{P}/environments/{ENV}/flags/{KEY}/metrics",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert counts["enabled"]["exposures"] == n_on
    assert counts["disabled"]["exposures"] == len(USERS) - n_on
    assert counts["enabled"]["outcome.error"] + counts["disabled"]["outcome.error"] == len(USERS)
