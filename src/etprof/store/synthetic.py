"""Synthetic runs for scale: copies of one real trace's store rows, varied like a fleet's.

`benchmarks/store_speed.py` and the scale tests store and judge thousands of runs; recording
thousands of traces would take hours, so each synthetic run is the rows of one real trace
(etprof.store.rows.trace_rows) with its own run id, series (model x device), commit and start
time, its iteration times scaled by a slow drift with a step every 250 runs and 1% noise, its
bucket and operator means scaled alike, and (every third series) its iterations split into two
sessions and its CPU share below 99%, so history meets every kind of comparison it makes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from etprof.store.rows import StoredTrace


def synthetic_runs(
    base: StoredTrace, n: int, *, models: int = 10, devices: int = 2, seed: int = 0
) -> list[StoredTrace]:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2026-01-01T00:00:00", "us")
    ms = base.columns["iterations"]["run_model_ms"].astype(np.float64)
    halves = (np.arange(ms.size) >= ms.size // 2).astype(np.int64)
    out = []
    for i in range(n):
        run_id = f"{i:064x}"
        drift = 1.0 + 0.05 * np.sin(i / 37.0) + (0.1 if i % 250 == 249 else 0.0)
        columns = {}
        for name, table in base.columns.items():
            cols = dict(table)
            cols["run_id"] = np.full(len(cols["run_id"]), run_id, dtype=object)
            columns[name] = cols
        series = i % (models * devices)
        its = columns["iterations"]
        its["run_model_ms"] = ms * drift * rng.normal(1.0, 0.01, ms.size)
        if series % 3 == 0:
            its["session"] = halves
        for part, column in (("buckets", "mean_ms"), ("operators", "per_iter_ms")):
            values = columns[part][column].astype(np.float64)
            columns[part][column] = values * drift * rng.normal(1.0, 0.02, values.size)
        commit = f"c{i // (models * devices)}"
        runs = columns["runs"]
        runs["model"] = np.array([f"model{i % models}"], dtype=object)
        runs["device"] = np.array([f"device{(i // models) % devices}"], dtype=object)
        runs["commit"] = np.array([commit], dtype=object)
        runs["started"] = np.array([start + np.timedelta64(i, "m")])
        runs["mean_ms"] = np.array([its["run_model_ms"].mean()])
        runs["sessions"] = np.array([2 if series % 3 == 0 else 1])
        runs["cpu_share_pct"] = np.array([97.0 if series % 3 == 1 else 100.0])
        columns["tags"] = {
            "run_id": np.array([run_id], dtype=object),
            "key": np.array(["commit"], dtype=object),
            "value": np.array([commit], dtype=object),
        }
        out.append(replace(base, run_id=run_id, columns=columns))
    return out
