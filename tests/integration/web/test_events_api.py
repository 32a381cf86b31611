"""``GET /api/v1/events`` (what ``shipyard events`` calls): kind and before next to after.

It lives beside the dashboard tests for their running example; the page and the API read the
same service, so they must agree on what a filter matches.
"""

from __future__ import annotations

from typing import Any

from tests.integration.web.conftest import Shop


def _get(shop: Shop, **params: Any) -> Any:
    client = shop.client()
    answer = client.get(
        "/api/v1/events",
        params=params,
        headers={"Authorization": f"Bearer {shop.tokens['viewer']}"},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_without_new_parameters_it_reads_forward_as_before(shop: Shop) -> None:
    ids = [e["id"] for e in _get(shop, limit=5)]
    assert ids == sorted(ids) and ids[0] == 1
    after = [e["id"] for e in _get(shop, limit=2, after=ids[1])]
    assert after == ids[2:4]


def test_kind_and_before_page_back_newest_first(shop: Shop) -> None:
    deploys = _get(shop, kind="deployment", newest="true", limit=1000)
    assert deploys and all(e["kind"].startswith("deployment.") for e in deploys)
    ids = [e["id"] for e in deploys]
    assert ids == sorted(ids, reverse=True)
    older = _get(shop, kind="deployment", before=ids[0], limit=2)
    assert [e["id"] for e in older] == ids[1:3]
    forward = [e["id"] for e in _get(shop, kind="deployment", limit=1000)]
    assert forward == sorted(ids)
    assert {e["project"] for e in _get(shop, project="shop", newest="true")} == {"shop"}


def test_after_and_before_together_are_refused(shop: Shop) -> None:
    client = shop.client()
    answer = client.get(
        "/api/v1/events",
        params={"after": 1, "before": 5},
        headers={"Authorization": f"Bearer {shop.tokens['viewer']}"},
    )
    assert answer.status_code == 422 and "either after" in answer.text
    too_many = client.get(
        "/api/v1/events",
        params={"limit": 1001},
        headers={"Authorization": f"Bearer {shop.tokens['viewer']}"},
    )
    assert too_many.status_code == 422
