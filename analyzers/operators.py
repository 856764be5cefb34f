"""Time per operator type over the measured iterations: delegated XNNPACK ops and portable kernels.

Times are per iteration (total over the measured iterations divided by their number), so the
column sums to the operator part of run model; `count` is occurrences per iteration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from etprof.analyzers import analyzer
from etprof.analyzers.buckets import is_glue
from etprof.result import records
from etprof.trace import DELEGATE_OP, KERNEL, RUN_MODEL, Trace


@dataclass(frozen=True)
class OperatorOptions:
    warmup: int | None = None
    top: int | None = None  # keep the N most expensive rows (None: all)


@dataclass(frozen=True)
class OperatorTable:
    model: str
    measured: int
    run_model_ms: float
    frame: pd.DataFrame  # op, side, count, total_ms, mean_ms, share_pct, cum_share_pct

    schema = "etprof.operators"

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"operators": self.frame}

    def notes(self) -> list[str]:
        return []

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "measured": self.measured,
                "run_model_ms": self.run_model_ms, "operators": records(self.frame)}


def operator_frame(trace: Trace) -> pd.DataFrame:
    """Per operator type, over all iterations present in `trace` (already warm-up free)."""
    ev = trace.events
    n = max(1, int(ev.loc[ev["iteration"] >= 0, "iteration"].nunique()))
    run_model_ns = float(ev.loc[ev["kind"] == RUN_MODEL, "duration_ns"].sum()) / n
    ops = ev[ev["kind"].isin([DELEGATE_OP, KERNEL])]
    cols = ["op", "side", "count", "per_iter_ms", "mean_ms", "share_pct", "cum_share_pct"]
    if ops.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c.endswith(("ms", "pct")) else
                                          "object") for c in cols})
    # Grouped on the categoricals, named afterwards: a string per event (and hashing it) cost
    # more than the whole table on long traces. Sorting the named groups gives the order that
    # grouping on the strings gave.
    grouped = (
        ops.groupby(["op", "kind"], observed=True)["duration_ns"]
        .agg(["count", "sum"])
        .reset_index()
    )
    grouped["op"] = grouped["op"].astype(str)
    grouped["kind"] = grouped["kind"].astype(str).map({DELEGATE_OP: "xnnpack", KERNEL: "portable"})
    grouped = (grouped.rename(columns={"kind": "side"})
               .sort_values(["op", "side"], kind="stable").reset_index(drop=True))
    grouped["per_iter_ms"] = grouped["sum"] / n / 1e6
    grouped["mean_ms"] = grouped["sum"] / grouped["count"] / 1e6
    grouped["count"] = grouped["count"] / n
    grouped["share_pct"] = 100.0 * grouped["sum"] / n / run_model_ns if run_model_ns else 0.0
    grouped = grouped.sort_values(["per_iter_ms", "op"], ascending=[False, True])
    grouped["cum_share_pct"] = grouped["share_pct"].cumsum()
    grouped["glue"] = [s == "xnnpack" and is_glue(o) for o, s in zip(grouped["op"], grouped["side"])]
    return grouped[[*cols, "glue"]].reset_index(drop=True)


@analyzer("operators", "time per operator type, delegated (XNNPACK) or portable", OperatorOptions)
def operators(trace: Trace, options: OperatorOptions) -> OperatorTable:
    measured = trace.measured(options.warmup)
    frame = operator_frame(measured)
    if options.top is not None:
        frame = frame.head(options.top).reset_index(drop=True)
    ev = measured.events
    n = int(ev.loc[ev["iteration"] >= 0, "iteration"].nunique())
    rm = float(ev.loc[ev["kind"] == RUN_MODEL, "duration_ns"].sum()) / max(1, n) / 1e6
    return OperatorTable(model=trace.model, measured=n, run_model_ms=rm, frame=frame)
