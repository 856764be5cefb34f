"""What merging two delegate partitions would save: the fixed cost of one delegate call.

A delegate call's time outside its operators (DELEGATE_CALL minus its operator events) grows
with the block's size -- MobileBERT's 50-operator blocks spend 64-67 µs there, its 9-operator
ones 14-15 µs; MobileNetV3 q8 (quant-only) 7.8 µs with 3 operators, 40 µs with 17 -- because the
runtime sets up and times each operator, and operators shorter than the timer read 0. A merge
removes one call, not the operators' share, so charging a graph break with the whole overhead of
the call after it over-counts. The fixed part is estimated from the program's own calls: a
least-squares line of each call's overhead against its operator count, whose intercept is the
per-call cost, bounded by the smallest call's overhead (what a call with the fewest operators
spends). With fewer than three calls, or calls of one size, the smallest overhead is the estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from etprof.trace.model import DELEGATE_CALL, DELEGATE_OP, Trace
from etprof.util.grouping import group_sum


@dataclass(frozen=True)
class CallCost:
    """The fixed cost of one delegate call, per measured iteration (ns)."""

    fixed_ns: float  # the estimate a merge removes per call
    smallest_ns: float  # the smallest call's overhead: the estimate's upper bound
    per_op_ns: float  # what each further operator adds to a call's overhead (the fit's slope)
    calls: int  # delegate calls per iteration the estimate rests on
    basis: str  # "fit" | "smallest call" | "none"

    def to_dict(self) -> dict[str, Any]:
        return {
            "fixed_us": self.fixed_ns / 1e3,
            "smallest_us": self.smallest_ns / 1e3,
            "per_op_us": self.per_op_ns / 1e3,
            "calls": self.calls,
            "basis": self.basis,
        }


NONE = CallCost(0.0, 0.0, 0.0, 0, "none")


def call_cost(trace: Trace, n: int) -> CallCost:
    """The fixed cost per delegate call of the measured iterations of `trace` (`n` of them)."""
    calls = trace.of_kind(DELEGATE_CALL)
    if calls.empty or n <= 0:
        return NONE
    ops = trace.of_kind(DELEGATE_OP)
    ids = calls["instruction_id"].to_numpy(np.int64)
    whole = group_sum(ids, calls["duration_ns"].to_numpy(np.int64))
    per_call = calls.groupby("instruction_id").size()
    inner = group_sum(
        ops["instruction_id"].to_numpy(np.int64), ops["duration_ns"].to_numpy(np.int64)
    ).reindex(whole.index, fill_value=0)
    count = ops.groupby("instruction_id").size().reindex(whole.index, fill_value=0)
    k = per_call.reindex(whole.index).to_numpy(float)
    overhead = ((whole - inner).to_numpy(float)) / k
    size = count.to_numpy(float) / k
    smallest = float(overhead.min())
    if len(overhead) < 3 or np.ptp(size) == 0:
        return CallCost(smallest, smallest, 0.0, len(overhead), "smallest call")
    slope, intercept = np.polyfit(size, overhead, 1)
    fixed = float(min(max(intercept, 0.0), smallest))
    return CallCost(fixed, smallest, float(max(slope, 0.0)), len(overhead), "fit")
