"""`etprof timeline`: Chrome trace JSON checked against the format's rules, on real and hand-built
traces (XNNPACK operators poking out of their DELEGATE_CALL and overlapping each other)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from chrome_checks import check_chrome_trace
from hypothesis import given, settings
from hypothesis import strategies as st

from etprof import render
from etprof.analyzers.timeline import TID_EXECUTE, TID_LOAD, TRACKS, Timeline, timeline
from etprof.program.types import Instruction, ProgramInfo
from etprof.trace.events import annotate
from etprof.trace.loading import load_trace
from etprof.trace.model import Trace
from etprof.trace.sidecar import TraceMeta

from conftest import TESTS, assert_one_line_error, run_cli, sample_traces

# ---------------------------------------------------------------- the format's rules, checked
# independently of etprof's own layout code


def ns(us: float) -> int:
    return round(us * 1000)


def chrome_doc(timeline: Timeline) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(render.render(timeline, "chrome"))
    return doc


# ---------------------------------------------------------------- hand-built traces


def make_trace(
    rows: list[tuple[str, str, int, int, int]], instructions: tuple[Instruction, ...] = ()
) -> Trace:
    """One Execute block from (name, delegate_op, instruction_id, start_ns, end_ns) rows."""
    n = len(rows)
    frame = pd.DataFrame(
        {
            "run": np.zeros(n, np.int32),
            "seq": np.arange(n, dtype=np.int32),
            "iteration": np.zeros(n, np.int32),
            "name": pd.Categorical([r[0] for r in rows]),
            "delegate_op": pd.Categorical([r[1] for r in rows]),
            "delegate_id_int": np.full(n, -1, np.int32),
            "instruction_id": np.array([r[2] for r in rows], np.int32),
            "chain_index": np.zeros(n, np.int32),
            "start_ns": np.array([r[3] for r in rows], np.int64),
            "end_ns": np.array([r[4] for r in rows], np.int64),
        }
    )
    frame["duration_ns"] = frame["end_ns"] - frame["start_ns"]
    meta = TraceMeta(program=ProgramInfo(instructions=instructions))
    return Trace(
        events=annotate(frame, meta), meta=meta, source="hand-built", has_meta=True
    ).with_warmup(0)


PROGRAM = (
    Instruction(0, "delegate", "XnnpackBackend", 0, ("features.0",)),
    Instruction(1, "operator", "aten::hardswish.out", -1, ("features.1.act",)),
)

# XNNPACK's whole-µs operators: the first starts before its DELEGATE_CALL, the second overlaps
# the first, the third ends after the DELEGATE_CALL.
POKING = make_trace(
    [
        ("", "Convolution (NHWC, F32) IGEMM #1", 0, 9_000, 12_000),
        ("", "Transpose (ND, X32) #1", 0, 11_000, 13_000),
        ("", "Add (ND) #1", 0, 19_000, 22_000),
        ("DELEGATE_CALL", "", 0, 10_000, 20_500),
        ("native_call_hardswish.out", "", 1, 21_100, 24_000),
        ("OPERATOR_CALL", "", 1, 21_000, 24_200),
        ("Method::execute", "", 0, 9_500, 25_000),
    ],
    PROGRAM,
)


def test_poking_xnnpack_operators_are_clamped_into_their_delegate_call() -> None:
    tl = timeline(POKING)
    ops = tl.slices[tl.slices["kind"] == "delegate_op"].set_index("op")
    assert ops.loc["Convolution (NHWC, F32) IGEMM", ["start_ns", "end_ns"]].tolist() == [
        10_000,
        12_000,
    ]
    assert ops.loc["Transpose (ND, X32)", ["start_ns", "end_ns"]].tolist() == [12_000, 13_000]
    assert ops.loc["Add (ND)", ["start_ns", "end_ns"]].tolist() == [19_000, 20_500]
    assert tl.clamped == 3 and ops["clamped"].all()
    assert ops.loc["Add (ND)", "recorded_end_ns"] == 22_000
    assert "3 XNNPACK operator slices clamped" in tl.notes()[0]
    # ExecuTorch's own events are never moved
    own = tl.slices[tl.slices["kind"] != "delegate_op"]
    assert (own["start_ns"] == own["recorded_start_ns"]).all()
    assert (own["end_ns"] == own["recorded_end_ns"]).all()


def test_chrome_document_of_hand_built_trace() -> None:
    tl = timeline(POKING)
    doc = chrome_doc(tl)
    slices = check_chrome_trace(doc)
    assert len(slices) == 7
    by_name = {e["name"]: e for e in slices}
    assert set(by_name) >= {
        "Method::execute",
        "DELEGATE_CALL XnnpackBackend",
        "OPERATOR_CALL aten::hardswish.out",
        "native_call_hardswish.out",
        "Add (ND) #1",
    }
    # timestamps in µs from the first event of the trace (the Convolution at 9 000 ns)
    execute = by_name["Method::execute"]
    assert (execute["ts"], execute["dur"]) == (0.5, 15.5)
    add = by_name["Add (ND) #1"]
    assert (add["ts"], add["dur"]) == (10.0, 1.5)
    assert add["args"]["recorded_ts_us"] == 10.0 and add["args"]["recorded_dur_us"] == 3.0
    # categories and args: delegated/portable in cat, op/instruction/module in args
    assert by_name["DELEGATE_CALL XnnpackBackend"]["cat"] == "delegated"
    assert add["cat"] == "delegated" and add["args"]["op"] == "Add (ND)"
    assert add["args"]["instruction"] == 0 and add["args"]["module"] == "features.0"
    kernel = by_name["native_call_hardswish.out"]
    assert kernel["cat"] == "portable" and kernel["args"]["op"] == "hardswish.out"
    assert by_name["OPERATOR_CALL aten::hardswish.out"]["args"]["module"] == "features.1.act"
    assert execute["cat"] == "runtime"
    assert "module" not in execute["args"]  # it runs the method, not instruction 0's module
    assert doc["otherData"]["schema"] == "etprof.timeline" and doc["otherData"]["clamped"] == 3


def test_depths_follow_the_runtime_nesting() -> None:
    depth = timeline(POKING).slices.set_index("name")["depth"]
    assert depth["Method::execute"] == 0
    assert depth["DELEGATE_CALL XnnpackBackend"] == depth["OPERATOR_CALL aten::hardswish.out"] == 1
    assert depth["Add (ND) #1"] == depth["native_call_hardswish.out"] == 2


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-3, 30), st.integers(0, 12)), min_size=1, max_size=8),
    st.integers(0, 10),
    st.integers(1, 25),
)
def test_any_xnnpack_timings_give_nesting_slices(
    ops: list[tuple[int, int]], call_start: int, call_len: int
) -> None:
    """Whatever µs XNNPACK reports, every track of the export nests."""
    us = 1000
    rows = [("", f"Op #{i}", 0, (10 + s) * us, (10 + s + d) * us) for i, (s, d) in enumerate(ops)]
    rows.append(("DELEGATE_CALL", "", 0, (10 + call_start) * us, (10 + call_start + call_len) * us))
    rows.append(("Method::execute", "", 0, 9 * us, (40 + call_start + call_len) * us))
    tl = timeline(make_trace(rows))
    check_chrome_trace(chrome_doc(tl))
    call = tl.slices[tl.slices["kind"] == "delegate_call"].iloc[0]
    inside = tl.slices[tl.slices["kind"] == "delegate_op"]
    assert (inside["start_ns"] >= call["start_ns"]).all()
    assert (inside["end_ns"] <= call["end_ns"]).all()


# ---------------------------------------------------------------- real traces


@pytest.fixture(scope="module")
def small(small_trace_path: Path) -> Trace:
    return load_trace(small_trace_path)


@pytest.fixture(scope="module")
def small_trace_path() -> Path:
    return TESTS / "data" / "small_xnnpack.etdp"


def real_traces() -> list[Path]:
    return [TESTS / "data" / "small_xnnpack.etdp", *sample_traces()]


@pytest.mark.parametrize("path", real_traces(), ids=lambda p: p.stem)
def test_real_trace_first_measured_iteration(path: Path) -> None:
    trace = load_trace(path)
    tl = timeline(trace)
    assert tl.iterations == (trace.warmup,)
    slices = check_chrome_trace(chrome_doc(tl))
    ev = trace.events[trace.events["iteration"] == trace.warmup]
    expected = ev[ev["kind"] != "load"]
    assert len(slices) == len(expected)
    count = pd.Series([e["args"]["kind"] for e in slices]).value_counts().to_dict()
    assert count == expected["kind"].astype(str).value_counts().to_dict()
    # Method::execute comes through exactly, in µs
    (rm,) = [e for e in slices if e["name"] == "Method::execute"]
    (rm_ns,) = expected.loc[expected["kind"] == "run_model", "duration_ns"].tolist()
    assert ns(rm["dur"]) == rm_ns
    # every XNNPACK operator sits inside a DELEGATE_CALL of its instruction
    calls = [e for e in slices if e["args"]["kind"] == "delegate_call"]
    for op in (e for e in slices if e["args"]["kind"] == "delegate_op"):
        assert op["cat"] == "delegated"
        assert any(
            c["args"]["instruction"] == op["args"]["instruction"]
            and ns(c["ts"]) <= ns(op["ts"])
            and ns(op["ts"]) + ns(op["dur"]) <= ns(c["ts"]) + ns(c["dur"])
            for c in calls
        ), op
    for k in (e for e in slices if e["args"]["kind"] == "kernel"):
        assert k["cat"] == "portable" and k["name"].startswith("native_call_")


def test_all_iterations_add_loading_track(small: Trace) -> None:
    tl = timeline(small, all_iterations=True)
    doc = chrome_doc(tl)
    slices = check_chrome_trace(doc)
    assert len(slices) == len(small.events)
    names = {e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "thread_name"}
    assert names == {TRACKS[TID_EXECUTE], TRACKS[TID_LOAD]}
    loading = [e for e in slices if e["tid"] == TID_LOAD]
    assert {e["name"] for e in loading} == {"Program::load_method", "Method::init"}
    assert sorted({e["args"]["iteration"] for e in slices}) == [-1, *range(small.iterations)]


def test_iteration_option_selects_that_iteration(small: Trace) -> None:
    tl = timeline(small, 3)
    assert set(tl.slices["iteration"]) == {3}
    ev = small.events
    rm = ev[(ev["iteration"] == 3) & (ev["kind"] == "run_model")].iloc[0]
    first = tl.slices.iloc[0]
    assert (first["name"], first["start_ns"]) == ("Method::execute", rm["start_ns"])


def test_csv_reads_back_to_the_same_values(small: Trace) -> None:
    tl = timeline(small)
    back = pd.read_csv(io.StringIO(render.render(tl, "csv")))
    pd.testing.assert_frame_equal(back, tl.slices, check_dtype=False)


def test_json_document_is_versioned(small: Trace) -> None:
    doc = json.loads(render.render(timeline(small), "json"))
    assert doc["schema"] == "etprof.timeline" and doc["version"] == 2
    assert len(doc["slices"]) == len(timeline(small).slices)


# ---------------------------------------------------------------- the command


def test_cli_writes_a_chrome_trace_without_torch(small_trace_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "trace.json"
    code = (
        "import sys\n"
        "from etprof import cli\n"
        f"sys.argv = ['etprof', 'timeline', {str(small_trace_path)!r}, '-o', {str(out)!r}]\n"
        "try:\n    cli.main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print(sorted(m for m in ('torch', 'executorch') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    slices = check_chrome_trace(json.loads(out.read_text()))
    assert {e["args"]["iteration"] for e in slices} == {10}


def test_cli_all_and_csv(small_trace_path: Path, tmp_path: Path) -> None:
    result = run_cli("timeline", small_trace_path, "--all", "-o", tmp_path / "all.json")
    assert result.returncode == 0, result.stderr
    assert len(check_chrome_trace(json.loads((tmp_path / "all.json").read_text()))) == 202
    result = run_cli("timeline", small_trace_path, "-f", "csv", "--iteration", "0")
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(io.StringIO(result.stdout))
    assert set(frame["iteration"]) == {0} and (frame["depth"] >= 0).all()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--iteration", "20"], "out of range"),
        (["--iteration", "1", "--all"], "--iteration and --all"),
        (["-f", "table"], "unknown format"),
    ],
)
def test_cli_bad_input_is_one_line(
    small_trace_path: Path, tmp_path: Path, args: list[str], needle: str
) -> None:
    out = tmp_path / "never.json"
    assert_one_line_error(run_cli("timeline", small_trace_path, *args, "-o", out), needle)
    assert not out.exists()


def test_cli_negative_iteration(small_trace_path: Path) -> None:
    assert_one_line_error(
        run_cli("timeline", small_trace_path, "--iteration", "-1"), "--iteration -1 is outside"
    )


def test_all_warmup_trace_asks_for_an_iteration(small: Trace) -> None:
    from etprof.errors import InputError

    with pytest.raises(InputError, match="all of them warm-up"):
        timeline(small.with_warmup(small.iterations))


def test_cli_pte_names_the_instructions_of_a_trace_without_metadata(
    small_trace_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "t.json"
    bare = run_cli("timeline", small_trace_path, "-o", out)
    assert bare.returncode == 0, bare.stderr
    names = {e["name"] for e in check_chrome_trace(json.loads(out.read_text()))}
    assert "DELEGATE_CALL" in names and "DELEGATE_CALL XnnpackBackend" not in names
    pte = small_trace_path.with_suffix(".pte")
    named = run_cli("timeline", small_trace_path, "--pte", pte, "-o", out)
    assert named.returncode == 0, named.stderr
    slices = check_chrome_trace(json.loads(out.read_text()))
    names = {e["name"] for e in slices}
    assert {"DELEGATE_CALL XnnpackBackend", "OPERATOR_CALL aten::mean.out"} <= names
    assert {e["args"].get("op") for e in slices if e["args"]["kind"] == "operator_call"} == {
        "aten::mean.out"
    }
