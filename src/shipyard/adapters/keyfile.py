"""Keys kept in files outside the database, so a database writer does not hold them.

One mechanism for every key the server keeps (the audit log's seal, the secrets' cipher): 32
random bytes, base64 in a file of mode 0600, made on the first start when absent and never
replaced. Every replica must be given the same file."""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from shipyard.errors import ConfigError

KEY_BYTES = 32


def load_or_create(path: Path, what: str = "key") -> bytes:
    """The key in ``path``; on the first start, a new one written there with mode 0600.

    It is written whole beside the file, then linked into place: a replica starting at the
    same moment either links first or reads the finished file, never a half-written one."""
    if not path.exists():
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")  # mode 0600
        except OSError as exc:
            raise ConfigError(str(path), None, what, f"cannot be made: {exc}") from None
        try:
            with os.fdopen(fd, "w") as out:
                out.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode() + "\n")
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    try:
        key = base64.b64decode(path.read_text().strip(), validate=True)
    except (OSError, ValueError, binascii.Error) as exc:
        raise ConfigError(str(path), None, what, f"cannot be read: {exc}") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(str(path), None, what, f"must hold {KEY_BYTES} bytes, base64")
    return key
