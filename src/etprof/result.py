"""What every analysis returns: named tables, plain-language notes, and a JSON-able dict.

Renderers only format a Result; they never compute. JSON documents carry a schema name and
version (see docs/json-schema.md). A result may also define ``headline() -> str``, a one-line
answer (e.g. a diff's verdict) that the table and markdown renderers print above the tables.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pandas costs ~0.5 s to import: `etprof --help` must not pay for it
    import pandas as pd

JSON_SCHEMA_VERSION = 1


class Result(Protocol):
    """An analysis result that any renderer can format."""

    @property
    def schema(self) -> str:
        """Name of the JSON document type, e.g. "etprof.breakdown"."""
        ...

    def tables(self) -> dict[str, pd.DataFrame]:
        """Named tables in display order; the first is the one CSV writes by default."""
        ...

    def notes(self) -> list[str]:
        """Plain-language lines shown under the tables (warnings, explanations)."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The JSON document body (without schema/version, which the renderer adds)."""
        ...


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-safe dicts (NaN becomes null, numpy scalars become Python)."""
    out: list[dict[str, Any]] = []
    for row in frame.to_dict(orient="records"):
        out.append({str(k): _plain(v) for k, v in row.items()})
    return out


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
