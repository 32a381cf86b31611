"""The audit API: heads to anchor elsewhere, and verification, for any token that may read."""

from __future__ import annotations

from fastapi.testclient import TestClient

from shipyard.api.app import create_app
from tests.integration.web.conftest import Shop


def test_heads_and_verification_as_a_viewer(shop: Shop) -> None:
    api = TestClient(create_app(shop.runtime.services))
    auth = {"Authorization": f"Bearer {shop.tokens['viewer']}"}
    assert api.get("/api/v1/audit/head").status_code == 401
    heads = api.get("/api/v1/audit/head", headers=auth).json()["heads"]
    assert [h["project"] for h in heads] == [None, "shop"]
    shop_head = api.get("/api/v1/audit/head/shop", headers=auth).json()
    assert shop_head == heads[1] and len(shop_head["hash"]) == 64 and shop_head["seq"] > 0
    assert api.get("/api/v1/audit/head/nope", headers=auth).status_code == 404

    verified = api.get("/api/v1/audit/verify", headers=auth, params={"anchor": shop_head["hash"]})
    assert verified.status_code == 200
    body = verified.json()
    assert body["ok"] and body["rows"] == sum(h["seq"] for h in heads)
    bad = api.get("/api/v1/audit/verify", headers=auth, params={"anchor": "abc"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    gone = api.get("/api/v1/audit/verify", headers=auth, params={"anchor": "0" * 64})
    assert gone.status_code == 409 and gone.json()["details"]["kind"] == "anchor"
