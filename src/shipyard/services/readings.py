"""What an environment really runs: its target's live instances read against the records.

Status is a reading of reality: the candidate shown is the one whose instances answer (as the
target identified them), counted against how many the configuration asks for; the last
deployment row written is only what the records say, shown beside it when the two differ.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from shipyard.ports.targets import Identity, Instance


@dataclass(frozen=True)
class Reading:
    candidate: str | None  # what answers; the recorded one when nothing runs to ask
    identity: Identity | None  # how the target knows; None when no instance runs
    configured: int | None  # instances the target settings ask for (None: the target cannot count)
    running: int  # instances of ``candidate`` that run
    healthy: int  # ... and answer their health check
    others: tuple[str, ...]  # other candidates with instances there (a canary, leftovers)
    recorded: str | None  # what the last succeeded deployment says runs

    @property
    def summary(self) -> str:
        """``2 configured, 1 healthy``: the count a user compares, in one phrase."""
        healthy = f"{self.healthy} healthy"
        if self.configured is None:
            return healthy if self.running else "no instance reported"
        return f"{self.configured} configured, {healthy}"

    @property
    def verified(self) -> bool:
        return self.identity is Identity.VERIFIED

    @property
    def disagrees(self) -> bool:
        """The records name another candidate than the one that answers."""
        return self.identity is not None and self.candidate != self.recorded


def read(recorded: str | None, instances: Sequence[Instance], configured: int | None) -> Reading:
    """Choose the candidate to show: verified instances first, the recorded candidate among
    them if it is there (a canary beside it is listed in ``others``), else the one with most."""
    verified = [i for i in instances if i.identity is Identity.VERIFIED]
    pool = verified or list(instances)
    counts = Counter(i.candidate for i in pool)
    if not counts:
        return Reading(recorded, None, configured, 0, 0, (), recorded)
    shown = recorded if recorded in counts else max(sorted(counts), key=lambda c: counts[c])
    mine = [i for i in pool if i.candidate == shown]
    others = tuple(sorted({i.candidate for i in instances} - {shown}))
    return Reading(
        candidate=shown,
        identity=Identity.VERIFIED if verified else Identity.UNVERIFIED,
        configured=configured,
        running=len(mine),
        healthy=sum(1 for i in mine if i.healthy),
        others=others,
        recorded=recorded,
    )
