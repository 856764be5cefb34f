"""Load and first run (analyzer `loading`) on real traces, one session and several."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from etprof import analyzers
from etprof.trace.loading import load_trace
from etprof.trace.model import RUN_MODEL

from conftest import TESTS

ROOT = TESTS.parent
SAMPLE = ROOT / "sample_traces" / "mv3_xnnpack_q8.etdp"
SESSIONS = ROOT / "tests" / "data" / "small_pair_a.etdp"  # 3 sessions


@pytest.mark.parametrize("path", [SAMPLE, SESSIONS])
def test_loading_figures_follow_the_events(path: Path) -> None:
    trace = load_trace(path)
    result = analyzers.run("loading", trace)
    rows = result.sessions
    assert len(rows) == trace.sessions
    ev = trace.events
    load = ev[ev["name"] == "Program::load_method"]["duration_ns"].to_numpy() / 1e6
    init = ev[ev["name"] == "Method::init"]["duration_ns"].to_numpy() / 1e6
    assert rows["load_ms"].to_numpy() == pytest.approx(load)  # one load per session, in order
    assert rows["init_ms"].to_numpy() == pytest.approx(init)
    assert (rows["init_ms"] <= rows["load_ms"]).all()  # Method::init runs inside the load
    per_iter = trace.of_kind(RUN_MODEL).groupby("iteration")["duration_ns"].sum().to_numpy() / 1e6
    n, w = trace.session_length, trace.warmup
    firsts = per_iter[::n]
    assert rows["first_ms"].to_numpy() == pytest.approx(firsts)
    measured = np.concatenate([per_iter[s * n + w : (s + 1) * n] for s in range(trace.sessions)])
    median = float(np.median(measured))
    assert result.median_ms == pytest.approx(median)
    assert rows["first_excess_ms"].to_numpy() == pytest.approx(firsts - median)
    warm = [float((per_iter[s * n : s * n + w] - median).sum()) for s in range(trace.sessions)]
    assert rows["warmup_excess_ms"].to_numpy() == pytest.approx(warm)
    assert result.figures()["load_ms"] == pytest.approx(float(np.mean(load)))
    assert result.recorded and not result.notes()


def test_trace_without_loading_events_says_so() -> None:
    trace = load_trace(SAMPLE)
    ev = trace.events
    bare = replace(trace, events=ev[ev["iteration"] >= 0].reset_index(drop=True))
    result = analyzers.run("loading", bare)
    assert not result.recorded
    assert result.figures()["load_ms"] is None
    assert result.figures()["first_ms"] is not None
    assert "no loading events" in result.notes()[0]
