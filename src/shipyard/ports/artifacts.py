"""The artifact store port: content-addressed bytes, so the same artifact is provably the same everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol


@dataclass(frozen=True, slots=True)
class StoredArtifact:
    digest: str  # "sha256:<64 hex>"
    size: int


class ArtifactStore(Protocol):
    """Raises NotFoundError for an unknown digest, IntegrityError(DIGEST_MISMATCH) for altered bytes."""

    def put_file(self, path: Path) -> StoredArtifact: ...

    def put_bytes(self, data: bytes) -> StoredArtifact: ...

    def open(self, digest: str) -> BinaryIO: ...

    def exists(self, digest: str) -> bool: ...

    def path(self, digest: str) -> Path:
        """Where the bytes lie on this machine, for targets that deploy files; NotFoundError if absent."""

    def verify(self, digest: str) -> None:
        """Re-hash the stored bytes; IntegrityError(code=DIGEST_MISMATCH) if they changed."""
