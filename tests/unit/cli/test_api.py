"""The notebook API (etprof.api, re-exported lazily by `import etprof`) on real traces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import etprof
from etprof import analyzers, api
from etprof.analyzers.timeline import timeline
from etprof.errors import InputError
from etprof.trace.loading import load_trace
from etprof.trace.model import Trace

from conftest import TESTS, sample_traces

SMALL = TESTS / "data" / "small_xnnpack.etdp"
TRACES = [SMALL, *sample_traces()]


@pytest.fixture(scope="module")
def small() -> Trace:
    return etprof.load(SMALL)


def test_import_etprof_is_cheap() -> None:
    code = (
        "import sys, etprof\n"
        "print(sorted(m for m in ('pandas', 'numpy', 'torch', 'executorch', 'typer')"
        " if m in sys.modules))\n"
        "print(callable(etprof.load), 'operators' in dir(etprof))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["[]", "True True"]


def test_names_are_the_api_functions() -> None:
    for name in api.__all__:
        assert getattr(etprof, name) is getattr(api, name)
    # the module that reads traces has its own name: importing it leaves load() alone
    from etprof.trace import loading

    assert etprof.load is api.load and loading.load_trace is load_trace
    with pytest.raises(AttributeError):
        etprof.no_such_name  # noqa: B018


def test_load_matches_load_trace(small: Trace) -> None:
    direct = load_trace(SMALL)
    pd.testing.assert_frame_equal(small.events, direct.events)
    assert small.iterations == 20 and small.warmup == 10


def test_events_is_a_copy_and_measured_drops_warmup(small: Trace) -> None:
    ev = etprof.events(small)
    ev.loc[:, "duration_ns"] = 0
    assert small.events["duration_ns"].sum() > 0
    measured = etprof.events(SMALL, measured=True)
    assert sorted(measured["iteration"].unique()) == list(range(10, 20))
    assert len(measured) == (small.events["iteration"] >= 10).sum()


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.stem)
def test_analyses_agree_with_the_event_table(path: Path) -> None:
    t = etprof.load(path)
    ev = etprof.events(t, measured=True)
    run_model_ms = ev.loc[ev["kind"] == "run_model", "duration_ns"].to_numpy() / 1e6
    stats = etprof.runmodel(t)
    assert stats.mean_ms == pytest.approx(float(np.mean(run_model_ms)), rel=1e-12)
    assert stats.floored_ms == int(np.floor(np.mean(run_model_ms)))

    b = etprof.buckets(t)
    assert isinstance(b, pd.DataFrame)
    total = b.loc[b["bucket"] == "run_model", "mean_ms"].item()
    assert total == pytest.approx(stats.mean_ms)
    assert b.loc[b["bucket"] != "run_model", "mean_ms"].sum() == pytest.approx(total)

    ops = etprof.operators(t)
    assert isinstance(ops, pd.DataFrame) and len(ops)
    op_kinds = ev["kind"].isin(["delegate_op", "kernel"])
    per_iter = ev.loc[op_kinds, "duration_ns"].sum() / 1e6 / ev["iteration"].nunique()
    assert ops["per_iter_ms"].sum() == pytest.approx(per_iter)
    by_bucket = b.groupby("bucket")["mean_ms"].sum()  # delegate rows: one per backend
    assert ops["per_iter_ms"].sum() == pytest.approx(
        by_bucket.get("delegate_compute", 0.0)
        + by_bucket.get("delegate_glue", 0.0)
        + by_bucket["portable_kernels"]
    )
    assert etprof.operators(t, top=2)["op"].tolist() == ops["op"].head(2).tolist()


def test_breakdown_returns_its_result_with_dataframes(small: Trace) -> None:
    result = etprof.breakdown(small)
    assert result.schema == "etprof.breakdown"
    tables = result.tables()
    assert tables and all(isinstance(f, pd.DataFrame) for f in tables.values())
    assert result is not None and type(result) is type(analyzers.run("breakdown", small))


def test_diff_of_a_trace_with_itself_is_no_change(small: Trace) -> None:
    result = etprof.diff(small, SMALL)  # a Trace and a path
    assert result.schema == "etprof.diff"
    assert result.mean_delta_ms == pytest.approx(0.0, abs=1e-12)
    # delta 0, p = 1, yet the interval of a few iterations reaches past the 1% band: the
    # gate's word for that is inconclusive, and the headline says why
    assert "inconclusive (the rank test does not reject (p=1" in result.headline()
    assert all(isinstance(f, pd.DataFrame) for f in result.tables().values())


def test_analyze_reaches_any_analyzer_and_checks_options(small: Trace) -> None:
    assert etprof.analyze("runmodel", small, warmup=15).n == 5
    with pytest.raises(InputError) as bad:
        etprof.operators(small, topp=3)
    assert bad.value.one_line() == (
        "analyzer 'operators' has no option 'topp'; use one of: warmup, top"
    )
    with pytest.raises(InputError, match="takes 2 trace"):
        etprof.analyze("diff", small)
    with pytest.raises(InputError, match="no analyzer named"):
        etprof.analyze("nope", small)


def test_timeline_and_chrome_trace(small: Trace, tmp_path: Path) -> None:
    slices = etprof.timeline(small)
    pd.testing.assert_frame_equal(slices, timeline(small).slices)
    assert set(slices["iteration"]) == {10}
    out = etprof.chrome_trace(SMALL, tmp_path / "t.json", iteration=2)
    doc = json.loads(out.read_text())
    complete = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert len(complete) == len(etprof.timeline(small, 2))
    assert {e["args"]["iteration"] for e in complete} == {2}


SCHEMA_DOC = TESTS.parent / "docs" / "json-schema.md"


@pytest.mark.skipif(len(sample_traces()) < 2, reason="needs two sample traces")
def test_every_json_schema_is_documented_with_its_fields(tmp_path: Path) -> None:
    """docs/json-schema.md names every schema etprof writes and each of its top-level keys."""
    from etprof import render
    from etprof.analyzers.history import StoredRuns
    from etprof.jobs.bench import BenchResult, BenchSettings
    from etprof.store import db as store_db
    from etprof.store.rows import trace_rows

    doc = SCHEMA_DOC.read_text()
    paths = sample_traces()[:2]
    a, b = (etprof.load(p) for p in paths)
    # an analyzer of stored runs (inputs=0) reads a store made of the same two traces
    store = tmp_path / "runs.duckdb"
    store_db.store(store, [trace_rows(t, p, {}) for t, p in zip((a, b), paths, strict=False)])
    stored = StoredRuns(store_db.read_tables(db=store))
    inputs = {0: (stored,), 1: (a,), 2: (a, b)}
    # analyzers of one kind of program refuse the samples (tested on their own programs)
    only_for = {"llm": "an LLM run"}
    results = []
    for entry in analyzers.available().values():
        try:
            results.append(entry.func(*inputs[entry.inputs], entry.options()))
        except InputError as exc:
            assert entry.name in only_for and only_for[entry.name] in str(exc), exc
    results += [timeline(a), BenchResult((), BenchSettings(), "seed")]
    for result in results:
        body = json.loads(render.render(result, "json"))
        section = doc.split(f"## `{body['schema']}`", 1)
        assert len(section) == 2, f"{body['schema']} is not documented"
        text = section[1].split("\n## ", 1)[0]
        for key in body:
            if key not in ("schema", "version"):
                assert f"`{key}`" in text, f"{body['schema']}: field {key} is not documented"
        assert body["version"] == 2 and "currently **2**" in doc
