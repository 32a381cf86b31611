"""One contract, every ArtifactStore: the memory store must behave like the disk one."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard.adapters.artifacts.local import LocalArtifactStore
from shipyard.adapters.artifacts.memory import MemoryArtifactStore
from shipyard.errors import ErrorCode, IntegrityError, NotFoundError
from shipyard.ports.artifacts import ArtifactStore


def _tamper_local(store: LocalArtifactStore, digest: str) -> None:
    where = store.path(digest)
    where.chmod(0o644)
    where.write_bytes(b"evil")


def _tamper_memory(store: MemoryArtifactStore, digest: str) -> None:
    store.blobs[digest] = b"evil"


Tamper = Callable[[ArtifactStore, str], None]


@pytest.fixture(params=["memory", "local"])
def store_and_tamper(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[ArtifactStore, Tamper]:
    if request.param == "local":
        return LocalArtifactStore(tmp_path / "store"), _tamper_local  # type: ignore[return-value]
    return MemoryArtifactStore(), _tamper_memory  # type: ignore[return-value]


@pytest.fixture
def store(store_and_tamper: tuple[ArtifactStore, Tamper]) -> ArtifactStore:
    return store_and_tamper[0]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_put_bytes_is_content_addressed(store: ArtifactStore) -> None:
    a = store.put_bytes(b"hello")
    assert a.digest == _digest(b"hello")
    assert a.size == 5
    assert store.put_bytes(b"hello") == a  # idempotent
    assert store.exists(a.digest)
    with store.open(a.digest) as fh:
        assert fh.read() == b"hello"
    assert store.path(a.digest).read_bytes() == b"hello"
    store.verify(a.digest)


def test_put_file_streams_the_same_digest(store: ArtifactStore, tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # > one read chunk
    src = tmp_path / "app.tar.gz"
    src.write_bytes(data)
    a = store.put_file(src)
    assert (a.digest, a.size) == (_digest(data), len(data))
    assert a == store.put_bytes(data)
    with store.open(a.digest) as fh:
        assert fh.read() == data


def test_unknown_digest_is_not_found(store: ArtifactStore) -> None:
    missing = _digest(b"never stored")
    assert not store.exists(missing)
    for call in (store.open, store.path, store.verify):
        with pytest.raises(NotFoundError):
            call(missing)


def test_tampering_is_detected(store_and_tamper: tuple[ArtifactStore, Tamper]) -> None:
    store, tamper = store_and_tamper
    a = store.put_bytes(b"release 1.0.0")
    tamper(store, a.digest)
    with pytest.raises(IntegrityError) as err:
        store.verify(a.digest)
    assert err.value.code is ErrorCode.DIGEST_MISMATCH
    assert err.value.details == {"expected": a.digest, "actual": _digest(b"evil")}


def test_empty_artifact(store: ArtifactStore) -> None:
    a = store.put_bytes(b"")
    assert a.size == 0
    store.verify(a.digest)
