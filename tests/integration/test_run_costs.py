"""`etprof run` measures memory per session and times the program untraced beside the traced
iterations (metadata v4 `run.memory`, `run.untraced`); the summary reports both, with load time
and planned memory. Real runs of the small XNNPACK program, in forked sessions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from etprof import analyzers, render
from etprof.program.reader import Program
from etprof.trace.loading import load_trace
from etprof.trace.sidecar import TraceMeta, sidecar_path

from conftest import DATA, run_cli

SESSIONS, ITERS, WARMUP = 2, 24, 4


def _run(
    work: Path, *extra: str, formats: tuple[str, ...] = ("json", "table")
) -> tuple[TraceMeta, dict[str, object], str]:
    """One run printing JSON (its sidecar is returned) and one printing the table."""
    out = []
    for fmt in formats:
        folder = work / fmt
        folder.mkdir()
        pte = folder / "small_xnnpack.pte"
        shutil.copy(DATA / "small_xnnpack.pte", pte)
        done = run_cli(
            "run",
            pte,
            "--iters",
            str(ITERS),
            "--warmup",
            str(WARMUP),
            "--sessions",
            str(SESSIONS),
            "--spread",
            "0",
            "--format",
            fmt,
            *extra,
        )
        assert done.returncode == 0, done.stderr
        out.append(done.stdout)
    meta = TraceMeta.from_json(sidecar_path(work / "json" / "small_xnnpack.etdp").read_text())
    table = (
        out[1]
        if len(out) > 1
        else render.render(
            analyzers.run("summary", load_trace(work / "json" / "small_xnnpack.etdp")), "table"
        )
    )
    return meta, json.loads(out[0]), table


@pytest.fixture(scope="module")
def with_untraced(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[TraceMeta, dict[str, object], str]:
    return _run(tmp_path_factory.mktemp("untraced"))


@pytest.fixture(scope="module")
def without_untraced(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[TraceMeta, dict[str, object], str]:
    return _run(tmp_path_factory.mktemp("traced_only"), "--no-untraced", formats=("json",))


@pytest.mark.slow
def test_sidecar_records_memory_and_untraced_per_session(
    with_untraced: tuple[TraceMeta, dict[str, object], str],
) -> None:
    meta, _, _ = with_untraced
    assert meta.program.memory == Program.read(DATA / "small_xnnpack.pte").memory
    assert len(meta.run.memory) == SESSIONS and len(meta.run.untraced) == SESSIONS
    for m in meta.run.memory:
        assert m.before_load_bytes and m.after_load_bytes and m.measured_peak_bytes
        assert m.untraced_copy_bytes is not None
        if m.peak_reset:  # a peak over a phase is at least where the phase started
            assert m.warmup_peak_bytes is not None and m.warmup_peak_bytes >= m.after_load_bytes
            assert m.measured_start_bytes is not None
            assert m.measured_peak_bytes >= m.measured_start_bytes
    for u in meta.run.untraced:
        assert len(u.traced_ms) == len(u.untraced_ms) == ITERS - WARMUP
        assert min(u.traced_ms) > 0 and min(u.untraced_ms) > 0


@pytest.mark.slow
def test_summary_reports_overhead_from_the_pairs(
    with_untraced: tuple[TraceMeta, dict[str, object], str],
) -> None:
    meta, doc, table = with_untraced
    overhead = doc["overhead"]
    assert isinstance(overhead, dict)
    traced = np.concatenate([u.traced_ms for u in meta.run.untraced])
    untraced = np.concatenate([u.untraced_ms for u in meta.run.untraced])
    assert overhead["overhead_pct"] == pytest.approx(100 * (traced.mean() / untraced.mean() - 1))
    assert (
        overhead["overhead_ci_low_pct"]
        <= overhead["overhead_pct"]
        <= overhead["overhead_ci_high_pct"]
    )
    run_model = doc["run_model"]
    assert isinstance(run_model, dict)
    assert overhead["run_model_traced_ms"] == pytest.approx(run_model["mean_ms"])
    assert overhead["run_model_untraced_ms"] == pytest.approx(
        run_model["mean_ms"] - (traced.mean() - untraced.mean())
    )
    loading = doc["loading"]
    assert isinstance(loading, dict) and len(loading["sessions"]) == SESSIONS
    assert loading["load_ms"] > 0 and loading["init_ms"] > 0
    memory = doc["memory"]
    assert isinstance(memory, dict)
    assert memory["weights_bytes"] == 1040 and memory["activations_bytes"] == 9408
    assert len(memory["sessions"]) == SESSIONS
    # the headline leads with the shipped figure (docs/attribution.md), the traced mean and
    # the untraced call figures beside it
    head = " ".join(table.split("\n\n")[0].split())
    assert head.split(": run model ", 1)[1].startswith("shipped"), head
    assert "traced mean" in head and "untraced" in head
    for figure in (
        "load",
        "first inference",
        "planned memory",
        "resident memory",
        "profiler overhead",
    ):
        assert f" {figure} " in table


@pytest.mark.slow
def test_no_untraced_skips_the_second_load(
    without_untraced: tuple[TraceMeta, dict[str, object], str],
) -> None:
    meta, doc, table = without_untraced
    assert meta.run.untraced == ()
    assert all(m.untraced_copy_bytes is None for m in meta.run.memory)
    overhead = doc["overhead"]
    assert isinstance(overhead, dict) and overhead["overhead_pct"] is None
    assert "profiler overhead  not measured" in table
