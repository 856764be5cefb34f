"""History at store scale: the vectorised judgments give today's verdicts.

A store of 2,000 synthetic runs (copies of a real trace's rows, varied: drift, steps, sessions,
contention; etprof.store.synthetic) is judged by the history analyzer and by the previous
implementation kept verbatim in tests/history_reference.py (one `significance.compare` per run,
one filter of the bucket and operator tables per change). Both run here, in this test.
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from etprof.analyzers.history import HistoryOptions, StoredRuns, history
from etprof.analyzers.stats.significance import Method, compare
from etprof.analyzers.stats.significance_batch import Pair, compare_many
from etprof.store import db as store_db
from etprof.store.rows import trace_rows
from etprof.store.schema import TABLES
from etprof.store.synthetic import synthetic_runs
from etprof.trace.loading import load_trace

import history_reference
from conftest import ROOT, run_cli

TRACE = ROOT / "sample_traces" / "mv3_xnnpack_q8.etdp"
NUMBERS = ["baseline_ms", "change_pct", "ci_low_pct", "ci_high_pct", "p_value"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> StoredRuns:
    base = trace_rows(load_trace(TRACE), TRACE, {})
    path = tmp_path_factory.mktemp("scale") / "s.duckdb"
    store_db.store(path, synthetic_runs(base, 2000))
    return StoredRuns(store_db.read_tables(db=path))


def _same(new: pd.DataFrame, old: pd.DataFrame) -> None:
    assert len(new) == len(old)
    text = [c for c in old.columns if c not in NUMBERS and c != "mean_ms"]
    pd.testing.assert_frame_equal(
        new[text].reset_index(drop=True).astype(str), old[text].reset_index(drop=True).astype(str)
    )
    for c in [*NUMBERS, "mean_ms"]:
        np.testing.assert_allclose(
            new[c].to_numpy(float),
            old[c].to_numpy(float),
            rtol=1e-9,
            atol=1e-12,
            equal_nan=True,
            err_msg=c,
        )


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        HistoryOptions(),
        HistoryOptions(
            model="model3", window=3, statistic="median", noise_pct=0.5, fail_if_slower=2.0
        ),
    ],
    ids=["default", "window3-median-gate"],
)
def test_history_gives_the_verdicts_of_the_previous_implementation(
    store: StoredRuns, options: HistoryOptions
) -> None:
    ref = history_reference.history(history_reference.StoredRuns(store.tables), options)
    new = history(store, options)
    _same(new.runs, ref.runs)
    verdicts = new.runs["verdict"].value_counts().to_dict()
    # the store exercises every kind of outcome, not only "no change"
    assert verdicts.get("slower", 0) > 0 and verdicts.get("faster", 0) > 0
    assert verdicts.get("no significant change", 0) > 0
    assert (new.runs["moved"] != "").sum() > 0
    assert [(label, g.outcome) for label, g in new.gates] == [
        (label, g.outcome) for label, g in ref.gates
    ]
    assert new.notes() == ref.notes()


def test_compare_many_is_compare_pair_by_pair() -> None:
    """Real iterations (the sample trace's) against scaled copies, one and two sessions."""
    ms = trace_rows(load_trace(TRACE), TRACE, {}).columns["iterations"]["run_model_ms"]
    ms = np.asarray(ms, dtype=np.float64)
    rng = np.random.default_rng(3)
    pairs = []
    for i in range(300):
        b = ms[: 30 + i % 21] * (1.0 + 0.03 * rng.normal()) * rng.normal(1, 0.01, 30 + i % 21)
        sessions = np.arange(ms.size) % 2 if i % 4 == 0 else None
        pairs.append(
            Pair(ms, b, Method(contention_pct=float(i % 3), noise_pct=0.5), sessions, None)
        )
    many = compare_many(pairs)
    for p, c in zip(pairs, many, strict=True):
        ref = compare(p.a, p.b, p.method, sessions_a=p.sessions_a, sessions_b=p.sessions_b)
        assert c.verdict == ref.verdict and c.reason == ref.reason
        for field in (
            "change_pct",
            "ci_low_pct",
            "ci_high_pct",
            "p_value",
            "session_ci_low_pct",
            "session_ci_high_pct",
        ):
            x, y = getattr(c, field), getattr(ref, field)
            assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=1e-9), field
    assert {c.verdict for c in many} == {"faster", "slower", "no significant change"}


def test_runs_judged_once_are_read_back_not_judged_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = trace_rows(load_trace(TRACE), TRACE, {})
    runs = synthetic_runs(base, 340)
    path = tmp_path / "s.duckdb"
    store_db.store(path, runs[:300])
    # through the command: the first call judges and keeps every comparison, the second
    # reads them back and prints the same
    first = run_cli("history", "--db", path, "-f", "json")
    assert first.returncode == 0, first.stderr
    con = duckdb.connect(str(path), read_only=True)
    assert con.sql("SELECT count(*) FROM verdicts").fetchall() == [(300 - 20,)]  # all but firsts
    con.close()
    assert run_cli("history", "--db", path, "-f", "json").stdout == first.stdout

    def judged(options: HistoryOptions | None = None) -> tuple[int, pd.DataFrame]:
        tables = store_db.read_tables(db=path, tables=(*TABLES, "verdicts"))
        result = history(StoredRuns(tables), options or HistoryOptions())
        store_db.save_verdicts(path, result.judged)
        return len(result.judged), result.runs

    fresh = history(StoredRuns(store_db.read_tables(db=path)), HistoryOptions()).runs
    again, read_back = judged()
    assert again == 0
    pd.testing.assert_frame_equal(read_back, fresh)
    store_db.store(path, runs[300:])  # 40 later runs: only they are judged
    assert judged()[0] == 40
    assert judged(HistoryOptions(window=2))[0] == 340 - 20  # another window: all again
    monkeypatch.setattr("etprof.analyzers._history_cache.JUDGE_VERSION", 99)
    assert judged()[0] == 340 - 20  # new judging code: all again
