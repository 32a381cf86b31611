"""Secrets sealed with AES-256-GCM, the key in a file outside the database.

The sealed form is ``b"\\x01" + nonce (12 bytes) + ciphertext and tag``; the associated data is
the secret's project, environment and name, so a row copied to another place does not open.
The key file holds 32 random bytes, base64, and is made on first start with mode 0600 (every
replica must be given the same file).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shipyard.errors import ConfigError, IntegrityError

VERSION = b"\x01"
NONCE = 12


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``; a new one is written there (0600, never replaced) when it is absent."""
    if not path.exists():
        # written whole beside it, then linked into place: a replica starting at the same
        # moment either links first or reads the finished file, never a half-written one
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secrets-key-")  # mode 0600
        except OSError as exc:
            raise ConfigError(str(path), None, "secrets key", f"cannot be made: {exc}") from None
        try:
            with os.fdopen(fd, "w") as out:
                out.write(base64.b64encode(AESGCM.generate_key(bit_length=256)).decode() + "\n")
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    try:
        key = base64.b64decode(path.read_text().strip(), validate=True)
    except (OSError, ValueError, binascii.Error) as exc:
        raise ConfigError(str(path), None, "secrets key", f"cannot be read: {exc}") from None
    if len(key) != 32:
        raise ConfigError(str(path), None, "secrets key", "must hold 32 bytes, base64")
    return key


class AesGcmCipher:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def from_key_file(cls, path: Path) -> AesGcmCipher:
        return cls(load_or_create_key(path))

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return VERSION + nonce + self._aead.encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        if sealed[:1] != VERSION or len(sealed) < 1 + NONCE + 16:
            raise IntegrityError("a stored secret is not in a format this server reads")
        try:
            return self._aead.decrypt(sealed[1 : 1 + NONCE], sealed[1 + NONCE :], context)
        except InvalidTag:
            raise IntegrityError(
                "a stored secret does not open with this server's key (another key file?)"
            ) from None
