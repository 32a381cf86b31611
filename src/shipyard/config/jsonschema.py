"""The JSON Schema of shipyard.yaml, for editors and CI.

Regenerate the published copy with ``python -m shipyard.config.jsonschema > docs/shipyard.schema.json``;
a unit test fails when the two drift apart.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from shipyard.config.schema import ProjectConfig

SCHEMA_ID = "https://shipyard.dev/schemas/shipyard.schema.json"


def json_schema() -> dict[str, Any]:
    schema = ProjectConfig.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "shipyard.yaml",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def render() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
