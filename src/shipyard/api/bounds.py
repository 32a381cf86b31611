"""Bounds on what a request may carry: lengths, integer ranges, nesting, and no NUL bytes.

These are the API's own limits (the services keep their signatures): a value past them is a
422 naming the field, before any service or database sees it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from pydantic import AfterValidator, Field

from shipyard.errors import InvalidError

MAX_ID = 2**31 - 1
"""The largest id the tables hold: ids are INTEGER columns, 32-bit on PostgreSQL."""
MAX_OFFSET = 2**63 - 1
"""The largest file offset (a build log's ``offset``) and JSON integer we accept."""
MAX_NAME = 200
"""Names, keys, versions, SHAs, kinds, roles: a few dozen characters in practice."""
MAX_TEXT = 4096
"""Reasons, comments, descriptions: a paragraph, not a document."""
MAX_SOURCE = 4096
MAX_ITEMS = 100
"""Lists in a request (picks, segments)."""
MAX_DEPTH = 32
"""Nesting of free-form JSON (flag definitions, segments, metric counts)."""


def refuse_nul(value: Any) -> Any:
    """Every string in ``value`` (keys included), walked without recursion; nested at most
    ``MAX_DEPTH``. NUL bytes are refused: PostgreSQL cannot store them and no name needs one."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, str):
            if "\x00" in node:
                raise ValueError("must not contain NUL (\\u0000) bytes")
        elif isinstance(node, dict):
            for k, v in node.items():
                stack.append((k, depth + 1))
                stack.append((v, depth + 1))
        elif isinstance(node, list | tuple):
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, int) and not isinstance(node, bool) and abs(node) > MAX_OFFSET:
            raise ValueError(f"{node} is out of range (at most {MAX_OFFSET})")
    return value


Clean = AfterValidator(refuse_nul)
Name = Annotated[str, Field(max_length=MAX_NAME), Clean]
Text = Annotated[str, Field(max_length=MAX_TEXT), Clean]
Source = Annotated[str, Field(max_length=MAX_SOURCE), Clean]
Json = Annotated[dict[str, Any], Clean]

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


def clean_url(request: Request) -> None:
    """Path and query values: no NUL bytes (a router dependency of every API route)."""
    for where, values in (("path", request.path_params), ("query", request.query_params)):
        for name, value in values.items():
            if isinstance(value, str) and "\x00" in value:
                raise InvalidError(f"{name} ({where}): must not contain NUL (\\u0000) bytes")
