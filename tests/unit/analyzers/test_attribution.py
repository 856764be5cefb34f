"""The attribution model (docs/attribution.md): buckets, delegate blocks, modules, iterations.

Checked on every real trace (sample_traces/*.etdp, found by glob, and the small XNNPACK fixture)
and on hand-built traces (written with tests/etdump_builder.py, no torch), whose expected numbers
are worked out by hand in the test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hand_runs import (
    MODEL_ITERS,
    MODEL_WARMUP,
    write_empty_trace,
    write_model_trace,
)

from etprof.analyzers.blocks import OVERHEAD_EVENT, block_tables
from etprof.analyzers.breakdown import BreakdownOptions, breakdown
from etprof.analyzers.buckets import BUCKETS, bucket_frame
from etprof.analyzers.iterations import spearman, stability
from etprof.analyzers.modules import (
    ROOT,
    RUNTIME,
    UNKNOWN,
    common_module,
    module_frame,
    module_label,
)
from etprof.analyzers.operators import operator_frame
from etprof.analyzers.stats.significance import rank_test, rank_tests
from etprof.backends.xnnpack import BACKEND as XNNPACK
from etprof.backends.xnnpack import GLUE_OP
from etprof.trace.loading import load_trace
from etprof.trace.model import DELEGATE_CALL, DELEGATE_OP, KERNEL, OPERATOR_CALL, RUN_MODEL, Trace

from conftest import DATA, inspector_means, sample_traces

REAL_TRACES = [*sample_traces(), DATA / "small_xnnpack.etdp"]


# -- hand-built traces (written with tests/etdump_builder.py: no torch) -------------------------


@pytest.fixture(scope="module")
def model_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_trace(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def empty_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_empty_trace(tmp_path_factory.mktemp("empty"))


# -- the glue classification, against XNNPACK's real operator names ------------------------------

# Names as they appear in this executorch's XNNPACK (xnn_operator_type_to_string, + microkernel),
# seen in real q8 / qd8 / fp32 traces made with `etprof run`.
GLUE_NAMES = [
    "Convert (NC)",  # static q8: F32 -> QS8 at a delegate's input, QS8 -> F32 at its output
    "Convert (NC, F32, QD8)",  # dynamic quantization of activations
    "Convert (NC, F32, QP8)",
    "Transpose (ND, X8)",  # NCHW <-> NHWC around q8 convolutions
    "Transpose (ND, X32)",
    "Copy (NC, X32)",
    "Static Reshape (NC)",
    "Static Expand Dims (NC)",
    "Fuse Dims (NC)",
    "Split Dims (NC)",
]
COMPUTE_NAMES = [
    "Convolution (NHWC, QC8) IGEMM",
    "Convolution (NHWC, QC8) DWConv",
    "Convolution (NHWC, F32) IGEMM",
    "Convolution (NHWC, QD8, F32, QC8W) IGEMM",
    "Fully Connected (NC, QS8, QC8W) GEMM",
    "Fully Connected (NC, QD8, F32, QC8W) GEMM",
    "Batch Matrix Multiply (NC, F32) GEMM",
    "Copy Sign (ND)",  # arithmetic that merely starts like "Copy"
    "HardSwish (NC)",
    "Add (ND)",
    "Mean (ND)",
    "Softmax (NC, F32)",
    "Slice (ND, X32)",
    "Constant Pad (ND, X8)",
]


@pytest.mark.parametrize("name", GLUE_NAMES)
def test_glue_names(name: str) -> None:
    assert XNNPACK.is_glue(name)


@pytest.mark.parametrize("name", COMPUTE_NAMES)
def test_compute_names(name: str) -> None:
    assert not XNNPACK.is_glue(name)


@pytest.mark.parametrize("path", REAL_TRACES, ids=lambda p: p.name)
def test_glue_on_real_operator_names(path: Path) -> None:
    """Every real XNNPACK operator whose name starts like a layout/precision op is glue, and
    no convolution, fully-connected or matrix multiply is."""
    ops = load_trace(path).of_kind(DELEGATE_OP)["op"].astype(str).unique()
    for op in ops:
        head = op.split(" (")[0]
        if head in ("Convert", "Transpose", "Copy", "Static Reshape"):
            assert XNNPACK.is_glue(op), op
        if head.startswith(("Convolution", "Fully Connected", "Batch Matrix Multiply")):
            assert not XNNPACK.is_glue(op), op
    assert GLUE_OP.pattern  # the regex is public (etprof.backends.xnnpack)


# -- the invariant: buckets sum to run model exactly, per iteration ------------------------------


def check_buckets(trace: Trace) -> pd.DataFrame:
    b = bucket_frame(trace)
    assert b.dtypes.map(lambda d: d == np.int64).all()
    assert (b[list(BUCKETS)].sum(axis=1) == b["run_model"]).all()
    ev = trace.events[trace.events["iteration"] >= 0]
    by = ev.groupby("iteration")

    def total(kind: str) -> pd.Series:
        return by.apply(
            lambda g: int(g.loc[g["kind"] == kind, "duration_ns"].sum()), include_groups=False
        ).reindex(b.index, fill_value=0)

    # each bucket is what its definition says, computed independently here
    assert ((b["delegate_compute"] + b["delegate_glue"]) == total(DELEGATE_OP)).all()
    assert (b["portable_kernels"] == total(KERNEL)).all()
    assert (
        (
            b["delegate_compute"]
            + b["delegate_glue"]
            + b["delegate_unresolved"]
            + b["delegate_overhead"]
        )
        == total(DELEGATE_CALL)
    ).all()
    # below timer resolution: never negative, at most 1 us per XNNPACK operator reading 0
    zero = by.apply(
        lambda g: int(((g["kind"] == DELEGATE_OP) & (g["duration_ns"] < 1000)).sum()),
        include_groups=False,
    ).reindex(b.index, fill_value=0)
    assert ((b["delegate_unresolved"] >= 0) & (b["delegate_unresolved"] <= 1000 * zero)).all()
    assert ((b["portable_kernels"] + b["dispatch_overhead"]) == total(OPERATOR_CALL)).all()
    assert (b["run_model"] == total(RUN_MODEL)).all()
    return b


def check_nesting(trace: Trace) -> None:
    """The model's premise: calls do not overlap one another and lie inside Method::execute,
    and each kernel lies inside an OPERATOR_CALL of its instruction; otherwise the subtractions
    would count time twice."""
    ev = trace.events[trace.events["iteration"] >= 0]
    for _, g in ev.groupby("iteration"):
        rm = g[g["kind"] == RUN_MODEL]
        assert len(rm) == 1
        lo, hi = int(rm["start_ns"].iloc[0]), int(rm["end_ns"].iloc[0])
        calls = g[g["kind"].isin([DELEGATE_CALL, OPERATOR_CALL])].sort_values("start_ns")
        assert (calls["start_ns"] >= lo).all() and (calls["end_ns"] <= hi).all()
        assert (calls["start_ns"].to_numpy()[1:] >= calls["end_ns"].to_numpy()[:-1]).all()
        ops = g[g["kind"] == OPERATOR_CALL].set_index("instruction_id")
        for k in g[g["kind"] == KERNEL].itertuples():
            call = ops.loc[k.instruction_id]
            assert call["start_ns"] <= k.start_ns and k.end_ns <= call["end_ns"]


@pytest.mark.parametrize("path", REAL_TRACES, ids=lambda p: p.name)
def test_buckets_sum_to_run_model_on_real_traces(path: Path) -> None:
    trace = load_trace(path)
    check_nesting(trace)
    b = check_buckets(trace)
    assert len(b) == trace.iterations  # warm-up included: the invariant holds in every iteration
    measured = bucket_frame(trace.measured())
    assert len(measured) == trace.iterations - trace.warmup


def test_buckets_on_the_hand_built_model(model_trace: Path) -> None:
    trace = load_trace(model_trace)
    check_nesting(trace)
    b = check_buckets(trace)
    i = np.arange(MODEL_ITERS)
    assert (b["delegate_compute"] == 34_000).all()  # Conv 30 us + Fully Connected 4 us
    assert (b["delegate_glue"] == 10_000).all()  # Converts 2 + 3 us, Transpose 5 us
    assert (b["delegate_overhead"] == (45_000 + 1_000 * i - 37_000) + (6_500 - 7_000)).all()
    assert (b["portable_kernels"] == 18_500).all()
    assert (b["dispatch_overhead"] == 1_500).all()
    assert (
        b["runtime_overhead"] == 80_000 + 1_000 * i - (45_000 + 1_000 * i) - 20_000 - 6_500
    ).all()


def test_empty_trace_is_all_runtime(empty_trace: Path) -> None:
    trace = load_trace(empty_trace)
    b = check_buckets(trace)
    assert (b["runtime_overhead"] == b["run_model"]).all()
    assert (b[list(BUCKETS[:-1])] == 0).all().all()


# -- delegate blocks ----------------------------------------------------------------------------


def test_blocks_of_the_hand_built_model(model_trace: Path) -> None:
    trace = load_trace(model_trace).measured()
    blocks, ops, negative = block_tables(trace)
    b = blocks.set_index("instruction")
    assert list(b.index) == [0, 2]
    n = MODEL_ITERS - MODEL_WARMUP
    call0 = np.mean([45_000 + 1_000 * i for i in range(MODEL_WARMUP, MODEL_ITERS)])
    assert b.loc[0, "call_ms"] * 1e6 == pytest.approx(call0)
    assert b.loc[0, "overhead_ms"] * 1e6 == pytest.approx(call0 - 37_000)
    assert b.loc[2, "overhead_ms"] * 1e6 == pytest.approx(-500)
    assert b.loc[0, "module"] == "features.0" and b.loc[2, "module"] == "classifier.0"
    assert b.loc[0, "ops"] == 3 and "Convolution (NHWC, QC8) IGEMM x1" in b.loc[0, "main_ops"]
    # XNNPACK's #N counters restart per delegate: "Convert (NC) #1" is two operators
    converts = ops[ops["event"] == "Convert (NC) #1"].set_index("instruction")
    assert converts.loc[0, "mean_ms"] * 1e6 == pytest.approx(2_000)
    assert converts.loc[2, "mean_ms"] * 1e6 == pytest.approx(3_000)
    assert set(ops["part"]) == {"compute", "glue", "overhead"}
    # negative overhead is kept (not clipped) and reported, once per block call
    assert len(negative) == n and set(negative["instruction"]) == {2}
    assert (negative["overhead_ns"] == -500).all()
    result = breakdown(load_trace(model_trace), BreakdownOptions(by="block"))
    assert any("negative" in note and "-0.500 us" in note for note in result.notes())


@pytest.mark.parametrize("path", REAL_TRACES, ids=lambda p: p.name)
def test_block_rows_add_up(path: Path) -> None:
    trace = load_trace(path).measured()
    blocks, ops, _ = block_tables(trace)
    if blocks.empty:
        assert ops.empty
        return
    per_block = ops.groupby("instruction")["mean_ms"].sum()
    b = blocks.set_index("instruction")
    np.testing.assert_allclose(per_block.reindex(b.index), b["call_ms"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        b["compute_ms"] + b["glue_ms"] + b["overhead_ms"], b["call_ms"], rtol=1e-12, atol=1e-12
    )
    assert (ops.groupby("instruction")["event"].last() == OVERHEAD_EVENT).all()
    buckets = bucket_frame(trace).mean()
    assert b["call_ms"].sum() * 1e6 == pytest.approx(
        buckets[
            ["delegate_compute", "delegate_glue", "delegate_unresolved", "delegate_overhead"]
        ].sum()
    )


# -- modules -------------------------------------------------------------------------------------


def test_common_module() -> None:
    assert common_module(["features.0.0", "features.0.1"]) == "features.0"
    assert common_module(["features.10.conv", "features.1.conv"]) == "features"  # by component
    assert common_module(["features.3"]) == "features.3"
    assert common_module(["features.0", "classifier.1"]) == ""
    assert common_module([]) == ""
    # nodes outside every module (q/dq nodes: path "") do not pull a delegate up to the root
    assert (
        module_label(("", "features.1.block.0.0", "features.1.block.1.fc1")) == "features.1.block"
    )
    assert module_label(("",)) == ROOT and module_label(()) == UNKNOWN


def test_modules_of_the_hand_built_model(model_trace: Path) -> None:
    trace = load_trace(model_trace).measured()
    frame, known = module_frame(trace)
    assert known
    m = frame.set_index("module")
    assert set(m.index) == {"features.0", "avgpool", "classifier.0", RUNTIME}
    assert m.loc["avgpool", "portable_ms"] * 1e6 == pytest.approx(20_000)
    assert m.loc["classifier.0", "delegated_ms"] * 1e6 == pytest.approx(6_500)
    run_model = bucket_frame(trace)["run_model"].mean() / 1e6
    assert m["total_ms"].sum() == pytest.approx(run_model, rel=1e-12)
    assert frame["cum_share_pct"].iloc[-1] == pytest.approx(100.0)
    assert frame["module"].iloc[-1] == RUNTIME


@pytest.mark.parametrize("path", REAL_TRACES, ids=lambda p: p.name)
def test_module_table_sums_to_run_model(path: Path) -> None:
    trace = load_trace(path).measured()
    frame, known = module_frame(trace)
    run_model = bucket_frame(trace)["run_model"].mean() / 1e6
    assert frame["total_ms"].sum() == pytest.approx(run_model, rel=1e-9)
    assert frame["module"].is_unique
    blocks, _, _ = block_tables(trace)
    if known:  # recorded with an ETRecord: every call lands on a module, the blocks show theirs
        assert "(unknown)" not in set(frame["module"]) and "(unknown)" not in set(blocks["module"])
    else:
        assert set(frame["module"]) <= {"(unknown)", RUNTIME}


# -- operators -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", REAL_TRACES, ids=lambda p: p.name)
def test_operator_table_covers_the_operator_buckets(path: Path) -> None:
    trace = load_trace(path).measured()
    ops = operator_frame(trace)
    b = bucket_frame(trace).mean() / 1e6
    xnn = ops.loc[ops["side"] == "delegated"]
    assert xnn["per_iter_ms"].sum() == pytest.approx(b["delegate_compute"] + b["delegate_glue"])
    assert xnn.loc[xnn["glue"], "per_iter_ms"].sum() == pytest.approx(b["delegate_glue"])
    portable = ops.loc[ops["side"] == "portable", "per_iter_ms"].sum()
    assert portable == pytest.approx(b["portable_kernels"])
    assert (ops["per_iter_ms"].diff().dropna() <= 0).all()  # most expensive first


# -- iteration stability -------------------------------------------------------------------------


def test_stability_flags() -> None:
    rng = np.random.default_rng(0)
    quiet = 10 + rng.normal(0, 0.05, 50)
    s = stability(quiet)
    assert not s.noisy and not s.trending and s.outliers == 0
    assert s.spearman_p is not None and s.spearman_p > 0.01
    drifting = quiet + np.linspace(0, 0.4, 50)  # +4% over the run: halves differ by ~2%
    s = stability(drifting)
    assert s.trending and not s.noisy and s.spearman_rho is not None and s.spearman_rho > 0.5
    assert abs(s.half_change_pct) < 5  # caught by the rank test, not by the halves
    noisy = quiet.copy()
    noisy[::10] *= 3  # five preempted iterations
    s = stability(noisy)
    assert s.noisy and s.outliers == 5
    stepped = np.r_[np.full(25, 10.0), np.full(25, 11.0)] + rng.normal(0, 0.01, 50)
    s = stability(stepped)
    assert s.trending and s.half_change_pct == pytest.approx(10, abs=0.5)
    assert s.halves_p is not None and s.halves_p < 1e-6
    # stationary but bimodal (two machine states taking turns): the half medians land on
    # different modes, but the halves hold the same mixture: not a trend
    lo, hi = 10.5, 14.6
    first = rng.permutation(np.r_[np.full(13, lo), np.full(12, hi)])
    second = rng.permutation(np.r_[np.full(12, lo), np.full(13, hi)])
    bimodal = np.r_[first, second] + rng.normal(0, 0.01, 50)
    s = stability(bimodal)
    assert s.half_change_pct > 30 and s.halves_p is not None and s.halves_p > 0.5
    assert not s.trending
    short = stability(np.array([1.0, 2.0, 3.0]))  # too few for the rank test
    assert short.spearman_rho is None and short.trending is False


def test_rank_tests_match_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    for _trial in range(20):
        n = int(rng.integers(10, 80))
        values = np.round(rng.normal(10, 1, n) + rng.uniform(-0.05, 0.05) * np.arange(n), 1)
        rho, p = spearman(values)  # type: ignore[misc]
        ref = stats.spearmanr(np.arange(n), values)
        assert rho == pytest.approx(ref.statistic, abs=1e-12)
        # normal vs Student-t approximation: close, and the same verdict away from the threshold
        assert p == pytest.approx(ref.pvalue, rel=0.5, abs=2e-3)
        half = n // 2
        a, b = values[:half], values[n - half :]
        ref_u = stats.mannwhitneyu(a, b, method="asymptotic", use_continuity=True)
        assert rank_test(a, b) == pytest.approx(ref_u.pvalue, rel=1e-9)
        # the diff's column-wise form is the same test, column by column
        pair = rank_tests(np.c_[a, b[::-1]], np.c_[b, a])
        ref_cols = stats.mannwhitneyu(
            np.c_[a, b[::-1]], np.c_[b, a], method="asymptotic", axis=0
        ).pvalue
        assert pair == pytest.approx(ref_cols, rel=1e-9)


@pytest.mark.parametrize("path", REAL_TRACES, ids=lambda p: p.name)
def test_iteration_table_on_real_traces(path: Path) -> None:
    trace = load_trace(path)
    result = breakdown(trace, BreakdownOptions(by="iteration"))
    frame = result.iterations.frame
    assert len(frame) == trace.iterations
    assert frame["dropped"].sum() == trace.warmup
    assert (frame["dropped"] == (frame["iteration"] < trace.warmup)).all()
    parts = [
        "delegate_ops_ms",
        "delegate_unres_ms",
        "delegate_ovh_ms",
        "portable_ms",
        "dispatch_ms",
        "runtime_ms",
    ]
    np.testing.assert_allclose(frame[parts].sum(axis=1), frame["run_model_ms"], rtol=1e-12)
    measured = frame.loc[~frame["dropped"], "run_model_ms"]
    assert result.iterations.stability.median_ms == pytest.approx(float(measured.median()))
    assert result.stats.mean_ms == pytest.approx(float(measured.mean()), rel=1e-12)


# -- per-event means against ExecuTorch's Inspector ----------------------------------------------


def compare_with_inspector(path: Path, warmup: int) -> None:
    pytest.importorskip("etprof.trace.etdump.inspector_engine")
    theirs = inspector_means(path, warmup)  # computed once, shared with test_engines
    t = theirs.set_index(["name", "instruction_id"])
    trace = load_trace(path).with_warmup(warmup)
    result = breakdown(trace, BreakdownOptions())
    # run model
    assert result.stats.mean_ms * 1e6 == pytest.approx(
        t.loc[("Method::execute", 0), "mean_ns"], rel=1e-12
    )
    # each XNNPACK operator event of each block, and each block's DELEGATE_CALL
    ops = result.blocks.operators
    for r in ops[ops["event"] != OVERHEAD_EVENT].itertuples():
        assert r.count == 1.0
        assert r.mean_ms * 1e6 == pytest.approx(
            t.loc[(r.event, r.instruction), "mean_ns"], rel=1e-12, abs=1e-6
        )
    for r in result.blocks.blocks.itertuples():
        assert r.call_ms * 1e6 == pytest.approx(
            t.loc[("DELEGATE_CALL", r.instruction), "mean_ns"], rel=1e-12
        )
    # each operator type: the count-weighted mean of the Inspector's events of that type
    rows = theirs[theirs["delegated"] | theirs["name"].str.startswith("native_call_")].copy()
    rows["op"] = (
        rows["name"]
        .str.replace(r"\s*#\d+$", "", regex=True)
        .str.replace("^native_call_", "", regex=True)
    )
    rows["total"] = rows["mean_ns"] * rows["count"]
    by_op = rows.groupby("op")[["total", "count"]].sum()
    frame = result.operators.frame
    # the Inspector shows the runtime's name; ours adds a placeholder's resolved operator to it
    # ("Hardswish (Invalid Unary Op)"): compare under the runtime's name
    frame = frame.set_index(frame["op"].str.replace(r"^.+ \((Invalid [^)]*)\)$", r"\1", regex=True))
    assert frame.index.is_unique
    assert set(frame.index) == set(by_op.index)
    for op, r in by_op.iterrows():
        assert frame.loc[op, "mean_ms"] * 1e6 == pytest.approx(r["total"] / r["count"], rel=1e-9)
    assert len(frame) > 0


def test_means_equal_the_inspectors_small(small_trace: Path) -> None:
    compare_with_inspector(small_trace, 10)


def test_means_equal_the_inspectors_hand_built(model_trace: Path) -> None:
    compare_with_inspector(model_trace, MODEL_WARMUP)


@pytest.mark.slow
@pytest.mark.parametrize("path", sample_traces(), ids=lambda p: p.name)
def test_means_equal_the_inspectors_samples(path: Path) -> None:
    compare_with_inspector(path, load_trace(path).warmup)
