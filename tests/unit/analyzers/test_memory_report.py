"""The memory and overhead analyzers' arithmetic, the diff's load/memory facts, and units, on
real checked-in traces and hand-made session samples."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from etprof import analyzers
from etprof.analyzers.diff import DiffOptions, diff_traces
from etprof.analyzers.memory import NEEDS_PTE, NOT_MEASURED, allocation_summary
from etprof.analyzers.stats.significance import rank_test
from etprof.program.reader import Program
from etprof.trace.loading import load_trace
from etprof.trace.model import Trace
from etprof.trace.sidecar import SessionMemory, UntracedTimes
from etprof.units import bytes_text, ms_text

from conftest import TESTS

DATA = TESTS / "data"
SAMPLE = DATA.parent.parent / "sample_traces" / "mv3_xnnpack_q8.etdp"


def _with_samples(
    path: Path, memory: tuple[SessionMemory, ...], untraced: tuple[UntracedTimes, ...] = ()
) -> Trace:
    t = load_trace(path, pte=DATA / "small_xnnpack.pte")
    run = replace(t.meta.run, memory=memory, untraced=untraced)
    return replace(t, meta=replace(t.meta, run=run))


def test_pte_gives_the_plan_and_footprint_beyond_it() -> None:
    mb = 1_000_000
    sessions = (
        SessionMemory(100 * mb, 101 * mb, None, 110 * mb, 110 * mb, 112 * mb, True),
        SessionMemory(100 * mb, 101 * mb, None, 112 * mb, 112 * mb, 113 * mb, True),
    )
    report = analyzers.run("memory", _with_samples(DATA / "small_xnnpack.etdp", sessions))
    plan = Program.read(DATA / "small_xnnpack.pte").memory
    total = plan.weights_bytes + plan.activations_bytes("forward") + plan.delegate_bytes
    f = report.figures()
    assert f["planned_total_bytes"] == total == 1040 + 9408 + 1920
    assert f["footprint_bytes"] == pytest.approx(11 * mb)  # mean of 10 and 12 MB
    assert f["beyond_plan_bytes"] == pytest.approx(11 * mb - total)
    assert f["measured_peak_bytes"] == pytest.approx(112.5 * mb)
    assert report.sessions()["growth_measured_mb"].tolist() == pytest.approx([2.0, 1.0])
    assert NEEDS_PTE not in report.notes() and NOT_MEASURED not in report.notes()
    assert "weights 1.04 kB" in report.line()


def test_a_trace_without_metadata_says_what_each_figure_needs() -> None:
    report = analyzers.run("memory", load_trace(SAMPLE))  # v3 metadata: no plan, no samples
    assert report.planned is None and not report.measured
    assert NEEDS_PTE in report.notes() and NOT_MEASURED in report.notes()
    assert all(v is None for v in report.figures().values())
    summary = analyzers.run("summary", load_trace(SAMPLE))
    rows = dict(summary.tables()["load, memory, overhead"].itertuples(index=False))
    assert rows["planned memory"] == "needs the .pte (--pte)"
    assert rows["profiler overhead"] == "not measured"


def test_overhead_is_the_ratio_of_the_paired_means() -> None:
    traced = (1.10, 1.12, 1.08, 1.11) * 5
    untraced = (1.00, 1.01, 0.99, 1.00) * 5
    t = _with_samples(DATA / "small_xnnpack.etdp", (), (UntracedTimes(traced, untraced),))
    o = analyzers.run("overhead", t)
    f = o.figures()
    assert f["overhead_pct"] == pytest.approx(100 * (np.mean(traced) / np.mean(untraced) - 1))
    assert f["overhead_ci_low_pct"] <= f["overhead_pct"] <= f["overhead_ci_high_pct"]
    assert f["overhead_ci_low_pct"] > 5  # every pair is 8-12% slower traced
    assert f["run_model_untraced_ms"] == pytest.approx(
        f["run_model_traced_ms"] - (np.mean(traced) - np.mean(untraced))
    )


def test_diff_compares_load_times_with_a_rank_test_over_sessions() -> None:
    a, b = load_trace(DATA / "small_pair_a.etdp"), load_trace(DATA / "small_pair_b.etdp")
    facts = diff_traces(a, b, DiffOptions()).facts.set_index("fact")
    la = analyzers.run("loading", a).sessions["load_ms"].to_numpy()
    lb = analyzers.run("loading", b).sessions["load_ms"].to_numpy()
    row = facts.loc["load (Program::load_method)"]
    assert row["a"] == pytest.approx(la.mean()) and row["b"] == pytest.approx(lb.mean())
    assert row["p_value"] == pytest.approx(rank_test(la, lb))
    assert "planned weights" not in facts.index  # neither trace's metadata has the plan


def test_diff_of_one_session_traces_gives_facts_without_p_values() -> None:
    a = load_trace(SAMPLE.with_name("mv3_xnnpack_q8_quantonly.etdp"))
    result = diff_traces(a, load_trace(SAMPLE), DiffOptions())
    assert result.facts["p_value"].isna().all()
    assert any("planned memory not compared" in n for n in result.notes())


def test_allocation_events_summed_per_allocator() -> None:
    t = load_trace(DATA / "small_xnnpack.etdp")
    alloc = pd.DataFrame({"run": [0, 0, 1], "allocator_id": [0, 1, 0], "size": [64, 32, 16]})
    table = allocation_summary(replace(t, allocations=alloc)).set_index("allocator")
    assert table.loc["0", "allocations"] == 2 and table.loc["0", "total_bytes"] == 80
    assert table.loc["0", "max_bytes"] == 64 and table.loc["1", "total_bytes"] == 32


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0.77, "770 µs"),
        (9.0, "9.00 ms"),
        (12.345, "12.3 ms"),
        (0.9999, "1.00 ms"),
        (0.00005, "50.0 ns"),
        (1234.5, "1234 ms"),
        (None, "-"),
    ],
)
def test_durations_read_with_three_significant_digits(ms: float | None, text: str) -> None:
    assert ms_text(ms) == text


def test_sizes_in_decimal_units() -> None:
    assert [bytes_text(n) for n in (512, 61008, 2641064)] == ["512 B", "61.0 kB", "2.64 MB"]


def test_report_has_a_memory_section_saying_what_is_missing() -> None:
    from etprof.analyzers._report import ReportOptions, build_report
    from etprof.render import render

    html = render(build_report(load_trace(SAMPLE), None, ReportOptions()), "html")
    section = html.split('<section class="card" id="memory">', 1)[1].split("</section>", 1)[0]
    assert "Load, memory and the profiler" in section
    assert "needs the .pte (--pte)" in section and "not measured" in section
    assert "Method::init" in section
