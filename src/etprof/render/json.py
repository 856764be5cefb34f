"""JSON: the result's document with its schema name and version (docs/json-schema.md)."""

from __future__ import annotations

import json

from etprof.result import JSON_SCHEMA_VERSION, Result


def document(result: Result) -> dict[str, object]:
    return {"schema": result.schema, "version": JSON_SCHEMA_VERSION, **result.to_dict()}


def render(result: Result, *, width: int = 100, table: str | None = None) -> str:
    return json.dumps(document(result), indent=2, allow_nan=False) + "\n"
