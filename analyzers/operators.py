"""Time per operator type over the measured iterations: delegated operators (per backend) and
portable kernels.

Times are per iteration (total over the measured iterations divided by their number), so the
column sums to the operator part of run model; `count` is occurrences per iteration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from etprof.analyzers import analyzer
from etprof.analyzers.buckets import delegate_backends
from etprof.result import records
from etprof.trace.model import DELEGATE_OP, KERNEL, Trace
from etprof.util.grouping import group_codes, group_first, group_sum


@dataclass(frozen=True)
class OperatorOptions:
    warmup: int | None = None
    top: int | None = None  # keep the N most expensive rows (None: all)


@dataclass(frozen=True)
class OperatorTable:
    model: str
    measured: int
    run_model_ms: float
    # op, side ("delegated" | "portable"), backend (id; "" for portable), count, per_iter_ms,
    # mean_ms, share_pct, cum_share_pct, glue, below_res (of `count`, the events shorter than
    # the backend's timer resolution, which read 0: their time is not in per_iter_ms)
    frame: pd.DataFrame

    schema = "etprof.operators"

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"operators": self.frame}

    def notes(self) -> list[str]:
        return []

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "measured": self.measured,
            "run_model_ms": self.run_model_ms,
            "operators": records(self.frame),
        }


def operator_frame(trace: Trace) -> pd.DataFrame:
    """Per operator type, over all iterations present in `trace` (already warm-up free)."""
    n = max(1, trace.iterations_present())
    run_model_ns = trace.run_model_ns() / n
    ops = trace.of_kind(DELEGATE_OP, KERNEL)
    cols = [
        "op",
        "side",
        "backend",
        "count",
        "per_iter_ms",
        "mean_ms",
        "share_pct",
        "cum_share_pct",
    ]
    if ops.empty:
        return pd.DataFrame(
            {c: pd.Series(dtype="float64" if c.endswith(("ms", "pct")) else "object") for c in cols}
        )
    # Grouped on the categorical codes (with numpy), named afterwards: a string per event (and
    # hashing it) cost more than the whole table on long traces. Sorting the named groups gives
    # the order that grouping on the strings gave.
    op = ops["op"].array
    backend = ops["backend"].array
    portable = (ops["kind"].to_numpy() == KERNEL).astype(np.int64)
    nb = len(backend.categories) + 1
    side_code = np.where(portable == 1, 0, np.asarray(backend.codes, dtype=np.int64) + 2)
    keys, groups = group_codes(np.asarray(op.codes, dtype=np.int64) * (nb + 1) + side_code)
    first = group_first(groups, keys.size)
    grouped = (
        pd.DataFrame(
            {
                "op": np.asarray(op.take(first).astype(str), dtype=object),
                "side": np.where(portable[first] == 1, "portable", "delegated"),
                "backend": np.where(
                    portable[first] == 1,
                    "",
                    np.asarray(backend.take(first).astype(str), dtype=object),
                ),
                "count": np.bincount(groups, minlength=keys.size),
                "sum": group_sum(groups, ops["duration_ns"]).to_numpy(),
                "below": np.bincount(
                    groups, weights=_below_resolution(trace, ops), minlength=keys.size
                ),
            }
        )
        .sort_values(["op", "side", "backend"], kind="stable")
        .reset_index(drop=True)
    )
    grouped["per_iter_ms"] = grouped["sum"] / n / 1e6
    grouped["mean_ms"] = grouped["sum"] / grouped["count"] / 1e6
    grouped["count"] = grouped["count"] / n
    grouped["below_res"] = grouped["below"] / n
    grouped["share_pct"] = 100.0 * grouped["sum"] / n / run_model_ns if run_model_ns else 0.0
    grouped = grouped.sort_values(["per_iter_ms", "op"], ascending=[False, True])
    grouped["cum_share_pct"] = grouped["share_pct"].cumsum()
    backends = delegate_backends(trace)
    grouped["glue"] = [
        s == "delegated" and b in backends and backends[b].is_glue(o)
        for o, s, b in zip(grouped["op"], grouped["side"], grouped["backend"], strict=False)
    ]
    return grouped[[*cols, "glue", "below_res"]].reset_index(drop=True)


def _below_resolution(trace: Trace, ops: pd.DataFrame) -> np.ndarray:
    """1.0 for each delegate-operator event shorter than its backend's timer resolution."""
    out = np.zeros(len(ops))
    backend = ops["backend"].astype(str).to_numpy()
    dur = ops["duration_ns"].to_numpy(np.int64)
    delegated = ops["kind"].to_numpy() == DELEGATE_OP
    for bid, b in delegate_backends(trace).items():
        if b.timer_resolution_ns:
            out[delegated & (backend == bid) & (dur < b.timer_resolution_ns)] = 1.0
    return out


@analyzer("operators", "time per operator type, delegated or portable", OperatorOptions)
def operators(trace: Trace, options: OperatorOptions) -> OperatorTable:
    measured = trace.measured(options.warmup)
    frame = operator_frame(measured)
    if options.top is not None:
        frame = frame.head(options.top).reset_index(drop=True)
    n = measured.iterations_present()
    rm = measured.run_model_ns() / max(1, n) / 1e6
    return OperatorTable(model=trace.model, measured=n, run_model_ms=rm, frame=frame)
