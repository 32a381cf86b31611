"""What only the disk store promises: layout, read-only files, no leftovers, bad digests refused."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from shipyard.adapters.artifacts.local import LocalArtifactStore
from shipyard.errors import InvalidError, NotFoundError


def test_layout_and_read_only(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "s")
    a = store.put_bytes(b"x")
    hexd = a.digest.split(":")[1]
    where = tmp_path / "s" / "sha256" / hexd[:2] / hexd
    assert store.path(a.digest) == where
    assert not where.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    store.put_bytes(b"x")  # storing again over a read-only file is fine
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["sha256"]  # no temp files left


def test_missing_source_file_leaves_nothing(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "s")
    with pytest.raises(NotFoundError):
        store.put_file(tmp_path / "nope.bin")
    assert list((tmp_path / "s").iterdir()) == []


@pytest.mark.parametrize("digest", ["md5:abc", "sha256:../../etc/passwd", "sha256:" + "g" * 64])
def test_malformed_digest_is_refused(tmp_path: Path, digest: str) -> None:
    with pytest.raises(InvalidError):
        LocalArtifactStore(tmp_path / "s").exists(digest)
