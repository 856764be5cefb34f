"""Diff across precisions (issue 12 item 3): operators of a float and a quantized lowering of
one model are paired by kind, the precision change is an attribute of the row, and a
placeholder pairs with its resolved name (issue 11), on the MobileNetV3 samples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from etprof.analyzers.diff import DiffOptions, diff_traces
from etprof.trace.loading import load_trace

from conftest import SAMPLES

FP32 = SAMPLES / "mv3_xnnpack_fp32.etdp"
Q8 = SAMPLES / "mv3_xnnpack_q8.etdp"
RESOLVED = "Hardswish (Invalid Unary Op)"


def without_graph(tmp_path: Path) -> Path:
    """The q8 sample as a trace recorded before delegate graphs were read: its sidecar's
    instructions without `graph`, so XNNPACK's placeholder stays bare (same trace bytes)."""
    dst = tmp_path / "mv3_q8_old.etdp"
    shutil.copyfile(Q8, dst)
    doc = json.loads(Q8.with_suffix(".etprof.json").read_text())
    for i in doc["program"]["instructions"]:
        i.pop("graph", None)
    dst.with_suffix(".etprof.json").write_text(json.dumps(doc))
    return dst


def operator_rows(a: Path, b: Path, **options: object) -> object:
    result = diff_traces(load_trace(a), load_trace(b), DiffOptions(**options))  # type: ignore[arg-type]
    rows = result.contributors
    return result, rows[rows["kind"] == "operator"]


def test_fp32_against_q8_lists_each_operator_kind_once() -> None:
    result, ops = operator_rows(FP32, Q8)
    assert result.match == "operator"  # two programs: the same table, other operators
    # every convolution and GEMM ran on both sides: paired, never a vanished F32 row beside a
    # new QC8 one
    heavy = ops[ops["contributor"].str.match(r"^(Convolution|Fully Connected)")]
    assert len(heavy) >= 2
    assert (heavy["calls_a"] == heavy["calls_b"]).all() and (heavy["calls_a"] > 0).all()
    assert set(heavy["precision"]) <= {"F32 -> QC8", "F32 -> QS8, QC8W"}
    assert "F32 -> QC8" in set(heavy["precision"])
    # float hardswish and the quantized one XNNPACK names by a placeholder are one row
    hs = ops[ops["contributor"] == "HardSwish"]
    assert len(hs) == 1 and hs["calls_a"].iloc[0] == hs["calls_b"].iloc[0] == 19
    # shares are of the run-model delta, and a row paired is no longer +-100s of percent
    assert ops["share_pct"].abs().max() < 100
    assert ops["delta_ms"].sum() + result.contributors.loc[
        result.contributors["kind"] == "overhead", "delta_ms"
    ].sum() == pytest.approx(result.mean_delta_ms, abs=1e-9)
    table = result.top_contributors()
    assert "precision" in table.columns


def test_a_bare_placeholder_pairs_with_its_resolved_name(tmp_path: Path) -> None:
    old = without_graph(tmp_path)
    assert "Invalid Unary Op" in set(load_trace(old).events["op"].astype(str))
    # one program: instruction by instruction, the bare and the resolved name are one row
    result, ops = operator_rows(old, Q8)
    assert result.match == "instruction"
    _, own = operator_rows(Q8, Q8)
    assert len(ops) == len(own)
    named = ops[ops["contributor"].str.contains("Invalid Unary Op", regex=False)]
    assert len(named) == 19 and named["contributor"].str.startswith(RESOLVED).all()
    assert (named["a_ms"] > 0).all() and (named["b_ms"] > 0).all()
    # by operator: the bare placeholder stands for the one resolved name the other side has
    result, ops = operator_rows(old, Q8, match="operator")
    named = ops[ops["contributor"].str.contains("Invalid Unary Op", regex=False)]
    assert list(named["contributor"]) == [RESOLVED]
    assert named["calls_a"].iloc[0] == named["calls_b"].iloc[0] == 19
