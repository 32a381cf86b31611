"""The dashboard shows what runs as the target reads it, and a veto wherever a candidate shows.

Regressions of issue 13: the matrix said `1/1 instances healthy` where 2 are configured, and a
vetoed candidate still read `built` with nothing said about an environment running it."""

from __future__ import annotations

import re

from shipyard.adapters.targets.memory import MemoryTarget
from shipyard.domain.auth import SYSTEM
from shipyard.services import deployments
from tests.integration.web.conftest import Shop


def _header(html: str, env: str) -> str:
    found = re.search(rf'<th scope="col" class="env" data-env="{env}">(.*?)</th>', html, re.S)
    assert found, html
    return found.group(1)


def test_matrix_counts_instances_against_the_configuration(shop: Shop) -> None:
    staging = _header(shop.client("viewer").get("/ui/projects/shop/matrix").text, "staging")
    assert "1 configured, 1 healthy" in staging
    assert "instances healthy" not in staging

    MemoryTarget.live[("shop", "staging")] = set()  # its only instance is gone
    staging = _header(shop.client("viewer").get("/ui/projects/shop/matrix").text, "staging")
    assert "1 configured, 0 healthy" in staging and "instances short" in staging


def test_vetoed_candidate_reads_vetoed_on_every_page_and_its_environment_says_so(
    shop: Shop,
) -> None:
    deployments.veto(shop.runtime.services, SYSTEM, "shop", shop.candidate, reason="leaks carts")
    viewer = shop.client("viewer")

    for url in (
        "/ui/projects/shop",
        "/ui/projects/shop/releases/1.0.0",
        f"/ui/projects/shop/candidates/{shop.candidate}",
    ):
        html = viewer.get(url).text
        assert 'class="badge build build-vetoed"' in html, url
        assert "build-built" not in html, url
        assert "leaks carts" in html, url
    staging = _header(viewer.get("/ui/projects/shop/matrix").text, "staging")
    assert f"runs vetoed {shop.candidate}" in staging
    assert "Not deployable" in viewer.get(f"/ui/projects/shop/candidates/{shop.candidate}").text
