"""The rollout page in headless Chromium: real server, real HAProxy, real processes, real load.

A deployer opens the page of a canary that waits at a pause step, promotes it by clicking, and
watches the engine move the weight and draw the measurements without reloading the page; then a
candidate that fails half of its requests is rolled back by the analysis by itself, and the page,
still not reloaded, picks that new rollout up and shows rolled_back with the failing check's
evidence. Screenshots: test-artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support import browser as chromium
from tests.support import loadgen, sample_service
from tests.support.browser import screenshot
from tests.support.gitrepo import GitRepo
from tests.support.server import ServerProcess, free_port, running, sample_repo, sample_yaml
from tests.support.server import until as api_until

PORT = free_port()
PAGE = "/ui/projects/shop/environments/production/rollout"

CONFIG = sample_yaml(f"""\
environments:
  - name: production
    target: {{kind: local, start: "{sample_service.START}", health_timeout: 20}}
    router: {{port: {PORT}}}
    policy: canary
policies:
  canary:
    steps:
      - set_weight: 20
      - pause: {{}}
      - analysis: {{checks: [errors, latency], interval: 1s, duration: 4s}}
      - set_weight: 60
      - analysis: {{checks: [errors], interval: 1s, duration: 3s}}
  quick:
    steps:
      - set_weight: 40
      - analysis: {{checks: [errors], interval: 1s, duration: 6s}}
checks:
  errors: {{metric: error_ratio, judge: threshold, threshold: {{max: 0.05}}, failure_limit: 1}}
  latency: {{metric: latency_p95, judge: threshold, threshold: {{max: 0.5}}, failure_limit: 1}}
""")


@dataclass
class Shop:
    server: ServerProcess
    api: httpx.Client
    repo: GitRepo
    deployer: str  # ada's token


until = partial(api_until, timeout=40.0)


def release(shop: Shop, number: int, **knobs: Any) -> str:
    """Pick a commit of the sample service with ``knobs`` onto 1.0.0: rc.<number>, built."""
    sha = shop.repo.commit(
        f"fix: version {number} (#{number})", sample_service.repo_files(f"v{number}", **knobs)
    )
    shop.api.post(
        "/api/v1/projects/shop/releases/1.0.0/picks", json={"shas": [sha]}
    ).raise_for_status()
    candidate = f"1.0.0-rc.{number}"
    until(
        shop.api, f"/api/v1/projects/shop/candidates/{candidate}", lambda c: c["status"] == "built"
    )
    return candidate


def deploy(shop: Shop, candidate: str, policy: str | None = None) -> dict[str, Any]:
    body = {"candidate": candidate, "environment": "production", "policy": policy}
    d: dict[str, Any] = shop.api.post("/api/v1/projects/shop/deployments", json=body).json()
    assert d["state"] == "running", d
    return d


def rollout(shop: Shop) -> dict[str, Any]:
    got: dict[str, Any] = (
        shop.api.get(f"/api/v1{PAGE.removeprefix('/ui')}").raise_for_status().json()
    )
    return got


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    repo = sample_repo(tmp_path / "shop", CONFIG, "v1")
    lease = {"SHIPYARD_LEASE_SECONDS": "3"}
    with running(tmp_path / "data", {"production": PORT}, env=lease) as server:
        admin = {"Authorization": f"Bearer {server.admin_token}"}
        with httpx.Client(base_url=server.url, headers=admin, timeout=60) as api:
            ada = {"user": "ada", "role": "deployer"}
            token = api.post("/api/v1/tokens", json=ada).json()["token"]
            api.post("/api/v1/projects", json={"source": str(repo.path)}).raise_for_status()
            api.post("/api/v1/projects/shop/releases", json={}).raise_for_status()
            until(
                api, "/api/v1/projects/shop/candidates/1.0.0-rc.1", lambda c: c["status"] == "built"
            )
            first = deploy(Shop(server, api, repo, token), "1.0.0-rc.1")
            until(api, f"/api/v1/deployments/{first['id']}", lambda x: x["state"] == "succeeded")
            yield Shop(server, api, repo, token)


def log_in(page: Page, shop: Shop, start: str) -> None:
    chromium.log_in(page, shop.server.url + start, shop.deployer, "ada")


def test_watch_a_canary_progress_then_see_a_failing_one_rolled_back(page: Page, shop: Shop) -> None:
    load = loadgen.Load(f"http://127.0.0.1:{PORT}/", seconds=55, concurrency=3).start()
    try:
        good = release(shop, 2)
        d2 = deploy(shop, good)
        until(shop.api, f"/api/v1{PAGE.removeprefix('/ui')}", lambda r: r["phase"] == "paused")

        log_in(page, shop, PAGE)
        panel = page.locator("#rollout")
        expect(panel.locator("[data-phase]")).to_have_text("paused")
        expect(page.locator("#rollout-weight")).to_have_text("20%")
        expect(panel.locator("li.step-current .step-text")).to_have_text("pause until promoted")
        expect(panel.locator("li.step-done .step-text")).to_have_text(["set weight 20%"])
        page.evaluate("window.shipyardNoReload = 1")  # gone if the page reloads

        panel.get_by_role("button", name="Promote", exact=True).click()
        expect(page.locator("#flash")).to_contain_text(f"You promoted the rollout of {good}")
        expect(panel.locator("[data-phase]")).to_have_text("progressing")
        expect(panel.locator("li.step-current .step-text")).to_have_text(
            "analysis: errors, latency"
        )
        # the engine moves on by itself; the page follows through its partial refresh
        expect(page.locator("#rollout-weight")).to_have_text("60%", timeout=20_000)
        # two measurements of the second analysis: a line per version in both metric charts
        for chart in ("#chart-errors", "#chart-latency"):
            for version in ("stable", "canary"):
                expect(panel.locator(f"{chart} g.series.{version} polyline")).to_have_count(1)
        expect(panel.locator("#chart-weight polyline")).to_have_count(1)
        expect(panel.locator('li.decision[data-kind="analysis"]')).to_have_count(1)
        assert page.evaluate("window.shipyardNoReload") == 1
        screenshot(page, "rollout-progressing")

        expect(panel.locator("[data-phase]")).to_have_text("promoted", timeout=20_000)
        expect(panel.locator("li[data-state=done]")).to_have_count(5)
        expect(panel.locator("form")).to_have_count(0)  # nothing left to steer
        assert page.evaluate("window.shipyardNoReload") == 1
        until(shop.api, f"/api/v1/deployments/{d2['id']}", lambda x: x["state"] == "succeeded")

        bad = release(shop, 3, error_rate=0.5)
        d3 = deploy(shop, bad, policy="quick")
        # the deployment job starts rc.3 beside rc.2, then hands over to a new rollout
        until(
            shop.api, f"/api/v1{PAGE.removeprefix('/ui')}", lambda r: r["deployment_id"] == d3["id"]
        )
        # no reload: the finished page kept a slow refresh and swaps in the new rollout
        expect(panel.locator(f'a[href="/ui/deployments/{d3["id"]}"]')).to_have_count(
            1, timeout=20_000
        )
        expect(panel.locator("[data-phase]")).to_have_text("rolled back", timeout=20_000)
        assert page.evaluate("window.shipyardNoReload") == 1
        expect(page.locator("#flash .flash")).to_have_count(0)  # "you promoted" spoke of rc.2
        expect(page.locator("#rollout-weight")).to_have_text("0%")
        expect(panel.locator("li[data-state=failed] .step-text")).to_have_text("analysis: errors")
        expect(panel.locator("dd.outcome")).to_contain_text("analysis failed: errors:")
        aborting = panel.locator('li.decision[data-kind="aborting"]')
        expect(aborting.locator(".verdict-fail")).to_have_text("fail")
        expect(aborting.locator(".evidence-check")).to_contain_text("> max 0.05")
        expect(panel.locator(".legend .last-canary").first).to_be_visible()
        screenshot(page, "rollout-rolled-back")
    finally:
        result = load.stop()
    done = rollout(shop)
    assert (done["deployment_id"], done["phase"]) == (d3["id"], "rolled_back")
    assert result.proxy_failed == 0, result  # the moves dropped nothing
