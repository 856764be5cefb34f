"""JSON: the result's document with its schema name and version (docs/json-schema.md).

Laid out for people and for line tools alike: objects indented, one table row (an object of
scalars) per line. That is also what keeps it fast: ``json.dumps(indent=2)`` runs Python's
pure-Python encoder over every value (0.1 s for a 1000-iteration breakdown), while each row
here goes through the C encoder in one call.
"""

from __future__ import annotations

import json
from typing import Any

from etprof.result import JSON_SCHEMA_VERSION, Result

_ROW = json.JSONEncoder(allow_nan=False, separators=(", ", ": "))


def document(result: Result) -> dict[str, object]:
    return {"schema": result.schema, "version": JSON_SCHEMA_VERSION, **result.to_dict()}


def render(result: Result, *, width: int = 100, table: str | None = None) -> str:
    return dumps(document(result)) + "\n"


def dumps(value: Any, indent: int = 0) -> str:
    """`value` as JSON: containers indented by two spaces per level, flat objects on one line."""
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(value, dict) and value and not _flat(value):
        items = (f"{inner}{_ROW.encode(str(k))}: {dumps(v, indent + 1)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, (list, tuple)) and value and not all(_scalar(v) for v in value):
        items = (f"{inner}{dumps(v, indent + 1)}" for v in value)
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return _ROW.encode(value)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _flat(value: dict[Any, Any]) -> bool:
    """An object of scalars (a table row): printed on one line."""
    return all(_scalar(v) for v in value.values())
