"""Keys kept in files outside the database, so a database writer does not hold them."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from shipyard.errors import InvalidError

KEY_BYTES = 32


def load_or_create(path: Path) -> bytes:
    """The key in ``path``; on the first start, 32 random bytes written there with mode 0600.

    Every replica must read the same file: a key made per replica would seal rows another
    replica cannot verify."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes().strip()
        if len(key) < KEY_BYTES:
            raise InvalidError(
                f"the key file {path} holds {len(key)} bytes, fewer than {KEY_BYTES}"
            ) from None
        return key
    key = secrets.token_hex(KEY_BYTES).encode()
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    return key
