"""An in-memory artifact store with the same contract as the local one (for unit tests)."""

from __future__ import annotations

import hashlib
import io
import tempfile
from pathlib import Path
from typing import BinaryIO

from shipyard.errors import ErrorCode, IntegrityError, NotFoundError
from shipyard.ports.artifacts import StoredArtifact


class MemoryArtifactStore:
    """Bytes in a dict; ``path`` spills to a temp dir only when a test needs a real file."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self._spill_dir: Path | None = None

    @property
    def _spill(self) -> Path:
        if self._spill_dir is None:
            self._spill_dir = Path(tempfile.mkdtemp(prefix="shipyard-memstore-"))
        return self._spill_dir

    def put_bytes(self, data: bytes) -> StoredArtifact:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blobs.setdefault(digest, data)
        return StoredArtifact(digest, len(data))

    def put_file(self, path: Path) -> StoredArtifact:
        return self.put_bytes(path.read_bytes())

    def _get(self, digest: str) -> bytes:
        if digest not in self.blobs:
            raise NotFoundError(f"artifact {digest} is not in the artifact store")
        return self.blobs[digest]

    def open(self, digest: str) -> BinaryIO:
        return io.BytesIO(self._get(digest))

    def path(self, digest: str) -> Path:
        where = self._spill / digest.replace(":", "_")
        where.write_bytes(self._get(digest))
        return where

    def exists(self, digest: str) -> bool:
        return digest in self.blobs

    def verify(self, digest: str) -> None:
        actual = "sha256:" + hashlib.sha256(self._get(digest)).hexdigest()
        if actual != digest:
            raise IntegrityError(
                f"stored artifact {digest} was altered: its bytes hash to {actual}",
                code=ErrorCode.DIGEST_MISMATCH,
                details={"expected": digest, "actual": actual},
            )
