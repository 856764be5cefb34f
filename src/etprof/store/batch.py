"""Many traces' rows as one DataFrame per table: what one INSERT or one Parquet COPY writes.

Each column is joined across traces with one ``np.concatenate`` and given the type the schema
names (etprof.store.schema), so DuckDB and Parquet see the same types whatever mix of missing
values the traces had (a column of ints in one trace and None in another is an object array
after the join; it is written as the schema's INTEGER, not guessed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from etprof.store.rows import StoredTrace
from etprof.store.schema import TABLES

_DTYPES = {"INTEGER": "Int64", "BIGINT": "Int64", "BOOLEAN": "boolean"}


def batch_frame(traces: Sequence[StoredTrace], table: str) -> pd.DataFrame:
    """The rows of `table` of every trace in `traces`, in order, typed by the schema."""
    columns: dict[str, Any] = {}
    for name, kind in TABLES[table]:
        parts = [t.columns[table][name] for t in traces]
        joined: npt.NDArray[Any] = np.concatenate(parts) if parts else np.empty(0, dtype=object)
        columns[name] = _typed(joined, kind)
    return pd.DataFrame(columns)


def _typed(values: npt.NDArray[Any], kind: str) -> Any:
    if kind == "VARCHAR":
        return values.astype(object)
    if kind == "TIMESTAMP":
        return pd.to_datetime(values).as_unit("us")
    if kind == "DOUBLE":  # a missing value is NaN, which DuckDB reads from pandas as NULL
        if values.dtype != object:
            return values.astype(np.float64)
        return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(np.float64)
    if values.dtype != object:
        return pd.array(values, dtype=_DTYPES[kind])
    return pd.array(
        pd.Series(values, dtype=object).where(pd.notna(values), None), dtype=_DTYPES[kind]
    )
