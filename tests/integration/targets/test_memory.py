"""MemoryTarget's test knobs: what the use-case tests rely on to fake target faults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.adapters.targets.memory import MemoryTarget, address
from shipyard.errors import AdapterError, ErrorCode, IntegrityError
from shipyard.ports.targets import Instance
from tests.integration.targets.conftest import spec_for
from tests.support.sample_service import make_artifact


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    MemoryTarget.reset()
    yield
    MemoryTarget.reset()


def test_records_deploys_and_retires(tmp_path: Path) -> None:
    target = MemoryTarget()
    artifact = make_artifact(tmp_path / "a", "1.0.0")
    spec1 = spec_for(tmp_path / "s", "c1", artifact)
    spec2 = spec_for(tmp_path / "s", "c2", artifact, from_candidate="c1")

    target.deploy(spec1)
    target.deploy(spec2)
    target.retire(spec2, "c1")

    assert [s.candidate for s in MemoryTarget.deploys] == ["c1", "c2"]
    assert MemoryTarget.retired == [("shop", "staging", "c1")]
    assert target.running("shop", "staging", tmp_path) == [Instance("c2", address("c2"))]


def test_can_be_told_to_report_a_digest_mismatch_or_an_unhealthy_version(
    tmp_path: Path,
) -> None:
    target = MemoryTarget()
    artifact = make_artifact(tmp_path / "a", "1.0.0")
    target.deploy(spec_for(tmp_path / "s", "c1", artifact))
    MemoryTarget.mismatch.add("c2")
    MemoryTarget.unhealthy.add("c3")

    with pytest.raises(IntegrityError) as err:
        target.deploy(spec_for(tmp_path / "s", "c2", artifact, from_candidate="c1"))
    assert err.value.code is ErrorCode.DIGEST_MISMATCH
    assert err.value.details["name"] == "app.tar.gz"
    assert err.value.message.endswith("; c1 keeps serving")

    with pytest.raises(AdapterError, match="c3 did not become healthy; c1 keeps serving"):
        target.deploy(spec_for(tmp_path / "s", "c3", artifact, from_candidate="c1"))

    assert target.running("shop", "staging", tmp_path) == [Instance("c1", address("c1"))]
    assert len(MemoryTarget.deploys) == 3  # failed attempts are recorded too
