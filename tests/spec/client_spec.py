"""Fetch the Unleash client specification from the npm registry into ``.cache/`` (not the repo).

Pinned by version and by the registry's sha512 integrity, so CI on a fresh machine gets exactly
the files we pass against; an existing cache is reused. Uses ``npm pack`` when npm is on PATH and
falls back to downloading the tarball with httpx.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

SPEC_PACKAGE = "@unleash/client-specification"
SPEC_VERSION = "6.1.0"
SPEC_INTEGRITY = "sha512-1LG5IPFb9ocM5yDpPBjZdNDtO8fC7UeRY+8wQgwtmuTL1fM+ZL7qqK7otV1fUQsKpioYG5vxN4EN7I57quygkQ=="
TARBALL_URL = f"https://registry.npmjs.org/{SPEC_PACKAGE}/-/client-specification-{SPEC_VERSION}.tgz"
REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = Path(os.environ.get("SHIPYARD_SPEC_CACHE", REPO_ROOT / ".cache"))


@dataclass(frozen=True)
class SpecCase:
    """One client-spec test: ``expected`` is a bool (isEnabled) or a variant dict."""

    file: str
    description: str
    state: dict[str, Any]
    toggle: str
    context: dict[str, Any]
    expected: Any
    is_variant: bool

    @property
    def id(self) -> str:
        return f"{self.file}-{self.description}"


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _download(dest: Path) -> Path:
    tgz = dest / f"client-specification-{SPEC_VERSION}.tgz"
    if shutil.which("npm"):
        subprocess.run(
            ["npm", "pack", f"{SPEC_PACKAGE}@{SPEC_VERSION}", "--pack-destination", str(dest)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        packed = next(dest.glob("*.tgz"))
        packed.rename(tgz)
    else:
        response = httpx.get(TARBALL_URL, timeout=60, follow_redirects=True)
        response.raise_for_status()
        tgz.write_bytes(response.content)
    if _integrity(tgz.read_bytes()) != SPEC_INTEGRITY:
        raise RuntimeError(f"{SPEC_PACKAGE}@{SPEC_VERSION} tarball fails its pinned integrity")
    return tgz


def spec_dir() -> Path:
    """Directory holding ``index.json`` and the spec files, downloading them once if needed."""
    target = CACHE_DIR / f"unleash-client-specification-{SPEC_VERSION}"
    specs = target / "specifications"
    if (specs / "index.json").is_file():
        return specs
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as tmp:
        tgz = _download(Path(tmp))
        unpack = Path(tmp) / "unpacked"
        with tarfile.open(tgz) as tar:
            tar.extractall(unpack, filter="data")
        try:
            (unpack / "package").rename(target)
        except OSError:
            if not (specs / "index.json").is_file():  # lost a race with another process
                raise
    return specs


def load_cases() -> Iterator[SpecCase]:
    """Every test and variant test of every file listed in ``index.json``, in order."""
    specs = spec_dir()
    for name in json.loads((specs / "index.json").read_text(encoding="utf-8")):
        doc = json.loads((specs / name).read_text(encoding="utf-8"))
        stem = name.removesuffix(".json")
        for key, is_variant in (("tests", False), ("variantTests", True)):
            for test in doc.get(key) or ():
                yield SpecCase(
                    file=stem,
                    description=test["description"],
                    state=doc["state"],
                    toggle=test["toggleName"],
                    context=test.get("context") or {},
                    expected=test["expectedResult"],
                    is_variant=is_variant,
                )
