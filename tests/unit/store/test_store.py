"""The results store (DuckDB, Parquet) and `etprof history`, on the checked-in real traces.

Round trip: sample traces stored with tags, read back, judged by history with the statistics of
`etprof diff` (the same comparison, number for number); idempotent on the trace bytes; Parquet
read back by DuckDB with the numbers of `etprof breakdown`; bad input as one-line errors.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from etprof.analyzers.diff import DiffOptions, diff_traces
from etprof.analyzers.history import HistoryOptions, StoredRuns, history
from etprof.errors import InputError
from etprof.render import render
from etprof.store import db as store_db
from etprof.store.rows import parse_tags, series_of, trace_rows
from etprof.store.schema import SCHEMA_VERSION, TABLES, column_names
from etprof.trace.loading import load_trace

from conftest import DATA, ROOT, assert_one_line_error, run_cli

SAMPLES = ROOT / "sample_traces"
QUANTONLY = SAMPLES / "mv3_xnnpack_q8_quantonly.etdp"
MIXED = SAMPLES / "mv3_xnnpack_q8.etdp"
FP32 = SAMPLES / "mv3_xnnpack_fp32.etdp"
PAIR_A, PAIR_B = DATA / "small_pair_a.etdp", DATA / "small_pair_b.etdp"


@pytest.fixture(scope="module")
def mv3_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two MV3 q8 lowerings as one series (variant tag), and fp32 as another."""
    db = tmp_path_factory.mktemp("store") / "etprof.duckdb"
    for trace, commit in ((QUANTONLY, "c1"), (MIXED, "c2")):
        done = run_cli(
            "store", trace, "--db", db, "--tag", f"commit={commit}", "--tag", "variant=xnnpack_q8"
        )
        assert done.returncode == 0, done.stderr
    done = run_cli("store", FP32, "--db", db, "--tag", "commit=c2")
    assert done.returncode == 0, done.stderr
    return db


def test_store_writes_every_table_with_its_schema(mv3_store: Path) -> None:
    con = duckdb.connect(str(mv3_store), read_only=True)
    try:
        version = con.execute("SELECT value FROM etprof_store WHERE key = 'schema_version'")
        assert version.fetchone() == (str(SCHEMA_VERSION),)
        for table in TABLES:
            cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
            assert cols == column_names(table), table
        runs = con.execute(
            "SELECT model, variant, commit, sessions, measured FROM runs ORDER BY commit, variant"
        ).fetchall()
        assert runs == [
            ("mv3", "xnnpack_q8", "c1", 1, 50),
            ("mv3", "xnnpack_fp32", "c2", 1, 50),
            ("mv3", "xnnpack_q8", "c2", 1, 50),
        ]
        # one row per measured iteration, per bucket (run model included) and per operator type
        assert con.execute("SELECT count(*) FROM iterations").fetchone() == (150,)
        per_run = con.execute("SELECT count(*) FROM buckets GROUP BY run_id").fetchall()
        # mv3 with XNNPACK: compute, glue, below timer resolution, overhead, portable kernels,
        # dispatch, runtime, run model
        assert {n for (n,) in per_run} == {8}
        assert con.execute("SELECT count(DISTINCT method) FROM operators").fetchone() == (1,)
    finally:
        con.close()


def test_the_same_trace_twice_is_stored_once(mv3_store: Path, tmp_path: Path) -> None:
    db = tmp_path / "copy.duckdb"
    shutil.copy(mv3_store, db)
    again = run_cli("store", MIXED, MIXED, "--db", db)
    assert again.returncode == 0, again.stderr
    assert "already stored" in again.stdout and "stored once" in again.stderr
    # a copy of the file under another name is the same bytes: the same run
    renamed = tmp_path / "renamed.etdp"
    shutil.copy(MIXED, renamed)
    shutil.copy(MIXED.with_suffix(".etprof.json"), renamed.with_suffix(".etprof.json"))
    assert "already stored" in run_cli("store", renamed, "--db", db).stdout
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (3,)
        assert con.execute("SELECT count(*) FROM iterations").fetchone() == (150,)
    finally:
        con.close()


def test_history_judges_a_run_as_diff_judges_the_pair(mv3_store: Path) -> None:
    tables = store_db.read_tables(db=mv3_store)
    result = history(StoredRuns(tables), HistoryOptions())
    q8 = result.runs[result.runs["variant"] == "xnnpack_q8"]
    assert list(q8["verdict"]) == ["first run", "slower"]  # recorded mixed first, then quant-only
    second = q8.iloc[1]
    c = diff_traces(load_trace(MIXED), load_trace(QUANTONLY), DiffOptions()).comparison
    assert second["change_pct"] == pytest.approx(c.change_pct, rel=1e-12)
    assert second["ci_low_pct"] == pytest.approx(c.ci_low_pct, rel=1e-12)
    assert second["ci_high_pct"] == pytest.approx(c.ci_high_pct, rel=1e-12)
    assert second["p_value"] == pytest.approx(c.p_value, rel=1e-9)
    assert second["commit"] == "c1"
    # what moved: the glue and the portable divisions the quant-only partitioner left out
    assert "glue" in second["moved_detail"] and "div.out (portable)" in second["moved_detail"]
    fp32 = result.runs[result.runs["variant"] == "xnnpack_fp32"]
    assert list(fp32["verdict"]) == ["first run"]


def test_history_of_a_multi_session_pair_uses_the_sessions(tmp_path: Path) -> None:
    db = tmp_path / "pair.duckdb"
    traces = [
        trace_rows(load_trace(p), p, {"model": "small", "variant": "x"}) for p in (PAIR_A, PAIR_B)
    ]
    assert [o.stored for o in store_db.store(db, traces)] == [True, True]
    result = history(StoredRuns(store_db.read_tables(db=db)), HistoryOptions())
    assert len(result.runs) == 2 and result.runs["sessions"].tolist() == [3, 3]
    c = diff_traces(load_trace(PAIR_A), load_trace(PAIR_B), DiffOptions()).comparison
    assert c.by_session
    row = result.runs.iloc[1]
    assert row["verdict"] == c.verdict
    assert row["ci_low_pct"] == pytest.approx(c.ci_low_pct, rel=1e-12)
    assert row["ci_high_pct"] == pytest.approx(c.ci_high_pct, rel=1e-12)


def test_history_cli_filters_and_formats(mv3_store: Path) -> None:
    doc = json.loads(run_cli("history", "--db", mv3_store, "-f", "json").stdout)
    assert doc["schema"] == "etprof.history" and len(doc["runs"]) == 3
    only = json.loads(
        run_cli("history", "--db", mv3_store, "--tag", "commit=c1", "-f", "json").stdout
    )
    assert [r["commit"] for r in only["runs"]] == ["c1"]
    none = json.loads(run_cli("history", "--db", mv3_store, "--model", "mv2", "-f", "json").stdout)
    assert none["runs"] == []
    csv = run_cli("history", "--db", mv3_store, "-f", "csv").stdout
    assert csv.splitlines()[0].startswith("model,variant,device,method,run,when,commit")
    table = run_cli("history", "--db", mv3_store)
    assert table.returncode == 0 and "slower" in table.stdout
    assert "| model |" in run_cli("history", "--db", mv3_store, "-f", "markdown").stdout


def test_executorch_v3_rows(mv3_store: Path) -> None:
    out = run_cli("history", "--db", mv3_store, "-f", "executorch-v3")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    latency = [r for r in rows if r["metric"]["name"] == "avg_inference_latency(ms)"]
    assert len(latency) == 3
    for r in rows:
        assert set(r) == {"benchmark", "model", "metric", "runners"}
        assert set(r["benchmark"]) == {"name", "mode", "extra_info"}
        assert {"name", "type", "backend"} <= set(r["model"])
        assert set(r["metric"]) == {"name", "benchmark_values", "target_value", "extra_info"}
        assert isinstance(r["metric"]["benchmark_values"], list)
        assert r["runners"] and {"name", "type"} <= set(r["runners"][0])
    mixed = load_trace(MIXED)
    from etprof.analyzers.runmodel import RunModelOptions, run_model_stats

    want = run_model_stats(mixed, RunModelOptions()).mean_ms
    got = [
        r["metric"]["benchmark_values"][0]
        for r in latency
        if r["benchmark"]["extra_info"]["commit"] == "c2" and r["model"]["backend"] == "xnnpack_q8"
    ]
    assert got == [pytest.approx(want, rel=1e-12)]
    assert any(r["metric"]["name"].startswith("etprof_") for r in rows)
    with pytest.raises(InputError):
        render(diff_traces(mixed, mixed, DiffOptions()), "executorch-v3")


def test_parquet_read_back_by_duckdb_matches_breakdown(tmp_path: Path) -> None:
    folder = tmp_path / "pq"
    done = run_cli("store", MIXED, "--parquet", folder, "--tag", "commit=c2")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "etprof.duckdb").exists()
    breakdown = json.loads(run_cli("breakdown", MIXED, "-f", "json").stdout)
    con = duckdb.connect(":memory:")
    try:

        def query(sql: str) -> list[tuple[object, ...]]:
            return con.execute(sql.replace("PQ", str(folder))).fetchall()

        (mean,) = query("SELECT mean_ms FROM read_parquet('PQ/runs/**/*.parquet')")[0]
        assert mean == pytest.approx(breakdown["run_model"]["mean_ms"], rel=1e-12)
        buckets = dict(query("SELECT bucket, mean_ms FROM read_parquet('PQ/buckets/**/*.parquet')"))
        assert buckets == pytest.approx(
            {b["bucket"]: b["mean_ms"] for b in breakdown["buckets"]}, rel=1e-12
        )
        ops = {
            (o, s): v
            for o, s, v in query(
                "SELECT op, side, per_iter_ms FROM read_parquet('PQ/operators/**/*.parquet')"
            )
        }
        assert ops == pytest.approx(
            {(o["op"], o["side"]): o["per_iter_ms"] for o in breakdown["operators"]}, rel=1e-12
        )
        blocks = query("SELECT instruction, call_ms FROM read_parquet('PQ/blocks/**/*.parquet')")
        assert blocks == [
            (b["instruction"], pytest.approx(b["call_ms"], rel=1e-12)) for b in breakdown["blocks"]
        ]
        assert query("SELECT key, value FROM read_parquet('PQ/tags/**/*.parquet')") == [
            ("commit", "c2")
        ]
    finally:
        con.close()
    # history reads the Parquet folder as it reads a database; writing twice keeps one file
    assert "already stored" in run_cli("store", MIXED, "--parquet", folder).stdout
    assert len(list((folder / "runs").rglob("*.parquet"))) == 1
    doc = json.loads(run_cli("history", "--parquet", folder, "-f", "json").stdout)
    assert [r["verdict"] for r in doc["runs"]] == ["first run"]


def test_series_from_names_and_tags() -> None:
    assert series_of("mv3_xnnpack_q8_quantonly", {}, "AMD EPYC") == (
        "mv3",
        "xnnpack_q8_quantonly",
        "AMD EPYC",
    )
    assert series_of("mv3_xnnpack_q8", {"device": "pixel8", "variant": "q8"}, "x") == (
        "mv3",
        "q8",
        "pixel8",
    )
    assert parse_tags(["commit=abc", "device=pixel 8", "empty="]) == {
        "commit": "abc",
        "device": "pixel 8",
        "empty": "",
    }


@pytest.mark.parametrize("tag", ["novalue", "=x", "a b=c"])
def test_bad_tags_are_refused(tag: str, tmp_path: Path) -> None:
    result = run_cli("store", MIXED, "--db", tmp_path / "x.duckdb", "--tag", tag)
    assert_one_line_error(result, "--tag")
    assert not (tmp_path / "x.duckdb").exists()


def test_bad_databases_are_one_line_errors(tmp_path: Path, mv3_store: Path) -> None:
    text = tmp_path / "notes.duckdb"
    text.write_text("these are not the rows you are looking for\n")
    assert_one_line_error(run_cli("store", MIXED, "--db", text), "not a DuckDB database")
    assert text.read_text().startswith("these are")  # left as it was
    assert_one_line_error(run_cli("history", "--db", text), "not a DuckDB database")
    assert_one_line_error(
        run_cli("store", MIXED, "--db", tmp_path / "no" / "such.duckdb"), "does not exist"
    )
    assert_one_line_error(
        run_cli("history", "--db", tmp_path / "missing.duckdb"), "no results store"
    )
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE t (a INTEGER)")
    con.close()
    assert_one_line_error(run_cli("history", "--db", other), "not an etprof store")
    assert_one_line_error(run_cli("history", "--parquet", tmp_path), "no _etprof/ folder")
    assert_one_line_error(
        run_cli("store", tmp_path / "missing.etdp", "--db", other), "missing.etdp"
    )
    assert_one_line_error(run_cli("history", "--db", mv3_store, "--window", "0"), "--window")


def test_commands_that_do_not_store_never_import_duckdb(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom etprof import cli\n"
        f"sys.argv = ['etprof', 'breakdown', {str(MIXED)!r}, '-f', 'json']\n"
        "try:\n    cli.main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('DUCKDB', 'duckdb' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "DUCKDB False"


def test_parquet_pooled_from_two_machines_reads_each_run_once(tmp_path: Path) -> None:
    rows = [trace_rows(load_trace(p), p, {}) for p in (MIXED, FP32)]
    store_db.write_parquet(tmp_path / "m1", rows[:1])
    store_db.write_parquet(tmp_path / "m2", rows)  # MIXED stored on both machines
    pool = tmp_path / "pool"
    for machine in ("m1", "m2"):  # pooling is copying the trees, markers included
        shutil.copytree(tmp_path / machine, pool, dirs_exist_ok=True)
    assert len(list((pool / "runs").rglob("*.parquet"))) == 2
    tables = store_db.read_tables(parquet=pool)
    assert sorted(tables["runs"]["run_id"]) == sorted(r.run_id for r in rows)
    assert len(tables["iterations"]) == 100
    assert len(tables["buckets"]) == sum(len(r.tables["buckets"]) for r in rows)


def test_history_as_a_chart_from_report_and_history(mv3_store: Path, tmp_path: Path) -> None:
    page = tmp_path / "history.html"
    done = run_cli("report", "--db", mv3_store, "-o", page)
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    assert html.count('<svg class="chart history"') == 2  # two series: q8 and fp32
    assert html.count('data-verdict="slower"') == 1 and html.count('data-verdict="first run"') == 2
    assert "<script" not in html
    same = tmp_path / "same.html"
    assert run_cli("history", "--db", mv3_store, "-o", same).returncode == 0
    assert same.read_text() == html
    assert_one_line_error(run_cli("report", "--db", mv3_store, "-o", tmp_path / "h.json"), ".html")
    assert_one_line_error(run_cli("report", MIXED, "--db", mv3_store, "-o", page), "store")
    assert_one_line_error(run_cli("report", "-o", page), "no trace")


def test_history_gate_on_each_series_latest_run(mv3_store: Path) -> None:
    failed = run_cli("history", "--db", mv3_store, "--fail-if-slower", "5", "-f", "json")
    assert failed.returncode == 4, failed.stderr
    gate = json.loads(failed.stdout)["gate"]
    by_series = {g["series"].split(":")[0]: g["outcome"] for g in gate["series"]}
    # the q8 series' latest run is 20% slower; fp32 has one run: nothing to compare with
    assert by_series == {
        "mv3 xnnpack_q8 on AMD EPYC": "fail",
        "mv3 xnnpack_fp32 on AMD EPYC": "inconclusive",
    }
    q8 = ["--tag", "variant=xnnpack_q8"]
    assert run_cli("history", "--db", mv3_store, *q8, "--fail-if-faster", "5").returncode == 5
    passed = run_cli(
        "history", "--db", mv3_store, *q8, "--fail-if-faster", "5", "--min-sessions", "1"
    )
    assert passed.returncode == 0 and "gate: pass (exit code 0)" in passed.stdout
