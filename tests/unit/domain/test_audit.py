"""The chain's pure rules: what a seal covers, and the first row a walk finds broken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from shipyard.domain.audit import GENESIS, BreakKind, Entry, Head, canonical, seal, verify_chain

KEY = b"k" * 32
T = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _chain(n: int, key: bytes = KEY) -> list[Entry]:
    out, previous = [], GENESIS
    for i in range(1, n + 1):
        record = {"table": "events", "id": i, "chain": "shop", "chain_seq": i, "actor": "ada"}
        previous = seal(key, previous, record)
        out.append(Entry("events", i, "shop", i, previous, record))
    return out


def test_canonical_content_ignores_key_order_and_the_datetimes_zone() -> None:
    east = T.astimezone(timezone(timedelta(hours=9)))
    assert canonical({"b": 1, "a": T}) == canonical({"a": east, "b": 1})
    assert canonical({"a": "é"}) == '{"a":"é"}'.encode()


def test_a_seal_covers_the_key_the_previous_seal_and_the_content() -> None:
    base = seal(KEY, "p", {"a": 1})
    assert base != seal(b"x" * 32, "p", {"a": 1})
    assert base != seal(KEY, "q", {"a": 1})
    assert base != seal(KEY, "p", {"a": 2})


def test_an_intact_chain_ends_at_its_head_and_reaches_its_anchor() -> None:
    rows = _chain(3)
    check = verify_chain(KEY, "shop", rows, Head("shop", 3, rows[-1].hash or ""), rows[1].hash)
    assert check.broken is None and check.length == 3 and check.anchored


def test_each_kind_of_tampering_is_named_at_the_first_row_it_breaks() -> None:
    rows = _chain(4)
    head = Head("shop", 4, rows[-1].hash or "")
    edited = Entry("events", 2, "shop", 2, rows[1].hash, {**rows[1].record, "actor": "eve"})
    cases = {
        BreakKind.CHANGED: [rows[0], edited, *rows[2:]],
        BreakKind.MISSING: [rows[0], *rows[2:]],
        BreakKind.DUPLICATE: [rows[0], rows[1], rows[1], *rows[2:]],
        BreakKind.HEAD: rows[:3],
    }
    for kind, entries in cases.items():
        broken = verify_chain(KEY, "shop", entries, head).broken
        assert broken is not None and broken.kind is kind, kind
    assert verify_chain(b"x" * 32, "shop", rows, head).broken is not None  # another key
