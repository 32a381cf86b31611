"""The audit chain: every audit row is sealed with an HMAC of its content and of the row before it.

A database writer without the key (a deployed app holding the database URL, an operator with
``psql``) can change, delete or add rows, but cannot compute the seals that would hide it: the
first row whose seal does not match names where the log was touched. One chain per project (and
one for project-less events), so writers of different projects never wait for each other; the
rows of a chain are ordered by their ``seq`` (1, 2, 3, ...) across every audit table.

Pure: the store reads the rows and the heads, this module says whether they hold.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

GENESIS = ""  # what the first row of a chain is chained to
NO_PROJECT = ""  # the chain of events that belong to no project


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in an audit record")
        return value.astimezone(UTC).isoformat()
    return value


def canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes a seal covers: sorted keys, no spaces, UTF-8, datetimes as ISO 8601 in UTC.

    Null fields are left out, so a nullable column added to an audit table later leaves the
    seals of older rows valid (setting a null field, or clearing a set one, still breaks one)."""
    plain = {k: _plain(v) for k, v in record.items() if v is not None}
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def seal(key: bytes, previous: str, record: Mapping[str, Any]) -> str:
    """HMAC-SHA256 over the previous row's seal and this row's canonical content."""
    return hmac.new(key, previous.encode() + b"\n" + canonical(record), hashlib.sha256).hexdigest()


class BreakKind(StrEnum):
    CHANGED = "changed"  # the content does not match its seal (an edit, or a forged row)
    MISSING = "missing"  # a position of the chain has no row (a delete)
    DUPLICATE = "duplicate"  # two rows claim one position (a forged insert)
    UNSEALED = "unsealed"  # a row carries no seal at all (inserted behind the server's back)
    HEAD = "head"  # the chain's head does not match its last row (rows cut off the end)
    ANCHOR = "anchor"  # the hash an operator anchored elsewhere is not in the log


@dataclass(frozen=True, slots=True)
class Entry:
    """One audit row as read back: which table, its id, its position and seal, its content."""

    table: str
    id: int
    chain: str | None
    seq: int | None
    hash: str | None
    record: Mapping[str, Any]  # every column but the seal, plus "table"


@dataclass(frozen=True, slots=True)
class Head:
    """The newest position of a chain and its seal: what an operator anchors elsewhere."""

    chain: str
    seq: int
    hash: str

    @property
    def project(self) -> str | None:
        return self.chain or None


@dataclass(frozen=True, slots=True)
class Break:
    """The first place a chain does not hold."""

    kind: BreakKind
    chain: str | None
    detail: str
    table: str | None = None
    id: int | None = None
    seq: int | None = None

    @property
    def message(self) -> str:
        where = f"{_NOUN.get(self.table or '', 'row')} {self.id}" if self.id is not None else ""
        project = f"project {self.chain}" if self.chain else "no project"
        at = f" (seq {self.seq})" if self.seq is not None else ""
        subject = f"{where}{at}, {project}" if where else f"the chain of {project}"
        return f"audit log broken at {subject}: {self.detail}"


_NOUN = {"events": "event", "rollout_records": "rollout record", "flag_changes": "flag change"}


@dataclass(frozen=True, slots=True)
class ChainCheck:
    chain: str
    length: int
    last: str  # the seal of the last row (GENESIS when empty)
    broken: Break | None
    anchored: bool  # the anchor asked for is the seal of one of its rows


def verify_chain(
    key: bytes,
    chain: str,
    entries: Iterable[Entry],
    head: Head | None,
    anchor: str | None = None,
) -> ChainCheck:
    """Walk one chain in ``seq`` order; stop at the first row that does not hold."""
    previous, expected, anchored = GENESIS, 1, False

    def broken(b: Break) -> ChainCheck:
        return ChainCheck(chain, expected - 1, previous, b, anchored)

    for e in entries:
        assert e.seq is not None and e.hash is not None, "unsealed rows are checked apart"
        if e.seq < expected:
            detail = f"a second row claims position {e.seq} (a row was added)"
            return broken(Break(BreakKind.DUPLICATE, chain, detail, e.table, e.id, e.seq))
        if e.seq > expected:
            gap = "row is" if e.seq == expected + 1 else f"{e.seq - expected} rows are"
            detail = f"position {expected} is missing: {gap} gone (deleted)"
            return broken(Break(BreakKind.MISSING, chain, detail, e.table, e.id, e.seq))
        if not hmac.compare_digest(seal(key, previous, e.record), e.hash):
            detail = "its content does not match its seal (changed or forged)"
            return broken(Break(BreakKind.CHANGED, chain, detail, e.table, e.id, e.seq))
        previous, expected = e.hash, expected + 1
        anchored = anchored or (anchor is not None and hmac.compare_digest(anchor, e.hash))
    length = expected - 1
    if head is None and length:
        return broken(Break(BreakKind.HEAD, chain, f"{length} rows but no chain head"))
    if head is not None and (head.seq != length or head.hash != previous):
        detail = (
            f"its head says {head.seq} rows ending in {head.hash[:12]}, "
            f"the log holds {length} (rows were cut off the end)"
        )
        return broken(Break(BreakKind.HEAD, chain, detail))
    return ChainCheck(chain, length, previous, None, anchored)


@dataclass(frozen=True, slots=True)
class AuditReport:
    """What a verification walked, and the first break it found (None: the log holds)."""

    checks: tuple[ChainCheck, ...]
    broken: Break | None

    @property
    def rows(self) -> int:
        return sum(c.length for c in self.checks)
