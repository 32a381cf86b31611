"""Durations as people write them in YAML: 90s, 2m, 1h30m, 3d (a bare number means seconds)."""

from __future__ import annotations

import math
import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_SECONDS = 366 * 86400
"""A year (a leap one): longer waits, timeouts or freezes are typos, and would overflow dates."""


def _bounded(seconds: float) -> float:
    if not math.isfinite(seconds):
        raise ValueError("a duration must be a finite number of seconds")
    if seconds > MAX_SECONDS:
        raise ValueError("a duration can be at most a year (366d)")
    return seconds


def parse_duration(value: object) -> float:
    """Seconds; raises ValueError with the accepted shapes in the message."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 90s, 2m or 1h30m")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return _bounded(float(value))
    text = str(value).strip().replace(" ", "")
    pos, total = 0, 0.0
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if not text or pos != len(text):
        raise ValueError(f"{value!r} is not a duration like 90s, 2m, 1h30m or 3d")
    return _bounded(total)
