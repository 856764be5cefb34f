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

JSON_SCHEMA_VERSION = 2  # 2: buckets schema v2 (docs/json-schema.md)


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
    import numpy as np  # loaded already: `frame` is a DataFrame

    # column by column: numpy's tolist() makes Python scalars in C, and only float columns
    # (NaN, inf) and object-like ones need a look at each value
    names = [str(c) for c in frame.columns]
    columns = []
    for _, column in frame.items():
        values = column.tolist()
        kind = column.dtype.kind if isinstance(column.dtype, np.dtype) else "O"
        if kind == "f":
            values = [v if math.isfinite(v) else None for v in values]
        elif kind not in "iub":
            values = [_plain(v) for v in values]
        columns.append(values)
    return (
        [dict(zip(names, row, strict=False)) for row in zip(*columns, strict=False)]
        if names
        else [{} for _ in range(len(frame))]
    )


def _plain(value: Any) -> Any:
    if value is None or type(value).__name__ == "NAType":  # pandas' NA, without importing it
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
