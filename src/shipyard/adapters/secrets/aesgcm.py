"""Secrets sealed with AES-256-GCM, the key in a file outside the database.

The sealed form is ``b"\\x01" + nonce (12 bytes) + ciphertext and tag``; the associated data is
the secret's project, environment and name, so a row copied to another place does not open.
The key file holds 32 random bytes, base64, and is made on first start with mode 0600 (every
replica must be given the same file).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shipyard.adapters import keyfile
from shipyard.errors import IntegrityError

VERSION = b"\x01"
NONCE = 12


def load_or_create_key(path: Path) -> bytes:
    """The secrets key in ``path`` (see ``adapters/keyfile.py``: made on first start, 0600)."""
    return keyfile.load_or_create(path, "secrets key")


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
