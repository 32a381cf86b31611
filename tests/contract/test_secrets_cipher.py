"""What every secrets cipher promises (ports.secrets.SecretCipher), checked on each implementation.

There is one today, AES-256-GCM with its key in a file (``adapters/secrets/aesgcm.py``), and no
memory twin: the contract is written for the next cipher to pass (add it to ``KINDS``). A
``Keyring`` stands for "the server's key": two ciphers made from the same keyring are replicas.

The contract: what ``seal`` made, ``open`` with the same key and context turns back, whatever the
bytes; the sealed form shows nothing of the plaintext (not even whether two are equal); a
different context, a different key, or any changed, missing or extra byte is IntegrityError.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from shipyard.adapters.secrets.aesgcm import AesGcmCipher
from shipyard.errors import IntegrityError
from shipyard.ports.secrets import SecretCipher

CONTEXT = b"shop/production/DATABASE_URL"
SECRET = b"postgres://app:s3cret-pa55@127.0.0.1/shop"


@dataclass
class Keyring:
    """Ciphers of one kind: ``cipher("a")`` twice are the same key, ``cipher("b")`` another."""

    kind: str
    cipher: Callable[[str], SecretCipher]


def _aesgcm(root: Path) -> Callable[[str], SecretCipher]:
    return lambda name: AesGcmCipher.from_key_file(root / f"{name}.key")


MAKERS: dict[str, Callable[[Path], Callable[[str], SecretCipher]]] = {"aesgcm": _aesgcm}
KINDS = list(MAKERS)


@pytest.fixture(params=KINDS)
def keys(request: pytest.FixtureRequest, tmp_path: Path) -> Keyring:
    return Keyring(request.param, MAKERS[request.param](tmp_path))


@pytest.mark.parametrize(
    "plaintext",
    [SECRET, b"", b"\x00\xff" * 3, "pässwörd ✓".encode(), bytes(range(256)) * 400],
    ids=["url", "empty", "binary", "utf-8", "100 KiB"],
)
def test_open_turns_back_what_seal_made(keys: Keyring, plaintext: bytes) -> None:
    cipher = keys.cipher("a")

    assert cipher.open(cipher.seal(plaintext, CONTEXT), CONTEXT) == plaintext


def test_a_replica_with_the_same_key_opens_it(keys: Keyring) -> None:
    sealed = keys.cipher("a").seal(SECRET, CONTEXT)

    assert keys.cipher("a").open(sealed, CONTEXT) == SECRET


def test_the_sealed_form_shows_nothing_of_the_plaintext(keys: Keyring) -> None:
    cipher = keys.cipher("a")
    first, second = cipher.seal(SECRET, CONTEXT), cipher.seal(SECRET, CONTEXT)

    assert first != second  # equal secrets do not look equal in the database
    for sealed in (first, second):
        assert SECRET not in sealed and b"s3cret" not in sealed
        assert len(sealed) >= len(SECRET)


def test_another_context_does_not_open_it(keys: Keyring) -> None:
    """A row copied to another environment's (or another name's) place is refused."""
    cipher = keys.cipher("a")
    sealed = cipher.seal(SECRET, CONTEXT)

    for other in (b"shop/staging/DATABASE_URL", b"shop/production/API_KEY", b""):
        with pytest.raises(IntegrityError):
            cipher.open(sealed, other)


def test_another_key_does_not_open_it(keys: Keyring) -> None:
    sealed = keys.cipher("a").seal(SECRET, CONTEXT)

    with pytest.raises(IntegrityError):
        keys.cipher("b").open(sealed, CONTEXT)


def test_any_changed_byte_is_an_integrity_error(keys: Keyring) -> None:
    cipher = keys.cipher("a")
    sealed = cipher.seal(SECRET, CONTEXT)

    for index in range(len(sealed)):
        tampered = bytearray(sealed)
        tampered[index] ^= 0x01
        with pytest.raises(IntegrityError):
            cipher.open(bytes(tampered), CONTEXT)


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: b"",
        lambda s: s[:1],
        lambda s: s[:-1],
        lambda s: s + b"\x00",
        lambda s: s[: len(s) // 2],
        lambda s: b"\x00" * len(s),
        lambda s: SECRET,  # a plaintext stored by mistake
    ],
    ids=["empty", "one byte", "last byte cut", "a byte added", "half", "zeros", "plaintext"],
)
def test_missing_extra_or_foreign_bytes_are_integrity_errors(
    keys: Keyring, damage: Callable[[bytes], bytes]
) -> None:
    cipher = keys.cipher("a")
    sealed = cipher.seal(SECRET, CONTEXT)

    with pytest.raises(IntegrityError):
        cipher.open(damage(sealed), CONTEXT)
