"""Benchmark: the results store and history at 1,000, 10,000 and 100,000 runs, side by side.

The runs are synthetic copies of one real trace's rows (sample_traces/mv3_xnnpack_q8.etdp by
default; etprof.store.synthetic: 50 iterations, buckets, operators, a delegate block; drift,
steps, two-session series and contention; 10 models x 2 devices = 20 series). For each size,
timed in this process after the rows are built:

- store: all runs into a new DuckDB file (one transaction), then again (all already stored);
- Parquet: the runs published as one batch of the hive-partitioned lake;
- read: the database and the lake back into DataFrames;
- history: every run judged (etprof.analyzers.history: vectorised per size group), and, for
  sizes up to --reference-max, the previous implementation (tests/history_reference.py: one
  significance.compare per run) on the same tables, with a check that the verdicts agree;
- with --cluster, history again with its judgments on the cluster's workers (the cluster is
  started before the timings), checked equal to the local result;
- a query: mean run model per series and commit, in SQL.

Printed per step: wall and CPU seconds and the cost per run, which should stay flat with size.

    python benchmarks/store_speed.py [--sizes 1000,10000,100000] [--reference-max 1000]
                                     [--cluster local:2]

Goals (issue 25): storing 10,000 runs under 5 s; history over 100,000 runs (20 series) under
60 s wall on a 2-core machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from etprof.analyzers.history import HistoryOptions, StoredRuns, history
from etprof.store import db
from etprof.store.rows import StoredTrace, trace_rows
from etprof.store.synthetic import synthetic_runs
from etprof.trace.loading import load_trace

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def timed(label: str, fn: Callable[[], T], results: dict[str, tuple[float, float]]) -> T:
    """Wall and this process's CPU time into `results` (the machine is shared: wall time grows
    with other people's work, CPU time mostly does not)."""
    t0, c0 = time.perf_counter(), time.process_time()
    value = fn()
    results[label] = (time.perf_counter() - t0, time.process_time() - c0)
    return value


def one_size(
    base: StoredTrace,
    n: int,
    work: Path,
    reference_max: int,
    cluster: str | None = None,
    client: Any = None,
) -> dict[str, tuple[float, float]]:
    t: dict[str, tuple[float, float]] = {}
    runs = timed("build synthetic rows", lambda: synthetic_runs(base, n), t)
    path, folder = work / f"bench{n}.duckdb", work / f"lake{n}"
    for p in (path, folder):
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    stored = timed("store (new runs)", lambda: db.store(path, runs), t)
    assert all(o.stored for o in stored)
    again = timed("store again (all already stored)", lambda: db.store(path, runs), t)
    assert not any(o.stored for o in again)
    timed("write Parquet lake (one batch)", lambda: db.write_parquet(folder, runs), t)
    runs.clear()  # free the rows before reading back
    tables = timed("read database", lambda: db.read_tables(db=path), t)
    timed("read Parquet lake", lambda: db.read_tables(parquet=folder), t)
    result = timed(
        "history (every run judged)", lambda: history(StoredRuns(tables), HistoryOptions()), t
    )
    if client is not None:
        from etprof.jobs.cluster import judge_on

        on = timed(
            f"history, judged on {cluster}",
            lambda: history(StoredRuns(tables), HistoryOptions(), judge=judge_on(client)),
            t,
        )
        same = on.runs.equals(result.runs)
        print(f"  {n} runs: history on {cluster} {'equals' if same else 'DIFFERS FROM'} local")
    if n <= reference_max:
        sys.path.insert(0, str(ROOT / "tests"))
        import history_reference as ref

        old = timed(
            "history, previous implementation",
            lambda: ref.history(ref.StoredRuns(tables), HistoryOptions()),
            t,
        )
        same = old.runs["verdict"].tolist() == result.runs["verdict"].tolist()
        print(f"  {n} runs: previous implementation's verdicts {'equal' if same else 'DIFFER'}")

    import duckdb

    def query() -> int:
        con = duckdb.connect(str(path), read_only=True)
        try:
            return len(
                con.execute(
                    "SELECT model, device, commit, avg(mean_ms) FROM runs GROUP BY ALL ORDER BY ALL"
                ).fetchall()
            )
        finally:
            con.close()

    timed("SQL: mean per series and commit", query, t)
    changes = int(result.runs["verdict"].isin(["faster", "slower"]).sum())
    print(
        f"  {n} runs: {changes} significant changes; database "
        f"{path.stat().st_size / 1e6:.1f} MB; lake {sum(1 for _ in folder.rglob('*.parquet'))} "
        "files"
    )
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--reference-max", type=int, default=1000)
    ap.add_argument(
        "--cluster",
        default=None,
        help="also judge history on this Dask cluster (e.g. local:2), timed beside the local path",
    )
    ap.add_argument("--trace", type=Path, default=ROOT / "sample_traces" / "mv3_xnnpack_q8.etdp")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="etprof-store-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    base = trace_rows(load_trace(args.trace), args.trace, {})
    sizes = [int(s) for s in args.sizes.split(",")]
    with contextlib.ExitStack() as stack:
        client = None
        if args.cluster:
            from etprof.jobs.cluster import connect

            client = stack.enter_context(connect(args.cluster))  # started before the timings
        results = {
            n: one_size(base, n, work, args.reference_max, args.cluster, client) for n in sizes
        }
    print(
        f"\nsynthetic runs of {args.trace.name}, 20 series; load average "
        f"{os.getloadavg()[0]:.1f} at the end; wall s / CPU s (ms per run, wall)"
    )
    labels = list(dict.fromkeys(k for r in results.values() for k in r))
    print(f"  {'step':36s}" + "".join(f"{n:>30,d}" for n in sizes))
    for label in labels:
        cells = []
        for n in sizes:
            if label in results[n]:
                wall, cpu = results[n][label]
                cells.append(f"{wall:8.2f} / {cpu:7.2f} ({wall / n * 1e3:6.3f})")
            else:
                cells.append(f"{'-':>28s}")
        print(f"  {label:36s}" + "".join(f"{c:>30s}" for c in cells))


if __name__ == "__main__":
    main()
