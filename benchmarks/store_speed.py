"""Benchmark: storing and querying 1,000 runs in the results store (docs/store.md).

The runs are synthetic copies of one real trace's rows (sample_traces/mv3_xnnpack_q8.etdp by
default: 50 iterations, 7 buckets, ~70 operator types, 1 delegate block each): each copy gets its
own run id, commit, start time and series (10 models x 2 devices by default), and its iteration
times scaled by a drift and jittered, so history has real comparisons to make. Timed, each in
this process after the rows are built:

- store: ``etprof.store.db.store`` of all runs into a new DuckDB file (one transaction per run,
  as `etprof store` does), and the same again (every run already stored: the idempotency check);
- Parquet: ``write_parquet`` of all runs (one file per table per run);
- read: ``read_tables`` of the database and of the Parquet folder;
- history: the history analyzer over every run (one significance test per run after the first
  of its series, as `etprof history` does);
- a query: mean run model per series and commit, in SQL.

Printed side by side with the time to analyse the one real trace (what `etprof store` does per
trace before it writes), as a ratio per run.

    python benchmarks/store_speed.py [--runs 1000] [--trace T.etdp] [--workdir DIR]

Goal (issue 16): storing and querying 1,000 runs takes seconds, not minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from etprof.analyzers.history import HistoryOptions, StoredRuns, history
from etprof.store import db
from etprof.store.rows import StoredTrace, trace_rows
from etprof.trace.loading import load_trace

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def synthetic(base: StoredTrace, n: int, models: int, devices: int, seed: int) -> list[StoredTrace]:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2026-01-01T00:00:00", "us")
    ms = base.columns["iterations"]["run_model_ms"].astype(np.float64)
    out = []
    for i in range(n):
        run_id = f"{i:064x}"
        drift = 1.0 + 0.05 * np.sin(i / 37.0) + (0.1 if i % 250 == 249 else 0.0)
        columns = {}
        for name, table in base.columns.items():
            cols = dict(table)
            cols["run_id"] = np.full(len(cols["run_id"]), run_id, dtype=object)
            columns[name] = cols
        its = columns["iterations"]
        its["run_model_ms"] = ms * drift * rng.normal(1.0, 0.01, len(ms))
        commit = f"c{i // (models * devices)}"
        runs = columns["runs"]
        runs["model"] = np.array([f"model{i % models}"], dtype=object)
        runs["device"] = np.array([f"device{(i // models) % devices}"], dtype=object)
        runs["commit"] = np.array([commit], dtype=object)
        runs["started"] = np.array([start + np.timedelta64(i, "m")])
        runs["mean_ms"] = np.array([its["run_model_ms"].mean()])
        columns["tags"] = {
            "run_id": np.array([run_id], dtype=object),
            "key": np.array(["commit"], dtype=object),
            "value": np.array([commit], dtype=object),
        }
        out.append(replace(base, run_id=run_id, columns=columns))
    return out


CPU: dict[str, float] = {}


def timed(label: str, fn: Callable[[], T], results: dict[str, float]) -> T:
    """Wall time into `results`, this process's CPU time into CPU (the machine is shared:
    wall time grows with other people's work, CPU time mostly does not)."""
    t0, c0 = time.perf_counter(), time.process_time()
    value = fn()
    results[label] = time.perf_counter() - t0
    CPU[label] = time.process_time() - c0
    return value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--trace", type=Path, default=ROOT / "sample_traces" / "mv3_xnnpack_q8.etdp")
    ap.add_argument("--models", type=int, default=10)
    ap.add_argument("--devices", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="etprof-store-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    t: dict[str, float] = {}
    base = timed("analyse one trace", lambda: trace_rows(load_trace(args.trace), args.trace, {}), t)
    runs = synthetic(base, args.runs, args.models, args.devices, seed=0)
    path, folder = work / "bench.duckdb", work / "parquet"
    for p in (path, folder):
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    stored = timed("store (new runs)", lambda: db.store(path, runs), t)
    assert all(o.stored for o in stored)
    again = timed("store again (all already stored)", lambda: db.store(path, runs), t)
    assert not any(o.stored for o in again)
    timed("write Parquet", lambda: db.write_parquet(folder, runs), t)
    tables = timed("read database", lambda: db.read_tables(db=path), t)
    timed("read Parquet", lambda: db.read_tables(parquet=folder), t)
    result = timed(
        "history (every run judged)", lambda: history(StoredRuns(tables), HistoryOptions()), t
    )

    import duckdb

    def query() -> int:
        con = duckdb.connect(str(path), read_only=True)
        try:
            rows = con.execute(
                "SELECT model, device, commit, avg(mean_ms) FROM runs GROUP BY ALL ORDER BY ALL"
            ).fetchall()
        finally:
            con.close()
        return len(rows)

    timed("SQL: mean per series and commit", query, t)
    changes = int(result.runs["verdict"].isin(["faster", "slower"]).sum())
    size_mb = path.stat().st_size / 1e6
    files = sum(1 for _ in folder.rglob("*.parquet"))
    print(
        f"{args.runs} synthetic runs of {args.trace.name} ({len(base.columns['iterations']['run_id'])} "
        f"iterations, {len(base.columns['operators']['run_id'])} operator rows each), "
        f"{args.models * args.devices} series; load average {os.getloadavg()[0]:.2f}"
    )
    per = t["analyse one trace"]
    for label, secs in t.items():
        ratio = (
            ""
            if label == "analyse one trace"
            else f"   {secs / args.runs * 1e3:7.2f} ms/run = {secs / args.runs / per:.3f}x analysing"
        )
        print(f"  {label:36s} {secs:8.2f} s wall {CPU[label]:7.2f} s CPU{ratio}")
    print(
        f"  database {size_mb:.1f} MB, {files} Parquet files; history called {changes} "
        "significant changes"
    )
    wall = sum(v for k, v in t.items() if k != "analyse one trace")
    cpu = sum(v for k, v in CPU.items() if k != "analyse one trace")
    print(f"store + query total: {wall:.1f} s wall, {cpu:.1f} s CPU (goal: seconds, not minutes)")


if __name__ == "__main__":
    main()
