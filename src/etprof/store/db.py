"""Writing and reading the store: a DuckDB database file (etprof.store.duck) or a Parquet lake
(etprof.store.lake). duckdb is imported inside the functions, so commands that do not store
never load it. A run already stored (same trace bytes) is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from etprof.store import duck, lake
from etprof.store.duck import DEFAULT_WAIT_S, check_database_file, save_verdicts
from etprof.store.rows import StoredTrace
from etprof.store.schema import TABLES

__all__ = [
    "DEFAULT_WAIT_S",
    "StoreOutcome",
    "check_database_file",
    "read_tables",
    "save_verdicts",
    "store",
    "write_parquet",
]


@dataclass(frozen=True)
class StoreOutcome:
    run_id: str
    source: str
    stored: bool  # False: the same trace bytes were stored before


def store(
    path: Path, traces: Sequence[StoredTrace], wait: float = DEFAULT_WAIT_S
) -> list[StoreOutcome]:
    """Append the traces' rows to the database at `path` (created if missing), all in one
    transaction: every new run is stored, or none is."""
    return _outcomes(traces, duck.store(path, traces, wait))


def write_parquet(folder: Path, traces: Sequence[StoredTrace]) -> list[StoreOutcome]:
    """Publish the runs not in the lake at `folder` yet as one batch (etprof.store.lake)."""
    return _outcomes(traces, lake.write(folder, traces))


def read_tables(
    *,
    db: Path | None = None,
    parquet: Path | None = None,
    tables: tuple[str, ...] = tuple(TABLES),
    wait: float = DEFAULT_WAIT_S,
) -> dict[str, pd.DataFrame]:
    """Tables of a store, from a database file or a Parquet lake, as DataFrames."""
    if parquet is not None:
        return lake.read(parquet, tables)
    assert db is not None
    return duck.read(db, tables, wait)


def _outcomes(traces: Sequence[StoredTrace], new: set[str]) -> list[StoreOutcome]:
    out, seen = [], set()
    for t in traces:
        out.append(StoreOutcome(t.run_id, t.source, t.run_id in new and t.run_id not in seen))
        seen.add(t.run_id)
    return out
