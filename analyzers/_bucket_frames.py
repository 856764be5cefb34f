"""The per-iteration bucket table of a trace (one row per iteration, one column per bucket and
backend), computed by subtraction from the enclosing events, and the part of each delegate call
that may be operators below the backend's timer resolution."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from etprof.analyzers._bucket_names import BUCKETS, DELEGATED
from etprof.analyzers._bucket_parts import _unresolved_per_call
from etprof.analyzers._delegate_calls import _strings, opaque_calls
from etprof.analyzers._delegate_calls import delegate_backends as delegate_backends
from etprof.analyzers._delegate_calls import glue_flags as glue_flags
from etprof.trace.model import DELEGATE_CALL, DELEGATE_OP, KERNEL, OPERATOR_CALL, RUN_MODEL, Trace

RESOLUTION_COLUMNS = [
    "backend",
    "label",
    "resolution_ns",
    "operators",
    "below_resolution",
    "below_resolution_pct",
    "unresolved_ms",
    "resolved_ms",
    "unresolved_share_pct",
    "warn",
]


def resolution_text(ns: int) -> str:
    return f"{ns / 1000:g} µs" if ns >= 1000 else f"{ns} ns"


def bucket_frame(trace: Trace) -> pd.DataFrame:
    """Per-iteration bucket times in ns for every iteration present in `trace` (memoised)."""
    return trace.memo("bucket_frame", lambda: _bucket_frames(trace)[0])


def backend_frames(trace: Trace) -> dict[str, pd.DataFrame]:
    """Per backend id, its per-iteration delegate buckets in ns (memoised)."""
    return trace.memo("backend_frames", lambda: _bucket_frames(trace)[1])


def _bucket_frames(trace: Trace) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    key = "_bucket_frames"

    def compute() -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
        return _compute_frames(trace)

    return trace.memo(key, compute)


def _compute_frames(trace: Trace) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    rm = trace.of_kind(RUN_MODEL)
    rm_it = rm["iteration"].to_numpy(np.int64)
    width = int(rm_it.max()) + 1 if rm_it.size else 0

    def total(ev: pd.DataFrame, mask: npt.NDArray[np.bool_] | None = None) -> pd.Series:
        """Sum of durations per iteration (bincount: exact, every sum being whole ns far
        below 2**53)."""
        it = ev["iteration"].to_numpy(np.int64)
        dur = ev["duration_ns"].to_numpy(np.int64)
        keep = (it >= 0) & (it < width) if mask is None else mask & (it >= 0) & (it < width)
        sums = np.bincount(it[keep], weights=dur[keep], minlength=width)
        return pd.Series(np.rint(sums).astype(np.int64))

    def total_count(ev: pd.DataFrame, mask: npt.NDArray[np.bool_]) -> pd.Series:
        it = ev["iteration"].to_numpy(np.int64)
        keep = mask & (it >= 0) & (it < width)
        return pd.Series(np.bincount(it[keep], minlength=width).astype(np.int64))

    run_model = total(rm)
    idx = pd.Index(np.unique(rm_it[rm_it >= 0]))

    def frame(parts: dict[str, pd.Series]) -> pd.DataFrame:
        f = pd.DataFrame({k: v.reindex(idx, fill_value=0) for k, v in parts.items()}, index=idx)
        return f.fillna(0).astype("int64")

    backends = delegate_backends(trace)
    ops = trace.of_kind(DELEGATE_OP)
    calls = trace.of_kind(DELEGATE_CALL)
    glue = glue_flags(ops, backends)
    op_backend = _strings(ops["backend"])
    call_backend = _strings(calls["backend"])
    per_backend = {}
    unresolved = pd.Series(np.zeros(width, dtype=np.int64))
    opaque = opaque_calls(calls, ops)
    for bid, backend in backends.items():
        mine = op_backend == bid
        f = frame(
            {
                "delegate_call": total(calls, call_backend == bid),
                "delegate_compute": total(ops, mine & ~glue),
                "delegate_glue": total(ops, mine & glue),
                "delegate_opaque": total(calls, (call_backend == bid) & opaque),
                "opaque_calls": total_count(calls, (call_backend == bid) & opaque),
            }
        )
        res = backend.timer_resolution_ns
        below = (ops["duration_ns"].to_numpy(np.int64) < res) if res else np.zeros(len(ops), bool)
        mine_unresolved = pd.Series(np.zeros(width, dtype=np.int64))
        if res:
            mine_unresolved = (
                _unresolved_per_call(calls[call_backend == bid], ops[mine], res, width)
                .groupby(level=1)
                .sum()
            )
            mine_unresolved = mine_unresolved.reindex(range(width), fill_value=0)
            unresolved = unresolved + mine_unresolved
        f["delegate_unresolved"] = mine_unresolved.reindex(f.index, fill_value=0).to_numpy()
        f["delegate_overhead"] = (
            f["delegate_call"]
            - f["delegate_compute"]
            - f["delegate_glue"]
            - f["delegate_unresolved"]
            - f["delegate_opaque"]
        )
        f["operators"] = total_count(ops, mine).reindex(f.index, fill_value=0).to_numpy()
        f["below_resolution"] = (
            total_count(ops, mine & below).reindex(f.index, fill_value=0).to_numpy()
        )
        f.index.name = "iteration"
        per_backend[bid] = f[[*DELEGATED, "operators", "below_resolution", "opaque_calls"]]
    f = frame(
        {
            "run_model": run_model,
            "delegate_call": total(calls),
            "delegate_compute": total(ops, ~glue),
            "delegate_glue": total(ops, glue),
            "delegate_unresolved": unresolved,
            "delegate_opaque": total(calls, opaque),
            "operator_call": total(trace.of_kind(OPERATOR_CALL)),
            "portable_kernels": total(trace.of_kind(KERNEL)),
        }
    )
    f["delegate_overhead"] = (
        f["delegate_call"]
        - f["delegate_compute"]
        - f["delegate_glue"]
        - f["delegate_unresolved"]
        - f["delegate_opaque"]
    )
    f["dispatch_overhead"] = f["operator_call"] - f["portable_kernels"]
    f["runtime_overhead"] = f["run_model"] - f["delegate_call"] - f["operator_call"]
    f.index.name = "iteration"
    return f[["run_model", *BUCKETS]], per_backend


def unresolved_by_instruction(trace: Trace) -> pd.Series:
    """Below-resolution ns per delegate instruction, summed over the iterations in `trace`."""
    parts = []
    calls = trace.of_kind(DELEGATE_CALL)
    ops = trace.of_kind(DELEGATE_OP)
    rm_it = trace.of_kind(RUN_MODEL)["iteration"].to_numpy(np.int64)
    width = int(rm_it.max()) + 1 if rm_it.size else 0
    call_backend, op_backend = _strings(calls["backend"]), _strings(ops["backend"])
    for bid, backend in delegate_backends(trace).items():
        if backend.timer_resolution_ns:
            parts.append(
                _unresolved_per_call(
                    calls[call_backend == bid],
                    ops[op_backend == bid],
                    backend.timer_resolution_ns,
                    width,
                )
                .groupby(level=0)
                .sum()
            )
    if not parts:
        return pd.Series(dtype="int64")
    return pd.concat(parts).groupby(level=0).sum()
