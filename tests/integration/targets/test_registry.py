"""The registry: one target instance per kind, unknown kinds named with the known ones."""

from __future__ import annotations

import pytest

from shipyard.adapters.targets.command import CommandTarget
from shipyard.adapters.targets.local import LocalTarget
from shipyard.adapters.targets.memory import MemoryTarget
from shipyard.adapters.targets.registry import TARGETS, TargetRegistry, make_target
from shipyard.errors import ErrorCode, InvalidError


def test_unknown_kind_lists_the_known_kinds() -> None:
    registry = TargetRegistry()
    with pytest.raises(InvalidError) as err:
        registry("kubernetes")
    assert err.value.code is ErrorCode.INVALID
    assert err.value.message == "unknown target kind 'kubernetes'; known: command, local, memory"
    registry.close()


def test_one_instance_per_kind_and_close_stops_supervision() -> None:
    registry = TargetRegistry()
    local = registry("local")
    assert isinstance(local, LocalTarget) and registry("local") is local
    assert isinstance(registry("command"), CommandTarget)
    assert isinstance(registry("memory"), MemoryTarget)

    registry.close()

    assert not local._thread.is_alive()


def test_make_target_makes_a_new_target_of_a_known_kind() -> None:
    assert sorted(TARGETS) == ["command", "local", "memory"]
    first, second = make_target("memory"), make_target("memory")
    assert isinstance(first, MemoryTarget) and first is not second
    with pytest.raises(
        InvalidError, match=r"^unknown target kind 'x'; known: command, local, memory$"
    ):
        make_target("x")
