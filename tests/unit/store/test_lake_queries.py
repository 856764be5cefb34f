"""The Parquet lake read as other engines read it: DuckDB over the files themselves (hive
partitions from the paths, as Spark and Trino discover them), the queries of docs/store.md.

The sample traces are stored into a lake and into a DuckDB store; the lake's files, queried with
nothing but their paths, give the store's rows; every file carries the schema version.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from etprof.store import db as store_db
from etprof.store.rows import trace_rows
from etprof.store.schema import SCHEMA_VERSION, TABLES, column_names
from etprof.trace.loading import load_trace

from conftest import ROOT, run_cli

SAMPLES = ROOT / "sample_traces"
TRACES = [SAMPLES / f"{m}_xnnpack_q8.etdp" for m in ("mv2", "mv3")] + [
    SAMPLES / "mv3_xnnpack_fp32.etdp"
]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same runs in a lake and in a database; one device name needs escaping."""
    folder = tmp_path_factory.mktemp("lake")
    tags = {"device": "lab/rack 2", "commit": "c1"}
    rows = [trace_rows(load_trace(p), p, tags) for p in TRACES]
    store_db.write_parquet(folder / "lake", rows)
    store_db.store(folder / "s.duckdb", rows)
    return folder / "lake", folder / "s.duckdb"


def _lake(con: duckdb.DuckDBPyConnection, lake: Path, sql: str) -> list[tuple[object, ...]]:
    for table in TABLES:
        sql = sql.replace(
            f"LAKE.{table}",
            f"read_parquet('{lake}/{table}/**/*.parquet', hive_partitioning = true)",
        )
    return con.execute(sql).fetchall()


def test_the_lake_is_hive_partitioned_and_versioned(stores: tuple[Path, Path]) -> None:
    lake, path = stores
    files = sorted(lake.rglob("*.parquet"))
    runs = duckdb.connect(str(path), read_only=True).sql(
        "SELECT model, device, strftime(coalesce(started, stored_at), '%Y-%m-%d') FROM runs"
    )
    want = {
        ("runs", f"model={m}", "device=lab%2Frack%202", f"date={d}") for m, _, d in runs.fetchall()
    }
    assert {f.relative_to(lake).parts[:-1] for f in files if f.parts[-5] == "runs"} == want
    assert len(want) == 2  # mv2 and mv3: the same day
    kv = duckdb.sql(
        f"SELECT file_name, decode(value) FROM parquet_kv_metadata('{lake}/**/*.parquet') "
        "WHERE decode(key) = 'etprof.schema_version'"
    ).fetchall()
    assert sorted(f for f, _ in kv) == sorted(str(f) for f in files)
    assert {v for _, v in kv} == {str(SCHEMA_VERSION)}
    marker = json.loads(next((lake / "_etprof" / "batches").glob("*.json")).read_text())
    assert sorted(marker["files"]) == sorted(f.relative_to(lake).as_posix() for f in files)


def test_duckdb_reads_the_lake_files_as_the_store_holds_them(stores: tuple[Path, Path]) -> None:
    lake, path = stores
    con = duckdb.connect(str(path), read_only=True)
    try:
        for table in TABLES:
            cols = ", ".join(f'"{c}"' for c in column_names(table))
            want = con.execute(f'SELECT {cols} FROM "{table}" ORDER BY ALL').fetchall()
            got = _lake(con, lake, f"SELECT {cols} FROM LAKE.{table} ORDER BY ALL")
            assert got == want, table
        # the queries of docs/store.md, on the files, equal the same queries on the store
        per_series = (
            "SELECT model, variant, device, count(*) AS runs, avg(mean_ms) "
            "FROM {runs} GROUP BY ALL ORDER BY ALL"
        )
        got = _lake(con, lake, per_series.format(runs="LAKE.runs"))
        assert got == con.execute(per_series.format(runs="runs")).fetchall()
        assert {r[2] for r in got} == {"lab/rack 2"} and len(got) == 3
        portable = (
            "SELECT r.model, r.device, avg(b.mean_ms) FROM {runs} r JOIN {buckets} b "
            "USING (run_id) WHERE b.bucket = 'portable_kernels' GROUP BY ALL ORDER BY ALL"
        )
        got = _lake(con, lake, portable.format(runs="LAKE.runs", buckets="LAKE.buckets"))
        assert (
            got and got == con.execute(portable.format(runs="runs", buckets="buckets")).fetchall()
        )
    finally:
        con.close()


def test_history_reads_the_lake_as_it_reads_the_database(stores: tuple[Path, Path]) -> None:
    lake, path = stores
    from_lake = json.loads(run_cli("history", "--parquet", lake, "-f", "json").stdout)
    from_db = json.loads(run_cli("history", "--db", path, "-f", "json").stdout)
    assert from_lake["runs"] == from_db["runs"] and len(from_db["runs"]) == 3
