"""Time as a port, so rules and tests never read the wall clock themselves."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware UTC datetime."""

    def sleep(self, seconds: float) -> None:
        """Wait (a test clock just moves on)."""
