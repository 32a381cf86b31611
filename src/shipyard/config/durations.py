"""Durations as people write them in YAML: 90s, 2m, 1h30m, 3d (a bare number means seconds)."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> float:
    """Seconds; raises ValueError with the accepted shapes in the message."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 90s, 2m or 1h30m")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    text = str(value).strip().replace(" ", "")
    pos, total = 0, 0.0
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if not text or pos != len(text):
        raise ValueError(f"{value!r} is not a duration like 90s, 2m, 1h30m or 3d")
    return total
