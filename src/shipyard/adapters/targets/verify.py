"""The digest check every target runs before it touches anything."""

from __future__ import annotations

import hashlib
from pathlib import Path

from shipyard.errors import ErrorCode, IntegrityError, NotFoundError
from shipyard.ports.targets import DeploySpec

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Return "sha256:<hex>" of a file (here: adapters depend on ports, not on each other)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def verify_artifacts(spec: DeploySpec) -> None:
    """Same bytes as built, or nothing happens: the previous version keeps serving."""
    for a in spec.artifacts:
        if not a.path.exists():
            raise NotFoundError(f"artifact {a.name} of {spec.candidate} is missing at {a.path}")
        actual = sha256_file(a.path)
        if actual != a.digest:
            raise IntegrityError(
                f"artifact {a.name} of {spec.candidate}: expected {a.digest}, got {actual}; "
                f"{spec.from_candidate or 'the previous version'} keeps serving",
                code=ErrorCode.DIGEST_MISMATCH,
                details={"name": a.name, "expected": a.digest, "actual": actual},
            )
