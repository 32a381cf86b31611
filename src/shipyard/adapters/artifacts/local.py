"""Content-addressed artifact store on the local disk: the same digest is the same bytes."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from shipyard.errors import AdapterError, ErrorCode, IntegrityError, InvalidError, NotFoundError
from shipyard.ports.artifacts import StoredArtifact

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


class LocalArtifactStore:
    """Files live at root/sha256/ab/<hex>, written atomically and made read-only."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _where(self, digest: str) -> Path:
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or len(hexd) != 64 or not all(c in "0123456789abcdef" for c in hexd):
            raise InvalidError(f"digest {digest!r} must look like sha256:<64 hex digits>")
        return self.root / "sha256" / hexd[:2] / hexd

    def _store(self, tmp: Path, digest: str, size: int) -> StoredArtifact:
        final = self._where(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            tmp.unlink()
        else:
            tmp.chmod(0o444)
            os.replace(tmp, final)
        return StoredArtifact(digest, size)

    def put_file(self, path: Path) -> StoredArtifact:
        h = hashlib.sha256()
        size = 0
        name = ""
        try:  # making the file is inside: a read-only store is an AdapterError, not a crash
            self.root.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
            with os.fdopen(fd, "wb") as out, path.open("rb") as src:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            if name:
                Path(name).unlink(missing_ok=True)
            if isinstance(exc, FileNotFoundError) and not path.exists():
                raise NotFoundError(f"cannot store {path}: no such file") from exc
            raise AdapterError(f"cannot store {path}: {exc}") from exc
        return self._store(Path(name), "sha256:" + h.hexdigest(), size)

    def put_bytes(self, data: bytes) -> StoredArtifact:
        name = ""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            if name:
                Path(name).unlink(missing_ok=True)
            raise AdapterError(f"cannot store {len(data)} bytes: {exc}") from exc
        return self._store(Path(name), "sha256:" + hashlib.sha256(data).hexdigest(), len(data))

    def path(self, digest: str) -> Path:
        where = self._where(digest)
        if not where.exists():
            raise NotFoundError(f"artifact {digest} is not in the artifact store")
        return where

    def open(self, digest: str) -> BinaryIO:
        return self.path(digest).open("rb")

    def exists(self, digest: str) -> bool:
        return self._where(digest).exists()

    def verify(self, digest: str) -> None:
        actual = sha256_file(self.path(digest))
        if actual != digest:
            raise IntegrityError(
                f"stored artifact {digest} was altered: its bytes hash to {actual}",
                code=ErrorCode.DIGEST_MISMATCH,
                details={"expected": digest, "actual": actual},
            )
