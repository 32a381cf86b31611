"""Mapping an OpenFeature evaluation context onto Unleash's context shape.

``targeting_key`` becomes ``userId``; Unleash's standard fields stay top level; every other
attribute goes under ``properties`` as the string Unleash operators compare.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from openfeature.evaluation_context import EvaluationContext

from shipyard.domain.flags.context import STANDARD_FIELDS, as_text

__all__ = ["to_unleash_context"]


def _text(value: Any) -> str | None:
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    return as_text(value)


def to_unleash_context(ctx: EvaluationContext | None) -> dict[str, Any]:
    """Build the evaluator's context; ``currentTime`` datetimes are passed through as-is."""
    if ctx is None:
        return {}
    out: dict[str, Any] = {}
    props: dict[str, str] = {}
    for key, value in ctx.attributes.items():
        if key in STANDARD_FIELDS:
            field = value if isinstance(value, datetime) else _text(value)
            if field is not None:
                out[key] = field
        elif key == "properties" and isinstance(value, Mapping):
            for pkey, pvalue in value.items():
                text = _text(pvalue)
                if text is not None:
                    props[str(pkey)] = text
        else:
            text = _text(value)
            if text is not None:
                props[key] = text
    if ctx.targeting_key:
        out["userId"] = ctx.targeting_key
    if props:
        out["properties"] = props
    return out
