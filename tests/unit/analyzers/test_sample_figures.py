"""Buckets schema v2 renamed fields without changing a figure: the breakdown of every checked-in
sample trace (and the small XNNPACK fixture read with its .pte) against the figures computed on
main before the change (tests/golden/sample_figures.json, made by scripts/sample_figures.py at
commit 620d3c7). Renamed (docs/json-schema.md): buckets xnnpack_compute -> delegate_compute and
xnnpack_glue -> delegate_glue (rows now carry backend "XnnpackBackend", and a program without a
delegate has no delegate rows: its old ones were 0); operators side "xnnpack" -> "delegated";
iterations xnnpack_ms -> delegate_ops_ms. Placeholder names resolved from the delegate graph
(docs/attribution.md): "Invalid Unary Op" -> "Hardswish (Invalid Unary Op)" in the MV3 q8 sample,
whose sidecar got its graph from scripts/attach_delegate_graph.py. Operators below XNNPACK's
timer resolution (docs/attribution.md, issue 12): the old delegate overhead is now split into
`delegate_unresolved` + `delegate_overhead` (and the iterations' `delegate_ovh_ms` into
`delegate_unres_ms` + `delegate_ovh_ms`); their sum is the old figure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from etprof import analyzers
from etprof.analyzers.breakdown import BreakdownOptions
from etprof.trace.loading import load_trace

from conftest import DATA, ROOT, sample_traces

GOLDEN = json.loads((ROOT / "tests" / "golden" / "sample_figures.json").read_text())
V1_BUCKET = {"xnnpack_compute": "delegate_compute", "xnnpack_glue": "delegate_glue"}
RESOLVED = {"Hardswish (Invalid Unary Op)": "Invalid Unary Op"}  # new name -> name on main
TRACES = [*sample_traces(), DATA / "small_xnnpack.etdp"]


def close(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-12 relative (the same ns sums, divided the same way)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=False))
    if isinstance(a, float) or isinstance(b, float):
        return bool(a == pytest.approx(b, rel=1e-12, abs=1e-12))
    return bool(a == b)


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.name)
def test_figures_are_those_of_schema_v1(path: Path) -> None:
    old = GOLDEN[path.name]
    pte = path.with_suffix(".pte") if path.parent == DATA else None
    new = analyzers.run("breakdown", load_trace(path, pte=pte), BreakdownOptions()).to_dict()
    assert close(new["run_model"]["mean_ms"], old["run_model_mean_ms"])
    rows = {r["bucket"]: r for r in new["buckets"]}
    assert len(rows) == len(new["buckets"])  # one backend: one row per bucket
    rows = dict(rows)
    if "delegate_unresolved" in rows:  # split out of the overhead: the sum is the old figure
        unresolved = rows.pop("delegate_unresolved")
        rows["delegate_overhead"] = {
            **rows["delegate_overhead"],
            "mean_ms": (rows["delegate_overhead"]["mean_ms"] + unresolved["mean_ms"]),
        }
        res = new["resolution"][0]
        assert 0 <= unresolved["mean_ms"] <= res["below_resolution"] * res["resolution_ns"] / 1e6
    for bucket, ms in old["buckets"].items():
        v2 = V1_BUCKET.get(bucket, bucket)
        if v2 in rows:
            assert close(rows[v2]["mean_ms"], ms), bucket
            assert rows[v2]["backend"] == ("XnnpackBackend" if v2.startswith("delegate") else "")
        else:  # a program without a delegate: no delegate rows, they were 0
            assert v2.startswith("delegate") and ms == 0.0, bucket
    operators = sorted(
        [
            RESOLVED.get(r["op"], r["op"]),
            "xnnpack" if r["side"] == "delegated" else r["side"],
            r["per_iter_ms"],
            r["count"],
        ]
        for r in new["operators"]
    )
    assert len(operators) == len(old["operators"])
    for n, o in zip(operators, old["operators"], strict=False):
        assert n[:2] == o[:2] and close(n[2:], o[2:])
    blocks = [
        [r["instruction"], r["call_ms"], r["compute_ms"], r["glue_ms"], r["overhead_ms"]]
        for r in new["blocks"]
    ]
    assert close(blocks, old["blocks"])
    iterations = [
        [
            r["iteration"],
            r["dropped"],
            r["run_model_ms"],
            r["delegate_ops_ms"],
            r["delegate_ovh_ms"] + r["delegate_unres_ms"],
            r["portable_ms"],
            r["dispatch_ms"],
            r["runtime_ms"],
        ]
        for r in new["iterations"]["rows"]
    ]
    assert close(iterations, old["iterations"])
    fb = new["fallback"]
    assert (fb is None) == (old["fallback_ms"] is None)
    if fb is not None:
        assert close(fb["fallback_ms"], old["fallback_ms"])
        assert close(
            sorted([c["cause"], c["class"], c["total_ms"]] for c in fb["causes"]),
            old["fallback_causes"],
        )
        assert fb["explanation"] == old["explanation"]


def test_no_sample_shows_a_bare_placeholder_name() -> None:
    """Every placeholder an XNNPACK sample reports is shown with the operator it is."""
    for path in sample_traces():
        ops = analyzers.run("breakdown", load_trace(path), BreakdownOptions()).to_dict()
        names = {r["op"] for r in ops["operators"]}
        assert "Invalid Unary Op" not in names, path.name
        if path.name == "mv3_xnnpack_q8.etdp":
            assert "Hardswish (Invalid Unary Op)" in names
