"""The dashboard in a real headless Chromium against a real `shipyard serve` and real processes.

One project: staging runs 1.0.0-rc.2 (a picked fix), production waits for one approval. A viewer
looks around (no buttons), an approver approves by clicking, and the viewer's open page follows
by itself. Screenshots land in test-artifacts/screenshots/ for the README.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support import browser as chromium
from tests.support import sample_service
from tests.support.browser import screenshot
from tests.support.server import ServerProcess, running, sample_repo, sample_yaml, until

CONFIG = sample_yaml(f"""\
environments:
  - name: staging
    target: {{kind: local, start: "{sample_service.START}", health: /healthz, health_timeout: 20}}
  - name: production
    target: {{kind: local, start: "{sample_service.START}", health: /healthz, health_timeout: 20}}
    requires: [staging]
    approval: {{required: 1, approvers: ["role:approver"]}}
""")


@dataclass
class Shop:
    server: ServerProcess
    tokens: dict[str, str]  # user -> token
    waiting: int  # the production deployment that waits for approval

    @property
    def url(self) -> str:
        return self.server.url


_until = partial(until, timeout=60.0)


def _built(api: httpx.Client, candidate: str) -> None:
    _until(api, f"/api/v1/projects/shop/candidates/{candidate}", lambda c: c["status"] == "built")


def _deploy(api: httpx.Client, candidate: str, environment: str) -> dict[str, Any]:
    body = {"candidate": candidate, "environment": environment}
    d: dict[str, Any] = api.post("/api/v1/projects/shop/deployments", json=body).json()
    if d["state"] != "running":
        return d
    return _until(api, f"/api/v1/deployments/{d['id']}", lambda x: x["state"] == "succeeded")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    base = tmp_path_factory.mktemp("dashboard")
    repo = sample_repo(base / "shop", CONFIG, "repo")
    with running(base / "data", {"staging": None, "production": None}) as server:
        admin = {"Authorization": f"Bearer {server.admin_token}"}
        with httpx.Client(base_url=server.url, headers=admin, timeout=60) as api:
            made = {
                user: api.post("/api/v1/tokens", json={"user": user, "role": role}).json()["token"]
                for user, role in (("vera", "viewer"), ("bob", "approver"))
            }
            api.post("/api/v1/projects", json={"source": str(repo.path)}).raise_for_status()
            api.post("/api/v1/projects/shop/releases", json={}).raise_for_status()
            _built(api, "1.0.0-rc.1")
            _deploy(api, "1.0.0-rc.1", "staging")
            fix = repo.commit("fix: tax (#2)", {"sample.json": json.dumps({"version": "fixed"})})
            api.post("/api/v1/projects/shop/releases/1.0.0/picks", json={"shas": [fix]})
            _built(api, "1.0.0-rc.2")
            _deploy(api, "1.0.0-rc.2", "staging")
            waiting = _deploy(api, "1.0.0-rc.2", "production")
            assert waiting["state"] == "awaiting_approval", waiting
        yield Shop(server, made, waiting["id"])


def log_in(page: Page, shop: Shop, user: str, start: str = "/ui") -> None:
    chromium.log_in(page, shop.url + start, shop.tokens[user], user)


def cell(page: Page, env: str, candidate: str) -> Any:
    return page.locator(f'td.cell[data-env="{env}"][data-candidate="{candidate}"]')


def test_a_bad_token_is_refused_on_the_login_form(page: Page, shop: Shop) -> None:
    page.goto(shop.url + "/")  # / → /ui → the login form
    expect(page).to_have_url(re.compile(r"/ui/login\?next=%2Fui$"))
    page.get_by_label("API token").fill("shy_this-is-not-a-token")
    screenshot(page, "login")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#flash .flash-error")).to_contain_text("unknown or revoked API token")
    expect(page.locator(".who")).to_have_count(0)


def test_viewer_sees_releases_and_the_matrix_and_follows_an_approval_live(
    browser: Browser, page: Page, shop: Shop
) -> None:
    log_in(page, shop, "vera")
    expect(page.locator("#flash")).to_contain_text("Logged in as vera (viewer)")
    page.get_by_role("link", name="shop", exact=True).click()
    expect(page.get_by_role("heading", name="shop", exact=True)).to_be_visible()

    # releases with their candidates, SHAs, build status and digests
    release = page.locator("#release-1\\.0\\.0")
    for rc in ("1.0.0-rc.1", "1.0.0-rc.2"):
        row = release.locator(f'tr.candidate[data-candidate="{rc}"]')
        expect(row.locator(".badge.build")).to_have_text("built")
        expect(row.locator("code.digest")).to_contain_text("sha256:")
    release.locator("details.changelog summary").click()
    expect(release.locator(".changelog-body")).to_contain_text("fix: tax (#2)")

    # the matrix: rc.2 is live in staging, waits in production; a viewer gets no buttons
    expect(cell(page, "staging", "1.0.0-rc.2").locator(".badge.live")).to_be_visible()
    waiting = cell(page, "production", "1.0.0-rc.2")
    expect(waiting).to_contain_text("awaiting approval")
    expect(waiting).to_contain_text("needs 1 more approval")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    screenshot(page, "project-viewer")

    # bob approves in his own browser; vera's open page follows without a reload
    bob_context = browser.new_context(viewport={"width": 1360, "height": 900})
    try:
        bob = bob_context.new_page()
        log_in(bob, shop, "bob", start="/ui/projects/shop")
        pending = cell(bob, "production", "1.0.0-rc.2")
        expect(
            pending.get_by_role("button", name=f"Approve deployment {shop.waiting}")
        ).to_be_visible()
        screenshot(bob, "project-approver-pending")
        pending.get_by_label(f"comment on deployment {shop.waiting}").fill("lgtm")
        pending.get_by_role("button", name=f"Approve deployment {shop.waiting}").click()
        expect(bob.locator("#flash .flash-ok")).to_contain_text(
            f"You approved deployment {shop.waiting} (1.0.0-rc.2 to production)"
        )
        live = cell(bob, "production", "1.0.0-rc.2")
        expect(live.locator(".badge.live")).to_be_visible(timeout=30_000)  # polled in place
        expect(live.locator(".badge.state")).to_have_text("succeeded")
        expect(bob).to_have_url(re.compile(r"/ui/projects/shop$"))  # swapped in place, no reload
        screenshot(bob, "project-approved")
    finally:
        bob_context.close()

    expect(cell(page, "production", "1.0.0-rc.2").locator(".badge.live")).to_be_visible(
        timeout=30_000
    )
    expect(page.locator("thead th.env[data-env=production]")).to_contain_text("runs 1.0.0-rc.2")


def test_history_detail_and_audit_log(page: Page, shop: Shop) -> None:
    log_in(page, shop, "vera", start="/ui/projects/shop/deployments")
    rows = page.locator("table.deployments tbody tr")
    expect(rows).to_have_count(3)  # rc.1 and rc.2 to staging, rc.2 to production
    expect(page.locator("svg.chart rect").first).to_be_visible()
    screenshot(page, "history")

    page.locator("#environment").select_option("production")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link", name=str(shop.waiting)).click()
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("production")
    expect(facts).to_contain_text("promote")
    expect(facts).to_contain_text("admin")  # who asked for it
    expect(page.locator("#deployment .badge.state")).to_have_text(
        re.compile("succeeded|awaiting approval")
    )
    screenshot(page, "deployment")

    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Kind").fill("deployment.approved")
    page.get_by_role("button", name="Filter").click()
    approvals = page.locator("table.events tbody tr")
    expect(approvals).to_have_count(1)
    expect(approvals.first).to_contain_text("bob")
    approvals.first.locator("summary").click()
    expect(approvals.first.locator("pre.payload")).to_contain_text('"comment": "lgtm"')
    screenshot(page, "audit-log")


def test_rollout_page_is_linked_from_the_matrix(page: Page, shop: Shop) -> None:
    log_in(page, shop, "vera", start="/ui/projects/shop")
    page.locator("th.env[data-env=production]").get_by_role("link", name="rollout").click()
    expect(page).to_have_url(re.compile(r"/ui/projects/shop/environments/production/rollout$"))
    expect(page.locator("#rollout")).to_contain_text("production")
