"""Dask distributed (etprof[cluster], pulled in by the test extra: never skipped): ingest on a
real LocalCluster of two worker processes, and history's judgments on its workers, equal the
single-process path. Few tests: a cluster start costs seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from distributed import Client, LocalCluster

from etprof.analyzers.history import HistoryOptions, StoredRuns, history
from etprof.jobs.cluster import judge_on
from etprof.store import db as store_db
from etprof.store.rows import trace_rows
from etprof.store.synthetic import synthetic_runs
from etprof.trace.loading import load_trace

from conftest import ROOT, assert_one_line_error, run_cli

TRACES = sorted((ROOT / "sample_traces").glob("*.etdp"))


def test_cli_ingest_and_history_on_local_2_equal_the_local_path(tmp_path: Path) -> None:
    on, here = tmp_path / "cluster", tmp_path / "local"
    done = run_cli("store", *TRACES, "--parquet", on, "--tag", "commit=c1", "--cluster", "local:2")
    assert done.returncode == 0, done.stderr
    assert f"{len(TRACES)} new run(s)" in done.stderr
    assert run_cli("store", *TRACES, "--parquet", here, "--tag", "commit=c1").returncode == 0
    # each task published a batch of its own; read back, the tables are the local path's
    assert len(list((on / "_etprof" / "batches").glob("*.json"))) > 1
    a, b = store_db.read_tables(parquet=on), store_db.read_tables(parquet=here)
    for table in a:
        left, right = (
            f.drop(columns=["stored_at"], errors="ignore")
            .sort_values([c for c in f.columns[:5] if c != "stored_at"])
            .reset_index(drop=True)
            for f in (a[table], b[table])
        )
        assert len(left) > 0 or table == "tags", table
        pd.testing.assert_frame_equal(left, right)
    judged = run_cli("history", "--parquet", on, "--cluster", "local:2", "-f", "json")
    assert judged.returncode == 0, judged.stderr
    local = run_cli("history", "--parquet", here, "-f", "json")
    assert json.loads(judged.stdout) == json.loads(local.stdout)


def test_a_bad_cluster_address_is_one_line(tmp_path: Path) -> None:
    result = run_cli("history", "--parquet", tmp_path, "--cluster", "local:x")
    assert_one_line_error(result)  # the lake is checked first, then the address
    result = run_cli("store", TRACES[0], "--parquet", tmp_path / "l", "--cluster", "local:0")
    assert_one_line_error(result, "local:N")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def test_history_of_2000_runs_judged_on_the_workers_equals_one_process(
    client: Any, tmp_path: Path
) -> None:
    trace = ROOT / "sample_traces" / "mv3_xnnpack_q8.etdp"
    store_db.store(
        tmp_path / "s.duckdb", synthetic_runs(trace_rows(load_trace(trace), trace, {}), 2000)
    )
    stored = StoredRuns(store_db.read_tables(db=tmp_path / "s.duckdb"))
    assert len(client.scheduler_info()["workers"]) == 2
    for options in (HistoryOptions(), HistoryOptions(window=2, fail_if_slower=3.0)):
        here = history(stored, options)
        there = history(stored, options, judge=judge_on(client))
        pd.testing.assert_frame_equal(there.runs, here.runs)
        assert there.notes() == here.notes()
        assert (here.runs["verdict"] == "slower").any()
