"""The store's tables, written down once: DuckDB's DDL and Parquet files both come from here.

Schema history (bump SCHEMA_VERSION and document in docs/store.md):

- 1: first version: runs, sessions, iterations, buckets, operators, blocks, tags.

Every table but ``runs`` and ``tags`` has a ``method`` column (the program method the rows
belong to), so programs of several methods fit without a new version. Bucket rows are stored as
the buckets analyzer names them (``bucket`` key, ``label``, ``backend``), never a fixed list.
"""

from __future__ import annotations

SCHEMA_VERSION = 1
META_TABLE = "etprof_store"  # key/value: schema_version, created_by

Columns = tuple[tuple[str, str], ...]

TABLES: dict[str, Columns] = {
    # one row per stored trace
    "runs": (
        ("run_id", "VARCHAR"),  # sha256 of the trace file's bytes
        ("schema_version", "INTEGER"),
        ("stored_at", "TIMESTAMP"),  # UTC
        ("started", "TIMESTAMP"),  # UTC, when `etprof run` started it (NULL: unknown)
        ("model", "VARCHAR"),  # series: model + variant + device
        ("variant", "VARCHAR"),
        ("device", "VARCHAR"),
        ("program", "VARCHAR"),  # the program's name (its .pte stem)
        ("method", "VARCHAR"),
        ("program_sha256", "VARCHAR"),
        ("backends", "VARCHAR"),  # the program's delegate backend ids, comma-separated
        ("trace_path", "VARCHAR"),
        ("trace_bytes", "BIGINT"),
        ("commit", "VARCHAR"),  # the `commit` tag, "" when not given
        ("host_cpu", "VARCHAR"),
        ("host_cores", "INTEGER"),
        ("host_platform", "VARCHAR"),
        ("python_version", "VARCHAR"),
        ("etprof_version", "VARCHAR"),
        ("executorch_version", "VARCHAR"),
        ("torch_version", "VARCHAR"),
        ("iterations", "INTEGER"),  # recorded, warm-up included
        ("warmup", "INTEGER"),  # dropped per session
        ("measured", "INTEGER"),
        ("sessions", "INTEGER"),
        ("threads", "INTEGER"),
        ("cpu_share_pct", "DOUBLE"),  # NULL: not measured
        ("load_average", "DOUBLE"),
        ("mean_ms", "DOUBLE"),  # run model (Method::execute) over the measured iterations
        ("median_ms", "DOUBLE"),
        ("p10_ms", "DOUBLE"),
        ("p90_ms", "DOUBLE"),
        ("min_ms", "DOUBLE"),
        ("max_ms", "DOUBLE"),
        ("std_ms", "DOUBLE"),
        ("cv_pct", "DOUBLE"),
    ),
    # one row per session of a run: its run-model statistics
    "sessions": (
        ("run_id", "VARCHAR"),
        ("method", "VARCHAR"),
        ("session", "INTEGER"),
        ("measured", "INTEGER"),
        ("mean_ms", "DOUBLE"),
        ("median_ms", "DOUBLE"),
        ("min_ms", "DOUBLE"),
        ("max_ms", "DOUBLE"),
        ("std_ms", "DOUBLE"),
    ),
    # one row per measured iteration: what history's significance test reads, as diff's does
    "iterations": (
        ("run_id", "VARCHAR"),
        ("method", "VARCHAR"),
        ("session", "INTEGER"),
        ("iteration", "INTEGER"),  # index in the trace (warm-up counted)
        ("run_model_ms", "DOUBLE"),
    ),
    # one row per breakdown bucket (docs/attribution.md), the run-model total included
    "buckets": (
        ("run_id", "VARCHAR"),
        ("method", "VARCHAR"),
        ("bucket", "VARCHAR"),
        ("label", "VARCHAR"),
        ("side", "VARCHAR"),
        ("backend", "VARCHAR"),  # "" when the row has none
        ("mean_ms", "DOUBLE"),
        ("share_pct", "DOUBLE"),
    ),
    # one row per operator type (the operators analyzer)
    "operators": (
        ("run_id", "VARCHAR"),
        ("method", "VARCHAR"),
        ("op", "VARCHAR"),
        ("side", "VARCHAR"),
        ("count", "DOUBLE"),  # occurrences per iteration
        ("per_iter_ms", "DOUBLE"),
        ("mean_ms", "DOUBLE"),  # per occurrence
        ("share_pct", "DOUBLE"),
        ("glue", "BOOLEAN"),
    ),
    # one row per delegate block (the blocks analyzer)
    "blocks": (
        ("run_id", "VARCHAR"),
        ("method", "VARCHAR"),
        ("instruction", "INTEGER"),
        ("backend", "VARCHAR"),
        ("ops", "INTEGER"),
        ("module", "VARCHAR"),
        ("call_ms", "DOUBLE"),
        ("compute_ms", "DOUBLE"),
        ("glue_ms", "DOUBLE"),
        ("overhead_ms", "DOUBLE"),
        ("share_pct", "DOUBLE"),
    ),
    # one row per --tag k=v of a run
    "tags": (
        ("run_id", "VARCHAR"),
        ("key", "VARCHAR"),
        ("value", "VARCHAR"),
    ),
}


def column_names(table: str) -> list[str]:
    return [name for name, _ in TABLES[table]]


def ddl(table: str) -> str:
    cols = ", ".join(f'"{name}" {kind}' for name, kind in TABLES[table])
    return f'CREATE TABLE IF NOT EXISTS "{table}" ({cols})'
