"""The secrets port: seal a value for the database, open it again when a process starts.

The key never enters the database: a database reader (or a backup) sees only ciphertext, and
the ciphertext of one environment's secret does not open as another's (``context`` binds it).
"""

from __future__ import annotations

from typing import Protocol


class SecretCipher(Protocol):
    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        """Ciphertext that only ``open`` with the same key and ``context`` turns back."""

    def open(self, sealed: bytes, context: bytes) -> bytes:
        """The plaintext; IntegrityError when the bytes or the context do not match."""
