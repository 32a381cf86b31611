"""PromQL query templates: fill ``{name}`` placeholders without letting a value change the query.

A placeholder is ``{`` + identifier + ``}`` (PromQL itself never writes that: a label matcher
always has an operator, ``{version="..."}``). Each value is substituted according to where the
placeholder stands:

* inside a ``"..."`` or ``'...'`` string: escaped for that string (backslash and quote), and, when
  the string is the operand of ``=~`` / ``!~``, regex metacharacters are escaped too, so a
  version like ``1.2.3`` matches itself only;
* inside a backtick raw string: a value holding a backtick is refused (nothing can escape it);
* outside a string: only a plain token (letters, digits, ``_ : .``) is accepted, e.g. a metric
  name or a number;
* control characters are refused everywhere.

Unknown placeholders are refused, so a typo never reaches Prometheus as a literal ``{verison}``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime

from shipyard.errors import InvalidError
from shipyard.ports.metrics import MetricQuery

__all__ = ["check_aware", "escape_regex", "finite", "render"]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BARE_TOKEN = re.compile(r"[A-Za-z0-9_:.]+")
_REGEX_META = frozenset("\\.+*?()|[]{}^$")


def escape_regex(value: str) -> str:
    """RE2 literal for ``value`` (Go's regexp.QuoteMeta)."""
    return "".join("\\" + c if c in _REGEX_META else c for c in value)


def _escape_string(value: str, quote: str) -> str:
    return value.replace("\\", "\\\\").replace(quote, "\\" + quote)


def _check_value(name: str, value: str) -> None:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidError(f"query variable {name!r} holds a control character; refused")


def _is_regex_operand(text: str, quote_at: int) -> bool:
    before = text[:quote_at].rstrip()
    return before.endswith(("=~", "!~"))


def _substitute(name: str, value: str, quote: str | None, regex: bool) -> str:
    _check_value(name, value)
    if quote is None:
        if not _BARE_TOKEN.fullmatch(value):
            raise InvalidError(
                f"query variable {name!r}={value!r} stands outside a string in the query and is "
                'not a plain token; quote the placeholder (e.g. version="{' + name + '}")'
            )
        return value
    if quote == "`":
        if "`" in value:
            raise InvalidError(f"query variable {name!r} holds a backtick inside a raw string")
        return escape_regex(value) if regex else value
    literal = escape_regex(value) if regex else value
    return _escape_string(literal, quote)


def render(query: MetricQuery | str, variables: Mapping[str, str] | None = None) -> str:
    """The expression with every placeholder filled; InvalidError if one cannot be filled safely."""
    if isinstance(query, MetricQuery):
        text, values = query.expression, dict(query.variables)
    else:
        text, values = query, {}
    values.update(variables or {})
    if not text.strip():
        raise InvalidError("empty metric query")
    out: list[str] = []
    i, n = 0, len(text)
    quote: str | None = None  # the quote of the string we are in
    regex = False
    while i < n:
        c = text[i]
        if c == "{":
            m = _PLACEHOLDER.match(text, i)
            if m:
                name = m.group(1)
                if name not in values:
                    known = ", ".join(sorted(values)) or "none"
                    raise InvalidError(
                        f"query uses {{{name}}} but no such variable (known: {known})"
                    )
                out.append(_substitute(name, str(values[name]), quote, regex))
                i = m.end()
                continue
        out.append(c)
        if quote is None:
            if c in "\"'`":
                quote, regex = c, _is_regex_operand(text, i)
            elif c == "#":  # a comment runs to the end of the line; keep it verbatim
                end = text.find("\n", i)
                end = n if end < 0 else end
                out.append(text[i + 1 : end])
                i = end
                continue
        elif c == "\\" and quote != "`" and i + 1 < n:
            out.append(text[i + 1])
            i += 2
            continue
        elif c == quote:
            quote = None
        i += 1
    if quote is not None:
        raise InvalidError(f"query has an unterminated {quote} string")
    return "".join(out)


def finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


def check_aware(at: datetime) -> None:
    """Every provider refuses a time without a timezone (Prometheus could not place it)."""
    if at.tzinfo is None:
        raise InvalidError("metric queries need a timezone-aware time")
