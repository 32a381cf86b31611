"""Approving and rejecting from the dashboard, and the CSRF and role checks around it."""

from __future__ import annotations

from shipyard.adapters.targets.memory import MemoryTarget
from shipyard.domain.auth import SYSTEM, Role
from shipyard.domain.deployments import DeploymentState
from shipyard.services import deployments, events, tokens
from tests.integration.web.conftest import Shop, csrf_of, login


def state(shop: Shop) -> DeploymentState:
    d, _ = deployments.get_deployment(shop.runtime.services, SYSTEM, shop.waiting.id)
    return d.state


def test_an_approver_approves_through_the_form(shop: Shop) -> None:
    client = shop.client("approver")
    token = csrf_of(client, "/ui/projects/shop")
    done = client.post(
        f"/ui/deployments/{shop.waiting.id}/approve",
        data={"csrf": token, "comment": "lgtm", "next": "/ui/projects/shop"},
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/ui/projects/shop?notice=approved.{shop.waiting.id}"
    assert state(shop) is DeploymentState.RUNNING  # the approval met the rule: it starts
    shop.drain()
    assert MemoryTarget.live[("shop", "production")] == {shop.candidate}

    page = client.get(done.headers["location"])
    assert (
        f"You approved deployment {shop.waiting.id} ({shop.candidate} to production)" in page.text
    )
    assert "it is now succeeded" in page.text
    production = page.text.split('data-env="production" data-candidate=')[1]
    assert "live" in production.split("</td>")[0]
    [approved] = [
        e
        for e in events.list_events(shop.runtime.services, SYSTEM, project="shop")
        if e.kind == "deployment.approved"
    ]
    assert approved.actor == "bob" and approved.payload["comment"] == "lgtm"


def test_a_rejection_cancels_the_deployment(shop: Shop) -> None:
    client = shop.client("approver")
    done = client.post(
        f"/ui/deployments/{shop.waiting.id}/reject",
        data={"csrf": csrf_of(client), "comment": "not today"},
    )
    assert done.headers["location"] == (
        f"/ui/deployments/{shop.waiting.id}?notice=rejected.{shop.waiting.id}"
    )
    assert state(shop) is DeploymentState.CANCELED
    assert "it is now canceled" in client.get(done.headers["location"]).text


def test_a_form_without_the_csrf_token_changes_nothing(shop: Shop) -> None:
    client = shop.client("approver")
    url = f"/ui/deployments/{shop.waiting.id}/approve"
    for data in ({}, {"csrf": "0" * 64}, {"csrf": ""}):
        refused = client.post(url, data=data)
        assert refused.status_code == 403, data
        assert "security token is missing or stale" in refused.text
    other = shop.client("admin")  # another session's token is no good here
    refused = client.post(url, data={"csrf": csrf_of(other)})
    assert refused.status_code == 403
    assert state(shop) is DeploymentState.AWAITING_APPROVAL


def test_a_form_posted_from_another_origin_is_refused(shop: Shop) -> None:
    client = shop.client("approver")
    refused = client.post(
        f"/ui/deployments/{shop.waiting.id}/approve",
        data={"csrf": csrf_of(client)},
        headers={"Origin": "https://evil.example"},
    )
    assert refused.status_code == 403
    assert "another site" in refused.text
    same = client.post(
        f"/ui/deployments/{shop.waiting.id}/approve",
        data={"csrf": csrf_of(client)},
        headers={"Origin": "http://testserver"},
    )
    assert same.status_code == 303
    assert state(shop) is DeploymentState.RUNNING


def test_a_post_without_a_session_goes_to_the_login(shop: Shop) -> None:
    refused = shop.client().post(f"/ui/deployments/{shop.waiting.id}/approve", data={"csrf": "x"})
    assert (refused.status_code, refused.headers["location"]) == (303, "/ui/login")
    assert state(shop) is DeploymentState.AWAITING_APPROVAL


def test_a_viewer_who_posts_anyway_reads_why_not(shop: Shop) -> None:
    client = shop.client("viewer")
    refused = client.post(
        f"/ui/deployments/{shop.waiting.id}/approve", data={"csrf": csrf_of(client)}
    )
    assert refused.status_code == 403
    assert "vera (viewer) may not approve" in refused.text
    assert 'class="flash flash-error"' in refused.text and "vera" in refused.text  # still logged in
    assert state(shop) is DeploymentState.AWAITING_APPROVAL


def test_separation_of_duties_is_a_readable_403(shop: Shop) -> None:
    """The author of the commits a deployment brings in may not approve it."""
    _, author = tokens.create_token(
        shop.runtime.services, SYSTEM, user="Ada Lovelace", role=Role.APPROVER.value
    )
    client = shop.client()
    login(client, author)
    refused = client.post(
        f"/ui/deployments/{shop.waiting.id}/approve", data={"csrf": csrf_of(client)}
    )
    assert refused.status_code == 403
    assert "Ada Lovelace" in refused.text
    assert state(shop) is DeploymentState.AWAITING_APPROVAL


def test_deciding_twice_is_a_conflict(shop: Shop) -> None:
    client = shop.client("approver")
    token = csrf_of(client)
    url = f"/ui/deployments/{shop.waiting.id}/approve"
    assert client.post(url, data={"csrf": token}).status_code == 303
    again = client.post(url, data={"csrf": token})
    assert again.status_code == 409
    assert "only a waiting deployment takes decisions" in again.text


def test_a_role_the_rule_does_not_name_reads_why_not(shop: Shop) -> None:
    """An admin sees the buttons (the role may approve), but this rule names role:approver only."""
    client = shop.client("admin")
    refused = client.post(
        f"/ui/deployments/{shop.waiting.id}/approve", data={"csrf": csrf_of(client)}
    )
    assert refused.status_code == 403
    assert "root is not an approver for production" in refused.text
    assert state(shop) is DeploymentState.AWAITING_APPROVAL
