"""The audit chain's I/O: sealing rows at commit, reading chains back, the heads.

Audit rows (events, rollout decision records, flag changes) are not inserted when a use case
appends them but when its unit of work commits: then each chain's head is locked (a row lock on
PostgreSQL, the write lock on SQLite), the rows get their position and seal, and the head moves.
Taking the chain lock last, in chain order, and for the few statements before the commit keeps
the writers of one project serialized for as short as possible and never in a deadlock with the
row locks the use case took before. The seal itself is computed by ``shipyard.domain.audit``.
"""

from __future__ import annotations

import heapq
import json
import secrets
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, Connection, Table, insert, inspect, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from shipyard.domain.audit import (
    NO_PROJECT,
    AuditReport,
    Break,
    BreakKind,
    ChainCheck,
    Entry,
    Head,
    seal,
    verify_chain,
)
from shipyard.store.tables import AuditChainRow, Base, EventRow, FlagChangeRow, RolloutRecordRow

AUDIT_TABLES: tuple[Table, ...] = tuple(
    Base.metadata.tables[row.__tablename__] for row in (EventRow, RolloutRecordRow, FlagChangeRow)
)
_BY_NAME = {t.name: t for t in AUDIT_TABLES}
CHAINS: Table = Base.metadata.tables[AuditChainRow.__tablename__]

# A store opened without a key (unit tests, scripts) still seals, with a key of this process only;
# bootstrap always hands in the key file's key, so seals outlive the process.
_PROCESS_KEY = secrets.token_bytes(32)
KEY_INFO = "audit_key"


def key_of(session: Session) -> bytes:
    key = session.info.get(KEY_INFO)
    return key if isinstance(key, bytes) else _PROCESS_KEY


def _content(table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
    """What the seal covers: every column but the seal, JSON as it will read back, the table."""
    record: dict[str, Any] = {"table": table.name}
    for column in table.columns:
        if column.name == "chain_hash":
            continue
        value = values.get(column.name)
        if isinstance(column.type, JSON) and value is not None:
            value = json.loads(json.dumps(value))
        record[column.name] = value
    return record


class AuditTrail:
    """The audit rows one unit of work appended, sealed and inserted by ``seal`` at commit."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._pending: list[tuple[Table, str, dict[str, Any]]] = []

    def add(self, table: str, chain: str | None, values: dict[str, Any]) -> None:
        """Queue a row of audit ``table`` for ``chain`` (a project; None: project-less)."""
        self._pending.append((_BY_NAME[table], chain or NO_PROJECT, values))

    def discard(self) -> None:
        self._pending.clear()

    def seal(self) -> None:
        if not self._pending:
            return
        key = key_of(self._s)
        by_chain: dict[str, list[tuple[Table, dict[str, Any]]]] = {}
        for table, chain, values in self._pending:
            by_chain.setdefault(chain, []).append((table, values))
        for chain in sorted(by_chain):  # one lock order for every writer: no deadlock
            rows = by_chain[chain]
            seq, previous = self._lock_head(chain)
            counts = Counter(table for table, _ in rows)
            ids = {table: iter(self._next_ids(table, n)) for table, n in counts.items()}
            batches: dict[Table, list[dict[str, Any]]] = {}
            for table, values in rows:
                seq += 1
                row = {**values, "id": next(ids[table]), "chain": chain, "chain_seq": seq}
                previous = seal(key, previous, _content(table, row))
                batches.setdefault(table, []).append({**row, "chain_hash": previous})
            for table, batch in batches.items():
                self._s.execute(insert(table), batch)
            self._s.execute(
                update(CHAINS).where(CHAINS.c.chain == chain).values(seq=seq, head=previous)
            )
        self._pending.clear()

    def _lock_head(self, chain: str) -> tuple[int, str]:
        if self._s.get_bind().dialect.name == "postgresql":
            # one round trip: create the head, or row-lock it (a no-op update) and read it; a
            # second writer waits here, then reads the head the first one committed
            new = postgresql.insert(CHAINS).values(chain=chain, seq=0, head="")
            q = new.on_conflict_do_update(
                index_elements=["chain"], set_={"seq": CHAINS.c.seq}
            ).returning(CHAINS.c.seq, CHAINS.c.head)
            seq, head = self._s.execute(q).one()
            return int(seq), str(head)
        # SQLite: the first write takes the database's write lock until commit (REPLACE and
        # INSERT OR IGNORE are refused on this table by its guard, hence the NOT EXISTS)
        self._s.execute(
            text(
                "INSERT INTO audit_chains (chain, seq, head) SELECT :c, 0, '' "
                "WHERE NOT EXISTS (SELECT 1 FROM audit_chains WHERE chain = :c)"
            ),
            {"c": chain},
        )
        seq, head = self._s.execute(
            select(CHAINS.c.seq, CHAINS.c.head).where(CHAINS.c.chain == chain)
        ).one()
        return int(seq), str(head)

    def _next_ids(self, table: Table, n: int) -> list[int]:
        """``n`` ids for rows not inserted yet, so their seals cover them (no UPDATE later)."""
        if self._s.get_bind().dialect.name == "postgresql":
            q = text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)")
            return sorted(int(i) for i in self._s.scalars(q, {"t": table.name, "n": n}))
        # under the write lock taken by _lock_head, so no other writer takes the same ids
        top = int(self._s.scalar(text(f"SELECT coalesce(max(id), 0) FROM {table.name}")) or 0)
        return list(range(top + 1, top + n + 1))


# --- reading the chains back --------------------------------------------------------------------


def _entries(conn: Connection | Session, table: Table, chain: str) -> Iterator[Entry]:
    q = (
        select(table)
        .where(table.c.chain == chain, table.c.chain_seq.is_not(None))
        .where(table.c.chain_hash.is_not(None))
        .order_by(table.c.chain_seq)
        .execution_options(yield_per=500)
    )
    for row in conn.execute(q).mappings():
        yield Entry(
            table.name,
            int(row["id"]),
            chain,
            int(row["chain_seq"]),
            str(row["chain_hash"]),
            _content(table, dict(row)),
        )


def heads(conn: Connection | Session) -> list[Head]:
    rows = conn.execute(select(CHAINS).order_by(CHAINS.c.chain)).mappings()
    return [Head(str(r["chain"]), int(r["seq"]), str(r["head"])) for r in rows]


def chains(conn: Connection | Session) -> list[str]:
    """Every chain a head or a row names, sorted ("" first: the project-less events)."""
    found = {h.chain for h in heads(conn)}
    for table in AUDIT_TABLES:
        found.update(c for c in conn.scalars(select(table.c.chain).distinct()) if c is not None)
    return sorted(found)


def unsealed(conn: Connection | Session) -> Break | None:
    """The first row carrying no position or seal: nothing the server writes looks like that."""
    for table in AUDIT_TABLES:
        q = select(table.c.id, table.c.chain).where(
            (table.c.chain.is_(None)) | (table.c.chain_seq.is_(None)) | table.c.chain_hash.is_(None)
        )
        row = conn.execute(q.order_by(table.c.id).limit(1)).first()
        if row is not None:
            detail = "it carries no seal (inserted behind the server's back)"
            return Break(BreakKind.UNSEALED, row.chain, detail, table.name, int(row.id))
    return None


def verify(
    conn: Connection | Session,
    key: bytes,
    *,
    only: Sequence[str] | None = None,
    anchor: str | None = None,
) -> tuple[list[ChainCheck], Break | None]:
    """Check the chains (all, or ``only``) and that one of them reaches ``anchor``."""
    problem = unsealed(conn)
    if problem is not None:
        return [], problem
    by_chain = {h.chain: h for h in heads(conn)}
    checks: list[ChainCheck] = []
    for chain in only if only is not None else chains(conn):
        streams = [_entries(conn, table, chain) for table in AUDIT_TABLES]
        merged = heapq.merge(*streams, key=lambda e: e.seq or 0)
        check = verify_chain(key, chain, merged, by_chain.get(chain), anchor)
        checks.append(check)
        if check.broken is not None:
            return checks, check.broken
    if anchor is not None and not any(c.anchored for c in checks):
        detail = f"no row is sealed {anchor[:16]}...: the log was cut back or rewritten since"
        scope = only[0] if only else None
        return checks, Break(BreakKind.ANCHOR, scope, detail)
    return checks, None


def seal_existing(conn: Connection, key: bytes) -> None:
    """Seal the rows written before the chain existed (migration 0008), oldest first.

    Runs as the migration, with the guards dropped: rows get their chain, position and seal."""
    names = {
        "events": "SELECT e.id, coalesce(e.project, '') AS chain, e.at FROM events e",
        "rollout_records": (
            "SELECT r.id, p.name AS chain, r.at FROM rollout_records r "
            "JOIN rollouts o ON o.id = r.rollout_id JOIN projects p ON p.id = o.project_id"
        ),
        "flag_changes": (
            "SELECT c.id, p.name AS chain, c.at FROM flag_changes c JOIN flags f ON f.id = c.flag_id "
            "JOIN flag_environments v ON v.id = f.environment_id "
            "JOIN projects p ON p.id = v.project_id"
        ),
    }
    rows: list[tuple[str, str, int, int, str]] = []  # chain, at, table order, id, table
    for order, (name, q) in enumerate(names.items()):
        rows.extend(
            (str(r.chain), str(r.at), order, int(r.id), name) for r in conn.execute(text(q))
        )
    rows.sort()
    state: dict[str, tuple[int, str]] = {}
    # only the columns the tables have at this migration (a later one may add more, nullable)
    present = {
        t.name: [t.c[c["name"]] for c in inspect(conn).get_columns(t.name) if c["name"] in t.c]
        for t in AUDIT_TABLES
    }
    for chain, _at, _order, row_id, name in rows:
        table = _BY_NAME[name]
        seq, previous = state.get(chain, (0, ""))
        seq += 1
        conn.execute(update(table).where(table.c.id == row_id).values(chain=chain, chain_seq=seq))
        read = select(*present[name]).where(table.c.id == row_id)
        current = conn.execute(read).mappings().one()
        previous = seal(key, previous, _content(table, dict(current)))
        conn.execute(update(table).where(table.c.id == row_id).values(chain_hash=previous))
        state[chain] = (seq, previous)
    for chain, (seq, head) in state.items():
        conn.execute(insert(CHAINS).values(chain=chain, seq=seq, head=head))


class SqlAudit:
    """The audit log's chains as the port sees them, read with this store's key."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def heads(self) -> Sequence[Head]:
        return heads(self._s)

    def verify(self, *, chains: Sequence[str] | None, anchor: str | None) -> AuditReport:
        checks, broken = verify(self._s, key_of(self._s), only=chains, anchor=anchor)
        return AuditReport(tuple(checks), broken)
