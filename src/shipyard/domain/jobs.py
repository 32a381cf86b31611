"""How often a failing job is tried again, and when it is given up (dead).

A job that raises is tried again after an exponential backoff; after ``max_attempts`` tries it
is dead, so a poison job (one that fails the same way every time) cannot wedge its environment
or re-run its build forever."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_BACKOFF_S = 2.0
MAX_BACKOFF_S = 300.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_s: float = DEFAULT_BACKOFF_S  # before the 2nd try; doubled before each further one
    max_backoff_s: float = MAX_BACKOFF_S

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or not 0 <= self.backoff_s <= self.max_backoff_s:
            raise ValueError("a retry policy needs max_attempts >= 1 and 0 <= backoff <= max")

    def delay_s(self, attempts: int) -> float:
        """The wait after the ``attempts``-th failed try: backoff, 2x, 4x... up to the max."""
        return min(self.max_backoff_s, self.backoff_s * 2.0 ** min(max(attempts - 1, 0), 32))

    def next_try(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after ``attempts`` failed tries; None: the job is dead."""
        if attempts >= self.max_attempts:
            return None
        return now + timedelta(seconds=self.delay_s(attempts))


def dead_message(attempts: int, error: str) -> str:
    """What status, history and the dashboard show for a job given up."""
    tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
    return f"gave up after {tries}: {error}"
