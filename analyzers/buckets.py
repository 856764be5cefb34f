"""Exact attribution of run-model time to buckets, per measured iteration then averaged.

run model (Method::execute) =
    XNNPACK compute + XNNPACK glue      (operators inside DELEGATE_CALLs)
  + delegate overhead                   (each DELEGATE_CALL minus the operators inside it)
  + portable kernels                    (native_call_* events)
  + dispatch overhead                   (OPERATOR_CALL minus its kernel)
  + runtime overhead                    (run model minus all DELEGATE_CALLs and OPERATOR_CALLs)

Each bucket is defined by subtraction from the one enclosing it, so they sum to the run-model
time exactly (in integer nanoseconds, per iteration) and nothing is counted twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from etprof.analyzers import analyzer
from etprof.result import records
from etprof.trace import DELEGATE_CALL, DELEGATE_OP, KERNEL, OPERATOR_CALL, RUN_MODEL, Trace

BUCKETS = (
    "xnnpack_compute",
    "xnnpack_glue",
    "delegate_overhead",
    "portable_kernels",
    "dispatch_overhead",
    "runtime_overhead",
)
LABELS = {
    "xnnpack_compute": "XNNPACK compute",
    "xnnpack_glue": "XNNPACK layout/precision glue",
    "delegate_overhead": "XNNPACK delegate overhead",
    "portable_kernels": "portable kernels",
    "dispatch_overhead": "operator dispatch overhead",
    "runtime_overhead": "runtime overhead",
}
DELEGATED = ("xnnpack_compute", "xnnpack_glue", "delegate_overhead")
PORTABLE = ("portable_kernels", "dispatch_overhead")

# XNNPACK operators that only move or re-type data between layouts and precisions: the
# NCHW<->NHWC transposes and the F32<->QS8/QD8 converts that lowering inserts, copies and the
# shape-only ops. Names are XNNPACK's `xnn_operator_type_to_string` (+ microkernel), e.g.
# "Transpose (ND, X8)", "Convert (NC)", "Convert (NC, F32, QD8)", "Copy (NC, X32)",
# "Static Reshape (NC)", "Static Expand Dims (NC)", "Fuse Dims (NC)". The "(" after the name keeps
# arithmetic that merely starts alike ("Copy Sign (ND)") out.
GLUE_OP = re.compile(
    r"^(?:Transpose|Convert|Copy|Static Reshape|Reshape|Static Expand Dims|Expand Dims|Fuse Dims"
    r"|Split Dims|Squeeze|Unsqueeze)\s*\("
)


def is_glue(op: str) -> bool:
    return bool(GLUE_OP.match(op))


def glue_mask(op: pd.Series) -> pd.Series:
    """`is_glue` of every entry of an operator-name column (matched once per distinct name)."""
    if isinstance(op.dtype, pd.CategoricalDtype):
        flags = np.array([is_glue(str(c)) for c in op.cat.categories] + [False], dtype=bool)
        return pd.Series(flags[op.cat.codes.to_numpy()], index=op.index)  # code -1: the False
    names = op.astype(str)
    table = {name: is_glue(name) for name in names.unique()}
    return names.map(table).astype(bool)


@dataclass(frozen=True)
class BucketOptions:
    warmup: int | None = None


@dataclass(frozen=True)
class Buckets:
    model: str
    warmup: int
    per_iteration: pd.DataFrame  # index: iteration; columns: run_model + BUCKETS (ns)

    schema = "etprof.buckets"

    @property
    def run_model_ms(self) -> float:
        return float(self.per_iteration["run_model"].mean()) / 1e6

    def mean_ms(self) -> pd.Series:
        return self.per_iteration[list(BUCKETS)].mean() / 1e6

    def delegated_ms(self) -> float:
        return float(self.mean_ms()[list(DELEGATED)].sum())

    def portable_ms(self) -> float:
        return float(self.mean_ms()[list(PORTABLE)].sum())

    def table(self) -> pd.DataFrame:
        means = self.mean_ms()
        total = self.run_model_ms
        rows = [
            {
                "bucket": b,
                "label": LABELS[b],
                "side": "delegated" if b in DELEGATED else "portable" if b in PORTABLE else "runtime",
                "mean_ms": float(means[b]),
                "share_pct": 100.0 * float(means[b]) / total if total else 0.0,
            }
            for b in BUCKETS
        ]
        rows.append({"bucket": "run_model", "label": "run model (Method::execute)",
                     "side": "total", "mean_ms": total, "share_pct": 100.0 if total else 0.0})
        return pd.DataFrame(rows)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"buckets": self.table()}

    def notes(self) -> list[str]:
        return []

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "warmup": self.warmup,
                "measured": len(self.per_iteration), "buckets": records(self.table())}


def bucket_frame(trace: Trace) -> pd.DataFrame:
    """Per-iteration bucket times in ns for every iteration present in `trace` (memoised)."""
    return trace.memo("bucket_frame", lambda: _bucket_frame(trace))


def _bucket_frame(trace: Trace) -> pd.DataFrame:
    def total(ev: pd.DataFrame, mask: pd.Series | None = None) -> pd.Series:
        if mask is not None:
            ev = ev[mask.to_numpy()]
        return ev["duration_ns"].groupby(ev["iteration"].to_numpy()).sum()

    rm = trace.of_kind(RUN_MODEL)
    run_model = total(rm, rm["iteration"] >= 0)
    idx = run_model.index
    xop = trace.of_kind(DELEGATE_OP)
    glue = glue_mask(xop["op"])
    parts = {
        "run_model": run_model,
        "delegate_call": total(trace.of_kind(DELEGATE_CALL)),
        "xnnpack_compute": total(xop, ~glue),
        "xnnpack_glue": total(xop, glue),
        "operator_call": total(trace.of_kind(OPERATOR_CALL)),
        "portable_kernels": total(trace.of_kind(KERNEL)),
    }
    f = pd.DataFrame({k: v.reindex(idx, fill_value=0) for k, v in parts.items()}, index=idx)
    f = f.fillna(0).astype("int64")
    f["delegate_overhead"] = f["delegate_call"] - f["xnnpack_compute"] - f["xnnpack_glue"]
    f["dispatch_overhead"] = f["operator_call"] - f["portable_kernels"]
    f["runtime_overhead"] = f["run_model"] - f["delegate_call"] - f["operator_call"]
    f.index.name = "iteration"
    return f[["run_model", *BUCKETS]]


@analyzer("buckets", "run-model time split into delegated, portable and overhead buckets",
          BucketOptions)
def buckets(trace: Trace, options: BucketOptions) -> Buckets:
    measured = trace.measured(options.warmup)
    return Buckets(
        model=trace.model,
        warmup=trace.warmup if options.warmup is None else options.warmup,
        per_iteration=bucket_frame(measured),
    )
