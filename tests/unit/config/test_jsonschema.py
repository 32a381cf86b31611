from __future__ import annotations

from pathlib import Path

from shipyard.config.jsonschema import json_schema, render

ROOT = Path(__file__).resolve().parents[3]


def test_published_schema_is_up_to_date() -> None:
    published = (ROOT / "docs" / "shipyard.schema.json").read_text()
    assert published == render(), (
        "docs/shipyard.schema.json is stale: "
        "run .venv/bin/python -m shipyard.config.jsonschema > docs/shipyard.schema.json"
    )


def test_schema_speaks_yaml_spellings() -> None:
    schema = json_schema()
    defs = schema["$defs"]
    assert schema["additionalProperties"] is False
    assert set(defs["RangeFreeze"]["properties"]) >= {"from", "to"}
    timeout = defs["Build"]["properties"]["timeout"]
    assert {"type": "number", "minimum": 0, "maximum": 366 * 86400} in timeout["anyOf"]
    assert defs["Target"]["additionalProperties"] is True
