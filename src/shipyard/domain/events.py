"""Events: the append-only record of every change, written in the same transaction as the change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    at: datetime
    actor: str
    kind: str  # "release.cut", "release.picked", "candidate.built", ...
    project: str | None
    subject: str  # what it is about: "1.4.0", "1.4.0-rc.2", "token 3"
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page of the audit log, newest first; ``older`` says whether a page below it exists.

    Knowing ``older`` lets a face offer "Older events" only when there are some, without a
    second query: the store reads one row more than it returns."""

    events: tuple[Event, ...]
    older: bool
