"""A pytest plugin: the in-memory target and router, which users are never offered, are made
available to this test suite only (registered kinds, and ``kind: memory`` accepted in the
test's own shipyard.yaml)."""

from __future__ import annotations

import pytest

from shipyard.adapters.routers.memory import MemoryRouter
from shipyard.adapters.routers.registry import register_router
from shipyard.adapters.targets.memory import MemoryTarget
from shipyard.adapters.targets.registry import register_target
from shipyard.config.kinds import accept_target_kind


def offer_test_adapters() -> None:
    register_target(MemoryTarget)
    register_router(MemoryRouter, MemoryRouter)  # it counts itself
    accept_target_kind(MemoryTarget.kind)


def pytest_configure(config: pytest.Config) -> None:
    offer_test_adapters()
