"""What each page shows, and what it offers to whom."""

from __future__ import annotations

import re

import pytest

from shipyard.api.errors import STATUS
from shipyard.domain.auth import SYSTEM
from shipyard.errors import (
    AdapterError,
    AuthError,
    ConflictError,
    ErrorCode,
    IntegrityError,
    InvalidError,
    NotFoundError,
    PermissionDenied,
    RefusedError,
    ShipyardError,
)
from shipyard.services import artifacts
from shipyard.web.pages import http_status
from tests.integration.web.conftest import Shop

APPROVE = re.compile(r'formaction="/ui/deployments/(\d+)/approve"')


def cell(html: str, env: str, candidate: str) -> str:
    """The matrix cell of one candidate in one environment."""
    found = re.search(
        rf'<td class="cell[^"]*" data-env="{env}" data-candidate="{re.escape(candidate)}">(.*?)</td>',
        html,
        re.S,
    )
    assert found, f"no cell {candidate} × {env}"
    return found.group(1)


def test_projects_list_links_each_project_with_its_latest_release(shop: Shop) -> None:
    page = shop.client("viewer").get("/ui")
    assert page.status_code == 200
    assert 'href="/ui/projects/shop"' in page.text
    assert "1.0.0" in page.text
    assert "state-awaiting_approval" in page.text  # one deployment waits in production


def test_project_page_shows_releases_candidates_digests_and_the_matrix(shop: Shop) -> None:
    page = shop.client("viewer").get("/ui/projects/shop")
    assert page.status_code == 200
    rc = artifacts.get_candidate(shop.runtime.services, SYSTEM, "shop", shop.candidate)
    [artifact] = rc.artifacts
    assert rc.sha[:12] in page.text
    assert artifact.digest in page.text and artifact.name in page.text
    assert "release/1.0.0" in page.text
    assert 'class="badge build build-built"' in page.text
    staging = cell(page.text, "staging", shop.candidate)
    assert "live" in staging and "succeeded" in staging
    production = cell(page.text, "production", shop.candidate)
    assert "awaiting approval" in production and "needs 1 more approval" in production
    assert 'href="/ui/projects/shop/environments/production/rollout"' in page.text
    assert 'data-src="/ui/projects/shop/releases/1.0.0/changelog"' in page.text


@pytest.mark.parametrize(
    ("role", "offered"),
    [("viewer", False), ("deployer", False), ("approver", True), ("admin", True)],
)
def test_only_approvers_and_admins_see_the_decision_buttons(
    shop: Shop, role: str, offered: bool
) -> None:
    client = shop.client(role)
    for url in (
        "/ui/projects/shop",
        "/ui/projects/shop/matrix",
        f"/ui/deployments/{shop.waiting.id}",
    ):
        html = client.get(url).text
        assert bool(APPROVE.search(html)) is offered, (role, url)
        assert ("Reject deployment" in html) is offered


def test_the_matrix_fragment_is_the_matrix_alone(shop: Shop) -> None:
    fragment = shop.client("viewer").get("/ui/projects/shop/matrix")
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<section class="panel" id="matrix"')
    assert "<html" not in fragment.text


def test_changelog_per_release(shop: Shop) -> None:
    client = shop.client("viewer")
    fragment = client.get("/ui/projects/shop/releases/1.0.0/changelog").text
    assert "feat: discounts (#2)" in fragment and "#2" in fragment
    assert "chore: set up shipyard" in fragment
    page = client.get("/ui/projects/shop/releases/1.0.0")
    assert page.status_code == 200 and "feat: discounts (#2)" in page.text


def test_candidate_page_shows_artifacts_build_log_and_deployments(shop: Shop) -> None:
    page = shop.client("viewer").get(f"/ui/projects/shop/candidates/{shop.candidate}")
    assert page.status_code == 200
    assert "sha256:" in page.text and "app.tar.gz" in page.text
    assert "Build log" in page.text
    assert "staging" in page.text and "production" in page.text


def test_history_and_deployment_detail(shop: Shop) -> None:
    client = shop.client("viewer")
    history = client.get("/ui/projects/shop/deployments")
    assert history.status_code == 200
    rows = re.findall(r'<tr data-deployment="(\d+)">', history.text)
    assert [int(r) for r in rows] == [shop.waiting.id, shop.waiting.id - 1]
    assert "<svg" in history.text and 'class="ok"' in history.text  # the chart has a success bar
    only_prod = client.get("/ui/projects/shop/deployments?environment=production")
    assert re.findall(r'<tr data-deployment="(\d+)">', only_prod.text) == [str(shop.waiting.id)]

    staged = client.get(f"/ui/deployments/{shop.waiting.id - 1}")
    assert staged.status_code == 200
    text = staged.text
    assert "succeeded" in text and "deploy" in text and "ada" in text and "staging" in text
    assert 'data-refresh="0"' in text  # finished: the page stops refreshing itself
    waiting = client.get(f"/ui/deployments/{shop.waiting.id}").text
    assert "needs 1 more approval" in waiting and 'data-refresh="2000"' in waiting


def test_audit_log_filters_by_project_and_kind(shop: Shop) -> None:
    client = shop.client("viewer")
    page = client.get("/ui/events")
    kinds = re.findall(r'data-kind="([^"]+)"', page.text)
    assert "release.cut" in kinds and "deployment.requested" in kinds and "token.created" in kinds
    ids = [int(i) for i in re.findall(r'data-event="(\d+)"', page.text)]
    assert ids == sorted(ids, reverse=True)  # newest first
    deploys = client.get("/ui/events?kind=deployment").text
    only = set(re.findall(r'data-kind="([^"]+)"', deploys))
    assert only and all(k.startswith("deployment.") for k in only)
    exact = set(re.findall(r'data-kind="([^"]+)"', client.get("/ui/events?kind=release.cut").text))
    assert exact == {"release.cut"}
    in_shop = set(re.findall(r'data-kind="([^"]+)"', client.get("/ui/events?project=shop").text))
    assert "token.created" not in in_shop and "release.cut" in in_shop
    assert client.get("/ui/events?project=nope").status_code == 404
    offered = re.findall(r'<option value="([^"]+)">', page.text)
    assert "release.cut" in offered and offered.index("release.cut") > offered.index(
        "project.added"
    )


def test_audit_log_pages_back_through_older_events(shop: Shop) -> None:
    client = shop.client("viewer")
    first = client.get("/ui/events?limit=3").text
    newest = [int(i) for i in re.findall(r'data-event="(\d+)"', first)]
    assert len(newest) == 3
    older = re.search(r'href="(/ui/events\?before=(\d+)&amp;limit=3)"', first)
    assert older and int(older.group(2)) == newest[-1]
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert [int(i) for i in re.findall(r'data-event="(\d+)"', second)] == [
        newest[-1] - 1,
        newest[-1] - 2,
        newest[-1] - 3,
    ]


def test_rollout_page_says_when_no_rollout_ran(shop: Shop) -> None:
    client = shop.client("viewer")
    page = client.get("/ui/projects/shop/environments/staging/rollout")
    assert page.status_code == 200
    assert "No rollout in staging" in page.text and shop.candidate in page.text
    assert client.get("/ui/projects/shop/environments/moon/rollout").status_code == 404


def test_service_errors_render_as_pages_with_the_api_status(shop: Shop) -> None:
    client = shop.client("viewer")
    missing = client.get("/ui/projects/nope")
    assert missing.status_code == 404
    assert "project &#39;nope&#39; not found" in missing.text
    assert "shipyard project list" in missing.text  # the hint
    assert client.get("/ui/deployments/999").status_code == 404
    assert client.get("/ui/projects/shop/releases/9.9.9").status_code == 404
    assert client.get("/ui/projects/shop/candidates/9.9.9-rc.1").status_code == 404


_CLASS_OF: dict[ErrorCode, type[ShipyardError]] = {
    ErrorCode.NOT_FOUND: NotFoundError,
    ErrorCode.UNKNOWN_SHA: NotFoundError,
    ErrorCode.CONFLICT: ConflictError,
    ErrorCode.VERSION_EXISTS: ConflictError,
    ErrorCode.PICK_CONFLICT: ConflictError,
    ErrorCode.ALREADY_PICKED: ConflictError,
    ErrorCode.LEASE_LOST: ConflictError,
    ErrorCode.INVALID: InvalidError,
    ErrorCode.CONFIG_INVALID: InvalidError,
    ErrorCode.REFUSED: RefusedError,
    ErrorCode.NOT_ON_MAINLINE: RefusedError,
    ErrorCode.MISSING_PICK: RefusedError,
    ErrorCode.GATE_CLOSED: RefusedError,
    ErrorCode.FROZEN: RefusedError,
    ErrorCode.SEPARATION_OF_DUTIES: RefusedError,
    ErrorCode.VETOED: RefusedError,
    ErrorCode.INVALID_TRANSITION: RefusedError,
    ErrorCode.BUILD_FAILED: RefusedError,
    ErrorCode.PERMISSION_DENIED: PermissionDenied,
    ErrorCode.UNAUTHENTICATED: AuthError,
    ErrorCode.INTEGRITY: IntegrityError,
    ErrorCode.DIGEST_MISMATCH: IntegrityError,
    ErrorCode.ADAPTER: AdapterError,
    ErrorCode.DEPLOYMENT_FAILED: RefusedError,
    ErrorCode.ROLLED_BACK: RefusedError,
}


@pytest.mark.parametrize("code", list(ErrorCode))
def test_pages_give_every_error_the_status_the_api_gives_it(code: ErrorCode) -> None:
    exc = _CLASS_OF[code]("x", code=code)
    assert http_status(exc) == STATUS[code]
